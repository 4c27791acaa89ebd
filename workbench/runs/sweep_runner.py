"""Driving ``core.sweeps.runner.run_sweep`` from the GUI: a QObject on its own QThread. The
sweep's own process pool trains; this thread only submits, listens and, when asked, cancels.

Progress dicts come from ``run_sweep``'s callback on the sweep thread and reach the GUI as
queued signals; the results table (``core.sweeps.report.results_table``, which reads the session
files) is built on the sweep thread too.
"""

from __future__ import annotations

import threading
import traceback
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from core.sweeps.report import results_table
from core.sweeps.runner import run_sweep
from core.sweeps.spec import Sweep, SweepError


class _SweepWorker(QObject):
    progress = Signal(object)        # run_sweep's progress dict
    finished = Signal(object)        # {"stopped", "completed", "failed", "skipped", "total", "wall_seconds", "table"}
    failed = Signal(str)

    def __init__(self, stop: threading.Event) -> None:
        super().__init__()
        self.stop = stop

    @Slot(object, object, int)
    def run(self, sweep: Sweep, out_dir: Path, workers: int) -> None:
        try:
            outcome = run_sweep(sweep, out_dir, workers=workers, progress=self.progress.emit,
                                should_stop=self.stop.is_set)
            table = results_table(out_dir)
        except SweepError as exc:
            self.failed.emit(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 (shown in the dialog; the window keeps working)
            self.failed.emit(f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}")
            return
        self.finished.emit({"stopped": outcome.stopped, "completed": outcome.completed, "failed": outcome.failed,
                            "skipped": outcome.skipped, "total": outcome.total,
                            "wall_seconds": outcome.wall_seconds, "table": table})


class SweepRunner(QObject):
    """Start / cancel one sweep at a time; signals arrive on the GUI thread."""

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    _start = Signal(object, object, int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._stop = threading.Event()
        self._thread: QThread | None = None
        self._worker: _SweepWorker | None = None
        self.running = False

    def start(self, sweep: Sweep, out_dir: Path, workers: int) -> None:
        if self.running:
            raise RuntimeError("a sweep is already running")
        if self._thread is None:
            self._thread = QThread(self)
            self._thread.setObjectName("SweepThread")
            worker = self._worker = _SweepWorker(self._stop)   # kept: a parentless QObject dies with its wrapper
            worker.moveToThread(self._thread)
            self._start.connect(worker.run)
            worker.progress.connect(self.progress)
            worker.finished.connect(self._on_finished)
            worker.failed.connect(self._on_failed)
            self._thread.finished.connect(worker.deleteLater)
            self._thread.start()
        self._stop.clear()
        self.running = True
        self._start.emit(sweep, Path(out_dir), int(workers))

    def cancel(self) -> None:
        """Ask the sweep to stop: running trainings are abandoned (a restart redoes them),
        finished runs keep their session files."""
        self._stop.set()

    def _on_finished(self, result: Any) -> None:
        self.running = False
        self.finished.emit(result)

    def _on_failed(self, message: str) -> None:
        self.running = False
        self.failed.emit(message)

    def shutdown(self) -> None:
        """Cancel a running sweep (its pool is shut down by run_sweep) and end the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.quit()
            self._thread.wait()
            self._thread = self._worker = None
        self.running = False
