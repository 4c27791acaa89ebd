"""Distributions over time: one layer's histogram of weights, gradients, pre-activations or
activations at every recorded step, as a step × bin image (``core.engine.distributions``), and
its difference to the run shown before this one."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QToolButton, QWidget

from core.engine.distributions import (
    EXTRA_COLUMNS,
    KINDS,
    LEADING_COLUMNS,
    LOG_KINDS,
    kind_columns,
    kind_edges,
)

from ..buffers import DistributionBuffer, RunBuffers
from .base import DockPlace, PlotPanel
from .style import short_name

KIND_LABELS = {"weights": "weights |w|", "gradients": "gradients |∂J/∂w|", "pre_activations": "pre-activations z",
               "activations": "activations a"}
#: The explanation under the image shows by itself from this panel height (pixels) on.
HELP_MIN_HEIGHT = 420
#: The bin range shown follows the columns holding mass in the newest rows (steps) of this many.
RECENT_ROWS = 40
HOW_TO_READ = (
    "Each column is one recorded step, each row a bin; brighter means more of the layer's values "
    "there. Weights and gradients are binned by magnitude, four bins a decade, so a small healthy "
    "gradient sits decades up the axis, not at 0; the bottom row counts exact zeros. Saturation: "
    "tanh activations piling into the rows at −1 and 1, logistic ones at 0 and 1. Dying ReLU: the "
    "'= 0' row of the activations (and gradients) filling up. 'Difference' shows this run minus "
    "the previous one at the same steps: red where this run has more mass.")


def column_labels(kind: str) -> list[str]:
    """The names of a kind's columns: '= 0', '< low', the bins' lower edges, '> high'."""
    edges = kind_edges(kind)
    if kind in LOG_KINDS:
        bins = [f"1e{e:+.2f}" for e in edges[:-1]]
        return ["= 0", f"< 1e{edges[0]:+g}", *bins, f">= 1e{edges[-1]:+g}"]
    return ["= 0", f"< {edges[0]:g}", *[f"{e:+.3f}" for e in edges[:-1]], f"> {edges[-1]:g}"]


def column_ticks(kind: str) -> list[tuple[float, str]]:
    """Axis ticks at whole decades (log kinds) or whole values, plus the three extra rows."""
    edges = kind_edges(kind)
    n = len(edges) - 1
    ticks = [(0.0, "= 0"), (1.0, "below")]
    for i, e in enumerate(edges):
        if i < 2 or i > n - 2:
            continue                    # the "below" and "above" rows are labelled there
        if abs(e - round(e)) < 1e-9 and (kind not in LOG_KINDS or int(round(e)) % 2 == 0):
            text = f"1e{int(round(e))}" if kind in LOG_KINDS else f"{int(round(e))}"
            ticks.append((LEADING_COLUMNS + i - 0.5, text))
    ticks.append((LEADING_COLUMNS + n, "above"))
    return ticks


#: The diverging colour map of a difference of histograms (blue: less mass, red: more).
DIFFERENCE_MAP = "CET-D1"


def add_step_image(plot: pg.PlotItem, colour_map: Any, levels: tuple[float, float],
                   label: str) -> tuple[pg.ImageItem, pg.ColorBarItem, pg.TextItem]:
    """Put a step × bin image in ``plot`` with its colour bar, and a note (hidden text) for
    when there is nothing to show; the x axis is the optimizer step."""
    plot.setLabel("bottom", "optimizer step")
    image = pg.ImageItem(axisOrder="row-major")
    plot.addItem(image)
    image.setColorMap(colour_map)
    bar = pg.ColorBarItem(values=levels, colorMap=colour_map, interactive=False, width=12, label=label)
    bar.setImageItem(image, insert_in=plot)
    note = pg.TextItem("", anchor=(0.5, 0.5))
    plot.addItem(note, ignoreBounds=True)
    return image, bar, note


def step_image_rect(steps: np.ndarray, n_columns: int) -> QRectF:
    """Where a (columns × steps) image of a table goes: each recorded step a column of the image
    from its step to the next one's (the last one as wide as the one before), each column of the
    table a row centred on its index."""
    x0 = float(steps[0])
    width = float(steps[-1] - steps[0]) if len(steps) > 1 else 1.0
    step_width = width / max(len(steps) - 1, 1)
    return QRectF(x0 - 0.5 * step_width, -0.5, width + step_width, n_columns)


def histogram_csv(kind: str, steps: np.ndarray, data: np.ndarray) -> tuple[list[str], list[Any]]:
    """The CSV of a shown histogram image ``data`` (columns × steps) of ``kind``: the step, then
    one column per histogram column."""
    labels = column_labels(kind)
    header = ["step", *[f"{kind}[{label}]" for label in labels]]
    if data.size == 0:
        return header, [np.zeros(0, dtype=np.int64)] + [np.zeros(0)] * len(labels)
    assert len(labels) == data.shape[0] == len(kind_edges(kind)) - 1 + EXTRA_COLUMNS
    return header, [steps.astype(np.int64), *[data[i].astype(np.float64) for i in range(data.shape[0])]]


def occupied_rows(recent: np.ndarray) -> tuple[float, float]:
    """The rows of a histogram image (columns of the table) holding mass in ``recent`` (rows ×
    columns: shares, or the size of a difference), with a margin of two bins, always showing the
    zeros row when it holds any."""
    mass = np.nansum(recent, axis=0)
    used = np.flatnonzero(mass > 0)
    n = recent.shape[1]
    if used.size == 0:
        return 0.0, float(n - 1)
    bins = used[used >= LEADING_COLUMNS]
    low = max(int(bins.min()) - 2, LEADING_COLUMNS) if bins.size else LEADING_COLUMNS
    high = min(int(bins.max()) + 2, n - 1) if bins.size else n - 1
    if mass[1] > 0:
        low = 1
    if mass[0] > 0:
        low = 0
    return float(low), float(high)


class DistributionPanel(PlotPanel):
    """One layer's distribution of a quantity over the recorded steps: a step × bin image."""

    title = "Distributions"
    dock = DockPlace(key="distributions", name="distributionsDock", title="Distributions", group=1, tab=5,
                     shown=False)
    min_interval = 0.3

    def __init__(self, buffers: RunBuffers, parent: QWidget | None = None) -> None:
        super().__init__(buffers, parent)
        self.layer_box = QComboBox()
        self.layer_box.setToolTip("The layer whose distribution is shown")
        self.kind_box = QComboBox()
        self.kind_box.setToolTip("The quantity: weights and gradients by magnitude (log bins), "
                                 "pre-activations and activations by value")
        for kind in KINDS:
            self.kind_box.addItem(KIND_LABELS[kind], kind)
        self.kind_box.setCurrentIndex(KINDS.index("activations"))
        self.mode_box = QComboBox()
        self.mode_box.addItem("This run", "run")
        self.mode_box.addItem("Difference to previous run", "difference")
        self.mode_box.setToolTip("This run's histograms, or this run's minus the previous run's at the same steps")
        choices = QHBoxLayout()             # a row of its own under the tool row: the caption keeps its room
        choices.setContentsMargins(0, 0, 0, 0)
        for box in (self.layer_box, self.kind_box, self.mode_box):
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(6)
            choices.addWidget(box, 1)
            box.currentIndexChanged.connect(self._choice_changed)
        choices_widget = QWidget()
        choices_widget.setLayout(choices)
        self.layout().insertWidget(1, choices_widget)
        self.help_button = QToolButton()           # in the choices' row: the tool row is as wide as every panel's
        self.help_button.setText("?")
        self.help_button.setToolTip("Show or hide how to read this plot (shown by itself when the dock is tall enough)")
        self.help_button.setAutoRaise(True)
        self.help_button.setCheckable(True)
        self.help_button.clicked.connect(lambda _=False: self._toggle_help())
        choices.addWidget(self.help_button)
        self.help_chosen = False                # until the user clicks "?", the help shows when there is room
        self.help = QLabel(HOW_TO_READ)
        self.help.setWordWrap(True)
        self.help.setObjectName("distributionsHelp")
        font = self.help.font()
        font.setPointSizeF(max(font.pointSizeF() - 1.0, 7.0))
        self.help.setFont(font)
        self.layout().addWidget(self.help)
        self.graphics.setToolTip(HOW_TO_READ)
        self._fit_help()
        self.plot = self.add_plot()
        self.colour_map = pg.colormap.get("viridis")
        self.difference_map = pg.colormap.get(DIFFERENCE_MAP)
        self.image, self.bar, self.note = add_step_image(self.plot, self.colour_map, (0.0, 1.0), "share")
        self.data = np.zeros((0, 0), dtype=np.float32)      # (columns, rows): what the image shows
        self.shown_steps = np.zeros(0, dtype=np.int64)
        self._layer_names: list[str] = []

    # ------------------------------------------------------------------ choices

    @property
    def kind(self) -> str:
        return str(self.kind_box.currentData())

    @property
    def layer(self) -> int:
        return max(self.layer_box.currentIndex(), 0)

    @property
    def difference(self) -> bool:
        return self.mode_box.currentData() == "difference"

    def _choice_changed(self, *_: Any) -> None:
        self.follow = True
        self.drawn_version = -1

    def _toggle_help(self) -> None:
        self.help_chosen = True
        self.help.setVisible(self.help_button.isChecked())

    def _fit_help(self) -> None:
        """Show the paragraph when the panel is tall enough to keep the image readable under it."""
        if self.help_chosen:
            return
        room = self.height() >= HELP_MIN_HEIGHT
        self.help.setVisible(room)
        self.help_button.setChecked(room)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._fit_help()

    def clear_run(self) -> None:
        super().clear_run()
        self._sync_layers()

    def _sync_layers(self) -> None:
        names = list(self.buffers.layer_names)
        if names == self._layer_names:
            return
        keep = self.layer_box.currentIndex()
        self.layer_box.blockSignals(True)
        self.layer_box.clear()
        for name in names:
            self.layer_box.addItem(short_name(name), name)
        self.layer_box.setCurrentIndex(min(max(keep, 0), len(names) - 1) if names else -1)
        self.layer_box.blockSignals(False)
        self._layer_names = names

    # ------------------------------------------------------------------ drawing

    def _rows(self, dist: DistributionBuffer) -> np.ndarray | None:
        """(rows, columns) of the chosen layer and kind, or None when there are none."""
        table = dist.table(self.kind)
        if dist.size == 0 or table.ndim != 3 or self.layer >= table.shape[1]:
            return None
        return table[:, self.layer, :]

    def _previous_at(self, steps: np.ndarray) -> np.ndarray | None:
        """The previous run's rows of the chosen layer and kind at ``steps`` (its last row at or before
        each step), or None when there is no comparable previous run."""
        b = self.buffers
        prev = b.previous_distributions
        if prev is None or len(b.previous_layer_names) != b.n_layers:
            return None
        rows = self._rows(prev)
        if rows is None:
            return None
        index = np.searchsorted(prev.steps, steps, side="right") - 1
        out = rows[np.clip(index, 0, len(rows) - 1)].astype(np.float32)
        out[index < 0] = np.nan
        return out

    def _empty(self, text: str) -> None:
        self.image.clear()
        self.data = np.zeros((0, 0), dtype=np.float32)
        self.shown_steps = np.zeros(0, dtype=np.int64)
        self.note.setText(text)
        self.note.setColor(self.text_colour)
        self.note.setVisible(True)
        self.note.setPos(0.0, 0.0)
        self.plot.setRange(xRange=(-1, 1), yRange=(-1, 1), padding=0)

    def draw(self) -> None:
        self._sync_layers()
        b = self.buffers
        dist = b.distributions
        rows = self._rows(dist)
        if rows is None:
            self._empty("One column per recorded step\n(training.instruments.distributions):\n"
                        "fills in as the run trains.")
            return
        steps = dist.steps
        self.caption.setText(f"{self.title} of {KIND_LABELS[self.kind]}: {short_name(b.layer_names[self.layer])}"
                             + (" (this run − previous run)" if self.difference else ""))
        if self.difference:
            previous = self._previous_at(steps)
            if previous is None:
                self._empty("No previous run with the same layers\nto compare with: train again.")
                return
            values = np.nan_to_num(rows - previous)
            limit = float(np.max(np.abs(values[-RECENT_ROWS:]))) or 1.0
            levels = (-limit, limit)
            self.image.setColorMap(self.difference_map)
            self.bar.setColorMap(self.difference_map)
        else:
            values = rows
            top = float(np.max(values[-RECENT_ROWS:])) if len(values) else 1.0
            levels = (0.0, top if top > 0 else 1.0)
            self.image.setColorMap(self.colour_map)
            self.bar.setColorMap(self.colour_map)
        self.note.setVisible(False)
        self.data = np.ascontiguousarray(values.T, dtype=np.float32)
        self.shown_steps = steps.copy()
        self.image.setImage(self.data, autoLevels=False, levels=levels)
        self.bar.setLevels(levels)
        rect = step_image_rect(steps, kind_columns(self.kind))
        self.image.setRect(rect)
        self.plot.getAxis("left").setTicks([column_ticks(self.kind)])
        if self.follow:
            self.plot.setXRange(rect.left(), rect.right(), padding=0.01)
            low, high = occupied_rows(rows[-RECENT_ROWS:])
            self.plot.setYRange(low - 0.5, high + 0.5, padding=0.02)

    # ------------------------------------------------------------------ export

    def csv_data(self) -> tuple[list[str], list[Any]]:
        return histogram_csv(self.kind, self.shown_steps, self.data)
