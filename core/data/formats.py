"""Readers of the binary formats the book's image data sets are published in.

* IDX (the MNIST family): a 4-byte magic number (two zero bytes, a type code, the number of
  dimensions), one big-endian 32-bit size per dimension, then the values in row-major order;
  usually gzipped.
* CIFAR-10's binary version: ``cifar-10-binary.tar.gz`` holding ``data_batch_1.bin`` ...
  ``data_batch_5.bin`` and ``test_batch.bin``, each 10,000 records of one label byte and
  3,072 pixel bytes (the 32×32 red plane, then green, then blue). CIFAR-10's *Python*
  version is a set of pickles: it is refused by name and by content, never opened with pickle.

Both read straight into preallocated NumPy arrays in blocks (no intermediate copies of the
whole file) and check every size against the header before allocating, so a damaged or
hostile file is one ``DatasetError`` saying what is wrong, never a traceback or a huge
allocation.
"""

from __future__ import annotations

import gzip
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np

from .dataset import DatasetError, LoadCancelled, Progress

# IDX type codes → big-endian NumPy dtypes.
IDX_TYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
             0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
MAX_IDX_BYTES = 2 * 1024**3      # a header claiming more than this is refused before any allocation
READ_BLOCK = 1 << 20

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST = ("test_batch.bin",)
CIFAR10_RECORD = 1 + 3 * 32 * 32
CIFAR10_PER_FILE = 10_000
CIFAR10_PYTHON_NAME = "cifar-10-python.tar.gz"


def _read_exactly(fh: IO[bytes], out: memoryview, where: str, what: str,
                  on_block: Callable[[int], None] | None = None) -> None:
    """Fill ``out`` from ``fh`` in blocks; a short file is a truncation error. ``on_block(done)``
    runs after each block (it may raise ``LoadCancelled`` to stop the read)."""
    done, total = 0, len(out)
    try:
        while done < total:
            n = fh.readinto(out[done:done + READ_BLOCK])  # type: ignore[attr-defined]
            if not n:
                raise DatasetError(f"{where}: truncated: {what} needs {total:,} bytes, the file holds {done:,}")
            done += n
            if on_block is not None:
                on_block(done)
    except (EOFError, OSError, zlib.error) as exc:
        raise DatasetError(f"{where}: damaged compressed data after {done:,} bytes of {what} ({exc})") from None


def _open_maybe_gzip(path: Path) -> IO[bytes]:
    if not path.is_file():
        raise DatasetError(f"{path}: no such file" if not path.exists() else f"{path}: not a regular file")
    fh = open(path, "rb")
    head = fh.read(2)
    fh.seek(0)
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=fh, mode="rb")  # type: ignore[return-value]
    return fh


def read_idx(path: str | Path, *, max_values: int | None = None, progress: Progress | None = None) -> np.ndarray:
    """An IDX file (gzipped or not) as a native-endian array of the shape its header gives.

    ``max_values``: refuse, from the header alone, an array of more values than that (a file
    import's memory bound). ``progress(fraction)`` hears the fraction of the values read after
    each block; returning ``False`` stops the read with ``LoadCancelled``.
    """
    path = Path(path)
    with _open_maybe_gzip(path) as fh:
        try:
            magic = fh.read(4)
        except (OSError, EOFError, zlib.error) as exc:
            raise DatasetError(f"{path}: not a gzip or IDX file ({exc})") from None
        if len(magic) < 4 or magic[:2] != b"\x00\x00" or magic[2] not in IDX_TYPES or magic[3] == 0:
            raise DatasetError(f"{path}: not an IDX file (its magic number is {magic.hex() or 'missing'}; an IDX "
                               "file starts with 00 00, a type code 08/09/0b/0c/0d/0e and the number of "
                               "dimensions)")
        dtype, ndim = IDX_TYPES[magic[2]], magic[3]
        header = fh.read(4 * ndim)
        if len(header) < 4 * ndim:
            raise DatasetError(f"{path}: truncated IDX header ({ndim} dimensions announced)")
        shape = tuple(int(d) for d in np.frombuffer(header, dtype=">u4"))
        n_bytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        if n_bytes > MAX_IDX_BYTES:
            raise DatasetError(f"{path}: the header announces {shape} values ({n_bytes:,} bytes), more than the "
                               f"{MAX_IDX_BYTES:,} this reader accepts")
        n_values = n_bytes // dtype.itemsize
        if max_values is not None and n_values > max_values:
            raise DatasetError(f"{path}: the header announces {shape}, {n_values:,} values "
                               f"({4 * n_values / 2**20:,.0f} MB as float32), more than the {max_values:,} values "
                               f"({4 * max_values / 2**20:,.0f} MB) a data file may hold; use a subset of the images")
        out = np.empty(shape, dtype=dtype)

        def report(done: int, total: int = max(n_bytes, 1)) -> None:
            if progress is not None and progress(done / total) is False:
                raise LoadCancelled(f"{path}: loading cancelled")

        _read_exactly(fh, memoryview(out.reshape(-1).view(np.uint8)), str(path), f"an array of shape {shape}",
                      report if progress is not None else None)
        if fh.read(1):
            raise DatasetError(f"{path}: has data after the {shape} values its header announces")
    return out.astype(dtype.newbyteorder("="), copy=False)


def pixels_to_unit(raw: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Byte pixels as float32 in [0, 1]: x / 255, as the book scales them (into ``out`` if given)."""
    if out is None:
        out = np.empty(raw.shape, dtype=np.float32)
    np.divide(raw, np.float32(255.0), out=out, dtype=np.float32)
    return out


def read_idx_images(images_path: str | Path, labels_path: str | Path, *, max_values: int | None = None,
                    progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Byte images (n, ...) as the file shapes them and labels (n,) int64 from two IDX files.

    ``max_values`` bounds the images (see :func:`read_idx`); ``progress`` hears the fraction of
    the images read (the labels are small and read first)."""
    labels = read_idx(labels_path, max_values=max_values)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DatasetError(f"{labels_path}: must hold one integer label per image (1 dimension), got "
                           f"{labels.dtype} of shape {labels.shape}")
    images = read_idx(images_path, max_values=max_values, progress=progress)
    if images.dtype != np.uint8 or images.ndim < 2:
        raise DatasetError(f"{images_path}: must hold byte images (type 08, at least 2 dimensions), got "
                           f"{images.dtype} of shape {images.shape}")
    if len(labels) != len(images):
        raise DatasetError(f"{labels_path}: holds {len(labels):,} labels for the {len(images):,} images of "
                           f"{Path(images_path).name}")
    return images, labels.astype(np.int64)


def read_idx_pair(images_path: str | Path, labels_path: str | Path, *, max_values: int | None = None,
                  progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Byte images flattened to (n, rows·cols) and labels (n,) int64 from two IDX files (see
    :func:`read_idx_images`, and ``pixels_to_unit`` for the scaling)."""
    images, labels = read_idx_images(images_path, labels_path, max_values=max_values, progress=progress)
    return images.reshape(len(images), -1), labels


def refuse_cifar10_python(path: Path) -> None:
    """The Python version of CIFAR-10 is pickles: never loaded, whatever its name."""
    if path.name == CIFAR10_PYTHON_NAME:
        raise DatasetError(f"{path}: this is the Python version of CIFAR-10, made of pickles, which are never "
                           "loaded (they can run code); use the binary version, cifar-10-binary.tar.gz")


def read_cifar10(path: str | Path, files: tuple[str, ...],
                 per_file: int = CIFAR10_PER_FILE) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (n, 3072) uint8 in the file's plane order and labels (n,) int64 from the named
    members of ``cifar-10-binary.tar.gz`` (``per_file`` records each: 10,000 in the real one)."""
    path = Path(path)
    refuse_cifar10_python(path)
    try:
        archive = tarfile.open(path, mode="r:*")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path}: not a CIFAR-10 binary archive (tar.gz) ({exc})") from None
    with archive:
        members = {}
        try:
            for member in archive:
                members[Path(member.name).name] = member
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise DatasetError(f"{path}: damaged archive ({exc})") from None
        if "data_batch_1" in members or "batches.meta" in members:
            raise DatasetError(f"{path}: holds the Python version of CIFAR-10 (pickles), which is never loaded; "
                               "use the binary version, cifar-10-binary.tar.gz")
        records = np.empty((len(files) * per_file, CIFAR10_RECORD), dtype=np.uint8)
        for i, name in enumerate(files):
            member = members.get(name)
            if member is None or not member.isfile():
                raise DatasetError(f"{path}: has no {name} (a CIFAR-10 binary archive holds "
                                   f"{', '.join(CIFAR10_TRAIN + CIFAR10_TEST)})")
            if member.size != per_file * CIFAR10_RECORD:
                raise DatasetError(f"{path}: {name} has {member.size:,} bytes, expected "
                                   f"{per_file * CIFAR10_RECORD:,} ({per_file:,} records)")
            fh = archive.extractfile(member)
            assert fh is not None
            with fh:
                block = records[i * per_file:(i + 1) * per_file]
                _read_exactly(fh, memoryview(block.reshape(-1)), f"{path}:{name}", f"{name}")
    labels = records[:, 0].astype(np.int64)
    if labels.max(initial=0) >= len(CIFAR10_CLASSES):
        raise DatasetError(f"{path}: holds label {int(labels.max())}; CIFAR-10 has labels 0-9")
    return records[:, 1:], labels


def cifar10_features(pixels: np.ndarray, grayscale: bool, out: np.ndarray | None = None) -> np.ndarray:
    """Float32 features in [0, 1] (into ``out`` if given): the 3,072 channel-planar pixels, or
    1,024 grey levels (ITU-R 601 luma, (0.299 R + 0.587 G + 0.114 B) / 255)."""
    if not grayscale:
        return pixels_to_unit(pixels, out)
    planes = pixels.reshape(len(pixels), 3, 1024)
    grey = np.empty((len(pixels), 1024), dtype=np.float32) if out is None else out
    np.multiply(planes[:, 0], np.float32(0.299 / 255.0), out=grey, dtype=np.float32)
    grey += planes[:, 1] * np.float32(0.587 / 255.0)
    grey += planes[:, 2] * np.float32(0.114 / 255.0)
    return grey
