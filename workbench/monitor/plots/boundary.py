"""The decision boundary of a 2-D dataset: the predicted class over the plane, points on top."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QWidget

from ..buffers import RunBuffers
from .base import DockPlace, PlotPanel

CLASS_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf"]


class BoundaryPanel(PlotPanel):
    """For 2-D datasets: predicted class over the plane, with the training points on top."""

    title = "Decision boundary"
    dock = DockPlace(key="boundary", name="boundaryDock", title="Decision boundary", group=1, tab=1)

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

    def comes_forward(self) -> bool:
        return self.available          # a 2-D dataset: show its decision boundary

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
