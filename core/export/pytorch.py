"""Export a session to a self-contained, readable PyTorch script (``gradient-workbench export``).

``export_pytorch(session, "model.py", with_weights=True)`` writes ``model.py`` and, with
weights, ``model.weights.npz`` beside it (PyTorch's parameter names, kernels transposed to
PyTorch's ``(out, in)``; batch-norm statistics included). The script rebuilds the data and its
split exactly as the workbench does (the same NumPy generators, seeds and split), the
network (layers, initializers with the same variances, batch norm, dropout, activation
parameters), the optimizer with the same hyperparameters, the learning-rate schedule, the
regularization (ℓ1/ℓ2 penalty on kernels, max-norm, gradient clipping, early stopping), and
trains. Where PyTorch's built-ins follow other conventions than Keras (which the workbench
follows), the script says so in a comment, and uses a few lines of its own where the
difference would change the result (RMSProp's and AdaGrad's ε inside the square root,
Keras 3's Nadam momentum schedule, the book's 1cycle).

What can be translated is listed family by family in :data:`TRANSLATIONS`, one entry per
registry name (optimizers, schedules, activations, initializers, losses, data sources,
augmentations). A name without an entry, such as a newly registered optimizer, is refused with
:class:`ExportError` naming the family, the name and what is supported; never guessed at.
The script's text is :data:`core.export.pytorch_template.TEMPLATE` with its ``@@SLOTS@@``
filled in one pass; every string that comes from the user (the experiment's name, the
session's file name, paths, column names) enters it as a Python literal written by ``repr``.

This module writes text only; it never imports PyTorch.
"""

from __future__ import annotations

import datetime as _dt
import inspect
import io
import pprint
import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from core import __version__
from core.data.book import CIFAR10, _BookImages, _IdxImages
from core.data.download import cache_dir, mirror
from core.data.formats import CIFAR10_TRAIN as CIFAR10_TRAIN_NAMES
from core.data.sources import DATASETS, _balanced_labels
from core.engine.optimizers import OPTIMIZERS
from core.engine.regularization import add_gaussian_noise, shift_images
from core.engine.schedules import SCHEDULES, Schedule
from core.sessions.format import Session, atomic_write
from core.spec import Experiment
from core.training import _cut, stratified_split

from .pytorch_template import SLOTS, TEMPLATE


class ExportError(ValueError):
    """The session cannot be exported; the message says why (one line)."""


def torch_state(session: Session) -> dict[str, np.ndarray]:
    """The session's weights under the script's PyTorch names (``dense_{i}.weight`` = kernelᵀ, ...)."""
    out: dict[str, np.ndarray] = {}
    names = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias",
             "moving_mean": "running_mean", "moving_variance": "running_var"}
    for key, a in session.weights.items():
        layer, _, part = key.rpartition(".")
        if layer == "output":
            module = "output"
        else:
            i = int(layer.split(".")[1])
            module = f"dense_{i}" if part in ("kernel", "bias") else f"bn_{i}"
        out[f"{module}.{names[part]}"] = np.ascontiguousarray(a.T if part == "kernel" else a)
    return out


def _source(obj: Any) -> str:
    return textwrap.dedent(inspect.getsource(obj))


# ----------------------------------------------------------------------------- data sources


def _synthetic_data(exp: Experiment, base_dir: Path | None) -> tuple[str, list[str]]:
    """A registered generator: its ``load`` copied into the script as ``generate(rng)``."""
    source = exp.data.source
    cls = DATASETS.get(source)
    params = cls.from_config(dict(exp.data.params)).get_config()
    params.pop("name")
    body = _source(cls.load)
    body = re.sub(r"def load\(self, rng[^)]*\)[^:]*:", "def generate(rng):", body)
    body = body.replace("self.name", repr(source))
    body = re.sub(r"self\.(\w+)", r'PARAMS["\1"]', body)
    code = (f"# The workbench's {source!r} generator, copied from {cls.__module__}; data.params with defaults:\n"
            f"PARAMS = {pprint.pformat(params, sort_dicts=False)}\n\n\n"
            + _source(_balanced_labels) + "\n\n"
            "def _synthetic(name, X, y, class_names, rng):\n"
            "    \"\"\"Generated class by class, then shuffled (as the workbench does).\"\"\"\n"
            "    order = rng.permutation(len(y))\n"
            "    return np.ascontiguousarray(X[order], dtype=np.float32), y[order]\n\n\n"
            + body + "\n\n"
            "def load_dataset(rng):\n"
            "    return generate(rng)\n")
    return code, []


def _bundled_data(exp: Experiment, base_dir: Path | None) -> tuple[str, list[str]]:
    """A small real data set shipped with scikit-learn, read by its loader."""
    source = exp.data.source
    cls = DATASETS.get(source)
    classes = dict(exp.data.params).get("classes")
    keep = None if classes is None else cls._resolve(classes)
    code = (f"CLASSES = {keep!r}  # data.params.classes as labels, relabelled 0..k-1 in this order; None: all\n\n\n"
            "def load_dataset(rng):\n"
            f"    \"\"\"scikit-learn's bundled {source!r} data (no download).\"\"\"\n"
            "    from sklearn import datasets\n\n"
            f"    bunch = datasets.{cls._loader}()\n"
            "    X, y = np.asarray(bunch.data, dtype=np.float32), np.asarray(bunch.target, dtype=np.int64)\n"
            "    if CLASSES is not None:\n"
            "        keep = np.isin(y, CLASSES)\n"
            "        lookup = np.full(y.max() + 1, -1, dtype=np.int64)\n"
            "        lookup[CLASSES] = np.arange(len(CLASSES))\n"
            "        X, y = X[keep], lookup[y[keep]]\n"
            "    return X, y\n")
    return code, ["scikit-learn"]


def _file_header(exp: Experiment, base_dir: Path | None) -> str:
    path = Path(exp.data.path or "")
    if not path.is_absolute() and base_dir is not None:
        path = (base_dir / path).resolve()
    return (f"DATA_PATH = Path({str(path)!r})  # data.path, resolved when exported; --data overrides it\n\n\n"
            "def _labels(values):\n"
            "    \"\"\"Class labels 0..k-1 in sorted order of the distinct values.\"\"\"\n"
            "    return np.unique(values, return_inverse=True)[1].astype(np.int64).reshape(-1)\n\n\n")


def _npz_data(exp: Experiment, base_dir: Path | None) -> tuple[str, list[str]]:
    """Arrays ``X`` and ``y`` of an .npz file, read without unpickling."""
    return _file_header(exp, base_dir) + (
        "def load_dataset(rng):\n"
        "    \"\"\"Arrays X and y of an .npz file: integer, boolean or text y are classes, float y a regression\n"
        "    target (the workbench's rules).\"\"\"\n"
        "    with np.load(DATA_PATH, allow_pickle=False) as npz:\n"
        "        X, y = npz[\"X\"].astype(np.float32), npz[\"y\"]\n"
        "    if y.dtype.kind == \"f\":\n"
        "        return X, y.reshape(len(y), -1).astype(np.float32)\n"
        "    return X, _labels(y.reshape(-1))\n"), []


def _csv_data(exp: Experiment, base_dir: Path | None) -> tuple[str, list[str]]:
    """A CSV file with a header row and a target column."""
    return _file_header(exp, base_dir) + (
        f"TARGET = {exp.data.target!r}  # data.target: the label column\n\n\n"
        "def load_dataset(rng):\n"
        "    \"\"\"A CSV file with a header row: whole numbers or texts in the target column are classes,\n"
        "    decimals a regression target (the workbench's rules).\"\"\"\n"
        "    import csv\n\n"
        "    with open(DATA_PATH, newline=\"\", encoding=\"utf-8-sig\") as f:\n"
        "        first = f.readline()\n"
        "        delimiter = next((d for d in (\",\", \"\\t\", \";\") if d in first), \",\")\n"
        "        header = [name.strip() for name in next(csv.reader([first], delimiter=delimiter))]\n"
        "        rows = [row for row in csv.reader(f, delimiter=delimiter) if any(cell.strip() for cell in row)]\n"
        "    t = header.index(TARGET)\n"
        "    X = np.array([[float(c) for j, c in enumerate(row) if j != t] for row in rows], dtype=np.float32)\n"
        "    target = [row[t].strip() for row in rows]\n"
        "    try:\n"
        "        return X, _labels(np.array([int(v) for v in target]))\n"
        "    except ValueError:\n"
        "        pass\n"
        "    try:\n"
        "        return X, np.array([float(v) for v in target], dtype=np.float32).reshape(-1, 1)\n"
        "    except ValueError:\n"
        "        return X, _labels(np.array(target))\n"), []


# The script's own readers of the book's formats (no workbench import, never a pickle).
_IDX_READER = '''def read_idx(path):
    """An IDX file (gzipped or not): magic 00 00 <type 08> <dims>, one big-endian size per dimension,
    then the bytes. Only byte arrays (type 08) are read, as the MNIST family is published."""
    import gzip

    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\\x1f\\x8b"
    with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as f:
        magic = f.read(4)
        if len(magic) < 4 or magic[:3] != b"\\x00\\x00\\x08" or magic[3] == 0:
            raise ValueError(f"{path}: not an IDX file of bytes (magic {magic.hex()})")
        shape = tuple(int(d) for d in np.frombuffer(f.read(4 * magic[3]), dtype=">u4"))
        out = np.empty(shape, dtype=np.uint8)
        view, done = memoryview(out.reshape(-1)), 0
        while done < out.size:            # in blocks, straight into the array (no second copy)
            n = f.readinto(view[done:done + (1 << 20)])
            if not n:
                raise ValueError(f"{path}: truncated after {done:,} of {out.size:,} bytes")
            done += n
    return out


def read_idx_pair(images_path, labels_path):
    """Images flattened to (n, rows·cols) bytes and labels (n,) int64."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if len(images) != len(labels):
        raise ValueError(f"{labels_path}: {len(labels):,} labels for {len(images):,} images")
    return images.reshape(len(images), -1), labels.astype(np.int64)
'''

_FETCH = '''def sha256_of(path):
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(name):
    """The verified local copy of one published file: the workbench's cache folder first (the
    files it downloaded), else downloaded once into it and kept only if its SHA-256 matches."""
    import os
    import urllib.request

    url, digest = FILES[name]
    path = CACHE / name
    if path.is_file() and sha256_of(path) == digest:
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(name + ".part")
    print(f"downloading {url} …", flush=True)
    with urllib.request.urlopen(url, timeout=30) as response, open(partial, "wb") as out:
        for block in iter(lambda: response.read(1 << 20), b""):
            out.write(block)
    if sha256_of(partial) != digest:
        partial.unlink()
        raise ValueError(f"{url}: the download does not have the published SHA-256 {digest}; not kept")
    os.replace(partial, path)
    return path
'''

_SUBSET = '''def _subset(n, keep, rng):
    """Row indices of a random subset of keep of n rows in their original order (None: all)."""
    if keep is None or keep >= n:
        return np.arange(n)
    return np.sort(rng.permutation(n)[:keep])
'''


def _idx_data(exp: Experiment, base_dir: Path | None) -> tuple[str, list[str]]:
    """An IDX images file and its labels file (the ``idx`` importer): pixels x / 255 as float32,
    labels as classes 0..k-1 in sorted order of their values."""
    labels = Path(exp.data.labels_path or "")
    if not labels.is_absolute() and base_dir is not None:
        labels = (base_dir / labels).resolve()
    return _file_header(exp, base_dir) + (
        f"LABELS_PATH = Path({str(labels)!r})  # data.labels_path, resolved when exported\n\n\n"
        + _IDX_READER + "\n\n"
        "def load_dataset(rng):\n"
        "    \"\"\"The IDX pair: pixels x / 255 (float32), the labels' values as sorted classes.\"\"\"\n"
        "    pixels, values = read_idx_pair(DATA_PATH, LABELS_PATH)\n"
        "    return np.divide(pixels, np.float32(255.0), dtype=np.float32), _labels(values)\n"), []


def _book_files(cls: type[_BookImages]) -> str:
    where = mirror()
    files = {name: (remote.url(where), remote.sha256) for name, remote in cls.files.items()}
    return (f"FILES = {pprint.pformat(files, width=110, sort_dicts=False)}  # official file → (URL, SHA-256)\n"
            "CACHE = Path(os.environ.get(\"GRADIENT_WORKBENCH_CACHE\", \"\").strip() or "
            f"{str(cache_dir() / 'datasets')!r})  # the workbench's download folder\n")


def _book_data(exp: Experiment, base_dir: Path | None) -> tuple[str, list[str]]:
    """A book data set (Fashion-MNIST, MNIST, CIFAR-10): its published files fetched once and
    SHA-256 checked, read by the script's own readers, the subsets drawn as the workbench draws
    them, and the published test images kept as the test split."""
    source = exp.data.source
    cls = DATASETS.get(source)
    params = cls.from_config(dict(exp.data.params)).get_config()
    head = ("import os\n\n" + _book_files(cls)
            + f"N_TRAIN, N_TEST = {params.get('n_train')!r}, {params.get('n_test')!r}  # data.params (None: all)\n\n\n"
            + _FETCH + "\n\n" + _SUBSET + "\n\n")
    if issubclass(cls, _IdxImages):
        train_images, train_labels = cls.train_files
        test_images, test_labels = cls.test_files
        body = (_IDX_READER + "\n\n"
                "def load_dataset(rng):\n"
                f"    \"\"\"{source}: the published training images, then the published test images (returned as\n"
                "    the test rows); pixels x / 255 as float32.\"\"\"\n"
                f"    X_train, y_train = read_idx_pair(fetch({train_images!r}), fetch({train_labels!r}))\n"
                f"    X_test, y_test = read_idx_pair(fetch({test_images!r}), fetch({test_labels!r}))\n"
                "    train, test = _subset(len(X_train), N_TRAIN, rng), _subset(len(X_test), N_TEST, rng)\n"
                "    X = np.concatenate([X_train[train], X_test[test]])\n"
                "    y = np.concatenate([y_train[train], y_test[test]])\n"
                "    test_rows = np.arange(len(train), len(X))\n"
                "    return np.divide(X, np.float32(255.0), dtype=np.float32), y, test_rows\n")
        return head + body, []
    assert issubclass(cls, CIFAR10)
    body = (f"GRAYSCALE = {params.get('grayscale', False)!r}  # data.params.grayscale\n\n\n"
            "def read_cifar10(archive, names):\n"
            "    \"\"\"Pixels (n, 3072) bytes (red plane, green, blue) and labels from the binary version's\n"
            "    members: records of one label byte and 3,072 pixel bytes.\"\"\"\n"
            "    import tarfile\n\n"
            "    pixels, labels = [], []\n"
            "    with tarfile.open(archive, mode=\"r:gz\") as tar:\n"
            "        members = {Path(m.name).name: m for m in tar if m.isfile()}\n"
            "        for name in names:\n"
            "            records = np.frombuffer(tar.extractfile(members[name]).read(), dtype=np.uint8)\n"
            "            records = records.reshape(-1, 1 + 3072)\n"
            "            labels.append(records[:, 0].astype(np.int64))\n"
            "            pixels.append(records[:, 1:])\n"
            "    return np.concatenate(pixels), np.concatenate(labels)\n\n\n"
            "def cifar10_features(pixels):\n"
            "    \"\"\"x / 255 as float32: the 3,072 colour values, or 0.299 R + 0.587 G + 0.114 B (grayscale).\"\"\"\n"
            "    if not GRAYSCALE:\n"
            "        return np.divide(pixels, np.float32(255.0), dtype=np.float32)\n"
            "    planes = pixels.reshape(len(pixels), 3, 1024)\n"
            "    grey = np.multiply(planes[:, 0], np.float32(0.299 / 255.0), dtype=np.float32)\n"
            "    grey += planes[:, 1] * np.float32(0.587 / 255.0)\n"
            "    grey += planes[:, 2] * np.float32(0.114 / 255.0)\n"
            "    return grey\n\n\n"
            "def load_dataset(rng):\n"
            "    \"\"\"CIFAR-10's binary version: the five training batches, then the test batch (returned as\n"
            "    the test rows).\"\"\"\n"
            "    archive = fetch(\"cifar-10-binary.tar.gz\")\n"
            f"    X_train, y_train = read_cifar10(archive, {tuple(CIFAR10_TRAIN_NAMES)!r})\n"
            "    X_test, y_test = read_cifar10(archive, (\"test_batch.bin\",))\n"
            "    train, test = _subset(len(X_train), N_TRAIN, rng), _subset(len(X_test), N_TEST, rng)\n"
            "    X = cifar10_features(np.concatenate([X_train[train], X_test[test]]))\n"
            "    y = np.concatenate([y_train[train], y_test[test]])\n"
            "    return X, y, np.arange(len(train), len(X))\n")
    return head + body, []


# ``data.source`` → (the script's ``load_dataset(rng)`` and what it defines, extra packages it needs)
DATA_SOURCES: dict[str, Callable[[Experiment, Path | None], tuple[str, list[str]]]] = {
    "spirals": _synthetic_data, "moons": _synthetic_data, "circles": _synthetic_data, "blobs": _synthetic_data,
    "xor": _synthetic_data,
    "digits": _bundled_data, "iris": _bundled_data, "wine": _bundled_data, "breast_cancer": _bundled_data,
    "npz": _npz_data, "csv": _csv_data, "idx": _idx_data,
    "fashion_mnist": _book_data, "mnist": _book_data, "cifar10": _book_data,
}


def _split_code() -> str:
    """The workbench's split, copied: ``stratified_split`` and the rounding it shares with the
    window's preview (``_cut``), so the script cuts exactly the rows the workbench cut."""
    code = _source(_cut) + "\n\n" + _source(stratified_split)
    code = re.sub(r"\)\s*->\s*Split:", "):", code)
    return code.replace("return Split(*(", "return tuple((")


# ----------------------------------------------------------------------------- augmentations


class AugmentationCode(NamedTuple):
    """The workbench functions the script copies, and the body of its ``augment_<type>(Xb, data)``."""

    copies: tuple[Callable[..., Any], ...]
    body: str


# ``data.augmentation.type`` → its code; the script holds all of them and picks AUGMENTATION's
AUGMENTATIONS: dict[str, AugmentationCode] = {
    "none": AugmentationCode((), "    return Xb\n"),
    "shift": AugmentationCode((shift_images,), (
        "    # pixel shifts act on the raw images (load_data keeps X_train raw), standardized per batch\n"
        "    side = int(round(math.sqrt(Xb.shape[1])))\n"
        "    return data[\"standardize\"](shift_images(Xb, (side, side), AUGMENTATION_PARAMS[\"max_shift\"], "
        "data[\"rng\"]))\n")),
    "noise": AugmentationCode((add_gaussian_noise,), (
        "    return add_gaussian_noise(Xb, AUGMENTATION_PARAMS[\"stddev\"], data[\"rng\"])\n")),
}


def _augmentation_code() -> str:
    copies = [_source(f).rstrip() + "\n\n\n" for entry in AUGMENTATIONS.values() for f in entry.copies]
    functions = [f"def augment_{name}(Xb, data):\n{entry.body}\n\n" for name, entry in AUGMENTATIONS.items()]
    table = ("AUGMENTATIONS = {" + ", ".join(f"{name!r}: augment_{name}" for name in AUGMENTATIONS) + "}\n\n\n"
             "def augment(Xb, data):\n"
             "    return AUGMENTATIONS[AUGMENTATION](Xb, data)\n")
    return "".join(copies) + "".join(functions) + table


# ----------------------------------------------------------------------------- the network


class ScriptEntry(NamedTuple):
    """One row of a table the script dispatches on: torch code and a comment on it."""

    code: str
    note: str = ""


# ``model.layers[i].activation`` → a torch module built from the layer's LAYERS row
ACTIVATIONS: dict[str, ScriptEntry] = {
    "logistic": ScriptEntry("nn.Sigmoid()"),
    "tanh": ScriptEntry("nn.Tanh()"),
    "relu": ScriptEntry("nn.ReLU()"),
    "leaky_relu": ScriptEntry("nn.LeakyReLU(negative_slope=row[\"alpha\"])"),
    "elu": ScriptEntry("nn.ELU(alpha=row[\"alpha\"])"),
    "selu": ScriptEntry("nn.SELU()"),
    "gelu": ScriptEntry("nn.GELU(approximate=\"tanh\")", "the workbench's GELU is the tanh approximation"),
    "swish": ScriptEntry("nn.SiLU()"),
    "softplus": ScriptEntry("nn.Softplus()"),
    "linear": ScriptEntry("nn.Identity()"),
}

# ``model.layers[i].dropout_type`` → a torch module dropping units at the layer's rate
DROPOUTS: dict[str, ScriptEntry] = {
    "standard": ScriptEntry("nn.Dropout(rate)", "inverted dropout, as Keras's"),
    "alpha": ScriptEntry("nn.AlphaDropout(rate)", "alpha dropout (Klambauer et al., 2017): a dropped unit is set to "
                                                  "SELU's saturation −λα and a·x + b restores mean 0 and variance 1, "
                                                  "with the same a and b as the workbench"),
}

# ``init`` of a layer or the output → torch's in-place initialization of ``weight`` (fans as Keras counts them)
INITIALIZERS: dict[str, ScriptEntry] = {
    "zeros": ScriptEntry("nn.init.zeros_(weight)"),
    "random_normal": ScriptEntry("nn.init.normal_(weight, init.get(\"mean\", 0.0), init.get(\"stddev\", 1.0))",
                                 "N(mean, stddev²); the workbench's default stddev is 1.0 (the naive N(0, 1))"),
    "random_uniform": ScriptEntry("nn.init.uniform_(weight, init.get(\"minval\", -0.05), init.get(\"maxval\", 0.05))"),
    "glorot_normal": ScriptEntry("normal_with_variance(weight, 2.0 / (fan_in + fan_out))",
                                 "variance 1 / fan_avg (Eq. 11-1)"),
    "glorot_uniform": ScriptEntry("uniform_with_variance(weight, 2.0 / (fan_in + fan_out))",
                                  "variance 1 / fan_avg (Eq. 11-1)"),
    "he_normal": ScriptEntry("normal_with_variance(weight, 2.0 / fan_in)"),
    "he_uniform": ScriptEntry("uniform_with_variance(weight, 2.0 / fan_in)"),
    "lecun_normal": ScriptEntry("normal_with_variance(weight, 1.0 / fan_in)"),
    "lecun_uniform": ScriptEntry("uniform_with_variance(weight, 1.0 / fan_in)"),
}

# ``model.output.loss`` (``auto`` resolved in the script) → a torch loss on the logits
LOSSES: dict[str, ScriptEntry] = {
    "softmax_cross_entropy": ScriptEntry("nn.CrossEntropyLoss", "softmax + cross-entropy on the logits, batch mean"),
    "sigmoid_binary_cross_entropy": ScriptEntry("nn.BCEWithLogitsLoss",
                                                "sigmoid + binary cross-entropy on the one logit, batch mean"),
    "mse": ScriptEntry("nn.MSELoss", "linear output, mean over the outputs and the batch (Keras's MSE)"),
}


def _script_table(variable: str, entries: dict[str, ScriptEntry], arguments: str | None) -> str:
    """``VARIABLE = {name: lambda arguments: code, ...}`` (the bare code without ``arguments``)."""
    lines = [f"{variable} = {{\n"]
    for name, entry in entries.items():
        if entry.note:
            lines.append(f"    # {name}: {entry.note}\n")
        value = entry.code if arguments is None else f"lambda {arguments}: {entry.code}"
        lines.append(f"    {name!r}: {value},\n")
    return "".join(lines) + "}"


def _layers_literal(exp: Experiment) -> str:
    rows = []
    for row in exp.model.layers:
        init = {"name": row.init} if isinstance(row.init, str) else dict(row.init)
        entry = {"units": row.units, "init": init, "activation": row.activation, **dict(row.activation_params),
                 "batch_norm": row.batch_norm, "dropout": row.dropout, "use_bias": row.use_bias}
        if row.dropout_type != "standard":      # as in the spec: named only when not ordinary
            entry["dropout_type"] = row.dropout_type
        rows.append(entry)
    return "[\n" + "".join(f"    {r!r},\n" for r in rows) + "]"


# ----------------------------------------------------------------------------- schedules


def _constant_schedule(cfg: dict[str, Any], sched: Schedule, plan: dict[str, Any]) -> str:
    return "SCHEDULE = None  # schedule.name = \"constant\": η(t) = η0\n"


def _power_schedule(cfg: dict[str, Any], sched: Schedule, plan: dict[str, Any]) -> str:
    return (f"# schedule: power, η(t) = η0 / (1 + t/s)^c with s = {cfg['steps']}, c = {cfg['power']}\n"
            f"def lr_factor(t):\n    return 1.0 / (1.0 + t / {cfg['steps']}) ** {cfg['power']!r}\n")


def _exponential_schedule(cfg: dict[str, Any], sched: Schedule, plan: dict[str, Any]) -> str:
    return (f"# schedule: exponential, η(t) = η0 · 0.1^(t/s) with s = {cfg['steps']}\n"
            f"def lr_factor(t):\n    return 0.1 ** (t / {cfg['steps']})\n")


def _piecewise_schedule(cfg: dict[str, Any], sched: Schedule, plan: dict[str, Any]) -> str:
    return (f"STEPS_PER_EPOCH = {int(plan['steps_per_epoch'])}  # batches in the training split\n"
            f"BOUNDARIES = {list(cfg['boundaries'])!r}  # epochs\n"
            f"VALUES = {list(cfg['values'])!r}  # absolute rates, one more than boundaries\n\n\n"
            "def lr_factor(t):\n"
            "    \"\"\"schedule: piecewise constant, VALUES[i] while the epoch t // STEPS_PER_EPOCH is in\n"
            "    [BOUNDARIES[i-1], BOUNDARIES[i]).\"\"\"\n"
            "    return VALUES[bisect.bisect_right(BOUNDARIES, t // STEPS_PER_EPOCH)] / ETA0\n")


def _one_cycle_schedule(cfg: dict[str, Any], sched: Schedule, plan: dict[str, Any]) -> str:
    return (
        f"PEAK, FINAL = {sched.peak_rate!r}, {sched.final_rate!r}  # η_max and η_final\n"
        f"TOTAL_STEPS = {int(plan['total_steps'])}  # the run's plan: steps per epoch × training.epochs\n"
        f"ANNIHILATION = {cfg['annihilation_fraction']!r}\n\n\n"
        "def lr_factor(t):\n"
        "    \"\"\"schedule: the book's 1cycle, piecewise linear through (0, η0), (h, η_max), (2h, η0),\n"
        "    (L, η_final) with L the last step and h = ⌊(1 − a)·L / 2⌋. (torch's OneCycleLR is another\n"
        "    curve: cosine by default, with momentum cycling.)\"\"\"\n"
        "    last = TOTAL_STEPS - 1\n"
        "    half = int((1.0 - ANNIHILATION) * last // 2)\n"
        "    end = 2 * half\n"
        "    if t >= last:\n"
        "        rate = FINAL if last > end else ETA0\n"
        "    elif t <= half:\n"
        "        rate = ETA0 if half == 0 else ETA0 + (PEAK - ETA0) * t / half\n"
        "    elif t <= end:\n"
        "        rate = PEAK - (PEAK - ETA0) * (t - half) / half\n"
        "    else:\n"
        "        rate = ETA0 + (FINAL - ETA0) * (t - end) / (last - end)\n"
        "    return rate / ETA0\n\n\n"
        f"MAX_MOMENTUM, MIN_MOMENTUM = {sched.max_momentum!r}, {sched.min_momentum!r}  # β cycled against η\n\n\n"
        "def momentum_at(t):\n"
        "    \"\"\"1cycle's momentum (Smith): β_max → β_min while the rate rises, back while it falls, β_max\n"
        "    after; None when it is not cycled.\"\"\"\n"
        "    if MAX_MOMENTUM is None:\n"
        "        return None\n"
        "    half = int((1.0 - ANNIHILATION) * (TOTAL_STEPS - 1) // 2)\n"
        "    if half == 0 or t >= 2 * half:\n"
        "        return MAX_MOMENTUM\n"
        "    if t <= half:\n"
        "        return MAX_MOMENTUM - (MAX_MOMENTUM - MIN_MOMENTUM) * t / half\n"
        "    return MIN_MOMENTUM + (MAX_MOMENTUM - MIN_MOMENTUM) * (t - half) / half\n\n\n"
        "class OneCycle(torch.optim.lr_scheduler.LambdaLR):\n"
        "    \"\"\"The rate through lr_factor; after each step also β of the optimizers that have a momentum.\"\"\"\n\n"
        "    def step(self, epoch=None):\n"
        "        super().step()\n"
        "        beta = momentum_at(self.last_epoch)\n"
        "        for group in self.optimizer.param_groups:\n"
        "            if beta is not None and \"momentum\" in group:\n"
        "                group[\"momentum\"] = beta\n")


def _performance_schedule(cfg: dict[str, Any], sched: Schedule, plan: dict[str, Any]) -> str:
    mode = "max" if cfg["monitor"].endswith("accuracy") else "min"
    return (
        f"PLATEAU = dict(mode={mode!r}, factor={cfg['factor']!r}, patience={max(int(cfg['patience']) - 1, 0)},\n"
        f"               threshold={cfg['min_delta']!r}, threshold_mode=\"abs\", min_lr={cfg['min_learning_rate']!r})\n"
        f"PLATEAU_MONITOR = {cfg['monitor']!r}\n"
        f"# schedule: performance (reduce on plateau) with patience {cfg['patience']}: the workbench reduces after\n"
        "# `patience` epochs without improvement, torch after more than `patience`, hence patience − 1 here.\n")


class ScheduleCode(NamedTuple):
    """What the script needs for a schedule: its definitions (from the schedule's config, the schedule
    and the run's plan) and the expression that makes ``scheduler`` from ``optimizer``."""

    code: Callable[[dict[str, Any], Schedule, dict[str, Any]], str]
    scheduler: str


_LAMBDA_LR = "torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)  # every batch"

# ``schedule.name`` → its code
SCHEDULE_CODE: dict[str, ScheduleCode] = {
    "constant": ScheduleCode(_constant_schedule, "None  # a constant learning rate"),
    "power": ScheduleCode(_power_schedule, _LAMBDA_LR),
    "exponential": ScheduleCode(_exponential_schedule, _LAMBDA_LR),
    "piecewise": ScheduleCode(_piecewise_schedule, _LAMBDA_LR),
    "performance": ScheduleCode(_performance_schedule, "torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, "
                                                       "**PLATEAU)  # once per epoch"),
    "one_cycle": ScheduleCode(_one_cycle_schedule, "OneCycle(optimizer, lr_factor)  # every batch, with β"),
}


# ----------------------------------------------------------------------------- optimizers


def _optimizer_class(name: str, doc: str, args: list[str], update: str) -> str:
    """The source of a small ``torch.optim.Optimizer`` for the script: ``args`` its hyperparameters
    (``"name=default"`` allowed), ``update`` the lines applied to each parameter ``p`` with a gradient
    (its state ``self.state[p]``, the hyperparameters ``group[...]``)."""
    names = [a.split("=")[0] for a in args]
    first, *rest = update.strip().splitlines()  # the first line sits right after the opening quotes
    lines = [first, *textwrap.dedent("\n".join(rest)).splitlines()]
    return (f"class {name}(torch.optim.Optimizer):\n"
            f'    """{doc}"""\n\n'
            f"    def __init__(self, params, {', '.join(args)}):\n"
            f"        super().__init__(params, dict({', '.join(f'{n}={n}' for n in names)}))\n\n"
            "    @torch.no_grad()\n"
            "    def step(self, closure=None):\n"
            "        for group in self.param_groups:\n"
            "            for p in group[\"params\"]:\n"
            "                if p.grad is None:\n"
            "                    continue\n"
            + "".join(f"                {line}\n" for line in lines))


# An optimizer's code: (helper classes, the body of make_optimizer) from its config (defaults filled in)
OptimizerCode = Callable[[dict[str, Any]], tuple[str, str]]


def _sgd(cfg: dict[str, Any]) -> tuple[str, str]:
    return "", f"    return torch.optim.SGD(params, lr={cfg['learning_rate']!r})  # θ ← θ − η∇J\n"


def _momentum(cfg: dict[str, Any]) -> tuple[str, str]:
    helper = _optimizer_class(
        "KerasMomentum",
        """Momentum as Keras and the workbench compute it (Eq. 11-4): m ← βm − η∇J, θ ← θ + m; with Nesterov
    (Eq. 11-5, Keras's form) θ ← θ + βm − η∇J, θ being the look-ahead point. torch.optim.SGD keeps
    b ← βb + ∇J and θ ← θ − ηb instead: the same steps while η is constant, but when a schedule changes
    η, torch rescales the whole accumulated velocity at once.""",
        ["lr", "momentum", "nesterov=False"],
        """m = self.state[p].setdefault("m", torch.zeros_like(p))
            m.mul_(group["momentum"]).add_(p.grad, alpha=-group["lr"])
            if group["nesterov"]:
                p.add_(m, alpha=group["momentum"]).add_(p.grad, alpha=-group["lr"])
            else:
                p.add_(m)""")
    nesterov = ", nesterov=True" if cfg["name"] == "nesterov" else ""
    return helper, (f"    return KerasMomentum(params, lr={cfg['learning_rate']!r}, momentum={cfg['momentum']!r}"
                    f"{nesterov})\n")


def _adam(cfg: dict[str, Any]) -> tuple[str, str]:
    adamw = cfg["name"] == "adamw"
    decay = f", weight_decay={cfg['weight_decay']!r}" if adamw else ""
    cls = "AdamW" if adamw else "Adam"
    return "", (
        "    # Keras adds ε to √v (ε-hat, outside the bias correction), torch to √v̂: the steps differ only\n"
        "    # where √v̂ is as small as ε." + (" AdamW's decoupled decay θ ← θ − ηλθ is the same in both.\n"
                                          if adamw else "\n")
        + f"    return torch.optim.{cls}(params, lr={cfg['learning_rate']!r}, betas=({cfg['beta_1']!r}, "
          f"{cfg['beta_2']!r}), eps={cfg['epsilon']!r}{decay})\n")


def _nadam(cfg: dict[str, Any]) -> tuple[str, str]:
    return "", (
        "    # Keras 3's Nadam: momentum schedule u_t = β1(1 − ½·0.96^t). torch's NAdam uses\n"
        "    # 0.96^(t·momentum_decay) (default 0.004, Keras 2's schedule): momentum_decay=1.0 is Keras 3's.\n"
        f"    return torch.optim.NAdam(params, lr={cfg['learning_rate']!r}, betas=({cfg['beta_1']!r}, "
        f"{cfg['beta_2']!r}), eps={cfg['epsilon']!r}, momentum_decay=1.0)\n")


def _rmsprop(cfg: dict[str, Any]) -> tuple[str, str]:
    helper = _optimizer_class(
        "KerasRMSprop",
        """RMSProp as Keras and the workbench compute it (Eq. 11-7): s ← ρs + (1 − ρ)g², θ ← θ − ηg/√(s + ε).
    torch.optim.RMSprop puts ε outside the root (√s + ε): a far larger step wherever s is tiny.""",
        ["lr", "rho", "epsilon"],
        """s = self.state[p].setdefault("s", torch.zeros_like(p))
            s.mul_(group["rho"]).addcmul_(p.grad, p.grad, value=1 - group["rho"])
            p.addcdiv_(p.grad, (s + group["epsilon"]).sqrt(), value=-group["lr"])""")
    return helper, (f"    return KerasRMSprop(params, lr={cfg['learning_rate']!r}, rho={cfg['rho']!r}, "
                    f"epsilon={cfg['epsilon']!r})\n")


def _adagrad(cfg: dict[str, Any]) -> tuple[str, str]:
    helper = _optimizer_class(
        "KerasAdagrad",
        """AdaGrad as Keras and the workbench compute it (Eq. 11-6): s ← s + g² (from s0), θ ← θ − ηg/√(s + ε).
    torch.optim.Adagrad puts ε outside the root (√s + ε).""",
        ["lr", "initial_accumulator_value", "epsilon"],
        """s = self.state[p].setdefault("s", torch.full_like(p, group["initial_accumulator_value"]))
        s.addcmul_(p.grad, p.grad)
        p.addcdiv_(p.grad, (s + group["epsilon"]).sqrt(), value=-group["lr"])""")
    return helper, (f"    return KerasAdagrad(params, lr={cfg['learning_rate']!r}, initial_accumulator_value="
                    f"{cfg['initial_accumulator_value']!r}, epsilon={cfg['epsilon']!r})\n")


def _adamax(cfg: dict[str, Any]) -> tuple[str, str]:
    helper = _optimizer_class(
        "KerasAdamax",
        """AdaMax as Keras and the workbench compute it: m ← β1m + (1 − β1)g, u ← max(β2u, |g|),
    θ ← θ − ηm/((1 − β1^t)(u + ε)). torch.optim.Adamax adds ε inside the maximum (max(β2u, |g| + ε))
    instead: a different u wherever |g| is as small as ε.""",
        ["lr", "beta_1", "beta_2", "epsilon"],
        """state = self.state[p]
                m = state.setdefault("m", torch.zeros_like(p))
                u = state.setdefault("u", torch.zeros_like(p))
                state["t"] = t = state.get("t", 0) + 1
                m.mul_(group["beta_1"]).add_(p.grad, alpha=1 - group["beta_1"])
                torch.maximum(u.mul_(group["beta_2"]), p.grad.abs(), out=u)
                p.addcdiv_(m, u + group["epsilon"], value=-group["lr"] / (1 - group["beta_1"] ** t))""")
    return helper, (f"    return KerasAdamax(params, lr={cfg['learning_rate']!r}, beta_1={cfg['beta_1']!r}, "
                    f"beta_2={cfg['beta_2']!r}, epsilon={cfg['epsilon']!r})\n")


# ``optimizer.name`` → its code
OPTIMIZER_CODE: dict[str, OptimizerCode] = {
    "sgd": _sgd, "momentum": _momentum, "nesterov": _momentum, "adagrad": _adagrad, "rmsprop": _rmsprop,
    "adam": _adam, "nadam": _nadam, "adamw": _adam, "adamax": _adamax,
}


# ----------------------------------------------------------------------------- what can be exported

# Every table above, by the family name its registry uses in messages
TRANSLATIONS: dict[str, dict[str, Any]] = {
    "optimizer": OPTIMIZER_CODE, "schedule": SCHEDULE_CODE, "activation": ACTIVATIONS, "dropout": DROPOUTS,
    "initializer": INITIALIZERS, "loss": LOSSES, "dataset": DATA_SOURCES, "augmentation": AUGMENTATIONS,
}

# Names a registry holds that the exporter refuses on purpose, and why
REFUSED: dict[str, dict[str, str]] = {
    "dataset": {"corrupted": "its real-versus-corrupted rows are made from another data set when loaded, which "
                             "the script does not reproduce (export a run on the base data set instead)",
                "image_folder": "the script does not decode and resize image folders yet (save the arrays as an npz "
                                "file and export a run on that)"},
}


def translation(family: str, name: Any) -> Any:
    """The exporter's entry for ``name`` in ``family`` (a key of :data:`TRANSLATIONS`), or
    :class:`ExportError` naming both and listing the supported names."""
    table = TRANSLATIONS[family]
    if isinstance(name, str) and name in table:
        return table[name]
    reason = REFUSED.get(family, {}).get(name, "the exporter has no PyTorch translation for it") \
        if isinstance(name, str) else "not a name"
    raise ExportError(f"cannot export {family} {name!r} to PyTorch: {reason}; "
                      f"supported {family} names: {', '.join(table)}")


def check_exportable(exp: Experiment) -> None:
    """Refuse (:class:`ExportError`) an experiment naming anything the exporter cannot translate."""
    translation("dataset", exp.data.source)
    translation("augmentation", exp.data.augmentation.type)
    for row in exp.model.layers:
        translation("activation", row.activation)
        translation("dropout", row.dropout_type)
    for init in [row.init for row in exp.model.layers] + [exp.model.output.init]:
        translation("initializer", init if isinstance(init, str) else init["name"])
    if exp.model.output.loss != "auto":
        translation("loss", exp.model.output.loss)
    translation("optimizer", exp.optimizer.name)
    translation("schedule", exp.schedule.name)


# ----------------------------------------------------------------------------- the script


def _schedule_code(exp: Experiment, plan: dict[str, Any]) -> tuple[str, str]:
    """(``lr_factor(t)`` = η(t)/η0 for torch's LambdaLR or the plateau settings, the scheduler expression)."""
    entry: ScheduleCode = translation("schedule", exp.schedule.name)
    eta0 = exp.learning_rate
    sched = SCHEDULES.get(exp.schedule.name).from_config(dict(exp.schedule.params), eta0)
    cfg = {k: v for k, v in sched.get_config().items() if k != "name"}
    head = f"ETA0 = {eta0!r}  # optimizer.learning_rate: η0\n"
    return head + entry.code(cfg, sched, plan), entry.scheduler


def _optimizer_code(exp: Experiment) -> tuple[str, str]:
    """(helper classes, the body of make_optimizer) for ``optimizer.name``."""
    write: OptimizerCode = translation("optimizer", exp.optimizer.name)
    cfg = OPTIMIZERS.get(exp.optimizer.name).from_config(dict(exp.optimizer.params)).get_config()
    return write(cfg)


def pytorch_script(session: Session, weights_file: str | None = None) -> str:
    """The text of the exported script (``weights_file``: the sibling .npz's name, if any).

    Raises :class:`ExportError` when the experiment names something the exporter cannot translate."""
    exp = session.experiment
    check_exportable(exp)
    state = session.state
    folder = state.get("base_dir")
    base_dir = Path(folder) if isinstance(folder, str) else (session.path.parent if session.path else None)
    n_inputs = int(session.weights["layers.0.kernel"].shape[0])
    n_outputs = int(session.weights["output.kernel"].shape[1])
    plan = dict(state.get("schedule_plan") or {})
    if not plan:  # sessions from before the plan was saved: batches of the stored training split
        n_train = len(session.optimizer.get("split/train", ()))
        plan["steps_per_epoch"] = max(1, -(-n_train // exp.training.batch_size))
        plan["total_steps"] = plan["steps_per_epoch"] * exp.training.epochs
    data_code, needs = translation("dataset", exp.data.source)(exp, base_dir)
    helper, make_opt = _optimizer_code(exp)
    schedule_code, scheduler = _schedule_code(exp, plan)
    reg = exp.regularization
    es = reg.early_stopping
    transfer = exp.model.transfer
    aug = exp.data.augmentation
    pieces = {
        # user strings: Python literals (repr), never raw text in the script
        "NAME": repr(exp.name),
        "SOURCE": repr(session.path.name if session.path else None),
        # the workbench's own text
        "VERSION": __version__,
        "DATE": _dt.date.today().isoformat(),
        "NEEDS": ", ".join(["torch", "numpy", *needs]),
        "SEED": repr(exp.seed),
        "EPOCHS": repr(exp.training.epochs),
        "BATCH": repr(exp.training.batch_size),
        "SHUFFLE": repr(exp.training.shuffle),
        "VALSPLIT": repr(exp.data.validation_split),
        "TESTSPLIT": repr(exp.data.test_split),
        "STANDARDIZE": repr(exp.data.standardize),
        "DTYPE": repr(exp.training.dtype),
        "WEIGHTS": (f"Path(__file__).with_name({weights_file!r})  # the session's weights (--no-weights: "
                    "fresh initialization)") if weights_file else "None  # exported without --with-weights",
        "DATA": data_code.rstrip() + "\n",
        "SPLIT": _split_code().rstrip() + "\n",
        "AUGMENT": repr(aug.type),
        "AUGPARAMS": repr(dict(aug.params)),
        "AUGCODE": _augmentation_code().rstrip() + "\n",
        "INPUTS": repr(n_inputs),
        "OUTPUTS": repr(n_outputs),
        "INPUTDROPOUT": repr(exp.model.input_dropout),
        "LAYERS": _layers_literal(exp),
        "OUTINIT": repr({"name": exp.model.output.init} if isinstance(exp.model.output.init, str)
                        else dict(exp.model.output.init)),
        "ACTIVATIONS": _script_table("ACTIVATIONS", ACTIVATIONS, "row"),
        "DROPOUTS": _script_table("DROPOUTS", DROPOUTS, "rate"),
        "INITIALIZERS": _script_table("INITIALIZERS", INITIALIZERS, "weight, init, fan_in, fan_out"),
        "LOSSES": _script_table("LOSSES", LOSSES, None),
        "LOSSNAME": repr(exp.model.output.loss),
        "HELPER": (helper + "\n\n") if helper else "",
        "MAKEOPT": make_opt.rstrip() + "\n",
        "SCHEDULE": schedule_code.rstrip() + "\n",
        "L1": repr(reg.l1), "L2": repr(reg.l2), "MAXNORM": repr(reg.max_norm),
        "CLIPMODE": repr(reg.gradient_clip.mode), "CLIPT": repr(reg.gradient_clip.threshold),
        "ES": repr(es.enabled), "ESMON": repr(es.monitor), "ESPAT": repr(es.patience),
        "ESDELTA": repr(es.min_delta), "ESRESTORE": repr(es.restore_best_weights),
        "ONNAN": repr(exp.training.on_nan),
        "FROZEN": repr([int(e["layer"]) for e in session.lineage if e.get("frozen")] if transfer else []),
        "UNFREEZE": repr(transfer.unfreeze_at_epoch if transfer else None),
        "LRFACTOR": repr(transfer.learning_rate_factor if transfer else 1.0),
        "SCHEDULER": scheduler,
    }
    if set(pieces) != SLOTS:
        raise AssertionError(f"template slots {sorted(SLOTS ^ set(pieces))} are filled or missing by mistake")
    # one pass: text put into one slot (a name such as "@@DATA@@") is never read as another slot
    return re.sub(r"@@([A-Z0-9]+)@@", lambda m: pieces[m.group(1)], TEMPLATE)


def export_pytorch(session: Session, out: str | Path, with_weights: bool = False) -> list[Path]:
    """Write the script (and, with weights, ``<stem>.weights.npz`` beside it); returns the paths.

    Raises :class:`ExportError`, before writing anything, for an experiment it cannot translate."""
    out = Path(out)
    weights_name = f"{out.stem}.weights.npz" if with_weights else None
    text = pytorch_script(session, weights_name).encode("utf-8")
    written = []
    if weights_name is not None:
        buf = io.BytesIO()
        np.savez(buf, **torch_state(session))
        data = buf.getvalue()
        atomic_write(out.with_name(weights_name), lambda fh: fh.write(data))
        written.append(out.with_name(weights_name))
    atomic_write(out, lambda fh: fh.write(text))
    written.insert(0, out)
    return written
