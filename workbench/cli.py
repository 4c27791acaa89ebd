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

from core.cli.args import EXIT_BAD_INPUT, UsageError
from core.cli.main import COMMANDS, build_parser, run_headless
from core.engine.validation import printable

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
        args = ["open", "--", args[0]]  # "--": a file name is never read as an option
    path = None
    if args:
        if args[0] != "open":
            return run_headless(args)  # prints the one-line usage error, exit status 2
        try:
            # the parser, not a count of words: `open --help` prints the help (exit 0) and
            # `open --bogus` is a usage error, where either was once taken for a file to open
            path = build_parser().parse_args(args).file
        except UsageError as exc:
            sys.stderr.write(f"error: {printable(str(exc))}\n")
            return EXIT_BAD_INPUT
    if smoke_test:
        from .smoke import run_smoke_test

        return run_smoke_test(path)
    # the file before the display: on a server "no display" would hide that the name is wrong,
    # and with a display a missing file is said here, not in a dialog after the window started
    problem = (missing_file(path) if path is not None else "") or missing_display()
    if problem:
        sys.stderr.write(f"error: {printable(problem)}\n")
        return EXIT_BAD_INPUT
    from .app import run_app

    return run_app(path)


def missing_file(path: str) -> str:
    """Why ``open PATH`` cannot open that file ("" if it may: what it holds is the window's to check)."""
    if os.path.isdir(path):
        return f"{path}: is a folder, not a session (.gwb) or experiment (.json) file"
    if not os.path.exists(path):
        return f"{path}: no such session or experiment file"
    return ""


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
