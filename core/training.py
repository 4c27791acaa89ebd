"""The training loop: mini-batch gradient descent with every chapter-11 remedy switchable,
per-layer diagnostics at every (k-th) step, and cooperative pause / stop between batches.

``Trainer`` owns one experiment's data split, network, optimizer, schedule and history. It is
a plain loop with an ``observer`` callback and a ``should_stop`` predicate, so the GUI's
worker thread, the CLI and a notebook drive it the same way. Its whole state can be taken
out and put back (``state_dict`` / ``load_state_dict``), so an interrupted run resumes bit
for bit.
"""

from __future__ import annotations

import contextlib
import copy
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.checkpoints import Checkpoint, CheckpointLog, interval_problem, read_only, split_arrays
from core.data import Dataset, Progress, load_dataset
from core.engine.diagnostics import (
    EPOCH_METRICS,
    LAYER_QUANTITIES,
    DiagnosticsRecorder,
    HealthContext,
    HealthIssue,
    assess_health,
    chance_loss,
    check_history,
)
from core.engine.distributions import DistributionRecorder, check_distributions
from core.engine.instruments import InstrumentRecorder
from core.engine.losses import LOSSES, Loss
from core.engine.network import Network, parameter_shapes
from core.engine.optimizers import OPTIMIZERS, Optimizer
from core.engine.regularization import (
    EarlyStopping,
    add_gaussian_noise,
    add_weight_penalty_gradient,
    apply_max_norm,
    clip_gradients,
    shift_images,
    weight_penalty,
)
from core.engine.schedules import SCHEDULES, Schedule
from core.engine.threads import SplitProducts, choose_blas_threads, limit_blas_threads
from core.engine.validation import quote
from core.sessions.transfer import apply_transfer
from core.spec import MAX_PARAMETERS, Experiment, SpecError

# What every saved state holds (state.json); later additions are optional so older sessions load.
STATE_KEYS = ("recorded_steps", "epochs_recorded", "step", "epoch", "batch_index", "lr_scale", "rollbacks",
              "finished", "optimizer_iterations", "schedule", "early_stopping", "rng", "events")

Observer = Callable[[str, dict[str, Any]], None]


# Rows of Trainer._diagnostics_row (LAYER_QUANTITIES' order); the four activation statistics
# are adjacent there, in ActivationStats' order (mean, std, dead and saturated fractions).
_GRAD_NORM, _BIAS_GRAD_NORM, _CLIPPED_GRAD_NORM, _WEIGHT_NORM, _UPDATE_RATIO = (
    LAYER_QUANTITIES.index(q) for q in ("grad_norm", "bias_grad_norm", "clipped_grad_norm", "weight_norm",
                                        "update_ratio"))
_ACTIVATION_STATS = slice(LAYER_QUANTITIES.index("activation_mean"), LAYER_QUANTITIES.index("saturated_fraction") + 1)


@dataclass
class Split:
    """Row indices of the dataset in each part (kept so a resumed run sees the same split)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def stratified_split(y: np.ndarray, validation: float, test: float, rng: np.random.Generator,
                     stratify: bool) -> Split:
    """Shuffle and cut; with ``stratify`` each class is cut in the same proportions, so a small
    validation set still holds every class."""
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(len(y))]
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for idx in groups:
        idx = rng.permutation(idx)
        n_val, n_test = _cut(len(idx), validation, test)
        parts["val"].append(idx[:n_val])
        parts["test"].append(idx[n_val:n_val + n_test])
        parts["train"].append(idx[n_val + n_test:])
    return Split(*(np.sort(np.concatenate(parts[k])).astype(np.int64) for k in ("train", "val", "test")))


def _cut(n: int, validation: float, test: float) -> tuple[int, int]:
    """Rows of a group of ``n`` that go to validation and to test: n_val = round(validation · n),
    n_test = round(test · n); training keeps the rest."""
    return int(round(validation * n)), int(round(test * n))


def split_counts(class_counts: Sequence[int], validation: float, test: float,
                 test_counts: Sequence[int] | None = None) -> dict[str, list[int]]:
    """How many rows of each class ``split_dataset`` puts in each part, from the class counts
    alone (the split is cut class by class, so its sizes do not depend on the shuffle): what the
    window's data preview shows before any training. ``test_counts`` are the rows of each class
    in a published test set (``Dataset.test_rows``), which is the test part as it is; a
    regression set is one class holding every row."""
    out: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for c, n in enumerate(class_counts):
        if test_counts is None:
            n_val, n_test = _cut(int(n), validation, test)
        else:
            n_test = int(test_counts[c])
            n_val, _ = _cut(int(n) - n_test, validation, 0.0)
        out["val"].append(n_val)
        out["test"].append(n_test)
        out["train"].append(int(n) - n_val - n_test)
    return out


def split_dataset(dataset: Dataset, validation: float, test: float, rng: np.random.Generator,
                  stratify: bool) -> Split:
    """The experiment's split of ``dataset``: ``stratified_split`` of its rows, except that a
    published test set (``dataset.test_rows``, the book's data sets) is the test split as it
    is, and the validation split is cut from the other rows."""
    y = dataset.y if stratify else np.zeros(len(dataset.y))
    if dataset.test_rows is None:
        return stratified_split(y, validation, test, rng, stratify)
    if test:
        raise SpecError("data.test_split", f"must be 0 for {dataset.name}, which keeps its published test set "
                                           f"({len(dataset.test_rows):,} images) as the test split; got {test!r}")
    rest = np.setdiff1d(np.arange(len(y)), dataset.test_rows, assume_unique=True)
    part = stratified_split(y[rest], validation, 0.0, rng, stratify)
    return Split(rest[part.train], rest[part.val], dataset.test_rows.copy())


def _flat_view(a: np.ndarray) -> np.ndarray:
    """A 1-D view of ``a``; never a copy, which would leave the diagnostics reading stale values."""
    flat = a.reshape(-1)
    if not np.shares_memory(flat, a):
        raise ValueError(f"expected a contiguous array, got strides {a.strides} for shape {a.shape}")
    return flat


def choose_loss(experiment: Experiment, data: Dataset) -> tuple[Loss, int]:
    """The output layer from the task: softmax + cross-entropy for class labels, sigmoid + binary
    cross-entropy for two classes if asked, linear + MSE for float targets."""
    name = experiment.model.output.loss
    path = "model.output.loss"
    if name == "auto":
        name = "softmax_cross_entropy" if data.task == "classification" else "mse"
    if name == "mse":
        if data.task != "regression":
            raise SpecError(path, f"'mse' needs float targets, but {data.name} has class labels; "
                                  "use softmax_cross_entropy or auto")
        return LOSSES.get(name)(), int(data.y.shape[1]) if data.y.ndim == 2 else 1
    if data.task != "classification":
        raise SpecError(path, f"{name!r} needs integer class labels, but {data.name} has float targets; use mse")
    if name == "sigmoid_binary_cross_entropy":
        if data.n_classes != 2:
            raise SpecError(path, f"'sigmoid_binary_cross_entropy' needs exactly 2 classes, "
                                  f"{data.name} has {data.n_classes}")
        return LOSSES.get(name)(), 1
    return LOSSES.get(name)(), data.n_classes


def check_parameter_count(spec: Experiment, n_inputs: int, n_outputs: int) -> int:
    """The network's parameter count, n_in·u_1 + Σ u_i·u_(i+1) + u_L·n_out (plus biases and
    batch-norm vectors), refused above ``MAX_PARAMETERS`` before any array exists: the input
    layer grows with the data's width, which the spec alone does not know."""
    count = sum(math.prod(shape) for shape in parameter_shapes(spec.model, n_inputs, n_outputs).values())
    if count > MAX_PARAMETERS:
        first = spec.model.layers[0].units
        raise SpecError("model.layers", f"the network would have {count:,} parameters ({n_inputs:,} input features "
                                        f"× {first:,} units of model.layers[0].units = {n_inputs * first:,} in the "
                                        f"input layer alone); at most {MAX_PARAMETERS:,} are allowed")
    return count


class Trainer:
    """Trains one experiment; see the module docstring."""

    def __init__(self, experiment: Experiment, base_dir: str | Path | None = None, *,
                 dataset: Dataset | None = None, transfer: bool = True,
                 data_progress: Progress | None = None) -> None:
        """``base_dir`` is the spec file's folder (relative data and transfer paths resolve
        against it). ``data_progress`` hears how far loading the data has come (a download, a
        large file; see ``core.data.Progress``). With ``transfer=False`` the layers
        named in ``model.transfer`` are not read from their source file: for a trainer whose
        state is about to be restored from a session, which already holds them
        (``core.sessions.trainer_io.restore_trainer``)."""
        self.experiment = experiment
        spec = experiment
        self.dtype = np.dtype(spec.training.dtype)
        seeds = np.random.SeedSequence(spec.seed).spawn(4)
        data_rng, split_rng, init_rng, self.rng = (np.random.Generator(np.random.PCG64(s)) for s in seeds)
        if dataset is None:
            try:
                dataset = load_dataset(spec.data.source, spec.data.params, path=spec.data.path,
                                       target=spec.data.target, labels_path=spec.data.labels_path,
                                       base_dir=Path(base_dir) if base_dir is not None else None, rng=data_rng,
                                       progress=data_progress)
            except ValueError as exc:
                raise SpecError("data", str(exc)) from None
        self.dataset = dataset
        self.loss, n_outputs = choose_loss(spec, dataset)
        check_parameter_count(spec, dataset.n_features, n_outputs)
        self.classification = dataset.task == "classification"
        self.split = split_dataset(dataset, spec.data.validation_split, spec.data.test_split, split_rng,
                                   stratify=self.classification)
        if len(self.split.train) == 0:
            raise SpecError("data", f"{dataset.name} has too few examples to leave any for training")
        X = dataset.X.astype(self.dtype, copy=False)
        train_X = X[self.split.train]
        if spec.data.standardize:
            # Statistics from the training split only, so nothing leaks from validation or test.
            self.feature_mean = train_X.mean(axis=0)
            std = train_X.std(axis=0)
            self.feature_std = np.where(std > 0, std, 1).astype(self.dtype)
        else:
            self.feature_mean = np.zeros(X.shape[1], self.dtype)
            self.feature_std = np.ones(X.shape[1], self.dtype)
        aug = spec.data.augmentation
        if aug.type == "shift" and dataset.image_shape is None:
            raise SpecError("data.augmentation.type",
                            f"'shift' moves image pixels, but {dataset.name} is not image data; use 'noise'")
        # Pixel shifts act on raw images (background 0); standardization follows per batch.
        self._standardize_per_batch = aug.type == "shift"
        self.X_train = train_X if self._standardize_per_batch else self.standardize(train_X)
        self.X_val = self.standardize(X[self.split.val])
        self.X_test = self.standardize(X[self.split.test])
        y = dataset.y if self.classification else dataset.y.astype(self.dtype, copy=False)
        self.y_train, self.y_val, self.y_test = y[self.split.train], y[self.split.val], y[self.split.test]

        self.network = Network(spec.model, X.shape[1], n_outputs, self.loss, init_rng, self.dtype)
        # Once for the whole training set; its batches skip the loss's per-batch check.
        self.loss.check_targets(self.y_train, self.network.n_outputs)
        self.optimizer: Optimizer = OPTIMIZERS.get(spec.optimizer.name).from_config(spec.optimizer.params)
        self.optimizer.build(self.network.parameters())
        self.schedule: Schedule = SCHEDULES.get(spec.schedule.name).from_config(spec.schedule.params,
                                                                               spec.learning_rate)
        self.batch_size = min(spec.training.batch_size, len(self.split.train))
        # Threads for fit() (training_threads, the property blas_threads): the experiment's count,
        # or one unless the products are large enough to gain from more (core.engine.threads),
        # chosen when first needed (choosing can watch the machine for 50 ms, and a trainer built
        # only to be inspected, or one the window chooses for with leave_cores, needs no choice).
        # The count changes the speed, never the numbers: each product part is on one BLAS thread.
        self._widths = [self.network.n_inputs, *(row.units for row in spec.model.layers), self.network.n_outputs]
        self._blas_threads: int | None = None
        self._blas_threads_chosen = False
        self.steps_per_epoch = math.ceil(len(self.split.train) / self.batch_size)
        # The schedule is planned once, for training.epochs; the plan is saved with the state, so a
        # resumed run follows the plan it started with (fit(epochs=k) never re-plans).
        self.schedule.bind(self.steps_per_epoch, self.steps_per_epoch * spec.training.epochs)
        es = spec.regularization.early_stopping
        self.early_stopping = EarlyStopping(es.monitor, es.patience, es.min_delta) if es.enabled else None
        self.best_weights: dict[str, np.ndarray] | None = None

        self.recorder = DiagnosticsRecorder(self.network.layer_names)
        # Sharpness, gradient noise and effective learning rates, in rows of the recorder's.
        self.instruments = InstrumentRecorder(spec.training.instruments, len(self.network.layer_names))
        # Histograms of weights, gradients, pre-activations and activations, in rows of their own.
        dist = spec.training.instruments.distributions
        self.distributions = DistributionRecorder(len(self.network.layer_names), dist.every, dist.enabled)
        self.history: dict[str, list[float]] = {k: [] for k in EPOCH_METRICS}
        # Copies of the whole state every training.checkpoints.every steps (core.checkpoints).
        self.checkpoints = CheckpointLog.from_spec(spec.training.checkpoints)
        self.events: list[dict[str, Any]] = []
        self.step = 0           # optimizer steps taken
        self.epoch = 0          # epochs completed
        self.batch_index = 0    # batches done in the current epoch
        self.lr_scale = 1.0     # halved by each NaN roll-back
        self.rollbacks = 0
        self.finished = False   # early stopping ended the run
        self._perm: np.ndarray | None = None
        self._epoch_sums = np.zeros(3)  # loss·n, correct, n of the current epoch
        self._epoch_seconds = 0.0
        self._params = self.network.parameters()
        self._grads = self.network.gradients()
        self._kernel_keys = [f"{k}.kernel" for k in self.network.layer_keys]
        self._kernel_key_set = frozenset(self._kernel_keys)  # what apply() measures on a recorded step
        self._bias_keys = [f"{k}.bias" for k in self.network.layer_keys]
        # 1-D views for the per-step norms (np.dot of two flat arrays is the cheapest ‖·‖²).
        self._kernel_grads_flat = [_flat_view(self._grads[k]) for k in self._kernel_keys]
        self._bias_grads_flat = [_flat_view(self._grads[k]) if k in self._grads else None for k in self._bias_keys]
        self._kernels_flat = [_flat_view(self._params[k]) for k in self._kernel_keys]
        self._denses = [*(layer.dense for layer in self.network.layers), self.network.output]
        self._gradient_bound_limit = float(np.finfo(self.network.dtype).max) / 4
        # A recorded step's per-layer quantities, filled as the step measures them (float64),
        # then stored as one row of the recorder (float32): LAYER_QUANTITIES by layer.
        self._diagnostics_row = np.full((len(LAYER_QUANTITIES), len(self._kernel_keys)), np.nan)
        # What the optimizer steps, rebuilt only when a layer is frozen or unfrozen.
        self._trainable_for: tuple[bool, ...] | None = None
        self._trainable: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] = ({}, {})
        self._good_state: tuple[dict[str, np.ndarray], dict[str, Any]] | None = None
        self._stop_flag = threading.Event()
        self._run_flag = threading.Event()
        self._run_flag.set()
        # Transfer learning: where each reused layer came from (saved in state.json).
        self.lineage: list[dict[str, Any]] = []
        if spec.model.transfer is not None and transfer:
            self.lineage = apply_transfer(self.network, spec.model.transfer, base_dir, dataset.name)
            self._apply_freeze()

    # ------------------------------------------------------------------ data helpers

    def standardize(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.feature_mean) / self.feature_std).astype(self.dtype, copy=False)

    @property
    def transfer_frozen(self) -> list[int]:
        """Hidden layers ``model.transfer`` freezes (until its ``unfreeze_at_epoch``)."""
        return [int(e["layer"]) for e in self.lineage if e.get("frozen")]

    def _apply_freeze(self) -> None:
        """Frozen while fewer than ``unfreeze_at_epoch`` epochs are complete (a function of the
        epoch, so a restored or rolled-back trainer gets it right)."""
        transfer = self.experiment.model.transfer
        if transfer is None:
            return
        frozen = transfer.unfreeze_at_epoch is None or self.epoch < transfer.unfreeze_at_epoch
        for i in self.transfer_frozen:
            self.network.layers[i].frozen = frozen

    @property
    def trainable_keys(self) -> list[str]:
        """Paths the optimizer updates (frozen layers are left out)."""
        frozen = {f"layers.{i}." for i, layer in enumerate(self.network.layers) if layer.frozen}
        return [k for k in self._params if not any(k.startswith(f) for f in frozen)]

    def _trainable_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(parameters, gradients) of ``trainable_keys``, rebuilt only when freezing changed."""
        frozen = tuple(layer.frozen for layer in self.network.layers)
        if frozen != self._trainable_for:
            keys = self.trainable_keys
            self._trainable = ({k: self._params[k] for k in keys}, {k: self._grads[k] for k in keys})
            self._trainable_for = frozen
        return self._trainable

    # ------------------------------------------------------------------ cooperative control

    @property
    def blas_threads_fixed(self) -> bool:
        """Whether the experiment fixes the thread count (then the window does not choose it)."""
        return isinstance(self.experiment.training.blas_threads, int)

    @property
    def blas_threads(self) -> int | None:
        """The threads ``fit`` trains with (``None``: BLAS as the caller set it): set by a caller
        that keeps cores or knows better, else the experiment's count or the automatic choice."""
        if not self._blas_threads_chosen:
            fixed = self.experiment.training.blas_threads
            self.blas_threads = fixed if isinstance(fixed, int) else choose_blas_threads(self._widths,
                                                                                       self.batch_size)
        return self._blas_threads

    @blas_threads.setter
    def blas_threads(self, threads: int | None) -> None:
        self._blas_threads, self._blas_threads_chosen = threads, True

    def leave_cores(self, reserved: int) -> None:
        """Choose the threads leaving ``reserved`` cores to the caller (the window keeps one for
        painting), unless the experiment fixes them."""
        if not self.blas_threads_fixed:
            self.blas_threads = choose_blas_threads(self._widths, self.batch_size, reserved=reserved)

    @contextlib.contextmanager
    def training_threads(self) -> Iterator[None]:
        """Train the block with ``blas_threads`` threads: the large products on BLAS's threads
        in a form checked to give one thread's numbers, or split by rows over the threads
        (``SplitProducts``), so the numbers are the same bit for bit whatever the count. ``None``
        leaves BLAS as the caller set it."""
        threads = self.blas_threads
        if threads is None:
            yield
            return
        products = SplitProducts(threads) if threads > 1 else None
        self.network.use_products(products)
        try:
            with limit_blas_threads(1):
                yield
        finally:
            self.network.use_products(None)
            if products is not None:
                products.close()

    def pause(self) -> None:
        """Hold the loop before its next batch (thread-safe)."""
        self._run_flag.clear()

    def resume(self) -> None:
        self._run_flag.set()

    def request_stop(self) -> None:
        """End ``fit`` before its next batch (thread-safe); the state stays consistent."""
        self._stop_flag.set()
        self._run_flag.set()

    @property
    def paused(self) -> bool:
        return not self._run_flag.is_set()

    # ------------------------------------------------------------------ the loop

    def fit(self, epochs: int | None = None, observer: Observer | None = None,
            should_stop: Callable[[], bool] | None = None) -> str:
        """Train until ``epochs`` more epochs are complete (default: up to ``training.epochs``).

        An epoch stopped half-way counts as one of the ``epochs`` (it is finished first), so a
        run stopped anywhere and continued with ``fit(epochs=N - trainer.epoch)`` ends where an
        uninterrupted ``fit(epochs=N)`` does, bit for bit. The learning-rate schedule keeps the
        plan made for ``training.epochs``; past it, 1cycle stays at its final rate.

        Returns why it ended: ``"completed"``, ``"stopped"``, ``"early_stopping"`` or
        ``"diverged: ..."``. The matrix products use ``blas_threads`` BLAS threads."""
        with self.training_threads():
            return self._fit(epochs, observer, should_stop)

    def _fit(self, epochs: int | None, observer: Observer | None, should_stop: Callable[[], bool] | None) -> str:
        target = self.experiment.training.epochs if epochs is None else self.epoch + int(epochs)
        self._stop_flag.clear()
        notify = observer or (lambda kind, info: None)
        while self.epoch < target and not self.finished:
            while self.batch_index < self.steps_per_epoch:
                if not self._run_flag.is_set():
                    notify("paused", {"step": self.step, "epoch": self.epoch})
                    while not self._run_flag.wait(0.05):
                        if should_stop is not None and should_stop():
                            break
                if self._stop_flag.is_set() or (should_stop is not None and should_stop()):
                    notify("end", {"reason": "stopped"})
                    return "stopped"
                outcome = self.train_batch(notify)
                if outcome is not None:
                    notify("end", {"reason": outcome})
                    return outcome
            self._end_epoch(notify)
        reason = "early_stopping" if self.finished else "completed"
        notify("end", {"reason": reason})
        return reason

    def train_batch(self, notify: Observer | None = None) -> str | None:
        """One optimizer step on the next mini-batch (the GUI's Step button).

        Returns ``None`` normally, or the reason training must stop (divergence)."""
        # A diverging run overflows on its way to NaN; that is detected and reported as an
        # event (loss and gradient norms are checked every step), not warned about.
        with np.errstate(over="ignore", invalid="ignore"):
            return self._train_batch(notify or (lambda kind, info: None))

    def _train_batch(self, notify: Observer) -> str | None:
        spec = self.experiment
        if self.batch_index >= self.steps_per_epoch:
            # The previous call took the epoch's last batch (the GUI's Step button): close that
            # epoch (metrics, schedule, early stopping) before starting the next one.
            self._end_epoch(notify)
            if self.finished:
                return "early_stopping"
        if self.batch_index == 0:
            self._begin_epoch()
        t0 = time.perf_counter()
        assert self._perm is not None
        idx = self._perm[self.batch_index * self.batch_size:(self.batch_index + 1) * self.batch_size]
        Xb, yb = self._augment(self.X_train[idx]), self.y_train[idx]
        record = self.step % spec.training.diagnostics_every == 0
        instruments_due = self.instruments.due(self.step, spec.training.diagnostics_every) if record else ()
        net = self.network
        reg = spec.regularization
        logits = net.forward(Xb, training=True, rng=self.rng, record=record)
        loss, grad_logits = self.loss.value_and_gradient(logits, yb, checked=True)
        net.backward(grad_logits)
        if reg.l1 or reg.l2:
            kernels = {k: self._params[k] for k in self._kernel_keys}
            loss += weight_penalty(kernels, reg.l1, reg.l2)
            add_weight_penalty_gradient(kernels, self._grads, reg.l1, reg.l2)
        # The squared kernel-gradient norms are recorded, and they are the divergence check: a
        # NaN or an overflow makes their sum non-finite. Unrecorded, the bound from each product's
        # two factors settles the check at a fraction of the cost when it is far from overflow.
        bounded = not (record or reg.l1 or reg.l2) and self._kernel_gradients_bounded()
        grad_sq = None if bounded else self._kernel_grad_squares()
        if not (math.isfinite(loss) and (bounded or math.isfinite(sum(grad_sq)))):
            return self._diverged(loss, grad_sq or self._kernel_grad_squares(), notify)
        if record:
            # Before clipping and the step, so the recorded norms are those of ∂L/∂θ itself.
            self._record_gradients(grad_sq)
        if self.distributions.due(self.step):   # the same tensors: ∂J/∂W unclipped, weights before the step
            self.distributions.record(self.step + 1, net, logits)
        params, grads = self._trainable_arrays()
        clipping = reg.gradient_clip.mode != "none"
        if clipping:
            clip_gradients(grads, reg.gradient_clip.mode, reg.gradient_clip.threshold)
        if record:
            self._record_clipped(clipping)
        lr = self.schedule(self.step) * self.lr_scale
        beta = self.schedule.momentum(self.step)
        if beta is not None and hasattr(self.optimizer, "momentum"):
            self.optimizer.momentum = beta     # 1cycle cycles β against η
        self.optimizer.apply(params, grads, lr, measure=self._kernel_key_set if record else ())
        if reg.max_norm is not None:
            apply_max_norm({k: params[k] for k in self._kernel_keys if k in grads}, reg.max_norm)
        self.step += 1
        self.batch_index += 1
        n = len(idx)
        self._epoch_sums[0] += loss * n
        if self.classification:
            self._epoch_sums[1] += self._count_correct(logits, yb)
        self._epoch_sums[2] += n
        if record:
            row = self._record(loss, lr)
            weight_norm = self.recorder.table("weight_norm")[row]
            if not np.isfinite(weight_norm).all():
                # The loss and gradients can stay finite (tanh saturates) while the weights grow
                # past what float32 can measure: the run has diverged as surely as with a NaN
                # (the weights themselves are still finite numbers, so they are kept).
                layer = self.network.layer_names[int(np.argmin(np.isfinite(weight_norm)))]
                what = f"the weight norm of {layer} overflowed float32 (above 3.4e38) at step {self.step}"
                return self._diverged(loss, grad_sq, notify, what)
        if instruments_due:  # on the weights after the step, which the next step's rate meets
            next_lr = self.schedule(self.step) * self.lr_scale
            self.instruments.measure(instruments_due, row, net, self.optimizer, next_lr, self.probe_examples,
                                     reg.l1, reg.l2)
        if self.checkpoints.due(self.step):
            self._take_checkpoint()
        self._epoch_seconds += time.perf_counter() - t0
        notify("step", {"step": self.step, "epoch": self.epoch, "batch": self.batch_index,
                        "batches": self.steps_per_epoch, "loss": loss, "learning_rate": lr, "recorded": record})
        return None

    def _kernel_grad_squares(self) -> list[float]:
        """‖∂L/∂W‖² of every kernel, in the network's dtype (an overflow is infinite)."""
        return [float(np.dot(g, g)) for g in self._kernel_grads_flat]

    def _kernel_gradients_bounded(self) -> bool:
        """Whether every kernel gradient is finite and its squared norm is sure not to overflow,
        by ``Dense.kernel_gradient_bound`` (‖∂L/∂W‖² ≤ ‖X‖²·‖∂L/∂Z‖²) at most a quarter of the
        dtype's largest number (room for the rounding of the sums). When it says no (the bound
        is large or not finite), the norms themselves decide, as on a recorded step."""
        limit = self._gradient_bound_limit
        return all(dense.kernel_gradient_bound() <= limit for dense in self._denses)

    def _record_gradients(self, grad_sq: list[float]) -> None:
        """The step's kernel- and bias-gradient norms (the kernels' squares are already summed
        for the NaN check), both of ∂L/∂θ before any clipping: clipping must not hide an
        exploding gradient. Taken in float64, stored in float32 with the rest of the row."""
        grad_norm, bias_grad_norm = self._diagnostics_row[_GRAD_NORM], self._diagnostics_row[_BIAS_GRAD_NORM]
        grad_norm[:] = grad_sq
        np.sqrt(grad_norm, out=grad_norm)
        bias_grad_norm[:] = [float(np.dot(b, b)) if b is not None else 0.0 for b in self._bias_grads_flat]
        np.sqrt(bias_grad_norm, out=bias_grad_norm)

    def _record_clipped(self, clipping: bool) -> None:
        """The kernel-gradient norms after clipping, what the optimizer is given, next to the
        gradients' own norms (NaN without clipping: they would equal grad_norm)."""
        clipped = self._diagnostics_row[_CLIPPED_GRAD_NORM]
        if clipping:
            clipped[:] = self._kernel_grad_squares()
            np.sqrt(clipped, out=clipped)
        else:
            clipped.fill(np.nan)

    def _record(self, loss: float, lr: float) -> int:
        """Complete the step's row with the weight norms, update ratios and activations, store it
        (``self.step`` is the step just taken), and return its index in the recorder."""
        row = self._diagnostics_row
        # (‖Δθ‖², ‖θ‖²) of the kernels the optimizer stepped, summed while it had them in cache;
        # a layer it left out (frozen) did not move.
        measured = self.optimizer.squared_norms
        rescaled = self.experiment.regularization.max_norm is not None  # kernels changed after the step
        weight_norm, update_ratio = row[_WEIGHT_NORM], row[_UPDATE_RATIO]
        for j, (key, w) in enumerate(zip(self._kernel_keys, self._kernels_flat, strict=True)):
            step_sq, weight_sq = measured.get(key, (0.0, math.nan))
            if rescaled or key not in measured:
                weight_sq = float(np.dot(w, w))
            wn = math.sqrt(weight_sq)
            weight_norm[j] = wn
            update_ratio[j] = math.sqrt(step_sq) / wn if wn > 0 else math.nan
        for j, s in enumerate([*(layer.stats for layer in self.network.layers), self.network.output_stats]):
            row[_ACTIVATION_STATS, j] = (s.mean, s.std, s.dead_fraction, s.saturated_fraction)
        return self.recorder.append_row(self.step, row, loss, lr)

    def probe_examples(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``n`` training examples in split order (standardized, not augmented): the
        fixed probe batch of the instruments and of ``gradient-workbench inspect``."""
        X = self.X_train[:n]
        return (self.standardize(X) if self._standardize_per_batch else X), self.y_train[:n]

    def _count_correct(self, logits: np.ndarray, y: np.ndarray) -> int:
        if logits.shape[1] == 1:
            return int(np.count_nonzero((logits[:, 0] > 0) == (y.reshape(-1) == 1)))
        return int(np.count_nonzero(logits.argmax(axis=1) == y))

    def _augment(self, Xb: np.ndarray) -> np.ndarray:
        aug = self.experiment.data.augmentation
        if aug.type == "shift":
            assert self.dataset.image_shape is not None
            Xb = self.standardize(shift_images(Xb, self.dataset.image_shape, aug.params["max_shift"], self.rng))
        elif aug.type == "noise":
            Xb = add_gaussian_noise(Xb, aug.params["stddev"], self.rng)
        return Xb

    def _begin_epoch(self) -> None:
        if self.experiment.training.on_nan == "rollback":
            # The last good state a roll-back returns to (history is rewound, not copied; the
            # seconds of the epoch before are no part of it).
            arrays, state = self.state_dict(history=False)
            state.pop("epoch_seconds")
            self._good_state = arrays, state
        n = len(self.split.train)
        self._perm = self.rng.permutation(n) if self.experiment.training.shuffle else np.arange(n)
        self._epoch_sums[:] = 0.0
        self._epoch_seconds = 0.0

    def _end_epoch(self, notify: Observer) -> None:
        t0 = time.perf_counter()
        loss_sum, correct, seen = self._epoch_sums
        logs = {"epoch": float(self.epoch + 1), "loss": loss_sum / seen,
                "accuracy": correct / seen if self.classification else math.nan}
        val_loss, val_acc = self.evaluate("val")
        logs.update(val_loss=val_loss, val_accuracy=val_acc,
                    learning_rate=self.schedule(max(self.step - 1, 0)) * self.lr_scale)
        self.epoch += 1
        self.batch_index = 0
        self._perm = None
        if self.schedule.on_epoch_end(self.epoch, logs):
            self._event("lr_drop", f"learning rate reduced to {self.schedule(self.step) * self.lr_scale:.3g} "
                                   f"(no {self.schedule.monitor} improvement)")  # type: ignore[attr-defined]
        if self.early_stopping is not None:
            improved, stop = self.early_stopping.update(self.epoch, logs)
            if improved:
                self.best_weights = self.network.state()
            if stop:
                self.finished = True
                es = self.early_stopping
                self._event("early_stopping", f"early stopping: {es.monitor} has not improved for "
                                              f"{es.patience} epochs (best {es.best:.4g} at epoch {es.best_epoch})")
                if self.experiment.regularization.early_stopping.restore_best_weights and self.best_weights:
                    self.network.load_state(self.best_weights)
                    self._event("restore_best", f"restored the weights of epoch {es.best_epoch}")
        transfer = self.experiment.model.transfer
        unfreeze = transfer is not None and self.epoch == transfer.unfreeze_at_epoch and bool(self.transfer_frozen)
        if unfreeze:
            assert transfer is not None
            self._apply_freeze()
            self.lr_scale *= transfer.learning_rate_factor
            factor = transfer.learning_rate_factor
            self._event("unfreeze", f"unfroze reused layers {self.transfer_frozen} after epoch {self.epoch}"
                                    + (f"; learning rate ×{factor:g}" if factor != 1.0 else ""))
        self._epoch_seconds += time.perf_counter() - t0
        logs["seconds"] = self._epoch_seconds
        for k in EPOCH_METRICS:
            self.history[k].append(float(logs[k]))
        notify("epoch", dict(logs))
        if unfreeze:  # after the epoch it follows, so a log reads in order
            notify("event", dict(self.events[-1]))

    def _event(self, kind: str, message: str) -> None:
        self.events.append({"kind": kind, "step": self.step, "epoch": self.epoch, "message": message})

    def _diverged(self, loss: float, grad_sq: list[float], notify: Observer, what: str | None = None) -> str | None:
        if what is None:
            where = "the loss" if not math.isfinite(loss) else \
                f"the gradient of {self.network.layer_names[int(np.argmin(np.isfinite(grad_sq)))]}"
            what = f"{where} became {'NaN' if math.isnan(loss) else 'infinite or NaN'} at step {self.step + 1}"
        origin = self._trace_nonfinite(loss)
        spec = self.experiment.training
        if spec.on_nan == "rollback" and self.rollbacks < spec.max_rollbacks and self._good_state is not None:
            arrays, state = self._good_state
            self.load_state_dict(arrays, state)
            self.rollbacks += 1
            self.lr_scale *= 0.5
            self._event("rollback", f"{what}; rolled back to the start of epoch {self.epoch + 1} "
                                    f"with the learning rate halved (×{self.lr_scale:g}), "
                                    f"roll-back {self.rollbacks} of {spec.max_rollbacks}")
            self.events[-1]["nonfinite"] = origin
            notify("event", dict(self.events[-1]))
            return None
        reason = f"diverged: {what}; the last finite weights are kept"
        self._event("diverged", reason)
        self.events[-1]["nonfinite"] = origin
        notify("event", dict(self.events[-1]))
        return reason

    def _trace_nonfinite(self, loss: float) -> dict[str, Any]:
        """Where the diverging step's first non-finite value appeared, read from what its
        forward and backward passes left in the layers: in the order the values were computed,
        each hidden layer's weights, pre-activation and output, then the output layer, the loss,
        and back down through the gradients. ``{"where": "weights" | "forward" | "loss" |
        "backward", "layer", "layer_name", "step", "value"}``."""
        net = self.network
        names = net.layer_names
        step = self.step + 1

        def found(where: str, layer: int, value: str) -> dict[str, Any]:
            return {"where": where, "layer": layer, "layer_name": names[layer], "step": step, "value": value}

        def finite(a: np.ndarray | None) -> bool:
            return a is None or bool(np.isfinite(a).all())

        for i, layer in enumerate(net.layers):
            if not all(finite(p) for p in layer.params.values()):
                return found("weights", i, "its parameters")
            value = layer.nonfinite_value()
            if value is not None:
                return found("forward", i, value)
        out = len(net.layers)
        if not all(finite(p) for p in (net.output.kernel, net.output.bias)):
            return found("weights", out, "its parameters")
        if not math.isfinite(loss):
            with np.errstate(all="ignore"):
                logits = net.output.forward(net.output._x) if net.output._x is not None else None
            return found("forward", out, "logits") if not finite(logits) else found("loss", out, "the loss")
        for j in range(out, -1, -1):
            key = net.layer_keys[j]
            if not all(finite(self._grads[k]) for k in self._grads if k.startswith(key + ".")):
                return found("backward", j, "gradient")
        return found("backward", 0, "gradient")

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, split: str = "val") -> tuple[float, float]:
        """(loss, accuracy) in inference mode on ``"train"``, ``"val"`` or ``"test"``; NaN if empty.

        The loss includes the ℓ1/ℓ2 penalty, as Keras reports it."""
        X, y = self._split_arrays(split)
        if len(X) == 0:
            return math.nan, math.nan
        with np.errstate(over="ignore", invalid="ignore"):
            logits = self.network.predict_logits(X)
            loss = self.loss.value(logits, y)
            reg = self.experiment.regularization
            if reg.l1 or reg.l2:
                loss += weight_penalty({k: self._params[k] for k in self._kernel_keys}, reg.l1, reg.l2)
        acc = self._count_correct(logits, y) / len(y) if self.classification else math.nan
        return float(loss), float(acc)

    def _split_arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if split == "train":
            X = self.standardize(self.X_train) if self._standardize_per_batch else self.X_train
            return X, self.y_train
        if split == "val":
            return self.X_val, self.y_val
        if split == "test":
            return self.X_test, self.y_test
        raise ValueError(f"split: must be train, val or test, got {split!r}")

    def confusion_matrix(self, split: str = "val") -> np.ndarray:
        """Counts[i, j] of examples of class i predicted as j (classification only)."""
        X, y = self._split_arrays(split)
        k = max(self.dataset.n_classes, 2)
        if not self.classification or len(X) == 0:
            return np.zeros((k, k), dtype=np.int64)
        with np.errstate(over="ignore", invalid="ignore"):  # a diverged model still gets its matrix
            logits = self.network.predict_logits(X)
        pred = (logits[:, 0] > 0).astype(np.int64) if logits.shape[1] == 1 else logits.argmax(axis=1)
        return np.bincount(y * k + pred, minlength=k * k).reshape(k, k)

    def set_hyperparameters(self, experiment: Experiment) -> None:
        """Take a new learning rate / schedule (and unfreezing point) in the middle of a run.

        Weights, optimizer slots and the run's plan (steps per epoch, total steps) are kept;
        for the same kind of schedule its state carries over too (e.g. the performance
        schedule's patience counter), so the new rate applies from the next batch. Call it
        between batches only (the worker thread does, or any thread while nothing trains).
        """
        old = self.schedule
        schedule = SCHEDULES.get(experiment.schedule.name).from_config(experiment.schedule.params,
                                                                       experiment.learning_rate)
        schedule.bind(old.steps_per_epoch or self.steps_per_epoch,
                      old.total_steps or self.steps_per_epoch * experiment.training.epochs)
        if type(schedule) is type(old):
            try:
                schedule.load_state_dict(old.state_dict())
            except ValueError:
                pass  # the parameters changed what the state means: start the new schedule fresh
        self.schedule = schedule
        self.experiment = experiment
        self.instruments.spec = experiment.training.instruments
        self.distributions.every = experiment.training.instruments.distributions.every
        self.distributions.enabled = experiment.training.instruments.distributions.enabled
        if hasattr(self.optimizer, "momentum") and schedule.momentum(0) is None:
            # a schedule that no longer cycles β: back to the optimizer's own
            own = OPTIMIZERS.get(experiment.optimizer.name).from_config(experiment.optimizer.params)
            self.optimizer.momentum = own.momentum  # type: ignore[attr-defined]

    def health_context(self) -> HealthContext:
        """What the detector reads besides the recorder: the chance-level loss of this data,
        the clipping in force and the events (where a NaN first appeared)."""
        clip = self.experiment.regularization.gradient_clip
        counts = np.bincount(np.asarray(self.y_train).reshape(-1).astype(np.int64)) \
            if self.classification and len(self.y_train) else None
        return HealthContext(chance_loss(self.loss.name, self.network.n_outputs, counts), clip.mode,
                             float(clip.threshold) if clip.mode != "none" else math.nan, tuple(self.events))

    def health(self) -> list[HealthIssue]:
        return assess_health(self.recorder, context=self.health_context())

    def history_arrays(self) -> dict[str, np.ndarray]:
        """Per-epoch metrics and per-step diagnostics, as ``history.npz`` stores them."""
        out = {k: np.asarray(v, dtype=np.int64 if k == "epoch" else np.float64) for k, v in self.history.items()}
        out.update(self.recorder.to_arrays())
        out.update(self.instruments.to_arrays(self.recorder.size))
        out.update(self.distributions.to_arrays())
        return out

    # ------------------------------------------------------------------ state

    def state_dict(self, history: bool = True, checkpoints: bool | None = None
                   ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Everything needed to continue exactly: (arrays, JSON-able values). Copies only (or
        read-only checkpoint arrays, never written), so another thread may serialize them while
        training goes on.

        Without ``history`` the per-epoch and per-step tables are left out and only their
        lengths kept (the NaN roll-back's snapshot rewinds them instead of copying them).
        ``checkpoints`` (default: as ``history``) adds the checkpoints (``checkpoints/<step>/...``
        arrays and ``state["checkpoints"]``), which a save carries and a continuation of the run
        under changed settings does not."""
        arrays, state = self._state(split=True)
        if history:
            arrays.update({f"history/{k}": a for k, a in self.history_arrays().items()})
            if self._good_state is not None and self.batch_index > 0:
                self._add_rollback(arrays, state)
        if checkpoints is None:
            checkpoints = history
        if checkpoints:
            kept, log = self.checkpoints.to_state()
            arrays.update(kept)
            state["checkpoints"] = log
        return arrays, state

    def _add_rollback(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        """Mid-epoch with on_nan = "rollback": the start of this epoch, which a divergence
        before its end returns to (the arrays are private copies never written to)."""
        good_arrays, good_state = self._good_state  # type: ignore[misc]
        arrays.update({f"rollback/{k}": a for k, a in good_arrays.items() if not k.startswith("split/")})
        state["rollback"] = good_state

    def _take_checkpoint(self) -> None:
        """Keep the state after this step (without the split, the history and the seconds: the
        first two are the run's, the last a clock's)."""
        arrays, state = self._state(split=False)
        if self._good_state is not None and self.batch_index > 0:
            self._add_rollback(arrays, state)
        state.pop("epoch_seconds")
        # (a deep copy: the schedule's and early stopping's state may share lists with them)
        self.checkpoints.add(Checkpoint(self.step, read_only(arrays), copy.deepcopy(state)))

    def restore_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Go back to ``checkpoint`` (one of this trainer's own): its state, the history cut
        where it was taken, and the later checkpoints forgotten. Training on from there
        repeats the run bit for bit (the same data order and dropout masks)."""
        split = {f"split/{k}": getattr(self.split, k) for k in ("train", "val", "test")}
        self.load_state_dict({**checkpoint.arrays, **split}, copy.deepcopy(dict(checkpoint.state)))

    def _state(self, split: bool) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays: dict[str, np.ndarray] = {f"weights/{k}": a for k, a in self.network.state().items()}
        opt = self.optimizer.state_dict()
        arrays.update({f"optimizer/{k}": np.array(a, copy=True) for k, a in opt["slots"].items()})
        if self.best_weights is not None:
            arrays.update({f"best/{k}": a.copy() for k, a in self.best_weights.items()})
        if self._perm is not None:
            arrays["loop/permutation"] = self._perm.copy()
        arrays["loop/epoch_sums"] = self._epoch_sums.copy()
        if split:
            arrays.update({f"split/{k}": getattr(self.split, k).copy() for k in ("train", "val", "test")})
        state = {
            "recorded_steps": self.recorder.size, "epochs_recorded": len(self.history["epoch"]),
            "step": self.step, "epoch": self.epoch, "batch_index": self.batch_index,
            "lr_scale": self.lr_scale, "rollbacks": self.rollbacks, "finished": self.finished,
            "epoch_seconds": self._epoch_seconds,
            "optimizer_iterations": int(opt["iterations"]),
            "schedule": self.schedule.state_dict(),
            "schedule_plan": {"steps_per_epoch": self.schedule.steps_per_epoch,
                              "total_steps": self.schedule.total_steps},
            "early_stopping": self.early_stopping.state_dict() if self.early_stopping else None,
            "rng": self.rng.bit_generator.state,
            "events": [dict(e) for e in self.events],
            "n_inputs": self.network.n_inputs, "n_outputs": self.network.n_outputs,
            "lineage": [dict(e) for e in self.lineage],
        }
        return arrays, state

    def load_state_dict(self, arrays: Mapping[str, np.ndarray], state: Mapping[str, Any]) -> None:
        """Put back what ``state_dict`` took out.

        Everything is checked before anything changes: a mismatch raises ``ValueError`` naming
        it and leaves the trainer as it was."""
        new = self._check_state(arrays, state)
        self.network.load_state(new["weights"])
        self.optimizer.load_state_dict(new["optimizer"])
        self.best_weights = new["best"]
        self._perm = new["permutation"]
        self._epoch_sums = new["epoch_sums"]
        if new["recorder"] is not None:
            self.history = new["history"]
            self.recorder = new["recorder"]
            self.instruments.load_arrays({k[len("history/"):]: a for k, a in arrays.items()
                                          if k.startswith("history/")}, self.recorder.size)
            self.distributions.load_arrays({k[len("history/"):]: a for k, a in arrays.items()
                                            if k.startswith("history/")})
        else:
            self.history = {k: v[: int(state["epochs_recorded"])] for k, v in self.history.items()}
            self.recorder.truncate(int(state["recorded_steps"]))
            self.instruments.truncate(int(state["recorded_steps"]))
            self.distributions.truncate_after(new["step"])
        for key in ("step", "epoch", "batch_index", "rollbacks"):
            setattr(self, key, new[key])
        self.lr_scale = new["lr_scale"]
        self.finished = new["finished"]
        self._epoch_seconds = new["epoch_seconds"]
        if new["plan"] is not None:
            self.schedule.bind(*new["plan"])
        self.schedule.load_state_dict(state["schedule"])
        if self.early_stopping is not None and state.get("early_stopping") is not None:
            self.early_stopping.load_state_dict(state["early_stopping"])
        self.rng.bit_generator.state = state["rng"]
        self.events = new["events"]
        self.lineage = new["lineage"]
        self._good_state = new["good_state"]
        if new["checkpoints"] is not None:
            self.checkpoints = new["checkpoints"]
        else:   # a roll-back or a rewind: the copies of the steps it went back over are of another path
            self.checkpoints.drop_after(self.step)
        self._apply_freeze()

    def _check_state(self, arrays: Mapping[str, np.ndarray], state: Mapping[str, Any]) -> dict[str, Any]:
        """Validate a saved state against this trainer; returns the pieces ready to put in."""
        if not isinstance(state, Mapping):
            raise ValueError(f"the state must be a mapping, got {type(state).__name__}")
        missing = [k for k in STATE_KEYS if k not in state]
        if missing:
            raise ValueError(f"the state has no {quote(missing[0])}")

        def count(key: str, high: float = math.inf) -> int:
            value = state[key]
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
                raise ValueError(f"state {key}: must be an integer in [0, {high:g}], got {quote(value)}")
            return value

        def group(prefix: str) -> dict[str, np.ndarray]:
            return {k[len(prefix):]: a for k, a in arrays.items() if k.startswith(prefix)}

        new: dict[str, Any] = {key: count(key) for key in ("step", "epoch", "rollbacks")}
        # == steps_per_epoch: every batch done but the epoch not closed yet (the GUI's Step button)
        new["batch_index"] = count("batch_index", self.steps_per_epoch)
        for key in ("recorded_steps", "epochs_recorded", "optimizer_iterations"):
            count(key)
        new["weights"] = group("weights/")
        self.network.check_state(new["weights"])
        best = {k: np.array(a, copy=True) for k, a in group("best/").items()}
        if best:
            try:
                self.network.check_state(best)
            except ValueError as exc:
                raise ValueError(f"best weights: {exc}") from None
        new["best"] = best or None
        new["optimizer"] = {"iterations": state["optimizer_iterations"], "slots": group("optimizer/")}
        self.optimizer.check_state_dict(new["optimizer"])
        n_train = len(self.split.train)
        perm = arrays.get("loop/permutation")
        if perm is not None:
            perm = np.array(perm, copy=True)
            if perm.shape != (n_train,) or perm.dtype.kind not in "iu" or \
                    not np.array_equal(np.sort(perm), np.arange(n_train)):
                raise ValueError(f"loop/permutation: must be a permutation of the {n_train} training rows")
        elif new["batch_index"] > 0:
            raise ValueError("the state stops inside an epoch but holds no loop/permutation")
        new["permutation"] = perm
        sums = np.asarray(arrays.get("loop/epoch_sums", np.zeros(3)))
        if sums.shape != (3,) or sums.dtype.kind != "f":
            raise ValueError(f"loop/epoch_sums: must be 3 floats, got shape {sums.shape} dtype {sums.dtype}")
        new["epoch_sums"] = np.array(sums, dtype=np.float64)
        for k in ("train", "val", "test"):
            stored = arrays.get(f"split/{k}")
            if stored is None or not np.array_equal(stored, getattr(self.split, k)):
                raise ValueError(f"the stored {k} split differs from the one this experiment's data and seed "
                                 "give (has the data file changed?)")
        new["history"], new["recorder"] = self._check_history(group("history/"))
        lr_scale = state["lr_scale"]
        if isinstance(lr_scale, bool) or not isinstance(lr_scale, (int, float)) or not 0 < lr_scale < math.inf:
            raise ValueError(f"state lr_scale: must be a positive number, got {quote(lr_scale)}")
        new["lr_scale"] = float(lr_scale)
        if not isinstance(state["finished"], bool):
            raise ValueError(f"state finished: must be true or false, got {quote(state['finished'])}")
        new["finished"] = state["finished"]
        seconds = state.get("epoch_seconds", 0.0)
        new["epoch_seconds"] = float(seconds) if isinstance(seconds, (int, float)) else 0.0
        new["plan"] = self._check_plan(state.get("schedule_plan"))
        probe = SCHEDULES.get(self.experiment.schedule.name).from_config(self.experiment.schedule.params,
                                                                         self.experiment.learning_rate)
        probe.load_state_dict(state["schedule"])
        if self.early_stopping is not None and state.get("early_stopping") is not None:
            es = state["early_stopping"]
            if not isinstance(es, Mapping):
                raise ValueError("state early_stopping: must be a mapping")
            try:
                EarlyStopping(self.early_stopping.monitor).load_state_dict(es)
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"state early_stopping: {quote(exc)}") from None
        try:
            np.random.PCG64().state = state["rng"]
        except (KeyError, TypeError, ValueError, OverflowError) as exc:  # a state integer beyond 128 bits
            raise ValueError(f"state rng: not a PCG64 bit-generator state ({quote(str(exc))})") from None
        events = state["events"]
        if not isinstance(events, list) or not all(isinstance(e, Mapping) for e in events):
            raise ValueError("state events: must be a list of objects")
        new["events"] = [dict(e) for e in events]
        lineage = state.get("lineage", [])
        n_hidden = len(self.network.layers)
        if not isinstance(lineage, list) or not all(
                isinstance(e, Mapping) and isinstance(e.get("layer"), int) and 0 <= e["layer"] < n_hidden
                for e in lineage):
            raise ValueError("state lineage: must be a list of objects naming hidden layers of this model")
        new["lineage"] = [dict(e) for e in lineage]
        good = state.get("rollback")
        if good is not None:
            good_arrays = {**group("rollback/"), **{k: a for k, a in arrays.items() if k.startswith("split/")}}
            try:
                self._check_state(good_arrays, good)
            except ValueError as exc:
                raise ValueError(f"roll-back state: {exc}") from None
            good = ({k: np.array(a, copy=True) for k, a in good_arrays.items()}, dict(good))
        new["good_state"] = good
        log = state.get("checkpoints")
        new["checkpoints"] = None if log is None else self._check_checkpoints(arrays, log, new["step"])
        return new

    def _check_checkpoints(self, arrays: Mapping[str, np.ndarray], log: Any, step: int) -> CheckpointLog:
        """A saved ``state["checkpoints"]`` with its ``checkpoints/<step>/...`` arrays, checked
        like the state itself (each one restores into this trainer), as a ``CheckpointLog``."""
        if not isinstance(log, Mapping) or set(log) != {"interval", "states"} or not isinstance(log["states"], list) \
                or not all(isinstance(s, Mapping) for s in log["states"]):
            raise ValueError("state checkpoints: must be an object with an interval and a list of states")
        steps = [s.get("step") for s in log["states"]]
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in steps):
            raise ValueError(f"state checkpoints: every state needs an integer step, got {quote(steps)}")
        spec = self.experiment.training.checkpoints
        problem = interval_problem(spec, log["interval"], steps)
        if problem:
            raise ValueError(f"state checkpoints: {problem}")
        if steps and steps[-1] > step:
            raise ValueError(f"state checkpoints: a checkpoint at step {steps[-1]}, after the run's step {step}")
        grouped = split_arrays(arrays)
        if set(grouped) - set(steps):
            raise ValueError(f"state checkpoints: arrays of step {min(set(grouped) - set(steps))}, which has no state")
        split = {k: a for k, a in arrays.items() if k.startswith("split/")}
        entries = []
        for at, saved in zip(steps, log["states"], strict=True):
            own = grouped.get(at, {})
            if "checkpoints" in saved:
                raise ValueError(f"checkpoint at step {at}: holds checkpoints itself")
            try:
                self._check_state({**own, **split}, saved)
            except ValueError as exc:
                raise ValueError(f"checkpoint at step {at}: {exc}") from None
            private = {k: a if not a.flags.writeable else np.array(a, copy=True) for k, a in own.items()}
            entries.append(Checkpoint(at, read_only(private), copy.deepcopy(dict(saved))))
        return CheckpointLog(spec.every, spec.keep, log["interval"], entries)

    def _check_plan(self, plan: Any) -> tuple[int, int] | None:
        if plan is None:  # sessions written before the plan was saved: the spec's plan
            return None
        if not isinstance(plan, Mapping):
            raise ValueError(f"state schedule_plan: must be an object, got {quote(plan)}")
        spe, total = plan.get("steps_per_epoch"), plan.get("total_steps")
        if spe != self.steps_per_epoch:
            raise ValueError(f"state schedule_plan: planned for {quote(spe)} steps per epoch, but this experiment "
                             f"takes {self.steps_per_epoch}")
        if isinstance(total, bool) or not isinstance(total, int) or total < 1:
            raise ValueError(f"state schedule_plan: total_steps must be a positive integer, got {quote(total)}")
        return spe, total

    def _check_history(self, hist: dict[str, np.ndarray]) -> tuple[dict[str, list[float]] | None,
                                                                   DiagnosticsRecorder | None]:
        if not hist:
            return None, None
        check_history(hist, len(self.network.layer_names), "history", complete=True)
        check_distributions(hist, len(self.network.layer_names), "history")
        history = {k: [float(x) for x in hist.get(k, [])] for k in EPOCH_METRICS}
        return history, DiagnosticsRecorder.from_arrays(hist)
