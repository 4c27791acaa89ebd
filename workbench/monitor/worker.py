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
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from core.engine.validation import excerpt
from core.monitor import MAX_SNAPSHOTS_PER_SECOND, SnapshotSource, TrainingSnapshot
from core.process import BuildOrder, RunSummary, TrainingProcess, choose_threads
from core.sessions.format import Session, SessionError, load_session
from core.sessions.trainer_io import restore_state, restore_trainer, session_base_dir, trainer_arrays
from core.spec import Experiment, SpecError, parse_experiment
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

    #: The user's preference for a run's threads (Training › Training threads…); ``None``: the
    #: trainer's automatic choice.
    threads: int | None = None

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

    def apply_hyperparameters(self, experiment: Experiment) -> None:
        """``Trainer.set_hyperparameters`` at the next batch boundary."""
        self.post(lambda trainer, e=experiment: trainer.set_hyperparameters(e))

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
            if self.threads is not None:                # the user's preference, after the experiment's
                choose_threads(self.trainer, self.threads, reserved_cores=0)
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


# ---------------------------------------------------------------------------------------------------
# Training in a child process (the default): the worker thread only relays.

#: After Stop, the seconds a child may take to reach its next batch boundary before it is ended.
STOP_GRACE_SECONDS = 5.0
#: On close, the seconds children get to quit by themselves before they are terminated.
CLOSE_GRACE_SECONDS = 0.3
#: How long the relay waits for a message before it looks at its orders again.
RELAY_TICK = 0.02


class RemoteTrainer:
    """The GUI's stand-in for the trainer that lives in the child process.

    It holds what the controller decides with between jobs (experiment, step, epoch, batch,
    finished; refreshed from every snapshot and job end) and forwards the trainer's controls
    (``pause``, ``resume``, ``request_stop``, ``set_hyperparameters``) to the child, where they
    are served between batches. ``state_dict()`` asks the child for its state at a batch
    boundary. Any other attribute (``recorder``, ``network``, ...) is read from ``local()``: a
    trainer rebuilt in this process from the child's state — for inspection (tests, the smoke
    test), never while training, since it loads the data once more."""

    def __init__(self, worker: ProcessWorker, child: TrainingProcess, summary: RunSummary,
                 base_dir: str | None) -> None:
        self._worker = worker
        self._child = child
        self._base_dir = base_dir
        self._local: Trainer | None = None
        self._local_version = -1
        self.version = 0                      # bumped whenever the child reports a change
        self.alive = True
        self.is_paused = False
        self.update(summary)

    # ------------------------------------------------------------------ what the GUI knows

    def update(self, summary: RunSummary) -> None:
        self.experiment = parse_experiment(summary.experiment)
        self.step, self.epoch, self.batch_index = summary.step, summary.epoch, summary.batch_index
        self.steps_per_epoch, self.finished = summary.steps_per_epoch, summary.finished
        self.blas_threads = summary.blas_threads
        self.version += 1

    def update_progress(self, snap: TrainingSnapshot) -> None:
        p = snap.progress
        self.step, self.epoch, self.batch_index, self.finished = p.step, p.epoch, p.batch, p.finished
        self.version += 1

    @property
    def pid(self) -> int | None:
        return self._child.pid

    @property
    def paused(self) -> bool:
        return self.is_paused

    # ------------------------------------------------------------------ controls (any thread)

    def pause(self) -> None:
        self.is_paused = True
        self._worker.send(self._child, "pause")

    def resume(self) -> None:
        self.is_paused = False
        self._worker.send(self._child, "resume")

    def request_stop(self) -> None:
        self.is_paused = False
        self._worker.send(self._child, "stop")

    def set_hyperparameters(self, experiment: Experiment) -> None:
        self.experiment = experiment
        self._worker.send(self._child, "set", experiment.to_dict())

    def state_dict(self) -> tuple[dict[str, Any], dict[str, Any]]:
        arrays, state, _ = self._worker.request_state(self._child)
        return arrays, state

    # ------------------------------------------------------------------ inspection

    def local(self) -> Trainer:
        """A trainer in this process equal to the child's (rebuilt when the child has moved on)."""
        if self._local is None or self._local_version != self.version:
            version = self.version
            arrays, state, experiment = self._worker.request_state(self._child)
            if self._local is None:
                self._local = restore_state(parse_experiment(experiment), arrays, state, self._base_dir)
            else:
                self._local.set_hyperparameters(parse_experiment(experiment))
                self._local.load_state_dict(arrays, state)
            self._local_version = version
        return self._local

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.local(), name)


class _Relay(QObject):
    """Runs the worker's relay loop on the controller's QThread."""

    def __init__(self, worker: ProcessWorker) -> None:
        super().__init__()
        self.worker = worker

    @Slot()
    def run(self) -> None:
        self.worker.relay_loop()


class ProcessWorker(QObject):
    """Owns the training child and relays its messages as Qt signals (the same signals as
    ``TrainingWorker``), from a loop on the controller's thread.

    Orders from the GUI thread (build, open, a job, stop) are queued and carried out by the
    relay between its reads, so only the relay thread starts, reads and ends children. A new
    child (a build, an opened session) replaces the current one only once it has built its
    trainer; if it is refused the current run stays. Snapshots are coalesced
    (``TrainingSnapshot.then``) so the GUI applies at most ``MAX_SNAPSHOTS_PER_SECOND`` a second.
    A child that dies is reported by ``crashed(message)``; the buffers keep what it sent."""

    built = Signal(object)
    opened = Signal(object)
    open_failed = Signal(str)
    snapshot = Signal(object)
    job_done = Signal(str)
    failed = Signal(str)
    crashed = Signal(str)

    #: Keep a child started and waiting, so that Train does not wait for an interpreter to start.
    keep_spare = True
    #: The user's preference for a run's threads (Training › Training threads…), passed with
    #: each build; ``None``: the child chooses (``core.process.choose_threads``).
    threads: int | None = None

    def __init__(self) -> None:
        super().__init__()
        self.trainer: RemoteTrainer | None = None
        self.active = threading.Event()
        self.gate = GuiGate()                 # nothing waits on it: the GUI never competes with training here
        self.gate.disable()
        self.autosave: Callable[[Any, str], None] | None = None
        self.snapshots_sent = 0
        self._orders: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._closing = threading.Event()
        self._closed = threading.Event()
        self._send_lock = threading.Lock()
        self._relay_thread: int | None = None
        # relay-thread state
        self._current: TrainingProcess | None = None
        self._candidate: tuple[TrainingProcess, str, Any, str | None] | None = None   # (child, kind, session, base)
        self._retiring: list[tuple[TrainingProcess, float]] = []
        self._spare: TrainingProcess | None = None          # started, imported, waiting for a build
        self._job = 0
        self._abandoned: tuple[int, float] | None = None   # (job, when) stopped by the GUI, not yet by the child
        self._after_snapshot: str | None = None            # a build's job_done, sent after its first snapshot
        self._pending: TrainingSnapshot | None = None
        self._last_emit = 0.0
        self._requests = 0
        self._replies: dict[int, tuple[Any, ...]] = {}
        self._waiting: dict[int, threading.Event] = {}
        self._reply_lock = threading.Lock()
        self._in_autosave = False
        self.relay = _Relay(self)

    # ------------------------------------------------------------------ GUI thread

    def prepare(self) -> None:
        self.active.set()

    def build(self, experiment: Experiment, base_dir: object, trainer: object) -> None:
        base = str(base_dir) if isinstance(base_dir, str | Path) else None
        order = BuildOrder(experiment.to_dict(), base, threads=self.threads)
        self._orders.put(("start", order, "built", None, base))

    def build_from_session(self, session: Session) -> None:
        base = session_base_dir(session)
        base = str(base) if base is not None else None
        order = BuildOrder(session.experiment.to_dict(), base, trainer_arrays(session), dict(session.state),
                           str(session.path or "session"), threads=self.threads)
        self._orders.put(("start", order, "opened", session, base))

    def open_session(self, path: Path) -> None:
        """Read the file on the relay thread (a checked session, never unpickled) and start a
        child from its state."""
        self._orders.put(("open", Path(path)))

    def _open(self, path: Path) -> None:
        try:
            session = load_session(path)
        except SessionError as exc:
            self._orders.put(("refuse", f"Cannot open {path.name}:\n{exc}"))
            return
        except (ValueError, OSError) as exc:
            self._orders.put(("refuse", f"Cannot open {path.name}:\n{path}: {exc}"))
            return
        except Exception as exc:  # noqa: BLE001 — whatever a file does, a failed open is only that
            # (as a training failure it would mark the open run stale and lose it on the next Train)
            self._orders.put(("refuse", f"Cannot open {path.name}:\n{path}: {type(exc).__name__}: "
                                        f"{excerpt(str(exc), 300)}"))
            return
        self.build_from_session(session)

    def train(self) -> None:
        self._orders.put(("job", "train"))

    def step(self) -> None:
        self._orders.put(("job", "step"))

    def refresh(self) -> None:
        self._orders.put(("job", "refresh"))

    def request_stop(self) -> None:
        """The GUI shows the run stopped now; the child stops at its next batch boundary (and is
        ended if it has not within ``STOP_GRACE_SECONDS``)."""
        self._orders.put(("stop",))

    def request_step(self) -> None:
        trainer = self.trainer
        if trainer is not None:
            self.send(trainer._child, "step")

    def apply_hyperparameters(self, experiment: Experiment) -> None:
        if self.trainer is not None:
            self.trainer.set_hyperparameters(experiment)

    def close(self) -> None:
        """End the child (and the relay loop); returns when both have."""
        self._closing.set()

    # ------------------------------------------------------------------ any thread

    def send(self, child: TrainingProcess, *message: Any) -> bool:
        with self._send_lock:
            return child.send(*message)

    def request_state(self, child: TrainingProcess, timeout: float = 10.0) -> tuple[dict[str, Any], dict[str, Any],
                                                                                     dict[str, Any]]:
        """The child's ``state_dict`` and experiment, taken at its next batch boundary."""
        arrays, state, experiment = self._ask(child, "state", timeout)
        return arrays, state, experiment

    def child_modules(self, timeout: float = 10.0) -> list[str]:
        """The names in the current child's ``sys.modules`` (the tests check Qt is not there)."""
        if self.trainer is None:
            raise OSError("there is no training process")
        return list(self._ask(self.trainer._child, "modules", timeout)[0])

    def _ask(self, child: TrainingProcess, what: str, timeout: float) -> tuple[Any, ...]:
        with self._reply_lock:
            self._requests += 1
            request = self._requests
            done = self._waiting[request] = threading.Event()
        try:
            if not self.send(child, what, request):
                raise OSError("the training process has ended")
            deadline = time.perf_counter() + timeout
            if threading.get_ident() == self._relay_thread:
                while request not in self._replies:       # the relay asks (autosave): it reads on
                    if time.perf_counter() > deadline or not child.poll(0.05) and not child.alive():
                        raise OSError("the training process did not answer")
                    if child.poll(0):
                        try:
                            self._dispatch(child, child.recv())
                        except EOFError:
                            self._gone(child)
                            raise OSError("the training process has ended") from None
            elif not done.wait(timeout):
                raise OSError("the training process did not reach a batch boundary in time; try again")
            reply = self._replies.pop(request, None)
            if reply is None:
                raise OSError("the training process has ended")
            return reply
        finally:
            with self._reply_lock:
                self._waiting.pop(request, None)

    # ------------------------------------------------------------------ relay thread

    def relay_loop(self) -> None:
        self._relay_thread = threading.get_ident()
        self._start_spare()
        try:
            while not self._closing.is_set():
                self._carry_out_orders()
                children = [c for c in (self._current, self._candidate[0] if self._candidate else None) if c]
                conns = {c.conn: c for c in children}
                ready = wait(list(conns), RELAY_TICK) if conns else (time.sleep(RELAY_TICK) or [])
                for conn in ready:
                    child = conns[conn]
                    try:
                        while child.poll(0):
                            self._dispatch(child, child.recv())
                    except EOFError:
                        self._gone(child)
                self._flush(force=False)
                self._watch()
        finally:
            self._end_all()
            self._closed.set()

    def _start_spare(self) -> None:
        if not self.keep_spare or self._spare is not None:
            return
        try:
            self._spare = TrainingProcess()
        except (OSError, RuntimeError):
            self._spare = None            # only an optimization: a build starts its own child

    def _carry_out_orders(self) -> None:
        while True:
            try:
                order = self._orders.get_nowait()
            except queue.Empty:
                return
            kind = order[0]
            if kind == "start":
                _, build, why, session, base = order
                if self._candidate is not None:
                    self._retire(self._candidate[0])
                child, self._spare = self._spare, None
                if child is None or not child.alive():
                    try:
                        child = TrainingProcess()
                    except (OSError, RuntimeError) as exc:    # no process left, no memory: say so
                        self._build_failed(why, f"the training process could not be started ({exc})")
                        continue
                child.build(build)
                self._candidate = (child, why, session, base)
            elif kind == "open":
                self._open(order[1])
            elif kind == "refuse":
                self.active.clear()
                self.open_failed.emit(order[1])
                self.job_done.emit("open_failed")
            elif kind == "job":
                child = self._current
                if child is None:
                    self.active.clear()
                    self.failed.emit("Training failed: there is no model to train")
                    continue
                self._job += 1
                self.send(child, order[1], self._job)
            elif kind == "stop":
                self._stop_now()

    def _stop_now(self) -> None:
        if self._candidate is not None and self._after_snapshot is None:
            self._retire(self._candidate[0])      # a build still loading its data: drop it
            self._candidate = None
            self.active.clear()
            self.job_done.emit("stopped")
            return
        child = self._current
        if child is None or not self.active.is_set():
            self.active.clear()
            self.job_done.emit("stopped")
            return
        self.send(child, "stop")
        if self.trainer is not None:
            self.trainer.is_paused = False
        self._abandoned = (self._job, time.perf_counter())
        self._flush(force=True)
        self.active.clear()
        self.job_done.emit("stopped")

    def _dispatch(self, child: TrainingProcess, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind in ("state", "modules"):
            request = message[1]
            with self._reply_lock:
                self._replies[request] = tuple(message[2:])
                event = self._waiting.get(request)
            if event is not None:
                event.set()
            return
        candidate = self._candidate
        if candidate is not None and child is candidate[0]:
            self._from_candidate(message)
            return
        if child is not self._current:
            return
        trainer = self.trainer
        if kind == "snapshot":
            snap: TrainingSnapshot = message[1]
            if trainer is not None:
                trainer.update_progress(snap)
            self._pending = snap if self._pending is None else self._pending.then(snap)
            if self._after_snapshot is not None:
                self._flush(force=True)
                reason, self._after_snapshot = self._after_snapshot, None
                self.active.clear()
                self.job_done.emit(reason)
            else:
                self._autosave(snap)
        elif kind in ("done", "failed"):
            _, job, text, summary = message
            if trainer is not None:
                trainer.update(summary)
            self._flush(force=True)
            if self._abandoned is not None and job == self._abandoned[0]:
                self._abandoned = None              # the GUI has shown it stopped already
                return
            self.active.clear()
            if kind == "done":
                self.job_done.emit(text)
            else:
                self.failed.emit(f"Training failed: {text}")

    def _from_candidate(self, message: tuple[Any, ...]) -> None:
        assert self._candidate is not None
        child, why, session, base = self._candidate
        kind = message[0]
        if kind == "refused":
            self._retire(child)
            self._candidate = None
            self.active.clear()
            if why == "opened":
                path = Path(session.path).name if session is not None and session.path else "the session"
                self.open_failed.emit(f"Cannot open {path}:\n{message[1]}")
                self.job_done.emit("open_failed")
            else:
                self.failed.emit(message[1])
        elif kind == "built":
            if self._current is not None:
                self._retire(self._current)
            self._current, self._candidate = child, None
            self._pending, self._abandoned = None, None
            self.trainer = RemoteTrainer(self, child, message[1], base)
            self.built.emit(self.trainer)
            if why == "opened":
                self.opened.emit(session)
            self._after_snapshot = why
            self._start_spare()                       # ready for the next build

    def _flush(self, force: bool) -> None:
        snap = self._pending
        if snap is None:
            return
        now = time.perf_counter()
        if not force and now - self._last_emit < 1.0 / MAX_SNAPSHOTS_PER_SECOND:
            return
        self._pending, self._last_emit = None, now
        self.snapshots_sent += 1
        self.snapshot.emit(snap)

    def _autosave(self, snap: TrainingSnapshot) -> None:
        hook, trainer = self.autosave, self.trainer
        if hook is None or trainer is None or self._in_autosave or not self.active.is_set():
            return
        self._in_autosave = True
        try:
            hook(trainer, "step")
            if len(snap.epochs):
                hook(trainer, "epoch")
        finally:
            self._in_autosave = False

    def _gone(self, child: TrainingProcess) -> None:
        """A child's pipe closed: a crash unless we ended it."""
        with self._reply_lock:
            for event in self._waiting.values():
                event.set()                        # no reply will come: the waiter raises
        candidate = self._candidate
        if candidate is not None and child is candidate[0]:
            self._candidate = None
            self._from_candidate_gone(child, candidate)
            return
        if child is not self._current:
            return
        self._current = None
        self._flush(force=True)
        if self.trainer is not None:
            self.trainer.alive = False
        was_stopped = self._abandoned is not None and not self.active.is_set()
        self._abandoned = None
        self.active.clear()
        how = child.exit_description()
        child.end(grace=0.0)
        if not self._closing.is_set():
            self.crashed.emit(f"The training process ended unexpectedly ({how})."
                              + ("" if was_stopped else "\n\nThe plots keep everything up to its last snapshot."))

    def _from_candidate_gone(self, child: TrainingProcess, candidate: tuple[Any, ...]) -> None:
        how = child.exit_description()
        child.end(grace=0.0)
        self._build_failed(candidate[1], f"the training process ended while building the model ({how})")

    def _build_failed(self, why: str, what: str) -> None:
        """A build (``why``: "opened" for a session being opened) that will not report: the window
        shows ``what`` and goes back to idle, never waiting for a model that is not coming."""
        self.active.clear()
        if why == "opened":
            self.open_failed.emit(f"Cannot open the session: {what}")
            self.job_done.emit("open_failed")
        else:
            self.failed.emit(f"Training failed: {what}")

    def _watch(self) -> None:
        """End children that were told to go and have not; a stopped child that does not reach a
        batch boundary within ``STOP_GRACE_SECONDS`` is ended and reported."""
        now = time.perf_counter()
        keep = []
        for child, since in self._retiring:
            if not child.alive():
                child.end(grace=0.0)
            elif now - since > STOP_GRACE_SECONDS:
                child.end(grace=0.0)
            else:
                keep.append((child, since))
        self._retiring = keep
        if self._abandoned is not None and now - self._abandoned[1] > STOP_GRACE_SECONDS and self._current:
            child, self._current, self._abandoned = self._current, None, None
            child.end(grace=0.0)
            if self.trainer is not None:
                self.trainer.alive = False
            self.crashed.emit(f"The training process did not stop within {STOP_GRACE_SECONDS:g} s of Stop and "
                              "was ended. The plots keep everything up to its last snapshot.")

    def _retire(self, child: TrainingProcess) -> None:
        self.send(child, "quit")
        self._retiring.append((child, time.perf_counter()))

    def _end_all(self) -> None:
        children = [c for c in (self._current, self._candidate[0] if self._candidate else None) if c]
        children += [c for c, _ in self._retiring] + ([self._spare] if self._spare else [])
        for child in children:
            self.send(child, "quit")
        # Nothing in a child needs saving (autosaves are written here): a child that has not
        # reached its batch boundary soon after is terminated, so closing never waits on it.
        deadline = time.perf_counter() + CLOSE_GRACE_SECONDS
        for child in children:
            child.process.join(max(0.0, deadline - time.perf_counter()))
            child.end(grace=0.0)
        self._current = self._candidate = self._spare = None
        self._retiring = []
        if self.trainer is not None:
            self.trainer.alive = False
        with self._reply_lock:
            for event in self._waiting.values():
                event.set()
