"""The live plots. Each panel PULLS from ``RunBuffers`` when the monitor's timer asks it to
(STYLE.md §10): no ``setData`` per batch, pen width 1, downsampling and clip-to-view on the
long curves, ``connect="finite"`` so a NaN is a gap. Every panel can be frozen, zoomed (mouse)
and reset, and exported as PNG (what is shown) or CSV (the data behind it).

Log-scale curves are drawn from log10 values kept in the buffers, on an axis in log mode: the
logarithm of the whole history is never taken at frame rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPalette, QPen
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from .buffers import RunBuffers, safe_log10, write_csv

HEALTHY_RATIO = (1e-4, 1e-2)     # update / weight ratio band (Karpathy's rule of thumb: about 1e-3)
HEATMAP_LEVELS = (-6.0, 3.0)     # log10 gradient norm: dark = vanishing, bright = exploding
MAX_HEATMAP_COLUMNS = 1500
CLASS_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf"]
EVENT_COLOURS = {"lr_drop": "#1f77b4", "early_stopping": "#d62728", "restore_best": "#2ca02c",
                 "rollback": "#ff7f0e", "diverged": "#d62728", "unfreeze": "#9467bd"}
EVENT_LABELS = {"lr_drop": "lr ↓", "early_stopping": "early stop", "restore_best": "best restored",
                "rollback": "NaN roll-back", "diverged": "diverged", "unfreeze": "unfrozen"}


def layer_colours(n: int, dark: bool = False) -> list[QColor]:
    """One colour per layer, input (dark) → output (bright), from a sequential colormap (viridis),
    cut so that every colour stands out from the background (light or dark)."""
    cmap = pg.colormap.get("viridis")
    lo, hi = (0.3, 1.0) if dark else (0.0, 0.85)
    if n == 0:
        return []
    if n == 1:
        return [cmap.map(lo, mode="qcolor")]
    return [cmap.map(lo + (hi - lo) * i / (n - 1), mode="qcolor") for i in range(n)]


def short_name(name: str) -> str:
    """``"dense_3 (elu, 100)"`` → ``"dense_3"`` (axis ticks)."""
    return name.split(" (")[0]


def layer_label(name: str, frozen: bool, short: bool = False) -> str:
    """A layer's name for the legend and hover text, marked while transfer learning keeps it frozen."""
    text = short_name(name) if short else name
    return f"{text} (frozen)" if frozen else text


def layer_pen(colour: QColor, frozen: bool) -> QPen:
    """Width 1, cosmetic; dashed and paler for a layer kept frozen by transfer learning (it
    recedes behind the layers that learn)."""
    if frozen:
        colour = QColor(colour)
        colour.setAlpha(150)
    pen = pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine if frozen else Qt.PenStyle.SolidLine)
    pen.setCosmetic(True)
    return pen


class UnfreezeMarks:
    """Vertical lines on a plot where transfer learning unfroze its layers, kept in step with
    the run's events (the gradient-norm curves and the heatmap both show where the frozen
    stretch ended)."""

    def __init__(self, plot: pg.PlotItem) -> None:
        self.plot = plot
        self.lines: list[pg.InfiniteLine] = []
        self._steps: list[float] = []

    def update(self, run_events: list[dict[str, Any]]) -> None:
        events = [e for e in run_events if e.get("kind") == "unfreeze"]
        steps = [float(e.get("step", 0)) for e in events]
        if steps == self._steps:
            return
        for line in self.lines:
            self.plot.removeItem(line)
        self.lines = []
        colour = QColor(EVENT_COLOURS["unfreeze"])
        for x, event in zip(steps, events, strict=True):
            line = pg.InfiniteLine(x, angle=90, movable=False,
                                   pen=pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine),
                                   label=EVENT_LABELS["unfreeze"],
                                   labelOpts={"position": 0.95, "color": colour, "rotateAxis": (1, 0)})
            line.setToolTip(str(event.get("message", "")))
            self.plot.addItem(line, ignoreBounds=True)
            self.lines.append(line)
        self._steps = steps


def layer_ticks(names: Sequence[str], long: int = 5) -> list[list[tuple[int, str]]]:
    """x-axis ticks for per-layer bars: short names for a few layers, indices (0 = input side) for many."""
    if len(names) <= long:
        return [[(i, short_name(n)) for i, n in enumerate(names)]]
    return [[(i, "out" if n.startswith("output") else str(i)) for i, n in enumerate(names)]]


class BlockReducer:
    """Per-block min, max and mean of a growing (rows, n) history, kept incrementally.

    Block sizes are powers of two, so the blocks already reduced stay valid while the history
    grows (until it doubles) and a frame reduces only the new rows. NaN-aware without warnings:
    a block holding a NaN has NaN min / max (a gap with ``connect="finite"``) and the mean of
    its finite values."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.block = 0
        self.count = 0                                   # complete blocks reduced
        self.lo = self.hi = self.mean = np.zeros((0, 0))
        self.x0 = self.x1 = np.zeros(0)

    def update(self, x: np.ndarray, rows: np.ndarray, blocks: int, power_of_two: bool = True) -> int:
        """Reduce what is new for about ``blocks`` blocks over all of ``x``; returns the block size."""
        n = x.shape[0]
        want = max(n / max(int(blocks), 1), 1.0)
        b = 1 << max(math.ceil(math.log2(want)), 0) if power_of_two else math.ceil(want)
        m = n // b
        if b != self.block or m < self.count or self.lo.shape[0] != rows.shape[0]:
            self.clear()
            self.block = b
            self.lo = self.hi = self.mean = np.zeros((rows.shape[0], 0))
        if m > self.count:
            head = rows[:, self.count * b: m * b].reshape(rows.shape[0], m - self.count, b)
            finite = np.isfinite(head)
            counts = finite.sum(axis=2)
            sums = np.where(finite, head, 0.0).sum(axis=2)
            mean = np.full(sums.shape, np.nan)
            np.divide(sums, counts, out=mean, where=counts > 0)
            gaps = counts < b
            lo, hi = np.fmin.reduce(head, axis=2), np.fmax.reduce(head, axis=2)
            lo[gaps] = np.nan
            hi[gaps] = np.nan
            xb = x[self.count * b: m * b].reshape(m - self.count, b)
            self.lo = np.concatenate([self.lo, lo], axis=1)
            self.hi = np.concatenate([self.hi, hi], axis=1)
            self.mean = np.concatenate([self.mean, mean], axis=1)
            self.x0 = np.concatenate([self.x0, xb[:, 0]])
            self.x1 = np.concatenate([self.x1, xb[:, -1]])
            self.count = m
        return b

    def envelope(self, x: np.ndarray, rows: np.ndarray, blocks: int,
                 power_of_two: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Min and max of each block, interleaved, then the rows past the last whole block: what
        the curves look like at ``blocks`` pixels, from about 2 × blocks points."""
        n = x.shape[0]
        if n <= 2 * max(int(blocks), 16):
            self.clear()
            return x, rows
        b = self.update(x, rows, blocks, power_of_two)
        m = self.count
        xs = np.empty(2 * m + (n - m * b), dtype=np.float64)
        ys = np.empty((rows.shape[0], xs.shape[0]), dtype=np.float64)
        xs[0: 2 * m: 2], xs[1: 2 * m: 2] = self.x0, self.x1
        ys[:, 0: 2 * m: 2], ys[:, 1: 2 * m: 2] = self.lo, self.hi
        xs[2 * m:] = x[m * b:]
        ys[:, 2 * m:] = rows[:, m * b:]
        return xs, ys


def envelope(x: np.ndarray, rows: np.ndarray, blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """``BlockReducer.envelope`` of a slice, once (a zoomed view)."""
    return BlockReducer().envelope(x, rows, blocks, power_of_two=False)


def visible_slice(plot: pg.PlotItem, x: np.ndarray) -> slice:
    """Indices of the (sorted) x values inside the plot's current x range, one point of margin."""
    if x.shape[0] == 0 or plot.vb.autoRangeEnabled()[0]:
        return slice(0, x.shape[0])
    x0, x1 = plot.vb.viewRange()[0]
    i0 = max(int(np.searchsorted(x, x0)) - 1, 0)
    i1 = min(int(np.searchsorted(x, x1)) + 1, x.shape[0])
    return slice(i0, i1)


class GatedGraphicsLayout(pg.GraphicsLayoutWidget):
    """A GraphicsLayoutWidget that holds the worker's GUI gate while it paints (see GuiGate)."""

    gate: Any = None

    def paintEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        if self.gate is None:
            super().paintEvent(event)
            return
        with self.gate:
            super().paintEvent(event)


class PlotPanel(QWidget):
    """Base: a small tool row (freeze, reset zoom, PNG, CSV) over a pyqtgraph layout."""

    title = ""
    min_interval = 0.0                 # seconds between redraws (heavy panels draw less often)

    def __init__(self, buffers: RunBuffers, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.buffers = buffers
        self.drawn_version = -1
        self.last_draw = 0.0
        self.redraws = 0
        self.graphics = GatedGraphicsLayout()
        self.graphics.setMinimumSize(220, 160)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        tools = QHBoxLayout()
        tools.setContentsMargins(0, 0, 0, 0)
        self.caption = QLabel(self.title)
        self.caption.setObjectName("plotCaption")
        self.caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.caption.setMinimumWidth(40)
        tools.addWidget(self.caption, 1)
        self._tools = tools
        self.freeze_button = self._tool("Freeze", "Stop redrawing this plot (training goes on); click again "
                                        "to catch up", checkable=True)
        self._tool("Fit", "Reset the zoom: show all the data again (after zooming with the wheel or panning)",
                   self.reset_zoom)
        self._tool("PNG", "Export this plot as a PNG image…", self._ask_png)
        self._tool("CSV", "Export the data behind this plot as CSV…", self._ask_csv)
        tools_widget = QWidget()
        tools_widget.setLayout(tools)
        layout.addWidget(tools_widget)
        layout.addWidget(self.graphics, 1)
        self.plots: list[pg.PlotItem] = []

    def _tool(self, text: str, tip: str, slot: Any = None, checkable: bool = False) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setToolTip(tip)
        button.setAutoRaise(True)
        button.setCheckable(checkable)
        if slot is not None:
            button.clicked.connect(lambda _=False: slot())
        self._tools.addWidget(button)
        return button

    # ------------------------------------------------------------------ plots and palette

    def add_plot(self, row: int = 0, col: int = 0, title: str | None = None, size: str = "9pt") -> pg.PlotItem:
        plot = self.graphics.addPlot(row=row, col=col)
        if title:
            plot.setTitle(title, size=size)
        for name in ("left", "bottom"):
            plot.getAxis(name).enableAutoSIPrefix(False)
        # No grid: semi-transparent grid lines cost ~20 ms a frame in software rendering (measured).
        plot.setMenuEnabled(True)
        self.plots.append(plot)
        self.apply_palette()
        return plot

    def apply_palette(self) -> None:
        """Plot background and text follow the window's palette (light or dark)."""
        pal = self.palette()
        self.graphics.setBackground(pal.color(QPalette.ColorRole.Base))
        text = pal.color(QPalette.ColorRole.Text)
        for plot in self.plots:
            for name in ("left", "bottom", "right", "top"):
                axis = plot.getAxis(name)
                axis.setPen(pg.mkPen(text))
                axis.setTextPen(pg.mkPen(text))
            plot.titleLabel.setAttr("color", text.name())
            legends = [plot.legend] + [getattr(self, "legend", None)]
            for legend in legends:
                if legend is None:
                    continue
                legend.setLabelTextColor(text)
                for _, label in legend.items:
                    label.setAttr("color", text.name())
                    label.setText(label.text)

    def showEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        self.apply_palette()
        super().showEvent(event)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt override)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.apply_palette()
            self.drawn_version = -1
        super().changeEvent(event)

    @property
    def text_colour(self) -> QColor:
        return self.palette().color(QPalette.ColorRole.Text)

    @property
    def dark(self) -> bool:
        return self.palette().color(QPalette.ColorRole.Base).lightness() < 128

    # ------------------------------------------------------------------ refresh protocol

    @property
    def frozen(self) -> bool:
        return self.freeze_button.isChecked()

    def set_gate(self, gate: Any) -> None:
        self.graphics.gate = gate

    @property
    def on_screen(self) -> bool:
        """Shown and not hidden behind another tab."""
        return self.isVisible() and not self.visibleRegion().isEmpty()

    def wants_redraw(self, now: float) -> bool:
        return (not self.frozen and self.buffers.version != self.drawn_version
                and now - self.last_draw >= self.min_interval)

    def redraw(self, now: float = 0.0) -> None:
        self.draw()
        self.drawn_version = self.buffers.version
        self.last_draw = now
        self.redraws += 1

    def draw(self) -> None:
        raise NotImplementedError

    def clear_run(self) -> None:
        """A new run: forget per-run items (curves per layer...)."""
        self.drawn_version = -1

    def reset_zoom(self) -> None:
        for plot in self.plots:
            plot.enableAutoRange()

    # ------------------------------------------------------------------ export

    def csv_data(self) -> tuple[list[str], list[Any]]:
        raise NotImplementedError

    def export_png(self, path: str | Path) -> bool:
        return self.graphics.grab().save(str(path))

    def export_csv(self, path: str | Path) -> None:
        header, columns = self.csv_data()
        write_csv(path, header, columns)

    def _ask_png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, f"Export {self.title} as PNG", f"{self.file_stem()}.png",
                                              "PNG images (*.png)")
        if path:
            self.export_png(path)

    def _ask_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, f"Export {self.title} data as CSV", f"{self.file_stem()}.csv",
                                              "CSV files (*.csv)")
        if path:
            self.export_csv(path)

    def file_stem(self) -> str:
        return self.title.lower().replace(" ", "_").replace("/", "_").replace("&", "and")


# ============================================================================ 1. gradient norms


class GradientNormPanel(PlotPanel):
    """Per-layer kernel gradient norm over steps, log y, one colour per layer (input → output)."""

    title = "Gradient norm per layer"
    min_interval = 0.06

    def __init__(self, buffers: RunBuffers, parent: QWidget | None = None) -> None:
        super().__init__(buffers, parent)
        self.plot = self.add_plot()
        self.plot.setLabel("bottom", "optimizer step")
        self.plot.setLabel("left", "kernel gradient norm")
        self.plot.getAxis("left").setLogMode(False, True)
        self.plot.getAxis("left").setStyle(maxTextLevel=0)       # label the decades only (1e-3, 1e-2...)
        # The curves get a min / max envelope of the visible range at the plot's pixel width
        # (``envelope``): cheaper than pyqtgraph's own downsampling of 20 × 100k points a frame.
        self.plot.vb.sigXRangeChanged.connect(self._range_changed)
        self.cache = BlockReducer()
        # The legend sits in its own column, beside the plot, so that it never hides a curve.
        self.legend = pg.LegendItem(labelTextSize="8pt")
        self.legend.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.graphics.addItem(self.legend, row=0, col=1)
        self.graphics.ci.layout.setAlignment(self.legend, Qt.AlignmentFlag.AlignTop)
        self.curves: list[pg.PlotDataItem] = []
        self._curves_dark = False
        self._curves_frozen: list[bool] = []
        self.unfreeze_marks = UnfreezeMarks(self.plot)
        self.hover = pg.TextItem(anchor=(0, 1), border=pg.mkPen("#888"), fill=pg.mkBrush(0, 0, 0, 0))
        self.hover.setZValue(100)
        self.hover.hide()
        self.plot.addItem(self.hover, ignoreBounds=True)
        self.hover_text = ""
        self.hint = pg.TextItem("Press Train (F5): one curve per layer, input → output,\n"
                                "shows how much gradient reaches each layer at every step.\n"
                                "(A gradient of exactly 0 is drawn at 1e-12; NaN leaves a gap.)", anchor=(0.5, 0.5))
        self.plot.addItem(self.hint, ignoreBounds=True)
        self._proxy = pg.SignalProxy(self.plot.scene().sigMouseMoved, rateLimit=30, slot=self._mouse_moved)

    def _ensure_curves(self) -> None:
        names = self.buffers.layer_names
        frozen = list(self.buffers.frozen_layers)
        if len(self.curves) == len(names) and self._curves_dark == self.dark and \
                all(c.name() == n for c, n in zip(self.curves, names, strict=True)):
            if frozen != self._curves_frozen:
                self._mark_frozen(frozen)
            return
        self._curves_dark = self.dark
        for c in self.curves:
            self.plot.removeItem(c)
        self.legend.clear()
        self.curves = []
        for name, colour in zip(names, layer_colours(len(names), self.dark), strict=True):
            curve = self.plot.plot([], [], pen=layer_pen(colour, False), name=name, connect="finite")
            self.curves.append(curve)
            self.legend.addItem(curve, layer_label(name, False, short=len(names) > 8))
        self._curves_frozen = [False] * len(names)
        self._mark_frozen(frozen)
        self.apply_palette()

    def _mark_frozen(self, frozen: list[bool]) -> None:
        """Layers that transfer learning keeps fixed: dashed curve, "(frozen)" in the legend; back
        to a solid line and the plain name when they are unfrozen."""
        names = self.buffers.layer_names
        colours = layer_colours(len(names), self.dark)
        for i, (curve, (sample, label)) in enumerate(zip(self.curves, self.legend.items, strict=True)):
            if frozen[i] == self._curves_frozen[i]:
                continue
            curve.setPen(layer_pen(colours[i], frozen[i]))
            label.setText(layer_label(names[i], frozen[i], short=len(names) > 8))
            sample.update()
        self._curves_frozen = frozen

    def clear_run(self) -> None:
        super().clear_run()
        self.cache.clear()
        if self.frozen:
            return
        self._ensure_curves()
        for c in self.curves:
            c.setData([], [])
        self.hover.hide()
        self.plot.enableAutoRange()

    def _range_changed(self) -> None:
        if not self.plot.vb.autoRangeEnabled()[0]:
            self.drawn_version = -1          # zoomed or panned: draw the new range in detail

    def draw(self) -> None:
        self._ensure_curves()
        self.unfreeze_marks.update(self.buffers.events)
        x = self.buffers.steps
        self.hint.setVisible(x.shape[0] == 0)
        if x.shape[0] == 0:
            for curve in self.curves:
                curve.setData([], [])
            self.plot.setRange(xRange=(0, 100), yRange=(-4, 1), padding=0)
            self.hint.setPos(50, -1.5)
            self.hint.setColor(self.text_colour)
            self.plot.enableAutoRange()
            return
        view = visible_slice(self.plot, x)
        width = self.plot.vb.width() / 2
        if view.start == 0 and view.stop == x.shape[0]:
            xs, ys = self.cache.envelope(x, self.buffers.log_grad_norm(), width)
        else:
            xs, ys = envelope(x[view], self.buffers.log_grad_norm()[:, view], width)
        for i, curve in enumerate(self.curves):
            curve.setData(xs, ys[i], connect="finite")

    @property
    def unfreeze_lines(self) -> list[pg.InfiniteLine]:
        """Where transfer learning unfroze its layers (their curves are solid from then on, all
        the way back: the line keeps where the frozen part ended)."""
        return self.unfreeze_marks.lines

    def curve_data(self, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """All recorded (step, log10 norm) of one layer (the curves themselves hold an envelope)."""
        return self.buffers.steps, self.buffers.log_grad_norm()[layer]

    def csv_data(self) -> tuple[list[str], list[Any]]:
        b = self.buffers
        return ["step", *[f"grad_norm[{n}]" for n in b.layer_names]], \
            [b.steps.astype(np.int64), *[b.layer("grad_norm")[:, i] for i in range(b.n_layers)]]

    def _mouse_moved(self, args: Sequence[Any]) -> None:
        pos = args[0]
        vb = self.plot.vb
        if self.buffers.size == 0 or not self.plot.sceneBoundingRect().contains(pos):
            self.hover.hide()
            return
        point = vb.mapSceneToView(pos)
        self.show_hover(point.x(), point.y())

    def show_hover(self, x: float, y_log: float) -> str:
        """Describe the layer whose curve is nearest to (step x, log10 norm y); returns the text."""
        b = self.buffers
        steps = b.steps
        if b.size == 0:
            return ""
        i = int(np.clip(np.searchsorted(steps, x), 0, b.size - 1))
        if i > 0 and abs(steps[i - 1] - x) < abs(steps[i] - x):
            i -= 1
        column = b.log_grad_norm()[:, i]
        if not np.isfinite(column).any():
            text = f"step {int(steps[i])}: not finite (NaN)"
            layer = -1
        else:
            layer = int(np.nanargmin(np.abs(np.where(np.isfinite(column), column, np.inf) - y_log)))
            value = float(b.layer("grad_norm")[i, layer])
            name = layer_label(b.layer_names[layer], b.frozen_layers[layer])
            text = f"{name}\nstep {int(steps[i])}: ‖g‖ = {value:.3g}"
        self.hover.setText(text)
        if layer >= 0:
            self.hover.setColor(layer_colours(b.n_layers, self.dark)[layer])
        self.hover.setPos(QPointF(float(steps[i]), float(column[layer]) if layer >= 0 else y_log))
        self.hover.show()
        self.hover_text = text
        return text


# ============================================================================ 2. heatmap


class HeatmapPanel(PlotPanel):
    """Layer × step image of log10 gradient norm: vanishing is a dark band in the lower layers."""

    title = "Gradient heatmap (log10 norm)"
    min_interval = 0.25

    def __init__(self, buffers: RunBuffers, parent: QWidget | None = None) -> None:
        super().__init__(buffers, parent)
        self.plot = self.add_plot()
        self.plot.setLabel("bottom", "optimizer step")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        cmap = pg.colormap.get("inferno")
        self.image.setColorMap(cmap)
        self.image.setLevels(HEATMAP_LEVELS)
        self.bar = pg.ColorBarItem(values=HEATMAP_LEVELS, colorMap=cmap, interactive=False, width=12,
                                   label="log10 ‖g‖")
        self.bar.setImageItem(self.image, insert_in=self.plot)
        self.data: np.ndarray = np.zeros((0, 0))
        self.block = 1
        self.reducer = BlockReducer()
        self.unfreeze_marks = UnfreezeMarks(self.plot)
        self.row_labels: list[str] = []         # the rows' names, input layer first

    def clear_run(self) -> None:
        super().clear_run()
        self.reducer.clear()

    def draw(self) -> None:
        b = self.buffers
        self.unfreeze_marks.update(b.events)
        if b.size == 0:
            self.image.clear()
            return
        logs = b.log_grad_norm()
        if b.size <= MAX_HEATMAP_COLUMNS:
            self.data, self.block = logs, 1
            x1 = float(b.steps[-1]) + 1
        else:                                   # block means, whole blocks only (rows past them wait)
            self.block = self.reducer.update(b.steps, logs, MAX_HEATMAP_COLUMNS // 2)
            self.data = self.reducer.mean
            x1 = float(self.reducer.x1[-1]) + 1
        self.image.setImage(self.data, autoLevels=False, levels=HEATMAP_LEVELS)
        x0 = float(b.steps[0])
        self.image.setRect(QRectF(x0, -0.5, max(x1 - x0, 1.0), b.n_layers))
        # a row whose layer transfer learning keeps frozen is labelled so, like its curve's legend
        self.row_labels = [layer_label(n, f, short=True) for n, f in zip(b.layer_names, b.frozen_layers, strict=True)]
        self.plot.getAxis("left").setTicks([list(enumerate(self.row_labels))])

    def csv_data(self) -> tuple[list[str], list[Any]]:
        b = self.buffers
        return ["step", *[f"log10_grad_norm[{n}]" for n in b.layer_names]], \
            [b.steps.astype(np.int64), *list(b.log_grad_norm())]


# ============================================================================ 3. gradient flow


class GradientFlowPanel(PlotPanel):
    """At the current step: per-layer gradient norm and update / weight ratio, healthy band shaded."""

    title = "Gradient flow (current step)"
    min_interval = 0.1

    def __init__(self, buffers: RunBuffers, parent: QWidget | None = None) -> None:
        super().__init__(buffers, parent)
        self.norm_plot = self.add_plot(row=0, col=0, title="gradient norm")
        self.ratio_plot = self.add_plot(row=1, col=0, title="update / weight ratio (healthy band shaded)")
        for p in (self.norm_plot, self.ratio_plot):
            p.getAxis("left").setLogMode(False, True)
        lo, hi = (math.log10(v) for v in HEALTHY_RATIO)
        band = pg.LinearRegionItem((lo, hi), orientation="horizontal", movable=False,
                                   brush=pg.mkBrush(60, 180, 75, 50), pen=pg.mkPen(None))
        band.setToolTip("healthy band: update / weight ratio between 1e-4 and 1e-2 (about 1e-3)")
        self.ratio_plot.addItem(band)
        self.ratio_plot.addItem(pg.InfiniteLine(-3, angle=0, pen=pg.mkPen((60, 160, 75), width=1,
                                                                           style=Qt.PenStyle.DashLine)))
        self.norm_bars: pg.BarGraphItem | None = None
        self.ratio_bars: pg.BarGraphItem | None = None
        self.values: dict[str, np.ndarray] = {}

    def _bars(self, plot: pg.PlotItem, old: pg.BarGraphItem | None, logs: np.ndarray, floor: float,
              colours: list[QColor], frozen: list[bool]) -> pg.BarGraphItem:
        if old is not None:
            plot.removeItem(old)
        heights = np.where(np.isfinite(logs), logs - floor, 0.0)
        # a layer kept frozen by transfer learning: hatched in its colour, outlined
        pairs = list(zip(colours, frozen, strict=True))
        brushes = [QBrush(c, Qt.BrushStyle.BDiagPattern) if f else QBrush(c) for c, f in pairs]
        pens = [layer_pen(c, False) if f else pg.mkPen(None) for c, f in pairs]
        bars = pg.BarGraphItem(x=np.arange(len(logs)), height=heights, y0=floor, width=0.7,
                               brushes=brushes, pens=pens)
        plot.addItem(bars)
        return bars

    def draw(self) -> None:
        b = self.buffers
        names = b.layer_names
        if b.size == 0:
            for plot, bars in ((self.norm_plot, self.norm_bars), (self.ratio_plot, self.ratio_bars)):
                if bars is not None:
                    plot.removeItem(bars)
            self.norm_bars = self.ratio_bars = None
            self.norm_plot.setRange(yRange=(-4, 1), xRange=(-0.5, max(len(names), 1) - 0.5))
            self.ratio_plot.setRange(yRange=(-6, 0), xRange=(-0.5, max(len(names), 1) - 0.5))
            return
        norms, ratios = b.last("grad_norm"), b.last("update_ratio")
        self.values = {"grad_norm": norms, "update_ratio": ratios}
        colours = layer_colours(len(names), self.dark)
        ln, lr = safe_log10(norms), safe_log10(ratios)
        floor_n = math.floor(np.nanmin(ln)) - 1 if np.isfinite(ln).any() else -8
        floor_r = min(math.floor(np.nanmin(lr)) - 1, -5) if np.isfinite(lr).any() else -6
        frozen = list(b.frozen_layers)
        self.norm_bars = self._bars(self.norm_plot, self.norm_bars, ln, floor_n, colours, frozen)
        self.ratio_bars = self._bars(self.ratio_plot, self.ratio_bars, lr, floor_r, colours, frozen)
        ticks = layer_ticks(names)
        for p in (self.norm_plot, self.ratio_plot):
            p.getAxis("bottom").setTicks(ticks)
        step = int(b.steps[-1]) if b.size else 0
        caption = f"{self.title.split(' (')[0]} at step {step}"
        if any(frozen):
            caption += "; hatched: frozen (" + ", ".join(short_name(n) for n, f in zip(names, frozen, strict=True)
                                                         if f) + ")"
        self.caption.setText(caption)
        self.caption.setToolTip(caption)   # the dock may be narrower than the caption

    def csv_data(self) -> tuple[list[str], list[Any]]:
        b = self.buffers
        return ["layer", "grad_norm", "update_ratio", "frozen"], \
            [b.layer_names, b.last("grad_norm"), b.last("update_ratio"), [int(f) for f in b.frozen_layers]]


# ============================================================================ 4. loss, accuracy, learning rate


class MetricsPanel(PlotPanel):
    """Loss and accuracy per epoch (train and validation) with event markers, and the learning
    rate actually used drawn over the planned schedule. x is in epochs throughout."""

    title = "Loss, accuracy and learning rate"
    min_interval = 0.2

    def __init__(self, buffers: RunBuffers, parent: QWidget | None = None) -> None:
        super().__init__(buffers, parent)
        self.loss_plot = self.add_plot(row=0, col=0)
        self.acc_plot = self.add_plot(row=1, col=0)
        self.lr_plot = self.add_plot(row=2, col=0)
        self.loss_plot.setLabel("left", "loss")
        self.acc_plot.setLabel("left", "acc.")
        self.lr_plot.setLabel("left", "lr")
        self.lr_plot.setToolTip("learning rate: planned schedule (dashed) and the rate actually used")
        self._lr_auto = True
        self.lr_plot.setLabel("bottom", "epoch")
        for p in (self.acc_plot, self.lr_plot):
            p.setXLink(self.loss_plot)
        self.loss_plot.addLegend(offset=(-8, 8), labelTextSize="8pt")
        self.acc_plot.addLegend(offset=(-8, -8), labelTextSize="8pt")
        self.lr_plot.addLegend(offset=(-8, 8), labelTextSize="8pt")
        blue, orange = QColor("#1f77b4"), QColor("#ff7f0e")
        faint = QColor(blue)
        faint.setAlpha(70)
        self.step_loss = self.loss_plot.plot([], [], pen=pg.mkPen(faint, width=1), name="train (per step)")
        self.train_loss = self.loss_plot.plot([], [], pen=pg.mkPen(blue, width=1), symbol="o", symbolSize=4,
                                              symbolBrush=blue, symbolPen=None, name="train")
        self.val_loss = self.loss_plot.plot([], [], pen=pg.mkPen(orange, width=1), symbol="o", symbolSize=4,
                                            symbolBrush=orange, symbolPen=None, name="validation")
        self.train_acc = self.acc_plot.plot([], [], pen=pg.mkPen(blue, width=1), symbol="o", symbolSize=4,
                                            symbolBrush=blue, symbolPen=None, name="train")
        self.val_acc = self.acc_plot.plot([], [], pen=pg.mkPen(orange, width=1), symbol="o", symbolSize=4,
                                          symbolBrush=orange, symbolPen=None, name="validation")
        grey = QColor(128, 128, 128)
        self.planned_lr = self.lr_plot.plot([], [], pen=pg.mkPen(grey, width=1, style=Qt.PenStyle.DashLine),
                                            name="planned")
        self.used_lr = self.lr_plot.plot([], [], pen=pg.mkPen(QColor("#2ca02c"), width=1), name="used")
        self.epoch_curves = (self.train_loss, self.val_loss, self.train_acc, self.val_acc)
        self.cache = BlockReducer()
        self._stacked = np.zeros((2, 0))
        self._stacked_version = -1
        self.markers: list[tuple[pg.InfiniteLine, pg.PlotItem]] = []
        self._marked: list[tuple[str, int]] = []

    def clear_run(self) -> None:
        super().clear_run()
        self.cache.clear()
        self._set_markers([])
        self.reset_zoom()

    def draw(self) -> None:
        b = self.buffers
        e = b.epochs
        ep = np.asarray(e["epoch"], dtype=np.float64)
        spe = b.steps_per_epoch
        connect = "finite"
        x = b.steps / spe
        view = visible_slice(self.loss_plot, x)
        width = self.loss_plot.vb.width() / 2
        if view.start == 0 and view.stop == x.shape[0]:
            if self._stacked.shape[1] < x.shape[0] or self._stacked_version != b.size:
                self._stacked = np.vstack([b.loss, b.learning_rate])
                self._stacked_version = b.size
            xs, ys = self.cache.envelope(x, self._stacked, width)
        else:
            xs, ys = envelope(x[view], np.vstack([b.loss[view], b.learning_rate[view]]), width)
        self.step_loss.setData(xs, ys[0], connect=connect)
        self.used_lr.setData(xs, ys[1], connect=connect)
        symbols = len(ep) <= 60          # markers help with a few epochs and cost much with many
        for curve in self.epoch_curves:
            curve.setSymbol("o" if symbols else None)
        self.train_loss.setData(ep, np.asarray(e["loss"]), connect=connect)
        self.val_loss.setData(ep, np.asarray(e["val_loss"]), connect=connect)
        self.train_acc.setData(ep, np.asarray(e["accuracy"]), connect=connect)
        self.val_acc.setData(ep, np.asarray(e["val_accuracy"]), connect=connect)
        planned = b.meta.get("planned_lr")
        if planned is not None:
            self.planned_lr.setData(np.asarray(planned[0]), np.asarray(planned[1]))
        else:
            self.planned_lr.setData([], [])
        self._set_markers(b.events)
        if self._lr_auto:
            tops = [np.nanmax(a) for a in (ys[1], planned[1] if planned is not None else None)
                    if a is not None and np.isfinite(a).any()]
            if tops:
                self.lr_plot.setYRange(0, max(tops) * 1.15, padding=0)

    def reset_zoom(self) -> None:
        super().reset_zoom()
        self._lr_auto = True

    def _set_markers(self, events: list[dict[str, Any]]) -> None:
        key = [(str(ev.get("kind")), int(ev.get("step", 0))) for ev in events]
        if key == self._marked:
            return
        for line, plot in self.markers:
            plot.removeItem(line)
        self.markers = []
        spe = self.buffers.steps_per_epoch
        for ev in events:
            kind = str(ev.get("kind", ""))
            colour = QColor(EVENT_COLOURS.get(kind, "#888888"))
            x = float(ev.get("step", 0)) / spe
            for plot in (self.loss_plot, self.acc_plot, self.lr_plot):
                label = EVENT_LABELS.get(kind, kind) if plot is self.loss_plot else None
                line = pg.InfiniteLine(x, angle=90, movable=False,
                                       pen=pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine),
                                       label=label, labelOpts={"position": 0.9, "color": colour, "rotateAxis": (1, 0)})
                line.setToolTip(str(ev.get("message", kind)))
                plot.addItem(line, ignoreBounds=True)
                self.markers.append((line, plot))
        self._marked = key

    def csv_data(self) -> tuple[list[str], list[Any]]:
        e = self.buffers.epochs
        keys = list(e)
        return keys, [e[k] for k in keys]


# ============================================================================ 5. activations


class ActivationPanel(PlotPanel):
    """Per layer, at the current step: activation mean ± std, dead and saturated fractions."""

    title = "Activations (current step)"
    min_interval = 0.2

    def __init__(self, buffers: RunBuffers, parent: QWidget | None = None) -> None:
        super().__init__(buffers, parent)
        self.stat_plot = self.add_plot(row=0, col=0, title="mean ± std of each layer's output")
        self.frac_plot = self.add_plot(row=1, col=0, title="dead (ReLU) and saturated (σ, tanh) units")
        self.frac_plot.setYRange(0, 1)
        self.frac_plot.addLegend(offset=(-8, 8), labelTextSize="8pt")
        self.frac_plot.setXLink(self.stat_plot)
        self.errors = pg.ErrorBarItem(x=np.zeros(0), y=np.zeros(0), height=np.zeros(0), beam=0.25,
                                      pen=pg.mkPen("#1f77b4", width=1))
        self.means = pg.ScatterPlotItem(size=7, brush=pg.mkBrush("#1f77b4"), pen=None)
        self.stat_plot.addItem(self.errors)
        self.stat_plot.addItem(self.means)
        self.stat_plot.addItem(pg.InfiniteLine(0, angle=0, pen=pg.mkPen((128, 128, 128), width=1)))
        self.dead = pg.BarGraphItem(x=[], height=[], width=0.35, brush="#d62728", name="dead")
        self.saturated = pg.BarGraphItem(x=[], height=[], width=0.35, brush="#ff7f0e", name="saturated")
        self.frac_plot.addItem(self.dead)
        self.frac_plot.addItem(self.saturated)

    def draw(self) -> None:
        b = self.buffers
        n = b.n_layers
        x = np.arange(n, dtype=np.float64)
        if b.size == 0:
            self.errors.setData(x=np.zeros(0), y=np.zeros(0), height=np.zeros(0))
            self.means.setData(x=[], y=[])
            self.dead.setOpts(x=[], height=[])
            self.saturated.setOpts(x=[], height=[])
            self.stat_plot.setRange(xRange=(-0.5, max(n, 1) - 0.5), yRange=(-1, 1))
            return
        mean, std = b.last("activation_mean"), b.last("activation_std")
        ok = np.isfinite(mean) & np.isfinite(std)
        self.errors.setData(x=x[ok], y=mean[ok], height=2 * std[ok])
        self.means.setData(x=x[ok], y=mean[ok])
        dead = np.nan_to_num(b.last("dead_fraction"))
        sat = np.nan_to_num(b.last("saturated_fraction"))
        self.dead.setOpts(x=x - 0.18, height=dead)
        self.saturated.setOpts(x=x + 0.18, height=sat)
        ticks = layer_ticks(b.layer_names)
        self.stat_plot.getAxis("bottom").setTicks(ticks)
        self.frac_plot.getAxis("bottom").setTicks(ticks)

    def csv_data(self) -> tuple[list[str], list[Any]]:
        b = self.buffers
        return ["layer", "activation_mean", "activation_std", "dead_fraction", "saturated_fraction"], \
            [b.layer_names, *[b.last(q) for q in ("activation_mean", "activation_std", "dead_fraction",
                                                   "saturated_fraction")]]


# ============================================================================ 6. confusion matrix


class ConfusionPanel(PlotPanel):
    """Validation confusion matrix (rows: true class, columns: predicted), refreshed each epoch."""

    title = "Confusion matrix (validation)"

    def __init__(self, buffers: RunBuffers, parent: QWidget | None = None) -> None:
        super().__init__(buffers, parent)
        self.plot = self.add_plot()
        self.plot.setLabel("bottom", "predicted class")
        self.plot.setLabel("left", "true class")
        self.plot.setAspectLocked(True)
        self.plot.invertY(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get("CET-L12"))
        self.plot.addItem(self.image)
        self.labels: list[pg.TextItem] = []
        self.drawn_extras = -1
        self.note = pg.TextItem("classification only", anchor=(0.5, 0.5))
        self.plot.addItem(self.note)

    def wants_redraw(self, now: float) -> bool:
        return not self.frozen and self.drawn_extras != self.buffers.extras_version

    def redraw(self, now: float = 0.0) -> None:
        super().redraw(now)
        self.drawn_extras = self.buffers.extras_version

    def clear_run(self) -> None:
        super().clear_run()
        self.drawn_extras = -1

    def draw(self) -> None:
        m = self.buffers.confusion
        if m is None or m.size == 0:
            self.image.clear()
            for t in self.labels:
                t.hide()
            self.note.setVisible(True)
            self.note.setColor(self.text_colour)
            self.note.setText("The confusion matrix on the validation split appears\nafter the first epoch "
                              "(classification only).")
            self.note.setPos(0.5, 0.5)
            self.plot.setRange(xRange=(-0.5, 1.5), yRange=(-0.5, 1.5), padding=0)
            return
        self.note.setVisible(False)
        k = m.shape[0]
        rows = m.sum(axis=1, keepdims=True)
        share = np.divide(m, rows, out=np.zeros(m.shape, dtype=np.float64), where=rows > 0)
        self.image.setImage(share, autoLevels=False, levels=(0.0, 1.0))
        self.image.setRect(QRectF(-0.5, -0.5, k, k))
        show_text = k <= 12
        while len(self.labels) < k * k:
            item = pg.TextItem(anchor=(0.5, 0.5))
            self.plot.addItem(item)
            self.labels.append(item)
        for idx, item in enumerate(self.labels):
            i, j = divmod(idx, k)
            if idx >= k * k or not show_text:
                item.hide()
                continue
            item.setText(str(int(m[i, j])))
            item.setColor(QColor("black") if share[i, j] < 0.6 else QColor("white"))
            item.setPos(j, i)
            item.show()
        names = self.buffers.meta.get("class_names") or [str(i) for i in range(k)]
        ticks = [[(i, str(names[i])[:10]) for i in range(min(k, len(names)))]]
        self.plot.getAxis("bottom").setTicks(ticks)
        self.plot.getAxis("left").setTicks(ticks)
        total = m.sum()
        acc = np.trace(m) / total if total else float("nan")
        self.caption.setText(f"{self.title}: accuracy {acc:.1%} of {int(total)}")
        self.plot.setRange(xRange=(-0.5, k - 0.5), yRange=(-0.5, k - 0.5), padding=0.02)

    def csv_data(self) -> tuple[list[str], list[Any]]:
        m = self.buffers.confusion
        if m is None:
            return ["true\\predicted"], []
        names = self.buffers.meta.get("class_names") or [str(i) for i in range(m.shape[0])]
        return ["true\\predicted", *map(str, names)], [list(map(str, names)), *[m[:, j] for j in range(m.shape[1])]]


# ============================================================================ 7. decision boundary


class BoundaryPanel(PlotPanel):
    """For 2-D datasets: predicted class over the plane, with the training points on top."""

    title = "Decision boundary"

    def __init__(self, buffers: RunBuffers, parent: QWidget | None = None) -> None:
        super().__init__(buffers, parent)
        self.plot = self.add_plot()
        self.plot.setAspectLocked(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.points = pg.ScatterPlotItem(size=5, pen=pg.mkPen(0, 0, 0, 160, width=1))
        self.val_points = pg.ScatterPlotItem(size=6, symbol="t", pen=pg.mkPen(0, 0, 0, 200, width=1))
        self.plot.addItem(self.points)
        self.plot.addItem(self.val_points)
        self.note = pg.TextItem("", anchor=(0.5, 0.5))
        self.plot.addItem(self.note)
        self.drawn_extras = -1
        self._points_for: object = None

    def wants_redraw(self, now: float) -> bool:
        return not self.frozen and (self.drawn_extras != self.buffers.extras_version
                                    or self._points_for is not self.buffers.meta.get("points"))

    def redraw(self, now: float = 0.0) -> None:
        super().redraw(now)
        self.drawn_extras = self.buffers.extras_version

    def clear_run(self) -> None:
        super().clear_run()
        self.drawn_extras = -1
        self._points_for = None

    @property
    def available(self) -> bool:
        return self.buffers.meta.get("points") is not None

    def draw(self) -> None:
        pts = self.buffers.meta.get("points")
        if pts is None:
            self.image.clear()
            self.points.clear()
            self.val_points.clear()
            dataset = self.buffers.meta.get("dataset") or "this dataset"
            self.note.setText(f"The decision boundary is drawn for 2-D datasets\n(spirals, moons, circles, xor, "
                              f"blobs); {dataset} is not one.")
            self.note.setColor(self.text_colour)
            self.note.setVisible(True)
            self.note.setPos(0, 0)
            self.plot.setRange(xRange=(-1, 1), yRange=(-1, 1), padding=0)
            self._points_for = None
            return
        self.note.setVisible(False)
        colours = [QColor(c) for c in CLASS_COLOURS]
        if self._points_for is not pts:
            brushes = [pg.mkBrush(colours[int(c) % len(colours)]) for c in pts["y"]]
            self.points.setData(pos=pts["X"], brush=brushes)
            vbrushes = [pg.mkBrush(colours[int(c) % len(colours)]) for c in pts["y_val"]]
            self.val_points.setData(pos=pts["X_val"], brush=vbrushes)
            (x0, x1), (y0, y1) = pts["bounds"]
            self.plot.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)
            self._points_for = pts
        probs = self.buffers.boundary
        if probs is None:
            self.image.clear()
            return
        k = probs.shape[2]
        palette = np.array([[QColor(c).red(), QColor(c).green(), QColor(c).blue()]
                            for c in (CLASS_COLOURS * (k // len(CLASS_COLOURS) + 1))[:k]], dtype=np.float32)
        rgb = np.tensordot(np.nan_to_num(probs), palette, axes=([2], [0]))
        base = 40.0 if self.dark else 255.0
        confidence = np.nan_to_num(probs.max(axis=2))[..., None]
        alpha = 0.25 + 0.45 * np.clip((confidence - 1 / k) / (1 - 1 / k), 0, 1)
        image = (base * (1 - alpha) + rgb * alpha).clip(0, 255).astype(np.uint8)
        self.image.setImage(image, autoLevels=False, levels=(0, 255))
        (x0, x1), (y0, y1) = pts["bounds"]
        self.image.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))

    def csv_data(self) -> tuple[list[str], list[Any]]:
        pts = self.buffers.meta.get("points")
        probs = self.buffers.boundary
        if pts is None or probs is None:
            return ["x", "y"], []
        (x0, x1), (y0, y1) = pts["bounds"]
        n = probs.shape[0]
        gx, gy = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
        flat = probs.reshape(-1, probs.shape[2])
        return ["x", "y", *[f"p_class_{c}" for c in range(flat.shape[1])]], \
            [gx.ravel(), gy.ravel(), *[flat[:, c] for c in range(flat.shape[1])]]
