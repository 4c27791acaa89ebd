"""The training worker: a QObject living in a QThread that drives ``core.training.Trainer``.

Contract (DESIGN.md, "Threading"): the GUI thread never trains. Every job (build a trainer,
train, one step, recompute the per-epoch extras) runs here; the loop checks the trainer's
pause / stop flags between batches; what the GUI sees are plain-data snapshots holding
copies, sent through a queued signal at most ``MAX_SNAPSHOTS_PER_SECOND`` times a second
whatever the step rate. Requests from the GUI that must touch the trainer (copy its state
for saving, apply a new learning rate) are queued here and served at the next batch
boundary, from the ``should_stop`` callback the trainer calls between batches (and every
50 ms while paused). An exception in a job becomes the ``failed`` signal, never a crash.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from core.engine.diagnostics import LAYER_QUANTITIES
from core.engine.schedules import SCHEDULES
from core.engine.validation import excerpt
from core.sessions.format import SessionError, load_session
from core.sessions.trainer_io import restore_trainer
from core.spec import Experiment, SpecError
from core.training import EPOCH_METRICS, Trainer

from ..gil import GilYield

MAX_SNAPSHOTS_PER_SECOND = 20
SNAPSHOT_INTERVAL = 1.0 / MAX_SNAPSHOTS_PER_SECOND
EXTRAS_INTERVAL = 0.5          # confusion matrix / decision boundary at most this often (seconds)
BOUNDARY_GRID = 90             # the decision boundary is predicted on a GRID × GRID lattice
PLANNED_LR_POINTS = 2000
#: Datasets drawn with their decision boundary (when they have exactly two features).
TWO_D_DATASETS = ("spirals", "moons", "circles", "xor", "blobs")


def hyperparameter_only_change(old: Experiment, new: Experiment, epoch: int = 0) -> bool:
    """True when ``new`` differs from ``old`` only in what a running trainer can take between
    batches: the name, the optimizer's learning rate, the learning-rate schedule, and when to
    unfreeze transferred layers (if that epoch is still ahead: ``epoch`` epochs are complete)."""
    a, b = old.to_dict(), new.to_dict()
    for d in (a, b):
        d.pop("name")
        d.pop("schedule")
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


def apply_hyperparameters(trainer: Trainer, experiment: Experiment) -> None:
    """Give a trainer a new learning rate / schedule between batches (``Trainer.set_hyperparameters``);
    the trainer reads ``model.transfer.unfreeze_at_epoch`` from its experiment at each epoch's end, so
    a new unfreezing point takes effect there."""
    trainer.set_hyperparameters(experiment)


def planned_learning_rate(trainer: Trainer) -> tuple[np.ndarray, np.ndarray]:
    """The schedule over the whole planned run (epochs on x), at most PLANNED_LR_POINTS points;
    pure functions of the step only (the performance schedule shows its start value)."""
    sched = trainer.schedule
    total = int(sched.total_steps or trainer.steps_per_epoch * trainer.experiment.training.epochs)
    steps = np.unique(np.linspace(0, max(total - 1, 0), min(total, PLANNED_LR_POINTS)).astype(np.int64))
    fresh = SCHEDULES.get(trainer.experiment.schedule.name).from_config(trainer.experiment.schedule.params,
                                                                       trainer.experiment.learning_rate)
    fresh.bind(trainer.steps_per_epoch, max(total, 1))
    lr = np.array([fresh(int(s)) for s in steps], dtype=np.float64)
    return steps / trainer.steps_per_epoch, lr


def two_d_points(trainer: Trainer) -> dict[str, Any] | None:
    """The dataset's points (original coordinates) for the decision-boundary plot, or None."""
    ds = trainer.dataset
    if ds.X.shape[1] != 2 or not trainer.classification or trainer.experiment.data.source not in TWO_D_DATASETS:
        return None
    X = np.asarray(ds.X, dtype=np.float64)
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = 0.08 * np.maximum(hi - lo, 1e-9)
    return {"X": X[trainer.split.train].copy(), "y": np.asarray(ds.y)[trainer.split.train].copy(),
            "X_val": X[trainer.split.val].copy(), "y_val": np.asarray(ds.y)[trainer.split.val].copy(),
            "bounds": ((float(lo[0] - pad[0]), float(hi[0] + pad[0])), (float(lo[1] - pad[1]), float(hi[1] + pad[1]))),
            "n_classes": int(ds.n_classes)}


def boundary_probabilities(trainer: Trainer, bounds: tuple[tuple[float, float], tuple[float, float]],
                           n: int = BOUNDARY_GRID) -> np.ndarray:
    """Class probabilities on an n × n grid over ``bounds`` (rows = y, columns = x): (n, n, k)."""
    (x0, x1), (y0, y1) = bounds
    gx, gy = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    grid = np.column_stack([gx.ravel(), gy.ravel()]).astype(trainer.dtype)
    with np.errstate(all="ignore"):
        probs = trainer.network.predict(trainer.standardize(grid))
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim == 1 or probs.shape[1] == 1:           # sigmoid output: P(class 1)
        p1 = probs.reshape(-1)
        probs = np.column_stack([1 - p1, p1])
    return probs.reshape(n, n, -1)


class GuiGate:
    """Lets the GUI thread draw without fighting the worker for the GIL.

    A small network trains in pure-Python-bound steps that hold the GIL; pyqtgraph paints through
    many short Python calls, and each of them would wait a whole switch interval for the worker
    to let go (a convoy: hundreds of ms a frame). While the GUI holds the gate (drawing, painting)
    the worker waits between batches, releasing the GIL; it never waits longer than
    ``MAX_HOLD`` seconds, so a stuck GUI cannot stop training. Enter / exit on the GUI thread only.

    The gate is closed by a Python slot, which itself needs the GIL: while open, ``wait`` still
    hands the GIL over every few milliseconds (``workbench.gil``), or the GUI thread could wait
    60-180 ms for the GIL to close it.
    """

    MAX_HOLD = 0.25
    MAX_SHARE = 0.6

    def __init__(self) -> None:
        self.free = threading.Event()
        self.free.set()
        self._depth = 0
        self.disabled = False
        self._window_start = 0.0          # worker side: how long it gave way in the current second
        self._waited = 0.0
        self.yield_gil = GilYield()

    def disable(self) -> None:
        """Open for good (the GUI is about to block waiting for the worker: it must not wait on us)."""
        self.disabled = True
        self.free.set()

    def __enter__(self) -> GuiGate:
        self._depth += 1
        if not self.disabled:
            self.free.clear()
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth <= 0:
            self._depth = 0
            self.free.set()

    def follow_event_loop(self, dispatcher: Any) -> None:
        """Hold the gate whenever the GUI thread's event loop is awake (handling events, painting),
        and open it when the loop is about to sleep: the worker trains while the GUI idles.
        ``dispatcher`` is the GUI thread's ``QAbstractEventDispatcher``."""
        dispatcher.awake.connect(self._awake)
        dispatcher.aboutToBlock.connect(self._about_to_block)

    @contextlib.contextmanager
    def opened(self) -> Iterator[None]:
        """Keep the gate open while the GUI thread blocks waiting for the worker."""
        was = self.disabled
        self.disable()
        try:
            yield
        finally:
            self.disabled = was

    def _awake(self) -> None:
        if not self.disabled:
            self.free.clear()

    def _about_to_block(self) -> None:
        if self._depth == 0:
            self.free.set()

    def wait(self) -> None:
        """Worker side: between batches, give way while the GUI is busy — for at most ``MAX_HOLD``
        at a time and ``MAX_SHARE`` of each second, so a GUI that never idles (a window being
        resized for seconds) slows training down but cannot stop it."""
        if self.free.is_set():
            self.yield_gil()
            return
        now = time.perf_counter()
        if now - self._window_start > 1.0:
            self._window_start, self._waited = now, 0.0
        if self._waited >= self.MAX_SHARE:
            return
        self.free.wait(self.MAX_HOLD)
        self._waited += time.perf_counter() - now


class TrainingWorker(QObject):
    """Runs jobs for the ``TrainingController``; lives in its QThread.

    Signals (queued to the GUI thread): ``built(trainer)`` after a build job, ``snapshot(dict)``,
    ``job_done(str)`` with why a job ended, ``failed(str)`` with a readable message."""

    built = Signal(object)
    opened = Signal(object)             # a Session restored by ``open_session`` (before its snapshot)
    open_failed = Signal(str)
    snapshot = Signal(object)
    job_done = Signal(str)
    failed = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.trainer: Trainer | None = None
        self._stop = threading.Event()
        self._step_request = threading.Event()
        self._lock = threading.Lock()
        self._requests: list[Callable[[Trainer], None]] = []
        self._reset_counters()
        self.snapshots_sent = 0
        self.active = threading.Event()     # set from job dispatch (GUI thread) until the job ended
        self.gate = GuiGate()
        self.autosave: Callable[[Trainer, str], None] | None = None   # recovery copies (workbench.sessions)

    # ------------------------------------------------------------------ thread-safe requests (any thread)

    def request_stop(self) -> None:
        """End the current job before its next batch (and leave a pause)."""
        self._stop.set()
        trainer = self.trainer
        if trainer is not None:
            trainer.request_stop()

    def request_step(self) -> None:
        """While paused inside ``fit``: leave it, take one batch, and pause again."""
        self._step_request.set()

    def post(self, request: Callable[[Trainer], None]) -> None:
        """Run ``request(trainer)`` on the worker thread at the next batch boundary."""
        with self._lock:
            self._requests.append(request)

    # ------------------------------------------------------------------ jobs (worker thread)

    def prepare(self) -> None:
        """Called by the controller (GUI thread) just before it queues a job: from now until the job
        has ended the trainer belongs to this thread."""
        self._stop.clear()
        self._step_request.clear()
        self.active.set()

    def _run_job(self, name: str, job: Callable[[], str | None]) -> None:
        reason, error = name, None
        try:
            reason = job() or name
        except Exception as exc:  # noqa: BLE001 — every failure becomes a message, never a crash
            error = _describe(exc)
        finally:
            self._step_request.clear()
            self._serve_requests()
            self.active.clear()
        if error is not None:
            self.failed.emit(error)
        else:
            self.job_done.emit(reason)

    @Slot(object, object, object)
    def build(self, experiment: Experiment, base_dir: object, trainer: object) -> None:
        """Build a trainer for ``experiment`` (or adopt ``trainer``, e.g. a restored session) and
        send a full snapshot of its history."""
        def job() -> str:
            try:
                self.trainer = trainer if isinstance(trainer, Trainer) else \
                    Trainer(experiment, Path(base_dir) if isinstance(base_dir, str | Path) else None)
            except (SpecError, OSError) as exc:
                # The experiment does not fit its data or the session it reuses layers from: the
                # user's to change, so the dialog says what and where, not a bug report's frame.
                field = exc.path if isinstance(exc, SpecError) and exc.path else "the experiment"
                raise BuildRefused(f"Cannot build the model for this experiment:\n{exc}\n\nThe experiment and the "
                                   f"run on screen are kept; change {field} and train again.") from None
            self._reset_counters()
            self.built.emit(self.trainer)
            self._emit(self.trainer, reset=True, extras=True)
            return "built"
        self._run_job("built", job)

    @Slot(object)
    def open_session(self, path: Path) -> None:
        """Load a session file and restore its trainer here, off the GUI thread; a file that
        cannot be opened is ``open_failed`` (the current trainer is kept), not a training failure."""
        def job() -> str:
            try:
                session = load_session(path)
                trainer = restore_trainer(session)
            except SessionError as exc:
                self.open_failed.emit(f"Cannot open {Path(path).name}:\n{exc}")
                return "open_failed"
            except (SpecError, ValueError, OSError) as exc:
                self.open_failed.emit(f"Cannot open {Path(path).name}:\n{path}: {exc}")
                return "open_failed"
            except Exception as exc:  # noqa: BLE001 — whatever a file does, a failed open is only that
                # (as a training failure it would mark the open run stale and lose it on the next Train)
                self.open_failed.emit(f"Cannot open {Path(path).name}:\n{path}: {type(exc).__name__}: "
                                      f"{excerpt(str(exc), 300)}")
                return "open_failed"
            self.trainer = trainer
            self._reset_counters()
            self.built.emit(trainer)
            self.opened.emit(session)
            self._emit(trainer, reset=True, extras=True)
            return "opened"
        self._run_job("opened", job)

    @Slot()
    def train(self) -> None:
        """``fit`` to the planned number of epochs; a Step while paused leaves ``fit``, takes one
        batch and goes back in, still paused."""
        def job() -> str:
            trainer = self._require_trainer()
            self._t_run = time.perf_counter()
            while True:
                reason = trainer.fit(None, self._observe, self._should_stop)
                if self._step_request.is_set() and not self._stop.is_set():
                    self._step_request.clear()
                    self._one_step(trainer)
                    if trainer.epoch < trainer.experiment.training.epochs and not trainer.finished:
                        continue
                    reason = "early_stopping" if trainer.finished else "completed"
                break
            self._emit(trainer, extras=True)
            return reason
        self._run_job("completed", job)

    @Slot()
    def step(self) -> None:
        """One batch (and the end of the epoch if it was the last one)."""
        self._run_job("step", lambda: self._one_step(self._require_trainer()))

    @Slot()
    def refresh(self) -> None:
        """Recompute confusion matrix, decision boundary and health, and send them."""
        self._run_job("refresh", lambda: self._emit(self._require_trainer(), extras=True))

    def serve_requests_if_idle(self) -> None:
        """Serve queued requests from the calling thread — only when no job runs (GUI thread,
        while it waits for an answer and therefore cannot queue a new job)."""
        if not self.active.is_set():
            self._serve_requests()

    # ------------------------------------------------------------------ internals (worker thread)

    def _reset_counters(self) -> None:
        self._sent_rows = 0
        self._sent_epochs = 0
        self._last_emit = 0.0
        self._last_extras = 0.0
        self._extras_due = True
        self._rate_mark: tuple[float, int] | None = None
        self._rate = 0.0
        self._t_run = time.perf_counter()
        self._steps_at_run = 0
        self._points: dict[str, Any] | None = None

    def _require_trainer(self) -> Trainer:
        if self.trainer is None:
            raise RuntimeError("there is no model to train")
        return self.trainer

    def _one_step(self, trainer: Trainer) -> None:
        if trainer.finished or trainer.epoch >= trainer.experiment.training.epochs:
            return
        if trainer.batch_index >= trainer.steps_per_epoch:
            trainer.fit(epochs=1, observer=self._observe)
        outcome = trainer.train_batch(self._observe)
        if outcome is None and trainer.batch_index >= trainer.steps_per_epoch:
            trainer.fit(epochs=1, observer=self._observe)     # closes the epoch: evaluation, history
        self._emit(trainer, extras=True)

    def _should_stop(self) -> bool:
        self._serve_requests()
        return self._stop.is_set() or self._step_request.is_set()

    def _serve_requests(self) -> None:
        if not self._requests:
            return
        with self._lock:
            requests, self._requests = self._requests, []
        for request in requests:
            if self.trainer is not None:
                request(self.trainer)

    def _observe(self, kind: str, info: dict[str, Any]) -> None:
        trainer = self.trainer
        if trainer is None:
            return
        autosave = self.autosave
        if autosave is not None and kind in ("step", "epoch"):
            autosave(trainer, kind)      # copies at this batch boundary; written on another thread
        if kind == "epoch":
            self._extras_due = True
            return
        if kind == "step":
            self.gate.wait()
        now = time.perf_counter()
        if kind == "step":
            if now - self._last_emit >= SNAPSHOT_INTERVAL:
                extras = self._extras_due and now - self._last_extras >= EXTRAS_INTERVAL
                self._emit(trainer, extras=extras)
        elif kind in ("paused", "event"):
            self._emit(trainer, extras=kind == "paused", paused=kind == "paused")

    def _emit(self, trainer: Trainer, reset: bool = False, extras: bool = False, paused: bool = False) -> None:
        """Send what is new since the last snapshot, as copies."""
        now = time.perf_counter()
        rec = trainer.recorder
        row_start = min(self._sent_rows, rec.size)
        epochs = trainer.history
        n_epochs = len(epochs["epoch"])
        epoch_start = min(self._sent_epochs, n_epochs)
        snap: dict[str, Any] = {
            "reset": reset, "paused": paused,
            "row_start": row_start,
            "steps": rec.steps[row_start:].copy(),
            "layers": {q: rec[q][row_start:].copy() for q in LAYER_QUANTITIES},
            "loss": rec["loss"][row_start:].copy(),
            "learning_rate": rec["learning_rate"][row_start:].copy(),
            "epoch_start": epoch_start,
            "epochs": {k: list(epochs[k][epoch_start:]) for k in EPOCH_METRICS},
            "events": [dict(e) for e in trainer.events],
            "progress": self._progress(trainer, now),
            "health": [issue.to_dict() for issue in trainer.health()],
            # per layer of layer_names (the output layer last): kept fixed by model.transfer now;
            # in every snapshot, since it changes at the unfreeze epoch (and back on a roll-back)
            "frozen_layers": [bool(layer.frozen) for layer in trainer.network.layers] + [False],
        }
        if reset:
            self._points = two_d_points(trainer)
            x_lr, lr = planned_learning_rate(trainer)
            ds = trainer.dataset
            snap["meta"] = {
                "layer_names": list(trainer.network.layer_names),
                "steps_per_epoch": int(trainer.steps_per_epoch),
                "epochs": int(trainer.experiment.training.epochs),
                "classification": bool(trainer.classification),
                "class_names": list(ds.class_names) if trainer.classification else [],
                "planned_lr": (x_lr, lr),
                "points": self._points,
                "dataset": ds.name,
            }
        if extras:
            self.gate.wait()
            # A diverged model overflows on its way to NaN: that is reported as an event, not warned about.
            with np.errstate(all="ignore"):
                if trainer.classification:
                    snap["confusion"] = trainer.confusion_matrix("val")
                self.gate.wait()
                if self._points is not None:
                    snap["boundary"] = boundary_probabilities(trainer, self._points["bounds"])
            self.gate.wait()
            self._last_extras = now
            self._extras_due = False
        self._sent_rows = rec.size
        self._sent_epochs = n_epochs
        self._last_emit = now
        self.snapshots_sent += 1
        self.snapshot.emit(snap)

    def _progress(self, trainer: Trainer, now: float) -> dict[str, Any]:
        if self._rate_mark is None:
            self._rate_mark = (now, trainer.step)
        else:
            t0, s0 = self._rate_mark
            if now - t0 >= 0.5:
                rate = (trainer.step - s0) / (now - t0)
                self._rate = rate if self._rate == 0 else 0.5 * self._rate + 0.5 * rate
                self._rate_mark = (now, trainer.step)
        epochs = trainer.experiment.training.epochs
        total = trainer.steps_per_epoch * epochs
        done = min(trainer.epoch * trainer.steps_per_epoch + trainer.batch_index, total)
        eta = (total - done) / self._rate if self._rate > 0 else math.nan
        return {"step": int(trainer.step), "epoch": int(trainer.epoch), "epochs": int(epochs),
                "batch": int(trainer.batch_index), "batches": int(trainer.steps_per_epoch),
                "done": int(done), "total": int(total), "rate": float(self._rate), "eta": float(eta),
                "finished": bool(trainer.finished)}


class BuildRefused(Exception):
    """A trainer could not be built for a reason the user can fix; ``str()`` is the whole message."""


def _describe(exc: BaseException) -> str:
    """One readable message for the error dialog, with the innermost frame for a bug report."""
    if isinstance(exc, BuildRefused):
        return str(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"\n\n(in {Path(frames[-1].filename).name}, line {frames[-1].lineno}, {frames[-1].name})" if frames else ""
    return f"Training failed: {type(exc).__name__}: {exc}{where}"
