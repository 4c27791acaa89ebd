"""The registered data sources: ``DATASETS`` maps a spec's ``data.source`` to a small class.

Three kinds: synthetic generators written in NumPy that draw only from the
``numpy.random.Generator`` they are handed (spirals, moons, circles, blobs, xor), small real
data sets read from the files scikit-learn ships in its wheel (digits, iris, wine,
breast_cancer), and ``corrupted``, the book's auxiliary task for unlabeled data. A source's
hyperparameters are its ``__init__`` keywords (``data.params``), validated there.

The user's own files are not sources but file importers (``core.data.importers``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from core.engine import validation as check
from core.engine.component import Component, Hyperparameter
from core.engine.registry import Registry

from .dataset import MAX_VALUES, Dataset, DatasetError, Progress

__all__ = ["DATASETS", "DatasetSource"]

# Refuse absurd sizes before allocating anything: a million 2-D points is already far more
# than a desktop training loop wants, and a generated X never exceeds 200 MB of float32.
MAX_SAMPLES = 1_000_000
MAX_CLASSES = 20  # for the generators: more arms or blobs than that is just noise


DATASETS: Registry[type[DatasetSource]] = Registry("dataset")


class DatasetSource(Component):
    """A named way of producing a :class:`Dataset`; hyperparameters are ``__init__`` keywords."""

    family: ClassVar[str] = "dataset"
    summary: ClassVar[str] = ""  # one line for the tooltip
    kind: ClassVar[str] = ""  # "synthetic", "bundled" or "auxiliary"

    def load(self, rng: np.random.Generator) -> Dataset:
        raise NotImplementedError

    def load_with_progress(self, rng: np.random.Generator, progress: Progress | None) -> Dataset:
        """``load``, reporting progress where a source has any (a download, a large file)."""
        return self.load(rng)


# Hyperparameters several generators share, documented once.
_N_SAMPLES = Hyperparameter("samples", "How many points to generate.", f"1 to {MAX_SAMPLES:,}, at least n_classes")
_N_CLASSES = Hyperparameter("classes", "How many classes (spiral arms, blobs).", f"2 to {MAX_CLASSES}")
_NOISE = Hyperparameter("noise", "Amount of random jitter; more noise blurs the classes into each other.",
                        "0 to 100")


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
    hyperparameters = {
        "n_samples": _N_SAMPLES, "n_classes": _N_CLASSES, "noise": _NOISE,
        "turns": Hyperparameter("turns", "How many times each spiral arm winds around the centre; more turns "
                                         "is harder.", "0 < turns ≤ 20"),
    }

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
    hyperparameters = {"n_samples": _N_SAMPLES, "noise": _NOISE}

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
    hyperparameters = {
        "n_samples": _N_SAMPLES, "noise": _NOISE,
        "factor": Hyperparameter("inner radius", "Radius of the inner circle relative to the outer one (0 to 1).",
                                 "0 ≤ factor < 1"),
    }

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
    hyperparameters = {
        "n_samples": _N_SAMPLES, "n_classes": _N_CLASSES,
        "cluster_std": Hyperparameter("cluster spread", "Standard deviation of each Gaussian blob; larger blobs "
                                                        "overlap.", "0 < σ ≤ 1000", "σ"),
        "n_features": Hyperparameter("features", "Dimension of each point (the input width).",
                                     f"1 to 1000, with n_samples × n_features ≤ {MAX_VALUES:,}"),
    }

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
    hyperparameters = {"n_samples": _N_SAMPLES, "noise": _NOISE}

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
    hyperparameters = {
        "classes": Hyperparameter("classes", "Keep only these classes (labels or names, separated by spaces or "
                                             ";), relabelled in that order; empty keeps all. Digits 0-4, then "
                                             "5-9, is the book's transfer-learning exercise.",
                                  "empty, or at least 2 distinct classes of the dataset"),
    }
    _loader: ClassVar[str] = ""  # function name in sklearn.datasets
    _class_names: ClassVar[tuple[str, ...]] = ()  # as scikit-learn names them, in label order
    _image_shape: ClassVar[tuple[int, int] | None] = None

    def __init__(self, classes: list | None = None) -> None:
        self._keep = None if classes is None else self._resolve(classes)
        self.classes = None if classes is None else list(classes)

    @classmethod
    def labels(cls, classes: list | None) -> list[int]:
        """The labels ``classes`` names (every label of the data set for ``None``)."""
        return list(range(len(cls._class_names))) if classes is None else cls._resolve(classes)

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
    hyperparameters = {
        "base": Hyperparameter("base dataset", "The dataset whose rows are kept as real and corrupted into "
                                               "copies; its labels are not used.",
                               "a registered dataset other than corrupted"),
        "base_params": Hyperparameter("base parameters", "The base dataset's own parameters; empty uses its "
                                                         "defaults.", "empty, or the base dataset's parameters"),
        "corruption": Hyperparameter("corruption", "How a copy is corrupted: swap takes each chosen feature "
                                                   "from another random row, noise adds Gaussian noise.",
                                     "one of " + ", ".join(CORRUPTIONS)),
        "fraction": Hyperparameter("corrupted fraction", "Fraction of each copy's features that are corrupted "
                                                         "(at least one).", "0 < fraction ≤ 1"),
        "stddev": Hyperparameter("noise std. dev.", "For noise: the noise's standard deviation, in units of "
                                                    "each feature's own standard deviation.", "0 < σ ≤ 100", "σ"),
    }

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
