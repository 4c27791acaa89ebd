"""What the tests of core.data share: seeded generators, the one-line DatasetError check, file
writers, and a throwaway file importer that only the tests register (and remove again)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from core.data import IMPORTERS, Dataset, DatasetError, FileImporter, FilePreview, LoadCancelled, Progress
from core.data.dataset import classes_from_values, features_to_float32, require_file

SYNTHETIC = ["spirals", "moons", "circles", "blobs", "xor"]
BUNDLED = ["digits", "iris", "wine", "breast_cancer"]
AUXILIARY = ["corrupted"]
BOOK = ["fashion_mnist", "mnist", "cifar10"]   # downloaded on first use: tests/core/data/test_book.py

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


# ------------------------------------------------------------------------------------ a throwaway importer


class PointsImporter(FileImporter):
    """Whitespace-separated numbers, one example a line, the class label last: a format only the
    tests know, to check that registering an importer is all it takes."""

    label = "Points file"
    summary = "Test data: whitespace-separated numbers, the class label last."
    file_type = "Point lists"
    extensions = (".pts", ".points")
    loads: list[Path] = []  # every path loaded, so that a test can see the importer was used

    def load(self, path: Path, target: str | None = None, progress: Progress | None = None) -> Dataset:
        require_file(path)
        table = np.loadtxt(path, ndmin=2)
        type(self).loads.append(path)
        if progress is not None and progress(1.0) is False:
            raise LoadCancelled(f"{path}: loading cancelled")
        names = [f"p{j + 1}" for j in range(table.shape[1] - 1)]
        X = features_to_float32(path, table[:, :-1], names)
        labels, class_names = classes_from_values(path, table[:, -1].astype(np.int64), "the label column")
        return Dataset(X=X, y=labels, task="classification", n_classes=len(class_names), feature_names=names,
                       class_names=class_names, image_shape=None, name=path.stem)


class LabelledPointsImporter(PointsImporter):
    """The same numbers with a header line naming the columns; the spec names the target column."""

    label = "Labelled points file"
    file_type = "Labelled point lists"
    extensions = (".lpts",)
    needs_target = True

    def load(self, path: Path, target: str | None = None, progress: Progress | None = None) -> Dataset:
        columns = self.preview(path).columns
        if target not in columns:
            raise DatasetError(f"{path}: no column {target!r}; available columns: {', '.join(columns)}")
        table = np.loadtxt(path, ndmin=2, skiprows=1)
        t = columns.index(target)
        type(self).loads.append(path)
        X = features_to_float32(path, np.delete(table, t, axis=1), [c for c in columns if c != target])
        labels, class_names = classes_from_values(path, table[:, t].astype(np.int64), f"column {target!r}")
        return Dataset(X=X, y=labels, task="classification", n_classes=len(class_names),
                       feature_names=[c for c in columns if c != target], class_names=class_names,
                       image_shape=None, name=path.stem)

    def preview(self, path: Path) -> FilePreview:
        require_file(Path(path))
        with open(path, encoding="utf-8") as f:
            return FilePreview(columns=tuple(f.readline().split()))


@contextlib.contextmanager
def registered_importer(name: str, importer: type[FileImporter]) -> Iterator[type[FileImporter]]:
    """``importer`` registered in IMPORTERS as ``name`` for the ``with`` block, removed afterwards.

    Registering goes through ``IMPORTERS.register`` as a real importer's would; the registry has
    no public removal (the application never unregisters), so the test removes its own entry."""
    IMPORTERS.register(name)(importer)
    importer.loads = []
    try:
        yield importer
    finally:
        del IMPORTERS._entries[name]


def write_points(path: Path, rows: int = 30, features: int = 3, header: str | None = None) -> Path:
    """A points file: ``rows`` examples of ``features`` numbers and a label 0..2 (a header line if given)."""
    values = np.random.default_rng(0).normal(size=(rows, features))
    lines = [" ".join(f"{v:.4f}" for v in row) + f" {i % 3}" for i, row in enumerate(values)]
    return write(path, "\n".join(([header] if header else []) + lines) + "\n")


# ------------------------------------------------------------------------------------ image files


def write_idx_pair(folder: Path, n: int = 30, shape: tuple[int, ...] = (6, 5), n_classes: int = 3, seed: int = 0,
                   compress: bool = True) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """An IDX images file (n × shape bytes) and its labels file (0..n_classes-1); paths and arrays."""
    from .book_support import idx_bytes

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    labels = (np.arange(n) % n_classes).astype(np.uint8)
    suffix = ".gz" if compress else ""
    images_path = folder / f"images-idx{1 + len(shape)}-ubyte{suffix}"
    labels_path = folder / f"labels-idx1-ubyte{suffix}"
    images_path.write_bytes(idx_bytes(images, compress=compress))
    labels_path.write_bytes(idx_bytes(labels, compress=compress))
    return images_path, labels_path, images, labels


def write_image_folder(folder: Path, per_class: dict[str, int] | None = None, size: tuple[int, int] = (12, 9),
                       seed: int = 0) -> dict[str, list[np.ndarray]]:
    """One sub-folder per class of RGB images (PNG, and JPEG for every third): the pixels written."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    written: dict[str, list[np.ndarray]] = {}
    for name, count in (per_class or {"cat": 4, "dog": 3}).items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        written[name] = []
        for i in range(count):
            pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            ext = "jpg" if i % 3 == 2 else "png"
            Image.fromarray(pixels, "RGB").save(folder / name / f"{i:03d}.{ext}")
            written[name].append(pixels)
    return written
