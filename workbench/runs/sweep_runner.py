"""Driving ``core.sweeps.runner.run_sweep`` from the GUI as a job on a ``workbench.concurrent``
runner. The sweep's own process pool trains; the runner's thread only submits, listens and, when
asked, cancels.

Progress dicts come from ``run_sweep``'s callback on the runner's thread and reach the GUI as
queued signals (each dict holds the whole state so far, so coalescing them loses nothing); the
results table (``core.sweeps.report.results_table``, which reads the session files) is built on
that thread too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from core.sweeps.report import results_table
from core.sweeps.runner import run_sweep
from core.sweeps.spec import Sweep, SweepError

from ..concurrent import JobRunner


def sweep_job(sweep: Sweep, out_dir: Path, workers: int) -> Callable[[Any, Any], dict[str, Any]]:
    """The job running ``sweep`` into ``out_dir``; its result is the outcome with the results
    table: {"stopped", "completed", "failed", "skipped", "total", "wall_seconds", "table"}."""
    def job(progress: Any, should_stop: Any) -> dict[str, Any]:
        outcome = run_sweep(sweep, out_dir, workers=workers, progress=progress, should_stop=should_stop)
        return {"stopped": outcome.stopped, "completed": outcome.completed, "failed": outcome.failed,
                "skipped": outcome.skipped, "total": outcome.total, "wall_seconds": outcome.wall_seconds,
                "table": results_table(out_dir)}

    return job


class SweepRunner(QObject):
    """Start / cancel one sweep at a time; signals arrive on the GUI thread. A ``SweepError``
    fails with its message alone, anything else with its type and traceback."""

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._runner = JobRunner(self, "sweep", plain_errors=(SweepError,))
        self._runner.progress.connect(self.progress)
        self._runner.finished.connect(self.finished)
        self._runner.failed.connect(self.failed)

    @property
    def running(self) -> bool:
        return self._runner.busy

    def start(self, sweep: Sweep, out_dir: Path, workers: int) -> None:
        if self.running:
            raise RuntimeError("a sweep is already running")
        self._runner.start(sweep_job(sweep, Path(out_dir), int(workers)))

    def cancel(self) -> None:
        """Ask the sweep to stop: running trainings are abandoned (a restart redoes them),
        finished runs keep their session files."""
        self._runner.request_stop()

    def shutdown(self) -> None:
        """Cancel a running sweep (its pool is shut down by run_sweep) and end the thread."""
        self._runner.shutdown()
