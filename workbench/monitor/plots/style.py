"""How layers and events look on every panel: one colour per layer (input dark → output bright),
dashed and paler for a layer kept frozen, short names on the axes, and the colours and labels of
the run's events (with the unfreeze marks that the gradient-norm plot and the heatmap share)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPen

EVENT_COLOURS = {"lr_drop": "#1f77b4", "early_stopping": "#d62728", "restore_best": "#2ca02c",
                 "rollback": "#ff7f0e", "diverged": "#d62728", "unfreeze": "#9467bd",
                 "branch": "#7b3fb5"}
EVENT_LABELS = {"lr_drop": "lr ↓", "early_stopping": "early stop", "restore_best": "best restored",
                "rollback": "NaN roll-back", "diverged": "diverged", "unfreeze": "unfrozen",
                "branch": "fork"}


def layer_colours(n: int, dark: bool = False) -> list[QColor]:
    """One colour per layer, input (dark) → output (bright), from a sequential colormap (viridis),
    cut so that every colour stands out from the background (light or dark)."""
    cmap = pg.colormap.get("viridis")
    lo, hi = (0.3, 1.0) if dark else (0.0, 0.85)
    if n == 0:
        return []
    if n == 1:
        return [cmap.map(lo, mode="qcolor")]
    return [cmap.map(lo + (hi - lo) * i / (n - 1), mode="qcolor") for i in range(n)]


def short_name(name: str) -> str:
    """``"dense_3 (elu, 100)"`` → ``"dense_3"`` (axis ticks)."""
    return name.split(" (")[0]


def layer_label(name: str, frozen: bool, short: bool = False) -> str:
    """A layer's name for the legend and hover text, marked while transfer learning keeps it frozen."""
    text = short_name(name) if short else name
    return f"{text} (frozen)" if frozen else text


def layer_pen(colour: QColor, frozen: bool) -> QPen:
    """Width 1, cosmetic; dashed and paler for a layer kept frozen by transfer learning (it
    recedes behind the layers that learn)."""
    if frozen:
        colour = QColor(colour)
        colour.setAlpha(150)
    pen = pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine if frozen else Qt.PenStyle.SolidLine)
    pen.setCosmetic(True)
    return pen


class UnfreezeMarks:
    """Vertical lines on a plot where transfer learning unfroze its layers, kept in step with
    the run's events (the gradient-norm curves and the heatmap both show where the frozen
    stretch ended)."""

    def __init__(self, plot: pg.PlotItem) -> None:
        self.plot = plot
        self.lines: list[pg.InfiniteLine] = []
        self._steps: list[float] = []

    def update(self, run_events: list[dict[str, Any]]) -> None:
        events = [e for e in run_events if e.get("kind") == "unfreeze"]
        steps = [float(e.get("step", 0)) for e in events]
        if steps == self._steps:
            return
        for line in self.lines:
            self.plot.removeItem(line)
        self.lines = []
        colour = QColor(EVENT_COLOURS["unfreeze"])
        for x, event in zip(steps, events, strict=True):
            line = pg.InfiniteLine(x, angle=90, movable=False,
                                   pen=pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine),
                                   label=EVENT_LABELS["unfreeze"],
                                   labelOpts={"position": 0.95, "color": colour, "rotateAxis": (1, 0)})
            line.setToolTip(str(event.get("message", "")))
            self.plot.addItem(line, ignoreBounds=True)
            self.lines.append(line)
        self._steps = steps


def layer_ticks(names: Sequence[str], long: int = 5) -> list[list[tuple[int, str]]]:
    """x-axis ticks for per-layer bars: short names for a few layers, indices (0 = input side) for many."""
    if len(names) <= long:
        return [[(i, short_name(n)) for i, n in enumerate(names)]]
    return [[(i, "out" if n.startswith("output") else str(i)) for i, n in enumerate(names)]]

