"""The Runs panel (issue 4): the sessions opened or trained in this window, with checkboxes, and
comparison plots that overlay the ticked ones — loss and accuracy per epoch (train solid,
validation dashed), the gradient norm of a chosen layer per step, an instrument's series per
step (sharpness against its stability threshold, noise scale, a layer's SNR or effective rate), a
summary of a layer's distributions over time per recorded step (the share of exact zeros, the
saturated share, the median magnitude), and one run's histograms of a layer minus another's.

The histories are read and aligned on a worker thread (``RunsLoader`` → ``core.sessions.compare``); the
plots reuse the monitor's ``PlotPanel`` (palette-aware, Freeze / Fit / PNG / CSV), with pen
width 1, pyqtgraph's peak downsampling and clip-to-view, and NaN drawn as a gap.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core.engine.distributions import KINDS, SATURATION_KIND, kind_columns
from core.sessions.compare import distribution_column, distribution_difference
from core.sessions.format import SessionError, peek_session

from ..monitor.buffers import safe_log10
from ..monitor.plots.base import PlotPanel
from ..monitor.plots.distributions import (
    DIFFERENCE_MAP,
    KIND_LABELS,
    add_step_image,
    column_ticks,
    histogram_csv,
    occupied_rows,
    step_image_rect,
)
from .loader import RunsData, RunsLoader

#: One colour per run (categorical, readable on light and dark backgrounds).
RUN_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
               "#bcbd22", "#7f7f7f"]
PATH_ROLE = Qt.ItemDataRole.UserRole
LAYER_CHOICES = ("first hidden", "last hidden", "output")


class _Stamp:
    """Stands in for ``RunBuffers`` in ``PlotPanel``: these plots are drawn when data arrives."""

    version = 0
    run = 0


def run_colour(i: int) -> QColor:
    return QColor(RUN_COLOURS[i % len(RUN_COLOURS)])


def _pen(colour: QColor, dashed: bool = False) -> Any:
    pen = pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)
    pen.setCosmetic(True)
    return pen


def choice_row(widgets: Sequence[QWidget]) -> QWidget:
    """A row of combo boxes (and labels) under a plot's tool row; the boxes share the width and
    shrink to a few characters, so the pane is no wider than the dock's other plots."""
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    widget = QWidget()
    widget.setLayout(row)
    add_to_choice_row(widget, widgets)
    return widget


def add_to_choice_row(row: QWidget, widgets: Sequence[QWidget], at: int = -1) -> None:
    """Put ``widgets`` into a ``choice_row`` (at position ``at``; -1: the end)."""
    layout = row.layout()
    assert isinstance(layout, QHBoxLayout)
    for k, w in enumerate(widgets):
        if isinstance(w, QComboBox):
            w.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            w.setMinimumContentsLength(4)
        layout.insertWidget(-1 if at < 0 else at + k, w, 1 if isinstance(w, QComboBox) else 0)


def kind_combo(name: str, tip: str) -> QComboBox:
    """A choice of distribution kind (its data the kind's name), the activations first chosen."""
    combo = QComboBox()
    combo.setObjectName(name)
    combo.setToolTip(tip)
    for kind in KINDS:
        combo.addItem(KIND_LABELS[kind], kind)
    combo.setCurrentIndex(KINDS.index(SATURATION_KIND))
    return combo


class ComparisonPlot(PlotPanel):
    """One comparison plot: curves keyed by (session path, what)."""

    title = "Comparison"
    x_label = "epoch"
    y_label = ""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(_Stamp(), parent)  # type: ignore[arg-type]
        self.plot = self.add_plot()
        self.plot.setLabel("bottom", self.x_label)
        self.plot.setLabel("left", self.y_label)
        self.plot.setDownsampling(auto=True, mode="peak")
        self.plot.setClipToView(True)
        self.curves: dict[tuple[Path, str], pg.PlotDataItem] = {}
        self.caption.setText(self.title)

    def draw(self) -> None:  # drawn by ``show_data``; the monitor's timer protocol is not used here
        pass

    def clear_curves(self) -> None:
        for curve in self.curves.values():
            self.plot.removeItem(curve)
        self.curves = {}

    def add_curve(self, path: Path, what: str, x: np.ndarray, y: np.ndarray, colour: QColor, dashed: bool,
                  name: str | None) -> pg.PlotDataItem:
        # No legend (it would hide curves): the run list above is coloured like the curves.
        curve = self.plot.plot(x, y, pen=_pen(colour, dashed), connect="finite")
        curve.setToolTip(f"{name or path.name}: {what}")
        self.curves[(path, what)] = curve
        return curve

    def csv_data(self) -> tuple[list[str], list[Any]]:
        header, columns = [], []
        for (path, what), curve in self.curves.items():
            x, y = curve.xData, curve.yData
            header += [f"{path.name}: {self.x_label}", f"{path.name}: {what}"]
            columns += [np.asarray(x if x is not None else []), np.asarray(y if y is not None else [])]
        return header, columns

    def overlay(self, data: RunsData | None, axis: str, labels: Sequence[str],
                series: Any, log: bool = True) -> None:
        """One curve per run and per (column, dashed) of ``series(j)`` that the run recorded, at the
        indices of ``axis`` where it did and the value is finite; log10 of the values with ``log``."""
        cmp = getattr(data, axis) if data is not None else None
        if cmp is None:
            return
        for j, path in enumerate(data.paths):
            for what, dashed in series(j):
                if what is None or what not in cmp.values:
                    continue
                values = cmp.values[what][:, j]
                rows = data.present[axis][:, j] & np.isfinite(values)
                if rows.any():
                    y = safe_log10(values[rows]) if log else values[rows]
                    self.add_curve(path, what, cmp.index[rows].astype(np.float64), y, run_colour(j), dashed,
                                   None if dashed else labels[j])

    def finish(self) -> None:
        self.apply_palette()
        self.plot.enableAutoRange()


class EpochPlot(ComparisonPlot):
    """Train (solid) and validation (dashed) of one metric per epoch."""

    metric = "loss"

    def show_data(self, data: RunsData, labels: Sequence[str]) -> None:
        self.clear_curves()
        cmp = data.epoch
        if cmp is not None:
            for j, path in enumerate(data.paths):
                rows = data.present["epoch"][:, j]
                x = cmp.index[rows].astype(np.float64)
                for what, dashed in ((self.metric, False), (f"val_{self.metric}", True)):
                    if what in cmp.values:
                        self.add_curve(path, what, x, cmp.values[what][rows, j], run_colour(j), dashed,
                                       None if dashed else labels[j])
        self.finish()


class LossPlot(EpochPlot):
    title = "Loss per epoch — solid: train, dashed: validation"
    y_label = "loss"
    metric = "loss"


class AccuracyPlot(EpochPlot):
    title = "Accuracy per epoch — solid: train, dashed: validation"
    y_label = "accuracy"
    metric = "accuracy"


class GradNormPlot(ComparisonPlot):
    """The kernel gradient norm of one layer per optimizer step, log y. The layer is chosen by
    position (first / last hidden, output, or hidden layer k), as ``core.sessions.compare`` aligns them."""

    title = "Gradient norm per step"
    x_label = "optimizer step"
    y_label = "kernel gradient norm"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot.getAxis("left").setLogMode(False, True)
        self.plot.getAxis("left").setStyle(maxTextLevel=0)
        self.layer_combo = QComboBox()
        self.layer_combo.setObjectName("runsLayerCombo")
        self.layer_combo.setToolTip("Which layer's gradient norm to compare: layers are matched by position "
                                    "from the input, so runs of different depths line up")
        self.layer_combo.addItems(LAYER_CHOICES)
        # The choices sit in a row of their own under the tool row: in it, a deep run's layer
        # names widened the pane until the docked Runs dock scrolled sideways at 1366 × 768.
        self.choices = choice_row([self.layer_combo])
        self.layout().insertWidget(1, self.choices)
        self._data: RunsData | None = None
        self._labels: list[str] = []
        self.layer_combo.currentIndexChanged.connect(lambda _: self._redraw())

    def column_for(self, run: int, n_hidden: int) -> str | None:
        """The ``core.sessions.compare`` column of the chosen layer for a run with ``n_hidden`` hidden layers."""
        choice = self.layer_combo.currentIndex()
        if choice == 0:
            return "grad_norm[0]" if n_hidden else "grad_norm[output]"
        if choice == 1:
            return f"grad_norm[{n_hidden - 1}]" if n_hidden else "grad_norm[output]"
        if choice == 2:
            return "grad_norm[output]"
        k = choice - len(LAYER_CHOICES)
        return f"grad_norm[{k}]" if k < n_hidden else None

    def show_data(self, data: RunsData, labels: Sequence[str]) -> None:
        self._data, self._labels = data, list(labels)
        deepest = max(data.n_hidden, default=0)
        if self.layer_combo.count() != len(LAYER_CHOICES) + deepest:
            current = self.layer_combo.currentIndex()
            self.layer_combo.blockSignals(True)
            while self.layer_combo.count() > len(LAYER_CHOICES):
                self.layer_combo.removeItem(self.layer_combo.count() - 1)
            self.layer_combo.addItems([f"hidden {k + 1}" for k in range(deepest)])
            self.layer_combo.setCurrentIndex(current if current < self.layer_combo.count() else 0)
            self.layer_combo.blockSignals(False)
        self._redraw()

    def _redraw(self) -> None:
        self.clear_curves()
        data = self._data
        if data is not None and data.step is not None:
            cmp = data.step
            for j, path in enumerate(data.paths):
                column = self.column_for(j, data.n_hidden[j])
                if column is None or column not in cmp.values:
                    continue
                rows = data.present["step"][:, j]
                self.add_curve(path, column, cmp.index[rows].astype(np.float64),
                               safe_log10(cmp.values[column][rows, j]), run_colour(j), False, self._labels[j])
        self.finish()

    def csv_data(self) -> tuple[list[str], list[Any]]:
        header, columns = super().csv_data()
        return header, [c if i % 2 == 0 else 10 ** np.asarray(c, dtype=np.float64) for i, c in enumerate(columns)]


#: The instrument series the Runs dock overlays: (label, comparison column or per-layer quantity,
#: the dashed companion drawn with it, per layer).
INSTRUMENT_CHOICES = (
    ("sharpness λ_max (dashed: stability threshold)", "sharpness", "stability_threshold", False),
    ("preconditioned λ_max(P⁻¹H) (dashed: threshold)", "preconditioned_sharpness", "stability_threshold", False),
    ("gradient noise scale B_simple", "noise_scale", None, False),
    ("SNR of a layer", "snr", None, True),
    ("effective learning rate of a layer", "effective_learning_rate", None, True),
)


class InstrumentPlot(GradNormPlot):
    """One instrument's series per optimizer step, log y: the runs' sharpness (each with its own
    threshold, dashed), noise scale, or a layer's SNR or effective learning rate (the layer chosen
    as on the gradient-norm plot). An instrument measures every k-th recorded step: each run's
    curve joins the steps where it measured."""

    title = "Instruments per step"
    y_label = "value"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layer_combo.setObjectName("runsInstrumentLayerCombo")
        self.layer_combo.setToolTip("Which layer's SNR or effective rate to compare (matched by position from "
                                    "the input)")
        self.what_combo = QComboBox()
        self.what_combo.setObjectName("runsInstrumentCombo")
        self.what_combo.setToolTip("Which instrument to overlay (training.instruments must have been on in the runs)")
        self.what_combo.addItems([label for label, *_ in INSTRUMENT_CHOICES])
        add_to_choice_row(self.choices, [self.what_combo], at=0)
        self.what_combo.currentIndexChanged.connect(lambda _: self._redraw())

    def choice(self) -> tuple[str, str | None, bool]:
        _, quantity, companion, per_layer = INSTRUMENT_CHOICES[self.what_combo.currentIndex()]
        return quantity, companion, per_layer

    def column_for(self, run: int, n_hidden: int) -> str | None:
        quantity, _, per_layer = self.choice()
        if not per_layer:
            return quantity
        layer = super().column_for(run, n_hidden)
        return None if layer is None else quantity + layer[len("grad_norm"):]

    def _redraw(self) -> None:
        self.clear_curves()
        data = self._data
        self.layer_combo.setEnabled(self.choice()[2])
        _, companion, _ = self.choice()
        self.overlay(data, "step", self._labels,
                     lambda j: ((self.column_for(j, data.n_hidden[j]), False), (companion, True)))
        self.finish()


#: The distribution summaries the Runs dock overlays: (label, ``core.engine.distributions`` summary, log y).
SUMMARY_CHOICES = (
    ("share of exact zeros (= 0)", "zero_fraction", False),
    ("saturated share (tanh / logistic activations)", "saturated_fraction", False),
    ("median magnitude |x|", "median_magnitude", True),
)


class DistributionSummaryPlot(GradNormPlot):
    """A summary of one layer's distribution of a kind (weights, gradients, pre-activations,
    activations) at every step the distributions were recorded, one curve per run: the share of
    exact zeros (dying ReLU), the saturated share (activations at a tanh or logistic asymptote)
    or the median magnitude (log y), from ``core.sessions.compare`` (``by="distribution"``)."""

    title = "Distributions per recorded step"
    y_label = "share of values"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layer_combo.setObjectName("runsDistributionLayerCombo")
        self.layer_combo.setToolTip("Which layer's distribution to summarise (matched by position from the input)")
        self.kind_combo = kind_combo("runsDistributionKindCombo",
                                     "Which recorded distribution: weights, gradients, pre-activations or activations")
        self.summary_combo = QComboBox()
        self.summary_combo.setObjectName("runsDistributionSummaryCombo")
        self.summary_combo.setToolTip("What to draw of each recorded histogram (training.instruments.distributions "
                                      "must have been on in the runs)")
        self.summary_combo.addItems([label for label, *_ in SUMMARY_CHOICES])
        add_to_choice_row(self.choices, [self.summary_combo, self.kind_combo], at=0)
        for combo in (self.summary_combo, self.kind_combo):
            combo.currentIndexChanged.connect(lambda _: self._redraw())

    @property
    def kind(self) -> str:
        return str(self.kind_combo.currentData())

    def choice(self) -> tuple[str, bool]:
        _, summary, log = SUMMARY_CHOICES[self.summary_combo.currentIndex()]
        return summary, log

    def column_for(self, run: int, n_hidden: int) -> str | None:
        layer = super().column_for(run, n_hidden)
        summary, _ = self.choice()
        return None if layer is None else distribution_column(self.kind, summary) + layer[len("grad_norm"):]

    def _redraw(self) -> None:
        self.clear_curves()
        data = self._data
        summary, log = self.choice()
        self.plot.getAxis("left").setLogMode(False, log)
        self.plot.setLabel("left", "median |x|" if log else self.y_label)
        if summary == "saturated_fraction" and self.kind != SATURATION_KIND:
            self.caption.setText(f"{self.title}: the saturated share is defined for the activations")
        elif data is not None and data.distribution is None and data.paths:
            self.caption.setText(f"{self.title}: none of these runs recorded distributions")
        else:
            self.caption.setText(self.title)
        self.overlay(data, "distribution", self._labels,
                     lambda j: ((self.column_for(j, data.n_hidden[j]), False),), log=log)
        self.finish()

    def csv_data(self) -> tuple[list[str], list[Any]]:
        return super().csv_data() if self.choice()[1] else ComparisonPlot.csv_data(self)


class DistributionDifferencePlot(PlotPanel):
    """Run A's histograms of one layer minus run B's, at the steps both recorded, as a step × bin
    image (``core.sessions.compare.distribution_difference``): red where A has more of the layer's
    values. Refused, with the reason in the plot, when a run has no distributions, the two runs'
    edges differ or they share no step."""

    title = "Histogram difference between two runs"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(_Stamp(), parent)  # type: ignore[arg-type]
        self.run_a, self.run_b = QComboBox(), QComboBox()
        self.run_a.setObjectName("runsDifferenceRunA")
        self.run_b.setObjectName("runsDifferenceRunB")
        self.run_a.setToolTip("Run A: the image shows A minus B")
        self.run_b.setToolTip("Run B: subtracted from run A")
        self.kind_combo = kind_combo("runsDifferenceKindCombo", "Which recorded distribution to subtract")
        self.layer_combo = QComboBox()
        self.layer_combo.setObjectName("runsDifferenceLayerCombo")
        self.layer_combo.setToolTip("Which layer (by position from the input; both runs must have it)")
        self.layout().insertWidget(1, choice_row([self.run_a, QLabel("−"), self.run_b]))
        self.layout().insertWidget(2, choice_row([self.kind_combo, self.layer_combo]))
        for combo in (self.run_a, self.run_b, self.kind_combo, self.layer_combo):
            combo.currentIndexChanged.connect(lambda _: self._redraw())
        self.plot = self.add_plot()
        self.image, self.bar, self.note = add_step_image(self.plot, pg.colormap.get(DIFFERENCE_MAP), (-1.0, 1.0),
                                                         "A − B")
        self.data = np.zeros((0, 0), dtype=np.float32)      # (columns, steps): what the image shows
        self.shown_steps = np.zeros(0, dtype=np.int64)
        self.message = ""                                   # why nothing is shown, or ""
        self._data: RunsData | None = None
        self._labels: list[str] = []

    def draw(self) -> None:  # drawn by ``show_data``
        pass

    @property
    def kind(self) -> str:
        return str(self.kind_combo.currentData())

    def layer(self) -> int | str:
        i = self.layer_combo.currentIndex()
        return "output" if i == self.layer_combo.count() - 1 else max(i, 0)

    @staticmethod
    def _refill(combo: QComboBox, items: list[str], default: int) -> None:
        keep = combo.currentIndex() if combo.count() == len(items) else default
        combo.blockSignals(True)
        combo.clear()
        combo.addItems(items)
        combo.setCurrentIndex(min(max(keep, 0), len(items) - 1) if items else -1)
        combo.blockSignals(False)

    def show_data(self, data: RunsData, labels: Sequence[str]) -> None:
        self._data, self._labels = data, list(labels)
        self._refill(self.run_a, self._labels, 0)
        self._refill(self.run_b, self._labels, 1)
        deepest = max(data.n_hidden, default=0)
        self._refill(self.layer_combo, [f"hidden {k + 1}" for k in range(deepest)] + ["output"], 0)
        for j in range(len(self._labels)):
            for combo in (self.run_a, self.run_b):
                combo.setItemData(j, run_colour(j), Qt.ItemDataRole.ForegroundRole)
        self._redraw()

    def _refuse(self, text: str) -> None:
        self.message = text
        self.image.clear()
        self.data = np.zeros((0, 0), dtype=np.float32)
        self.shown_steps = np.zeros(0, dtype=np.int64)
        self.caption.setText(self.title)
        self.note.setText(textwrap.fill(text, 48))
        self.note.setColor(self.text_colour)
        self.note.setVisible(True)
        self.note.setPos(0.0, 0.0)
        self.plot.getAxis("left").setTicks(None)
        self.plot.setRange(xRange=(-1, 1), yRange=(-1, 1), padding=0)

    def _redraw(self) -> None:
        data = self._data
        sessions = data.sessions if data is not None else []
        a, b = self.run_a.currentIndex(), self.run_b.currentIndex()
        if len(sessions) < 2:
            self._refuse("Tick two runs with distributions over time to subtract one's histograms from the other's")
            return
        if a == b:
            self._refuse("Choose two different runs")
            return
        try:
            steps, difference = distribution_difference(sessions[a], sessions[b], self.kind, self.layer())
        except ValueError as exc:
            self._refuse(str(exc))
            return
        self.message = ""
        self.note.setVisible(False)
        self.data = np.ascontiguousarray(difference.T, dtype=np.float32)
        self.shown_steps = steps
        limit = float(np.max(np.abs(self.data))) or 1.0
        self.image.setImage(self.data, autoLevels=False, levels=(-limit, limit))
        self.bar.setLevels((-limit, limit))
        rect = step_image_rect(steps, kind_columns(self.kind))
        self.image.setRect(rect)
        self.plot.getAxis("left").setTicks([column_ticks(self.kind)])
        low, high = occupied_rows(np.abs(difference))      # the bins where the runs differ
        self.plot.setRange(xRange=(rect.left(), rect.right()), yRange=(low - 0.5, high + 0.5), padding=0.01)
        self.caption.setText(f"{KIND_LABELS[self.kind]}, {self.layer_combo.currentText()}: "
                             f"{self._labels[a]} − {self._labels[b]} (red: more in A)")
        self.apply_palette()

    def reset_zoom(self) -> None:
        self._redraw()

    def csv_data(self) -> tuple[list[str], list[Any]]:
        return histogram_csv(self.kind, self.shown_steps, self.data)



class RunsPanel(QWidget):
    """The sessions of this window, ticked ones overlaid. ``refreshed`` fires (GUI thread) after
    the plots show the ticked sessions."""

    refreshed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("runsPanel")
        self.loader = RunsLoader(self)
        self.loader.loaded.connect(self._on_loaded)
        self.data: RunsData | None = None

        self.list = QListWidget()
        self.list.setObjectName("runsList")
        self.list.setToolTip("Sessions saved, opened or added in this window; tick some to overlay them")
        self.list.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        # Colouring an item is an itemChanged as well: only a change of the ticked set reloads.
        self._requested: list[Path] | None = None
        self.list.itemChanged.connect(self._on_item_changed)
        self.add_button = QPushButton("Add session…")
        self.add_button.setToolTip("Add any session file (.gwb) to the list")
        self.add_button.clicked.connect(self.add_dialog)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Take the selected sessions off the list (the files stay)")
        self.remove_button.clicked.connect(self.remove_selected)
        self.none_button = QPushButton("Untick all")
        self.none_button.clicked.connect(lambda: self.set_checked([], exclusive=True))
        self.status = QLabel("")
        self.status.setObjectName("runsStatus")
        self.status.setWordWrap(True)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        buttons = QHBoxLayout()
        for b in (self.add_button, self.remove_button, self.none_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        top_layout.addLayout(buttons)
        top_layout.addWidget(self.list, 1)
        top_layout.addWidget(self.status)
        self.top_layout = top_layout       # the window adds its ghost runs' list here

        self.loss_plot = LossPlot()
        self.loss_plot.setObjectName("runsLossPlot")
        self.accuracy_plot = AccuracyPlot()
        self.accuracy_plot.setObjectName("runsAccuracyPlot")
        self.grad_plot = GradNormPlot()
        self.grad_plot.setObjectName("runsGradNormPlot")
        self.instrument_plot = InstrumentPlot()
        self.instrument_plot.setObjectName("runsInstrumentPlot")
        self.distribution_plot = DistributionSummaryPlot()
        self.distribution_plot.setObjectName("runsDistributionPlot")
        self.difference_plot = DistributionDifferencePlot()
        self.difference_plot.setObjectName("runsDifferencePlot")
        self.plots: list[PlotPanel] = [self.loss_plot, self.accuracy_plot, self.grad_plot, self.instrument_plot,
                                       self.distribution_plot, self.difference_plot]
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setChildrenCollapsible(False)
        for w in (top, *self.plots):
            splitter.addWidget(w)
        splitter.setSizes([130, 220, 220, 220, 220, 220, 260])
        # Six panes' minimum heights add up to ~1000 px: in a scroll area the dock can be as short
        # as its neighbours need (a 768-px screen), scrolling instead of pushing the window taller.
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(splitter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(scroll)
        self._update_status()

    # ------------------------------------------------------------------ the list

    def paths(self) -> list[Path]:
        return [Path(self.list.item(i).data(PATH_ROLE)) for i in range(self.list.count())]

    def checked_paths(self) -> list[Path]:
        return [Path(item.data(PATH_ROLE)) for item in self._items() if item.checkState() == Qt.CheckState.Checked]

    def _items(self) -> list[QListWidgetItem]:
        return [self.list.item(i) for i in range(self.list.count())]

    def _item(self, path: Path) -> QListWidgetItem | None:
        for item in self._items():
            if Path(item.data(PATH_ROLE)) == path:
                return item
        return None

    def add_session(self, path: Path | str, checked: bool = False, source: str = "") -> bool:
        """List a session file (once); returns False (and says why) if it cannot be read."""
        path = Path(path).resolve()
        if path.suffix != ".gwb":
            return False
        item = self._item(path)
        if item is None:
            try:
                _, experiment, _ = peek_session(path)
            except (OSError, SessionError) as exc:
                self.status.setText(f"Cannot add {path.name}: {exc}")
                return False
            name = str(experiment.get("name", path.stem))
            item = QListWidgetItem(f"{name} — {path.name}")
            item.setData(PATH_ROLE, str(path))
            item.setToolTip(f"{path}" + (f"\n({source})" if source else ""))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            self.list.blockSignals(True)
            self.list.addItem(item)
            self.list.blockSignals(False)
        if checked and item.checkState() != Qt.CheckState.Checked:
            item.setCheckState(Qt.CheckState.Checked)       # → reload
        elif item.checkState() == Qt.CheckState.Checked:
            self.reload()                                   # the file may have been saved again
        self._update_status()
        return True

    def set_checked(self, paths: Iterable[Path | str], exclusive: bool = False) -> None:
        """Tick ``paths`` (added to the list if needed); with ``exclusive`` untick the others."""
        wanted = {Path(p).resolve() for p in paths}
        for p in wanted:
            if self._item(p) is None:
                self.add_session(p)
        self.list.blockSignals(True)
        for item in self._items():
            on = Path(item.data(PATH_ROLE)) in wanted
            if on or exclusive:
                item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
        self.list.blockSignals(False)
        self.reload()

    def add_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Add sessions to compare", "", "Sessions (*.gwb)")
        for p in paths:
            self.add_session(p, checked=True, source="added")

    def remove_selected(self) -> None:
        for item in self.list.selectedItems():
            self.list.takeItem(self.list.row(item))
        self.reload()

    # ------------------------------------------------------------------ loading and drawing

    def reload(self) -> None:
        """Read and align the ticked sessions on the loader thread; the plots follow."""
        self._requested = self.checked_paths()
        self.loader.load(self._requested)
        self._update_status()

    def _on_item_changed(self, _item: QListWidgetItem) -> None:
        if self.checked_paths() != self._requested:
            self.reload()

    def _on_loaded(self, data: RunsData) -> None:
        self.data = data
        labels = data.epoch.runs if data.epoch is not None else []
        for plot in self.plots:
            plot.show_data(data, labels)  # type: ignore[attr-defined]
        for j, path in enumerate(data.paths):
            item = self._item(path)
            if item is not None:
                item.setForeground(run_colour(j))
        self._update_status()
        self.refreshed.emit()

    def _update_status(self) -> None:
        n, ticked = self.list.count(), len(self.checked_paths())
        if self.loader.pending:
            text = f"Loading {ticked} session{'s' if ticked != 1 else ''}…"
        elif n == 0:
            text = "No sessions yet: save a run, open a .gwb, or Add session…"
        else:
            text = f"{ticked} of {n} sessions overlaid"
        if self.data is not None and self.data.errors:
            text += " — could not read: " + "; ".join(f"{p.name}: {e}" for p, e in self.data.errors.items())
        self.status.setText(text)
        if n:
            for item in self._items():
                if item.checkState() != Qt.CheckState.Checked:
                    item.setData(Qt.ItemDataRole.ForegroundRole, None)

    def shutdown(self) -> None:
        self.loader.shutdown()
