"""The book's image data sets by name: ``fashion_mnist``, ``mnist`` and ``cifar10``.

Chapter 11 runs its experiments on Fashion-MNIST and its exercise 8 on CIFAR-10. Each is
downloaded once (``core.data.download``: official location or a mirror, SHA-256 checked),
parsed straight into float32 pixels scaled to [0, 1] (x / 255, as the book does, before any
standardization), and keeps its published train / test split: the published test images
are the experiment's test split (``Dataset.test_rows``), and the validation split is cut from
the published training images.

Parameters (``data.params``):

* ``n_train``, ``n_test``: a random subset of that many training / test images (drawn with
  the experiment's seed; ``null``: all). A class can train on 5,000 images in seconds.
* ``grayscale`` (CIFAR-10 only): 1,024 grey levels per image instead of 3,072 colour values.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from core.engine import validation as check
from core.engine.component import Hyperparameter

from .dataset import Dataset, LoadCancelled, Progress
from .download import RemoteFile, fetch
from .formats import (
    CIFAR10_CLASSES,
    CIFAR10_PER_FILE,
    CIFAR10_TEST,
    CIFAR10_TRAIN,
    cifar10_features,
    pixels_to_unit,
    read_cifar10,
    read_idx_pair,
)
from .sources import DATASETS, DatasetSource

FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com"
MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist"   # Google's copy of LeCun's files
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz"

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")


def _idx_files(base: str, sizes_and_digests: dict[str, tuple[int, str]]) -> dict[str, RemoteFile]:
    return {name: RemoteFile(name, base, size, digest) for name, (size, digest) in sizes_and_digests.items()}


def _subset(n: int, keep: int | None, rng: np.random.Generator) -> np.ndarray | None:
    """Row indices of a random subset of ``keep`` of ``n`` rows in their original order, or
    ``None`` for all of them (no copy)."""
    if keep is None or keep >= n:
        return None
    return np.sort(rng.permutation(n)[:keep])


def _take(rows: np.ndarray | None, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    return arrays if rows is None else tuple(a[rows] for a in arrays)


class _BookImages(DatasetSource):
    """A published image set with a fixed train / test split, downloaded on first use."""

    kind = "book"
    hyperparameters = {
        "n_train": Hyperparameter("training images", "Train on a random subset of this many of the published "
                                  "training images (drawn with the experiment's seed); empty: all of them. The "
                                  "validation split is cut from these.", "10 to the published count, or null"),
        "n_test": Hyperparameter("test images", "Keep a random subset of this many of the published test images "
                                 "as the test split; empty: all of them.", "10 to the published count, or null"),
    }
    files: ClassVar[dict[str, RemoteFile]] = {}
    class_names: ClassVar[tuple[str, ...]] = ()
    n_train_max: ClassVar[int] = 0
    n_test_max: ClassVar[int] = 0

    def __init__(self, n_train: int | None = None, n_test: int | None = None) -> None:
        self.n_train = None if n_train is None else check.integer("n_train", n_train, low=10, high=self.n_train_max)
        self.n_test = None if n_test is None else check.integer("n_test", n_test, low=10, high=self.n_test_max)

    def load(self, rng: np.random.Generator) -> Dataset:
        return self.load_with_progress(rng, None)

    @classmethod
    def download_size(cls) -> int:
        """Bytes to download on first use (for the window's progress and the CLI's line)."""
        return sum(f.size for f in cls.files.values())

    def fetch_all(self, progress: Progress | None) -> dict[str, Any]:
        """The local, verified copy of every file; ``progress`` gets the fraction of all bytes."""
        total = self.download_size()
        done_before = 0
        paths = {}
        for name, remote in self.files.items():
            def report(done: int, _: int, before: int = done_before) -> bool | None:
                return None if progress is None else progress(min(1.0, (before + done) / total))

            paths[name] = fetch(remote, report)
            done_before += remote.size
        if progress is not None and progress(1.0) is False:
            raise LoadCancelled(f"loading {self.name} was cancelled")
        return paths

    def _subsets(self, n_train: int, n_test: int,
                 rng: np.random.Generator) -> tuple[np.ndarray | None, np.ndarray | None]:
        return _subset(n_train, self.n_train, rng), _subset(n_test, self.n_test, rng)

    def _dataset(self, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                 n_features: int, convert: Any, image_shape: tuple[int, int] | None) -> Dataset:
        """The published training rows, then the published test rows (``test_rows``), converted
        from bytes straight into one float32 array (no second full-size copy)."""
        n_train = len(train[0])
        X = np.empty((n_train + len(test[0]), n_features), dtype=np.float32)
        convert(train[0], X[:n_train])
        convert(test[0], X[n_train:])
        y = np.concatenate([train[1], test[1]])
        return Dataset(X=X, y=y, task="classification", n_classes=len(self.class_names),
                       feature_names=[f"pixel_{i}" for i in range(n_features)],
                       class_names=list(self.class_names), image_shape=image_shape, name=self.name,
                       test_rows=np.arange(n_train, len(X), dtype=np.int64))


class _IdxImages(_BookImages):
    n_train_max = 60_000
    n_test_max = 10_000
    train_files: ClassVar[tuple[str, str]] = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
    test_files: ClassVar[tuple[str, str]] = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

    def load_with_progress(self, rng: np.random.Generator, progress: Progress | None) -> Dataset:
        paths = self.fetch_all(progress)
        X_train, y_train = read_idx_pair(*(paths[name] for name in self.train_files))
        X_test, y_test = read_idx_pair(*(paths[name] for name in self.test_files))
        train, test = self._subsets(len(X_train), len(X_test), rng)
        return self._dataset(_take(train, X_train, y_train), _take(test, X_test, y_test), X_train.shape[1],
                             pixels_to_unit, (28, 28))


@DATASETS.register("fashion_mnist")
class FashionMNIST(_IdxImages):
    """Zalando's Fashion-MNIST: 70,000 28×28 grey images of clothes in 10 classes (60,000 to
    train, 10,000 to test), the data of chapter 11's experiments."""

    summary = "Fashion-MNIST: 28×28 clothes images, 10 classes, 60,000 + 10,000 (downloaded once, 30 MB)"
    class_names = FASHION_MNIST_CLASSES
    files = _idx_files(FASHION_MNIST_URL, {
        "train-images-idx3-ubyte.gz": (26_421_880, "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
        "train-labels-idx1-ubyte.gz": (29_515, "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
        "t10k-images-idx3-ubyte.gz": (4_422_102, "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
        "t10k-labels-idx1-ubyte.gz": (5_148, "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
    })


@DATASETS.register("mnist")
class MNIST(_IdxImages):
    """LeCun, Cortes and Burges's handwritten digits: 70,000 28×28 grey images in 10 classes
    (60,000 to train, 10,000 to test)."""

    summary = "MNIST: 28×28 handwritten digits, 10 classes, 60,000 + 10,000 (downloaded once, 11 MB)"
    class_names = tuple(str(i) for i in range(10))
    files = _idx_files(MNIST_URL, {
        "train-images-idx3-ubyte.gz": (9_912_422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        "train-labels-idx1-ubyte.gz": (28_881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        "t10k-images-idx3-ubyte.gz": (1_648_877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        "t10k-labels-idx1-ubyte.gz": (4_542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    })


@DATASETS.register("cifar10")
class CIFAR10(_BookImages):
    """Krizhevsky's CIFAR-10: 60,000 32×32 colour images in 10 classes (50,000 to train,
    10,000 to test), the data of chapter 11's exercise 8. Its binary version; the Python
    version is pickles and is never loaded."""

    summary = "CIFAR-10: 32×32 colour images, 10 classes, 50,000 + 10,000 (downloaded once, 170 MB)"
    class_names = CIFAR10_CLASSES
    n_train_max = 50_000
    n_test_max = 10_000
    records_per_file: ClassVar[int] = CIFAR10_PER_FILE
    hyperparameters = {
        "grayscale": Hyperparameter("grayscale", "Grey levels (0.299 R + 0.587 G + 0.114 B): 1,024 inputs per "
                                    "image instead of 3,072 colour values, three times less to learn from.",
                                    "true or false"),
    }
    files = {"cifar-10-binary.tar.gz": RemoteFile(
        "cifar-10-binary.tar.gz", CIFAR10_URL, 170_052_171,
        "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd")}

    def __init__(self, n_train: int | None = None, n_test: int | None = None, grayscale: bool = False) -> None:
        super().__init__(n_train, n_test)
        self.grayscale = check.boolean("grayscale", grayscale)

    def load_with_progress(self, rng: np.random.Generator, progress: Progress | None) -> Dataset:
        archive = self.fetch_all(progress)["cifar-10-binary.tar.gz"]
        train_pixels, y_train = read_cifar10(archive, CIFAR10_TRAIN, self.records_per_file)
        test_pixels, y_test = read_cifar10(archive, CIFAR10_TEST, self.records_per_file)
        train, test = self._subsets(len(train_pixels), len(test_pixels), rng)

        def convert(pixels: np.ndarray, out: np.ndarray) -> np.ndarray:
            return cifar10_features(pixels, self.grayscale, out)

        return self._dataset(_take(train, train_pixels, y_train), _take(test, test_pixels, y_test),
                             1024 if self.grayscale else 3072, convert, (32, 32) if self.grayscale else None)
