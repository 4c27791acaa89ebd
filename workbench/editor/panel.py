"""The common frame of the editor panels: a binder over the state, refresh on every change,
error marking, tab order, and a scrollable dock."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QDockWidget,
    QFormLayout,
    QFrame,
    QGroupBox,
    QLabel,
    QMainWindow,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ..state import ExperimentState
from .component import ComponentEditor
from .fields import ERROR_STYLE, LIVE_APPLIES, Binder, fix_tab_order, hint_label

#: The mark before the caption of a field whose edits apply to a running run.
LIVE_MARK = "⚡ "
LIVE_NOTE = ("A run is live: fields marked ⚡ (learning rate, schedule, unfreezing) apply to it from its "
             "next batch; every other edit waits for the next run, which starts from fresh weights.")

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
        self.live_note = hint_label(LIVE_NOTE)
        self.live_note.setObjectName("liveEditNote")
        self.live_note.hide()
        self.body.addWidget(self.live_note)
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
        self._mark_live_captions()

    def set_run_live(self, live: bool) -> None:
        """A run started or ended: while it is live, say at each field whether an edit of it
        applies to the run (⚡ before the caption, and in the tooltip) or waits for the next run."""
        self.live_note.setVisible(live)
        self.binder.set_run_live(live)
        self._mark_live_captions()

    def live_caption(self, field_widget: QWidget) -> QLabel | None:
        """The caption beside a bound field in its form, if it has one."""
        for form in self.findChildren(QFormLayout):
            label = form.labelForField(field_widget)
            if isinstance(label, QLabel):
                return label
        return None

    def _mark_live_captions(self) -> None:
        live = self.binder.run_live
        for field in self.binder.fields:
            caption = self.live_caption(field.widget)
            if caption is None:
                continue
            text = caption.text().removeprefix(LIVE_MARK)
            marked = live and field.live_note == LIVE_APPLIES
            caption.setText(LIVE_MARK + text if marked else text)

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
