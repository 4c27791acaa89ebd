"""Entry point of the ``gradient-workbench`` console script.

Headless commands (``train``, ``resume``, ``info``, ``branch``, ``inspect``, ...: every command of
``core.cli.main.COMMANDS``) run from ``core`` without importing Qt, so
they work on a server; no command (or ``open FILE``) starts the window. A bare ``FILE.gwb`` or
``FILE.json`` means ``open FILE``: that is how the desktop entry (``Exec=gradient-workbench %f``)
passes a double-clicked session. ``--smoke-test`` starts the window, opens the file, closes it
again and exits 0 if all went well (``workbench.smoke``; how packaged builds are checked).
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Sequence

from core.cli.main import COMMANDS, run_headless

# Every command core's command line defines (a new one is headless without an edit here), and its options.
HEADLESS = set(COMMANDS) | {"--version", "-h", "--help"}


def main(argv: Sequence[str] | None = None) -> int:
    multiprocessing.freeze_support()    # a frozen build's training process starts here: it must not run the app
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in HEADLESS:
        return run_headless(args)
    smoke_test = "--smoke-test" in args
    if smoke_test:
        args.remove("--smoke-test")
    if len(args) == 1 and args[0].lower().endswith((".gwb", ".json")):  # a bare file: open it
        args = ["open", args[0]]
    path = None
    if args:
        if args[0] != "open" or len(args) != 2:
            return run_headless(args)  # prints the one-line usage error, exit status 2
        path = args[1]
    if smoke_test:
        from .smoke import run_smoke_test

        return run_smoke_test(path)
    from .app import run_app

    return run_app(path)


if __name__ == "__main__":
    sys.exit(main())
