"""The "restore after a crash?" dialog: the recovery copies a run that did not end cleanly left
(``core.sessions.recovery.list_recoverable``), with when each was written, the experiment's name, its
epochs and steps and which session it belongs to. Restore opens the selected copy as an
unsaved session, Discard deletes the selected copies, Later keeps them all for the next start.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.sessions.recovery import Recoverable, list_recoverable

from .autosave import LIVE_COPIES

RESTORE, DISCARD, LATER = "restore", "discard", "later"


def crashed_copies() -> list[Recoverable]:
    """Recovery copies worth offering: not written by a window of this process right now, and
    newer than the session they belong to."""
    return [item for item in list_recoverable()
            if item.path.resolve() not in LIVE_COPIES and item.newer_than_session]


def _when(seconds: float) -> str:
    moment = _dt.datetime.fromtimestamp(seconds)
    today = _dt.date.today()
    if moment.date() == today:
        return f"today {moment:%H:%M}"
    if moment.date() == today - _dt.timedelta(days=1):
        return f"yesterday {moment:%H:%M}"
    return f"{moment:%Y-%m-%d %H:%M}"


class RecoveryDialog(QDialog):
    """``choice`` (RESTORE / DISCARD / LATER) and ``selected()`` after it closes."""

    def __init__(self, items: list[Recoverable], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("recoveryDialog")
        self.setWindowTitle("Restore unsaved work")
        self.items = list(items)
        self.choice = LATER
        layout = QVBoxLayout(self)
        n = len(self.items)
        intro = QLabel(
            f"<b>{'A training run' if n == 1 else f'{n} training runs'} did not end cleanly.</b><br>"
            "Gradient Workbench kept a recovery copy of the weights, optimizer state and history "
            "written during training. Restore opens it as an unsaved session; Discard deletes "
            "the copy; Later keeps it and asks again at the next start.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.table = QTreeWidget(self)
        self.table.setObjectName("recoveryList")
        self.table.setRootIsDecorated(False)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setHeaderLabels(["Saved", "Experiment", "Epochs", "Steps", "Session"])
        for item in self.items:
            session = item.session_path.name if item.session_path is not None else "never saved"
            row = QTreeWidgetItem([_when(item.saved), item.name, str(item.epoch), str(item.step), session])
            row.setToolTip(4, str(item.session_path) if item.session_path else f"recovery copy: {item.path}")
            row.setToolTip(1, str(item.path))
            for column in (2, 3):
                row.setTextAlignment(column, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.addTopLevelItem(row)
        header = self.table.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for column in (0, 2, 3, 4):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setCurrentItem(self.table.topLevelItem(0))
        layout.addWidget(self.table)
        self.buttons = QDialogButtonBox(self)
        self.restore_button = QPushButton("&Restore")
        self.restore_button.setToolTip("Open the selected copy as an unsaved session (one at a time)")
        self.discard_button = QPushButton("&Discard")
        self.discard_button.setToolTip("Delete the selected recovery copies")
        self.later_button = QPushButton("&Later")
        self.later_button.setToolTip("Keep every copy; ask again at the next start")
        self.buttons.addButton(self.restore_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(self.discard_button, QDialogButtonBox.ButtonRole.DestructiveRole)
        self.buttons.addButton(self.later_button, QDialogButtonBox.ButtonRole.RejectRole)
        self.restore_button.setDefault(True)
        self.restore_button.clicked.connect(lambda: self._finish(RESTORE))
        self.discard_button.clicked.connect(lambda: self._finish(DISCARD))
        self.later_button.clicked.connect(lambda: self._finish(LATER))
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.itemDoubleClicked.connect(lambda *_: self._finish(RESTORE))
        layout.addWidget(self.buttons)
        self._update_buttons()
        self.resize(640, 150 + 26 * min(n, 8))

    def selected(self) -> list[Recoverable]:
        rows = sorted(self.table.indexOfTopLevelItem(item) for item in self.table.selectedItems())
        return [self.items[i] for i in rows]

    def select(self, paths: list[Path]) -> None:
        wanted = {Path(p).resolve() for p in paths}
        self.table.clearSelection()
        for i, item in enumerate(self.items):
            if item.path.resolve() in wanted:
                self.table.topLevelItem(i).setSelected(True)

    def _update_buttons(self) -> None:
        n = len(self.selected())
        self.restore_button.setEnabled(n == 1)
        self.discard_button.setEnabled(n >= 1)

    def _finish(self, choice: str) -> None:
        if choice == RESTORE and len(self.selected()) != 1:
            return
        self.choice = choice
        if choice == LATER:
            self.reject()
        else:
            self.accept()
