"""Effective learning rate: per layer, the step the optimizer really takes (η/P for adaptive
optimizers, η/(1 − β) with momentum, divided by ‖w‖² for a kernel feeding batch norm), next to the
schedule's planned rate and the rate used."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QWidget

from ..buffers import RunBuffers, safe_log10
from .base import DockPlace
from .instrument import InstrumentPanel
from .style import layer_colours, short_name

PLANNED_COLOUR = QColor(128, 128, 128)
USED_COLOUR = QColor("#2ca02c")


class EffectiveLearningRatePanel(InstrumentPanel):
    """Per layer, the median effective rate over its kernel (log y, layer colours), the planned
    schedule (grey, dashed) and the rate used (green)."""

    title = "Effective learning rate per layer"
    dock = DockPlace(key="effective_lr", name="effectiveLearningRateDock", title="Effective LR",
                     group=1, tab=4, shown=False)
    instrument = "effective_learning_rate"
    label = "effective learning rate"
    reading = ("How to read it: each coloured curve is one layer's effective learning rate, the median over its "
               "weights of the step the optimizer really takes per unit of gradient; the grey dashed line is the "
               "schedule's planned η and the green one the η used. Plain SGD sits on the green line. Momentum "
               "multiplies it by 1/(1 − β) (10× at β = 0.9, and it moves when 1cycle cycles β). Adam, RMSProp and "
               "AdaGrad divide η by √v̂ + ε, so layers with small gradients take larger steps and the rates spread "
               "apart; AdaGrad's keep falling. A kernel followed by batch norm turns by η/‖w‖²: as its weights grow "
               "its effective rate falls, even at a constant η.")

    def __init__(self, buffers: RunBuffers, parent: QWidget | None = None) -> None:
        super().__init__(buffers, parent)
        self.plot = self.add_plot()
        self.plot.getAxis("left").setLogMode(False, True)
        self.plot.setLabel("bottom", "epoch")
        self.plot.setLabel("left", "rate")
        self.planned = self.plot.plot([], [], pen=pg.mkPen(PLANNED_COLOUR, width=1, style=Qt.PenStyle.DashLine))
        self.planned.setToolTip("the schedule's planned learning rate")
        self.used = self.plot.plot([], [], pen=pg.mkPen(USED_COLOUR, width=1), connect="finite")
        self.used.setToolTip("the learning rate used")
        self.curves: list[pg.PlotDataItem] = []
        self.note = self.add_note(self.plot)

    def clear_run(self) -> None:
        super().clear_run()
        for curve in self.curves:
            self.plot.removeItem(curve)
        self.curves = []
        self.planned.setData([], [])
        self.used.setData([], [])

    def draw(self) -> None:
        b = self.buffers
        rows = np.flatnonzero(self.measured("effective_learning_rate"))
        x = self.epochs_of(rows)
        rates = b.instrument("effective_learning_rate")[rows]
        names = b.layer_names
        colours = layer_colours(len(names), self.dark)
        while len(self.curves) < len(names):
            j = len(self.curves)
            curve = self.plot.plot([], [], pen=pg.mkPen(colours[j], width=1), connect="finite")
            curve.setToolTip(f"effective learning rate of {names[j]}")
            curve.setZValue(1)
            self.curves.append(curve)
        for j, curve in enumerate(self.curves):
            curve.setData(x, safe_log10(rates[:, j]) if j < rates.shape[1] else [], connect="finite")
        planned = b.meta.get("planned_lr")
        if planned is not None and b.size:
            self.planned.setData(np.asarray(planned[0]), safe_log10(np.asarray(planned[1])), connect="finite")
        else:
            self.planned.setData([], [])
        # the rate used, at the rows the rates were measured (a short curve, not every step's)
        self.used.setData(x, safe_log10(b.learning_rate[rows]), connect="finite")
        self.follow_epochs([self.plot], x)
        self.fit_decades(self.plot, safe_log10(rates), safe_log10(b.learning_rate[rows]),
                         self.planned.yData if self.planned.yData is not None else np.zeros(0))
        self.show_empty(self.note, self.plot, rows.size == 0, "Effective rates")
        layers = ", ".join(short_name(n) for n in names)
        self.caption.setText(f"Effective LR: per layer vs η planned and used ({layers})" if names else self.title)

    def csv_data(self) -> tuple[list[str], list[Any]]:
        b = self.buffers
        rows = np.flatnonzero(self.measured("effective_learning_rate"))
        rates = b.instrument("effective_learning_rate")[rows]
        return (["step", "epoch", "learning_rate", *(f"effective_learning_rate[{n}]" for n in b.layer_names)],
                [b.steps[rows].astype(np.int64), self.epochs_of(rows), b.learning_rate[rows],
                 *(rates[:, j] for j in range(rates.shape[1]))])
