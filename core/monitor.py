"""Watching a run while it trains: the one snapshot every watcher reads, and what a watcher may
change without stopping the run.

A ``Trainer`` writes its diagnostics into growing tables on the training thread. Whoever shows
them elsewhere — the window's monitor, the command line's progress lines, and a training
process sending messages to the window — reads them through ``TrainingSnapshot``: a frozen
value of NumPy arrays and Python scalars holding *copies* of only what changed since the
previous snapshot, so it can cross a thread or a process boundary while training goes on.

* ``TrainingSnapshot.progress``   where the run is (``TrainingProgress``: step, epoch, batch,
  rate, paused / finished);
* ``.rows``     the diagnostics rows recorded since the last snapshot
  (``DiagnosticsRecorder.since``; columns ``step`` and every per-layer and per-step quantity),
  with the instruments' values on the same rows (``INSTRUMENT_KEYS``: NaN where an instrument
  did not measure);
* ``.epochs``   the epoch-history rows completed since (columns ``EPOCH_METRICS``, float64);
* ``.events``, ``.health``, ``.frozen_layers``   the run's events so far, the detector's
  findings and which layers transfer learning holds frozen now (whole: they are small);
* ``.run``      on the first snapshot of a trainer only (``reset``): what does not change
  during a run (``RunInfo``: layer names, the planned learning rate, a 2-D dataset's points);
* ``.distributions``  the rows of the distributions over time (``DistributionRecorder.since``:
  ``step`` and one (rows, layers, columns) block per kind) recorded since, rewound like ``rows``;
* ``.confusion``, ``.boundary``   the slower extras (validation confusion matrix, decision
  boundary probabilities), when this snapshot computed them.

A reader applies snapshots in order: rows from ``rows.start`` replace what it holds from there
(a NaN roll-back rewinds the tables) and are appended. Snapshots a reader has not applied yet
coalesce into one with ``then``, which is what applying them one by one would give.

``SnapshotSource`` builds them for one trainer and paces them for an observer: at most
``MAX_SNAPSHOTS_PER_SECOND`` whatever the step rate, the extras at most every
``EXTRAS_INTERVAL`` seconds, and one at once when the run pauses or an event happens.

What a running trainer can take between batches without a new model — the learning rate, the
schedule, when to unfreeze reused layers — is ``hyperparameter_only_change``; the planned
learning-rate curve and the decision-boundary probabilities are computed here too, all
without Qt.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from core.engine.diagnostics import EPOCH_METRICS, HealthIssue, Rows, own_copy
from core.engine.instruments import is_adaptive, stability_threshold
from core.engine.optimizers import OPTIMIZERS
from core.engine.schedules import SCHEDULES
from core.spec import Experiment
from core.training import Trainer

MAX_SNAPSHOTS_PER_SECOND = 20
EXTRAS_INTERVAL = 0.5          # confusion matrix / decision boundary at most this often (seconds)
RATE_WINDOW = 0.5              # the step rate is measured over at least this many seconds
# The health findings are assessed at most this often (seconds), and at once for a new event or an
# extras snapshot: an assessment reads the recent diagnostics (about 2 ms on the default network),
# and at 20 snapshots a second it was 4 % of a watched run's time (benchmarks/bench_window.py).
HEALTH_INTERVAL = 0.5
BOUNDARY_GRID = 90             # the decision boundary is predicted on a GRID × GRID lattice
PLANNED_LR_POINTS = 2000
#: Datasets drawn with their decision boundary (when they have exactly two features).
TWO_D_DATASETS = ("spirals", "moons", "circles", "xor", "blobs")


# ----------------------------------------------------------------------------- live edits


#: The spec fields a running trainer takes between batches (what ``hyperparameter_only_change``
#: lets through); every other edit waits for the next run, which starts from fresh weights.
LIVE_FIELDS = ("name", "optimizer.learning_rate", "schedule", "model.transfer.unfreeze_at_epoch",
               "model.transfer.learning_rate_factor")


def applies_live(path: str) -> bool:
    """True when an edit of the field at ``path`` (``"schedule.params.decay_steps"``) applies to a
    running run from its next batch: the learning rate, the schedule and anything in it, when to
    unfreeze transferred layers (while that epoch is still ahead) and their rate factor, the name."""
    return any(path == live or path.startswith(live + ".") or path.startswith(live + "[") for live in LIVE_FIELDS)


def hyperparameter_only_change(old: Experiment, new: Experiment, epoch: int = 0) -> bool:
    """True when ``new`` differs from ``old`` only in what a running trainer can take between
    batches (``Trainer.set_hyperparameters``): the name, the optimizer's learning rate, the
    learning-rate schedule, the instruments (``training.instruments``: they measure a private
    copy of the network, so turning one on never changes the run), and when to unfreeze
    transferred layers (if that epoch is still ahead: ``epoch`` epochs are complete)."""
    a, b = old.to_dict(), new.to_dict()
    for d in (a, b):
        d.pop("name")
        d.pop("schedule")
        d["training"].pop("instruments", None)
        d["optimizer"] = {k: v for k, v in d["optimizer"].items() if k != "learning_rate"}
    ta, tb = a["model"].get("transfer"), b["model"].get("transfer")
    if ta is not None and tb is not None and ta.get("unfreeze_at_epoch") != tb.get("unfreeze_at_epoch"):
        until = tb.get("unfreeze_at_epoch")
        if until is not None and until <= epoch:
            return False        # the unfreezing point would already be behind: needs a new run
    for t in (ta, tb):
        if t is not None:
            t.pop("unfreeze_at_epoch", None)
            t.pop("learning_rate_factor", None)
    return a == b


# ----------------------------------------------------------------------------- what a run plans and predicts


def planned_learning_rate(trainer: Trainer) -> tuple[np.ndarray, np.ndarray]:
    """The schedule over the whole planned run: (epochs, learning rate), at most
    ``PLANNED_LR_POINTS`` points. It reads the schedule as a function of the step only, from a
    fresh copy (the performance schedule, which reacts to the validation loss, shows its
    starting rate)."""
    sched = trainer.schedule
    total = int(sched.total_steps or trainer.steps_per_epoch * trainer.experiment.training.epochs)
    steps = np.unique(np.linspace(0, max(total - 1, 0), min(total, PLANNED_LR_POINTS)).astype(np.int64))
    fresh = SCHEDULES.get(trainer.experiment.schedule.name).from_config(trainer.experiment.schedule.params,
                                                                       trainer.experiment.learning_rate)
    fresh.bind(trainer.steps_per_epoch, max(total, 1))
    lr = np.array([fresh(int(s)) for s in steps], dtype=np.float64)
    return steps / trainer.steps_per_epoch, lr


def planned_stability_threshold(trainer: Trainer) -> tuple[np.ndarray, np.ndarray]:
    """The optimizer's stability threshold over the whole planned run, (epochs, threshold) at the
    points of ``planned_learning_rate``: 2/η, (2 + 2β)/η or (2 + 2β1)/((1 − β1)η) of the planned
    rate η (``core.engine.instruments.stability_threshold``), with β as the schedule cycles it
    (1cycle) where it does. The sharpness dock draws it behind the measured λ_max."""
    x, lr = planned_learning_rate(trainer)
    spec = trainer.experiment
    optimizer = OPTIMIZERS.get(spec.optimizer.name).from_config(spec.optimizer.params)
    sched = SCHEDULES.get(spec.schedule.name).from_config(spec.schedule.params, spec.learning_rate)
    total = int(trainer.schedule.total_steps or trainer.steps_per_epoch * spec.training.epochs)
    sched.bind(trainer.steps_per_epoch, max(total, 1))
    own_beta = getattr(optimizer, "momentum", None)
    out = np.empty_like(lr)
    for i, (epoch, rate) in enumerate(zip(x, lr, strict=True)):
        if own_beta is not None:
            beta = sched.momentum(int(round(epoch * trainer.steps_per_epoch)))
            optimizer.momentum = own_beta if beta is None else beta  # type: ignore[attr-defined]
        out[i] = stability_threshold(optimizer, float(rate))
    return x, out


@dataclass(frozen=True, eq=False)
class TwoDPoints:
    """A 2-D dataset's points in their original coordinates (training and validation rows), and
    the padded box the decision boundary is drawn over: ``bounds = ((x0, x1), (y0, y1))``."""

    X: np.ndarray
    y: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    bounds: tuple[tuple[float, float], tuple[float, float]]
    n_classes: int


def two_d_points(trainer: Trainer) -> TwoDPoints | None:
    """The points for the decision-boundary plot, or None when the data is not one of the 2-D
    classification datasets (``TWO_D_DATASETS``)."""
    ds = trainer.dataset
    if ds.X.shape[1] != 2 or not trainer.classification or trainer.experiment.data.source not in TWO_D_DATASETS:
        return None
    X = np.asarray(ds.X, dtype=np.float64)
    y = np.asarray(ds.y)
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = 0.08 * np.maximum(hi - lo, 1e-9)
    return TwoDPoints(X=own_copy(X[trainer.split.train]), y=own_copy(y[trainer.split.train]),
                      X_val=own_copy(X[trainer.split.val]), y_val=own_copy(y[trainer.split.val]),
                      bounds=((float(lo[0] - pad[0]), float(hi[0] + pad[0])),
                              (float(lo[1] - pad[1]), float(hi[1] + pad[1]))),
                      n_classes=int(ds.n_classes))


def boundary_probabilities(trainer: Trainer, bounds: tuple[tuple[float, float], tuple[float, float]],
                           n: int = BOUNDARY_GRID) -> np.ndarray:
    """Class probabilities on an n × n grid over ``bounds`` (rows = y, columns = x): (n, n, k),
    float32. A sigmoid output's P(class 1) = p becomes the two columns (1 − p, p)."""
    (x0, x1), (y0, y1) = bounds
    gx, gy = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    grid = np.column_stack([gx.ravel(), gy.ravel()]).astype(trainer.dtype)
    with np.errstate(all="ignore"):
        probs = trainer.network.predict(trainer.standardize(grid))
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim == 1 or probs.shape[1] == 1:
        p1 = probs.reshape(-1)
        probs = np.column_stack([1 - p1, p1])
    return probs.reshape(n, n, -1)


# ----------------------------------------------------------------------------- the snapshot


@dataclass(frozen=True)
class TrainingProgress:
    """Where a run is. ``done`` of ``total`` batches of the planned run; ``rate`` in steps per
    second (0 until measured) and ``eta`` in seconds (NaN without a rate); ``loss`` is the
    mini-batch loss of the last recorded step (NaN before any)."""

    step: int
    epoch: int           # epochs complete
    epochs: int          # epochs planned
    batch: int           # batches done in the current epoch
    batches: int         # batches per epoch
    done: int
    total: int
    rate: float
    eta: float
    loss: float
    paused: bool
    finished: bool       # early stopping ended the run

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class RunInfo:
    """What stays the same for a trainer's whole run (sent once, with its first snapshot)."""

    layer_names: tuple[str, ...]        # layers with parameters, the output layer last
    steps_per_epoch: int
    epochs: int
    classification: bool
    class_names: tuple[str, ...]        # empty for regression
    planned_lr: tuple[np.ndarray, np.ndarray]   # (epochs, learning rate): ``planned_learning_rate``
    points: TwoDPoints | None
    dataset: str
    # (mode, threshold) of the run's gradient clipping: the gradient-norm plot draws the threshold
    gradient_clip: tuple[str, float] = ("none", math.nan)
    # What the instrument docks read: the batch size (the noise dock's advisor line), the
    # optimizer (its name, and whether its sharpness is the preconditioned one), the planned
    # stability threshold (``planned_stability_threshold``) and ``training.instruments`` at the start.
    batch_size: int = 0
    optimizer: str = ""
    adaptive: bool = False
    planned_threshold: tuple[np.ndarray, np.ndarray] | None = None
    instruments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class TrainingSnapshot:
    """What changed in a run since the previous snapshot; see the module docstring."""

    progress: TrainingProgress
    rows: Rows
    epochs: Rows
    events: tuple[dict[str, Any], ...]
    health: tuple[HealthIssue, ...]
    frozen_layers: tuple[bool, ...]     # per layer of ``RunInfo.layer_names``
    run: RunInfo | None = None
    confusion: np.ndarray | None = None     # (classes, classes) counts on the validation split
    boundary: np.ndarray | None = None      # (grid, grid, classes): ``boundary_probabilities``
    distributions: Rows | None = None       # new histogram rows (``core.engine.distributions``)

    @property
    def reset(self) -> bool:
        """The first snapshot of a trainer: a reader forgets the run it holds."""
        return self.run is not None

    def then(self, later: TrainingSnapshot) -> TrainingSnapshot:
        """This snapshot and a ``later`` one as one: applying it is applying both in order."""
        if later.reset:
            return later
        return TrainingSnapshot(
            progress=later.progress, rows=self.rows.then(later.rows), epochs=self.epochs.then(later.epochs),
            events=later.events, health=later.health, frozen_layers=later.frozen_layers, run=self.run,
            confusion=later.confusion if later.confusion is not None else self.confusion,
            boundary=later.boundary if later.boundary is not None else self.boundary,
            distributions=_then(self.distributions, later.distributions))


def _then(earlier: Rows | None, later: Rows | None) -> Rows | None:
    if earlier is None or later is None:
        return later if later is not None else earlier
    return earlier.then(later)


def run_info(trainer: Trainer, points: TwoDPoints | None) -> RunInfo:
    """What a reader needs once per run (``points``: ``two_d_points(trainer)``)."""
    ds = trainer.dataset
    clip = trainer.experiment.regularization.gradient_clip
    x, lr = planned_learning_rate(trainer)
    tx, threshold = planned_stability_threshold(trainer)
    return RunInfo(layer_names=tuple(str(n) for n in trainer.network.layer_names),
                   steps_per_epoch=int(trainer.steps_per_epoch), epochs=int(trainer.experiment.training.epochs),
                   classification=bool(trainer.classification),
                   class_names=tuple(str(c) for c in ds.class_names) if trainer.classification else (),
                   planned_lr=(own_copy(x), own_copy(lr)), points=points, dataset=str(ds.name),
                   gradient_clip=(clip.mode, float(clip.threshold) if clip.mode != "none" else math.nan),
                   batch_size=int(trainer.experiment.training.batch_size),
                   optimizer=str(trainer.experiment.optimizer.name), adaptive=bool(is_adaptive(trainer.optimizer)),
                   planned_threshold=(own_copy(tx), own_copy(threshold)),
                   instruments=trainer.experiment.training.instruments.to_dict())


class SnapshotSource:
    """Builds the snapshots of one trainer, each with what changed since the one before.

    Call it on the thread that trains (between batches: it reads the trainer). With
    ``history=True`` the first snapshot is a reset that carries the whole history so far (a
    window showing a new or an opened run); with ``history=False`` snapshots start from where
    the trainer is now (a log of what is trained from here on). ``between`` is called between
    the extras' computations (the window lets its GUI thread paint there); ``clock`` is
    seconds, for the rate and the pacing.
    """

    def __init__(self, trainer: Trainer, *, history: bool = True,
                 max_per_second: float = MAX_SNAPSHOTS_PER_SECOND, extras_interval: float = EXTRAS_INTERVAL,
                 between: Callable[[], None] | None = None, clock: Callable[[], float] = time.perf_counter) -> None:
        self.trainer = trainer
        self.interval = 1.0 / max_per_second
        self.extras_interval = extras_interval
        self._between = between or (lambda: None)
        self._clock = clock
        self._pending_reset = history
        self._recorder = trainer.recorder
        self._rows_sent = 0 if history else trainer.recorder.size
        self._truncations_seen = len(trainer.recorder.truncated_to)
        self._distributions = trainer.distributions
        self._dist_sent = 0 if history else trainer.distributions.size
        self._dist_truncations_seen = len(trainer.distributions.truncated_to)
        self._epochs_sent = 0 if history else len(trainer.history["epoch"])
        self._last_take = -math.inf
        self._last_extras = -math.inf
        self._extras_due = True
        self._rate_mark: tuple[float, int] | None = None
        self._rate = 0.0
        self.points = two_d_points(trainer)
        self.taken = 0
        self._health: tuple[HealthIssue, ...] = ()
        self._health_at = -math.inf
        self._health_events = -1          # the number of events when the health was last assessed

    def observe(self, kind: str) -> TrainingSnapshot | None:
        """Pacing for a trainer's observer (call it with each ``kind`` the trainer reports): a
        snapshot when one is due, else None. A step gets one when ``1 / max_per_second`` has
        passed since the last, with the extras if an epoch ended since and ``extras_interval``
        has passed; a pause gets one at once with the extras, an event one at once."""
        if kind == "epoch":
            self._extras_due = True
            return None
        if kind == "step":
            now = self._clock()
            if now - self._last_take < self.interval:
                return None
            return self.take(extras=self._extras_due and now - self._last_extras >= self.extras_interval)
        if kind in ("paused", "event"):
            return self.take(extras=kind == "paused")
        return None

    def take(self, extras: bool = False) -> TrainingSnapshot:
        """A snapshot now (with the confusion matrix and decision boundary if ``extras``)."""
        trainer = self.trainer
        now = self._clock()
        run = None
        if self._pending_reset:
            self._pending_reset = False
            run = run_info(trainer, self.points)
        rows = self._new_rows()
        history = trainer.history
        n_epochs = len(history["epoch"])
        first_epoch = min(self._epochs_sent, n_epochs)
        epochs = Rows(first_epoch, {k: own_copy(history[k][first_epoch:], np.float64) for k in EPOCH_METRICS})
        self._epochs_sent = n_epochs
        confusion = boundary = None
        if extras:
            self._between()
            # A diverged model overflows on its way to NaN: that is reported as an event, not warned about.
            with np.errstate(all="ignore"):
                if trainer.classification:
                    confusion = own_copy(trainer.confusion_matrix("val"))
                self._between()
                if self.points is not None:
                    boundary = own_copy(boundary_probabilities(trainer, self.points.bounds))
            self._between()
            self._last_extras = now
            self._extras_due = False
        self._last_take = now
        self.taken += 1
        return TrainingSnapshot(
            progress=self._progress(now), rows=rows, epochs=epochs,
            events=tuple(dict(e) for e in trainer.events), health=self._assess_health(now, extras),
            # kept fixed by model.transfer until its unfreeze epoch (and again after a roll-back)
            frozen_layers=tuple(bool(layer.frozen) for layer in trainer.network.layers) + (False,),
            run=run, confusion=confusion, boundary=boundary, distributions=self._new_distribution_rows())

    def _assess_health(self, now: float, extras: bool) -> tuple[HealthIssue, ...]:
        """The trainer's health findings, assessed again when ``HEALTH_INTERVAL`` has passed, an
        event has happened since, or the snapshot carries the extras (a pause, the run's end)."""
        events = len(self.trainer.events)
        if extras or events != self._health_events or now - self._health_at >= HEALTH_INTERVAL:
            self._health = tuple(self.trainer.health())
            self._health_at, self._health_events = now, events
        return self._health

    def _new_distribution_rows(self) -> Rows | None:
        """The histogram rows recorded (or rewritten by a roll-back or a halving) since the last
        snapshot; ``None`` when there are none."""
        rec = self.trainer.distributions
        if rec is not self._distributions:
            self._distributions, self._dist_sent, self._dist_truncations_seen = rec, 0, 0
        start = min([self._dist_sent, *rec.truncated_to[self._dist_truncations_seen:]])
        self._dist_truncations_seen = len(rec.truncated_to)
        if start == rec.size == self._dist_sent:
            return None
        self._dist_sent = rec.size
        return rec.since(start)

    def _new_rows(self) -> Rows:
        rec = self.trainer.recorder
        if rec is not self._recorder:            # a whole state was put back: every row is new
            self._recorder, self._rows_sent, self._truncations_seen = rec, 0, 0
        start = min([self._rows_sent, *rec.truncated_to[self._truncations_seen:]])
        self._rows_sent = rec.size
        self._truncations_seen = len(rec.truncated_to)
        rows = rec.since(start)
        # The instruments' tables share the recorder's rows (and its roll-backs): the same slice.
        # They measure before the step is reported, so a row sent here holds its values already.
        columns = dict(rows.columns)
        columns.update(self.trainer.instruments.rows(rows.start, rows.end))
        return Rows(rows.start, columns)

    def _progress(self, now: float) -> TrainingProgress:
        trainer = self.trainer
        if self._rate_mark is None:
            self._rate_mark = (now, trainer.step)
        else:
            t0, s0 = self._rate_mark
            if now - t0 >= RATE_WINDOW:
                rate = (trainer.step - s0) / (now - t0)
                self._rate = rate if self._rate == 0 else 0.5 * self._rate + 0.5 * rate
                self._rate_mark = (now, trainer.step)
        epochs = trainer.experiment.training.epochs
        total = trainer.steps_per_epoch * epochs
        done = min(trainer.epoch * trainer.steps_per_epoch + trainer.batch_index, total)
        eta = (total - done) / self._rate if self._rate > 0 else math.nan
        rec = trainer.recorder
        loss = float(rec.table("loss")[rec.size - 1]) if rec.size else math.nan
        return TrainingProgress(step=int(trainer.step), epoch=int(trainer.epoch), epochs=int(epochs),
                                batch=int(trainer.batch_index), batches=int(trainer.steps_per_epoch),
                                done=int(done), total=int(total), rate=float(self._rate), eta=float(eta),
                                loss=loss, paused=bool(trainer.paused), finished=bool(trainer.finished))
