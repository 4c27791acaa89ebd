"""File importers: how the user's own data files become a :class:`Dataset`.

``IMPORTERS`` maps a spec's ``data.source`` (``"npz"``, ``"csv"``) to a small
:class:`FileImporter` class that says which files it reads (the extensions a file dialog
offers), whether the spec must name a target column, how to load a file (with progress and
cancel) and how to preview one cheaply (a CSV's columns, from its first line). The spec
parser, ``load_dataset``, the Data panel and the dataset preview all read this registry, so a
new file format is one class here and its registration.

Files are user input: every problem with one is a one-line :class:`DatasetError` naming the
file, what is wrong and what is allowed. Nothing is ever unpickled.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import math
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from core.engine import validation as check
from core.engine.component import Component, Hyperparameter
from core.engine.registry import Registry

from .dataset import (
    Dataset,
    DatasetError,
    LoadCancelled,
    Progress,
    check_data_size,
    classes_from_values,
    features_to_float32,
    first_line,
    require_file,
)
from .formats import pixels_to_unit, read_idx_images
from .images import IMAGE_EXTENSIONS, class_folders, load_image_folder
from .sources import MAX_VALUES

__all__ = ["IMPORTERS", "FileImporter", "FilePreview", "labels_file_sources", "load_csv", "load_file", "load_npz",
           "read_csv_header", "target_sources"]

# A large file is handed to the parser in blocks of about this many bytes; the progress callback
# runs between blocks, so a stop request takes effect within one block (~10 ms of parsing).
CSV_BLOCK_BYTES = 2**20
MAX_HEADER_CHARS = 1_000_000  # a CSV header row longer than this is not a list of column names
CSV_DIAGNOSE_ROWS = 20_000  # rows between stop checks while looking for a bad cell (after a parse error)


MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 2, 512  # an image folder's size × size pixels

# --------------------------------------------------------------------------------------------
# The registry

IMPORTERS: Registry[type[FileImporter]] = Registry("file importer")


@dataclass(frozen=True)
class FilePreview:
    """What can be known about a data file without loading it (cheap for any size).

    ``columns`` are the columns a target can be chosen from, in file order; empty when the
    file holds its targets itself (an NPZ's ``y``).
    """

    columns: tuple[str, ...] = ()


class FileImporter(Component):
    """A file format the user's data can come in; registered under its ``data.source`` name.

    ``label`` is the choice the Data panel lists ("CSV file"), ``summary`` its one-line help,
    ``file_type`` and ``extensions`` (with the dot, lower case) make a file dialog's filter.
    ``needs_target`` says whether the spec must name the label column (``data.target``); an
    importer without one refuses a target. ``needs_labels_file`` says whether the labels come in
    a second file (``data.labels_path``, an IDX pair); an importer without one refuses it.
    ``reads_folder`` says that ``data.path`` is a folder, not a file (an image folder).
    Hyperparameters (``data.params``, e.g. an image folder's ``size``) are ``__init__``
    keywords, as for every component; most importers have none. One instance per load.
    """

    family: ClassVar[str] = "dataset"
    label: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    file_type: ClassVar[str] = ""
    extensions: ClassVar[tuple[str, ...]] = ()
    needs_target: ClassVar[bool] = False
    needs_labels_file: ClassVar[bool] = False
    reads_folder: ClassVar[bool] = False

    def load(self, path: Path, target: str | None = None, progress: Progress | None = None,
             labels_path: Path | None = None) -> Dataset:
        """Read the whole file; ``progress`` (see :data:`Progress`) may stop it with LoadCancelled.

        ``labels_path`` is only passed to an importer that ``needs_labels_file`` (so an importer
        written without it keeps working)."""
        raise NotImplementedError

    def preview(self, path: Path) -> FilePreview:
        """What the Data panel shows before the file is loaded; a bad file raises DatasetError."""
        require_file(Path(path))
        return FilePreview()

    @classmethod
    def name_filter(cls) -> str:
        """The file dialog's filter for this format: ``"CSV files (*.csv *.tsv *.txt)"``."""
        return f"{cls.file_type} ({' '.join('*' + ext for ext in cls.extensions)})"


def load_file(importer: FileImporter, path: Path, target: str | None, labels_path: Path | None,
              progress: Progress | None) -> Dataset:
    """``importer.load`` with the labels file only for an importer that reads one."""
    if type(importer).needs_labels_file:
        return importer.load(path, target, progress=progress, labels_path=labels_path)
    return importer.load(path, target, progress=progress)


def target_sources() -> list[str]:
    """The ``data.source`` names whose importer needs ``data.target`` (the label column)."""
    return [name for name in IMPORTERS if IMPORTERS.get(name).needs_target]


def labels_file_sources() -> list[str]:
    """The ``data.source`` names whose importer reads its labels from ``data.labels_path``."""
    return [name for name in IMPORTERS if IMPORTERS.get(name).needs_labels_file]


# --------------------------------------------------------------------------------------------
# NumPy archives

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
    require_file(path)
    not_npz = _not_numpy(path)
    if not_npz:
        raise DatasetError(f"{path}: not a valid .npz archive ({not_npz}); "
                           f"expected a NumPy .npz file with arrays X and y, from numpy.savez(path, X=X, y=y)")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path}: not a valid .npz archive ({first_line(exc)}); "
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
    X32 = features_to_float32(path, X.astype(np.float64, copy=False), feature_names)

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
        labels, class_names = classes_from_values(path, values, "y")
        return Dataset(X=X32, y=labels, task="classification", n_classes=len(class_names),
                       feature_names=feature_names, class_names=class_names, image_shape=None,
                       name=path.stem)
    if y.dtype.kind == "f":
        y2 = y.reshape(len(y), -1).astype(np.float64, copy=False)
        names = [f"y[:, {j}]" for j in range(y2.shape[1])] if y.ndim == 2 else ["y"]
        targets = features_to_float32(path, y2, names)
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
                check_data_size(path, shape[0] if shape else 1, math.prod(shape[1:]), f"rows of {key}")
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
        raise DatasetError(f"{path}: cannot read array {key!r} ({first_line(exc)})") from None


def _not_numpy(path: Path) -> str:
    """What a file that is neither a zip archive (``.npz``) nor a ``.npy`` array is, from its first
    bytes ("" if it is one of them): NumPy would call anything else "pickled (object) data"."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(256)
    except OSError:
        return ""                               # np.load reports the read error
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")):
        return ""
    if not head:
        return "the file is empty"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"it is binary data of another kind (it starts with bytes {head[:4].hex(' ')})"
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"it is a text file (it starts with {first[:40]!r})"


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
        raise DatasetError(f"{path}: cannot read array {key!r} ({first_line(exc)})") from None
    if dtype.hasobject:
        raise DatasetError(f"{path}: array {key!r} is an object array; only numeric "
                           f"(or, for y, string) arrays are allowed")
    return tuple(int(n) for n in shape), bool(fortran_order), dtype


# --------------------------------------------------------------------------------------------
# CSV files


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
    require_file(path)
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
        check_data_size(path, rows, n_columns, "rows (at least)")
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
        raise DatasetError(f"{path}: cannot parse the data ({first_line(exc)})") from None
    if table.shape[0] == 0:
        raise DatasetError(f"{path}: empty data: the header has no data rows below it")

    X = features_to_float32(path, table[:, features], [header[j] for j in features])
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
        labels, class_names = classes_from_values(path, as_int[codes_col], f"target column {target!r}")
        task = "classification"
    else:
        try:
            as_float = texts.astype(np.float64)
        except ValueError:
            as_float = None
        if as_float is not None:
            values = as_float[codes_col].reshape(-1, 1)
            y = features_to_float32(path, values, [target])
            return Dataset(X=X, y=y, task="regression", n_classes=0, feature_names=feature_names,
                           class_names=[], image_shape=None, name=path.stem)
        labels, class_names = classes_from_values(path, texts[codes_col], f"target column {target!r}")
        task = "classification"
    return Dataset(X=X, y=labels, task=task, n_classes=len(class_names), feature_names=feature_names,
                   class_names=class_names, image_shape=None, name=path.stem)



# --------------------------------------------------------------------------------------------
# The registered importers (registration order is the order the Data panel lists them in)


@IMPORTERS.register("npz")
class NpzImporter(FileImporter):
    """A NumPy ``.npz`` archive holding arrays ``X`` and ``y`` (see :func:`load_npz`)."""

    label = "NPZ file"
    summary = "Your own data: a NumPy .npz archive with arrays X (samples × features) and y (labels or targets)."
    file_type = "NumPy archives"
    extensions = (".npz",)

    def load(self, path: Path, target: str | None = None, progress: Progress | None = None) -> Dataset:
        return load_npz(path, progress)


@IMPORTERS.register("csv")
class CsvImporter(FileImporter):
    """A text table with a header row and a named target column (see :func:`load_csv`)."""

    label = "CSV file"
    summary = ("Your own data: a CSV file with a header row; pick the target column, "
               "the other columns are the features.")
    file_type = "CSV files"
    extensions = (".csv", ".tsv", ".txt")
    needs_target = True

    def load(self, path: Path, target: str | None = None, progress: Progress | None = None) -> Dataset:
        return load_csv(path, target or "", progress)

    def preview(self, path: Path) -> FilePreview:
        return FilePreview(columns=tuple(read_csv_header(path)[0]))


@IMPORTERS.register("idx")
class IdxImporter(FileImporter):
    """A pair of IDX files, images and labels, as the MNIST family is published (gzipped or not).

    The images file holds bytes (type 08) of shape (n, rows, cols) or (n, features); the labels
    file one integer per image. Pixels are scaled to [0, 1] (x / 255, float32) as the book does;
    the labels become classes 0..k-1 in sorted order, named by their values.
    """

    label = "IDX image and label files"
    summary = ("Your own images in the MNIST family's format: an IDX images file (n × rows × cols bytes) and an "
               "IDX labels file, gzipped or not.")
    file_type = "IDX files"
    # train-images-idx3-ubyte.gz as the MNIST family is published; unpacked files have no extension
    # (the dialog's "All files" shows them)
    extensions = (".gz", ".idx")
    needs_labels_file = True

    def load(self, path: Path, target: str | None = None, progress: Progress | None = None,
             labels_path: Path | None = None) -> Dataset:
        path = Path(path)
        if labels_path is None:
            raise DatasetError(f"{path}: an IDX images file needs its labels file (data.labels_path)")
        labels_path = Path(labels_path)
        for file in (path, labels_path):
            require_file(file)
        images, values = read_idx_images(path, labels_path, max_values=MAX_VALUES, progress=progress)
        if len(images) < 2:
            raise DatasetError(f"{path}: holds {len(images)} image{'s' if len(images) != 1 else ''}; at least 2 "
                               "are needed")
        labels, class_names = classes_from_values(labels_path, values, "the labels file")
        X = pixels_to_unit(images.reshape(len(images), -1))
        if X.shape[1] == 0:
            raise DatasetError(f"{path}: the images have no pixels (shape {images.shape})")
        return Dataset(X=X, y=labels, task="classification", n_classes=len(class_names),
                       feature_names=[f"pixel_{i}" for i in range(X.shape[1])], class_names=class_names,
                       image_shape=images.shape[1:] if images.ndim == 3 else None, name=path.name.split(".")[0])


@IMPORTERS.register("image_folder")
class ImageFolderImporter(FileImporter):
    """A folder with one sub-folder of PNG or JPEG images per class (see :mod:`core.data.images`)."""

    label = "Image folder"
    summary = ("Your own images: a folder with one sub-folder of PNG or JPEG images per class, resized to "
               "size × size pixels (needs Pillow).")
    file_type = "Image folders"
    extensions = IMAGE_EXTENSIONS
    reads_folder = True
    hyperparameters = {
        "size": Hyperparameter("image size", "Every image is resized to size × size pixels (stretched) and "
                               "flattened into size² inputs (3 × size² in colour).", f"{MIN_IMAGE_SIZE} to "
                               f"{MAX_IMAGE_SIZE}"),
        "grayscale": Hyperparameter("grayscale", "Grey levels (one value per pixel) instead of red, green and "
                                    "blue values: three times fewer inputs.", "true or false"),
    }

    def __init__(self, size: int = 28, grayscale: bool = True) -> None:
        self.size = check.integer("size", size, low=MIN_IMAGE_SIZE, high=MAX_IMAGE_SIZE)
        self.grayscale = check.boolean("grayscale", grayscale)

    def load(self, path: Path, target: str | None = None, progress: Progress | None = None) -> Dataset:
        return load_image_folder(Path(path), self.size, self.grayscale, progress)

    def preview(self, path: Path) -> FilePreview:
        class_folders(Path(path))
        return FilePreview()
