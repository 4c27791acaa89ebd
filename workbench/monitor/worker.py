"""The training worker: a QObject living in a QThread that drives ``core.training.Trainer``.

Contract (DESIGN.md, "Threading"): the GUI thread never trains. Every job (build a trainer,
train, one step, recompute the per-epoch extras) runs here; the loop checks the trainer's
pause / stop flags between batches; what the GUI sees are ``core.monitor.TrainingSnapshot``
values (copies of what changed), built and paced by a ``core.monitor.SnapshotSource`` and sent
through a queued signal at most ``core.monitor.MAX_SNAPSHOTS_PER_SECOND`` times a second
whatever the step rate. Requests from the GUI that must touch the trainer (copy its state for
saving, apply a new learning rate) are queued here and served at the next batch boundary,
from the ``should_stop`` callback the trainer calls between batches (and every 50 ms while
paused). An exception in a job becomes the ``failed`` signal, never a crash.
"""

from __future__ import annotations

import contextlib
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from core.engine.validation import excerpt
from core.monitor import SnapshotSource, TrainingSnapshot
from core.sessions.format import SessionError, load_session
from core.sessions.trainer_io import restore_trainer
from core.spec import Experiment, SpecError
from core.training import Trainer

from ..gil import GilYield


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

    Signals (queued to the GUI thread): ``built(trainer)`` after a build job,
    ``snapshot(TrainingSnapshot)``,
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
        self._source: SnapshotSource | None = None     # the current trainer's, made when it is built
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
            self.built.emit(self.trainer)
            self._adopt(self.trainer)
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
            self.built.emit(trainer)
            self.opened.emit(session)
            self._adopt(trainer)
            return "opened"
        self._run_job("opened", job)

    @Slot()
    def train(self) -> None:
        """``fit`` to the planned number of epochs; a Step while paused leaves ``fit``, takes one
        batch and goes back in, still paused."""
        def job() -> str:
            trainer = self._require_trainer()
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

    def _adopt(self, trainer: Trainer) -> None:
        """A new trainer: its snapshots start over, the first one a reset with its whole history."""
        self._source = SnapshotSource(trainer, between=self.gate.wait)
        self._emit(trainer, extras=True)

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
        trainer, source = self.trainer, self._source
        if trainer is None or source is None:
            return
        autosave = self.autosave
        if autosave is not None and kind in ("step", "epoch"):
            autosave(trainer, kind)      # copies at this batch boundary; written on another thread
        if kind == "step":
            self.gate.wait()
        snap = source.observe(kind)
        if snap is not None:
            self._send(snap)

    def _emit(self, trainer: Trainer, extras: bool = False) -> None:
        """Send what is new since the last snapshot, now."""
        source = self._source
        if source is None or source.trainer is not trainer:
            source = self._source = SnapshotSource(trainer, between=self.gate.wait)
        self._send(source.take(extras=extras))

    def _send(self, snap: TrainingSnapshot) -> None:
        self.snapshots_sent += 1
        self.snapshot.emit(snap)


class BuildRefused(Exception):
    """A trainer could not be built for a reason the user can fix; ``str()`` is the whole message."""


def _describe(exc: BaseException) -> str:
    """One readable message for the error dialog, with the innermost frame for a bug report."""
    if isinstance(exc, BuildRefused):
        return str(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"\n\n(in {Path(frames[-1].filename).name}, line {frames[-1].lineno}, {frames[-1].name})" if frames else ""
    return f"Training failed: {type(exc).__name__}: {exc}{where}"
