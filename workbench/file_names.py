"""File names the window proposes and completes: what a save dialog starts at, and the extension
added to what the user typed."""

from __future__ import annotations

import re
from pathlib import Path

#: Characters some file systems refuse in a name (Windows refuses all of these; ":" also confuses
#: macOS's Finder), and control characters.
_NOT_IN_FILE_NAMES = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')
#: A proposed name is cut to at most this many characters, at a word.
MAX_PROPOSED = 60


def with_extension(path: Path, extension: str) -> Path:
    """``path`` ending in ``extension`` (".gwb"): added to the name, never put in place of a dot the
    user typed (``lr0.01`` becomes ``lr0.01.gwb``, where ``with_suffix`` would give ``lr0.gwb``)."""
    return path if path.suffix.lower() == extension.lower() else path.with_name(path.name + extension)


def proposed_name(name: str, fallback: str = "experiment") -> str:
    """A file name (no extension) for an experiment called ``name``: the characters file systems
    refuse become " - " or a space, and a long name is cut at a word (at most ``MAX_PROPOSED``)."""
    text = _NOT_IN_FILE_NAMES.sub(lambda m: " - " if ":" in m.group() else " ", name)
    text = re.sub(r"\s+", " ", text).strip(" .-")
    if len(text) > MAX_PROPOSED:
        head = text[:MAX_PROPOSED + 1]
        cut = head.rsplit(" ", 1)[0] if " " in head else ""
        text = (cut if len(cut) >= MAX_PROPOSED // 2 else text[:MAX_PROPOSED]).rstrip(" ,.;-+")
    return text or fallback
