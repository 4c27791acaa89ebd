import multiprocessing
import sys

from .cli import main

if __name__ == "__main__":      # a training process started by spawn imports this module too
    multiprocessing.freeze_support()
    sys.exit(main())
