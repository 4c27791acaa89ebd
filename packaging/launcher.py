"""The frozen application's entry script (PyInstaller runs this file as ``__main__``).

It is ``gradient-workbench``'s console script: the same commands, the window by default.
"""

import multiprocessing
import sys

from workbench.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # parallel sweeps start worker processes from this executable
    sys.exit(main())
