"""Start the Qt application: palette-aware plots, the main window, an optional file."""

from __future__ import annotations

import sys
from pathlib import Path


def configure_pyqtgraph(app) -> None:
    """Plots follow the system's light or dark palette; pen width 1 and no antialiasing keep
    large curves fast (ENVIRONMENT.md)."""
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


def create_app(argv: list[str] | None = None):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        QApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("Gradient Workbench")
    app.setOrganizationName("GradientWorkbench")
    app.setDesktopFileName("gradient-workbench")
    from core import __version__

    from .icon import app_icon

    app.setApplicationVersion(__version__)
    app.setWindowIcon(app_icon())
    configure_pyqtgraph(app)
    return app


def run_app(path: str | None = None) -> int:
    app = create_app()
    from .main_window import MainWindow

    window = MainWindow()
    window.show()
    if path is not None:
        window.open_file(Path(path))
    return app.exec()
