"""What every command of ``gradient-workbench`` shares: the exit statuses, ``UsageError``, the
one-line argument parser and the argument types.

The parser (``core.cli.main``) and the commands (``core.cli.commands``) both import this module
and not each other's, so neither needs the other to be half-imported first.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
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


def check_folder_for(option: str, path: Path) -> None:
    """Refuse (``UsageError``) a file to be written whose folder is missing, is a file, or takes
    no new file. Checked before any work: a run that trains for an hour must not find out only
    when it saves (nor announce a recovery copy it cannot write)."""
    folder = path.parent
    if not folder.exists():
        raise UsageError(f"{option}: folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise UsageError(f"{option}: {str(folder)!r} is a file, not a folder, so {str(path)!r} cannot be written; "
                         "give a file name in an existing folder")
    try:
        # The only sure test of "can write here" is writing (permissions, ACLs, a read-only
        # mount, root's exemptions): an anonymous file that vanishes when closed, so nothing is left.
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise UsageError(f"{option}: cannot write in folder {str(folder)!r} ({exc.strerror or exc}); "
                         "give a file name in a folder you can write to") from None


def check_not_a_folder(option: str, path: Path) -> None:
    """Refuse a file name that is an existing folder (the save would fail only after the work)."""
    if path.is_dir():
        raise UsageError(f"{option}: {str(path)!r} is a folder, not a file name")


def check_out(out: str) -> Path:
    """``--out`` of ``train``, ``resume`` and ``branch``: a ``.gwb`` file name that can be written."""
    path = Path(out)
    if path.suffix != ".gwb":
        raise UsageError(f"--out: a session file must end in .gwb, got {out!r}")
    check_not_a_folder("--out", path)
    check_folder_for("--out", path)
    return path


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file: by identity when both exist (a link or another
    spelling of the path), else by where they resolve to."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist (yet)
        return a.resolve() == b.resolve()


def plural(count: int, noun: str) -> str:
    """``1 epoch``, ``2 epochs`` (``noun`` in the singular, made plural with an s)."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
