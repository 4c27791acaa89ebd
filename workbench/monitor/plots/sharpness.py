"""Sharpness against the stability limit: λ_max of the loss's Hessian (the preconditioned
λ_max(P⁻¹H) for an adaptive optimizer) over the run, and the optimizer's threshold following the
schedule (2/η, (2 + 2β)/η, 38/η for Adam…)."""

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

SHARPNESS_COLOUR = "#d62728"
RAW_COLOUR = "#ff9896"
THRESHOLD_COLOUR = QColor(110, 110, 110)


def threshold_formula(optimizer: str) -> str:
    """How the optimizer's stability threshold is written (``core.engine.instruments.stability_threshold``)."""
    if optimizer in ("momentum", "nesterov"):
        return "(2+2β)/η"
    if optimizer in ("adam", "nadam", "adamw", "adamax"):
        return "(2+2β₁)/((1−β₁)η)"
    return "2/η"


class SharpnessPanel(InstrumentPanel):
    """λ_max (or λ_max(P⁻¹H)) over epochs on a log axis, the threshold planned by the schedule
    (grey, dashed) and its value at each measurement (grey dots)."""

    title = "Sharpness against the stability limit"
    dock = DockPlace(key="sharpness", name="sharpnessDock", title="Sharpness", group=0, tab=3, shown=False)
    instrument = "sharpness"
    label = "sharpness"
    reading = ("How to read it: the red curve is the sharpness λ_max, the largest curvature of the training loss "
               "(for Adam, RMSProp and the other adaptive optimizers the preconditioned λ_max(P⁻¹H), the curvature "
               "their divided step meets; the raw λ_max is the faint one). The grey dashed line is the optimizer's "
               "stability limit at the scheduled rate: 2/η for SGD, (2+2β)/η with momentum, 38/η for Adam. Below "
               "it each step shrinks the error along the sharpest direction and the loss falls; above it the step "
               "overshoots, and the loss oscillates or diverges. Training often rises to the line and hovers there "
               "(the edge of stability); a warm-up or 1cycle keeps η below 2/λ while the curvature is high.")

    def __init__(self, buffers: RunBuffers, parent: QWidget | None = None) -> None:
        super().__init__(buffers, parent)
        self.plot = self.add_plot()
        self.plot.getAxis("left").setLogMode(False, True)
        self.plot.getAxis("left").setStyle(maxTextLevel=0)
        self.plot.setLabel("bottom", "epoch")
        self.plot.setLabel("left", "λ_max")
        self.planned = self.plot.plot([], [], pen=pg.mkPen(THRESHOLD_COLOUR, width=1, style=Qt.PenStyle.DashLine))
        self.threshold = self.plot.plot([], [], pen=None, symbol="o", symbolSize=4, symbolBrush=THRESHOLD_COLOUR,
                                        symbolPen=None)
        self.raw = self.plot.plot([], [], pen=pg.mkPen(RAW_COLOUR, width=1), connect="finite")
        self.sharpness = self.plot.plot([], [], pen=pg.mkPen(SHARPNESS_COLOUR, width=1), symbol="o", symbolSize=4,
                                        symbolBrush=SHARPNESS_COLOUR, symbolPen=None, connect="finite")
        self.sharpness.setZValue(2)
        self.planned.setToolTip("the optimizer's stability threshold at the scheduled learning rate")
        self.note = self.add_note(self.plot)

    def clear_run(self) -> None:
        super().clear_run()
        for curve in (self.planned, self.threshold, self.raw, self.sharpness):
            curve.setData([], [])

    def draw(self) -> None:
        b = self.buffers
        adaptive = bool(b.meta.get("adaptive"))
        formula = threshold_formula(str(b.meta.get("optimizer", "")))
        rows = np.flatnonzero(self.measured("step_sharpness"))
        x = self.epochs_of(rows)
        raw = b.instrument("step_sharpness")[rows]
        shown = b.instrument("step_preconditioned_sharpness")[rows] if adaptive else raw
        limit = b.instrument("step_stability_threshold")[rows]
        self.sharpness.setData(x, safe_log10(shown), connect="finite")
        self.raw.setData(x if adaptive else [], safe_log10(raw) if adaptive else [], connect="finite")
        self.threshold.setData(x, safe_log10(limit))
        planned = b.meta.get("planned_threshold")
        if planned is not None and b.size:
            self.planned.setData(np.asarray(planned[0]), safe_log10(np.asarray(planned[1])), connect="finite")
        else:
            self.planned.setData([], [])
        self.plot.setLabel("left", "λ_max(P⁻¹H)" if adaptive else "λ_max")
        self.follow_epochs([self.plot], x)
        self.fit_decades(self.plot, safe_log10(shown), safe_log10(raw if adaptive else shown), safe_log10(limit),
                         self.planned.yData if self.planned.yData is not None else np.zeros(0))
        self.show_empty(self.note, self.plot, rows.size == 0, "λ_max")
        what = "λ_max(P⁻¹H)" if adaptive else "λ_max"
        caption = f"{what} against {formula}"
        if rows.size and np.isfinite(shown[-1]) and np.isfinite(limit[-1]):
            share = shown[-1] / limit[-1]
            where = "above the limit: unstable" if share > 1 else f"{share:.0%} of the limit"
            caption = f"{what} {shown[-1]:.3g} vs {formula} = {limit[-1]:.3g}: {where}"
        self.caption.setText(caption)

    def csv_data(self) -> tuple[list[str], list[Any]]:
        b = self.buffers
        rows = np.flatnonzero(self.measured("step_sharpness", "step_preconditioned_sharpness"))
        return (["step", "epoch", "sharpness", "preconditioned_sharpness", "stability_threshold"],
                [b.steps[rows].astype(np.int64), self.epochs_of(rows)] +
                [b.instrument(k)[rows] for k in ("step_sharpness", "step_preconditioned_sharpness",
                                                 "step_stability_threshold")])
