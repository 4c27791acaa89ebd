"""Gradient noise: the noise scale B_simple = tr(Σ)/|G|² over the run against the experiment's
batch size (a batch-size advisor), and each layer's gradient signal-to-noise ratio."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from ..buffers import RunBuffers, safe_log10
from .base import DockPlace
from .instrument import InstrumentPanel
from .style import layer_colours, short_name

NOISE_COLOUR = "#9467bd"
BATCH_COLOUR = QColor("#2ca02c")
#: A batch this many times below B_simple or above it is "much" smaller or larger (McCandlish et
#: al. 2018: the step's gain stops growing around B ≈ B_simple).
ADVICE_FACTOR = 4.0


def batch_advice(batch_size: int, noise_scale: float) -> str:
    """The batch-size advisor's line for a batch of ``batch_size`` at noise scale B_simple."""
    if not (math.isfinite(noise_scale) and noise_scale > 0 and batch_size > 0):
        return ""
    ratio = batch_size / noise_scale
    head = f"Batch {batch_size} vs B_simple ≈ {noise_scale:.3g}: "
    if ratio < 1 / ADVICE_FACTOR:
        return head + "noise dominates each step; a larger batch would help (each step would gain more)."
    if ratio > ADVICE_FACTOR:
        return head + "wasted compute; a smaller batch would learn as much per example."
    return head + "the batch is about the noise scale: an efficient size."


class NoisePanel(InstrumentPanel):
    """B_simple over epochs (log y) with the batch size as a line, the advisor's sentence under the
    tool row, and each layer's SNR over epochs (log y)."""

    title = "Gradient noise scale and per-layer SNR"
    dock = DockPlace(key="noise", name="noiseDock", title="Gradient noise", group=1, tab=3,
                     shown=False)
    instrument = "noise"
    label = "gradient noise"
    reading = ("How to read it: the purple curve is the gradient noise scale B_simple = tr(Σ)/|G|², measured from "
               "the per-example gradients of a fixed probe batch: roughly the batch size at which the noise in a "
               "mini-batch gradient equals its signal. The green line is this experiment's batch size. A batch far "
               "below B_simple takes noisy steps (a larger one would help, up to about B_simple); a batch far "
               "above it wastes compute (half of it would learn as much per example). B_simple usually grows as the "
               "loss falls. Below: each layer's signal-to-noise ratio |G|²/tr(Σ); a layer near or under 1 gets "
               "mostly noise from one example.")

    def __init__(self, buffers: RunBuffers, parent: QWidget | None = None) -> None:
        super().__init__(buffers, parent)
        self.advice = QLabel("")
        self.advice.setObjectName("noiseAdvice")
        self.advice.setWordWrap(True)
        self.advice.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.advice.setVisible(False)
        self.layout().insertWidget(3, self.advice)
        self.scale_plot = self.add_plot(row=0, col=0)
        self.snr_plot = self.add_plot(row=1, col=0)
        for plot, label in ((self.scale_plot, "B_simple"), (self.snr_plot, "SNR")):
            plot.getAxis("left").setLogMode(False, True)
            plot.getAxis("left").setStyle(maxTextLevel=0)      # decades only: a short plot stays legible
            plot.getAxis("left").setWidth(48)
            plot.setLabel("left", label)
        self.snr_plot.setLabel("bottom", "epoch")
        self.snr_plot.setXLink(self.scale_plot)
        self.scale = self.scale_plot.plot([], [], pen=pg.mkPen(NOISE_COLOUR, width=1), symbol="o", symbolSize=4,
                                          symbolBrush=NOISE_COLOUR, symbolPen=None, connect="finite")
        self.batch_line = pg.InfiniteLine(0.0, angle=0, movable=False,
                                          pen=pg.mkPen(BATCH_COLOUR, width=1, style=Qt.PenStyle.DashLine),
                                          label="batch", labelOpts={"position": 0.92, "color": BATCH_COLOUR})
        self.batch_line.setVisible(False)
        self.scale_plot.addItem(self.batch_line)
        self.snr_curves: list[pg.PlotDataItem] = []
        self.scale_note = self.add_note(self.scale_plot)

    def clear_run(self) -> None:
        super().clear_run()
        for curve in self.snr_curves:
            self.snr_plot.removeItem(curve)
        self.snr_curves = []
        self.scale.setData([], [])

    def draw(self) -> None:
        b = self.buffers
        rows = np.flatnonzero(self.measured("step_noise_scale", "snr"))
        x = self.epochs_of(rows)
        scale = b.instrument("step_noise_scale")[rows]
        self.scale.setData(x, safe_log10(scale), connect="finite")
        batch = int(b.meta.get("batch_size") or 0)
        self.batch_line.setVisible(batch > 0)
        if batch > 0:
            self.batch_line.setValue(math.log10(batch))
            self.batch_line.label.setFormat(f"batch {batch}")
        snr = b.instrument("snr")[rows]
        names = b.layer_names
        colours = layer_colours(len(names), self.dark)
        while len(self.snr_curves) < len(names):
            j = len(self.snr_curves)
            curve = self.snr_plot.plot([], [], pen=pg.mkPen(colours[j], width=1), connect="finite")
            curve.setToolTip(f"SNR of {names[j]}")
            self.snr_curves.append(curve)
        for j, curve in enumerate(self.snr_curves):
            curve.setData(x, safe_log10(snr[:, j]) if j < snr.shape[1] else [], connect="finite")
        self.follow_epochs([self.scale_plot, self.snr_plot], x)
        # the batch line in view with the curve
        self.fit_decades(self.scale_plot, safe_log10(scale), np.array([math.log10(batch)] if batch > 0 else []))
        self.fit_decades(self.snr_plot, safe_log10(snr))
        self.show_empty(self.scale_note, self.scale_plot, rows.size == 0, "B_simple")
        finite = np.flatnonzero(np.isfinite(scale))
        advice = batch_advice(batch, float(scale[finite[-1]])) if finite.size else ""
        self.advice.setText(advice)
        self.advice.setVisible(bool(advice))
        layers = ", ".join(short_name(n) for n in names)
        self.caption.setText(f"Gradient noise: B_simple vs batch {batch}, SNR per layer ({layers})" if batch
                             else self.title)

    def csv_data(self) -> tuple[list[str], list[Any]]:
        b = self.buffers
        rows = np.flatnonzero(self.measured("step_noise_scale", "snr"))
        snr = b.instrument("snr")[rows]
        return (["step", "epoch", "noise_scale", *(f"snr[{n}]" for n in b.layer_names)],
                [b.steps[rows].astype(np.int64), self.epochs_of(rows), b.instrument("step_noise_scale")[rows],
                 *(snr[:, j] for j in range(snr.shape[1]))])
