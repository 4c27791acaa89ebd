"""Benchmark of the NumPy training engine (``core.training.Trainer.train_batch``).

For each configuration it measures, in one run:

0. a plain hand-written NumPy loop of the same network (``PlainLoop``; its gradients checked
   against the engine's once), and the engine's step as a multiple of it (targets: at most
   1.0x with diagnostics off, 1.1x with diagnostics at every step);
1. seconds per epoch of the real engine (``train_batch`` in a loop over one epoch);
2. the share of the step spent on diagnostics (``diagnostics_every=1`` against ``10**6``,
   interleaved in the same run), plus direct timings of the per-step grad-norm dot products,
   the activation statistics and ``Trainer._record``;
3. the time of the bare float32 matrix products the step needs (forward ``X@W``, backward
   ``X.T@dY`` and ``dY@W.T``; preallocated inputs and outputs), and the engine's step time as a
   multiple of it (for information);
4. the optimizer's mandatory element-wise floor (the fewest NumPy ufunc passes its update
   equation needs, over as many values as the network has parameters) and the step as a multiple
   of matmul floor + optimizer floor: what a NumPy step cannot go below;
5. the diagnostics floor: the bare reductions the recorded quantities need, as a share of the step;
6. a dtype check: one step, then every parameter, gradient, optimizer slot and activation on
   the float32 path must be float32;

a phase breakdown of the step (a replica of ``train_batch``'s phases, timed one by one), and
issue 13's targets with PASS / FAIL per configuration and pass. With ``--baseline TREE`` the
engine of another revision's source tree is timed in the same rotation (before / after).
Everything runs once with one BLAS thread and once with two.

The script never changes the OPENBLAS_* environment variables; it records them and the kernel
OpenBLAS picked. Run it from the project root::

    python benchmarks/bench_engine.py [--quick] [--json results.json] [--profile] [--baseline TREE]

See benchmarks/README.md for how to read the output.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as _dt
import io
import json
import math
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.data import Dataset  # noqa: E402
from core.engine.network import BUFFER_NAMES, parameter_shapes  # noqa: E402
from core.engine.regularization import (  # noqa: E402
    add_weight_penalty_gradient,
    apply_max_norm,
    clip_gradients,
    weight_penalty,
)
from core.spec import Experiment, parse_experiment  # noqa: E402
from core.training import Trainer  # noqa: E402

ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
N_ROWS = 10_000
N_FEATURES = 784
N_CLASSES = 10
DATA_SEED = 20240611
NO_DIAGNOSTICS = 10**6
PLAIN_TARGET_NO_DIAG = 1.0  # engine step / plain NumPy loop step, diagnostics off
PLAIN_TARGET_DIAG = 1.1     # the same, diagnostics at every step


# ----------------------------------------------------------------------------- configurations


@dataclass(frozen=True)
class Config:
    key: str
    description: str
    hidden: tuple[int, ...]
    batch_size: int
    optimizer: dict[str, Any]
    layer_row: dict[str, Any]
    wide: bool  # the 784-300-100-10 network the 1.5x target is for
    short: str  # column heading of the phase table

    def experiment(self, diagnostics_every: int) -> Experiment:
        return parse_experiment(self.experiment_dict(diagnostics_every))

    def experiment_dict(self, diagnostics_every: int) -> dict[str, Any]:
        return {
            "name": f"bench {self.key}",
            "seed": 42,
            # The dataset is passed to Trainer directly; "source" only has to be a valid name.
            # All rows train: no validation or test split, so an epoch is N_ROWS / batch steps.
            "data": {"source": "digits", "validation_split": 0.0, "test_split": 0.0, "standardize": True},
            "model": {"layers": [{"units": u, **self.layer_row} for u in self.hidden],
                      "output": {"init": "glorot_uniform"}},
            "optimizer": self.optimizer,
            "schedule": {"name": "constant"},
            "training": {"epochs": 1000, "batch_size": self.batch_size, "shuffle": True,
                         "diagnostics_every": diagnostics_every, "dtype": "float32",
                         # The instruments (core.engine.instruments, measured by bench_instruments)
                         # are off: "diagnostics" here is the per-layer recorder alone.
                         "instruments": {"noise": {"enabled": False},
                                         "effective_learning_rate": {"enabled": False},
                                         "distributions": {"enabled": False}}},
        }

    def layer_sizes(self, n_features: int, n_classes: int) -> list[int]:
        return [n_features, *self.hidden, n_classes]

    def n_parameters(self, n_features: int, n_classes: int) -> int:
        """Trainable values (kernels, biases, γ and β; not the moving statistics)."""
        shapes = parameter_shapes(self.experiment(1).model, n_features, n_classes)
        return sum(math.prod(shape) for key, shape in shapes.items() if key.rsplit(".", 1)[1] not in BUFFER_NAMES)


RELU_ROW = {"init": "he_normal", "activation": "relu", "batch_norm": False, "use_bias": True}
ELU_BN_ROW = {"init": "he_normal", "activation": "elu", "batch_norm": "before_activation", "use_bias": False}
MOMENTUM = {"name": "momentum", "learning_rate": 0.01, "momentum": 0.9}
ADAM = {"name": "adam", "learning_rate": 0.001}
NADAM = {"name": "nadam", "learning_rate": 0.001}

CONFIGS = [
    Config("wide b32 momentum", "784-300-100-10 ReLU he_normal, batch 32, momentum 0.9",
           (300, 100), 32, MOMENTUM, RELU_ROW, True, "b32 mom"),
    Config("wide b32 adam", "784-300-100-10 ReLU he_normal, batch 32, Adam",
           (300, 100), 32, ADAM, RELU_ROW, True, "b32 adam"),
    Config("wide b128 momentum", "784-300-100-10 ReLU he_normal, batch 128, momentum 0.9",
           (300, 100), 128, MOMENTUM, RELU_ROW, True, "b128 mom"),
    Config("wide b128 adam", "784-300-100-10 ReLU he_normal, batch 128, Adam",
           (300, 100), 128, ADAM, RELU_ROW, True, "b128 adam"),
    Config("deep10x100 elu+bn b64 nadam",
           "784-(10x100 ELU, BN before activation, no bias)-10, he_normal, batch 64, Nadam",
           (100,) * 10, 64, NADAM, ELU_BN_ROW, False, "deep nadam"),
]


def synthetic_dataset() -> Dataset:
    """10,000 x 784 float32 features from a seeded Generator; int64 labels from a random linear
    teacher (so the task is learnable and the loss falls, as in real training)."""
    rng = np.random.Generator(np.random.PCG64(DATA_SEED))
    X = rng.standard_normal((N_ROWS, N_FEATURES), dtype=np.float32)
    teacher = rng.standard_normal((N_FEATURES, N_CLASSES), dtype=np.float32)
    noise = rng.standard_normal((N_ROWS, N_CLASSES), dtype=np.float32) * np.float32(5.0)
    y = np.argmax(X @ teacher + noise, axis=1).astype(np.int64)
    return Dataset(X=X, y=y, task="classification", n_classes=N_CLASSES,
                   feature_names=[f"x{j}" for j in range(N_FEATURES)],
                   class_names=[str(c) for c in range(N_CLASSES)], image_shape=None,
                   name=f"synthetic {N_ROWS}x{N_FEATURES}, {N_CLASSES} classes")


# ----------------------------------------------------------------------------- small helpers


@dataclass(frozen=True)
class Plan:
    quick: bool
    epoch_reps: int        # timed epochs per diagnostics setting
    warmup_steps: int      # train_batch calls before timing (per trainer)
    floor_seconds: float   # target duration of one timed block of bare matmuls
    micro_reps: int
    micro_iters: int
    phase_steps: int

    @classmethod
    def make(cls, quick: bool) -> Plan:
        if quick:
            return cls(True, epoch_reps=3, warmup_steps=30, floor_seconds=0.03,
                       micro_reps=3, micro_iters=100, phase_steps=100)
        return cls(False, epoch_reps=7, warmup_steps=400, floor_seconds=0.1,
                   micro_reps=7, micro_iters=400, phase_steps=600)


def summary(values: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values),
            "values": values}


def quartiles(values: list[float]) -> tuple[float, float]:
    """The first and third quartiles of ``values`` (both the value itself when there is one)."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (math.nan, math.nan)
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q3


def blas_info() -> list[dict[str, Any]]:
    keep = ("internal_api", "prefix", "version", "architecture", "num_threads", "threading_layer", "filepath")
    return [{k: info.get(k) for k in keep} for info in threadpool_info() if info.get("user_api") == "blas"]


@contextmanager
def blas_threads(limit: int | None) -> Iterator[None]:
    if limit is None:
        yield
    else:
        with threadpool_limits(limits=limit, user_api="blas"):
            yield


class HostLoad:
    """CPU time used by *other* processes (in cores, averaged) between ``start`` and ``stop``:
    busy time of the whole machine from /proc/stat (steal included) minus this process's own.
    A busy neighbour is what makes two-thread BLAS timings swing; None where /proc is missing."""

    def __init__(self) -> None:
        self._t0 = self._busy0 = self._self0 = 0.0

    @staticmethod
    def _busy() -> float | None:
        try:
            fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        except (OSError, ValueError):
            return None
        # user nice system idle iowait irq softirq steal: busy = all but idle and iowait
        return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")

    def start(self) -> HostLoad:
        self._t0, self._busy0, self._self0 = time.perf_counter(), self._busy() or 0.0, time.process_time()
        return self

    def stop(self) -> float | None:
        busy = self._busy()
        if busy is None:
            return None
        wall = time.perf_counter() - self._t0
        other = (busy - self._busy0) - (time.process_time() - self._self0)
        return max(0.0, other / wall) if wall > 0 else None


def timed_reps(fn: Callable[[], None], iters: int, reps: int) -> list[float]:
    """Seconds per call of ``fn``, ``reps`` times, each over ``iters`` calls."""
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        out.append((time.perf_counter() - t0) / iters)
    return out


# ----------------------------------------------------------------------------- 1 + 2: the engine


def make_trainer(config: Config, dataset: Dataset, diagnostics_every: int) -> Trainer:
    """A trainer of the configuration that trains with as many threads as the pass allows (the
    BLAS limit in force when it is made): its own threads (``Trainer.training_threads``:
    BLAS on one thread, the large products split by rows), as ``fit`` trains."""
    trainer = Trainer(config.experiment(diagnostics_every), dataset=dataset)
    trainer.blas_threads = max((i["num_threads"] for i in blas_info()), default=1)
    return trainer


def own_threads(trainer: Any) -> Any:
    """The trainer's ``training_threads()`` (an engine from before it had them: the BLAS limit in force)."""
    threads = getattr(trainer, "training_threads", None)
    return threads() if threads is not None else nullcontext()


def run_steps(trainer: Trainer, n: int) -> None:
    with own_threads(trainer):
        for _ in range(n):
            if trainer.batch_index >= trainer.steps_per_epoch:
                trainer.batch_index = 0  # the next train_batch begins a new epoch (fresh permutation)
            outcome = trainer.train_batch()
            if outcome is not None:
                raise RuntimeError(f"training stopped during the benchmark: {outcome}")


def time_epoch(trainer: Trainer) -> float:
    """Seconds for one epoch of ``train_batch`` calls (the permutation drawn at its start included;
    the end-of-epoch validation is not: the benchmark has no validation split)."""
    trainer.batch_index = 0
    t0 = time.perf_counter()
    run_steps(trainer, trainer.steps_per_epoch)
    return time.perf_counter() - t0


def engine_epochs(config: Config, dataset: Dataset, plan: Plan, floor: MatmulFloor,
                  opt_floor: OptimizerFloor, diag_floor: DiagnosticsFloor,
                  baseline: Baseline | None = None) -> tuple[dict[str, Any], Trainer]:
    """Epoch times with diagnostics at every step and (practically) never, of the plain NumPy
    loop and (with ``baseline``) of another revision's engine, all interleaved with each other
    and with blocks of the bare matmuls (``floor``), so every ratio compares timings of the same
    stretch of host load."""
    with_diag = make_trainer(config, dataset, 1)
    without = make_trainer(config, dataset, NO_DIAGNOSTICS)
    plain = PlainLoop(config, make_trainer(config, dataset, 1))
    runners: dict[str, Callable[[], float]] = {"diag": lambda: time_epoch(with_diag),
                                               "no_diag": lambda: time_epoch(without),
                                               "plain": lambda: time_plain_epoch(plain)}
    for t in (with_diag, without):
        run_steps(t, plan.warmup_steps)
    plain.epoch()
    if baseline is not None:
        old_on, old_off = (baseline.trainer(config, dataset, every) for every in (1, NO_DIAGNOSTICS))
        for t in (old_on, old_off):
            run_steps(t, plan.warmup_steps)
        runners["baseline_diag"] = lambda: time_epoch(old_on)
        runners["baseline_no_diag"] = lambda: time_epoch(old_off)
    times: dict[str, list[float]] = {k: [] for k in runners}
    names = list(runners)
    for rep in range(plan.epoch_reps):
        floor.time_once()
        opt_floor.time_once()
        diag_floor.time_once()
        # Rotate the order, so a slow drift of the host does not favour one setting.
        for name in names[rep % len(names):] + names[:rep % len(names)]:
            times[name].append(runners[name]())
    on, off, loop = times["diag"], times["no_diag"], times["plain"]
    steps = with_diag.steps_per_epoch
    paired = [(a - b) / a for a, b in zip(on, off, strict=True)]
    off_ratios = [a / b for a, b in zip(off, loop, strict=True)]
    on_ratios = [a / b for a, b in zip(on, loop, strict=True)]
    on_med, off_med, loop_med = statistics.median(on), statistics.median(off), statistics.median(loop)
    result = {
        "steps_per_epoch": steps,
        "epoch_seconds_diag": summary(on),
        "epoch_seconds_no_diag": summary(off),
        "epoch_seconds_plain": summary(loop),
        "step_seconds_diag": on_med / steps,
        "step_seconds_diag_min": min(on) / steps,
        "step_seconds_no_diag": off_med / steps,
        "step_seconds_no_diag_min": min(off) / steps,
        "step_seconds_plain": loop_med / steps,
        "diagnostics_share": (on_med - off_med) / on_med,
        "diagnostics_share_paired_median": statistics.median(paired),
        # The engine's step as a multiple of the plain loop's (medians; and the median of the
        # per-repetition ratios, each from epochs timed back to back).
        "x_plain_no_diag": off_med / loop_med,
        "x_plain_diag": on_med / loop_med,
        "x_plain_no_diag_paired": statistics.median(off_ratios),
        "x_plain_diag_paired": statistics.median(on_ratios),
        # The spread of those per-repetition ratios (first and third quartiles): on a shared host
        # a verdict whose quartiles straddle the target is the host's, not the engine's.
        "x_plain_no_diag_quartiles": quartiles(off_ratios),
        "x_plain_diag_quartiles": quartiles(on_ratios),
    }
    if baseline is not None:
        b_on, b_off = statistics.median(times["baseline_diag"]), statistics.median(times["baseline_no_diag"])
        result.update({"epoch_seconds_baseline_diag": summary(times["baseline_diag"]),
                       "epoch_seconds_baseline_no_diag": summary(times["baseline_no_diag"]),
                       "baseline_x_plain_no_diag": b_off / loop_med, "baseline_x_plain_diag": b_on / loop_med,
                       "x_baseline_no_diag": off_med / b_off, "x_baseline_diag": on_med / b_on})
    return result, with_diag


def time_plain_epoch(plain: PlainLoop) -> float:
    t0 = time.perf_counter()
    plain.epoch()
    return time.perf_counter() - t0


class Baseline:
    """The engine of another revision (a source tree holding its ``core/``, e.g. from
    ``git archive``), loaded beside the current one in this process: its ``core`` modules are
    imported from ``tree`` and then kept under their own names only inside this object, so
    the current ``core`` stays the one everything else imports."""

    def __init__(self, tree: str | Path) -> None:
        tree = Path(tree).resolve()
        if not (tree / "core" / "training.py").is_file():
            raise SystemExit(f"--baseline: {tree} holds no core/training.py (a source tree of the project)")
        current = {k: m for k, m in sys.modules.items() if k == "core" or k.startswith("core.")}
        for k in current:
            del sys.modules[k]
        sys.path.insert(0, str(tree))
        try:
            import core.spec as old_spec
            import core.training as old_training
        finally:
            sys.path.remove(str(tree))
            for k in [k for k in sys.modules if k == "core" or k.startswith("core.")]:
                del sys.modules[k]
            sys.modules.update(current)
        self.tree = tree
        self._spec = old_spec
        self._training = old_training

    def trainer(self, config: Config, dataset: Dataset, diagnostics_every: int) -> Any:
        """A trainer of that revision with the pass's threads, as ``make_trainer`` (left to its own
        choice, an engine that chooses would take two threads in the one-thread pass)."""
        experiment = self._spec.parse_experiment(config.experiment_dict(diagnostics_every))
        trainer = self._training.Trainer(experiment, dataset=dataset)
        if hasattr(trainer, "training_threads"):
            trainer.blas_threads = max((i["num_threads"] for i in blas_info()), default=1)
        return trainer


def diagnostics_micro(trainer: Trainer, plan: Plan) -> dict[str, Any]:
    """Direct per-step costs of the diagnostic pieces, on a trainer whose last step was recorded."""
    net = trainer.network

    def grad_sq() -> None:  # as train_batch does on a recorded step (they are also its NaN check)
        sq = [float(np.dot(g, g)) for g in trainer._kernel_grads_flat]
        math.isfinite(sum(sq))

    def grad_bound() -> None:  # the NaN check of an unrecorded step (‖X‖²·‖∂L/∂Z‖² per kernel)
        trainer._kernel_gradients_bounded()

    first_x = net.layers[0].dense._x
    assert first_x is not None
    Xb = first_x.copy()

    def forward(record: bool) -> Callable[[], None]:
        return lambda: net.forward(Xb, training=True, rng=trainer.rng, record=record)

    row = trainer.recorder.size - 1
    loss = float(trainer.recorder.table("loss")[row])
    lr = float(trainer.recorder.table("learning_rate")[row])

    def record() -> None:   # appends a row each time: the trainer's recorder grows by the repetitions
        trainer._record(loss, lr)

    out = {}
    with own_threads(trainer):
        for name, fn in (("grad_norm_dots", grad_sq), ("grad_bound", grad_bound), ("record", record),
                         ("forward_record", forward(True)), ("forward_plain", forward(False))):
            fn()
            out[name] = summary(timed_reps(fn, plan.micro_iters, plan.micro_reps))
    # The activation statistics cost what forward(record=True) takes beyond forward(record=False)
    # (measured in place: timing ActivationStats alone on warm arrays gives about 60 % of it).
    diffs = [a - b for a, b in zip(out["forward_record"]["values"], out["forward_plain"]["values"], strict=True)]
    out["activation_stats"] = summary(diffs)
    return out


# ----------------------------------------------------------------------------- 1b: the plain NumPy loop


class PlainLoop:
    """A minimal hand-written NumPy training loop of a configuration's network: what someone
    would write for this one network without an engine. Forward and backward with ``np.dot``,
    softmax cross-entropy, the configuration's optimizer as per-tensor in-place updates (one
    scratch array per tensor), float32 throughout; a fresh permutation per epoch and the batch
    gathered by fancy indexing, as the engine does. No diagnostics, no checks, no schedule.

    It starts from the engine's initial weights and trains on the engine's (standardized)
    training rows; ``check_gradients`` compares its gradients with the engine's once."""

    def __init__(self, config: Config, trainer: Trainer) -> None:
        row = config.layer_row
        self.activation = row["activation"]
        self.batch_norm = bool(row["batch_norm"])
        if self.activation not in ("relu", "elu") or row["batch_norm"] not in (False, "before_activation"):
            raise ValueError(f"the plain loop has no {row}")
        params = trainer.network.parameters()
        self.n_hidden = len(config.hidden)
        # θ in the engine's path order, as separate (not flat) float32 arrays.
        self.params = {k: np.array(a, dtype=np.float32) for k, a in params.items()}
        self.grads = {k: np.zeros_like(a) for k, a in self.params.items()}
        self.moving = {f"layers.{i}": (np.zeros(u, np.float32), np.ones(u, np.float32))
                       for i, u in enumerate(config.hidden)} if self.batch_norm else {}
        opt = config.optimizer
        self.optimizer = opt["name"]
        self.lr = float(opt["learning_rate"])
        self.slots = {k: tuple(np.zeros_like(a) for _ in range(1 if self.optimizer == "momentum" else 2))
                      for k, a in self.params.items()}
        self.scratch = {k: np.zeros_like(a) for k, a in self.params.items()}
        self.t = 0
        self.u_product = 1.0
        self.X = trainer.X_train
        self.y = trainer.y_train
        self.batch_size = trainer.batch_size
        self.steps_per_epoch = trainer.steps_per_epoch
        self.rng = np.random.default_rng(0)
        self._cache: list[tuple[np.ndarray, ...]] = []

    # -- forward and backward

    def gradients(self, X: np.ndarray, y: np.ndarray) -> float:
        """Fill ``self.grads`` for the batch; return the loss."""
        p, grads = self.params, self.grads
        cache = self._cache = []
        h = X
        for i in range(self.n_hidden):
            key = f"layers.{i}"
            z = np.dot(h, p[key + ".kernel"])
            if not self.batch_norm:
                z += p[key + ".bias"]
                x_hat = inv_std = None
            else:
                mean = z.mean(axis=0)
                centered = z - mean
                variance = (centered * centered).mean(axis=0)
                inv_std = np.float32(1.0) / np.sqrt(variance + np.float32(1e-5))
                x_hat = centered * inv_std
                z = x_hat * p[key + ".gamma"] + p[key + ".beta"]
                moving_mean, moving_var = self.moving[key]
                moving_mean *= np.float32(0.99)
                moving_mean += np.float32(0.01) * mean
                moving_var *= np.float32(0.99)
                moving_var += np.float32(0.01) * variance
            if self.activation == "relu":
                a = np.maximum(z, 0)
            else:
                a = np.where(z > 0, z, np.expm1(np.minimum(z, 0)))
            cache.append((h, z, a, x_hat, inv_std))
            h = a
        logits = np.dot(h, p["output.kernel"])
        logits += p["output.bias"]
        n = len(y)
        rows = np.arange(n)
        shifted = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        total = e.sum(axis=1, keepdims=True)
        loss = float(np.log(total).sum() - shifted[rows, y].sum()) / n
        d = e / (total * n)
        d[rows, y] -= np.float32(1.0 / n)
        np.dot(h.T, d, out=grads["output.kernel"])
        np.sum(d, axis=0, out=grads["output.bias"])
        d = np.dot(d, p["output.kernel"].T)
        for i in range(self.n_hidden - 1, -1, -1):
            key = f"layers.{i}"
            x, z, a, x_hat, inv_std = cache[i]
            if self.activation == "relu":
                d = d * (z > 0)
            else:
                d = d * np.where(z > 0, np.float32(1.0), a + np.float32(1.0))
            if not self.batch_norm:
                np.sum(d, axis=0, out=grads[key + ".bias"])
            else:
                np.sum(d * x_hat, axis=0, out=grads[key + ".gamma"])
                np.sum(d, axis=0, out=grads[key + ".beta"])
                g = d * p[key + ".gamma"]
                d = (inv_std / np.float32(n)) * (np.float32(n) * g - g.sum(axis=0)
                                                 - x_hat * (g * x_hat).sum(axis=0))
            np.dot(x.T, d, out=grads[key + ".kernel"])
            if i > 0:
                d = np.dot(d, p[key + ".kernel"].T)
        return loss

    # -- the update, in place

    def update(self) -> None:
        self.t += 1
        t, lr = self.t, self.lr
        if self.optimizer == "momentum":
            for k, w in self.params.items():
                (m,) = self.slots[k]
                s = self.scratch[k]
                m *= np.float32(0.9)
                np.multiply(self.grads[k], lr, out=s)
                m -= s
                w += m
            return
        b1, b2, eps = 0.9, 0.999, 1e-7
        if self.optimizer == "adam":
            alpha = lr * math.sqrt(1.0 - b2**t) / (1.0 - b1**t)
        else:  # nadam, Keras 3's form (as the engine's)
            u_t, u_next = b1 * (1.0 - 0.5 * 0.96**t), b1 * (1.0 - 0.5 * 0.96 ** (t + 1))
            self.u_product *= u_t
            c_m, c_g = u_next / (1.0 - self.u_product * u_next), (1.0 - u_t) / (1.0 - self.u_product)
            v_scale = 1.0 / math.sqrt(1.0 - b2**t)
        for k, w in self.params.items():
            g, s = self.grads[k], self.scratch[k]
            m, v = self.slots[k]
            m *= np.float32(b1)
            m += np.float32(1 - b1) * g
            v *= np.float32(b2)
            np.multiply(g, g, out=s)
            s *= np.float32(1 - b2)
            v += s
            np.sqrt(v, out=s)
            if self.optimizer == "adam":
                s += np.float32(eps)
                w -= np.float32(alpha) * m / s
            else:
                s *= np.float32(v_scale)
                s += np.float32(eps)
                w -= np.float32(lr) * (np.float32(c_m) * m + np.float32(c_g) * g) / s

    def epoch(self) -> None:
        """One epoch: a fresh permutation, then a step per batch."""
        perm = self.rng.permutation(len(self.X))
        bs = self.batch_size
        for b in range(self.steps_per_epoch):
            idx = perm[b * bs:(b + 1) * bs]
            self.gradients(self.X[idx], self.y[idx])
            self.update()

    def check_gradients(self, trainer: Trainer, rtol: float = 1e-4) -> dict[str, Any]:
        """The plain loop's gradients against the engine's, on the engine's weights and one batch
        (a fresh trainer: nothing stepped yet). Worst ‖g_plain − g_engine‖ / ‖g_engine‖ over the
        parameters, and whether it is within ``rtol``."""
        net = trainer.network
        Xb, yb = trainer.X_train[:trainer.batch_size], trainer.y_train[:trainer.batch_size]
        for k, a in net.parameters().items():
            np.copyto(self.params[k], a)
        loss_plain = self.gradients(Xb, yb)
        logits = net.forward(Xb, training=True, rng=trainer.rng)
        loss, grad_logits = trainer.loss.value_and_gradient(logits, yb)
        net.backward(grad_logits)
        worst, where = 0.0, ""
        for k, g in net.gradients().items():
            scale = float(np.linalg.norm(g.astype(np.float64))) or 1.0
            err = float(np.linalg.norm(self.grads[k].astype(np.float64) - g)) / scale
            if err > worst:
                worst, where = err, k
        loss_err = abs(loss_plain - loss) / max(abs(loss), 1e-12)
        # One update from these gradients each (same rule, same work): the weights must agree too.
        self.grads = {k: g.copy() for k, g in net.gradients().items()}
        self.update()
        trainer.optimizer.apply(net.parameters(), net.gradients(), self.lr)
        step_err = max(float(np.max(np.abs(self.params[k] - a))) / (float(np.max(np.abs(a))) or 1.0)
                       for k, a in net.parameters().items())
        self.grads = {k: np.zeros_like(a) for k, a in self.params.items()}
        return {"worst_relative_error": worst, "where": where, "loss_relative_error": loss_err,
                "update_relative_error": step_err, "rtol": rtol,
                "passed": worst <= rtol and loss_err <= rtol and step_err <= rtol}


# ----------------------------------------------------------------------------- 3: the matmul floor


def matmul_ops(sizes: list[int], batch: int, rng: np.random.Generator) -> dict[str, list[tuple[np.ndarray, ...]]]:
    """(a, b, out) for every product of one training step, float32, preallocated.

    Per layer (fan_in -> fan_out): forward Z = X @ W; backward dW = X.T @ dZ and, except for the
    first layer (the engine skips the input gradient there), dX = dZ @ W.T."""
    f32 = np.float32
    forward: list[tuple[np.ndarray, ...]] = []
    backward: list[tuple[np.ndarray, ...]] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        X = rng.standard_normal((batch, fan_in), dtype=f32)
        W = rng.standard_normal((fan_in, fan_out), dtype=f32)
        dZ = rng.standard_normal((batch, fan_out), dtype=f32)
        forward.append((X, W, np.empty((batch, fan_out), f32)))
        backward.append((X.T, dZ, np.empty((fan_in, fan_out), f32)))
        if i > 0:
            backward.append((dZ, W.T, np.empty((batch, fan_in), f32)))
    return {"step": forward + backward, "forward": forward, "backward": backward}


class MatmulFloor:
    """The bare products of one step; ``time_once`` times one block of ``iters`` steps.

    The engine benchmark calls it between its epochs, so the floor and the engine see the same
    state of the host (ratios are per run, never across runs)."""

    def __init__(self, config: Config, plan: Plan) -> None:
        sizes = config.layer_sizes(N_FEATURES, N_CLASSES)
        self.ops = matmul_ops(sizes, config.batch_size, np.random.Generator(np.random.PCG64(7)))
        self.flops = sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b, _ in self.ops["step"])
        self.iters: dict[str, int] = {}
        for part in self.ops:
            for _ in range(10):
                self._run(part)
            t0 = time.perf_counter()
            probe = 0
            while time.perf_counter() - t0 < plan.floor_seconds / 3:
                self._run(part)
                probe += 1
            self.iters[part] = max(5, int(plan.floor_seconds * probe / (time.perf_counter() - t0)))
        self.times: dict[str, list[float]] = {part: [] for part in self.ops}

    def _run(self, part: str) -> None:
        matmul = np.matmul
        for a, b, o in self.ops[part]:
            matmul(a, b, out=o)

    def time_once(self) -> None:
        for part in self.ops:
            self.times[part] += timed_reps(lambda p=part: self._run(p), self.iters[part], 1)

    def result(self) -> dict[str, Any]:
        step = self.times["step"]
        return {"products_per_step": len(self.ops["step"]), "flops_per_step": self.flops,
                "step_seconds": summary(step), "forward_seconds": summary(self.times["forward"]),
                "backward_seconds": summary(self.times["backward"]),
                "gflops_at_median": self.flops / statistics.median(step) / 1e9}


# ----------------------------------------------------------------------------- 3b: the optimizer floor


def _momentum_passes(a: dict[str, np.ndarray]) -> None:
    """m ← β m − η g;  θ ← θ + m: 4 passes (the gradient must survive for the diagnostics)."""
    m, g, t, p = a["m"], a["g"], a["t"], a["p"]
    m *= 0.9
    np.multiply(g, 0.01, out=t)
    m -= t
    p += m


def _adam_moments(m: np.ndarray, v: np.ndarray, g: np.ndarray, t: np.ndarray) -> None:
    """m ← β1 m + (1 − β1) g;  v ← β2 v + (1 − β2) g²: 7 passes (Adam and Nadam)."""
    np.subtract(g, m, out=t)
    t *= 0.1
    m += t
    np.multiply(g, g, out=t)
    t -= v
    t *= 0.001
    v += t


def _adam_passes(a: dict[str, np.ndarray]) -> None:
    """The moments (7 passes), then θ ← θ − α_t m ⊘ (√v + ε): 12 passes."""
    m, v, g, t, s, p = a["m"], a["v"], a["g"], a["t"], a["s"], a["p"]
    _adam_moments(m, v, g, t)
    np.sqrt(v, out=t)
    t += 1e-7
    np.divide(m, t, out=s)
    s *= -0.001
    p += s


def _nadam_passes(a: dict[str, np.ndarray]) -> None:
    """Adam's m and v (7 passes); m̂ = a m + b g with the rate and v's bias correction folded into
    a and b (3); √v + ε' (2); divide (1); θ += (1): 14 passes."""
    m, v, g, t, s, p = a["m"], a["v"], a["g"], a["t"], a["s"], a["p"]
    _adam_moments(m, v, g, t)
    np.multiply(m, -0.001, out=s)
    np.multiply(g, -0.0001, out=t)
    s += t
    np.sqrt(v, out=t)
    t += 1e-7
    s /= t
    p += s


# Optimizer name -> (the minimal NumPy ufunc passes of its update equation, number of passes).
OPTIMIZER_PASSES: dict[str, tuple[Callable[[dict[str, np.ndarray]], None], int]] = {
    "momentum": (_momentum_passes, 4), "adam": (_adam_passes, 12), "nadam": (_nadam_passes, 14)}


class OptimizerFloor:
    """The mandatory element-wise work of the optimizer's update: the fewest NumPy ufunc passes
    its equation needs (``OPTIMIZER_PASSES``), over one flat float32 array per operand with as
    many values as the network has parameters (the ideal layout: no per-tensor calls, no
    diagnostics, no validation). Timed on whole arrays and, when the parameters make more than
    one, on blocks of ``core.engine.optimizers.BLOCK_ELEMENTS`` (as the engine does); the faster
    counts. Timed between the engine's epochs, like ``MatmulFloor``."""

    def __init__(self, config: Config, n_params: int, plan: Plan) -> None:
        from core.engine.optimizers import BLOCK_ELEMENTS

        self.name = config.optimizer["name"]
        self.fn, self.passes = OPTIMIZER_PASSES[self.name]
        self.n_params = n_params
        rng = np.random.Generator(np.random.PCG64(11))
        f32 = np.float32
        # Values of a real run's scale (no denormals, no overflow over thousands of repetitions).
        self.arrays = {"p": rng.standard_normal(n_params, dtype=f32) * f32(0.05),
                       "g": rng.standard_normal(n_params, dtype=f32) * f32(0.01),
                       "m": np.zeros(n_params, f32), "v": np.full(n_params, 1e-4, f32),
                       "t": np.zeros(n_params, f32), "s": np.zeros(n_params, f32)}
        edges = list(range(0, n_params, BLOCK_ELEMENTS))
        self.blocks = [{k: a[lo:lo + BLOCK_ELEMENTS] for k, a in self.arrays.items()} for lo in edges]
        self.iters = 0
        # One block is the whole array: timing it twice would only let the noise pick the faster.
        self.times: dict[str, list[float]] = {"whole": [], **({"blocks": []} if len(self.blocks) > 1 else {})}
        self._run("whole")
        t0 = time.perf_counter()
        probe = 0
        while time.perf_counter() - t0 < plan.floor_seconds / 3:
            self._run("whole")
            probe += 1
        self.iters = max(5, int(plan.floor_seconds * probe / (time.perf_counter() - t0)))

    def _run(self, layout: str) -> None:
        if layout == "whole":
            self.fn(self.arrays)
        else:
            for block in self.blocks:
                self.fn(block)

    def time_once(self) -> None:
        for layout in self.times:
            self.times[layout] += timed_reps(lambda lay=layout: self._run(lay), self.iters, 1)

    def result(self) -> dict[str, Any]:
        med = {k: statistics.median(v) for k, v in self.times.items()}
        best = min(med, key=med.__getitem__)
        return {"optimizer": self.name, "passes": self.passes, "parameters": self.n_params,
                "layout": best, "step_seconds": summary(self.times[best]),
                "whole_seconds": summary(self.times["whole"]),
                "blocks_seconds": summary(self.times["blocks"]) if "blocks" in self.times else None}


class DiagnosticsFloor:
    """The reductions a recorded step cannot avoid, as bare NumPy calls on hot float32 arrays:
    ‖W‖² and ‖ΔW‖² over every kernel (two dots over as many values as the kernels hold) and,
    per layer, the activations' column sums (one BLAS product: mean and dead units) and sum of
    squares (one dot). Timed between the engine's epochs, like ``MatmulFloor``."""

    def __init__(self, config: Config, plan: Plan) -> None:
        sizes = config.layer_sizes(N_FEATURES, N_CLASSES)
        rng = np.random.Generator(np.random.PCG64(13))
        f32 = np.float32
        n_kernel = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.weights = rng.standard_normal(n_kernel, dtype=f32)
        self.steps = rng.standard_normal(n_kernel, dtype=f32)
        self.activations = [np.maximum(rng.standard_normal((config.batch_size, units), dtype=f32), 0)
                            for units in sizes[1:]]
        self.ones = np.ones(config.batch_size, f32)
        self.times: list[float] = []
        self._run()
        t0 = time.perf_counter()
        probe = 0
        while time.perf_counter() - t0 < plan.floor_seconds / 3:
            self._run()
            probe += 1
        self.iters = max(5, int(plan.floor_seconds * probe / (time.perf_counter() - t0)))

    def _run(self) -> None:
        dot, ones = np.dot, self.ones
        dot(self.weights, self.weights)
        dot(self.steps, self.steps)
        for a in self.activations:
            ones @ a
            flat = a.ravel()
            dot(flat, flat)

    def time_once(self) -> None:
        self.times += timed_reps(self._run, self.iters, 1)

    def result(self) -> dict[str, Any]:
        return {"kernel_values": int(self.weights.size), "layers": len(self.activations),
                "step_seconds": summary(self.times)}


# ----------------------------------------------------------------------------- 4: the dtype check


def _spy(obj: Any, method: str, label: str, sink: list[tuple[str, Any]]) -> None:
    """Wrap a bound method on this instance only (the class, i.e. core/, is untouched)."""
    original = getattr(obj, method)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        sink.append((label, result))
        return result

    setattr(obj, method, wrapper)


def _arrays_in(label: str, value: Any) -> Iterator[tuple[str, np.ndarray]]:
    if isinstance(value, np.ndarray):
        yield label, value
    elif isinstance(value, (tuple, list)):
        for i, v in enumerate(value):
            yield from _arrays_in(f"{label}[{i}]", v)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _arrays_in(f"{label}.{k}", v)


def dtype_check(config: Config, dataset: Dataset) -> dict[str, Any]:
    """One recorded training step; every floating array the float32 path touches must be float32."""
    trainer = make_trainer(config, dataset, 1)
    net = trainer.network
    seen: list[tuple[str, Any]] = []
    for i, layer in enumerate(net.layers):
        for obj, name in ((layer, f"layers.{i}"), (layer.dense, f"layers.{i}.dense"),
                          (layer.activation, f"layers.{i}.activation"), (layer.batch_norm, f"layers.{i}.bn")):
            if obj is not None:
                _spy(obj, "forward", f"{name}.forward()", seen)
                _spy(obj, "backward", f"{name}.backward()", seen)
    _spy(net.output, "forward", "output.forward()", seen)
    _spy(net.output, "backward", "output.backward()", seen)
    _spy(trainer.loss, "value_and_gradient", "loss.value_and_gradient()", seen)
    run_steps(trainer, 1)

    found: list[tuple[str, np.ndarray]] = []
    for label, value in seen:
        found.extend(_arrays_in(label, value))
    found.extend(_arrays_in("params", net.parameters()))
    found.extend(_arrays_in("grads", net.gradients()))
    found.extend(_arrays_in("buffers", net.buffers()))
    # Every array the optimizer holds (slots, step and scratch buffers), whatever their names.
    found.extend(_arrays_in("optimizer", dict(vars(trainer.optimizer))))
    found.extend(_arrays_in("data", {"X_train": trainer.X_train, "feature_mean": trainer.feature_mean,
                                     "feature_std": trainer.feature_std}))
    for i, layer in enumerate(net.layers):  # cached activations and masks (_x, _z, _a, _x_hat, ...)
        for obj, name in ((layer, f"layers.{i}"), (layer.dense, f"layers.{i}.dense"),
                          (layer.batch_norm, f"layers.{i}.bn")):
            if obj is not None:
                found.extend(_arrays_in(name, {k: v for k, v in vars(obj).items() if isinstance(v, np.ndarray)}))
    found.extend(_arrays_in("output", {k: v for k, v in vars(net.output).items() if isinstance(v, np.ndarray)}))
    floating = [(label, a) for label, a in found if np.issubdtype(a.dtype, np.floating)]
    bad = [f"{label}: {a.dtype}" for label, a in floating if a.dtype != np.float32]
    return {"passed": not bad and bool(floating), "arrays_checked": len(floating), "not_float32": bad[:20]}


# ----------------------------------------------------------------------------- phase breakdown


PHASES = ("batch gather", "forward", "loss", "backward", "penalty", "grad-norm dots", "diag row",
          "trainable+clip", "optimizer.apply", "post-step", "_record")


def phase_breakdown(trainer: Trainer, steps: int) -> dict[str, Any]:
    """A replica of ``Trainer.train_batch``, phase by phase, with a clock between phases.

    It calls the same engine pieces in the same order (see core/training.py) on the trainer's
    own state; keep it in step with train_batch when that changes. The sum of the phases is
    compared with the real train_batch step time in the report ("coverage")."""
    acc = dict.fromkeys(PHASES, 0.0)
    clock = time.perf_counter
    # train_batch enters np.errstate(over="ignore", invalid="ignore") at every step; here it is
    # entered once, so its few microseconds show up as train_batch minus the sum of the phases.
    with np.errstate(over="ignore", invalid="ignore"), own_threads(trainer):
        _phase_steps(trainer, steps, acc, clock)
    per_step = {k: v / steps for k, v in acc.items()}
    return {"steps": steps, "seconds_per_step": per_step, "total": sum(per_step.values())}


def _phase_steps(trainer: Trainer, steps: int, acc: dict[str, float], clock: Callable[[], float]) -> None:
    spec = trainer.experiment
    reg = spec.regularization
    net = trainer.network
    params_all, grads_all = trainer._params, trainer._grads
    for _ in range(steps):
        if trainer.batch_index >= trainer.steps_per_epoch:
            trainer.batch_index = 0
        if trainer.batch_index == 0:
            trainer._begin_epoch()
        t0 = clock()
        assert trainer._perm is not None
        bs = trainer.batch_size
        idx = trainer._perm[trainer.batch_index * bs:(trainer.batch_index + 1) * bs]
        Xb, yb = trainer._augment(trainer.X_train[idx]), trainer.y_train[idx]
        record = trainer.step % spec.training.diagnostics_every == 0
        t1 = clock()
        logits = net.forward(Xb, training=True, rng=trainer.rng, record=record)
        t2 = clock()
        loss, grad_logits = trainer.loss.value_and_gradient(logits, yb, checked=True)
        t3 = clock()
        net.backward(grad_logits)
        t4 = clock()
        if reg.l1 or reg.l2:
            kernels = {k: params_all[k] for k in trainer._kernel_keys}
            loss += weight_penalty(kernels, reg.l1, reg.l2)
            add_weight_penalty_gradient(kernels, grads_all, reg.l1, reg.l2)
        t5 = clock()
        bounded = not (record or reg.l1 or reg.l2) and trainer._kernel_gradients_bounded()
        grad_sq = None if bounded else trainer._kernel_grad_squares()
        if not (math.isfinite(loss) and (bounded or math.isfinite(sum(grad_sq)))):
            raise RuntimeError("non-finite loss or gradient during the phase breakdown")
        t6 = clock()
        if record:
            trainer._record_gradients(grad_sq)
        t7 = clock()
        params, grads = trainer._trainable_arrays()
        clip_gradients(grads, reg.gradient_clip.mode, reg.gradient_clip.threshold)
        t8 = clock()
        lr = trainer.schedule(trainer.step) * trainer.lr_scale
        trainer.optimizer.apply(params, grads, lr, measure=trainer._kernel_key_set if record else ())
        t9 = clock()
        if reg.max_norm is not None:
            apply_max_norm({k: params[k] for k in trainer._kernel_keys if k in grads}, reg.max_norm)
        trainer.step += 1
        trainer.batch_index += 1
        n = len(idx)
        trainer._epoch_sums[0] += loss * n
        if trainer.classification:
            trainer._epoch_sums[1] += trainer._count_correct(logits, yb)
        trainer._epoch_sums[2] += n
        t10 = clock()
        if record:
            trainer._record(loss, lr)
        t11 = clock()
        for name, a, b in zip(PHASES, (t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10),
                              (t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11), strict=True):
            acc[name] += b - a


def profile_steps(trainer: Trainer, steps: int, top: int = 25) -> str:
    prof = cProfile.Profile()
    prof.enable()
    run_steps(trainer, steps)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    return buf.getvalue()


# ----------------------------------------------------------------------------- one pass


def run_pass(label: str, limit: int | None, dataset: Dataset, plan: Plan, configs: list[Config],
             profile: bool, baseline: Baseline | None = None) -> dict[str, Any]:
    load = HostLoad().start()
    with blas_threads(limit):
        info = blas_info()
        print(f"\n== pass: {label} (BLAS threads: {', '.join(str(i['num_threads']) for i in info)}) ==",
              file=sys.stderr, flush=True)
        results: dict[str, Any] = {}
        profiles: dict[str, str] = {}
        for config in configs:
            t0 = time.perf_counter()
            floor_timer = MatmulFloor(config, plan)
            opt_timer = OptimizerFloor(config, config.n_parameters(N_FEATURES, N_CLASSES), plan)
            diag_timer = DiagnosticsFloor(config, plan)
            engine, trainer = engine_epochs(config, dataset, plan, floor_timer, opt_timer, diag_timer,
                                            baseline)
            floor = floor_timer.result()
            opt_floor = opt_timer.result()
            diag_floor = diag_timer.result()
            assert opt_floor["parameters"] == sum(a.size for a in trainer.network.parameters().values())
            micro = diagnostics_micro(trainer, plan)
            phases = phase_breakdown(trainer, plan.phase_steps)
            floor_med = floor["step_seconds"]["median"]
            floor_min = floor["step_seconds"]["min"]
            step_on = engine["step_seconds_diag"]
            results[config.key] = {
                "description": config.description,
                "short": config.short,
                "batch_size": config.batch_size,
                "layer_sizes": config.layer_sizes(N_FEATURES, N_CLASSES),
                "engine": engine,
                "matmul_floor": floor,
                "ratio_diag": step_on / floor_med,
                "ratio_diag_min": engine["step_seconds_diag_min"] / floor_min,
                "ratio_no_diag": engine["step_seconds_no_diag"] / floor_med,
                "ratio_no_diag_min": engine["step_seconds_no_diag_min"] / floor_min,
                "optimizer_floor": opt_floor,
                "diagnostics_floor": diag_floor,
                # The least the recorded quantities can cost, as a share of the step.
                "diagnostics_floor_share": diag_floor["step_seconds"]["median"] / step_on,
                # The step against everything a NumPy step must do: the products and the update's
                # element-wise passes (both at their bare minimum, measured in this run).
                "ratio_diag_both_floors": step_on / (floor_med + opt_floor["step_seconds"]["median"]),
                "diagnostics_micro": micro,
                "phases": phases,
                "phase_coverage": phases["total"] / step_on,
            }
            if profile and config.wide:
                profiles[config.key] = profile_steps(trainer, plan.phase_steps)
            print(f"  {config.key}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    return {"label": label, "blas_thread_limit": limit, "threadpool_info": info,
            "other_processes_cores": load.stop(), "configs": results, "profiles": profiles}


# ----------------------------------------------------------------------------- printing


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f}"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _busy_mark(p: dict[str, Any]) -> str:
    """A note on a verdict from a pass that shared the machine (see the warnings below)."""
    other = p["other_processes_cores"]
    limit = 0.25 if p["blas_thread_limit"] != 1 else 0.5
    return f"  [host busy: {other:.2f} cores used by others; unreliable]" if other is not None and other > limit else ""


def targets(report: dict[str, Any]) -> list[str]:
    """Issue 13's targets, PASS / FAIL per configuration and pass: the engine's step at most
    ``PLAIN_TARGET_NO_DIAG`` times the plain NumPy loop's with diagnostics off and at most
    ``PLAIN_TARGET_DIAG`` times with diagnostics at every step (medians of epochs timed in the
    same rotation); and the two correctness checks the comparison rests on. The matmul-floor
    ratios of issue 2 are reported for information only."""
    lines = ["", "TARGETS (issue 13)", "------------------"]
    dtype = report["dtype_check"]
    lines.append(f"no float64 on the float32 path: {_verdict(all(v['passed'] for v in dtype.values()))} "
                 f"({len(dtype)} configurations, one recorded step each; list above)")
    check = report["plain_check"]
    worst = max((v["worst_relative_error"] for v in check.values()), default=0.0)
    lines.append(f"plain loop computes the engine's gradients, loss and update: "
                 f"{_verdict(all(v['passed'] for v in check.values()))} (worst relative error {worst:.1e})")
    lines.append(f"engine step / plain loop step: at most {PLAIN_TARGET_NO_DIAG:.1f}x with diagnostics off, "
                 f"{PLAIN_TARGET_DIAG:.1f}x with diagnostics at every step (median epochs; in brackets the "
                 f"median of the per-repetition ratios and their quartiles; 'noise' where the quartiles "
                 f"straddle the target):")
    counts = {"pass": 0, "fail": 0, "noise": 0}
    for p in report["passes"]:
        busy = _busy_mark(p)
        for key, r in p["configs"].items():
            e = r["engine"]
            for what, ratio, paired, (q1, q3), target in (
                    ("off", e["x_plain_no_diag"], e["x_plain_no_diag_paired"], e["x_plain_no_diag_quartiles"],
                     PLAIN_TARGET_NO_DIAG),
                    ("every step", e["x_plain_diag"], e["x_plain_diag_paired"], e["x_plain_diag_quartiles"],
                     PLAIN_TARGET_DIAG)):
                ok = ratio <= target
                counts["pass" if ok else "fail"] += 1
                noise = q1 <= target < q3
                counts["noise"] += noise
                lines.append(f"  {_verdict(ok)}  {p['label']:<16}{key:<29}diagnostics {what:<11}"
                             f"{ratio:>5.2f}x ({paired:.2f}; {q1:.2f}-{q3:.2f}){'  noise' if noise else ''}{busy}")
    lines.append(f"speed verdicts: {counts['pass']} pass, {counts['fail']} fail; {counts['noise']} of them within "
                 f"the noise (quartiles on both sides of the target)")
    lines.append("for information (issue 2's former targets): step with diagnostics / bare matmuls, and the")
    lines.append("diagnostics share of the step:")
    for p in report["passes"]:
        for key, r in p["configs"].items():
            lines.append(f"        {p['label']:<16}{key:<29}x floor {r['ratio_diag']:>5.2f}   "
                         f"x (matmul+optimizer floor) {r['ratio_diag_both_floors']:>5.2f}   "
                         f"diagnostics {r['engine']['diagnostics_share']:>5.1%}")
    return lines


def format_report(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = ["", "Gradient Workbench engine benchmark", "=" * 35]
    lines.append(f"date {meta['date']}  python {meta['python']}  numpy {meta['numpy']}  cpus {meta['cpu_count']}"
                 f"  mode {'quick' if meta['quick'] else 'full'}")
    env = ", ".join(f"{k}={v if v is not None else '(unset)'}" for k, v in meta["env"].items())
    lines.append(f"env: {env}")
    for info in meta["blas_default"]:
        lines.append(f"BLAS: {info['internal_api']} {info['version']}, kernel (architecture) "
                     f"{info['architecture']}, default threads {info['num_threads']}, {info['threading_layer']}")
    lines.append(f"data: {meta['data']}; timing = median (min) of {meta['epoch_reps']} epochs per setting")
    if meta["other_processes_cores_before"] is not None:
        lines.append(f"other processes used {meta['other_processes_cores_before']:.2f} cores just before the run")
    dtype = report["dtype_check"]
    lines.append("dtype check (one step, float32 path): " + "; ".join(
        f"{k}: {'PASS' if v['passed'] else 'FAIL'} ({v['arrays_checked']} arrays)" for k, v in dtype.items()))
    for k, v in dtype.items():
        if v["not_float32"]:
            lines.append(f"  {k} not float32: {', '.join(v['not_float32'])}")

    base = meta.get("baseline") is not None
    if base:
        lines.append(f"baseline engine: {meta['baseline']}")
    for p in report["passes"]:
        threads = ", ".join(str(i["num_threads"]) for i in p["threadpool_info"])
        other = p["other_processes_cores"]
        busy = "" if other is None else f"; other processes used {other:.2f} cores meanwhile"
        lines += ["", f"--- {p['label']} (BLAS threads {threads}{busy}) ---"]
        head = (f"{'config':<29}{'steps':>6}{'s/epoch diag':>17}{'s/epoch no-diag':>17}{'µs/step':>9}"
                f"{'diag':>7}{'matmul µs':>11}{'GF/s':>6}{'x floor':>13}{'no-diag':>13}")
        lines += [head, "-" * len(head)]
        for key, r in p["configs"].items():
            e, f = r["engine"], r["matmul_floor"]
            on, off = e["epoch_seconds_diag"], e["epoch_seconds_no_diag"]
            ratio = f"{r['ratio_diag']:.2f} ({r['ratio_diag_min']:.2f})"
            ratio_off = f"{r['ratio_no_diag']:.2f} ({r['ratio_no_diag_min']:.2f})"
            lines.append(
                f"{key:<29}{e['steps_per_epoch']:>6}{on['median']:>10.3f} ({on['min']:.3f})"
                f"{off['median']:>10.3f} ({off['min']:.3f}){_us(e['step_seconds_diag']):>9}"
                f"{e['diagnostics_share']:>7.0%}{_us(f['step_seconds']['median']):>11}"
                f"{f['gflops_at_median']:>6.0f}{ratio:>13}{ratio_off:>13}")
        lines += ["", "the engine against the plain NumPy loop (µs per step, median epochs; x = engine / plain,",
                  "paired = median of the per-repetition ratios)"
                  + ("; baseline = the engine of --baseline, timed in the same rotation" if base else "")]
        head = (f"{'config':<29}{'plain':>8}{'no-diag':>9}{'x plain':>9}{'paired':>8}{'diag':>8}{'x plain':>9}"
                f"{'paired':>8}" + (f"{'base x plain off / diag':>25}{'new / base off / diag':>23}" if base else ""))
        lines += [head, "-" * len(head)]
        for key, r in p["configs"].items():
            e = r["engine"]
            row = (f"{key:<29}{_us(e['step_seconds_plain']):>8}{_us(e['step_seconds_no_diag']):>9}"
                   f"{e['x_plain_no_diag']:>9.2f}{e['x_plain_no_diag_paired']:>8.2f}{_us(e['step_seconds_diag']):>8}"
                   f"{e['x_plain_diag']:>9.2f}{e['x_plain_diag_paired']:>8.2f}")
            if base:
                row += (f"{e['baseline_x_plain_no_diag']:>16.2f} / {e['baseline_x_plain_diag']:.2f}"
                        f"{e['x_baseline_no_diag']:>16.2f} / {e['x_baseline_diag']:.2f}")
            lines.append(row)
        lines += ["", "floors (µs, median): the bare matmuls, and the optimizer's mandatory element-wise passes",
                  "(the fewest NumPy ufunc passes its update needs, over one flat array per operand of as many",
                  "values as the network has parameters; whole arrays, or blocks where a model makes several,",
                  "whichever is faster)"]
        head = (f"{'config':<29}{'step':>8}{'matmul':>8}{'optimizer':>10}{'passes':>7}{'layout':>8}"
                f"{'params':>9}{'x matmul':>10}{'x (matmul+opt)':>16}")
        lines += [head, "-" * len(head)]
        for key, r in p["configs"].items():
            o = r["optimizer_floor"]
            lines.append(f"{key:<29}{_us(r['engine']['step_seconds_diag']):>8}"
                         f"{_us(r['matmul_floor']['step_seconds']['median']):>8}"
                         f"{_us(o['step_seconds']['median']):>10}{o['passes']:>7}{o['layout']:>8}"
                         f"{o['parameters']:>9,}{r['ratio_diag']:>10.2f}{r['ratio_diag_both_floors']:>16.2f}")
        lines += ["", "diagnostics, timed directly (µs per step, median). 'grad dots' (per-layer squared norms) run",
                  "on recorded steps and are their NaN check; 'bound' is the NaN check of the other steps",
                  "(||X||^2 * ||dL/dZ||^2 per kernel); 'act stats' (forward with record minus without) and",
                  "'_record' only on recorded steps; 'share' = (act stats + _record) / step; 'diag' in the",
                  "table above and 'paired' here come from the epoch times (on - off) / on"]
        head = f"{'config':<29}{'grad dots':>10}{'bound':>7}{'act stats':>10}{'_record':>9}{'share':>7}{'paired':>8}"
        lines += [head, "-" * len(head)]
        for key, r in p["configs"].items():
            m = r["diagnostics_micro"]
            dots, bound, stats, rec = (m[k]["median"] for k in ("grad_norm_dots", "grad_bound", "activation_stats",
                                                                "record"))
            share = (stats + rec) / r["engine"]["step_seconds_diag"]
            lines.append(f"{key:<29}{_us(dots):>10}{_us(bound):>7}{_us(stats):>10}{_us(rec):>9}"
                         f"{share:>7.0%}{r['engine']['diagnostics_share_paired_median']:>8.0%}")
        lines += ["", "phase breakdown (µs per step, diagnostics every step; replica of train_batch):"]
        keys = list(p["configs"])
        head = f"{'phase':<17}" + "".join(f"{p['configs'][k]['short']:>12}" for k in keys)
        lines += [head, "-" * len(head)]
        for phase in PHASES:
            lines.append(f"{phase:<17}" + "".join(
                f"{_us(p['configs'][k]['phases']['seconds_per_step'][phase]):>12}" for k in keys))
        lines.append(f"{'sum of phases':<17}" + "".join(
            f"{_us(p['configs'][k]['phases']['total']):>12}" for k in keys))
        lines.append(f"{'train_batch':<17}" + "".join(
            f"{_us(p['configs'][k]['engine']['step_seconds_diag']):>12}" for k in keys))
        lines.append(f"{'matmul floor':<17}" + "".join(
            f"{_us(p['configs'][k]['matmul_floor']['step_seconds']['median']):>12}" for k in keys))
        for part in ("forward", "backward"):
            lines.append(f"{'  of it ' + part:<17}" + "".join(
                f"{_us(p['configs'][k]['matmul_floor'][part + '_seconds']['median']):>12}" for k in keys))
        for key, text in p.get("profiles", {}).items():
            lines += ["", f"cProfile, {key}, {report['meta']['phase_steps']} steps, by own time:", text]
    lines += targets(report)
    multi = [p["other_processes_cores"] for p in report["passes"] if p["blas_thread_limit"] != 1]
    if any(x is not None and x > 0.25 for x in multi):
        lines.append("WARNING: other processes used CPU during the multi-thread pass (see its heading); its "
                     "BLAS timings are then unreliable: compare the 1-thread pass only.")
    if any(x is not None and x > 0.5 for x in (p["other_processes_cores"] for p in report["passes"])):
        lines.append("WARNING: other processes kept half a core or more busy during a pass: its timings may be "
                     "inflated; rerun on an idle machine.")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (under a minute)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--profile", action="store_true",
                        help="add a cProfile listing of the wide configurations to the output")
    parser.add_argument("--only", metavar="TEXT", help="run only the configurations whose name contains TEXT")
    parser.add_argument("--threads", default="1,2", metavar="N[,N]",
                        help="BLAS thread limits of the passes (default: 1,2)")
    parser.add_argument("--baseline", metavar="TREE",
                        help="also time the engine of the source tree TREE (another revision, e.g. "
                             "`git archive main | tar -x -C TREE`) in the same run, interleaved")
    args = parser.parse_args(argv)

    try:
        limits = [int(x) for x in args.threads.split(",")]
    except ValueError:
        limits = []
    if not limits or min(limits) < 1:
        parser.error(f"--threads {args.threads!r}: expected positive whole numbers separated by commas, e.g. 1,2")
    plan = Plan.make(args.quick)
    configs = [c for c in CONFIGS if args.only is None or args.only in c.key]
    if not configs:
        parser.error(f"--only {args.only!r} matches none of: {', '.join(c.key for c in CONFIGS)}")
    started = time.perf_counter()
    idle = HostLoad().start()
    time.sleep(0.5 if plan.quick else 1.0)
    other_before = idle.stop()
    dataset = synthetic_dataset()
    meta = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(), "numpy": np.__version__, "platform": platform.platform(),
        "cpu_count": os.cpu_count(), "quick": plan.quick,
        "env": {k: os.environ.get(k) for k in ENV_VARS},
        "blas_default": blas_info(),
        "data": f"{dataset.name} (float32 N(0,1) features, labels of a random linear teacher, seed {DATA_SEED}); "
                "all configurations, the 10x100 network included; no validation split",
        "epoch_reps": plan.epoch_reps, "warmup_steps": plan.warmup_steps, "phase_steps": plan.phase_steps,
        "no_diagnostics_every": NO_DIAGNOSTICS,
        "other_processes_cores_before": other_before,
    }
    dtype = {c.key: dtype_check(c, dataset) for c in configs}
    # The plain loop must compute what the engine does: its gradients, loss and one update
    # against the engine's, once, from the engine's initial weights.
    plain_check = {}
    for c in configs:
        trainer = make_trainer(c, dataset, 1)
        plain_check[c.key] = PlainLoop(c, make_trainer(c, dataset, 1)).check_gradients(trainer)
    baseline = Baseline(args.baseline) if args.baseline else None
    meta["baseline"] = None if baseline is None else str(baseline.tree)
    passes = [run_pass(f"{limit} BLAS thread{'s' if limit > 1 else ''}", limit, dataset, plan, configs,
                       args.profile, baseline) for limit in limits]
    meta["wall_seconds"] = time.perf_counter() - started
    report = {"meta": meta, "dtype_check": dtype, "plain_check": plain_check, "passes": passes}
    print(format_report(report))
    print(f"\n(total {meta['wall_seconds']:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"results written to {args.json}")
    checks_passed = all(d["passed"] for d in dtype.values()) and all(d["passed"] for d in plain_check.values())
    return 0 if checks_passed else 1


if __name__ == "__main__":
    sys.exit(main())
