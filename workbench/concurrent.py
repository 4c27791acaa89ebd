"""Running work off the GUI thread: the one way the workbench does it.

The labs, the Runs panel's loader, the sweep runner and the dataset preview all hand their
long computations to a ``JobRunner``. (Training has its own worker, ``workbench.monitor``: it is
a long-lived conversation with one trainer, not a series of jobs.)

A *job* is a plain callable ``job(progress, should_stop) -> result``; the functions in ``core``
already have that shape (``explore``, ``find_learning_rate``, ``run_sweep``, the file readers).
It runs on the runner's worker thread, so it must not touch widgets; it reports plain-data
copies through ``progress(info)`` and asks ``should_stop()`` between its steps.

- **One thread per runner, one job at a time.** The ``JobRunner`` (a QObject living on the GUI
  thread) owns a ``QThread`` with a worker object moved into it; a job is handed over as a
  queued signal.
- **Newest wins** (``submit``): a job submitted while another runs waits, replacing any job
  already waiting, and the running job's outcome (its progress, result and error) is dropped
  once a newer job waits. Dragging a spin box recomputes once, not once per tick. A caller that
  wants the running job to end early too calls ``request_stop()`` before ``submit``. ``start``
  is for a job that must not be replaced (a sweep): it raises while another job runs.
- **Progress coalesced.** At most ``MAX_PROGRESS_PER_SECOND`` values a second cross to the GUI
  thread; a value held back is sent at the job's next ``progress`` or ``should_stop`` call once
  the interval has passed, and in any case before the job's result, so the last one is never lost.
- **Cancel by flag.** ``request_stop()`` sets a flag that ``should_stop()`` returns; the job ends
  at its next check and its result (a partial one, say) is still delivered. A thread is never
  killed (``QThread.terminate`` can leave a lock held or a file half written).
- **The GIL is handed over.** Each ``should_stop()`` also lets a waiting GUI thread take the
  interpreter lock every few milliseconds (``workbench.gil``), so a job of many tiny NumPy calls
  does not stall painting.
- **Signals on the GUI thread.** ``progress``, ``finished``, ``failed`` and ``busy_changed`` are
  re-emitted by the runner on the GUI thread, so slots may touch widgets and tests may
  ``qtbot.waitSignal`` on them (a blocker on a signal emitted from a worker thread stops its
  timer from the wrong thread, which Qt reports as a warning).
- **Errors are messages.** An exception raised by a job becomes ``failed(message)``: its type,
  message and a short traceback, or only its message for the ``plain_errors`` types a caller
  names (a bad file, a bad sweep: the user's mistake, not a bug). The thread keeps serving.
- **Clean shutdown.** ``shutdown()`` asks the job to stop, ends the thread's event loop and waits
  for it (``quit()`` + ``wait()``); afterwards the runner emits nothing and ignores new jobs.
  The owner calls it when it closes: a QThread destroyed while running aborts the process.
  ``shutdown_all(window)`` shuts down every runner a window owns; ``retire(runner)`` lets a
  closing dialog go without waiting for its runner's job.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from .gil import GilYield

MAX_PROGRESS_PER_SECOND = 20

Progress = Callable[[Any], None]
ShouldStop = Callable[[], bool]
Job = Callable[[Progress, ShouldStop], Any]

_NOTHING = object()


def describe_error(exc: BaseException, plain_errors: tuple[type[BaseException], ...] = ()) -> str:
    """The message ``failed`` carries for ``exc``: only its text for a ``plain_errors`` type,
    otherwise its type, text and the last frames of its traceback."""
    if isinstance(exc, plain_errors):
        return str(exc) or type(exc).__name__
    frames = "".join(traceback.format_exception(exc, limit=4))
    return f"{type(exc).__name__}: {exc}\n\n{frames}"


class ProgressGate:
    """One job's progress, coalesced to at most ``rate`` values a second (worker thread only).

    ``offer(info)`` sends ``info`` if the last value went out at least ``1 / rate`` seconds ago and
    holds it back otherwise (replacing any value held); ``poll()`` sends a held value once the
    interval has passed; ``flush()`` sends it now.
    """

    def __init__(self, send: Progress, rate: float = MAX_PROGRESS_PER_SECOND,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._send = send
        self._interval = 1.0 / rate
        self._clock = clock
        self._last = -float("inf")
        self._held: Any = _NOTHING

    def offer(self, info: Any) -> None:
        now = self._clock()
        if now - self._last >= self._interval:
            self._last = now
            self._held = _NOTHING
            self._send(info)
        else:
            self._held = info

    def poll(self) -> None:
        if self._held is not _NOTHING and self._clock() - self._last >= self._interval:
            self.offer(self._held)

    def flush(self) -> None:
        held, self._held = self._held, _NOTHING
        if held is not _NOTHING:
            self._last = self._clock()
            self._send(held)


class _Worker(QObject):
    """Lives in the runner's thread and runs the jobs handed to ``run``."""

    progress = Signal(object)
    done = Signal(object)
    error = Signal(str)

    def __init__(self, stop: threading.Event, idle: threading.Event,
                 plain_errors: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self._stop = stop
        self._idle = idle
        self._plain_errors = plain_errors

    @Slot(object)
    def run(self, job: Job) -> None:
        gate = ProgressGate(self.progress.emit)
        yield_gil = GilYield()

        def should_stop() -> bool:
            yield_gil()
            gate.poll()
            return self._stop.is_set()

        try:
            result = job(gate.offer, should_stop)
        except Exception as exc:  # noqa: BLE001 (any failure becomes a message; the thread keeps serving)
            gate.flush()
            self.error.emit(describe_error(exc, self._plain_errors))
        else:
            gate.flush()
            self.done.emit(result)
        finally:
            self._idle.set()


class JobRunner(QObject):
    """Runs jobs one at a time on its own QThread; see the module docstring.

    ``name`` names the thread (``<name>-worker``, shown by debuggers); exceptions of the
    ``plain_errors`` types are reported by their message alone.
    """

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    busy_changed = Signal(bool)
    _run = Signal(object)

    def __init__(self, parent: QObject | None = None, name: str = "job",
                 *, plain_errors: Iterable[type[BaseException]] = ()) -> None:
        super().__init__(parent)
        self.name = name
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = QThread(self)
        self._thread.setObjectName(f"{name}-worker")
        self._worker = _Worker(self._stop, self._idle, tuple(plain_errors))
        self._worker.moveToThread(self._thread)
        self._run.connect(self._worker.run)
        self._worker.progress.connect(self._on_progress)
        self._worker.done.connect(self._on_done)
        self._worker.error.connect(self._on_error)
        self._busy = False
        self._closed = False
        self._next: Job | None = None
        self._thread.start()

    # ------------------------------------------------------------------ state

    @property
    def busy(self) -> bool:
        """A job runs (a stopped one too, until it has ended) or waits."""
        return self._busy

    @property
    def closed(self) -> bool:
        """``shutdown()`` was called: the runner takes no more jobs."""
        return self._closed

    @property
    def thread(self) -> QThread:
        return self._thread

    # ------------------------------------------------------------------ jobs

    def submit(self, job: Job) -> None:
        """Run ``job`` now, or after the running job (newest wins: it replaces a job already
        waiting, and the running job's outcome is dropped)."""
        if self._closed:
            return
        if self._busy:
            self._next = job
            return
        self._start(job)

    def start(self, job: Job) -> None:
        """Run ``job`` now; ``RuntimeError`` if a job runs (for a job that must not be replaced)."""
        if self._closed:
            return
        if self._busy:
            raise RuntimeError(f"{self.name}: a job is already running")
        self._start(job)

    def request_stop(self) -> None:
        """Ask the running job to end at its next ``should_stop()``; a waiting job is dropped."""
        self._next = None
        self._stop.set()

    def wait(self, msecs: int = -1) -> bool:
        """Block until the running job has ended (its signals may still be queued); False if
        ``msecs`` (-1: no limit) passed first."""
        return self._idle.wait(None if msecs < 0 else msecs / 1000)

    def shutdown(self) -> None:
        """Stop the job, end the thread and wait for it; call it before the owner goes away."""
        self._closed = True
        self._next = None
        self._stop.set()
        self._thread.quit()
        self._thread.wait()
        self._idle.set()            # a job still queued to the ended thread never runs
        self._busy = False

    # ------------------------------------------------------------------ internals (GUI thread)

    def _start(self, job: Job) -> None:
        self._stop.clear()
        self._idle.clear()
        self._set_busy(True)
        self._run.emit(job)

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busy_changed.emit(busy)

    def _after_job(self) -> bool:
        """Start the waiting job if there is one; True if the ended job was superseded by it."""
        job, self._next = self._next, None
        if job is not None:
            self._start(job)
            return True
        self._set_busy(False)
        return False

    @Slot(object)
    def _on_progress(self, info: Any) -> None:
        if not self._closed and self._next is None:
            self.progress.emit(info)

    @Slot(object)
    def _on_done(self, result: Any) -> None:
        if not self._closed and not self._after_job():
            self.finished.emit(result)

    @Slot(str)
    def _on_error(self, message: str) -> None:
        if not self._closed and not self._after_job():
            self.failed.emit(message)


def retire(runner: JobRunner) -> None:
    """Let ``runner`` go with its owner (a dialog closing) without waiting for its job: it is
    asked to stop, handed to the owner's parent (so ``shutdown_all`` of the window still finds
    it) and shut down once the job ends; the owner ignores what it still reports. A runner with
    no job, or no parent to go to, is shut down now."""
    runner.request_stop()
    owner = runner.parent()
    keeper = owner.parent() if owner is not None else None
    if not runner.busy or keeper is None:
        runner.shutdown()
        return
    runner.setParent(keeper)

    def ended(busy: bool) -> None:
        if not busy:
            runner.shutdown()
            runner.deleteLater()

    runner.busy_changed.connect(ended)


def shutdown_all(owner: QObject) -> None:
    """Shut down every ``JobRunner`` among ``owner``'s descendants (a window whose close was
    accepted calls it, so none of its threads is destroyed while running)."""
    for runner in owner.findChildren(JobRunner):
        runner.shutdown()
