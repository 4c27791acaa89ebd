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

This module writes text only; it never imports PyTorch.
"""

from __future__ import annotations

import datetime as _dt
import inspect
import io
import pprint
import re
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from core import __version__
from core.data.sources import DATASETS, _balanced_labels
from core.engine.regularization import add_gaussian_noise, shift_images
from core.sessions.format import Session, atomic_write
from core.spec import Experiment
from core.training import stratified_split


class ExportError(ValueError):
    """The session cannot be exported; the message says why."""


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


# ----------------------------------------------------------------------------- code pieces


def _source(obj: Any) -> str:
    return textwrap.dedent(inspect.getsource(obj))


def _data_code(exp: Experiment, base_dir: Path | None) -> tuple[str, list[str]]:
    """The ``load_dataset(rng)`` function for ``data.source`` and the imports it needs."""
    source = exp.data.source
    if source in DATASETS and DATASETS.get(source).kind == "synthetic":
        cls = DATASETS.get(source)
        params = cls.from_config(dict(exp.data.params)).get_config()
        params.pop("name")
        body = _source(cls.load)
        body = re.sub(r"def load\(self, rng[^)]*\)[^:]*:", "def generate(rng):", body)
        body = body.replace("self.name", repr(source))
        body = re.sub(r"self\.(\w+)", r'PARAMS["\1"]', body)
        code = (f"# The workbench's {source!r} generator, copied from core/datasets.py; data.params with defaults:\n"
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
    if source in DATASETS:  # a small real data set shipped with scikit-learn
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
    path = Path(exp.data.path or "")
    if not path.is_absolute() and base_dir is not None:
        path = (base_dir / path).resolve()
    header = (f"DATA_PATH = Path({str(path)!r})  # data.path, resolved when exported; --data overrides it\n\n\n")
    labels = (
        "def _labels(values):\n"
        "    \"\"\"Class labels 0..k-1 in sorted order of the distinct values.\"\"\"\n"
        "    return np.unique(values, return_inverse=True)[1].astype(np.int64).reshape(-1)\n\n\n")
    if source == "npz":
        code = header + labels + (
            "def load_dataset(rng):\n"
            "    \"\"\"Arrays X and y of an .npz file: integer, boolean or text y are classes, float y a regression\n"
            "    target (the workbench's rules).\"\"\"\n"
            "    with np.load(DATA_PATH, allow_pickle=False) as npz:\n"
            "        X, y = npz[\"X\"].astype(np.float32), npz[\"y\"]\n"
            "    if y.dtype.kind == \"f\":\n"
            "        return X, y.reshape(len(y), -1).astype(np.float32)\n"
            "    return X, _labels(y.reshape(-1))\n")
        return code, []
    code = header + labels + (
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
        "        return X, _labels(np.array(target))\n")
    return code, []


def _split_code() -> str:
    code = _source(stratified_split)
    code = re.sub(r"\)\s*->\s*Split:", "):", code)
    return code.replace("return Split(*(", "return tuple((")


def _schedule_code(exp: Experiment, plan: dict[str, Any]) -> str:
    """``lr_factor(t)``: η(t)/η0 for torch's LambdaLR, or the plateau scheduler."""
    name, p = exp.schedule.name, dict(exp.schedule.params)
    eta0 = exp.learning_rate
    from core.engine.schedules import SCHEDULES

    sched = SCHEDULES.get(name).from_config(p, eta0)
    cfg = {k: v for k, v in sched.get_config().items() if k != "name"}
    head = f"ETA0 = {eta0!r}  # optimizer.learning_rate: η0\n"
    if name == "constant":
        return head + "SCHEDULE = None  # schedule.name = \"constant\": η(t) = η0\n"
    if name == "power":
        return head + (f"# schedule: power, η(t) = η0 / (1 + t/s)^c with s = {cfg['steps']}, c = {cfg['power']}\n"
                       f"def lr_factor(t):\n    return 1.0 / (1.0 + t / {cfg['steps']}) ** {cfg['power']!r}\n")
    if name == "exponential":
        return head + (f"# schedule: exponential, η(t) = η0 · 0.1^(t/s) with s = {cfg['steps']}\n"
                       f"def lr_factor(t):\n    return 0.1 ** (t / {cfg['steps']})\n")
    if name == "piecewise":
        return head + (f"STEPS_PER_EPOCH = {int(plan['steps_per_epoch'])}  # batches in the training split\n"
                       f"BOUNDARIES = {list(cfg['boundaries'])!r}  # epochs\n"
                       f"VALUES = {list(cfg['values'])!r}  # absolute rates, one more than boundaries\n\n\n"
                       "def lr_factor(t):\n"
                       "    \"\"\"schedule: piecewise constant, VALUES[i] while the epoch t // STEPS_PER_EPOCH is in\n"
                       "    [BOUNDARIES[i-1], BOUNDARIES[i]).\"\"\"\n"
                       "    return VALUES[bisect.bisect_right(BOUNDARIES, t // STEPS_PER_EPOCH)] / ETA0\n")
    if name == "one_cycle":
        return head + (
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
            "    return rate / ETA0\n")
    # performance scheduling: torch's ReduceLROnPlateau, stepped once per epoch
    mode = "max" if cfg["monitor"].endswith("accuracy") else "min"
    return head + (
        f"PLATEAU = dict(mode={mode!r}, factor={cfg['factor']!r}, patience={max(int(cfg['patience']) - 1, 0)},\n"
        f"               threshold={cfg['min_delta']!r}, threshold_mode=\"abs\", min_lr={cfg['min_learning_rate']!r})\n"
        f"PLATEAU_MONITOR = {cfg['monitor']!r}\n"
        f"# schedule: performance (reduce on plateau) with patience {cfg['patience']}: the workbench reduces after\n"
        "# `patience` epochs without improvement, torch after more than `patience`, hence patience − 1 here.\n")


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


def _optimizer_code(exp: Experiment) -> tuple[str, str]:
    """(helper classes, the body of make_optimizer) for ``optimizer.name``."""
    from core.engine.optimizers import OPTIMIZERS

    name = exp.optimizer.name
    cfg = OPTIMIZERS.get(name).from_config(dict(exp.optimizer.params)).get_config()
    lr = cfg["learning_rate"]
    if name == "sgd":
        return "", f"    return torch.optim.SGD(params, lr={lr!r})  # θ ← θ − η∇J\n"
    if name in ("momentum", "nesterov"):
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
        nesterov = ", nesterov=True" if name == "nesterov" else ""
        return helper, f"    return KerasMomentum(params, lr={lr!r}, momentum={cfg['momentum']!r}{nesterov})\n"
    if name in ("adam", "adamw"):
        decay = f", weight_decay={cfg['weight_decay']!r}" if name == "adamw" else ""
        cls = "AdamW" if name == "adamw" else "Adam"
        return "", (
            "    # Keras adds ε to √v (ε-hat, outside the bias correction), torch to √v̂: the steps differ only\n"
            "    # where √v̂ is as small as ε." + (" AdamW's decoupled decay θ ← θ − ηλθ is the same in both.\n"
                                              if name == "adamw" else "\n")
            + f"    return torch.optim.{cls}(params, lr={lr!r}, betas=({cfg['beta_1']!r}, {cfg['beta_2']!r}), "
              f"eps={cfg['epsilon']!r}{decay})\n")
    if name == "nadam":
        return "", (
            "    # Keras 3's Nadam: momentum schedule u_t = β1(1 − ½·0.96^t). torch's NAdam uses\n"
            "    # 0.96^(t·momentum_decay) (default 0.004, Keras 2's schedule): momentum_decay=1.0 is Keras 3's.\n"
            f"    return torch.optim.NAdam(params, lr={lr!r}, betas=({cfg['beta_1']!r}, {cfg['beta_2']!r}), "
            f"eps={cfg['epsilon']!r}, momentum_decay=1.0)\n")
    if name == "rmsprop":
        helper = _optimizer_class(
            "KerasRMSprop",
            """RMSProp as Keras and the workbench compute it (Eq. 11-7): s ← ρs + (1 − ρ)g², θ ← θ − ηg/√(s + ε).
    torch.optim.RMSprop puts ε outside the root (√s + ε): a far larger step wherever s is tiny.""",
            ["lr", "rho", "epsilon"],
            """s = self.state[p].setdefault("s", torch.zeros_like(p))
            s.mul_(group["rho"]).addcmul_(p.grad, p.grad, value=1 - group["rho"])
            p.addcdiv_(p.grad, (s + group["epsilon"]).sqrt(), value=-group["lr"])""")
        return helper, f"    return KerasRMSprop(params, lr={lr!r}, rho={cfg['rho']!r}, epsilon={cfg['epsilon']!r})\n"
    helper = _optimizer_class(
        "KerasAdagrad",
        """AdaGrad as Keras and the workbench compute it (Eq. 11-6): s ← s + g² (from s0), θ ← θ − ηg/√(s + ε).
    torch.optim.Adagrad puts ε outside the root (√s + ε).""",
        ["lr", "initial_accumulator_value", "epsilon"],
        """s = self.state[p].setdefault("s", torch.full_like(p, group["initial_accumulator_value"]))
        s.addcmul_(p.grad, p.grad)
        p.addcdiv_(p.grad, (s + group["epsilon"]).sqrt(), value=-group["lr"])""")
    return helper, (f"    return KerasAdagrad(params, lr={lr!r}, initial_accumulator_value="
                    f"{cfg['initial_accumulator_value']!r}, epsilon={cfg['epsilon']!r})\n")


def _layers_literal(exp: Experiment) -> str:
    rows = []
    for row in exp.model.layers:
        init = {"name": row.init} if isinstance(row.init, str) else dict(row.init)
        rows.append({"units": row.units, "init": init, "activation": row.activation, **dict(row.activation_params),
                     "batch_norm": row.batch_norm, "dropout": row.dropout, "use_bias": row.use_bias})
    return "[\n" + "".join(f"    {r!r},\n" for r in rows) + "]"


# ----------------------------------------------------------------------------- the script


def pytorch_script(session: Session, weights_file: str | None = None) -> str:
    """The text of the exported script (``weights_file``: the sibling .npz's name, if any)."""
    exp = session.experiment
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
    data_code, needs = _data_code(exp, base_dir)
    helper, make_opt = _optimizer_code(exp)
    reg = exp.regularization
    es = reg.early_stopping
    transfer = exp.model.transfer
    aug = exp.data.augmentation
    scheduler = {"constant": "None  # a constant learning rate",
                 "performance": "torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **PLATEAU)  # once per epoch",
                 }.get(exp.schedule.name, "torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)  # every batch")
    pieces = {
        "@@NAME@@": exp.name,
        "@@VERSION@@": __version__,
        "@@SOURCE@@": session.path.name if session.path else "a session",
        "@@DATE@@": _dt.date.today().isoformat(),
        "@@NEEDS@@": ", ".join(["torch", "numpy", *needs]),
        "@@SEED@@": repr(exp.seed),
        "@@EPOCHS@@": repr(exp.training.epochs),
        "@@BATCH@@": repr(exp.training.batch_size),
        "@@SHUFFLE@@": repr(exp.training.shuffle),
        "@@VALSPLIT@@": repr(exp.data.validation_split),
        "@@TESTSPLIT@@": repr(exp.data.test_split),
        "@@STANDARDIZE@@": repr(exp.data.standardize),
        "@@DTYPE@@": exp.training.dtype,
        "@@WEIGHTS@@": (f"Path(__file__).with_name({weights_file!r})  # the session's weights (--no-weights: "
                        "fresh initialization)") if weights_file else "None  # exported without --with-weights",
        "@@DATA@@": data_code.rstrip() + "\n",
        "@@SPLIT@@": _split_code().rstrip() + "\n",
        "@@AUGMENT@@": repr(aug.type),
        "@@AUGPARAMS@@": repr(dict(aug.params)),
        "@@AUGCODE@@": (_source(shift_images) + "\n\n" + _source(add_gaussian_noise)).rstrip() + "\n",
        "@@INPUTS@@": repr(n_inputs),
        "@@OUTPUTS@@": repr(n_outputs),
        "@@INPUTDROPOUT@@": repr(exp.model.input_dropout),
        "@@LAYERS@@": _layers_literal(exp),
        "@@OUTINIT@@": repr({"name": exp.model.output.init} if isinstance(exp.model.output.init, str)
                            else dict(exp.model.output.init)),
        "@@LOSSNAME@@": repr(exp.model.output.loss),
        "@@HELPER@@": (helper + "\n\n") if helper else "",
        "@@MAKEOPT@@": make_opt.rstrip() + "\n",
        "@@SCHEDULE@@": _schedule_code(exp, plan).rstrip() + "\n",
        "@@L1@@": repr(reg.l1), "@@L2@@": repr(reg.l2), "@@MAXNORM@@": repr(reg.max_norm),
        "@@CLIPMODE@@": repr(reg.gradient_clip.mode), "@@CLIPT@@": repr(reg.gradient_clip.threshold),
        "@@ES@@": repr(es.enabled), "@@ESMON@@": repr(es.monitor), "@@ESPAT@@": repr(es.patience),
        "@@ESDELTA@@": repr(es.min_delta), "@@ESRESTORE@@": repr(es.restore_best_weights),
        "@@ONNAN@@": repr(exp.training.on_nan),
        "@@FROZEN@@": repr([int(e["layer"]) for e in session.lineage if e.get("frozen")] if transfer else []),
        "@@UNFREEZE@@": repr(transfer.unfreeze_at_epoch if transfer else None),
        "@@LRFACTOR@@": repr(transfer.learning_rate_factor if transfer else 1.0),
        "@@SCHEDULER@@": scheduler,
    }
    text = TEMPLATE
    for key, value in pieces.items():
        text = text.replace(key, value)
    leftover = re.findall(r"@@[A-Z0-9]+@@", text)
    assert not leftover, leftover
    return text


def export_pytorch(session: Session, out: str | Path, with_weights: bool = False) -> list[Path]:
    """Write the script (and, with weights, ``<stem>.weights.npz`` beside it); returns the paths."""
    out = Path(out)
    written = []
    weights_name = f"{out.stem}.weights.npz" if with_weights else None
    if weights_name is not None:
        buf = io.BytesIO()
        np.savez(buf, **torch_state(session))
        data = buf.getvalue()
        atomic_write(out.with_name(weights_name), lambda fh: fh.write(data))
        written.append(out.with_name(weights_name))
    text = pytorch_script(session, weights_name).encode("utf-8")
    atomic_write(out, lambda fh: fh.write(text))
    written.insert(0, out)
    return written


TEMPLATE = '''#!/usr/bin/env python3
"""@@NAME@@

Exported by Gradient Workbench @@VERSION@@ from @@SOURCE@@ on @@DATE@@: a self-contained PyTorch
version of the experiment. It rebuilds the same data and split (the workbench's own NumPy generator
and seeds), the network, initialization, optimizer, learning-rate schedule and regularization, and
trains. Where PyTorch's built-ins follow other conventions than Keras (which the workbench follows),
a comment says so.

    python this_script.py [--epochs N] [--no-weights] [--data FILE] [--no-shuffle] [--save model.pt]

Needs: @@NEEDS@@. The weights PyTorch draws differ from the workbench's (another random generator);
the session's own weights are loaded when it was exported with --with-weights.
"""

from __future__ import annotations

import argparse
import bisect
import copy
import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

SEED = @@SEED@@
EPOCHS = @@EPOCHS@@
BATCH_SIZE = @@BATCH@@
SHUFFLE = @@SHUFFLE@@
VALIDATION_SPLIT, TEST_SPLIT = @@VALSPLIT@@, @@TESTSPLIT@@
STANDARDIZE = @@STANDARDIZE@@  # with statistics of the training split only
DTYPE = "@@DTYPE@@"
WEIGHTS = @@WEIGHTS@@

# ------------------------------------------------------------------------------------------- data

@@DATA@@

@@SPLIT@@

def load_data(data_path=None):
    """Train / validation / test arrays exactly as the workbench makes them: the seed's first three
    child streams feed the data generator, the split and (in the workbench) the initialization; the
    fourth shuffles the batches."""
    global DATA_PATH
    if data_path is not None:
        DATA_PATH = Path(data_path)
    data_rng, split_rng, _init_rng, train_rng = (np.random.Generator(np.random.PCG64(s))
                                                 for s in np.random.SeedSequence(SEED).spawn(4))
    X, y = load_dataset(data_rng)
    classification = y.ndim == 1
    train, val, test = stratified_split(y if classification else np.zeros(len(y)), VALIDATION_SPLIT,
                                        TEST_SPLIT, split_rng, stratify=classification)
    X = X.astype(DTYPE)
    if not classification:
        y = y.astype(DTYPE)
    mean, std = np.zeros(X.shape[1], DTYPE), np.ones(X.shape[1], DTYPE)
    if STANDARDIZE:
        mean = X[train].mean(axis=0)
        std = X[train].std(axis=0)
        std = np.where(std > 0, std, 1).astype(DTYPE)

    def standardize(A):
        return ((A - mean) / std).astype(DTYPE, copy=False)

    raw_train = AUGMENTATION == "shift"  # pixel shifts act on raw images; standardized per batch
    return {"X_train": X[train] if raw_train else standardize(X[train]), "y_train": y[train],
            "X_val": standardize(X[val]), "y_val": y[val], "X_test": standardize(X[test]), "y_test": y[test],
            "standardize": standardize, "rng": train_rng, "classification": classification}


AUGMENTATION, AUGMENTATION_PARAMS = @@AUGMENT@@, @@AUGPARAMS@@


@@AUGCODE@@

def augment(Xb, data):
    if AUGMENTATION == "shift":
        side = int(round(math.sqrt(Xb.shape[1])))
        return data["standardize"](shift_images(Xb, (side, side), AUGMENTATION_PARAMS["max_shift"], data["rng"]))
    if AUGMENTATION == "noise":
        return add_gaussian_noise(Xb, AUGMENTATION_PARAMS["stddev"], data["rng"])
    return Xb


# ---------------------------------------------------------------------------------------- network

N_INPUTS, N_OUTPUTS = @@INPUTS@@, @@OUTPUTS@@
INPUT_DROPOUT = @@INPUTDROPOUT@@
# One row of the workbench's layer table each: Dense → [batch norm] → activation → [batch norm] → [dropout]
LAYERS = @@LAYERS@@
OUTPUT_INIT = @@OUTINIT@@


def init_kernel(weight, init):
    """The workbench's initializers (Table 11-1), untruncated. torch's weight is (fan_out, fan_in), the
    transpose of the Keras kernel, so fan_in = weight.shape[1]."""
    fan_out, fan_in = weight.shape
    name = init["name"]
    if name == "zeros":
        return nn.init.zeros_(weight)
    if name == "random_normal":  # N(mean, stddev²); the workbench's default stddev is 1.0 (the naive N(0, 1))
        return nn.init.normal_(weight, init.get("mean", 0.0), init.get("stddev", 1.0))
    if name == "random_uniform":
        return nn.init.uniform_(weight, init.get("minval", -0.05), init.get("maxval", 0.05))
    family, distribution = name.rsplit("_", 1)
    variance = {"glorot": 2.0 / (fan_in + fan_out), "he": 2.0 / fan_in, "lecun": 1.0 / fan_in}[family]
    if distribution == "normal":
        return nn.init.normal_(weight, 0.0, math.sqrt(variance))  # Keras would truncate at 2σ
    limit = math.sqrt(3.0 * variance)  # U(−r, r) has variance r²/3
    return nn.init.uniform_(weight, -limit, limit)


ACTIVATIONS = {
    "logistic": lambda row: nn.Sigmoid(), "tanh": lambda row: nn.Tanh(), "relu": lambda row: nn.ReLU(),
    "leaky_relu": lambda row: nn.LeakyReLU(negative_slope=row["alpha"]), "elu": lambda row: nn.ELU(alpha=row["alpha"]),
    "selu": lambda row: nn.SELU(), "gelu": lambda row: nn.GELU(approximate="tanh"),  # the workbench's GELU
    "swish": lambda row: nn.SiLU(), "softplus": lambda row: nn.Softplus(), "linear": lambda row: nn.Identity(),
}


def batch_norm(units):
    # Keras's moving = 0.99·moving + 0.01·batch is torch's momentum 0.01 (torch weighs the new batch).
    # torch updates running_var with the unbiased batch variance (×m/(m−1)); Keras and the workbench use
    # the biased one (Eq. 11-3), so inference statistics differ by about 1/batch size.
    return nn.BatchNorm1d(units, eps=1e-5, momentum=0.01)


def build_model():
    torch.manual_seed(SEED)
    layers = OrderedDict()
    if INPUT_DROPOUT:
        layers["input_dropout"] = nn.Dropout(INPUT_DROPOUT)
    fan_in = N_INPUTS
    for i, row in enumerate(LAYERS):
        dense = layers[f"dense_{i}"] = nn.Linear(fan_in, row["units"], bias=row["use_bias"])
        init_kernel(dense.weight, row["init"])
        if dense.bias is not None:
            nn.init.zeros_(dense.bias)
        if row["batch_norm"] == "before_activation":
            layers[f"bn_{i}"] = batch_norm(row["units"])
        layers[f"act_{i}"] = ACTIVATIONS[row["activation"]](row)
        if row["batch_norm"] == "after_activation":
            layers[f"bn_{i}"] = batch_norm(row["units"])
        if row["dropout"]:
            layers[f"dropout_{i}"] = nn.Dropout(row["dropout"])  # inverted dropout, as Keras's
        fan_in = row["units"]
    output = layers["output"] = nn.Linear(fan_in, N_OUTPUTS)  # logits: the activation is in the loss
    init_kernel(output.weight, OUTPUT_INIT)
    nn.init.zeros_(output.bias)
    model = nn.Sequential(layers)
    return model.double() if DTYPE == "float64" else model


def load_weights(model, path):
    """The session's weights: PyTorch names, kernels already transposed to (out, in)."""
    with np.load(path, allow_pickle=False) as npz:
        state = {k: torch.from_numpy(npz[k]) for k in npz.files}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    return model


# ------------------------------------------------------------------------ optimizer and schedule

@@HELPER@@def make_optimizer(params):
@@MAKEOPT@@

@@SCHEDULE@@
# --------------------------------------------------------------------------------- regularization

L1, L2 = @@L1@@, @@L2@@  # cost l1·Σ|W| + l2·ΣW² over kernels only (Keras's; torch's weight_decay would be 2·l2)
MAX_NORM = @@MAXNORM@@  # each unit's incoming weights rescaled to ‖w‖₂ ≤ r after every step
CLIP_MODE, CLIP_THRESHOLD = @@CLIPMODE@@, @@CLIPT@@  # value / norm (per tensor) / global_norm
EARLY_STOPPING, MONITOR, PATIENCE, MIN_DELTA, RESTORE_BEST = @@ES@@, @@ESMON@@, @@ESPAT@@, @@ESDELTA@@, @@ESRESTORE@@
ON_NAN = @@ONNAN@@  # "stop" (the workbench's "rollback" is not reproduced here: stop instead)
FROZEN, UNFREEZE_AT_EPOCH, UNFREEZE_LR_FACTOR = @@FROZEN@@, @@UNFREEZE@@, @@LRFACTOR@@  # model.transfer


def kernels(model):
    return [m.weight for m in model if isinstance(m, nn.Linear)]


def penalty(model):
    total = 0.0
    for w in kernels(model):
        if L1:
            total = total + L1 * w.abs().sum()
        if L2:
            total = total + L2 * (w * w).sum()
    return total


def clip_gradients(model):
    params = [p for p in model.parameters() if p.grad is not None]
    if CLIP_MODE == "value":
        nn.utils.clip_grad_value_(params, CLIP_THRESHOLD)
    elif CLIP_MODE == "norm":  # Keras's clipnorm: each tensor on its own
        for p in params:
            nn.utils.clip_grad_norm_([p], CLIP_THRESHOLD)
    elif CLIP_MODE == "global_norm":
        nn.utils.clip_grad_norm_(params, CLIP_THRESHOLD)


@torch.no_grad()
def apply_max_norm(model):
    if MAX_NORM is not None:
        for w in kernels(model):
            w.copy_(torch.renorm(w, p=2, dim=0, maxnorm=MAX_NORM))  # rows of (out, in) = a unit's weights


def set_frozen(model, frozen):
    for i in FROZEN:
        for name in (f"dense_{i}", f"bn_{i}"):
            if hasattr(model, name):
                getattr(model, name).requires_grad_(not frozen)
                if frozen and name.startswith("bn_"):
                    getattr(model, name).eval()  # frozen layers keep their batch-norm statistics


# ---------------------------------------------------------------------------------------- training

LOSS_NAME = @@LOSSNAME@@


def make_loss(classification):
    name = LOSS_NAME if LOSS_NAME != "auto" else ("softmax_cross_entropy" if classification else "mse")
    if name == "softmax_cross_entropy":
        return nn.CrossEntropyLoss()  # softmax + cross-entropy on the logits, batch mean
    if name == "sigmoid_binary_cross_entropy":
        return nn.BCEWithLogitsLoss()  # sigmoid + binary cross-entropy on the one logit, batch mean
    return nn.MSELoss()  # linear output, mean over the outputs and the batch (Keras's MSE)


def targets(y, loss):
    t = torch.from_numpy(np.ascontiguousarray(y))
    if isinstance(loss, nn.CrossEntropyLoss):
        return t.long()
    return t.reshape(len(t), -1).to(torch.float64 if DTYPE == "float64" else torch.float32)


def correct(logits, y):
    if logits.shape[1] == 1:
        return int(((logits[:, 0] > 0).long() == torch.from_numpy(y).reshape(-1).long()).sum())
    return int((logits.argmax(dim=1) == torch.from_numpy(y)).sum())


@torch.no_grad()
def evaluate(model, X, y, loss_fn, classification):
    """(loss, accuracy) in inference mode; the loss includes the ℓ1/ℓ2 penalty, as Keras reports it."""
    if len(X) == 0:
        return math.nan, math.nan
    model.eval()
    logits = model(torch.from_numpy(X))
    loss = float(loss_fn(logits, targets(y, loss_fn)) + penalty(model))
    return loss, correct(logits, y) / len(y) if classification else math.nan


def train(model, data, epochs=EPOCHS, shuffle=SHUFFLE, verbose=True):
    """Mini-batch training as the workbench does it; returns the per-epoch history."""
    loss_fn = make_loss(data["classification"])
    optimizer = make_optimizer(model.parameters())
    scheduler = @@SCHEDULER@@
    X, y = data["X_train"], data["y_train"]
    history = {k: [] for k in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")}
    best, best_epoch, wait, best_state = None, 0, 0, None
    frozen = bool(FROZEN) and (UNFREEZE_AT_EPOCH is None or UNFREEZE_AT_EPOCH > 0)
    for epoch in range(epochs):
        model.train()
        set_frozen(model, frozen)
        order = data["rng"].permutation(len(X)) if shuffle else np.arange(len(X))
        loss_sum, hits, seen = 0.0, 0, 0
        for start in range(0, len(X), BATCH_SIZE):
            idx = order[start:start + BATCH_SIZE]
            xb = torch.from_numpy(augment(X[idx], data))
            logits = model(xb)
            loss = loss_fn(logits, targets(y[idx], loss_fn)) + penalty(model)
            if not math.isfinite(loss.item()):
                print(f"epoch {epoch + 1}: the loss became {loss.item()}; training stops (on_nan: {ON_NAN})")
                return history
            optimizer.zero_grad()
            loss.backward()
            clip_gradients(model)
            optimizer.step()
            apply_max_norm(model)
            if scheduler is not None and not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step()
            loss_sum += loss.item() * len(idx)
            hits += correct(logits.detach(), y[idx]) if data["classification"] else 0
            seen += len(idx)
        val_loss, val_acc = evaluate(model, data["X_val"], data["y_val"], loss_fn, data["classification"])
        logs = {"loss": loss_sum / seen, "accuracy": hits / seen if data["classification"] else math.nan,
                "val_loss": val_loss, "val_accuracy": val_acc, "learning_rate": optimizer.param_groups[0]["lr"]}
        for k, v in logs.items():
            history[k].append(v)
        if verbose:
            print(f"epoch {epoch + 1}/{epochs}  " + "  ".join(f"{k} {v:.4f}" for k, v in logs.items()
                                                             if not math.isnan(v)), flush=True)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(logs[PLATEAU_MONITOR])
        if frozen and UNFREEZE_AT_EPOCH is not None and epoch + 1 >= UNFREEZE_AT_EPOCH:
            frozen = False
            for group in optimizer.param_groups:
                group["lr"] *= UNFREEZE_LR_FACTOR
        if EARLY_STOPPING:
            value = logs[MONITOR]
            better = math.isfinite(value) and (best is None or (value > best + MIN_DELTA if "accuracy" in MONITOR
                                                                  else value < best - MIN_DELTA))
            if better:
                best, best_epoch, wait, best_state = value, epoch + 1, 0, copy.deepcopy(model.state_dict())
            else:
                wait += 1
                if wait >= PATIENCE:
                    print(f"early stopping: {MONITOR} has not improved for {PATIENCE} epochs (best {best:.4g} "
                          f"at epoch {best_epoch})")
                    if RESTORE_BEST and best_state is not None:
                        model.load_state_dict(best_state)
                    break
    return history


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--no-weights", action="store_true", help="start from a fresh initialization")
    parser.add_argument("--no-shuffle", action="store_true", help="batches in data order")
    parser.add_argument("--data", help="the data file (for npz / csv sources)")
    parser.add_argument("--save", help="save the trained state_dict here (torch.save)")
    args = parser.parse_args()
    if DTYPE == "float64":
        torch.set_default_dtype(torch.float64)
    data = load_data(args.data)
    model = build_model()
    if WEIGHTS is not None and not args.no_weights:
        load_weights(model, WEIGHTS)
    print(model)
    train(model, data, args.epochs, shuffle=SHUFFLE and not args.no_shuffle)
    if len(data["X_test"]):
        loss, acc = evaluate(model, data["X_test"], data["y_test"], make_loss(data["classification"]),
                             data["classification"])
        print(f"test loss {loss:.4f}" + ("" if math.isnan(acc) else f"  test accuracy {acc:.4f}"))
    if args.save:
        torch.save(model.state_dict(), args.save)


if __name__ == "__main__":
    main()
'''
