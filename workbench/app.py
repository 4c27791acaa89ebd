"""Start the Qt application: palette-aware plots, the main window, an optional file."""

from __future__ import annotations

import sys
from pathlib import Path

from .runtime import configure_pyqtgraph, keep_the_window_on_its_cores


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
    keep_the_window_on_its_cores()      # before Qt starts its threads: they keep to the same cores
    app = create_app()
    from .main_window import MainWindow

    window = MainWindow()
    window.show()
    if path is not None:
        window.open_file(Path(path))
    return app.exec()
