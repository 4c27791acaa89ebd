"""Datasets: the toy problems of the playground, small real data sets, and the user's own files.

Every experiment starts from ``data.source``. A source is either a registered
:class:`DatasetSource` (``DATASETS``: synthetic generators written in NumPy that draw only
from the ``numpy.random.Generator`` they are handed, and small real data sets read from the
files scikit-learn ships in its wheel), or a file: ``"npz"`` (arrays ``X`` and ``y``) or
``"csv"`` (a header row and a named target column). Whatever the source, the result is one
:class:`Dataset`: ``X`` float32 of shape (n, d) and ``y`` either int64 class labels 0..k-1
(classification) or float32 targets of shape (n, k) (regression). The task follows from the
data, and the output layer follows from the task.

Files are user input, so every problem with one raises :class:`DatasetError` with a single
line naming the file, what is wrong and what is allowed. Nothing is ever unpickled.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import math
import stat
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from core.engine import validation as check
from core.engine.component import Component
from core.engine.registry import Registry

__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetError",
    "DatasetSource",
    "LoadCancelled",
    "Progress",
    "dataset_names",
    "load_csv",
    "load_dataset",
    "load_npz",
    "read_csv_header",
]

# Refuse absurd sizes before allocating anything: a million 2-D points is already far more
# than a desktop training loop wants, and a generated X never exceeds 200 MB of float32.
MAX_SAMPLES = 1_000_000
MAX_VALUES = 50_000_000
MAX_CLASSES = 20  # for the generators: more arms or blobs than that is just noise
MAX_FILE_CLASSES = 1000  # for files: more distinct labels than that is almost surely a regression target
FILE_SOURCES = ("npz", "csv")
MAX_HEADER_CHARS = 1_000_000  # a CSV header row longer than this is not a list of column names

TASKS = ("classification", "regression")

# A large CSV is handed to the parser in blocks of about this many bytes; the progress callback
# runs between blocks, so a stop request takes effect within one block (~10 ms of parsing).
CSV_BLOCK_BYTES = 2**20
CSV_DIAGNOSE_ROWS = 20_000  # rows between stop checks while looking for a bad cell (after a parse error)

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
        return info

    def __repr__(self) -> str:
        what = f"{self.n_classes} classes" if self.task == "classification" else f"{self.n_targets} targets"
        return f"Dataset({self.name!r}, {self.n_samples}×{self.n_features}, {self.task}, {what})"


def _describe(a: object) -> str:
    if isinstance(a, np.ndarray):
        return f"shape {a.shape} dtype {a.dtype}"
    return type(a).__name__


# --------------------------------------------------------------------------------------------
# Registered sources

DATASETS: Registry[type[DatasetSource]] = Registry("dataset")


class DatasetSource(Component):
    """A named way of producing a :class:`Dataset`; hyperparameters are ``__init__`` keywords."""

    family: ClassVar[str] = "dataset"
    summary: ClassVar[str] = ""  # one line for the tooltip
    kind: ClassVar[str] = ""  # "synthetic" or "bundled"

    def load(self, rng: np.random.Generator) -> Dataset:
        raise NotImplementedError


def _check_size(n_samples: Any, n_classes: int = 2) -> int:
    n = check.positive_int("n_samples", n_samples, high=MAX_SAMPLES)
    if n < n_classes:
        raise ValueError(f"n_samples: must be >= n_classes ({n_classes}), got {n_samples!r}")
    return n


def _balanced_labels(n: int, k: int) -> np.ndarray:
    """``n`` labels, classes as equal in size as possible (the first n % k get one more)."""
    counts = np.full(k, n // k)
    counts[: n % k] += 1
    return np.repeat(np.arange(k, dtype=np.int64), counts)


def _synthetic(name: str, X: np.ndarray, y: np.ndarray, class_names: list[str],
               rng: np.random.Generator) -> Dataset:
    # Generated class by class, then shuffled so that no consumer sees the classes in blocks.
    order = rng.permutation(len(y))
    X = np.ascontiguousarray(X[order], dtype=np.float32)
    return Dataset(X=X, y=y[order], task="classification", n_classes=len(class_names),
                   feature_names=[f"x{j + 1}" for j in range(X.shape[1])], class_names=class_names,
                   image_shape=None, name=name)


@DATASETS.register("spirals")
class Spirals(DatasetSource):
    """Interleaved Archimedean spirals, one arm per class (the classic deep-network teaser).

    A point at fraction ``u`` along arm ``c`` sits at radius ``u`` and angle
    ``2π·turns·u + 2π·c/n_classes + noise·ε`` with ε ~ N(0, 1). The arms are 2π/n_classes
    radians apart at every radius, so ``noise`` (radians) means the same for any ``turns``.
    """

    summary = "Interleaved spiral arms, one per class; hard for shallow nets (noise = angle jitter, radians)"
    kind = "synthetic"

    def __init__(self, n_samples: int = 1000, n_classes: int = 2, noise: float = 0.2,
                 turns: float = 1.5) -> None:
        self.n_classes = check.integer("n_classes", n_classes, low=2, high=MAX_CLASSES)
        self.n_samples = _check_size(n_samples, self.n_classes)
        self.noise = check.non_negative("noise", noise, high=100.0)
        self.turns = check.positive("turns", turns, high=20.0)

    def load(self, rng: np.random.Generator) -> Dataset:
        n, k = self.n_samples, self.n_classes
        y = _balanced_labels(n, k)
        u = rng.uniform(0.0, 1.0, n)
        theta = 2 * np.pi * (self.turns * u + y / k) + self.noise * rng.standard_normal(n)
        X = np.column_stack([u * np.cos(theta), u * np.sin(theta)])
        return _synthetic(self.name, X, y, [f"arm {c}" for c in range(k)], rng)


@DATASETS.register("moons")
class Moons(DatasetSource):
    """Two interleaving half circles: the upper one centred at (0, 0), the lower at (1, 0.5).

    Gaussian noise of standard deviation ``noise`` is added to both coordinates.
    """

    summary = "Two interleaving half moons; needs one bent boundary (noise = Gaussian std)"
    kind = "synthetic"

    def __init__(self, n_samples: int = 1000, noise: float = 0.1) -> None:
        self.n_samples = _check_size(n_samples)
        self.noise = check.non_negative("noise", noise, high=100.0)

    def load(self, rng: np.random.Generator) -> Dataset:
        y = _balanced_labels(self.n_samples, 2)
        t = rng.uniform(0.0, np.pi, self.n_samples)
        lower = y == 1
        X = np.column_stack([np.where(lower, 1.0 - np.cos(t), np.cos(t)),
                             np.where(lower, 0.5 - np.sin(t), np.sin(t))])
        X += self.noise * rng.standard_normal(X.shape)
        return _synthetic(self.name, X, y, ["upper", "lower"], rng)


@DATASETS.register("circles")
class Circles(DatasetSource):
    """A circle of radius ``factor`` inside the unit circle, plus Gaussian noise of std ``noise``."""

    summary = "A small circle inside a large one; not linearly separable (factor = inner/outer radius)"
    kind = "synthetic"

    def __init__(self, n_samples: int = 1000, noise: float = 0.05, factor: float = 0.5) -> None:
        self.n_samples = _check_size(n_samples)
        self.noise = check.non_negative("noise", noise, high=100.0)
        self.factor = check.number("factor", factor, low=0.0, high=1.0, high_inclusive=False)

    def load(self, rng: np.random.Generator) -> Dataset:
        y = _balanced_labels(self.n_samples, 2)
        t = rng.uniform(0.0, 2 * np.pi, self.n_samples)
        radius = np.where(y == 1, self.factor, 1.0)
        X = np.column_stack([radius * np.cos(t), radius * np.sin(t)])
        X += self.noise * rng.standard_normal(X.shape)
        return _synthetic(self.name, X, y, ["outer", "inner"], rng)


@DATASETS.register("blobs")
class Blobs(DatasetSource):
    """Isotropic Gaussian clusters, one per class, centres drawn uniformly in [-10, 10]^d."""

    summary = "Gaussian clusters, one per class; nearly linearly separable (works in any dimension)"
    kind = "synthetic"

    def __init__(self, n_samples: int = 1000, n_classes: int = 3, cluster_std: float = 1.0,
                 n_features: int = 2) -> None:
        self.n_classes = check.integer("n_classes", n_classes, low=2, high=MAX_CLASSES)
        self.n_samples = _check_size(n_samples, self.n_classes)
        self.cluster_std = check.positive("cluster_std", cluster_std, high=1000.0)
        self.n_features = check.positive_int("n_features", n_features, high=1000)
        if self.n_samples * self.n_features > MAX_VALUES:
            raise ValueError(f"n_features: n_samples × n_features must be <= {MAX_VALUES}, "
                             f"got {self.n_samples} × {self.n_features}")

    def load(self, rng: np.random.Generator) -> Dataset:
        n, k, d = self.n_samples, self.n_classes, self.n_features
        y = _balanced_labels(n, k)
        centers = rng.uniform(-10.0, 10.0, (k, d)).astype(np.float32)
        # float32 straight away: this is the one generator whose X can be large.
        X = rng.standard_normal((n, d), dtype=np.float32)
        X *= np.float32(self.cluster_std)
        X += centers[y]
        return _synthetic(self.name, X, y, [f"blob {c}" for c in range(k)], rng)


@DATASETS.register("xor")
class Xor(DatasetSource):
    """Points uniform in the square [-1, 1]², labelled by whether x1 and x2 have the same sign.

    The pattern a single perceptron cannot learn. Gaussian noise of std ``noise`` is added
    after labelling, so points near the axes can end up in the other class's quadrant.
    """

    summary = "XOR of the signs of x1 and x2 (four quadrants); impossible without a hidden layer"
    kind = "synthetic"

    def __init__(self, n_samples: int = 1000, noise: float = 0.1) -> None:
        self.n_samples = _check_size(n_samples)
        self.noise = check.non_negative("noise", noise, high=100.0)

    def load(self, rng: np.random.Generator) -> Dataset:
        n = self.n_samples
        y = _balanced_labels(n, 2)
        magnitude = rng.uniform(0.0, 1.0, (n, 2))
        sign = rng.choice(np.array([-1.0, 1.0]), size=n)
        X = magnitude * np.column_stack([sign, np.where(y == 0, sign, -sign)])
        X += self.noise * rng.standard_normal(X.shape)
        return _synthetic(self.name, X, y, ["same sign", "opposite sign"], rng)


class _Bundled(DatasetSource):
    """A small real data set read from scikit-learn's bundled files (no network).

    ``classes`` keeps only the listed classes (given by label or by name), relabelled
    0..k-1 in the order listed; ``class_names`` keep the original names. For the book's
    transfer-learning scenario: train on digits ``[0, 1, 2, 3, 4]``, reuse for ``[5, 6, 7, 8, 9]``.
    """

    kind = "bundled"
    _loader: ClassVar[str] = ""  # function name in sklearn.datasets
    _class_names: ClassVar[tuple[str, ...]] = ()  # as scikit-learn names them, in label order
    _image_shape: ClassVar[tuple[int, int] | None] = None

    def __init__(self, classes: list | None = None) -> None:
        self._keep = None if classes is None else self._resolve(classes)
        self.classes = None if classes is None else list(classes)

    @classmethod
    def _resolve(cls, classes: Any) -> list[int]:
        names = cls._class_names
        numbered = all(name == str(i) for i, name in enumerate(names))
        allowed = (f"0..{len(names) - 1}" if numbered else
                   f"0..{len(names) - 1} or {', '.join(repr(n) for n in names)}")
        if not isinstance(classes, (list, tuple)):
            raise ValueError(f"classes: must be null or a list of classes ({allowed}), got {check.quote(classes)}")
        labels = []
        for c in classes:
            if isinstance(c, int) and not isinstance(c, bool) and 0 <= c < len(names):
                labels.append(c)
            elif isinstance(c, str) and c in names:
                labels.append(names.index(c))
            else:
                raise ValueError(f"classes: unknown class {check.quote(c)}; allowed: {allowed}")
        if len(set(labels)) != len(labels):
            raise ValueError(f"classes: must not repeat a class, got {check.quote(classes)}")
        if len(labels) < 2:
            raise ValueError(f"classes: must list at least 2 classes, got {check.quote(classes)}")
        return labels

    def load(self, rng: np.random.Generator) -> Dataset:
        try:
            from sklearn import datasets as skdata  # lazily: only these four sources need it
        except ImportError as exc:
            raise DatasetError(f"{self.name}: the bundled data sets need scikit-learn "
                               f"(pip install scikit-learn): {exc}") from None
        bunch = getattr(skdata, self._loader)()
        X, y = np.asarray(bunch.data), np.asarray(bunch.target, dtype=np.int64)
        names = list(self._class_names)
        if self._keep is not None:
            lut = np.full(len(names), -1, dtype=np.int64)
            lut[self._keep] = np.arange(len(self._keep))
            mask = lut[y] >= 0
            X, y = X[mask], lut[y[mask]]
            names = [names[c] for c in self._keep]
        return Dataset(X=np.ascontiguousarray(X, dtype=np.float32), y=y, task="classification",
                       n_classes=len(names), feature_names=[str(f) for f in bunch.feature_names],
                       class_names=names, image_shape=self._image_shape, name=self.name)


@DATASETS.register("digits")
class Digits(_Bundled):
    __doc__ = ("Handwritten digits 0-9 as 8×8 grey images (1,797 samples, 64 features, pixels 0-16).\n\n"
               + (_Bundled.__doc__ or ""))
    summary = "Handwritten digits, 8×8 pixels, 10 classes (1,797 images); pick classes for transfer learning"
    _loader = "load_digits"
    _class_names = tuple(str(d) for d in range(10))
    _image_shape = (8, 8)


@DATASETS.register("iris")
class Iris(_Bundled):
    __doc__ = "Fisher's iris flowers: 150 samples, 4 measurements, 3 species.\n\n" + (_Bundled.__doc__ or "")
    summary = "Iris flowers: 4 measurements, 3 species (150 samples)"
    _loader = "load_iris"
    _class_names = ("setosa", "versicolor", "virginica")


@DATASETS.register("wine")
class Wine(_Bundled):
    __doc__ = "Wine recognition: 178 samples, 13 chemical measurements, 3 cultivars.\n\n" + (
        _Bundled.__doc__ or "")
    summary = "Wines: 13 chemical measurements, 3 cultivars (178 samples); features on very different scales"
    _loader = "load_wine"
    _class_names = ("class_0", "class_1", "class_2")


@DATASETS.register("breast_cancer")
class BreastCancer(_Bundled):
    __doc__ = "Wisconsin breast cancer: 569 samples, 30 cell-nucleus features, 2 classes.\n\n" + (
        _Bundled.__doc__ or "")
    summary = "Breast cancer diagnosis: 30 features, malignant vs benign (569 samples)"
    _loader = "load_breast_cancer"
    _class_names = ("malignant", "benign")


# --------------------------------------------------------------------------------------------
# An auxiliary task for unlabeled data

CORRUPTIONS = ("swap", "noise")


@DATASETS.register("corrupted")
class Corrupted(DatasetSource):
    """Real versus corrupted examples of another dataset: the book's recipe for pretraining
    when labels are scarce ("generate bad records from good ones and train a model to tell
    them apart", chapter 11, "Pretraining on an Auxiliary Task").

    Labels are ignored: every row ``x`` of the ``base`` dataset (built with ``base_params``)
    is kept as *real* (class 1) and one corrupted copy of it is added (class 0). In each
    copy a random ``fraction`` of the features is corrupted (at least one):

    * ``swap``  — replaced by the same feature of another random row ("swap noise"): every
      feature keeps its distribution, only the relations between features break, so telling
      real from corrupted needs what a good lower layer knows (for digits: strokes);
    * ``noise`` — Gaussian noise of ``stddev`` times the feature's standard deviation added.

    Lower layers pretrained on it are then reused (``model.transfer``) for the real task.
    """

    summary = ("Real vs corrupted rows of another dataset (labels unused): pretrain lower layers on "
               "unlabeled data, then reuse them")
    kind = "auxiliary"

    def __init__(self, base: str = "digits", base_params: dict | None = None, corruption: str = "swap",
                 fraction: float = 0.3, stddev: float = 1.0) -> None:
        if base == "corrupted" or base not in DATASETS:
            names = ", ".join(n for n in DATASETS.names() if n != "corrupted")
            raise ValueError(f"base: must be one of {names}, got {base!r}")
        if base_params is not None and not isinstance(base_params, Mapping):
            raise ValueError(f"base_params: must be null or an object of {base!r}'s parameters, got {base_params!r}")
        try:
            self._base = DATASETS.get(base).from_config(base_params or {})
        except ValueError as exc:
            raise ValueError(f"base_params: {exc}") from None
        self.base = base
        self.base_params = None if base_params is None else dict(base_params)
        self.corruption = check.choice("corruption", corruption, CORRUPTIONS)
        self.fraction = check.number("fraction", fraction, low=0.0, high=1.0, low_inclusive=False)
        self.stddev = check.positive("stddev", stddev, high=100.0)

    def load(self, rng: np.random.Generator) -> Dataset:
        real = self._base.load(rng)  # type: ignore[attr-defined]
        X = real.X
        n, d = X.shape
        if 2 * n * d > MAX_VALUES:
            raise DatasetError(f"base: {real.name} is too large to double ({n}×{d}); at most {MAX_VALUES:,} values")
        mask = rng.random((n, d)) < self.fraction
        untouched = ~mask.any(axis=1)
        mask[np.flatnonzero(untouched), rng.integers(0, d, size=int(untouched.sum()))] = True
        if self.corruption == "swap":
            # another row than its own (a random offset), so a swap never copies a value onto itself
            donors = (np.arange(n)[:, None] + rng.integers(1, max(n, 2), size=(n, d))) % n
            corrupted = np.where(mask, X[donors, np.arange(d)], X)
        else:
            std = X.std(axis=0, dtype=np.float64)
            scale = np.where(std > 0, std, 1.0) * self.stddev
            corrupted = X + mask * (rng.standard_normal((n, d)) * scale)
        order = rng.permutation(2 * n)
        both = np.concatenate([X, corrupted.astype(np.float32)])[order]
        y = np.concatenate([np.ones(n, np.int64), np.zeros(n, np.int64)])[order]
        return Dataset(X=np.ascontiguousarray(both, dtype=np.float32), y=y, task="classification", n_classes=2,
                       feature_names=list(real.feature_names), class_names=["corrupted", "real"],
                       image_shape=real.image_shape, name=f"{self.name}({real.name})")


# --------------------------------------------------------------------------------------------
# Files


def _require_file(path: Path) -> None:
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


def _check_data_size(path: Path, n_rows: int, n_columns: int, what: str = "rows") -> None:
    """Refuse data larger than a desktop training loop is meant for, before it is allocated:
    at most ``MAX_VALUES`` values (rows × columns; 200 MB as float32)."""
    if n_rows * n_columns > MAX_VALUES:
        raise DatasetError(f"{path}: {n_rows:,} {what} × {n_columns:,} columns is too much data; at most "
                           f"{MAX_VALUES:,} values (rows × columns) are loaded")


def _features_to_float32(path: Path, X: np.ndarray, names: Sequence[str], row_offset: int = 1) -> np.ndarray:
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


def _classes_from_values(path: Path, values: np.ndarray, what: str) -> tuple[np.ndarray, list[str]]:
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


def load_npz(path: Path, progress: Progress | None = None) -> Dataset:
    """Read ``X`` (n, d) and ``y`` from a NumPy ``.npz`` archive, without unpickling.

    ``X`` must be numeric. The dtype of ``y`` decides the task: integer, boolean or string
    labels make a classification problem (relabelled 0..k-1 in sorted order; ``class_names``
    keep the original values), float ``y`` of shape (n,) or (n, k) a regression problem —
    even when the floats happen to be whole numbers.

    The arrays are read in blocks of ``CSV_BLOCK_BYTES`` (the header parsed by
    ``numpy.lib.format``, never unpickled), and ``progress`` (see :data:`Progress`) is called
    after each block with the share of the arrays' bytes read so far, so a stop request ends
    even a large load within one block.
    """
    path = Path(path)
    _require_file(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path}: not a valid .npz archive ({_first_line(exc)}); "
                           f"expected a NumPy .npz file with arrays X and y") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DatasetError(f"{path}: is a single .npy array, not an .npz archive; "
                           f"save both arrays with numpy.savez(path, X=X, y=y)")
    with archive:
        for key in ("X", "y"):
            if key not in archive.files:
                present = ", ".join(archive.files) or "none"
                raise DatasetError(f"{path}: missing array {key!r}; the archive holds: {present} "
                                   f"(expected arrays X and y)")
        arrays = _read_npz_arrays(path, archive, ("X", "y"), progress)
    X, y = arrays["X"], arrays["y"]

    if X.ndim != 2:
        raise DatasetError(f"{path}: X must be 2-D (samples × features), got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise DatasetError(f"{path}: X has dtype {X.dtype}; only numeric (integer or float) "
                           f"features are allowed")
    if y.ndim not in (1, 2):
        raise DatasetError(f"{path}: y must be 1-D labels or 2-D (samples × targets), got shape {y.shape}")
    if len(X) != len(y):
        raise DatasetError(f"{path}: X has {len(X)} rows but y has {len(y)}; they must match")
    if X.shape[0] == 0 or X.shape[1] == 0 or y.size == 0:
        raise DatasetError(f"{path}: empty data (X shape {X.shape}, y shape {y.shape}); "
                           f"at least 2 samples and 1 feature are needed")

    feature_names = [f"x{j + 1}" for j in range(X.shape[1])]
    X32 = _features_to_float32(path, X.astype(np.float64, copy=False), feature_names)

    if y.dtype.kind in "biuUS":
        if y.ndim == 2 and y.shape[1] != 1:
            raise DatasetError(f"{path}: class labels y must be 1-D, got shape {y.shape} "
                               f"(use float y for multi-output regression)")
        values = y.reshape(-1)
        if values.dtype.kind == "S":
            try:
                values = np.char.decode(values, "utf-8")
            except UnicodeDecodeError:
                raise DatasetError(f"{path}: y holds bytes that are not UTF-8 text") from None
        labels, class_names = _classes_from_values(path, values, "y")
        return Dataset(X=X32, y=labels, task="classification", n_classes=len(class_names),
                       feature_names=feature_names, class_names=class_names, image_shape=None,
                       name=path.stem)
    if y.dtype.kind == "f":
        y2 = y.reshape(len(y), -1).astype(np.float64, copy=False)
        names = [f"y[:, {j}]" for j in range(y2.shape[1])] if y.ndim == 2 else ["y"]
        targets = _features_to_float32(path, y2, names)
        return Dataset(X=X32, y=targets, task="regression", n_classes=0, feature_names=feature_names,
                       class_names=[], image_shape=None, name=path.stem)
    raise DatasetError(f"{path}: y has dtype {y.dtype}; allowed: integer, boolean or string class labels, "
                       f"or float regression targets")


def _read_npz_arrays(path: Path, archive: np.lib.npyio.NpzFile, keys: tuple[str, ...],
                     progress: Progress | None) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of an open archive, each read block by block into its final buffer.

    Every header is read first, so the progress fractions are of all the arrays' bytes."""
    key = keys[0]
    try:
        with contextlib.ExitStack() as stack:
            members = {}
            for key in keys:
                f = stack.enter_context(archive.zip.open(f"{key}.npy"))
                members[key] = (f, *_npy_header(path, key, f))
                shape = members[key][1]
                _check_data_size(path, shape[0] if shape else 1, math.prod(shape[1:]), f"rows of {key}")
            total = max(sum(dtype.itemsize * math.prod(shape) for _, shape, _, dtype in members.values()), 1)
            done = reported = 0
            arrays = {}
            for key, (f, shape, fortran_order, dtype) in members.items():
                raw = np.empty(dtype.itemsize * math.prod(shape), dtype=np.uint8)
                view = memoryview(raw)
                for lo in range(0, raw.size, CSV_BLOCK_BYTES):
                    hi = min(lo + CSV_BLOCK_BYTES, raw.size)
                    while lo < hi:
                        got = f.readinto(view[lo:hi])
                        if not got:
                            raise DatasetError(f"{path}: cannot read array {key!r} (the file ends "
                                               f"{raw.size - lo:,} bytes early)")
                        lo += got
                        done += got
                    reported += 1
                    if progress is not None and progress(done / total) is False:
                        raise LoadCancelled(f"{path}: loading cancelled")
                arrays[key] = raw.view(dtype).reshape(shape, order="F" if fortran_order else "C")
            if progress is not None and not reported and progress(1.0) is False:  # empty arrays only
                raise LoadCancelled(f"{path}: loading cancelled")
            return arrays
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError) as exc:
        raise DatasetError(f"{path}: cannot read array {key!r} ({_first_line(exc)})") from None


def _npy_header(path: Path, key: str, f: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, Fortran order, dtype) from a ``.npy`` member's header, refusing object arrays
    (which only pickle could read)."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported (1.0 and 2.0 are)")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path}: cannot read array {key!r} ({_first_line(exc)})") from None
    if dtype.hasobject:
        raise DatasetError(f"{path}: array {key!r} is an object array; only numeric "
                           f"(or, for y, string) arrays are allowed")
    return tuple(int(n) for n in shape), bool(fortran_order), dtype


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_csv_header(path: Path) -> tuple[list[str], str]:
    """The column names of a CSV file and its delimiter, from its first line only (cheap for any size).

    Raises :class:`DatasetError` for a missing file, a file that is not UTF-8, an empty or
    numeric first line, and unnamed or repeated column names; the delimiter is ``","`` unless
    the header uses tabs or semicolons instead.
    """
    path = Path(path)
    _require_file(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            first = f.readline(MAX_HEADER_CHARS + 1)
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not UTF-8 text; save the CSV file as UTF-8") from None
    except OSError as exc:  # /proc/self/mem and the like are "regular" files that fail to read
        raise DatasetError(f"{path}: cannot be read ({check.quote(exc.strerror or str(exc))})") from None
    if len(first) > MAX_HEADER_CHARS:
        raise DatasetError(f"{path}: the header row is longer than {MAX_HEADER_CHARS:,} characters")
    if not first.strip():
        raise DatasetError(f"{path}: the file is empty; expected a header row with column names, "
                           f"then data rows")
    # Commas unless the header clearly uses semicolons or tabs (spreadsheets in some locales).
    delimiter = "," if "," in first else "\t" if "\t" in first else ";" if ";" in first else ","
    header = [name.strip() for name in next(csv.reader([first], delimiter=delimiter))]
    for j, name in enumerate(header):
        if not name:
            raise DatasetError(f"{path}: column {j + 1} of the header row has no name; "
                               f"every column needs one")
    if all(_is_number(name) for name in header):
        raise DatasetError(f"{path}: the first row holds numbers, not column names; "
                           f"a header row with column names is required")
    seen = set()
    for name in header:
        if name in seen:
            raise DatasetError(f"{path}: column name {check.quote(name)} appears twice in the header; "
                               f"names must be unique")
        seen.add(name)
    return header, delimiter


def _diagnose_csv(path: Path, header: list[str], delimiter: str, target: int,
                  wanted: Callable[[], bool] | None = None) -> None:
    """Slow path, only after the fast parser failed: find the first bad cell and say where.

    A Python loop over the rows: on a large file with a late error it takes a while, so
    ``wanted()`` is asked every ``CSV_DIAGNOSE_ROWS`` rows and ``False`` stops it (LoadCancelled).
    """
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter=delimiter)
        next(reader)
        for n, row in enumerate(reader, 1):
            if wanted is not None and n % CSV_DIAGNOSE_ROWS == 0 and not wanted():
                raise LoadCancelled(f"{path}: loading cancelled")
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank lines are skipped by the fast parser too
            line = reader.line_num
            if len(row) != len(header):
                raise DatasetError(f"{path}: line {line} has {len(row)} fields but the header has "
                                   f"{len(header)}; every row needs one value per column")
            for j, cell in enumerate(row):
                text = cell.strip()
                if j == target:
                    if not text:
                        raise DatasetError(f"{path}: empty value in target column {header[j]!r} at "
                                           f"line {line}; every row needs a target")
                elif not _is_number(text):
                    what = "empty value" if not text else f"non-numeric value {text!r}"
                    raise DatasetError(f"{path}: {what} in column {header[j]!r} at line {line}; "
                                       f"feature columns must hold numbers")


def _line_blocks(fh: Any, path: Path, progress: Progress | None, read: list[float],
                 n_columns: int) -> Iterator[list[str]]:
    """The rest of an open text file as lists of whole lines, about ``CSV_BLOCK_BYTES`` each.

    NumPy's reader takes the lines one by one from a C-level chain over these lists (only the
    blocks go through Python, so this costs ~10 % of parse speed, not a Python call per line).
    ``progress`` runs before each block is handed over; ``read[0]`` keeps the fraction it got.
    The rows are counted as they come, so a file too large to load is refused (``MAX_VALUES``)
    before the parser has allocated much more than the limit.
    """
    size = max(path.stat().st_size, 1)
    rows = 0
    while block := fh.readlines(CSV_BLOCK_BYTES):
        rows += len(block)
        _check_data_size(path, rows, n_columns, "rows (at least)")
        read[0] = min(fh.buffer.tell() / size, 1.0)
        if progress is not None and progress(read[0]) is False:
            raise LoadCancelled(f"{path}: loading cancelled")
        yield block


def load_csv(path: Path, target: str, progress: Progress | None = None) -> Dataset:
    """Read a CSV file with a header row; ``target`` names the label column, all others are features.

    Features must be numbers. The target decides the task: all whole numbers (``0``, ``1``,
    ``7``) make classes, numbers with a decimal point or exponent (``3.0``, ``1e-3``) a
    regression target, anything else (``setosa``) named classes, numbered 0..k-1 in sorted
    order with the names kept. Comma separated (semicolons or tabs if the header uses them),
    UTF-8, fields may be quoted. The numbers are parsed by NumPy's C reader; Python only
    touches the target column, once per row, and hands the lines over in blocks of about
    ``CSV_BLOCK_BYTES``. Before each block ``progress`` (see :data:`Progress`) gets the
    fraction of the file read; if it returns ``False`` the load stops there with
    :class:`LoadCancelled`, having parsed at most one block more than it reported.
    """
    path = Path(path)
    header, delimiter = read_csv_header(path)
    if target not in header:
        raise DatasetError(f"{path}: no column {check.quote(target)}; available columns: "
                           f"{check.excerpt(', '.join(header), 200)}")
    t = header.index(target)
    features = [j for j in range(len(header)) if j != t]
    if not features:
        raise DatasetError(f"{path}: no feature columns besides the target {target!r}; "
                           f"at least one is needed")

    codes: dict[str, float] = {}  # distinct target texts (stripped) → code, in order of appearance

    def encode(text: str) -> float:
        # Called once per row: the common case (a label seen before, no spaces) is one lookup.
        code = codes.get(text)
        if code is None:
            text = text.strip()
            if not text:
                raise ValueError("empty target")
            code = codes.get(text)
            if code is None:
                code = codes[text] = float(len(codes))
        return code

    read = [0.0]  # fraction of the file handed to the parser
    try:
        with warnings.catch_warnings(), open(path, encoding="utf-8-sig") as fh:
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": handled below
            fh.readline()  # the header, read above
            lines = itertools.chain.from_iterable(_line_blocks(fh, path, progress, read, len(header)))
            table = np.loadtxt(lines, delimiter=delimiter, comments=None, quotechar='"', ndmin=2,
                               converters={t: encode}, dtype=np.float64)
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not UTF-8 text; save the CSV file as UTF-8") from None
    except (LoadCancelled, DatasetError):
        raise
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({check.quote(exc.strerror or str(exc))})") from None
    except ValueError as exc:
        # The search for the bad cell can be stopped too; progress stays where the parser failed.
        wanted = None if progress is None else (lambda: progress(read[0]) is not False)
        _diagnose_csv(path, header, delimiter, t, wanted)
        raise DatasetError(f"{path}: cannot parse the data ({_first_line(exc)})") from None
    if table.shape[0] == 0:
        raise DatasetError(f"{path}: empty data: the header has no data rows below it")

    X = _features_to_float32(path, table[:, features], [header[j] for j in features])
    feature_names = [header[j] for j in features]
    codes_col = table[:, t].astype(np.int64)
    texts = np.array(list(codes), dtype=str)  # the distinct target strings, by code
    try:
        as_int = texts.astype(np.int64)
    except OverflowError:
        # Whole numbers beyond int64 are still class labels, not a regression target: compared
        # as Python integers (an object array, sorted by value).
        as_int = np.array([int(text) for text in texts], dtype=object)
    except ValueError:
        as_int = None
    if as_int is not None:
        labels, class_names = _classes_from_values(path, as_int[codes_col], f"target column {target!r}")
        task = "classification"
    else:
        try:
            as_float = texts.astype(np.float64)
        except ValueError:
            as_float = None
        if as_float is not None:
            values = as_float[codes_col].reshape(-1, 1)
            y = _features_to_float32(path, values, [target])
            return Dataset(X=X, y=y, task="regression", n_classes=0, feature_names=feature_names,
                           class_names=[], image_shape=None, name=path.stem)
        labels, class_names = _classes_from_values(path, texts[codes_col], f"target column {target!r}")
        task = "classification"
    return Dataset(X=X, y=labels, task=task, n_classes=len(class_names), feature_names=feature_names,
                   class_names=class_names, image_shape=None, name=path.stem)


# --------------------------------------------------------------------------------------------
# The spec's entry point


def dataset_names() -> list[str]:
    """Every allowed ``data.source``: the registered sources, then ``npz`` and ``csv``."""
    return DATASETS.names() + list(FILE_SOURCES)


def load_dataset(source: str, params: Mapping[str, Any], *, path: str | None = None,
                 target: str | None = None, base_dir: Path | None = None,
                 rng: np.random.Generator, progress: Progress | None = None) -> Dataset:
    """Build the dataset a spec's ``data`` section asks for.

    ``source`` is a registered name (``params`` are its hyperparameters), ``"npz"`` (needs
    ``path``) or ``"csv"`` (needs ``path`` and ``target``). A relative ``path`` resolves
    against ``base_dir``, the folder of the spec file. ``rng`` feeds the synthetic generators.
    ``progress`` is handed to the file loaders (see :data:`Progress`); built-in sets ignore it.
    """
    if source in FILE_SOURCES:
        check.check_params("dataset", source, params or {}, {})
        if path is None or (isinstance(path, str) and not path.strip()):
            raise DatasetError(f"path: required when source is {source!r} (the data file)")
        if not isinstance(path, (str, Path)):
            raise DatasetError(f"path: must be a file path, got {path!r}")
        file = Path(path).expanduser()
        if not file.is_absolute() and base_dir is not None:
            file = Path(base_dir) / file
        if source == "npz":
            if target is not None:
                raise DatasetError("target: only used when source is 'csv'; an npz file holds y itself")
            return load_npz(file, progress)
        if not isinstance(target, str) or not target:
            raise DatasetError(f"target: required when source is 'csv' (the name of the label column), "
                               f"got {target!r}")
        return load_csv(file, target, progress)

    if not isinstance(source, str) or source not in DATASETS:
        raise DatasetError(f"source: unknown dataset {source!r}; allowed: {', '.join(dataset_names())}")
    for key, value in (("path", path), ("target", target)):
        if value is not None:
            raise DatasetError(f"{key}: only used when source is 'npz' or 'csv', not {source!r}")
    dataset_source = DATASETS.get(source).from_config(params or {})
    return dataset_source.load(rng)  # type: ignore[attr-defined]
