"""Ghost runs and a branch's parent drawn on the monitor's plots (see ``ghosts``).

The overlay owns its curve items and redraws them only when the ghosts change (a run kept,
hidden, removed, a branch started), never at frame rate: faint grey curves under the live ones
for the ghosts, and for the parent of a branch on screen its curves from the fork on, in the
same colours as the live run's, dashed. A ghost is grey, not in the layers' colours: an earlier
run (of another network, perhaps) drawn in the live legend's colours read as the live layers'
own curves. Nor does it set the axes: the view fits the live run and, dashed, its parent.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from .ghosts import GhostRun, GhostRuns
from .plots.gradient_norm import GradientNormPanel
from .plots.metrics import MetricsPanel
from .plots.style import layer_colours

GHOST_ALPHA = 90
GHOST_COLOUR = {False: "#8c8c8c", True: "#a0a0a0"}  # by dark theme
TRAIN_COLOUR, VAL_COLOUR = "#1f77b4", "#ff7f0e"     # as the metrics panel's train and validation curves


def _pen(colour: QColor | str, alpha: int | None = None, dashed: bool = False,
         style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> pg.QtGui.QPen:
    colour = QColor(colour)
    if alpha is not None:
        colour.setAlpha(alpha)
    pen = pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine if dashed else style)
    pen.setCosmetic(True)
    return pen


class GhostOverlay:
    """Draws ``ghosts`` on the central gradient-norm plot and on the loss and accuracy plots."""

    def __init__(self, ghosts: GhostRuns, grad_norm: GradientNormPanel, metrics: MetricsPanel | None) -> None:
        self.ghosts = ghosts
        self.grad_norm = grad_norm
        self.metrics = metrics
        self.items: list[tuple[pg.PlotItem, pg.PlotDataItem]] = []
        self.dashed: list[pg.PlotDataItem] = []      # the parent's curves from the fork on
        self.faint: list[pg.PlotDataItem] = []
        ghosts.changed.connect(self.redraw)

    def _add(self, plot: pg.PlotItem, x: np.ndarray, y: np.ndarray, pen: pg.QtGui.QPen, tip: str,
             z: float) -> pg.PlotDataItem:
        item = pg.PlotDataItem(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), pen=pen,
                               connect="finite")
        item.setZValue(z)
        item.setToolTip(tip)
        plot.addItem(item, ignoreBounds=z < -1)       # a ghost never sets the axes
        self.items.append((plot, item))
        return item

    def clear(self) -> None:
        for plot, item in self.items:
            plot.removeItem(item)
        self.items, self.dashed, self.faint = [], [], []

    def redraw(self) -> None:
        self.clear()
        dark = self.grad_norm.dark
        for ghost in self.ghosts.faint():
            self.faint += self._draw(ghost, dark, alpha=GHOST_ALPHA, dashed=False, tip=f"ghost: {ghost.label}")
        parent = self.ghosts.parent()
        if parent is not None:
            ghost, fork = parent
            self.dashed += self._draw(ghost.after(fork), dark, alpha=None, dashed=True,
                                      tip=f"parent run from the fork at step {fork:,} (dashed): {ghost.label}")

    def _draw(self, ghost: GhostRun, dark: bool, alpha: int | None, dashed: bool, tip: str) -> list[pg.PlotDataItem]:
        drawn = []
        faint = alpha is not None
        grey = GHOST_COLOUR[dark]
        colours = [grey] * len(ghost.layer_names) if faint else layer_colours(len(ghost.layer_names), dark)
        z = -5 if faint else -1                        # under the live curves
        for i, colour in enumerate(colours):
            if ghost.steps.size:
                drawn.append(self._add(self.grad_norm.plot, ghost.steps, ghost.log_grad_norm[i],
                                       _pen(colour, alpha, dashed), f"{tip} ({ghost.layer_names[i]})", z))
        if self.metrics is not None:
            epochs = ghost.epochs.get("epoch", np.zeros(0))
            for plot, metric in ((self.metrics.loss_plot, "loss"), (self.metrics.acc_plot, "accuracy")):
                for key, colour in ((metric, TRAIN_COLOUR), (f"val_{metric}", VAL_COLOUR)):
                    values = ghost.epochs.get(key, np.zeros(0))
                    if len(values) and len(values) == len(epochs):
                        # a ghost's validation curve dotted, its training curve solid, both grey
                        style = Qt.PenStyle.DotLine if key.startswith("val_") else Qt.PenStyle.SolidLine
                        pen = _pen(grey, alpha, style=style) if faint else _pen(colour, alpha, dashed)
                        drawn.append(self._add(plot, epochs, values, pen, f"{tip} ({key})", z))
        return drawn
