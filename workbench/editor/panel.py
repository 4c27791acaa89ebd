"""The common frame of the editor panels: a binder over the state, refresh on every change,
error marking, tab order, and a scrollable dock."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QDockWidget, QFrame, QGroupBox, QMainWindow, QScrollArea, QVBoxLayout, QWidget

from ..state import ExperimentState
from .component import ComponentEditor
from .fields import ERROR_STYLE, Binder, fix_tab_order

PANEL_WIDTH = 470          # the docks' preferred width: leaves ~880 px for the plots at 1366×768
PANEL_MIN_WIDTH = 410


class Panel(QWidget):
    """Base class: subclasses build their widgets, bind them through ``self.binder`` and list
    their registry editors in ``self.components``; ``refresh`` is called after every change."""

    def __init__(self, state: ExperimentState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.binder = Binder(state, self)
        self.components: list[ComponentEditor] = []
        self.setStyleSheet(ERROR_STYLE)
        self.body = QVBoxLayout(self)
        self.body.setContentsMargins(6, 6, 6, 6)
        state.changed.connect(self._state_changed)
        state.errors_changed.connect(self._errors_changed)

    def group(self, title: str, layout: Any, tooltip: str = "") -> QGroupBox:
        box = QGroupBox(title)
        box.setLayout(layout)
        if tooltip:
            box.setToolTip(tooltip)
        self.body.addWidget(box)
        return box

    def finish(self) -> None:
        """Call at the end of the subclass's ``__init__``."""
        self.body.addStretch(1)
        self.refresh()
        fix_tab_order(self)

    def refresh(self) -> None:
        """Make every widget show the state (subclasses extend it)."""

    def _state_changed(self, _experiment: Any = None) -> None:
        rebuilt = False
        for editor in self.components:
            rebuilt = editor.sync() or rebuilt
        self.binder.refresh()
        self.refresh()
        if rebuilt:
            fix_tab_order(self)

    def _errors_changed(self, errors: dict[str, str]) -> None:
        self.binder.show_errors(errors)
        self.errors_shown(errors)

    def errors_shown(self, errors: dict[str, str]) -> None:
        """Hook for errors not attached to a bound field (the layer table's)."""


class _Scroll(QScrollArea):
    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(PANEL_WIDTH, 560)


def make_dock(title: str, object_name: str, panel: QWidget, parent: QMainWindow, tooltip: str = "") -> QDockWidget:
    dock = QDockWidget(title, parent)
    dock.setObjectName(object_name)
    scroll = _Scroll()
    scroll.setObjectName(f"{object_name}Scroll")
    scroll.setWidget(panel)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
    panel.setMinimumWidth(PANEL_MIN_WIDTH)
    # The dock must not collapse below a usable width (the plots take what is left).
    scroll.setMinimumWidth(PANEL_MIN_WIDTH + scroll.verticalScrollBar().sizeHint().width())
    dock.setWidget(scroll)
    if tooltip:
        dock.toggleViewAction().setToolTip(tooltip)
        dock.toggleViewAction().setStatusTip(tooltip)
    return dock
