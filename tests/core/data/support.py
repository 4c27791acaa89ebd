"""What the tests of core.data share: seeded generators, the one-line DatasetError check, file writers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.data import DatasetError

SYNTHETIC = ["spirals", "moons", "circles", "blobs", "xor"]
BUNDLED = ["digits", "iris", "wine", "breast_cancer"]
AUXILIARY = ["corrupted"]

GOOD_X = np.ones((4, 2))
GOOD_Y = np.array([0, 1, 0, 1])


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def assert_error(func, *args, words: list[str], **kwargs) -> str:
    """``func`` raises a one-line DatasetError containing every one of ``words``."""
    with pytest.raises(DatasetError) as info:
        func(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return message


def assert_global_state_untouched(action) -> None:
    # The legacy global state is exactly what must stay untouched, so it is read here on purpose.
    before = np.random.get_state()  # noqa: NPY002
    action()
    after = np.random.get_state()  # noqa: NPY002
    assert before[0] == after[0] and before[2:] == after[2:]
    np.testing.assert_array_equal(before[1], after[1])



def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path


def write_npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path
