"""Process-wide settings of the Qt side that both the application and its main window need:
how pyqtgraph draws, where Python's cycle collector runs, and how many BLAS threads the window
uses. Apart from ``app`` so that the window can use them without importing the module that
creates it."""

from __future__ import annotations

from typing import Any


def configure_pyqtgraph(app: Any) -> None:
    """Plots follow the system's light or dark palette; pen width 1 and no antialiasing keep
    large curves fast (CONTRIBUTING.md, "Plots")."""
    import pyqtgraph as pg
    from PySide6.QtGui import QPalette

    palette = app.palette()
    pg.setConfigOptions(antialias=False, background=palette.color(QPalette.ColorRole.Base),
                        foreground=palette.color(QPalette.ColorRole.Text))


_collector = None
_blas_limited = False


def keep_blas_to_one_thread() -> None:
    """The window's own NumPy products are tiny (plot transforms, a batch of the preview), but
    OpenBLAS splits each over every core and its threads then spin-wait for the next one: cores
    the training process needs. Measured with benchmarks/bench_window.py, a training process on
    two BLAS threads kept 0.10 of its headless speed next to a window with its default threads
    and 0.27 next to a window with one. Work that deserves more threads asks for them
    (``core.engine.threads.limit_blas_threads``). Idempotent."""
    global _blas_limited
    if not _blas_limited:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")
        _blas_limited = True


def keep_the_window_on_its_cores(reserved: int | None = None) -> frozenset[int] | None:
    """Run the app's process on the last ``reserved`` cores (default
    ``core.process.RESERVED_CORES``) and its training processes on the others, where the system
    lets a process choose (Linux) and there are cores enough; returns the window's cores, or
    ``None`` where nothing changed.

    The training process chooses its threads leaving one core to the window; without this,
    the window's painting still ran on whichever core it woke on, most often the training
    loop's (over 8 s next to a shown window the loop of the 784-300-100-10 network waited
    1.8–2.0 s for its core). Called once by the application at start, before any thread: the
    threads started later keep to the same cores. The labs' job processes run on all of them."""
    import core.process
    from core.engine.threads import run_on, split_cores, usable_cores_set

    reserved = core.process.RESERVED_CORES if reserved is None else reserved
    every = usable_cores_set()
    split = split_cores(every, reserved)
    if split is None or not run_on(split[0]):
        return None
    core.process.TRAINING_CORES, core.process.ALL_CORES = split[1], frozenset(every)
    return split[0]


def collect_garbage_on_the_gui_thread() -> None:
    """Python's cycle collector runs in whichever thread happens to allocate when a threshold is
    crossed. In a worker (training, the dataset preview's pool, autosave) it would destroy Qt
    objects of the GUI thread there: seen as a hang, a preview thread freeing a closed window's
    objects (holding a Qt lock, waiting for the GIL) while the GUI thread deleted its pyqtgraph
    menus (holding the GIL, waiting for that lock). Automatic collection is switched off and a
    timer on the GUI thread collects instead (pyqtgraph's GarbageCollector). Idempotent."""
    global _collector
    if _collector is None:
        from pyqtgraph.util.garbage_collector import GarbageCollector

        _collector = GarbageCollector(interval=1.0)
