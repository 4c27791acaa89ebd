"""Comparing runs, sweeps and export (issues 4 and 7): the Runs panel (a dock), the Sweep dialog
(Tools › Sweep…) and File › Export › PyTorch script.

``RunsTools(window)`` is all the main window needs: it creates the dock (``dock``), the
File › Export submenu (``export_menu``) and the Tools menu (``tools_menu``), lists the sessions
the window saves or opens, and ends its threads (and any sweep's process pool) when the window
closes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMainWindow, QMenu, QMessageBox

from core.export.pytorch import ExportError, export_pytorch
from core.sessions.format import SessionError, load_session

from ..file_names import with_extension
from .ghost_list import GhostList
from .panel import RunsPanel

__all__ = ["RunsPanel", "RunsTools"]

SWEEP_SHORTCUT = "Ctrl+Shift+W"


class RunsTools(QObject):
    """The Runs dock, the Export submenu and the Sweep dialog of one main window."""

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.panel = RunsPanel()
        self.dock = QDockWidget("Runs", window)
        self.dock.setObjectName("runsDock")
        self.dock.setWidget(self.panel)
        self.dock.setAllowedAreas(Qt.DockWidgetArea.AllDockWidgetAreas)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        metrics = window.findChild(QDockWidget, "metricsDock")
        if metrics is not None:
            window.tabifyDockWidget(metrics, self.dock)
            metrics.raise_()
        self.sweep_dialog: Any = None
        ghosts = getattr(getattr(window, "controller", None), "ghosts", None)
        self.ghost_list = GhostList(ghosts) if ghosts is not None else None
        if self.ghost_list is not None:
            self.panel.top_layout.addWidget(self.ghost_list)

        self.export_menu = QMenu("E&xport", window)
        self.export_menu.setObjectName("exportMenu")
        self.export_menu.setToolTipsVisible(True)
        self.export_pytorch_action = self._action(
            "&PyTorch script…", lambda: self.export_pytorch_dialog(False), "Ctrl+Alt+E",
            "Write a self-contained PyTorch script that rebuilds and trains this experiment (saves the session "
            "first)")
        self.export_weights_action = self._action(
            "PyTorch script with &weights…", lambda: self.export_pytorch_dialog(True), "Ctrl+Alt+Shift+E",
            "The PyTorch script and the session's trained weights beside it (<name>.weights.npz)")
        self.export_menu.addActions([self.export_pytorch_action, self.export_weights_action])

        self.tools_menu = QMenu("&Tools", window)
        self.tools_menu.setObjectName("toolsMenu")
        self.tools_menu.setToolTipsVisible(True)
        self.sweep_action = self._action(
            "&Sweep…", self.open_sweep, SWEEP_SHORTCUT,
            "Train many variants of this experiment in parallel (a grid or random draws over its fields, "
            "several seeds) and rank them")
        self.sweep_action.setObjectName("sweepAction")
        self.tools_menu.addAction(self.sweep_action)
        self.tools_menu.addAction(self.dock.toggleViewAction())

        window.file_opened.connect(lambda p: self.panel.add_session(p, source="opened"))  # type: ignore[attr-defined]
        controller = getattr(window, "controller", None)
        saved = getattr(controller, "session_saved", None)
        if saved is not None:
            saved.connect(lambda p: self.panel.add_session(p, checked=True, source="saved in this window"))
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    def _action(self, text: str, slot: Any, shortcut: str, tip: str) -> QAction:
        action = QAction(text, self.window)
        action.setShortcut(QKeySequence(shortcut))
        action.setToolTip(f"{tip} ({shortcut})")
        action.setStatusTip(tip)
        action.triggered.connect(lambda _=False: slot())
        return action

    # ------------------------------------------------------------------ export

    def export_pytorch_dialog(self, with_weights: bool = False) -> list[Path]:
        """Save the session (the shell's Save), ask where to write the script, export it."""
        window: Any = self.window
        if not window.save():
            return []
        session_file = window.state.file
        start = str(Path(session_file).with_suffix(".py"))
        out, _ = QFileDialog.getSaveFileName(window, "Export PyTorch script", start, "Python scripts (*.py)")
        if not out:
            return []
        return self.export_to(Path(out), with_weights)

    def export_to(self, out: Path, with_weights: bool = False) -> list[Path]:
        """Export the window's saved session to ``out`` (errors in a dialog); returns the files written."""
        window: Any = self.window
        try:
            session = load_session(window.state.file)
            written = export_pytorch(session, with_extension(out, ".py"), with_weights)
        except (ExportError, SessionError, OSError, ValueError, TypeError) as exc:
            box = QMessageBox(QMessageBox.Icon.Warning, "Export to PyTorch", f"Could not export the session:\n{exc}",
                              QMessageBox.StandardButton.Ok, window)
            box.setObjectName("exportErrorDialog")
            box.open()
            return []
        window.statusBar().showMessage("Exported " + ", ".join(p.name for p in written), 8000)
        return written

    # ------------------------------------------------------------------ sweep

    def open_sweep(self) -> Any:
        from .sweep_dialog import SweepDialog

        if self.sweep_dialog is None:
            window: Any = self.window
            self.sweep_dialog = SweepDialog(window.state, self.panel, self.dock, window)
        if self.sweep_dialog.isVisible():
            self.sweep_dialog.raise_()
            self.sweep_dialog.activateWindow()
        self.sweep_dialog.show()
        return self.sweep_dialog

    # ------------------------------------------------------------------ closing

    def shutdown(self) -> None:
        """Cancel a running sweep (its process pool ends) and end the loading thread. The window
        calls it once its close is accepted — after the unsaved-changes question, whose Save
        adds the session to this panel (a load on the thread)."""
        if self.sweep_dialog is not None:
            self.sweep_dialog.shutdown()
        self.panel.shutdown()
