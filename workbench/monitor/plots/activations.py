"""Activations at the current step: each layer's output mean ± std, dead and saturated units."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from ..buffers import RunBuffers
from .base import DockPlace, PlotPanel
from .style import layer_ticks


class ActivationPanel(PlotPanel):
    """Per layer, at the current step: activation mean ± std, dead and saturated fractions."""

    title = "Activations (current step)"
    dock = DockPlace(key="activations", name="activationsDock", title="Activations", group=0, tab=2)
    min_interval = 0.2

    def __init__(self, buffers: RunBuffers, parent: QWidget | None = None) -> None:
        super().__init__(buffers, parent)
        self.stat_plot = self.add_plot(row=0, col=0, title="mean ± std of each layer's output")
        self.legend = pg.LegendItem(labelTextSize="8pt", colCount=2, frame=False)   # above the bars, not on them
        self.graphics.addItem(self.legend, row=1, col=0)
        self.frac_plot = self.add_plot(row=2, col=0, title="dead (ReLU) and saturated (σ, tanh) units")
        self.frac_plot.setYRange(0, 1)
        for plot in (self.stat_plot, self.frac_plot):
            plot.getAxis("left").setWidth(40)       # equal widths: the linked plots' layers line up
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
        self.legend.addItem(self.dead, "dead")
        self.legend.addItem(self.saturated, "saturated")

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
        self.follow_layers([self.stat_plot], n)         # every layer, not the range of the empty plot

    def csv_data(self) -> tuple[list[str], list[Any]]:
        b = self.buffers
        return ["layer", "activation_mean", "activation_std", "dead_fraction", "saturated_fraction"], \
            [b.layer_names, *[b.last(q) for q in ("activation_mean", "activation_std", "dead_fraction",
                                                   "saturated_fraction")]]

