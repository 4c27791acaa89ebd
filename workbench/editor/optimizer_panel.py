"""The Optimizer panel: the optimizer and its hyperparameters, the learning-rate schedule and
its parameters, and a live preview of the learning rate over the planned steps computed with
the real schedule classes of ``core.engine.schedules``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QLocale, Qt
from PySide6.QtWidgets import QLabel, QWidget

from core.engine.optimizers import OPTIMIZERS
from core.engine.schedules import SCHEDULES, Schedule
from core.spec import Experiment

from ..state import ExperimentState
from .component import ComponentEditor
from .dataset_info import DataFacts, DataInfo
from .fields import clear_errors, edit, vbox
from .help import field_help
from .panel import Panel

MAX_PREVIEW_POINTS = 2000


def planned_steps(experiment: Experiment, facts: DataFacts) -> tuple[int, int] | None:
    """(steps per epoch, total steps) as the trainer will bind the schedule, or None if the
    data size is unknown. Steps per epoch = ⌈training examples / batch size⌉."""
    train = facts.train_samples(experiment.data.validation_split, experiment.data.test_split)
    if not train:
        return None
    batch = min(experiment.training.batch_size, train)
    per_epoch = math.ceil(train / batch)
    return per_epoch, per_epoch * experiment.training.epochs


def schedule_curve(experiment: Experiment, steps_per_epoch: int, total_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The learning rate the schedule gives at (a sample of) the steps 0 … total_steps − 1,
    including the steps where it changes course (1cycle's phases, piecewise boundaries)."""
    schedule: Schedule = SCHEDULES.get(experiment.schedule.name).from_config(
        experiment.schedule.params, experiment.learning_rate)
    schedule.bind(steps_per_epoch, total_steps)
    last = total_steps - 1
    if total_steps <= MAX_PREVIEW_POINTS:
        steps = np.arange(total_steps)
    else:
        steps = np.unique(np.linspace(0, last, MAX_PREVIEW_POINTS).round().astype(np.int64))
        corners: list[int] = []
        if hasattr(schedule, "phases"):
            corners.extend(schedule.phases())
        for boundary in getattr(schedule, "boundaries", ()):
            corners.extend([boundary * steps_per_epoch - 1, boundary * steps_per_epoch])
        if corners:
            steps = np.unique(np.clip(np.concatenate([steps, corners]), 0, last))
    rates = np.array([schedule(int(t)) for t in steps], dtype=np.float64)
    return steps.astype(np.float64), rates


def momentum_curve(experiment: Experiment, steps_per_epoch: int, total_steps: int,
                   steps: np.ndarray) -> np.ndarray | None:
    """The momentum β the schedule gives the optimizer at ``steps`` (1cycle cycles it, 0.95 → 0.85 →
    0.95), or None when the optimizer has no β or the schedule leaves it alone."""
    if "momentum" not in OPTIMIZERS.get(experiment.optimizer.name).parameters():
        return None
    schedule: Schedule = SCHEDULES.get(experiment.schedule.name).from_config(
        experiment.schedule.params, experiment.learning_rate)
    schedule.bind(steps_per_epoch, total_steps)
    betas = [schedule.momentum(int(t)) for t in steps]
    if not betas or betas[0] is None:
        return None
    return np.array(betas, dtype=np.float64)


def starting_parameters(section: str, name: str, experiment: Experiment) -> dict[str, Any]:
    """Values for hyperparameters that have no usable default, so that picking the choice gives
    a valid experiment to edit: piecewise scheduling needs boundaries and rates (here: divide
    the rate by 10 halfway through)."""
    if section == "schedule" and name == "piecewise":
        lr = experiment.learning_rate
        return {"boundaries": [max(1, experiment.training.epochs // 2)], "values": [lr, lr / 10]}
    return {}


class OptimizerPanel(Panel):
    def __init__(self, state: ExperimentState, info: DataInfo, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.info = info
        self.optimizer = self._section_editor("optimizer", OPTIMIZERS)
        self.group("Optimizer", vbox(self.optimizer))
        self.schedule = self._section_editor("schedule", SCHEDULES)
        box = vbox(self.schedule)
        self.plot = pg.PlotWidget()
        self.plot.setObjectName("schedulePreview")
        self.plot.setMinimumHeight(150)
        self.plot.setMaximumHeight(220)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.plot.setLabel("bottom", "optimizer step")
        self.plot.setLabel("left", "learning rate")
        self.plot.getAxis("left").enableAutoSIPrefix(False)     # plain rates (0.005), never "(x0.001)"
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setToolTip("The learning rate the schedule will use at each step of the planned run "
                             "(epochs × steps per epoch), computed by the schedule itself; with 1cycle and "
                             "an optimizer with momentum, the momentum β it cycles (dashed, right axis)")
        self.curve = self.plot.plot([], [], pen=pg.mkPen(color=(70, 130, 200), width=1))
        self.curve.setObjectName("scheduleCurve")
        # The momentum β that 1cycle cycles against the rate, on its own axis at the right.
        self.momentum_view = pg.ViewBox(enableMouse=False)
        item = self.plot.getPlotItem()
        item.scene().addItem(self.momentum_view)
        item.getAxis("right").linkToView(self.momentum_view)
        self.momentum_view.setXLink(item.vb)
        item.getAxis("right").setLabel("momentum β")
        self.momentum_curve = pg.PlotDataItem([], [], pen=pg.mkPen(color=(220, 120, 30), width=1,
                                                                     style=Qt.PenStyle.DashLine))
        self.momentum_curve.setObjectName("momentumCurve")
        self.momentum_view.addItem(self.momentum_curve)
        item.vb.sigResized.connect(lambda: self.momentum_view.setGeometry(item.vb.sceneBoundingRect()))
        box.addWidget(self.plot)
        self.preview_info = QLabel()
        self.preview_info.setObjectName("schedulePreviewInfo")
        self.preview_info.setWordWrap(True)
        box.addWidget(self.preview_info)
        self.group("Learning-rate schedule", box)
        self.info.changed.connect(self.refresh)
        self.finish()

    def _section_editor(self, section: str, registry: Any) -> ComponentEditor:
        """The ``optimizer`` or ``schedule`` section: ``{"name": ..., <hyperparameters>}``."""
        label, tip = field_help(f"{section}.name")
        editor = ComponentEditor(
            self.binder, registry, family=section, name_path=f"{section}.name", label=label, tooltip=tip,
            read=lambda: (getattr(self.state.experiment, section).name,
                          dict(getattr(self.state.experiment, section).params)),
            set_name=lambda name: self._set_name(section, registry, name),
            params_at=lambda d: d[section], param_path=lambda k: f"{section}.{k}")
        self.components.append(editor)
        return editor

    def _set_name(self, section: str, registry: Any, name: str) -> Any:
        """Another optimizer / schedule: hyperparameters it shares with the old one are kept."""
        allowed = set(registry.get(name).parameters()) if name in registry else set()

        starter = starting_parameters(section, name, self.state.experiment)

        def change(d: dict) -> None:
            old = d[section]
            d[section] = {"name": name, **starter, **{k: v for k, v in old.items() if k in allowed}}

        message = edit(self.state, f"{section}.name", change, f"{section.capitalize()}: {name}")
        if message is None:
            clear_errors(self.state, f"{section}.", keep=[f"{section}.name"])
        return message

    def refresh(self) -> None:
        experiment = self.state.experiment
        locale = QLocale()
        plan = planned_steps(experiment, self.info.facts)
        if plan is None:
            self.curve.setData([], [])
            self.preview_info.setText("The number of steps is known once the data is loaded (Data panel).")
            return
        per_epoch, total = plan
        try:
            x, y = schedule_curve(experiment, per_epoch, total)
        except (ValueError, RuntimeError) as exc:
            self.curve.setData([], [])
            self.preview_info.setText(f"No preview: {exc}")
            return
        self.curve.setData(x, y)
        betas = momentum_curve(experiment, per_epoch, total, x)
        self.plot.getPlotItem().showAxis("right", betas is not None)
        self.momentum_curve.setData(x if betas is not None else [], betas if betas is not None else [])
        if betas is not None:      # around β's own range: a dip of 0.1 would be a ripple on 0 … 1
            self.momentum_view.setYRange(max(0.0, float(np.min(betas)) - 0.05), min(1.0, float(np.max(betas)) + 0.05),
                                         padding=0)
        self.plot.setXRange(0, max(total - 1, 1), padding=0.02)
        high = float(np.max(y))
        self.plot.setYRange(0, high * 1.05 if high > 0 else 1, padding=0)
        first, last = float(y[0]), float(y[-1])
        course = (f"η = {_g(first)} throughout" if _g(first) == _g(last) and _g(high) == _g(first)
                  else f"η {_g(first)} at the first step, {_g(last)} at the last")
        if _g(high) not in (_g(first), _g(last)):
            course += f" (highest {_g(high)})"
        text = (f"{experiment.training.epochs} epochs × {locale.toString(per_epoch)} steps = "
                f"{locale.toString(total)} steps; {course}.")
        if betas is not None and _g(float(np.min(betas))) != _g(float(betas[0])):
            text += (f" Momentum β {_g(float(betas[0]))} → {_g(float(np.min(betas)))} → {_g(float(betas[-1]))}"
                     " (dashed, right axis): it falls while η rises.")
        if experiment.schedule.name == "performance":
            text += " Performance scheduling reacts to the metric during training, so the preview is flat."
        if not self.info.facts.exact:
            text += " (Steps estimated from the dataset's size.)"
        self.preview_info.setText(text)



def _g(value: float) -> str:
    text = format(value, ".3g")
    point = QLocale().decimalPoint()
    return text.replace(".", point) if point != "." else text
