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
import os
import sys
from collections.abc import Mapping, Sequence

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
    problem = missing_display()
    if problem:
        sys.stderr.write(f"error: {problem}\n")
        return 2
    from .app import run_app

    return run_app(path)


def missing_display(env: Mapping[str, str] | None = None, platform: str | None = None) -> str:
    """Why the window cannot open here ("" if it can): on Linux and the BSDs Qt needs an X11 or
    Wayland display (DISPLAY / WAYLAND_DISPLAY) unless QT_QPA_PLATFORM names another platform
    (offscreen, vnc...). Checked before Qt starts, which would abort with several lines, one of
    them blaming a library that is installed."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if platform.startswith(("win", "darwin", "cygwin")):
        return ""
    chosen = env.get("QT_QPA_PLATFORM", "").split(":")[0].split(";")[0]
    if chosen and chosen not in ("xcb", "wayland", "wayland-egl"):
        return ""
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return ""
    return ("no display to open the window on (DISPLAY and WAYLAND_DISPLAY are not set); on a server use the "
            "headless commands, e.g. gradient-workbench train EXPERIMENT.json (see gradient-workbench --help)")


if __name__ == "__main__":
    sys.exit(main())
