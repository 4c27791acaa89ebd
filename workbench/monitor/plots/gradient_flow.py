"""Gradient flow at the current step: per-layer gradient norm and update / weight ratio."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QWidget

from ..buffers import RunBuffers, safe_log10
from .base import DockPlace, PlotPanel
from .style import layer_colours, layer_pen, layer_ticks, short_name

HEALTHY_RATIO = (1e-4, 1e-2)     # update / weight ratio band (Karpathy's rule of thumb: about 1e-3)


class GradientFlowPanel(PlotPanel):
    """At the current step: per-layer gradient norm and update / weight ratio, healthy band shaded."""

    title = "Gradient flow (current step)"
    dock = DockPlace(key="flow", name="gradientFlowDock", title="Gradient flow", group=0, tab=1)
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
        self.follow_layers([self.norm_plot, self.ratio_plot], len(names))
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

