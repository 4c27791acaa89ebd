"""The Runs dock's list of ghost runs: the window's last few runs, kept unsaved as faint curves
on the monitor's plots (``workbench.monitor.ghosts``). A tick shows or hides one; Remove drops
the selected ones (nothing on disk is touched: a ghost was never saved)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from ..monitor.ghosts import GhostRuns

ID_ROLE = Qt.ItemDataRole.UserRole


class GhostList(QWidget):
    """The ghosts of one window, newest first, in step with ``GhostRuns``."""

    def __init__(self, ghosts: GhostRuns, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ghostRuns")
        self.ghosts = ghosts
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        head = QHBoxLayout()
        self.caption = QLabel("Ghost runs (unsaved)")
        self.caption.setToolTip(f"The last {ghosts.limit} runs of this window, kept as faint curves on the gradient-"
                                "norm, loss and accuracy plots without being saved; tick to show, untick to hide. "
                                "A branch's parent is drawn dashed from the fork on.")
        head.addWidget(self.caption, 1)
        self.remove_button = QPushButton("Remove ghost")
        self.remove_button.setObjectName("removeGhostButton")
        self.remove_button.setToolTip("Drop the selected ghost runs from the plots and this list")
        self.remove_button.clicked.connect(self.remove_selected)
        head.addWidget(self.remove_button)
        layout.addLayout(head)
        self.list = QListWidget()
        self.list.setObjectName("ghostList")
        self.list.setMaximumHeight(72)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)     # the name is last: the numbers stay
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.itemChanged.connect(self._ticked)
        layout.addWidget(self.list)
        ghosts.changed.connect(self.sync)
        self.sync()

    def sync(self) -> None:
        parent = self.ghosts.parent_of_current[0] if self.ghosts.parent_of_current else None
        self.list.blockSignals(True)
        self.list.clear()
        for ghost in reversed(self.ghosts.runs):
            number, _, name = ghost.label.partition(": ")
            role = "parent, dashed · " if ghost.id == parent else ""
            text = f"{number} · {role}{ghost.last_step:,} steps · {name}"
            item = QListWidgetItem(text)
            item.setData(ID_ROLE, ghost.id)
            item.setToolTip(f"{ghost.label}: {ghost.last_step:,} steps"
                            + (" (the run on screen was branched from it: drawn dashed from the fork on)"
                               if role else ""))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if ghost.visible else Qt.CheckState.Unchecked)
            self.list.addItem(item)
        self.list.blockSignals(False)
        self.setVisible(bool(self.ghosts.runs))
        self.remove_button.setEnabled(bool(self.ghosts.runs))

    def labels(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def _ticked(self, item: QListWidgetItem) -> None:
        self.ghosts.set_visible(int(item.data(ID_ROLE)), item.checkState() == Qt.CheckState.Checked)

    def remove_selected(self) -> None:
        for item in self.list.selectedItems():
            self.ghosts.remove(int(item.data(ID_ROLE)))
