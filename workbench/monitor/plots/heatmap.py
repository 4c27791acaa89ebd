"""The gradient heatmap: layer × step, coloured by log10 gradient norm (vanishing is a dark band)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QWidget

from ..buffers import RunBuffers
from .base import DockPlace, PlotPanel
from .downsample import BlockReducer
from .style import UnfreezeMarks, layer_label

HEATMAP_LEVELS = (-6.0, 3.0)     # log10 gradient norm: dark = vanishing, bright = exploding
MAX_HEATMAP_COLUMNS = 1500


class HeatmapPanel(PlotPanel):
    """Layer × step image of log10 gradient norm: vanishing is a dark band in the lower layers."""

    title = "Gradient heatmap (log10 norm)"
    dock = DockPlace(key="heatmap", name="heatmapDock", title="Gradient heatmap", group=1, tab=0)
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
        # Short lines: the hint stays inside the plot of a dock at its narrowest (one long line was
        # cut at both sides there).
        self.note = pg.TextItem("One row per layer,\none column per step:\nfills in as the run trains.",
                                anchor=(0.5, 0.5))
        self.plot.addItem(self.note, ignoreBounds=True)

    def clear_run(self) -> None:
        super().clear_run()
        self.reducer.clear()

    def draw(self) -> None:
        b = self.buffers
        self.unfreeze_marks.update(b.events)
        empty = b.size == 0
        self.note.setVisible(empty)
        for name in ("left", "bottom"):         # no made-up ±0.4 ticks on an empty plot
            self.plot.getAxis(name).setStyle(showValues=not empty)
        if empty:
            self.image.clear()
            self.note.setColor(self.text_colour)
            self.note.setPos(0.0, 0.0)
            self.plot.setRange(xRange=(-1, 1), yRange=(-1, 1), padding=0)
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

