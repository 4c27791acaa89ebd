"""Training controller and live plots (scaffold: replaced by the real monitor)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QWidget

from ..state import ExperimentState


class TrainingController(QObject):
    status = Signal(str)
    error = Signal(str)

    def __init__(self, state: ExperimentState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.actions = {name: QAction(name.title(), self) for name in
                        ("train", "pause", "resume", "stop", "step", "reset")}

    @property
    def busy(self) -> bool:
        return False

    def save_session(self, path: Path) -> None:
        raise NotImplementedError

    def open_session(self, session) -> None:
        pass

    def shutdown(self) -> None:
        pass


def create_monitor(controller: TrainingController, parent: QMainWindow) -> tuple[QWidget, list[QDockWidget]]:
    return QLabel("monitor"), []
