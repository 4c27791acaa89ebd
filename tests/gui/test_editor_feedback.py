"""What the editor docks say about the experiment, read as a teacher would (issue 17): the schedule
preview's axis and caption, a balanced data set, the data the experiment really trains on, Train
disabled by a data file the preview marked bad, and the folder relative paths resolve against."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QLocale, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QLabel, QMenu, QPushButton, QSpinBox, QToolBar, QWidget

from core.spec import parse_experiment
from core.training import Trainer

from .monitor_support import make_window_fixture, open_and_wait, tiny_spec  # noqa: F401 (fixture)
from .test_editor import choose_file_in_dialog, field, show_dock, type_into


def test_the_schedule_preview_reads_plain_rates_first_to_last(make_window: Any, qtbot: Any) -> None:
    window = make_window()
    show_dock(window, "Optimizer")
    plot = window.findChild(QWidget, "schedulePreview")
    field(window, "schedule.name", QComboBox).setCurrentText("exponential")
    type_into(qtbot, field(window, "schedule.steps", QSpinBox), "20")
    caption = window.findChild(QLabel, "schedulePreviewInfo")
    x, y = plot.getPlotItem().listDataItems()[0].getData()
    text = caption.text()
    assert f"η {y[0]:.3g} at the first step, {y[-1]:.3g} at the last" in text, text
    axis = plot.getPlotItem().getAxis("left")
    assert "(x" not in axis.labelString() and "learning rate" in axis.labelString()
    y0, y1 = plot.getPlotItem().vb.viewRange()[1]
    for spacing, values in axis.tickValues(y0, y1, axis.height()):
        strings = axis.tickStrings(values, 1.0, spacing)      # the tick labels as drawn, no SI scale
        assert all(abs(float(s) - v) <= spacing / 100 for s, v in zip(strings, values, strict=True)), strings
    field(window, "schedule.name", QComboBox).setCurrentText("constant")
    assert "η = 0.01 throughout" in caption.text()


def test_a_balanced_data_set_says_so(make_window: Any, qtbot: Any) -> None:
    window = make_window(parse_experiment(tiny_spec(samples=200)))
    show_dock(window, "Data")
    preview = window.findChild(QLabel, "dataPreview")
    qtbot.waitUntil(lambda: "Classification" in preview.text(), timeout=10_000)
    assert "balanced: 100 each" in preview.text()
    assert "Fewest" not in preview.text()


def test_the_data_preview_describes_the_split_the_experiment_trains_on(make_window: Any, qtbot: Any) -> None:
    """The overfitting preset trains on 10 % of digits: the preview says 180 of 1,797 and its solid
    bars are the training split's classes, as a Trainer cuts them."""
    window = make_window()
    show_dock(window, "Data")
    window.findChild(QMenu, "presetsMenu").findChild(QAction, "preset_overfitting").trigger()
    preview = window.findChild(QLabel, "dataPreview")
    number = QLocale().toString
    qtbot.waitUntil(lambda: "Trains on" in preview.text() and f"{number(1797)} samples" in preview.text(),
                    timeout=20_000)
    trainer = Trainer(window.state.experiment)
    train = np.bincount(trainer.dataset.y[trainer.split.train], minlength=10)
    assert f"Trains on {number(len(trainer.split.train))}</b> of them (10 %; validation " \
           f"{number(len(trainer.split.val))}, test {number(len(trainer.split.test))})" in preview.text()
    assert len(trainer.split.train) == 180
    bars = [item for item in window.findChild(QWidget, "classBalance").getPlotItem().items
            if hasattr(item, "opts") and "height" in item.opts]
    assert list(bars[0].opts["height"]) == list(np.bincount(trainer.dataset.y, minlength=10))
    assert list(bars[1].opts["height"]) == list(train)



def test_train_waits_for_a_data_file_the_preview_could_not_read(make_window: Any, qtbot: Any, tmp_path: Path) -> None:
    window = make_window()
    show_dock(window, "Data")
    train = window.controller.actions["train"]
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2,x\n3,oops,y\n", encoding="utf-8")
    field(window, "data.source", QComboBox).setCurrentText("CSV file…")
    choose_file_in_dialog(qtbot, window, bad)
    preview = window.findChild(QLabel, "dataPreview")
    qtbot.waitUntil(lambda: "non-numeric value 'oops'" in preview.text(), timeout=10_000)
    assert not train.isEnabled()
    button = window.findChild(QToolBar, "TrainingToolbar").widgetForAction(train)
    assert not button.isEnabled() and "non-numeric value 'oops'" in train.toolTip()
    rows = "".join(f"{i},{i % 3},{'xy'[i % 2]}\n" for i in range(40))
    bad.write_text("a,b,label\n" + rows, encoding="utf-8")     # the user fixes the file
    qtbot.mouseClick(window.findChild(QPushButton, "reloadData"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: train.isEnabled(), timeout=10_000)
    assert "oops" not in train.toolTip() and "Not available" not in train.toolTip()


def test_a_preset_resolves_relative_paths_against_the_working_folder_again(make_window: Any, qtbot: Any,
                                                                             tmp_path: Path) -> None:
    """A preset applied on top of an opened file (a zoo experiment) no longer resolves relative
    paths against that file's folder; undoing the preset brings the folder back with the file's
    experiment."""
    folder = tmp_path / "zoo"
    folder.mkdir()
    spec = tmp_path / "zoo" / "experiment.json"
    spec.write_text(parse_experiment(tiny_spec()).to_json(), encoding="utf-8")
    window = make_window()
    assert open_and_wait(qtbot, window, spec)
    assert window.state.base_dir == folder
    window.findChild(QMenu, "presetsMenu").findChild(QAction, "preset_overfitting").trigger()
    assert window.state.experiment.data.source == "digits"
    assert window.state.base_dir is None
    window.undo_action.trigger()
    assert window.state.base_dir == folder and window.state.experiment.name == "tiny moons"
    window.redo_action.trigger()
    assert window.state.base_dir is None


def test_1cycle_draws_the_momentum_it_cycles_next_to_the_rate(make_window: Any, qtbot: Any) -> None:
    """Smith's 1cycle also cycles β (0.95 → 0.85 → 0.95) for an optimizer that has it: the preview
    draws it, dashed on a right axis, from the schedule's own ``momentum(step)``."""
    from core.engine.schedules import SCHEDULES
    from workbench.editor.optimizer_panel import planned_steps

    window = make_window()
    show_dock(window, "Optimizer")
    plot = window.findChild(QWidget, "schedulePreview")
    caption = window.findChild(QLabel, "schedulePreviewInfo")
    field(window, "optimizer.name", QComboBox).setCurrentText("momentum")
    field(window, "schedule.name", QComboBox).setCurrentText("one_cycle")
    panel = next(p for p in window.findChildren(QWidget) if type(p).__name__ == "OptimizerPanel")
    x, rates = plot.getPlotItem().listDataItems()[0].getData()
    bx, betas = panel.momentum_curve.getData()
    experiment = window.state.experiment
    schedule = SCHEDULES.get("one_cycle").from_config(experiment.schedule.params, experiment.learning_rate)
    schedule.bind(*planned_steps(experiment, panel.info.facts))
    np.testing.assert_allclose(bx, x)
    np.testing.assert_allclose(betas, [schedule.momentum(int(t)) for t in x])
    assert betas[0] == 0.95 and min(betas) == 0.85 and int(x[int(np.argmin(betas))]) == int(x[int(np.argmax(rates))])
    assert plot.getPlotItem().getAxis("right").isVisible()
    assert "Momentum β 0.95 → 0.85 → 0.95" in caption.text()
    field(window, "optimizer.name", QComboBox).setCurrentText("adam")      # no β to cycle
    assert len(panel.momentum_curve.getData()[0] or []) == 0 and "Momentum β" not in caption.text()
    assert not plot.getPlotItem().getAxis("right").isVisible()
