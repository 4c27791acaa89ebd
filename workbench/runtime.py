"""Process-wide settings of the Qt side that both the application and its main window need:
how pyqtgraph draws, and where Python's cycle collector runs. Apart from ``app`` so that the
window can use them without importing the module that creates it."""

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
