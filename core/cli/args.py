"""What every command of ``gradient-workbench`` shares: the exit statuses, ``UsageError``, the
one-line argument parser and the argument types.

The parser (``core.cli.main``) and the commands (``core.cli.commands``) both import this module
and not each other's, so neither needs the other to be half-imported first.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

EXIT_BAD_INPUT = 2
EXIT_WRITE_FAILED = 1
EXIT_DIVERGED = 3  # the run blew up (NaN or infinity); its last finite state was saved


class UsageError(Exception):
    """Bad input on the command line: reported in one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """``argparse`` with a one-line error: bad usage raises ``UsageError`` (exit 2)."""

    def error(self, message: str) -> None:  # argparse would print the usage block; we print one line
        raise UsageError(f"{self.prog}: {message}")


def int_at_least(text: str, low: int, allowed: str) -> int:
    """An integer argument of at least ``low``; ``allowed`` says what is allowed in the message."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return int_at_least(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    return int_at_least(text, 0, "a whole number, 0 or more")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}") from None
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def check_out(out: str) -> Path:
    path = Path(out)
    if path.suffix != ".gwb":
        raise UsageError(f"--out: a session file must end in .gwb, got {out!r}")
    if not path.parent.exists() and str(path.parent):
        raise UsageError(f"--out: folder {str(path.parent)!r} does not exist")
    if path.is_dir():
        raise UsageError(f"--out: {out!r} is a folder, not a file name")
    return path
