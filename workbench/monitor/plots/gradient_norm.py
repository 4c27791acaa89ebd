"""The central plot: each layer's kernel gradient norm at every step, on a log axis."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QSizePolicy, QWidget

from ..buffers import RunBuffers
from .base import PlotPanel
from .downsample import BlockReducer, envelope, visible_slice
from .style import UnfreezeMarks, layer_colours, layer_label, layer_pen


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
        # With clipping by norm or global norm the curves are the post-clip norms, and no layer's
        # can rise above the threshold: drawn as a dashed line.
        self.clip_line = pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen("#c0392b", style=Qt.PenStyle.DashLine),
                                         label="clip threshold", labelOpts={"position": 0.05, "color": "#c0392b"})
        self.clip_line.hide()
        self.plot.addItem(self.clip_line, ignoreBounds=True)
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

    def _show_clip_threshold(self) -> None:
        mode, threshold = self.buffers.meta.get("gradient_clip", ("none", float("nan")))
        shown = mode in ("norm", "global_norm") and threshold > 0
        if shown:
            self.clip_line.setPos(float(np.log10(threshold)))
            self.clip_line.label.setFormat(f"clip threshold {threshold:g} ({mode}; curves after clipping)")
        self.clip_line.setVisible(shown)

    def draw(self) -> None:
        self._ensure_curves()
        self._show_clip_threshold()
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

