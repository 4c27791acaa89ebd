"""Loss, accuracy and learning rate per epoch, with the run's events marked."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QWidget

from ..buffers import RunBuffers
from .base import DockPlace, PlotPanel
from .downsample import BlockReducer, envelope, visible_slice
from .style import EVENT_COLOURS, EVENT_LABELS


class MetricsPanel(PlotPanel):
    """Loss and accuracy per epoch (train and validation) with event markers, and the learning
    rate actually used drawn over the planned schedule. x is in epochs throughout."""

    title = "Loss, accuracy and learning rate"
    dock = DockPlace(key="metrics", name="metricsDock", title="Loss and accuracy", group=0, tab=0)
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

