"""The optimizer race lab: every registered optimizer from the same start on a 2-D surface, drawn
over its contour plot and animated step by step, with the measured table beside it
(``core.labs.optimizer_race``; the steps are the optimizers' own ``apply``).

Races and learning-rate tuning run on the lab's worker threads; the animation is a QTimer that
reveals more of the precomputed trajectories each tick (the plot pulls, nothing is computed per
frame).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from core.engine.optimizers import OPTIMIZERS
from core.labs.optimizer_race import (
    DEFAULT_TOLERANCE,
    MAX_STEPS,
    SURFACES,
    RaceEntry,
    Surface,
    Trajectory,
    format_report,
    learning_rate_grid,
    measured_table_job,
    momentum_parameter,
    race,
    tune_learning_rate,
)
from core.process import ProcessJob

from ..concurrent import JobRunner
from ..screens import fit_to_screen
from .widgets import RateSpin, colour, plot_widget, safe_log10

FRAME_MS = 33                 # ~30 frames a second
ANIMATION_FRAMES = 150        # a whole race plays in about 5 s at the default speed
CONTOUR_LEVELS = 14
TUNING_GRID = learning_rate_grid(1e-4, 3.0, per_decade=2)   # the race's quick tuning on first show
TABLE_GRID = learning_rate_grid()                             # the measured Table 11-2: the docs' grid

def _fmt_distance(t: Trajectory) -> str:
    return "diverged" if t.diverged else f"{t.final_distance:.2e}"


class Lane:
    """One optimizer's row of controls: enable box, learning rate, momentum-like hyperparameter."""

    def __init__(self, name: str, index: int) -> None:
        cls = OPTIMIZERS.get(name)
        self.name = name
        self.colour = colour(index)
        self.enabled = QCheckBox(name)
        self.enabled.setChecked(True)
        self.enabled.setObjectName(f"enable_{name}")
        self.enabled.setStyleSheet(f"QCheckBox {{ color: {self.colour.name()}; font-weight: bold; }}")
        self.enabled.setToolTip(cls.summary or name)
        self.rate = RateSpin(float(cls.parameters().get("learning_rate", 0.01)))
        self.rate.setObjectName(f"rate_{name}")
        self.rate.setToolTip(f"η for {name}: the learning rate, constant during the race. The arrows step by "
                             "×10^¼ (four clicks a decade). Adaptive methods (AdaGrad, RMSProp, Adam…) take steps "
                             "of about η whatever the gradient; SGD and momentum take η × the gradient.")
        self.momentum_name = momentum_parameter(name)
        self.momentum: QDoubleSpinBox | None = None
        if self.momentum_name is not None:
            spin = QDoubleSpinBox()
            spin.setRange(0.0, 0.999)
            spin.setDecimals(3)
            spin.setSingleStep(0.05)
            spin.setKeyboardTracking(False)
            spin.setValue(float(cls.parameters()[self.momentum_name]))
            spin.setObjectName(f"momentum_{name}")
            documented = cls.hyperparameter(self.momentum_name)
            spin.setPrefix(f"{documented.symbol} " if documented is not None and documented.symbol else "")
            spin.setToolTip(documented.help if documented is not None else self.momentum_name)
            self.momentum = spin

    def entry(self) -> RaceEntry:
        hyper = {self.momentum_name: self.momentum.value()} if self.momentum is not None and self.momentum_name else {}
        return RaceEntry(self.name, self.rate.value(), hyper)


class OptimizerRaceLab(QWidget):
    """The lab. ``raced`` fires (GUI thread) when new trajectories are in; ``tuned`` after rates were
    tuned."""

    raced = Signal(object)
    tuned = Signal(object)

    def __init__(self, parent: QWidget | None = None, *, surface: str | None = None, autotune: bool = True) -> None:
        super().__init__(parent)
        self.setObjectName("optimizerRaceLab")
        self.setWindowTitle("Optimizer race — Gradient Workbench")
        self.autotune = autotune
        self.trajectories: list[Trajectory] = []
        self.frame_step = 0                      # trajectories are shown up to this step
        self.tuned_rates: dict[str, dict[str, float]] = {}     # surface → optimizer → tuned η
        self.race_runner = JobRunner(self, "race")
        self.race_runner.finished.connect(self._race_done)
        self.race_runner.failed.connect(self._failed)
        self.tune_runner = JobRunner(self, "race-tuning")
        self.tune_runner.finished.connect(self._tuning_done)
        self.tune_runner.failed.connect(self._failed)
        self.tune_runner.progress.connect(lambda text: self.status.setText(str(text)))
        self.timer = QTimer(self)
        self.timer.setInterval(FRAME_MS)
        self.timer.timeout.connect(self._tick)
        self._build()
        if surface is not None:
            self.surface_combo.setCurrentIndex(self.surface_combo.findData(surface))
        self._surface_changed()

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        self.surface_combo = QComboBox()
        for name in SURFACES.names():
            cls = SURFACES.get(name)
            self.surface_combo.addItem(cls.title, name)
            self.surface_combo.setItemData(self.surface_combo.count() - 1, cls.summary, Qt.ItemDataRole.ToolTipRole)
        self.surface_combo.setToolTip("The 2-D function the optimizers descend; hover an entry for what it shows.")
        self.surface_combo.currentIndexChanged.connect(self._surface_changed)
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, MAX_STEPS)
        self.steps_spin.setKeyboardTracking(False)
        self.steps_spin.setToolTip("Optimizer steps in the race (the same for every optimizer).")
        self.steps_spin.valueChanged.connect(self.rerun)
        self.tolerance_spin = RateSpin(DEFAULT_TOLERANCE, 1e-8, 1.0)
        self.tolerance_spin.setToolTip("An optimizer has arrived once it stays within this distance of a minimum "
                                       "until the end of the race (speed = the step it arrives; quality = where it "
                                       "ends).")
        self.tolerance_spin.valueChanged.connect(self.rerun)
        self.speed_spin = QSpinBox()
        self.speed_spin.setRange(0, 1000)
        self.speed_spin.setSpecialValueText("auto")
        self.speed_spin.setSuffix(" steps / frame")
        self.speed_spin.setToolTip("Animation speed; auto plays any race in about 5 seconds.")
        top = QFormLayout()
        top.addRow("Surface", self.surface_combo)
        top.addRow("Steps", self.steps_spin)
        top.addRow("Tolerance", self.tolerance_spin)
        top.addRow("Speed", self.speed_spin)

        lanes_box = QGroupBox("Optimizers (from core's registry)")
        grid = QGridLayout(lanes_box)
        for col, text in enumerate(("", "learning rate η", "momentum-like")):
            grid.addWidget(QLabel(f"<i>{text}</i>"), 0, col)
        self.lanes = [Lane(name, i) for i, name in enumerate(OPTIMIZERS.names())]
        for row, lane in enumerate(self.lanes, start=1):
            grid.addWidget(lane.enabled, row, 0)
            grid.addWidget(lane.rate, row, 1)
            if lane.momentum is not None:
                grid.addWidget(lane.momentum, row, 2)
                lane.momentum.valueChanged.connect(self.rerun)
            lane.enabled.toggled.connect(self.rerun)
            lane.rate.valueChanged.connect(self.rerun)

        self.play_button = QPushButton("Play")
        self.play_button.setObjectName("play")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("Animate the race step by step (Space); press again to pause.")
        self.play_button.setShortcut("Space")
        self.play_button.toggled.connect(self._play_toggled)
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Back to the start point (step 0).")
        self.reset_button.clicked.connect(self.reset)
        self.tune_button = QPushButton("Tune rates")
        self.tune_button.setToolTip("For each optimizer, try learning rates from 1e-4 to 3 (two a decade) and keep "
                                    "the one that arrives first (else ends closest): each at its best.")
        self.tune_button.clicked.connect(self.tune)
        self.table_button = QPushButton("Measure Table 11-2…")
        self.table_button.setToolTip("The book's Table 11-2 (convergence speed and quality), measured: every "
                                     "optimizer on every surface at its tuned rate. Takes a few seconds.")
        self.table_button.clicked.connect(self.measure_table)
        buttons = QGridLayout()
        buttons.addWidget(self.play_button, 0, 0)
        buttons.addWidget(self.reset_button, 0, 1)
        buttons.addWidget(self.tune_button, 1, 0)
        buttons.addWidget(self.table_button, 1, 1)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.description = QLabel()
        self.description.setWordWrap(True)

        left = QVBoxLayout()
        left.addLayout(top)
        left.addWidget(lanes_box)
        left.addLayout(buttons)
        left.addWidget(self.status)
        left.addWidget(self.description)
        left.addStretch(1)
        left_widget = QWidget()
        left_widget.setLayout(left)
        left_widget.setMaximumWidth(380)

        self.plot = plot_widget("", "y", "x")
        self.plot.setAspectLocked(False)
        self.image = pg.ImageItem()
        self.image.setColorMap(pg.colormap.get("viridis"))
        self.image.setOpacity(0.55)
        self.plot.addItem(self.image)
        self.isocurves: list[pg.IsocurveItem] = []
        self.distance_plot = plot_widget("", "distance to the nearest minimum (log)", "step", log_y=True)
        self.distance_plot.getPlotItem().setTitle("Convergence: ‖θ_t − θ*‖ (dashed: tolerance)", size="10pt")
        self.tolerance_line = pg.InfiniteLine(angle=0, pen=pg.mkPen("#888888", style=Qt.PenStyle.DashLine))
        self.distance_plot.addItem(self.tolerance_line)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.distance_curves: dict[str, pg.PlotDataItem] = {}
        self.heads: dict[str, pg.ScatterPlotItem] = {}
        for lane in self.lanes:
            pen = pg.mkPen(lane.colour, width=1.5)
            self.distance_curves[lane.name] = self.distance_plot.plot([], [], pen=pg.mkPen(lane.colour, width=1),
                                                                      connect="finite")
            self.curves[lane.name] = self.plot.plot([], [], pen=pen, connect="finite")
            head = pg.ScatterPlotItem(size=9, pen=pg.mkPen("w", width=1), brush=pg.mkBrush(lane.colour))
            head.setZValue(10)
            self.plot.addItem(head)
            self.heads[lane.name] = head
        self.start_marker = pg.ScatterPlotItem(size=12, symbol="o", pen=pg.mkPen("k", width=2), brush=None)
        self.minima_marker = pg.ScatterPlotItem(size=16, symbol="star", pen=pg.mkPen("k"), brush=pg.mkBrush("#ffd700"))
        for item in (self.start_marker, self.minima_marker):
            item.setZValue(11)
            self.plot.addItem(item)
        self.step_text = pg.TextItem(anchor=(0, 1), color="k", fill=pg.mkBrush(255, 255, 255, 200))
        self.step_text.setZValue(12)
        self.plot.addItem(self.step_text)

        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["optimizer", "η", "steps to tol.", "final dist.", "final f − f*"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setToolTip("Measured on the full race: the step from which each optimizer stays within the "
                              "tolerance of a minimum (— never), and its distance from the nearest minimum at "
                              "the end (quality).")
        self.table.setMinimumWidth(400)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.table)
        right.addWidget(self.distance_plot)
        right.setSizes([300, 500])

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.plot)
        split.addWidget(right)
        split.setSizes([700, 420])
        layout = QHBoxLayout(self)
        layout.addWidget(left_widget)
        layout.addWidget(split, 1)

    # ------------------------------------------------------------------ surface

    @property
    def surface(self) -> Surface:
        return SURFACES.get(self.surface_combo.currentData())()

    def _surface_changed(self) -> None:
        surface = self.surface
        self.steps_spin.blockSignals(True)
        self.steps_spin.setValue(surface.steps)
        self.steps_spin.blockSignals(False)
        self.description.setText(surface.summary)
        self.plot.getPlotItem().setTitle(f"{surface.title}: contours of "
                                         f"{'log10(1 + f − f*)' if surface.log_contours else 'f'}")
        self._draw_contours(surface)
        x0, y0 = surface.start
        self.start_marker.setData([x0], [y0])
        self.minima_marker.setData([m[0] for m in surface.minima], [m[1] for m in surface.minima])
        self.plot.setXRange(*surface.x_range, padding=0)
        self.plot.setYRange(*surface.y_range, padding=0)
        name = surface.name
        if name in self.tuned_rates:
            self._set_rates(self.tuned_rates[name])
        elif self.autotune:
            self.tune()
        self.rerun()

    def _draw_contours(self, surface: Surface) -> None:
        _, _, f = surface.grid(240)
        f = f - surface.minimum_value()
        shown = np.log10(1.0 + np.maximum(f, 0.0)) if surface.log_contours else f
        shown = np.where(np.isfinite(shown), shown, np.nanmax(shown[np.isfinite(shown)]))
        self.contour_data = shown
        self.image.setImage(shown, autoLevels=True)
        (x0, x1), (y0, y1) = surface.x_range, surface.y_range
        self.image.setRect(x0, y0, x1 - x0, y1 - y0)
        for iso in self.isocurves:
            iso.setParentItem(None)
            self.plot.removeItem(iso)
        lo, hi = float(np.min(shown)), float(np.quantile(shown, 0.9))
        levels = lo + (hi - lo) * (np.linspace(0.0, 1.0, CONTOUR_LEVELS + 1)[1:] ** 2)
        self.isocurves = []
        for level in levels:
            iso = pg.IsocurveItem(data=shown, level=float(level), pen=pg.mkPen((255, 255, 255, 150), width=1))
            iso.setParentItem(self.image)
            self.isocurves.append(iso)

    # ------------------------------------------------------------------ racing

    def entries(self) -> list[RaceEntry]:
        return [lane.entry() for lane in self.lanes if lane.enabled.isChecked()]

    def rerun(self) -> None:
        """Recompute the race (on the worker) with the current settings; the animation restarts."""
        surface, entries = self.surface, self.entries()
        steps, tolerance = self.steps_spin.value(), self.tolerance_spin.value()
        self.status.setText("racing…")
        self.race_runner.submit(lambda progress, stop: (surface.name, race(surface, entries, steps,
                                                                           tolerance=tolerance)))

    def _race_done(self, result: tuple[str, list[Trajectory]]) -> None:
        name, trajectories = result
        if name != self.surface_combo.currentData():
            return
        self.trajectories = trajectories
        self._fill_table()
        self.tolerance_line.setValue(math.log10(self.tolerance_spin.value()))
        self.distance_plot.setXRange(0, max(self.total_steps, 1), padding=0.02)
        logs = np.concatenate([safe_log10(t.distances) for t in trajectories] or [np.zeros(1)])
        logs = logs[np.isfinite(logs)]
        if logs.size:
            self.distance_plot.setYRange(max(float(logs.min()), -12.0), float(logs.max()), padding=0.05)
        self.frame_step = 0 if self.play_button.isChecked() else self.total_steps
        self._draw()
        self.status.setText(f"{len(trajectories)} optimizers, {self.total_steps} steps")
        self.raced.emit(trajectories)

    @property
    def total_steps(self) -> int:
        return max((t.n_steps for t in self.trajectories), default=0)

    def _fill_table(self) -> None:
        surface = self.surface
        f_star = surface.minimum_value()
        rows = sorted(self.trajectories, key=lambda t: (t.steps_to_tolerance is None,
                                                         t.steps_to_tolerance or 0, t.final_distance))
        self.table.setRowCount(len(rows))
        lanes = {lane.name: lane for lane in self.lanes}
        for r, t in enumerate(rows):
            final = t.points[-1]
            with np.errstate(all="ignore"):
                gap = float(surface.value(final[0], final[1])) - f_star
            cells = [t.optimizer, f"{t.learning_rate:.3g}",
                     "—" if t.steps_to_tolerance is None else str(t.steps_to_tolerance), _fmt_distance(t),
                     "—" if t.diverged or not math.isfinite(gap) else f"{gap:.2e}"]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c == 0:
                    item.setForeground(lanes[t.optimizer].colour)
                    item.setToolTip(OPTIMIZERS.get(t.optimizer).summary)
                self.table.setItem(r, c, item)
        # Every row in view: the last is the slowest optimizer, the one the ranking is about (at
        # 1366 × 768 the ninth row had been behind a scroll bar). The splitter gives the
        # convergence plot what is left.
        table = self.table
        rows_height = sum(table.rowHeight(r) for r in range(table.rowCount()))
        scroll = table.horizontalScrollBar()
        table.setMinimumHeight(table.horizontalHeader().height() + rows_height + 2 * table.frameWidth()
                               + (scroll.sizeHint().height() if scroll.isVisible() else 0))

    def _draw(self) -> None:
        shown = {t.optimizer: t for t in self.trajectories}
        for name, curve in self.curves.items():
            t = shown.get(name)
            if t is None:
                curve.setData([], [])
                self.heads[name].setData([], [])
                self.distance_curves[name].setData([], [])
                continue
            k = min(self.frame_step, t.n_steps)
            pts = t.points[:k + 1]
            curve.setData(pts[:, 0], pts[:, 1])
            self.heads[name].setData([pts[-1, 0]], [pts[-1, 1]])
            self.distance_curves[name].setData(np.arange(k + 1, dtype=np.float64), safe_log10(t.distances[:k + 1]))
        (x0, _), (y0, _) = self.surface.x_range, self.surface.y_range
        self.step_text.setText(f"step {min(self.frame_step, self.total_steps)} / {self.total_steps}")
        self.step_text.setPos(x0, y0)

    # ------------------------------------------------------------------ animation

    def _play_toggled(self, playing: bool) -> None:
        self.play_button.setText("Pause" if playing else "Play")
        if playing:
            if self.frame_step >= self.total_steps:
                self.frame_step = 0
            self.timer.start()
        else:
            self.timer.stop()

    def play(self) -> None:
        self.play_button.setChecked(True)

    def pause(self) -> None:
        self.play_button.setChecked(False)

    def reset(self) -> None:
        self.show_step(0)

    def show_step(self, step: int) -> None:
        """Show every trajectory up to ``step``."""
        self.frame_step = max(0, min(int(step), self.total_steps))
        self._draw()

    def _tick(self) -> None:
        speed = self.speed_spin.value() or max(1, math.ceil(self.total_steps / ANIMATION_FRAMES))
        self.frame_step = min(self.frame_step + speed, self.total_steps)
        self._draw()
        if self.frame_step >= self.total_steps:
            self.pause()

    # ------------------------------------------------------------------ tuning and the table

    def _set_rates(self, rates: dict[str, float]) -> None:
        for lane in self.lanes:
            if lane.name in rates:
                lane.rate.blockSignals(True)
                lane.rate.setValue(rates[lane.name])
                lane.rate.blockSignals(False)

    def tune(self) -> None:
        """Tune every optimizer's rate on this surface (worker thread), then race again."""
        surface, steps, tolerance = self.surface, self.steps_spin.value(), self.tolerance_spin.value()
        hyper = {lane.name: lane.entry().hyperparameters for lane in self.lanes}

        def job(progress: Any, stop: Any) -> tuple[str, dict[str, float]]:
            rates = {}
            for i, (name, h) in enumerate(hyper.items()):
                if stop():
                    break
                progress(f"tuning {name} ({i + 1}/{len(hyper)})…")
                rates[name] = tune_learning_rate(surface, name, steps, grid=TUNING_GRID, tolerance=tolerance,
                                                 hyperparameters=h).learning_rate
            return surface.name, rates

        self.status.setText("tuning learning rates…")
        self.tune_runner.submit(job)

    def _tuning_done(self, result: tuple[str, dict[str, float]]) -> None:
        name, rates = result
        self.tuned_rates[name] = rates
        if name == self.surface_combo.currentData():
            self._set_rates(rates)
            self.rerun()
        self.tuned.emit(rates)

    def measure_table(self) -> QDialog:
        """Compute the measured Table 11-2 on the worker and show it in a dialog (returned)."""
        dialog = QDialog(self)
        dialog.setObjectName("table112")
        dialog.setWindowTitle("Table 11-2, measured — Gradient Workbench")
        browser = QTextBrowser()
        bar = QProgressBar()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dialog.reject)
        box = QVBoxLayout(dialog)
        note = QLabel("Every registered optimizer on every surface, each at its best rate from a grid "
                      "(1e-4 … 3, four a decade, as in the docs). Speed: steps to stay within the tolerance, "
                      "relative to the fastest; quality: on how many surfaces it got there. The book's ratings "
                      "beside, and below the table why they differ.")
        note.setWordWrap(True)
        box.addWidget(note)
        box.addWidget(bar)
        box.addWidget(browser, 1)
        box.addWidget(buttons)
        fit_to_screen(dialog, QSize(1100, 460), self.screen())
        tolerance = self.tolerance_spin.value()
        runner = JobRunner(dialog, "table-11-2")
        runner.progress.connect(lambda p: (bar.setMaximum(p[1]), bar.setValue(p[0])))
        def show(rows: list[Any]) -> None:
            dialog.rows = rows  # type: ignore[attr-defined]
            browser.setMarkdown(format_report(rows, tolerance, TABLE_GRID))
            bar.hide()

        runner.finished.connect(show)
        runner.failed.connect(lambda message: browser.setPlainText(message))
        dialog.finished.connect(lambda _result: runner.shutdown())
        # In a child process: every optimizer tuned on every surface keeps a core busy for seconds.
        runner.submit(ProcessJob(measured_table_job, (tolerance, tuple(TABLE_GRID)),
                                 name="gradient-workbench-table-11-2"))
        dialog.runner = runner  # type: ignore[attr-defined]
        dialog.browser = browser  # type: ignore[attr-defined]
        dialog.show()
        return dialog

    def _failed(self, message: str) -> None:
        self.status.setText(f"<span style='color:#d32f2f'>{message.splitlines()[0]}</span>")

    def shutdown(self) -> None:
        self.timer.stop()
        for dialog in self.findChildren(QDialog):
            dialog.close()
        self.race_runner.shutdown()
        self.tune_runner.shutdown()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        self.pause()
        self.tune_runner.request_stop()
        super().closeEvent(event)
