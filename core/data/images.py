"""Folders of images as data: one sub-folder per class, PNG or JPEG files inside.

``photos/cat/001.jpg``, ``photos/dog/001.png`` ... make a classification data set with the
classes ``cat`` and ``dog`` (the sub-folders' names, in sorted order). Every image is decoded,
converted to grey levels (or RGB), resized to ``size`` × ``size`` pixels (stretched: the aspect
ratio is not kept, as for the book's fixed-size inputs) and flattened into one row of ``X``,
scaled to [0, 1] as x / 255 in float32 like the book's data sets. A colour image's row holds
the red plane, then the green, then the blue (as CIFAR-10's records do).

Decoding needs Pillow, an optional dependency (``pip install 'gradient-workbench[images]'``).
Memory is bounded before any pixel is read: the number of files times ``size``² times the
channels must stay within :data:`core.data.sources.MAX_VALUES`. Only regular files are read,
and only as PNG or JPEG (whatever their name says), so nothing else is ever decoded.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .dataset import Dataset, DatasetError, LoadCancelled, Progress
from .sources import MAX_VALUES

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
IMAGE_FORMATS = ("PNG", "JPEG")
PILLOW_MISSING = ("reading image folders needs the Pillow library, which is not installed; install it with "
                  "pip install 'gradient-workbench[images]'")


def _pillow() -> Any:
    """The ``PIL.Image`` module, or one clear DatasetError saying how to install it."""
    try:
        from PIL import Image  # optional dependency: only image folders need it
    except ImportError:
        raise DatasetError(PILLOW_MISSING) from None
    return Image


def class_folders(folder: Path) -> list[Path]:
    """The class sub-folders of ``folder`` (sorted by name; hidden ones skipped), at least two."""
    folder = Path(folder)
    if not folder.exists():
        raise DatasetError(f"{folder}: folder not found")
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a folder; an image folder holds one sub-folder of images per class")
    classes = sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                     key=lambda p: p.name)
    if len(classes) < 2:
        raise DatasetError(f"{folder}: has {len(classes)} class sub-folder{'s' if len(classes) != 1 else ''}; "
                           "classification needs at least 2 (one sub-folder of PNG or JPEG images per class)")
    return classes


def image_files(folder: Path) -> tuple[list[str], list[list[Path]]]:
    """Class names and, per class, its image files (sorted by name), checked without decoding.

    Files of other types are skipped; an entry named like an image that is not a regular file
    (a pipe, a device) is refused, and so is a class folder without images."""
    classes = class_folders(folder)
    files = []
    for sub in classes:
        found = []
        for entry in sorted(sub.iterdir(), key=lambda p: p.name):
            if entry.name.startswith(".") or entry.suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            if not entry.is_file():
                raise DatasetError(f"{entry}: not a regular file; an image folder may hold only image files")
            found.append(entry)
        if not found:
            raise DatasetError(f"{sub}: holds no PNG or JPEG images (files ending in "
                               f"{', '.join(IMAGE_EXTENSIONS)}); every class sub-folder needs some")
        files.append(found)
    return [sub.name for sub in classes], files


def check_size(folder: Path, n_images: int, size: int, channels: int) -> None:
    """Refuse, before reading any pixel, an import whose ``X`` would pass ``MAX_VALUES`` values."""
    values = n_images * size * size * channels
    if values > MAX_VALUES:
        raise DatasetError(f"{folder}: {n_images:,} images of {size}×{size}×{channels} make {values:,} values "
                           f"({4 * values / 2**20:,.0f} MB of float32), more than the {MAX_VALUES:,} "
                           f"({4 * MAX_VALUES / 2**20:,.0f} MB) a data import may hold; choose a smaller size, "
                           "grayscale, or fewer images")


def read_image(path: Path, size: int, grayscale: bool, out: np.ndarray) -> None:
    """Decode one PNG or JPEG, resize it and write its x / 255 values into the row ``out``."""
    Image = _pillow()  # noqa: N806 (the module's own name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=IMAGE_FORMATS) as image:
                mode = "L" if grayscale else "RGB"
                image.draft(mode, (size, size))       # JPEG: decode at a reduced scale when it can
                pixels = image.convert(mode).resize((size, size), Image.Resampling.BILINEAR)
                raw = np.asarray(pixels, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        text = str(exc).strip().splitlines()
        raise DatasetError(f"{path}: cannot read the image ({text[0] if text else type(exc).__name__}); "
                           "only PNG and JPEG files are read") from None
    if not grayscale:
        raw = raw.transpose(2, 0, 1)                  # planes: red, then green, then blue
    np.divide(raw.reshape(-1), np.float32(255.0), out=out, dtype=np.float32)


def load_image_folder(folder: Path, size: int, grayscale: bool, progress: Progress | None = None) -> Dataset:
    """The images under ``folder`` (see the module docstring) as a classification Dataset."""
    folder = Path(folder)
    class_names, files = image_files(folder)
    channels = 1 if grayscale else 3
    n = sum(len(f) for f in files)
    check_size(folder, n, size, channels)
    _pillow()                                         # before the allocation: say what to install
    X = np.empty((n, size * size * channels), dtype=np.float32)
    y = np.empty(n, dtype=np.int64)
    row = 0
    for label, paths in enumerate(files):
        for path in paths:
            read_image(path, size, grayscale, X[row])
            y[row] = label
            row += 1
            if progress is not None and progress(row / n) is False:
                raise LoadCancelled(f"{folder}: loading cancelled")
    names = ([f"pixel_{i}" for i in range(size * size)] if grayscale else
             [f"{c}_{i}" for c in ("red", "green", "blue") for i in range(size * size)])
    return Dataset(X=X, y=y, task="classification", n_classes=len(class_names), feature_names=names,
                   class_names=class_names, image_shape=(size, size) if grayscale else None, name=folder.name)
