"""Entry point of the ``gradient-workbench`` console script.

Headless commands (``train``, ``resume``, ``info``) run from ``core`` without importing Qt, so
they work on a server; no command (or ``open FILE``) starts the window.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

HEADLESS = {"train", "resume", "info", "sweep", "sweep-report", "export", "--version", "-h", "--help"}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in HEADLESS:
        from core.cli import run_headless

        return run_headless(args)
    path = None
    if args:
        if args[0] != "open" or len(args) != 2:
            from core.cli import run_headless

            return run_headless(args)  # prints the one-line usage error, exit status 2
        path = args[1]
    from .app import run_app

    return run_app(path)


if __name__ == "__main__":
    sys.exit(main())
