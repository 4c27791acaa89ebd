"""The confusion matrix's counts fit their cells whatever the dock's size."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QPointF
from PySide6.QtGui import QFontMetricsF

from workbench.monitor.buffers import RunBuffers
from workbench.monitor.plots.confusion import LABEL_PIXELS, ConfusionPanel


def cell_and_label_widths(panel: ConfusionPanel) -> tuple[float, float]:
    """A cell's width on screen, and the widest shown count's, in scene pixels."""
    vb = panel.plot.getViewBox()
    cell = vb.mapViewToScene(QPointF(1.0, 0.0)) - vb.mapViewToScene(QPointF(0.0, 0.0))
    # the text's own width (its item's bounding box adds the text document's margins)
    widths = [QFontMetricsF(item.textItem.font()).horizontalAdvance(item.textItem.toPlainText())
              for item in panel.labels if item.isVisible()]
    return abs(cell.x()), max(widths, default=0.0)


def test_two_digit_counts_fit_their_cells_in_a_small_dock_and_vanish_in_a_tiny_one(qtbot: Any) -> None:
    buffers = RunBuffers()
    rng = np.random.default_rng(0)
    buffers.confusion = rng.integers(10, 40, size=(10, 10))      # every count has two digits
    panel = ConfusionPanel(buffers)
    qtbot.addWidget(panel)
    panel.resize(600, 600)
    panel.show()
    panel.draw()
    qtbot.wait(50)
    cell, label = cell_and_label_widths(panel)
    assert panel.label_pixels == LABEL_PIXELS[1] and label < cell      # room: the usual size
    panel.resize(330, 260)                                              # the dock at 1366 × 768
    qtbot.waitUntil(lambda: panel.label_pixels < LABEL_PIXELS[1], timeout=2_000)
    cell, label = cell_and_label_widths(panel)
    assert 0 < label < cell, (label, cell)
    panel.resize(160, 140)                                              # too small to read: colours only
    qtbot.waitUntil(lambda: panel.label_pixels == 0, timeout=2_000)
    assert not any(item.isVisible() for item in panel.labels)
    panel.resize(600, 600)                                              # and back
    qtbot.waitUntil(lambda: panel.label_pixels == LABEL_PIXELS[1], timeout=2_000)
    assert sum(item.isVisible() for item in panel.labels) == 100
