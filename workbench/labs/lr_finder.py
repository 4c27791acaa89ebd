"""The learning-rate finder lab: Smith's range test on the current experiment
(``core.labs.lr_finder``), run on a worker thread with a Stop button, plotted as loss against the
learning rate on a log axis, with the suggestion marked and two buttons that write it into the
experiment (undoable edits through the state).

The test trains a scratch copy of the experiment (same data, split, seed and initial weights);
the experiment and any trained weights are left as they are.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.labs.lr_finder import RangeTest, lr_range_test_job, with_learning_rate, with_one_cycle_peak
from core.process import ProcessJob
from core.spec import Experiment

from ..concurrent import JobRunner
from ..state import ExperimentState
from .widgets import RateSpin, plot_widget, safe_log10

RAW_COLOUR = (120, 120, 120, 110)
SMOOTH_COLOUR = "#1f77b4"
SUGGESTION_COLOUR = "#2ca02c"


class LRFinderLab(QWidget):
    """The lab. ``finished`` fires (GUI thread) with the ``RangeTest`` when a run ends."""

    finished = Signal(object)

    def __init__(self, state: ExperimentState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setObjectName("lrFinderLab")
        self.setWindowTitle("Learning-rate finder — Gradient Workbench")
        self.result: RangeTest | None = None
        self.points: dict[str, list[float]] = {"lr": [], "loss": [], "smoothed": []}
        self.runner = JobRunner(self, "lr-finder")
        self.runner.progress.connect(self._progress)
        self.runner.finished.connect(self._done)
        self.runner.failed.connect(self._failed)
        self.runner.busy_changed.connect(self._busy_changed)
        self._build()
        self.state.changed.connect(self._experiment_changed)
        self._experiment_changed(self.state.experiment)

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        self.experiment_label = QLabel()
        self.experiment_label.setWordWrap(True)
        box = QGroupBox("Range test")
        form = QFormLayout(box)
        self.min_spin = RateSpin(1e-6, 1e-9, 1.0)
        self.min_spin.setToolTip("η_min: the first, tiny rate (the loss should barely move).")
        self.max_spin = RateSpin(10.0, 1e-4, 1e3)
        self.max_spin.setToolTip("η_max: the last rate, large enough for the loss to blow up.")
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(10, 5000)
        self.steps_spin.setValue(300)
        self.steps_spin.setToolTip("Training steps (mini-batches); η grows by the same factor every step: "
                                   "η_t = η_min·(η_max/η_min)^(t/(T−1)). The book: a few hundred.")
        self.smoothing_spin = QDoubleSpinBox()
        self.smoothing_spin.setRange(0.0, 0.99)
        self.smoothing_spin.setDecimals(2)
        self.smoothing_spin.setSingleStep(0.05)
        self.smoothing_spin.setValue(0.9)
        self.smoothing_spin.setToolTip("β of the loss's moving average (bias-corrected, as Adam's): 0.9 averages "
                                       "about the last 10 steps. Larger is smoother but lags, which shifts the curve "
                                       "towards larger rates.")
        self.explode_spin = QDoubleSpinBox()
        self.explode_spin.setRange(1.5, 100.0)
        self.explode_spin.setValue(4.0)
        self.explode_spin.setToolTip("Stop once the smoothed loss exceeds this multiple of the best so far: the "
                                     "loss has exploded, larger rates tell nothing more.")
        form.addRow("From η", self.min_spin)
        form.addRow("To η", self.max_spin)
        form.addRow("Steps", self.steps_spin)
        form.addRow("Smoothing β", self.smoothing_spin)
        form.addRow("Stop at loss ×", self.explode_spin)

        self.start_button = QPushButton("Run range test")
        self.start_button.setObjectName("start")
        self.start_button.setToolTip("Train a scratch copy of the experiment with an exponentially growing learning "
                                     "rate (worker thread). The experiment's weights are not touched.")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("stop")
        self.stop_button.setToolTip("End the test after the current mini-batch; what was measured stays.")
        self.stop_button.clicked.connect(self.runner.request_stop)
        self.stop_button.setEnabled(False)
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setFormat("%v / %m steps")
        self.suggestion_label = QLabel("Run the test to get a suggestion.")
        self.suggestion_label.setWordWrap(True)
        self.suggestion_label.setMinimumHeight(5 * self.fontMetrics().lineSpacing())
        self.suggestion_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.suggestion_label.setObjectName("suggestion")
        self.use_rate_button = QPushButton("Use as learning rate")
        self.use_rate_button.setObjectName("useRate")
        self.use_rate_button.setToolTip("Set the optimizer's learning_rate to the suggestion (undoable). Under "
                                        "1cycle, bounds it would break fall back to their defaults.")
        self.use_rate_button.clicked.connect(self.use_as_learning_rate)
        self.use_peak_button = QPushButton("Use as 1cycle peak")
        self.use_peak_button.setObjectName("usePeak")
        self.use_peak_button.setToolTip("Switch the schedule to 1cycle with this maximum rate η1 (undoable); η0 "
                                        "is kept if below it, else set to η1/10 — the book's 1cycle recipe.")
        self.use_peak_button.clicked.connect(self.use_as_one_cycle_peak)
        for button in (self.use_rate_button, self.use_peak_button):
            button.setEnabled(False)
        explain = QLabel("The book: train a few hundred iterations while the rate grows exponentially, plot the "
                         "loss, and pick a rate about 10× lower than where it bottoms out and starts to climb.")
        explain.setWordWrap(True)

        run_row = QHBoxLayout()
        run_row.addWidget(self.start_button)
        run_row.addWidget(self.stop_button)
        use_row = QHBoxLayout()
        use_row.addWidget(self.use_rate_button)
        use_row.addWidget(self.use_peak_button)
        left = QVBoxLayout()
        left.addWidget(self.experiment_label)
        left.addWidget(box)
        left.addLayout(run_row)
        left.addWidget(self.progress_bar)
        left.addWidget(self.suggestion_label)
        left.addLayout(use_row)
        left.addWidget(explain)
        left.addStretch(1)
        left_widget = QWidget()
        left_widget.setLayout(left)
        left_widget.setMaximumWidth(360)

        self.plot = plot_widget("Loss against the learning rate", "training loss", "learning rate η (log scale)",
                                log_x=True)
        self.plot.addLegend(offset=(-10, 10))
        self.raw_curve = self.plot.plot([], [], pen=pg.mkPen(RAW_COLOUR, width=1), connect="finite",
                                        name="batch loss")
        self.smooth_curve = self.plot.plot([], [], pen=pg.mkPen(SMOOTH_COLOUR, width=2), connect="finite",
                                           name="smoothed")
        self.suggestion_line = pg.InfiniteLine(angle=90, pen=pg.mkPen(SUGGESTION_COLOUR, width=2),
                                               label="suggested", labelOpts={"position": 0.92,
                                                                             "color": SUGGESTION_COLOUR})
        self.minimum_line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#d62728", style=Qt.PenStyle.DashLine),
                                            label="lowest loss", labelOpts={"position": 0.85, "color": "#d62728"})
        self.steepest_marker = pg.ScatterPlotItem(size=10, symbol="d", brush=pg.mkBrush("#ff7f0e"), pen=None)
        for item in (self.suggestion_line, self.minimum_line, self.steepest_marker):
            item.setVisible(False)
            self.plot.addItem(item)
        layout = QHBoxLayout(self)
        layout.addWidget(left_widget)
        layout.addWidget(self.plot, 1)
        for spin in (self.min_spin, self.max_spin):
            spin.valueChanged.connect(lambda _: self._show_span())
        self._show_span()

    def _show_span(self) -> None:
        """Before a test has drawn anything, the rate axis spans the rates it will try (an empty
        log axis spans 10⁰ to 10¹ and reads "2 3 … 9", as if those were the rates)."""
        if self.points["lr"]:
            return
        low, high = self.min_spin.value(), self.max_spin.value()
        if 0 < low < high:
            self.plot.setXRange(math.log10(low), math.log10(high), padding=0.02)

    # ------------------------------------------------------------------ running

    def _experiment_changed(self, experiment: Experiment) -> None:
        self.experiment_label.setText(f"<b>Experiment:</b> {experiment.name}<br>optimizer {experiment.optimizer.name}, "
                                      f"η = {experiment.learning_rate:g}, schedule {experiment.schedule.name}")

    def start(self) -> None:
        """Run the range test on the current experiment (in a child process)."""
        if self.runner.busy:
            return
        experiment = self.state.experiment
        base_dir = self.state.file.parent if self.state.file is not None else None
        options = {"min_learning_rate": self.min_spin.value(), "max_learning_rate": self.max_spin.value(),
                   "steps": self.steps_spin.value(), "smoothing": self.smoothing_spin.value(),
                   "explode_factor": self.explode_spin.value()}
        self.points = {"lr": [], "loss": [], "smoothed": []}
        self.result = None
        self._show_span()
        self._draw_marks(None)
        self.progress_bar.setRange(0, options["steps"])
        self.progress_bar.setValue(0)
        self.suggestion_label.setText("running…")
        # In a child process: the test trains a network for hundreds of steps, which on a thread of
        # the window took the interpreter lock from its painting (event-loop lateness 94 ms at the
        # 99th percentile on a loaded 2-core machine).
        self.runner.submit(ProcessJob(lr_range_test_job, (experiment, None if base_dir is None else str(base_dir),
                                                          options), name="gradient-workbench-lr-finder"))

    def stop(self) -> None:
        self.runner.request_stop()

    def _busy_changed(self, busy: bool) -> None:
        self.start_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)

    def _progress(self, info: dict[str, Any]) -> None:
        self.points = {k: info[k] for k in ("lr", "loss", "smoothed")}
        self.progress_bar.setValue(int(info["step"]))
        self._draw_curves()

    def _draw_curves(self) -> None:
        x = safe_log10(np.asarray(self.points["lr"]))
        loss = np.asarray(self.points["loss"], dtype=np.float64)
        smoothed = np.asarray(self.points["smoothed"], dtype=np.float64)
        self.raw_curve.setData(x, np.where(np.isfinite(loss), loss, np.nan))
        self.smooth_curve.setData(x, np.where(np.isfinite(smoothed), smoothed, np.nan))
        finite = smoothed[np.isfinite(smoothed)]
        if finite.size:
            # The interesting part is below the start: do not let the explosion squash it.
            top = min(float(np.nanmax(finite)), 1.5 * float(finite[0]) if finite[0] > 0 else float(np.nanmax(finite)))
            self.plot.setYRange(0.0, max(top, float(np.nanmin(finite))) * 1.05, padding=0)

    def _done(self, result: RangeTest) -> None:
        self.result = result
        self.points = {"lr": list(result.learning_rates), "loss": list(result.losses),
                       "smoothed": list(result.smoothed)}
        self._draw_curves()
        self.progress_bar.setValue(result.n_steps)
        self._draw_marks(result)
        suggestion = result.suggestion
        ended = {"completed": "ran all steps", "exploded": "stopped when the loss exploded",
                 "diverged": "stopped when the loss became NaN", "stopped": "stopped by you"}[result.reason]
        if suggestion is None:
            why = result.problem or "the curve cannot be read"
            self.suggestion_label.setText(f"The test {ended} after {result.n_steps} steps: <b>no suggestion</b>, "
                                          f"because {why}.")
        else:
            steep = result.steepest_rate
            trial = result.trial
            checked = "" if trial is None else (
                f"<br>Checked: {trial.steps} steps at it from the start took the loss from {trial.loss_before:.3g} "
                f"to {trial.loss_after:.3g}.")
            self.suggestion_label.setText(
                f"The test {ended} after {result.n_steps} steps.<br><b>Suggested η = {suggestion:.2g}</b>: a tenth "
                f"of {result.loss_minimum_rate:.2g}, where the smoothed loss is lowest."
                + (f"<br>Steepest descent at η = {steep:.2g} (◆)." if steep is not None else "") + checked)
        for button in (self.use_rate_button, self.use_peak_button):
            button.setEnabled(suggestion is not None)
        self.finished.emit(result)

    def _draw_marks(self, result: RangeTest | None) -> None:
        visible = result is not None and result.suggestion is not None
        for item in (self.suggestion_line, self.minimum_line, self.steepest_marker):
            item.setVisible(visible)
        if not visible:
            for button in (self.use_rate_button, self.use_peak_button):
                button.setEnabled(False)
            return
        assert result is not None and result.suggestion is not None and result.loss_minimum_rate is not None
        self.suggestion_line.setValue(float(np.log10(result.suggestion)))
        self.suggestion_line.label.setFormat(f"suggested {result.suggestion:.2g}")
        self.minimum_line.setValue(float(np.log10(result.loss_minimum_rate)))
        steep = result.steepest_rate
        if steep is not None:
            i = int(np.argmin(np.abs(result.learning_rates - steep)))
            self.steepest_marker.setData([float(np.log10(steep))], [float(result.smoothed[i])])

    def _failed(self, message: str) -> None:
        self.suggestion_label.setText(f"<span style='color:#d32f2f'>The test failed: {message.splitlines()[0]}</span>")

    # ------------------------------------------------------------------ applying

    def use_as_learning_rate(self) -> str | None:
        if self.result is None or self.result.suggestion is None:
            return None
        lr = float(f"{self.result.suggestion:.2g}")
        return self.state.replace_data(with_learning_rate(self.state.data, lr), f"LR finder: learning rate {lr:g}")

    def use_as_one_cycle_peak(self) -> str | None:
        if self.result is None or self.result.suggestion is None:
            return None
        peak = float(f"{self.result.suggestion:.2g}")
        return self.state.replace_data(with_one_cycle_peak(self.state.data, peak), f"LR finder: 1cycle peak {peak:g}")

    def shutdown(self) -> None:
        self.runner.shutdown()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        self.runner.request_stop()
        super().closeEvent(event)
