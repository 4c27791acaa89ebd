"""Argument checks shared by every component.

Each check raises ``ValueError`` with a message of the form ``"<name>: must be ..., got <value>"``
so the spec parser can prefix the field path (``optimizer.learning_rate: must be ...``).
Booleans are refused where numbers are expected: ``True`` is an int in Python but never a
learning rate.
"""

from __future__ import annotations

import math
import os
import re
import reprlib
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def number(name: str, value: Any, *, low: float | None = None, high: float | None = None,
           low_inclusive: bool = True, high_inclusive: bool = True) -> float:
    """A finite real number, optionally within ``[low, high]`` (bounds inclusive by default)."""
    if not _is_number(value) or not math.isfinite(float(value)):
        raise ValueError(f"{name}: must be a finite number, got {quote(value)}")
    v = float(value)
    if low is not None and (v < low or (v == low and not low_inclusive)):
        op = ">=" if low_inclusive else ">"
        raise ValueError(f"{name}: must be {op} {low:g}, got {quote(value)}")
    if high is not None and (v > high or (v == high and not high_inclusive)):
        op = "<=" if high_inclusive else "<"
        raise ValueError(f"{name}: must be {op} {high:g}, got {quote(value)}")
    return v


def positive(name: str, value: Any, *, high: float | None = None) -> float:
    """A finite number > 0."""
    if not _is_number(value) or not math.isfinite(float(value)) or float(value) <= 0:
        raise ValueError(f"{name}: must be a positive number, got {quote(value)}")
    return number(name, value, high=high)


def non_negative(name: str, value: Any, *, high: float | None = None) -> float:
    """A finite number >= 0."""
    if not _is_number(value) or not math.isfinite(float(value)) or float(value) < 0:
        raise ValueError(f"{name}: must be a non-negative number, got {quote(value)}")
    return number(name, value, high=high)


def fraction(name: str, value: Any, *, allow_one: bool = False) -> float:
    """A probability-like number in [0, 1) (or [0, 1] with ``allow_one``)."""
    upper = "1]" if allow_one else "1)"
    if not _is_number(value) or not math.isfinite(float(value)):
        raise ValueError(f"{name}: must be a number in [0, {upper}, got {quote(value)}")
    v = float(value)
    if v < 0 or v > 1 or (v == 1 and not allow_one):
        raise ValueError(f"{name}: must be a number in [0, {upper}, got {quote(value)}")
    return v


def integer(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    """An integer (floats such as ``3.0`` are refused: a count is written as a count)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}: must be an integer, got {quote(value)}")
    if low is not None and value < low:
        what = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise ValueError(f"{name}: must be {what}, got {quote(value)}")
    if high is not None and value > high:
        raise ValueError(f"{name}: must be an integer <= {high}, got {quote(value)}")
    return value


def positive_int(name: str, value: Any, *, high: int | None = None) -> int:
    """An integer >= 1."""
    return integer(name, value, low=1, high=high)


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name}: must be true or false, got {quote(value)}")
    return value


def choice(name: str, value: Any, allowed: list | tuple) -> Any:
    if value not in allowed or isinstance(value, bool) != any(isinstance(a, bool) for a in allowed if a == value):
        shown = ", ".join(repr(a) if isinstance(a, str) else str(a).lower() for a in allowed)
        raise ValueError(f"{name}: must be one of {shown}, got {quote(value)}")
    return value


def check_params(family: str, name: str, params: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
    """Refuse parameters a component does not declare, naming the ones it does."""
    for key in params:
        if key not in defaults:
            allowed = ", ".join(defaults) if defaults else "none"
            raise ValueError(f"{field_name(key)}: unknown parameter for {family} {quote(name)}; allowed: {allowed}")


# ----------------------------------------------------------------------------- echoing input

#: How many characters of a value a message shows; longer values are cut and their length given.
ECHO_CHARS = 80


def quote(value: Any, limit: int = ECHO_CHARS) -> str:
    """A value as a message may echo it: ``repr``-quoted, control characters escaped, and cut to
    about ``limit`` characters with the full length given (``'aaaa…' (10,000,000 characters)``).

    Every message that repeats user input goes through here, so a 10 MB name cannot make a
    10 MB "one-line" error, and a newline or a terminal escape in a key cannot forge a line."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, (list, tuple, dict, set)) and len(value) > limit:
        # a long container: its first items only (printing all of a million-item list is slow)
        short = reprlib.Repr()
        short.maxlist = short.maxtuple = short.maxdict = short.maxset = 16
        short.maxstring = short.maxother = limit
        try:
            shown = short.repr(value)
        except (RecursionError, ValueError):
            shown = "..."
        return f"{printable(shown[:limit])}… ({type(value).__name__} of {len(value):,} items)"
    else:
        try:
            text = repr(value)
        except (RecursionError, ValueError):  # nested too deeply to print, an int too long for repr
            return f"<{type(value).__name__} too large or deeply nested to show>"
    length = len(text)
    shown = text[:limit]
    # repr() escapes control characters (and quotes a string); a non-string's repr may still hold
    # text from the file (a key inside a dict), so it is escaped the same way.
    escaped = repr(shown) if isinstance(value, str) else printable(shown)
    if length <= limit:
        return escaped
    what = "characters" if isinstance(value, str) else "characters when printed"
    return f"{escaped}… ({length:,} {what})"


def excerpt(text: Any, limit: int = ECHO_CHARS) -> str:
    """``str(text)`` unquoted but made safe like ``quote``'s: control characters escaped and
    cut to ``limit`` characters with the full length given (for paths and file names, which
    read better bare)."""
    text = str(text)
    if len(text) <= limit:
        return printable(text)
    return f"{printable(text[:limit])}… ({len(text):,} characters)"


_PLAIN_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,79}")


def field_name(key: Any) -> str:
    """A key as a message names it: bare when it looks like a field name, else quoted (a key
    read from a file may hold a newline or a terminal escape, or be megabytes long)."""
    return key if isinstance(key, str) and _PLAIN_FIELD.fullmatch(key) else quote(key)


def printable(text: str) -> str:
    """``text`` with every control character (newline, ESC, ...) written as its escape, so a
    value from a file prints as one line and cannot drive a terminal."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


# ----------------------------------------------------------------------------- user files


class NotARegularFile(OSError):
    """A path a user gave that is a pipe, a device, a socket or a folder: never read as data
    (``/dev/zero`` never ends, a named pipe blocks until someone writes to it)."""

    def __init__(self, path: str | os.PathLike[str], kind: str) -> None:
        self.kind = kind
        super().__init__(f"{path}: is {kind}, not a regular file")


def file_kind(mode: int) -> str:
    """What a ``st_mode`` describes, in words for a message."""
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open ``path`` for binary reading only if it is a regular file (after following links).

    The check is made on the open descriptor (``fstat``), so a link swapped after a check
    cannot slip a device in; the open itself does not wait (``O_NONBLOCK``), so a named pipe
    with no writer is refused at once instead of hanging. Raises ``FileNotFoundError``,
    ``IsADirectoryError``, ``PermissionError``, ``NotARegularFile`` or another ``OSError``."""
    fd = os.open(Path(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(f"{path}: is a folder, not a file")
        if not stat.S_ISREG(mode):
            raise NotARegularFile(path, file_kind(mode))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike[str], limit: int) -> bytes:
    """The whole of a small user file (an experiment, a sweep): ``open_regular``, then at most
    ``limit`` bytes; a longer file raises ``OSError`` saying so, without reading the rest."""
    with open_regular(path) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise OSError(f"larger than the {limit:,} bytes allowed")
    return data
