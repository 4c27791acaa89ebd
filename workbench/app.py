"""The Qt application: for now a window that shows the experiment it was opened on.

The full workbench (layer table, worker thread, live gradient plots) builds on this.
"""

from __future__ import annotations

import sys
from pathlib import Path


def run_app(path: str | None = None) -> int:
    from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox, QPlainTextEdit

    from core.presets import default_experiment
    from core.session import SessionError, load_session
    from core.spec import SpecError, load_experiment

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Gradient Workbench")
    window = QMainWindow()
    text = QPlainTextEdit(readOnly=True)
    window.setCentralWidget(text)
    experiment = default_experiment()
    title = "default experiment"
    if path is not None:
        try:
            experiment = (load_session(path).experiment if Path(path).suffix == ".gwb"
                          else load_experiment(path))
            title = Path(path).name
        except (SpecError, SessionError) as exc:
            QMessageBox.critical(window, "Cannot open file", str(exc))
    window.setWindowTitle(f"Gradient Workbench — {title}")
    text.setPlainText(experiment.to_json())
    window.resize(900, 700)
    window.show()
    return app.exec()
