"""The initialization explorer lab: pick depth, width, initializer, activation and batch norm, and
see per layer how the activations are distributed, how their standard deviation drifts on the
way up, and how the gradient's drifts on the way down (``core.labs.init_explorer``); and the
signal-propagation view: the measured forward and backward variances next to the fan-in /
fan-out predictions for this init and for Glorot, He and LeCun, and the singular values of the
whole stack's input-output Jacobian.

The computation runs on the lab's worker thread (a 100-layer stack of wide layers takes a
moment); the plots update when it is done. One button applies the initializer / activation pair
to every hidden layer of the current experiment, as one undoable edit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGraphicsPathItem,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core.engine.activations import ACTIVATIONS
from core.engine.initializers import INITIALIZERS
from core.labs.init_explorer import (
    MAX_BATCH,
    MAX_DEPTH,
    MAX_DRAWS,
    NORMAL_INPUT,
    Exploration,
    ExplorerSettings,
    explore,
    input_sources,
)

from ..concurrent import JobRunner
from ..state import ExperimentState
from .widgets import ParamEditor, plot_widget, registry_combo, safe_log10

GUI_MAX_WIDTH = 1000            # the core allows more; a GUI pass should stay interactive
DEBOUNCE_MS = 150

#: The book's pairs and failure cases, one click each: (label, init, activation, batch norm).
BOOK_PAIRS = [
    ("He + ReLU (Table 11-1)", "he_normal", "relu", False),
    ("He + ELU (the book's default)", "he_normal", "elu", False),
    ("Glorot + tanh (Eq. 11-1)", "glorot_normal", "tanh", False),
    ("LeCun + SELU (self-normalizing)", "lecun_normal", "selu", False),
    ("N(0, 1) + logistic (saturates)", {"name": "random_normal", "stddev": 1.0}, "logistic", False),
    ("N(0, 0.05) + logistic (vanishing gradients)", {"name": "random_normal", "stddev": 0.05}, "logistic", False),
    ("N(0, 1) + ReLU (exploding)", {"name": "random_normal", "stddev": 1.0}, "relu", False),
    ("N(0, 1) + logistic + batch norm (Eq. 11-3 rescues it)", {"name": "random_normal", "stddev": 1.0},
     "logistic", "before_activation"),
]
BATCH_NORM_LABELS = [("off", False), ("before the activation", "before_activation"),
                     ("after the activation", "after_activation")]

FORWARD_COLOUR = "#1f77b4"
BACKWARD_COLOUR = "#d62728"
SATURATED_COLOUR = "#ff7f0e"
DEAD_COLOUR = "#555555"
#: The reference initializations' predicted forward variance, drawn dashed.
REFERENCE_COLOURS = {"glorot_normal": "#2ca02c", "he_normal": "#9467bd", "lecun_normal": "#8c564b"}
REFERENCE_LABELS = {"glorot_normal": "Glorot", "he_normal": "He", "lecun_normal": "LeCun"}
#: The Jacobian's plot shows this many decades below its largest singular value.
JACOBIAN_DECADES = 12
JACOBIAN_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c")


def violin_path(edges: np.ndarray, density: np.ndarray, half_width: float = 0.42) -> QPainterPath:
    """One closed polygon per layer l (centred on x = l + 1): the density histogram mirrored.

    The width is scaled to the 90th percentile of the layer's non-empty bins and capped at
    ``half_width``: a point mass (ReLU's zeros, a saturated logistic's 0s and 1s) shows as a full-width
    bar instead of squashing the rest of the distribution to a hairline."""
    path = QPainterPath()
    for layer, (e, d) in enumerate(zip(edges, density, strict=True)):
        filled = d[d > 0]
        if not np.all(np.isfinite(e)) or filled.size == 0:
            continue
        ref = float(np.quantile(filled, 0.9))
        centres = 0.5 * (e[:-1] + e[1:])
        w = half_width * np.minimum(d / ref, 1.0)
        x = layer + 1.0
        points = [QPointF(x + wi, c) for wi, c in zip(w, centres, strict=True)]
        points += [QPointF(x - wi, c) for wi, c in zip(w[::-1], centres[::-1], strict=True)]
        path.addPolygon(QPolygonF(points))
        path.closeSubpath()
    return path


class InitExplorerLab(QWidget):
    """The lab; ``updated`` fires (GUI thread) after the plots show a new exploration."""

    updated = Signal(object)

    def __init__(self, state: ExperimentState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setObjectName("initExplorerLab")
        self.setWindowTitle("Initialization explorer — Gradient Workbench")
        self.result: Exploration | None = None
        self.seed = 0
        self.runner = JobRunner(self, "init-explorer")
        self.runner.finished.connect(self._show)
        self.runner.failed.connect(self._failed)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.recompute_now)
        self._build()
        self._load_pair(0)
        self.recompute_now()

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        controls = QGroupBox("Stack")
        form = QFormLayout(controls)
        self.pair_combo = QComboBox()
        self.pair_combo.addItems([label for label, *_ in BOOK_PAIRS])
        self.pair_combo.setToolTip("The book's recommended pairs (Table 11-1) and the classic failures, one click "
                                   "each; every control below can then be changed on its own.")
        self.pair_combo.activated.connect(self._load_pair)
        form.addRow("Book pair", self.pair_combo)

        self.depth_spin = self._spin(1, MAX_DEPTH, 50, "Number of identical hidden layers (up to 100). The deeper the "
                                     "stack, the more a per-layer drift compounds: ×1.1 per layer is ×117 over 50.")
        form.addRow("Depth", self.depth_spin)
        self.width_spin = self._spin(1, GUI_MAX_WIDTH, 100, "Units per layer = fan-in and fan-out of every kernel "
                                     "after the first. Narrow layers drift more from draw to draw.")
        form.addRow("Width", self.width_spin)

        self.init_combo = registry_combo(
            INITIALIZERS, "How the kernels are drawn (Eq. 11-1, Table 11-1): Glorot σ² = 1/fan_avg, He σ² = 2/fan_in, "
            "LeCun σ² = 1/fan_in, or a fixed N(mean, stddev²).")
        self.init_combo.currentIndexChanged.connect(self._init_changed)
        self.init_params = ParamEditor()
        self.activation_combo = registry_combo(
            ACTIVATIONS, "The activation after every layer. Saturating ones (logistic, tanh) have derivatives near 0 "
            "at both ends; the book ranks ELU > leaky ReLU > ReLU > tanh > logistic.")
        self.activation_combo.currentIndexChanged.connect(self._activation_changed)
        self.activation_params = ParamEditor()
        for label, combo, params in (("Initializer", self.init_combo, self.init_params),
                                     ("Activation", self.activation_combo, self.activation_params)):
            form.addRow(label, combo)
            form.addRow(params)
            params.changed.connect(self.recompute)

        self.bn_combo = QComboBox()
        for label, value in BATCH_NORM_LABELS:
            self.bn_combo.addItem(label, value)
        self.bn_combo.setToolTip("Batch normalization (Eq. 11-3) in every layer, with the batch's own mean and "
                                 "variance: it re-centres and rescales each layer's inputs, whatever the init.")
        self.bn_combo.currentIndexChanged.connect(self.recompute)
        form.addRow("Batch norm", self.bn_combo)

        self.source_combo = QComboBox()
        for name in input_sources():
            self.source_combo.addItem("standard normal N(0, 1)" if name == NORMAL_INPUT else f"{name} (standardized)",
                                      name)
        self.source_combo.setToolTip("The batch pushed through the stack: standard normal vectors of the layer width, "
                                     "or rows of a dataset standardized to mean 0 and std 1 per feature.")
        self.source_combo.currentIndexChanged.connect(self.recompute)
        form.addRow("Input", self.source_combo)
        self.batch_spin = self._spin(2, MAX_BATCH, 256, "Examples in the batch (batch norm uses its statistics).")
        form.addRow("Batch size", self.batch_spin)
        self.draws_spin = self._spin(1, MAX_DRAWS, 1, "Independent weight draws pooled together. Glorot's argument "
                                     "is about expected variances; one finite-width draw drifts like a random walk, "
                                     "several average that out.")
        form.addRow("Weight draws", self.draws_spin)

        self.redraw_button = QPushButton("New random draw")
        self.redraw_button.setToolTip("Draw new weights, a new input batch and a new top gradient (another seed).")
        self.redraw_button.clicked.connect(self._redraw)
        self.apply_button = QPushButton("Apply this init / activation to the experiment")
        self.apply_button.setObjectName("applyPair")
        self.apply_button.setToolTip("Set this initializer and activation (with their parameters) on every hidden "
                                     "layer of the current experiment, as one undoable edit. Units, batch norm and "
                                     "dropout are left as they are.")
        self.apply_button.clicked.connect(self.apply_to_experiment)
        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        self.summary_label.setObjectName("summary")
        self.summary_label.setMinimumHeight(4 * self.fontMetrics().lineSpacing())
        self.summary_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        explain = QLabel("<i>Backward pass: the loss is L = Σ G·a_top with G ~ N(0, 1), so the gradient at the top "
                         "has std 1 and each lower layer's gradient std is the factor back-propagation has "
                         "grown or shrunk it by.</i>")
        explain.setWordWrap(True)

        left = QVBoxLayout()
        left.addWidget(controls)
        left.addWidget(self.redraw_button)
        left.addWidget(self.apply_button)
        left.addWidget(self.summary_label)
        left.addWidget(explain)
        left.addStretch(1)
        left_widget = QWidget()
        left_widget.setLayout(left)
        left_widget.setMaximumWidth(360)

        self.violin_plot = plot_widget("", "activation a_l", "hidden layer")
        self.violin_plot.getPlotItem().setTitle("Activations per layer (violin: density over the 1–99 % range; "
                                                "dot: median)", size="10pt")
        self.violin_item = QGraphicsPathItem()
        self.violin_item.setBrush(QBrush(QColor(31, 119, 180, 110)))
        self.violin_item.setPen(QPen(QColor(FORWARD_COLOUR), 0))
        self.violin_plot.addItem(self.violin_item)
        self.median_item = pg.ScatterPlotItem(size=4, pen=None, brush=pg.mkBrush("#222222"))
        self.violin_plot.addItem(self.median_item)

        self.std_plot = plot_widget("", "ratio (log scale)", "hidden layer", log_y=True)
        self.std_plot.getPlotItem().setTitle(
            f"Std per layer (1 = Glorot's condition): <span style='color:{FORWARD_COLOUR}'>● forward "
            f"std(a_l) ÷ std(input)</span> &nbsp; <span style='color:{BACKWARD_COLOUR}'>▲ backward std(∂L/∂a_l) ÷ "
            f"std(∂L/∂a_top)</span>", size="10pt")
        self.std_plot.addItem(pg.InfiniteLine(pos=0.0, angle=0, pen=pg.mkPen("#888888", style=Qt.PenStyle.DashLine)))
        self.forward_curve = self.std_plot.plot([], [], pen=pg.mkPen(FORWARD_COLOUR, width=1), symbol="o",
                                                symbolSize=4, symbolBrush=FORWARD_COLOUR, connect="finite")
        self.backward_curve = self.std_plot.plot([], [], pen=pg.mkPen(BACKWARD_COLOUR, width=1), symbol="t1",
                                                 symbolSize=5, symbolBrush=BACKWARD_COLOUR, connect="finite")

        self.fraction_plot = plot_widget("", "fraction", "hidden layer")
        self.fraction_plot.getPlotItem().setTitle(
            f"<span style='color:{SATURATED_COLOUR}'>saturated units</span> (within 1 % of an asymptote) and "
            f"<span style='color:{DEAD_COLOUR}'>dead units</span> (0 for the whole batch)", size="10pt")
        self.fraction_plot.setYRange(0, 1.05)
        self.saturated_curve = self.fraction_plot.plot([], [], pen=pg.mkPen(SATURATED_COLOUR, width=1),
                                                       connect="finite")
        self.dead_curve = self.fraction_plot.plot([], [], pen=pg.mkPen(DEAD_COLOUR, width=1), connect="finite")
        self.std_plot.setXLink(self.violin_plot)
        self.fraction_plot.setXLink(self.violin_plot)

        self.propagation_plot = plot_widget("", "variance (log scale)", "hidden layer", log_y=True)
        self.propagation_plot.setObjectName("propagationPlot")
        self.propagation_plot.getPlotItem().setTitle(
            f"<span style='color:{FORWARD_COLOUR}'>● Var(a_l)</span> <span style='color:{BACKWARD_COLOUR}'>▲ "
            "Var(∂L/∂a_l)</span>, lines: fan-in/fan-out prediction", size="9pt")
        self.propagation_plot.setToolTip(
            "Dots: measured variances. Solid lines: Glorot and Bengio's prediction for this init, "
            "Var(z_l) = fan_in·Var(w)·E[f(z)²] forward and fan_out·Var(w)·E[f'(z)²] backward. Dashed: the forward "
            "prediction with Glorot's 1/fan_avg, He's 2/fan_in and LeCun's 1/fan_in. No prediction with batch norm.")
        legend = self.propagation_plot.addLegend(offset=(-5, 5), labelTextSize="8pt", colCount=3)
        self.measured_forward = self.propagation_plot.plot([], [], pen=None, symbol="o", symbolSize=4,
                                                           symbolBrush=FORWARD_COLOUR)
        self.measured_backward = self.propagation_plot.plot([], [], pen=None, symbol="t1", symbolSize=5,
                                                            symbolBrush=BACKWARD_COLOUR)
        self.predicted_forward = self.propagation_plot.plot([], [], pen=pg.mkPen(FORWARD_COLOUR, width=1),
                                                            connect="finite")
        self.predicted_backward = self.propagation_plot.plot([], [], pen=pg.mkPen(BACKWARD_COLOUR, width=1),
                                                             connect="finite")
        self.reference_curves = {
            name: self.propagation_plot.plot([], [], pen=pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine),
                                             connect="finite", name=REFERENCE_LABELS[name])
            for name, colour in REFERENCE_COLOURS.items()}
        assert legend is not None

        self.jacobian_plot = plot_widget("", "singular value (log scale)", "index (largest first)", log_y=True)
        self.jacobian_plot.setObjectName("jacobianPlot")
        self.jacobian_plot.getPlotItem().setTitle("Singular values of ∂a_top/∂x (3 inputs)", size="9pt")
        self.jacobian_plot.setToolTip(
            "The singular values of the whole stack's input-output Jacobian at three input points, largest first: "
            "all near 1 (the dashed line) means every direction of the input reaches the top and every direction "
            "of the gradient the bottom; a spread of decades means most directions are lost (gaps: exactly 0).")
        self.jacobian_plot.addItem(pg.InfiniteLine(pos=0.0, angle=0,
                                                   pen=pg.mkPen("#888888", style=Qt.PenStyle.DashLine)))
        self.jacobian_curves = [self.jacobian_plot.plot([], [], pen=pg.mkPen(c, width=1), connect="finite")
                                for c in JACOBIAN_COLOURS]
        self.jacobian_note = pg.TextItem("", anchor=(0.5, 0.5))
        self.jacobian_plot.addItem(self.jacobian_note, ignoreBounds=True)
        propagation = QSplitter(Qt.Orientation.Horizontal)
        propagation.addWidget(self.propagation_plot)
        propagation.addWidget(self.jacobian_plot)
        propagation.setSizes([500, 300])

        plots = QSplitter(Qt.Orientation.Vertical)
        plots.addWidget(self.violin_plot)
        plots.addWidget(self.std_plot)
        plots.addWidget(self.fraction_plot)
        plots.addWidget(propagation)
        plots.setSizes([330, 230, 140, 260])
        layout = QHBoxLayout(self)
        layout.addWidget(left_widget)
        layout.addWidget(plots, 1)

    def _spin(self, low: int, high: int, value: int, tip: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setValue(value)
        spin.setKeyboardTracking(False)
        spin.setToolTip(tip)
        spin.valueChanged.connect(self.recompute)
        return spin

    # ------------------------------------------------------------------ settings

    def _load_pair(self, index: int) -> None:
        _, init, activation, batch_norm = BOOK_PAIRS[index]
        self.set_pair(init, activation, batch_norm=batch_norm)

    def set_pair(self, init: str | dict[str, Any], activation: str, activation_params: dict[str, Any] | None = None,
                 batch_norm: str | bool = False) -> None:
        """Show an init (name or {"name", params...}) / activation pair and recompute."""
        name = init if isinstance(init, str) else init["name"]
        params = {} if isinstance(init, str) else {k: v for k, v in init.items() if k != "name"}
        for combo in (self.init_combo, self.activation_combo, self.bn_combo):
            combo.blockSignals(True)
        self.init_combo.setCurrentIndex(self.init_combo.findData(name))
        self.activation_combo.setCurrentIndex(self.activation_combo.findData(activation))
        self.bn_combo.setCurrentIndex([v for _, v in BATCH_NORM_LABELS].index(batch_norm))
        for combo in (self.init_combo, self.activation_combo, self.bn_combo):
            combo.blockSignals(False)
        self.init_params.set_component(INITIALIZERS.get(name), INITIALIZERS.get(name).summary, params)
        self.activation_params.set_component(ACTIVATIONS.get(activation), ACTIVATIONS.get(activation).summary,
                                             activation_params)
        self.recompute()

    def _init_changed(self) -> None:
        name = self.init_combo.currentData()
        self.init_params.set_component(INITIALIZERS.get(name), INITIALIZERS.get(name).summary)
        self.recompute()

    def _activation_changed(self) -> None:
        name = self.activation_combo.currentData()
        self.activation_params.set_component(ACTIVATIONS.get(name), ACTIVATIONS.get(name).summary)
        self.recompute()

    def init_spec(self) -> str | dict[str, Any]:
        """The spec ``init``: the bare name when every parameter is at its default."""
        name = self.init_combo.currentData()
        params = self.init_params.values()
        defaults = INITIALIZERS.get(name).parameters()
        if all(params[k] == defaults[k] for k in params):
            return name
        return {"name": name, **params}

    def settings(self) -> ExplorerSettings:
        return ExplorerSettings(depth=self.depth_spin.value(), width=self.width_spin.value(), init=self.init_spec(),
                                activation=self.activation_combo.currentData(),
                                activation_params=self.activation_params.values(),
                                batch_norm=self.bn_combo.currentData(), source=self.source_combo.currentData(),
                                batch_size=self.batch_spin.value(), draws=self.draws_spin.value())

    # ------------------------------------------------------------------ computing

    def recompute(self) -> None:
        """Recompute shortly (edits in quick succession are computed once)."""
        self._timer.start()

    def recompute_now(self) -> None:
        self._timer.stop()
        try:
            settings = self.settings()
        except (ValueError, KeyError) as exc:
            self.summary_label.setText(f"<span style='color:#d32f2f'>{exc}</span>")
            return
        seed = self.seed
        self.summary_label.setText("computing…")
        self.runner.request_stop()          # a pass for outdated settings is abandoned at its next layer
        self.runner.submit(lambda progress, stop: explore(settings, np.random.default_rng(seed), should_stop=stop))

    def _redraw(self) -> None:
        self.seed += 1
        self.recompute_now()

    def _failed(self, message: str) -> None:
        self.summary_label.setText(f"<span style='color:#d32f2f'>{message.splitlines()[0]}</span>")

    def _show(self, result: Exploration | None) -> None:
        if result is None:                   # abandoned (the lab is closing)
            return
        self.result = result
        layers = np.arange(1, result.depth + 1, dtype=np.float64)
        self.violin_item.setPath(violin_path(result.hist_edges, result.hist_density))
        median = result.quantiles[:, 3]
        ok = np.isfinite(median)
        self.median_item.setData(layers[ok], median[ok])
        self.forward_curve.setData(layers, safe_log10(result.std_ratio()))
        self.backward_curve.setData(layers, safe_log10(result.grad_ratio()))
        self.saturated_curve.setData(layers, result.saturated_fraction)
        self.dead_curve.setData(layers, result.dead_fraction)
        q = result.quantiles[:, [0, -1]]
        q = q[np.isfinite(q).all(axis=1)]
        if q.size:
            lo, hi = float(q.min()), float(q.max())
            pad = 0.05 * (hi - lo) or 0.5
            self.violin_plot.setYRange(lo - pad, hi + pad, padding=0)
        self.violin_plot.setXRange(0.4, result.depth + 0.6, padding=0)
        # At least 0.1 … 10, so a flat stack looks flat; more when the signal explodes or vanishes.
        logs = np.concatenate([safe_log10(result.std_ratio()), safe_log10(result.grad_ratio())])
        logs = logs[np.isfinite(logs)]
        low, high = min(-1.0, float(logs.min(initial=0.0))), max(1.0, float(logs.max(initial=0.0)))
        self.std_plot.setYRange(low, high, padding=0.05)
        self._show_propagation(result, layers)
        self.summary_label.setText(result.summary())
        self.updated.emit(result)

    def _show_propagation(self, result: Exploration, layers: np.ndarray) -> None:
        self.propagation_plot.setXRange(0.4, result.depth + 0.6, padding=0)
        self.measured_forward.setData(layers, safe_log10(result.forward_variance))
        self.measured_backward.setData(layers, safe_log10(result.backward_variance))
        self.predicted_forward.setData(layers, safe_log10(result.predicted_forward_variance))
        self.predicted_backward.setData(layers, safe_log10(result.predicted_backward_variance))
        for name, curve in self.reference_curves.items():
            prediction = result.reference_predictions.get(name)
            if prediction is None:
                curve.setData([], [])
            else:
                curve.setData(layers, safe_log10(prediction[0]))
        values = result.jacobian_singular_values
        if values is None:
            for curve in self.jacobian_curves:
                curve.setData([], [])
            self.jacobian_note.setText("Not computed for a stack this large\n(width² × depth too big)")
            self.jacobian_note.setVisible(True)
            self.jacobian_note.setPos(0.0, 0.0)
            self.jacobian_plot.setRange(xRange=(-1, 1), yRange=(-1, 1), padding=0)
            return
        self.jacobian_note.setVisible(False)
        index = np.arange(1, values.shape[1] + 1, dtype=np.float64)
        for i, curve in enumerate(self.jacobian_curves):
            if i < len(values):
                curve.setData(index, safe_log10(values[i]))
            else:
                curve.setData([], [])
        self.jacobian_plot.setXRange(0.5, values.shape[1] + 0.5, padding=0.02)
        logs = safe_log10(values)
        top = float(np.nanmax(logs)) if np.isfinite(logs).any() else 0.0
        low = max(float(np.nanmin(logs)) if np.isfinite(logs).any() else -1.0, top - JACOBIAN_DECADES)
        self.jacobian_plot.setYRange(min(low, -0.5), max(top, 0.5), padding=0.05)

    # ------------------------------------------------------------------ the experiment

    def apply_to_experiment(self) -> str | None:
        """Every hidden layer gets this init and activation (one undoable edit); returns the refusal
        message, if any."""
        data = self.state.data
        activation = self.activation_combo.currentData()
        act_params = self.activation_params.values()
        init = self.init_spec()
        keep = ("units", "batch_norm", "dropout", "use_bias")
        data["model"]["layers"] = [{**{k: row[k] for k in keep if k in row}, "init": init, "activation": activation,
                                    **act_params} for row in data["model"]["layers"]]
        init_name = init if isinstance(init, str) else init["name"]
        return self.state.replace_data(data, f"Labs: {init_name} + {activation} on every hidden layer")

    def shutdown(self) -> None:
        self._timer.stop()
        self.runner.shutdown()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        self._timer.stop()
        self.runner.request_stop()
        super().closeEvent(event)
