"""Small widgets the labs share: a learning-rate spin box with logarithmic steps, an editor for a
registered component's numeric hyperparameters, and plot helpers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QValidator
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QWidget

#: Colours for the optimizers / curves, in registry order (Tableau 10: distinct, colour-blind aware).
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]


def colour(i: int) -> QColor:
    return QColor(PALETTE[i % len(PALETTE)])


class RateSpin(QDoubleSpinBox):
    """A positive rate shown with 3 significant digits (``0.001``, ``3e-05``); the arrows multiply
    or divide it by 10^(1/4), so four clicks are one decade, as rates are tuned."""

    def __init__(self, value: float, low: float = 1e-7, high: float = 100.0, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDecimals(12)
        self.setRange(low, high)
        self.setKeyboardTracking(False)
        self.setValue(value)

    def textFromValue(self, value: float) -> str:  # noqa: N802 (Qt override)
        return f"{value:.3g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802 (Qt override)
        try:
            return float(text.strip().replace(",", "."))
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> tuple[QValidator.State, str, int]:
        stripped = text.strip().replace(",", ".")
        try:
            value = float(stripped)
        except ValueError:
            ok = stripped == "" or all(c in "0123456789.eE+-" for c in stripped)
            return (QValidator.State.Intermediate if ok else QValidator.State.Invalid), text, pos
        if self.minimum() <= value <= self.maximum():
            return QValidator.State.Acceptable, text, pos
        return QValidator.State.Intermediate, text, pos

    def stepBy(self, steps: int) -> None:  # noqa: N802 (Qt override)
        value = self.value() * 10.0 ** (steps / 4.0)
        self.setValue(min(max(value, self.minimum()), self.maximum()))


def registry_combo(registry: Any, tooltip: str) -> QComboBox:
    """A combo box of a registry's names (item data: the name; item tooltip: the entry's ``summary``)."""
    combo = QComboBox()
    for name in registry.names():
        combo.addItem(name, name)
        combo.setItemData(combo.count() - 1, getattr(registry.get(name), "summary", ""), Qt.ItemDataRole.ToolTipRole)
    combo.setToolTip(tooltip)
    return combo


class ParamEditor(QWidget):
    """Spin boxes for the numeric hyperparameters of a registered component class (its
    ``parameters()``), rebuilt when the class changes; ``changed`` fires on every edit. Each spin
    box's tooltip is the class's help for that hyperparameter (``tooltip`` where it has none)."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._form = QFormLayout(self)
        self._form.setContentsMargins(0, 0, 0, 0)
        self._spins: dict[str, QDoubleSpinBox] = {}

    def set_component(self, cls: type, tooltip: str = "", values: dict[str, Any] | None = None) -> None:
        while self._form.rowCount():
            self._form.removeRow(0)
        self._spins = {}
        for name, default in cls.parameters().items():  # type: ignore[attr-defined]
            if isinstance(default, bool) or not isinstance(default, (int, float)):
                continue
            spin = QDoubleSpinBox()
            spin.setDecimals(4)
            spin.setRange(-1e3, 1e3)
            spin.setSingleStep(0.01 if abs(default) < 1 else 0.1)
            spin.setKeyboardTracking(False)
            spin.setValue(float((values or {}).get(name, default)))
            spin.setObjectName(f"param_{name}")
            documented = cls.hyperparameter(name) if hasattr(cls, "hyperparameter") else None
            spin.setToolTip(documented.help if documented is not None else tooltip)
            spin.valueChanged.connect(self.changed)
            self._form.addRow(f"  {name}", spin)
            self._spins[name] = spin
        self.setVisible(bool(self._spins))

    def values(self) -> dict[str, float]:
        return {name: spin.value() for name, spin in self._spins.items()}

    def spin(self, name: str) -> QDoubleSpinBox:
        return self._spins[name]


def safe_log10(values: np.ndarray) -> np.ndarray:
    """log10 of positive finite values, NaN elsewhere (a gap in the curve), without warnings."""
    values = np.asarray(values, dtype=np.float64)
    out = np.full(values.shape, np.nan)
    ok = np.isfinite(values) & (values > 0)
    np.log10(values, out=out, where=ok)
    return out


class DecadeAxis(pg.AxisItem):
    """An axis for curves that hold log10 values: ticks written as powers of ten, labels on whole
    decades only (pyqtgraph labels the 2…9 minor ticks when the range spans under about three
    decades, and they pile up), no SI prefix."""

    def __init__(self, orientation: str) -> None:
        super().__init__(orientation)
        self.setLogMode(orientation in ("top", "bottom"), orientation in ("left", "right"))
        self.enableAutoSIPrefix(False)

    def logTickValues(self, minVal: float, maxVal: float, size: float, stdTicks: Any) -> list:  # noqa: N802,N803
        low, high = int(np.floor(minVal)), int(np.ceil(maxVal))
        step = max(1, (high - low) // 8)                    # at most about 8 labelled decades
        majors = [float(v) for v in range(low, high + 1, step) if minVal <= v <= maxVal]
        minors = [v + float(np.log10(k)) for v in range(low, high) for k in range(2, 10)] if step == 1 else []
        return [(float(step), majors), (None, [v for v in minors if minVal < v < maxVal])]


def plot_widget(title: str, left: str, bottom: str, parent: QWidget | None = None, *, log_x: bool = False,
                log_y: bool = False) -> pg.PlotWidget:
    """A PlotWidget with a title, axis labels, a light grid and the menu left on (export, zoom).
    ``log_x`` / ``log_y``: that axis shows 10^v for the log10 values v the curves hold."""
    axes = {}
    if log_x:
        axes["bottom"] = DecadeAxis("bottom")
    if log_y:
        axes["left"] = DecadeAxis("left")
    widget = pg.PlotWidget(parent=parent, axisItems=axes)
    item = widget.getPlotItem()
    item.setTitle(title)
    item.setLabel("left", left)
    item.setLabel("bottom", bottom)
    item.showGrid(x=True, y=True, alpha=0.2)
    return widget

