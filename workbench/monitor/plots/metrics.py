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

LEFT_AXIS_WIDTH = 58       # pixels, on the three stacked plots alike


class MetricsPanel(PlotPanel):
    """Loss and accuracy per epoch (train and validation) with event markers, and the learning
    rate actually used drawn over the planned schedule. x is in epochs throughout."""

    title = "Loss, accuracy and learning rate"
    dock = DockPlace(key="metrics", name="metricsDock", title="Loss and accuracy", group=0, tab=0)
    min_interval = 0.2

    def __init__(self, buffers: RunBuffers, parent: QWidget | None = None) -> None:
        super().__init__(buffers, parent)
        # One legend for the three plots, in a row of its own above them: never over the data,
        # and never cut by an axis in a short dock.
        self.legend = pg.LegendItem(labelTextSize="8pt", colCount=3, frame=False, verSpacing=-6)
        self.graphics.addItem(self.legend, row=0, col=0)
        self.loss_plot = self.add_plot(row=1, col=0)
        self.acc_plot = self.add_plot(row=2, col=0)
        self.lr_plot = self.add_plot(row=3, col=0)
        self.loss_plot.setLabel("left", "loss")
        self.acc_plot.setLabel("left", "acc.")
        self.lr_plot.setLabel("left", "lr")
        self.lr_plot.setToolTip("learning rate: planned schedule (grey, dashed) and the rate actually used (green)")
        self.lr_plot.setLabel("bottom", "epoch")
        # The panel sets the x range itself (0 to the newest epoch) and the rate's y range (0 to
        # its top) until the user zooms or pans, and again after Fit: pyqtgraph's auto-range on
        # three x-linked plots stalled or drifted (each plot's own x range pushed to the others).
        # Equal left-axis widths keep the linked plots' epochs aligned pixel for pixel.
        for p in (self.loss_plot, self.acc_plot, self.lr_plot):
            p.getAxis("left").setWidth(LEFT_AXIS_WIDTH)
            p.vb.disableAutoRange(pg.ViewBox.XAxis)
        self.lr_plot.vb.disableAutoRange(pg.ViewBox.YAxis)
        for p in (self.acc_plot, self.lr_plot):
            p.setXLink(self.loss_plot)
        self.loss_plot.vb.sigXRangeChanged.connect(self._range_changed)
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
                                            name="lr planned")
        self.used_lr = self.lr_plot.plot([], [], pen=pg.mkPen(QColor("#2ca02c"), width=1), name="lr used")
        self.used_lr.setZValue(1)              # over the planned schedule it usually follows exactly
        self.epoch_curves = (self.train_loss, self.val_loss, self.train_acc, self.val_acc)
        # one row: the plots keep the dock's height (the rate's two curves are named in its tooltip)
        for curve, name in ((self.step_loss, "train (per step)"), (self.train_loss, "train"),
                            (self.val_loss, "validation")):
            self.legend.addItem(curve, name)
        self.cache = BlockReducer()
        self._stacked = np.zeros((2, 0))
        self._stacked_version = -1
        self.markers: list[tuple[pg.InfiniteLine, pg.PlotItem]] = []
        self.marker_labels: list[pg.InfiniteLine] = []     # the loss plot's labelled lines, one per cluster
        self._marked: list[tuple[str, int]] = []

    def clear_run(self) -> None:
        super().clear_run()
        self.cache.clear()
        self._stacked_version = -1
        self._set_markers([])
        self.reset_zoom()

    def draw(self) -> None:
        b = self.buffers
        e = b.epochs
        ep = np.asarray(e["epoch"], dtype=np.float64)
        spe = b.steps_per_epoch
        connect = "finite"
        x = b.steps / spe
        view = slice(0, x.shape[0]) if self.follow else visible_slice(self.loss_plot, x)
        width = self.loss_plot.vb.width() / 2
        if view.start == 0 and view.stop == x.shape[0]:
            if self._stacked_version != b.version:      # versions never repeat, across runs too
                self._stacked = np.vstack([b.loss, b.learning_rate])
                self._stacked_version = b.version
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
        if self.follow:
            self._follow_data(ys[1])

    def _range_changed(self) -> None:
        if not self.follow:
            self.drawn_version = -1          # zoomed or panned: draw the new range in detail

    def _follow_data(self, used_lr: np.ndarray) -> None:
        """x from epoch 0 to the newest data; the rate from 0 to just above its largest value (a
        constant rate is one clean line, not float32 noise blown up)."""
        b = self.buffers
        ends = [float(b.steps[-1]) / b.steps_per_epoch] if b.size else []
        ends += [max(b.epochs["epoch"])] if b.epochs["epoch"] else []
        self.loss_plot.setXRange(0.0, max([1.0, *ends]), padding=0.02)
        planned = b.meta.get("planned_lr")
        tops = [float(np.nanmax(a)) for a in (used_lr, None if planned is None else np.asarray(planned[1]))
                if a is not None and np.isfinite(a).any()]
        top = max(tops) if tops and max(tops) > 0 else 1.0
        self.lr_plot.setYRange(0.0, top * 1.15, padding=0)

    def reset_zoom(self) -> None:
        """Fit: follow the data again (loss and accuracy scaled to theirs)."""
        self.follow = True
        for p in (self.loss_plot, self.acc_plot):
            p.vb.enableAutoRange(pg.ViewBox.YAxis)
        self._follow_data(self.buffers.learning_rate)
        self.drawn_version = -1

    def _set_markers(self, events: list[dict[str, Any]]) -> None:
        """A dashed line per event on the three plots; on the loss plot, events closer than a
        thirtieth of the run share one label ("early stop · best restored"), staggered in height
        from their neighbours' so that labels never pile up, and the label's tooltip lists each
        event with its epoch and message."""
        key = [(str(ev.get("kind")), int(ev.get("step", 0))) for ev in events]
        if key == self._marked:
            return
        for line, plot in self.markers:
            plot.removeItem(line)
        self.markers = []
        self.marker_labels = []
        spe = self.buffers.steps_per_epoch
        placed = sorted(((float(ev.get("step", 0)) / spe, ev) for ev in events), key=lambda pair: pair[0])
        span = max([1.0, float(self.buffers.meta.get("epochs") or 0)] + [x for x, _ in placed])
        clusters: list[list[tuple[float, dict[str, Any]]]] = []
        for x, ev in placed:
            if clusters and x - clusters[-1][0][0] <= span / 30:
                clusters[-1].append((x, ev))
            else:
                clusters.append([(x, ev)])
        heights = (0.92, 0.62)
        previous_x, height = -np.inf, 1
        for cluster in clusters:
            x0 = cluster[0][0]
            height = 1 - height if x0 - previous_x <= span / 6 else 0
            previous_x = x0
            names = list(dict.fromkeys(EVENT_LABELS.get(str(ev.get("kind")), str(ev.get("kind")))
                                       for _, ev in cluster))
            details = "\n".join(f"epoch {x:g}: {ev.get('message', ev.get('kind'))}" for x, ev in cluster)
            for i, (x, ev) in enumerate(cluster):
                kind = str(ev.get("kind", ""))
                colour = QColor(EVENT_COLOURS.get(kind, "#888888"))
                for plot in (self.loss_plot, self.acc_plot, self.lr_plot):
                    labelled = plot is self.loss_plot and i == 0
                    line = pg.InfiniteLine(x, angle=90, movable=False,
                                           pen=pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine),
                                           label=" · ".join(names) if labelled else None,
                                           labelOpts={"position": heights[height], "color": colour,
                                                      "rotateAxis": (1, 0)})
                    line.setToolTip(details)
                    plot.addItem(line, ignoreBounds=True)
                    self.markers.append((line, plot))
                    if labelled:
                        line.label.setToolTip(details)
                        self.marker_labels.append(line)
        self._marked = key

    def csv_data(self) -> tuple[list[str], list[Any]]:
        e = self.buffers.epochs
        keys = list(e)
        return keys, [e[k] for k in keys]

