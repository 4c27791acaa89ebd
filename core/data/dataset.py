"""The ``Dataset`` every source produces, the errors a load can end with, and the checks the
file importers share.

Whatever the source, the result is one :class:`Dataset`: ``X`` float32 of shape (n, d) and
``y`` either int64 class labels 0..k-1 (classification) or float32 targets of shape (n, k)
(regression). The task follows from the data, and the output layer follows from the task.

Files are user input, so every problem with one raises :class:`DatasetError` with a single
line naming the file, what is wrong and what is allowed. The helpers at the end
(:func:`require_file`, :func:`features_to_float32`, :func:`classes_from_values`) are those
rules, written once for every importer.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.engine import validation as check

__all__ = [
    "Dataset",
    "DatasetError",
    "LoadCancelled",
    "Progress",
    "check_data_size",
    "classes_from_values",
    "features_to_float32",
    "first_line",
    "require_file",
]

MAX_VALUES = 50_000_000  # values (rows × columns) a data set may hold: 200 MB as float32
MAX_FILE_CLASSES = 1000  # for files: more distinct labels than that is almost surely a regression target

TASKS = ("classification", "regression")

Progress = Callable[[float], "bool | None"]
"""``progress(fraction)``: called while a file is read with the fraction of it read so far
(0 < fraction <= 1, increasing); returning ``False`` stops the load with :class:`LoadCancelled`
(``True`` or ``None`` continue)."""


class DatasetError(ValueError):
    """A data file or dataset request that cannot be used; the message is one line for the user."""


class LoadCancelled(Exception):
    """A file load stopped because its progress callback returned ``False``.

    Not a :class:`DatasetError`: nothing is wrong with the file, and code that reports bad
    files must not show a cancellation as one.
    """


# --------------------------------------------------------------------------------------------
# The dataset itself


@dataclass(eq=False)
class Dataset:
    """Features and targets, plus what the GUI and the model builder need to know about them.

    ``y`` is int64 of shape (n,) holding labels 0..n_classes-1 for classification, float32 of
    shape (n, k) for regression (``n_classes`` is then 0 and ``class_names`` empty).
    ``image_shape`` is set when each row of ``X`` is a flattened image (digits: (8, 8)); the
    pixel-shift augmentation and the GUI's preview use it.
    """

    X: np.ndarray
    y: np.ndarray
    task: str
    n_classes: int
    feature_names: list[str]
    class_names: list[str]
    image_shape: tuple[int, int] | None
    name: str
    # Rows of a published test set (the book's data sets keep theirs): the trainer makes them the
    # test split and cuts the validation split from the other rows. ``None``: no fixed split.
    test_rows: np.ndarray | None = None

    def __post_init__(self) -> None:
        # Invariants, so that every consumer can rely on dtypes and shapes without re-checking.
        if self.task not in TASKS:
            raise ValueError(f"task: must be one of {', '.join(TASKS)}, got {self.task!r}")
        if not isinstance(self.X, np.ndarray) or self.X.ndim != 2 or self.X.dtype != np.float32:
            raise ValueError(f"X: must be a 2-D float32 array, got {_describe(self.X)}")
        if not isinstance(self.y, np.ndarray) or len(self.y) != len(self.X):
            raise ValueError(f"y: must be an array with {len(self.X)} rows like X, got {_describe(self.y)}")
        if self.task == "classification":
            if self.y.ndim != 1 or self.y.dtype != np.int64:
                raise ValueError(f"y: classification labels must be 1-D int64, got {_describe(self.y)}")
            if self.n_classes < 2 or len(self.class_names) != self.n_classes:
                raise ValueError(
                    f"n_classes: must be >= 2 and match class_names ({len(self.class_names)}), "
                    f"got {self.n_classes}")
        else:
            if self.y.ndim != 2 or self.y.dtype != np.float32:
                raise ValueError(f"y: regression targets must be 2-D float32, got {_describe(self.y)}")
            if self.n_classes != 0 or self.class_names:
                raise ValueError(f"n_classes: must be 0 for regression, got {self.n_classes}")
        if len(self.feature_names) != self.X.shape[1]:
            raise ValueError(
                f"feature_names: must name all {self.X.shape[1]} features, got {len(self.feature_names)}")
        if self.test_rows is not None:
            rows = self.test_rows
            if (not isinstance(rows, np.ndarray) or rows.ndim != 1 or rows.dtype != np.int64
                    or (len(rows) and (rows[0] < 0 or rows[-1] >= len(self.X) or np.any(np.diff(rows) <= 0)))):
                raise ValueError(f"test_rows: must be increasing int64 row indices below {len(self.X)}, got "
                                 f"{_describe(rows)}")
        if self.image_shape is not None:
            self.image_shape = (int(self.image_shape[0]), int(self.image_shape[1]))
            if self.image_shape[0] * self.image_shape[1] != self.X.shape[1]:
                raise ValueError(
                    f"image_shape: must multiply to the {self.X.shape[1]} features, got {self.image_shape}")

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def n_targets(self) -> int:
        """Output width for regression (columns of ``y``); 0 for classification."""
        return int(self.y.shape[1]) if self.task == "regression" else 0

    def summary(self) -> dict[str, Any]:
        """Plain-JSON facts for the GUI's preview: shape, task, classes and their counts."""
        info: dict[str, Any] = {
            "name": self.name,
            "task": self.task,
            "shape": [self.n_samples, self.n_features],
            "n_samples": self.n_samples,
            "n_features": self.n_features,
            "image_shape": list(self.image_shape) if self.image_shape else None,
            "n_classes": self.n_classes,
            "classes": list(self.class_names),
        }
        if self.task == "classification":
            counts = np.bincount(self.y, minlength=self.n_classes)
            info["class_counts"] = [int(c) for c in counts]
        else:
            info["n_targets"] = self.n_targets
            info["target_mean"] = [float(v) for v in self.y.mean(axis=0, dtype=np.float64)]
            info["target_std"] = [float(v) for v in self.y.std(axis=0, dtype=np.float64)]
        if self.test_rows is not None:          # a published test set: the test split as it is
            info["test_rows"] = int(len(self.test_rows))
            if self.task == "classification":
                test = np.bincount(self.y[self.test_rows], minlength=self.n_classes)
                info["test_class_counts"] = [int(c) for c in test]
        return info

    def __repr__(self) -> str:
        what = f"{self.n_classes} classes" if self.task == "classification" else f"{self.n_targets} targets"
        return f"Dataset({self.name!r}, {self.n_samples}×{self.n_features}, {self.task}, {what})"


def _describe(a: object) -> str:
    if isinstance(a, np.ndarray):
        return f"shape {a.shape} dtype {a.dtype}"
    return type(a).__name__


# --------------------------------------------------------------------------------------------
# Checks shared by the file importers


def require_file(path: Path) -> None:
    """Refuse a path that is missing or not a regular file: a named pipe would block the load
    forever and a device such as /dev/zero never ends."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({check.quote(exc.strerror or str(exc))})") from None
    if not stat.S_ISREG(mode):
        raise DatasetError(f"{path}: not a file (it is {check.file_kind(mode)}); only regular files are read")


def check_data_size(path: Path, n_rows: int, n_columns: int, what: str = "rows") -> None:
    """Refuse data larger than a desktop training loop is meant for, before it is allocated:
    at most ``MAX_VALUES`` values (rows × columns; 200 MB as float32)."""
    if n_rows * n_columns > MAX_VALUES:
        raise DatasetError(f"{path}: {n_rows:,} {what} × {n_columns:,} columns is too much data; at most "
                           f"{MAX_VALUES:,} values (rows × columns) are loaded")


def features_to_float32(path: Path, X: np.ndarray, names: Sequence[str], row_offset: int = 1) -> np.ndarray:
    """Cast numeric features to float32, refusing NaN, infinities and values float32 cannot hold."""
    finite = np.isfinite(X)
    if not finite.all():
        j = int(np.flatnonzero(~finite.all(axis=0))[0])
        i = int(np.flatnonzero(~finite[:, j])[0])
        what = "NaN" if np.isnan(X[i, j]) else "an infinite value"
        raise DatasetError(f"{path}: column {names[j]!r} contains {what} (first at data row "
                           f"{i + row_offset}); only finite numbers are allowed")
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(X, dtype=np.float32)
    if not np.isfinite(out).all():
        j = int(np.flatnonzero(~np.isfinite(out).all(axis=0))[0])
        raise DatasetError(f"{path}: column {names[j]!r} has values beyond the float32 range "
                           f"(±{np.finfo(np.float32).max:.3g}); rescale the data")
    return out


def classes_from_values(path: Path, values: np.ndarray, what: str) -> tuple[np.ndarray, list[str]]:
    """Labels 0..k-1 from any 1-D array of class values (sorted order), and their names."""
    uniques, labels = np.unique(values, return_inverse=True)
    if len(uniques) < 2:
        only = f" ({uniques[0]!s})" if len(uniques) else ""
        raise DatasetError(f"{path}: {what} has a single class{only}; classification needs at least 2")
    if len(uniques) > MAX_FILE_CLASSES:
        raise DatasetError(f"{path}: {what} has {len(uniques)} distinct class labels; at most "
                           f"{MAX_FILE_CLASSES} classes are allowed (use decimal values for a "
                           f"regression target)")
    return labels.astype(np.int64).reshape(-1), [str(u) for u in uniques]


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (a library's error, quoted in a one-line DatasetError)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

