"""One background thread per lab: the GUI thread never computes anything that may take long.

``JobRunner`` (a GUI-thread QObject) owns a ``QThread`` with a ``_Worker`` moved into it. A job
is a plain callable ``job(progress, should_stop) -> result``; it runs on the worker thread,
reports plain-data copies through ``progress`` (coalesced to at most ``MAX_PROGRESS_PER_SECOND``
a second, the last one always delivered) and checks ``should_stop()`` between its steps
(cancellation is a flag, never ``QThread.terminate``; each ``should_stop()`` also hands the GIL
to a waiting GUI thread every few milliseconds, ``workbench.gil``). The worker's signals are queued to the
runner, which re-emits them from the GUI thread (``progress``, ``finished``, ``failed``,
``busy_changed``), so tests can wait on them safely (ENVIRONMENT.md: never wait on a signal
emitted from the worker thread).

``submit`` while a job runs keeps only the newest request and starts it when the current one
ends (``latest_only``): dragging a spin box recomputes once, not once per tick.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from ..gil import GilYield

MAX_PROGRESS_PER_SECOND = 20

Job = Callable[[Callable[[Any], None], Callable[[], bool]], Any]


class _Worker(QObject):
    progress = Signal(object)
    done = Signal(object)
    error = Signal(str)

    def __init__(self, stop: threading.Event) -> None:
        super().__init__()
        self._stop = stop

    @Slot(object)
    def run(self, job: Job) -> None:
        last = [0.0]
        pending: list[Any] = []

        def progress(info: Any) -> None:
            now = time.monotonic()
            if now - last[0] >= 1.0 / MAX_PROGRESS_PER_SECOND:
                last[0] = now
                pending.clear()
                self.progress.emit(info)
            else:
                pending[:] = [info]

        yield_gil = GilYield()

        def should_stop() -> bool:
            yield_gil()
            return self._stop.is_set()

        try:
            result = job(progress, should_stop)
        except Exception as exc:  # noqa: BLE001 (any failure becomes a message, never a crash)
            self.error.emit(f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc(limit=4)}")
            return
        if pending:
            self.progress.emit(pending[-1])
        self.done.emit(result)


class JobRunner(QObject):
    """Runs jobs one at a time on a private QThread; see the module docstring."""

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    busy_changed = Signal(bool)
    _submit = Signal(object)

    def __init__(self, parent: QObject | None = None, name: str = "lab") -> None:
        super().__init__(parent)
        self._stop = threading.Event()
        self._thread = QThread()
        self._thread.setObjectName(f"{name}-worker")
        self._worker = _Worker(self._stop)
        self._worker.moveToThread(self._thread)
        self._submit.connect(self._worker.run)
        self._worker.progress.connect(self._on_progress)
        self._worker.done.connect(self._on_done)
        self._worker.error.connect(self._on_error)
        self._busy = False
        self._next: Job | None = None
        self._thread.start()

    @property
    def busy(self) -> bool:
        return self._busy

    @property
    def thread(self) -> QThread:
        return self._thread

    def submit(self, job: Job) -> None:
        """Run ``job`` now, or after the current job if one runs (replacing any job waiting)."""
        if not self._thread.isRunning():
            return
        if self._busy:
            self._next = job
            return
        self._start(job)

    def request_stop(self) -> None:
        """Ask the running job to end at its next check; a waiting job is dropped."""
        self._next = None
        self._stop.set()

    def shutdown(self) -> None:
        """Stop the job, end the thread and wait for it (call before the owner goes away)."""
        self.request_stop()
        self._thread.quit()
        self._thread.wait()

    def _start(self, job: Job) -> None:
        self._stop.clear()
        self._set_busy(True)
        self._submit.emit(job)

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busy_changed.emit(busy)

    def _after_job(self) -> None:
        job, self._next = self._next, None
        if job is not None and self._thread.isRunning():
            self._start(job)
        else:
            self._set_busy(False)

    @Slot(object)
    def _on_progress(self, info: Any) -> None:
        self.progress.emit(info)

    @Slot(object)
    def _on_done(self, result: Any) -> None:
        superseded = self._next is not None
        self._after_job()
        if not superseded:
            self.finished.emit(result)

    @Slot(str)
    def _on_error(self, message: str) -> None:
        self._after_job()
        self.failed.emit(message)
