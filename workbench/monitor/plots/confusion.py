"""The validation confusion matrix, refreshed each epoch (classification only)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QFont, QFontMetricsF
from PySide6.QtWidgets import QWidget

from ..buffers import RunBuffers
from .base import DockPlace, PlotPanel

#: The counts' font, in pixels: at most the plots' usual size, and none when a cell is too small to read.
LABEL_PIXELS = (7, 12)
#: Counts are written in the cells of a matrix of at most this many classes (the colours alone above).
MAX_LABELLED_CLASSES = 12


class ConfusionPanel(PlotPanel):
    """Validation confusion matrix (rows: true class, columns: predicted), refreshed each epoch."""

    title = "Confusion matrix (validation)"
    dock = DockPlace(key="confusion", name="confusionDock", title="Confusion matrix", group=1, tab=2)

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
        self.label_pixels = 0           # the counts' font size now (0: hidden, the cells are too small)
        # A count is text of a fixed size on a cell that scales with the dock: refit on a resize or zoom.
        self.plot.getViewBox().sigResized.connect(self.fit_labels)
        self.plot.getViewBox().sigRangeChanged.connect(self.fit_labels)

    def wants_redraw(self, now: float) -> bool:
        return not self.frozen and self.drawn_extras != self.buffers.extras_version

    def redraw(self, now: float = 0.0) -> None:
        super().redraw(now)
        self.drawn_extras = self.buffers.extras_version

    def clear_run(self) -> None:
        super().clear_run()
        self.drawn_extras = -1

    def comes_forward(self) -> bool:
        return bool(self.buffers.meta.get("classification"))

    def draw(self) -> None:
        m = self.buffers.confusion
        if m is None or m.size == 0:
            self.image.clear()
            for t in self.labels:
                t.hide()
            self.note.setVisible(True)
            self.note.setColor(self.text_colour)
            self.note.setText("Appears after the first epoch\n(validation split,\nclassification only)")
            self.note.setPos(0.5, 0.5)
            self.plot.setRange(xRange=(-0.5, 1.5), yRange=(-0.5, 1.5), padding=0)
            return
        self.note.setVisible(False)
        k = m.shape[0]
        rows = m.sum(axis=1, keepdims=True)
        share = np.divide(m, rows, out=np.zeros(m.shape, dtype=np.float64), where=rows > 0)
        self.image.setImage(share, autoLevels=False, levels=(0.0, 1.0))
        self.image.setRect(QRectF(-0.5, -0.5, k, k))
        show_text = k <= MAX_LABELLED_CLASSES
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
        self.fit_labels()
        names = self.buffers.meta.get("class_names") or [str(i) for i in range(k)]
        ticks = [[(i, str(names[i])[:10]) for i in range(min(k, len(names)))]]
        self.plot.getAxis("bottom").setTicks(ticks)
        self.plot.getAxis("left").setTicks(ticks)
        total = m.sum()
        acc = np.trace(m) / total if total else float("nan")
        self.caption.setText(f"{self.title}: accuracy {acc:.1%} of {int(total)}")
        self.plot.setRange(xRange=(-0.5, k - 0.5), yRange=(-0.5, k - 0.5), padding=0.02)

    def fit_labels(self, *_: Any) -> None:
        """Size the counts to their cells: the widest count fits a cell's width (two-digit counts in a
        small dock ran into each other, "13" and "11" reading "1311"), at most ``LABEL_PIXELS[1]``
        pixels; below ``LABEL_PIXELS[0]`` they are hidden, and the colours alone show the matrix."""
        m = self.buffers.confusion
        if m is None or m.size == 0 or m.shape[0] > MAX_LABELLED_CLASSES:
            return
        k = m.shape[0]
        vb = self.plot.getViewBox()
        view = vb.viewRect()
        if view.width() <= 0 or view.height() <= 0:
            return
        cell = min(vb.width() / view.width(), vb.height() / view.height())    # pixels per class
        widest = str(int(m.max()))
        font = QFont(self.font())
        size = LABEL_PIXELS[1]
        while size >= LABEL_PIXELS[0]:      # a tenth of the cell stays free on each side
            font.setPixelSize(size)
            if QFontMetricsF(font).horizontalAdvance(widest) <= 0.8 * cell:
                break
            size -= 1
        shown = size >= LABEL_PIXELS[0]
        self.label_pixels = size if shown else 0
        for item in self.labels[:k * k]:
            item.setFont(font)
            item.setVisible(shown)

    def csv_data(self) -> tuple[list[str], list[Any]]:
        m = self.buffers.confusion
        if m is None:
            return ["true\\predicted"], []
        names = self.buffers.meta.get("class_names") or [str(i) for i in range(m.shape[0])]
        return ["true\\predicted", *map(str, names)], [list(map(str, names)), *[m[:, j] for j in range(m.shape[1])]]

