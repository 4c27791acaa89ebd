"""Help › Lessons: chapter 11's sections as guided lessons in a dock (``core.lessons``).

``LessonsTools(window)`` is all the main window needs: it creates the Lessons dock (``dock``,
tabbed with the editor panels, hidden until asked for) and the Help › Lessons action
(``action``), which shows and raises it.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QMainWindow

from .panel import LessonsPanel

__all__ = ["LessonsPanel", "LessonsTools"]

LESSONS_SHORTCUT = "Ctrl+Shift+H"


class LessonsTools(QObject):
    """The Lessons dock and its Help-menu action of one main window."""

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.panel = LessonsPanel(window)
        self.dock = QDockWidget("Lessons", window)
        self.dock.setObjectName("lessonsDock")
        self.dock.setWidget(self.panel)
        self.dock.setAllowedAreas(Qt.DockWidgetArea.AllDockWidgetAreas)
        window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.dock)
        editor = window.findChild(QDockWidget, "editorDataDock")
        if editor is not None:
            window.tabifyDockWidget(editor, self.dock)
            editor.raise_()
        self.dock.hide()            # until Help › Lessons: the editor is what a first start needs
        self.action = QAction("&Lessons", self)
        self.action.setObjectName("lessonsAction")
        self.action.setShortcut(QKeySequence(LESSONS_SHORTCUT))
        self.action.setStatusTip("Chapter 11 section by section: load each lesson's example in one click, "
                                 "train, and see whether the expected effect appeared")
        self.action.triggered.connect(self.show)

    def show(self) -> None:
        opened = self.dock.toggleViewAction()
        if not opened.isChecked():
            opened.trigger()                          # as View › Lessons opens it (room for its tab)
        self.dock.raise_()
        self.panel.lesson_list.setFocus()
