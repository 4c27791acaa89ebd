"""What the three instrument docks share (sharpness, gradient noise, effective learning rate):
``InstrumentPanel``, a plot panel with

* a "How to read" note: one paragraph, shown or hidden with the ``?`` button of the tool row
  (a few lines high, scrolling) and the button's tooltip;
* an "off" bar when the instrument is off in the experiment (``training.instruments``), with a
  **Turn on** button that edits the experiment as the editor does (one undoable edit; a running
  trainer takes it from the next batch: the instruments measure a private copy of the network);
* a note on the plot until the first value arrives (when it will: every k-th step);
* the measured rows only: an instrument fills one diagnostics row in every k (NaN elsewhere),
  so a curve is drawn through the rows where it measured.

x is in epochs, as on the Loss dock.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QWidget,
)

from core.spec import InstrumentsSpec

from ..buffers import RunBuffers
from .base import PlotPanel

HELP_HEIGHT = 96            # pixels of the how-to-read note (it scrolls)
OFF_STYLE = "QWidget#instrumentOffBar { background: #fff4ce; } QLabel { color: #5c4400; }"


def instrument_setting(spec: dict[str, Any] | None, name: str) -> tuple[bool, int]:
    """(enabled, every) of instrument ``name`` in a ``training.instruments`` dict (its defaults
    where the dict leaves it out: an experiment at the defaults stores none)."""
    default = InstrumentsSpec().to_dict()[name]
    own = (spec or {}).get(name, {})
    return bool(own.get("enabled", default["enabled"])), int(own.get("every", default["every"]))


def decade_label(exponent: int) -> str:
    """10^k as a tick label: 0.01, 0.1, 1, 10, 100, 1000, then 1e4 (1e-3 below)."""
    return f"{10.0 ** exponent:g}" if -2 <= exponent <= 3 else f"1e{exponent}"


class InstrumentPanel(PlotPanel):
    """Base of the instrument docks. Subclasses set ``instrument`` (its key in
    ``training.instruments``), ``label`` (how the off bar and the edit name it) and ``reading``
    (the how-to-read paragraph), and draw in ``draw``."""

    instrument: ClassVar[str] = ""
    label: ClassVar[str] = ""
    reading: ClassVar[str] = ""
    min_interval = 0.2

    def __init__(self, buffers: RunBuffers, parent: QWidget | None = None) -> None:
        super().__init__(buffers, parent)
        self.state: Any = None
        self.help_button = QToolButton()
        self.help_button.setText("?")
        self.help_button.setObjectName("instrumentHelpButton")
        self.help_button.setCheckable(True)
        self.help_button.setAutoRaise(True)
        self.help_button.setToolTip("How to read this plot (show or hide the note)")
        self.help_button.setWhatsThis(self.reading)
        self._tools.insertWidget(1, self.help_button)
        self.help_note = QLabel(self.reading)
        self.help_note.setObjectName("instrumentHelp")
        self.help_note.setWordWrap(True)
        self.help_note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.help_note.setContentsMargins(2, 0, 2, 0)
        # a few lines high, scrolling: the plot keeps most of a short dock
        self.help_box = QScrollArea()
        self.help_box.setObjectName("instrumentHelpBox")
        self.help_box.setWidget(self.help_note)
        self.help_box.setWidgetResizable(True)
        self.help_box.setFrameShape(QFrame.Shape.NoFrame)
        self.help_box.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.help_box.setMaximumHeight(HELP_HEIGHT)
        self.help_box.setVisible(False)
        self.help_button.toggled.connect(self.help_box.setVisible)

        self.off_bar = QWidget()
        self.off_bar.setObjectName("instrumentOffBar")
        self.off_bar.setStyleSheet(OFF_STYLE)
        self.off_bar.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        row = QHBoxLayout(self.off_bar)
        row.setContentsMargins(4, 2, 4, 2)
        self.off_note = QLabel()
        self.off_note.setObjectName("instrumentOffNote")
        self.off_note.setWordWrap(True)
        self.off_note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.turn_on_button = QPushButton("Turn on")
        self.turn_on_button.setObjectName(f"{self.instrument}TurnOn")
        self.turn_on_button.setToolTip(f"Turn the {self.label} instrument on in the experiment "
                                       f"(training.instruments.{self.instrument}; Edit › Undo turns it off)")
        self.turn_on_button.clicked.connect(self.turn_on)
        row.addWidget(self.off_note, 1)
        row.addWidget(self.turn_on_button)
        self.off_bar.setVisible(False)
        layout = self.layout()
        layout.insertWidget(1, self.help_box)            # under the tool row, over the plot
        layout.insertWidget(2, self.off_bar)
        self.empty_notes: list[pg.TextItem] = []

    # ------------------------------------------------------------------ the experiment

    def attach(self, controller: Any) -> None:
        self.state = controller.state
        self.state.changed.connect(self._experiment_changed)   # a bound slot: dropped with the panel
        self.show_setting()

    def _experiment_changed(self, _experiment: Any) -> None:
        self.show_setting()

    def setting(self) -> tuple[bool, int]:
        """(enabled, every) in the experiment the window edits, or (without one) the run's."""
        if self.state is not None:
            spec = self.state.experiment.training.instruments.to_dict()
        else:
            spec = self.buffers.meta.get("instruments")
        return instrument_setting(spec, self.instrument)

    def show_setting(self) -> None:
        on, _ = self.setting()
        if not on:
            self.off_note.setText(f"The {self.label} instrument is off for this experiment: nothing is measured. "
                                  "Turn it on here or in the Training panel (Instruments).")
        self.turn_on_button.setEnabled(self.state is not None)
        self.off_bar.setVisible(not on)
        self.drawn_version = -1                          # the plot's note follows

    def turn_on(self) -> str | None:
        """Switch the instrument on: one undoable edit of ``training.instruments``."""
        if self.state is None:
            return "no experiment to edit"
        data = self.state.data
        instruments = data["training"].setdefault("instruments", InstrumentsSpec().to_dict())
        instruments.setdefault(self.instrument, {})["enabled"] = True
        return self.state.replace_data(data, f"Turn the {self.label} instrument on")

    # ------------------------------------------------------------------ drawing helpers

    def add_note(self, plot: pg.PlotItem) -> pg.TextItem:
        note = pg.TextItem("", anchor=(0.5, 0.5))
        plot.addItem(note, ignoreBounds=True)
        self.empty_notes.append(note)
        return note

    def empty_text(self, what: str) -> str:
        on, every = self.setting()
        if not on:
            return f"{what}: off for this experiment"
        return f"{what} appears here:\nmeasured every {every} steps"

    def show_empty(self, note: pg.TextItem, plot: pg.PlotItem, empty: bool, what: str) -> None:
        note.setVisible(empty)
        if empty:
            note.setText(self.empty_text(what))
            note.setColor(self.text_colour)
            (x0, x1), (y0, y1) = plot.vb.viewRange()
            note.setPos((x0 + x1) / 2, (y0 + y1) / 2)

    def measured(self, *keys: str) -> np.ndarray:
        """The rows where any of the instruments ``keys`` measured."""
        b = self.buffers
        mask = np.zeros(b.size, dtype=bool)
        for key in keys:
            a = b.instrument(key)
            mask |= np.isfinite(a) if a.ndim == 1 else np.isfinite(a).any(axis=1)
        return mask

    def epochs_of(self, rows: np.ndarray) -> np.ndarray:
        return self.buffers.steps[rows] / self.buffers.steps_per_epoch

    def follow_epochs(self, plots: list[pg.PlotItem], x: np.ndarray) -> None:
        """Until the user zooms: x from 0 to the newest value or the run's end, y fits the data."""
        if not self.follow:
            return
        b = self.buffers
        end = max([1.0, float(b.steps[-1]) / b.steps_per_epoch if b.size else 0.0,
                   float(x.max()) if x.size else 0.0])
        for plot in plots:
            plot.setXRange(0.0, end, padding=0.02)
            plot.enableAutoRange(pg.ViewBox.YAxis)

    def fit_decades(self, plot: pg.PlotItem, *logs: np.ndarray) -> None:
        """Until the user zooms: a log axis from the decade below the lowest value to the decade
        above the highest, so that its labels are whole decades (a short plot spanning less than
        one would crowd its axis with minor-tick labels)."""
        axis = plot.getAxis("left")
        if not self.follow:
            axis.setTicks(None)                   # zoomed in: pyqtgraph's own ticks
            return
        values = np.concatenate([np.ravel(a) for a in logs]) if logs else np.zeros(0)
        values = values[np.isfinite(values)]
        if values.size == 0:
            return
        lo, hi = math.floor(float(values.min())), math.ceil(float(values.max()))
        hi = max(hi, lo + 1)
        plot.setYRange(lo, hi, padding=0.02)
        step = max(1, (hi - lo + 3) // 4)         # at most about four labels
        axis.setTicks([[(float(d), decade_label(d)) for d in range(lo, hi + 1, step)], []])

    def reset_zoom(self) -> None:
        self.follow = True
        self.drawn_version = -1
