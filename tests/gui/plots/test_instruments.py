"""The instrument docks (issue 15): sharpness against the stability threshold, the gradient noise
scale against the batch size, the effective learning rates, each drawn from the run's history,
exported as CSV, right after a second run, a hidden dock and a resize, with a note and Turn on
when the instrument is off."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from core.spec import parse_experiment
from workbench.monitor.plots.noise import batch_advice

from ..monitor_support import make_window_fixture, monitor_of, tiny_spec, wait_idle  # noqa: F401 (fixture)
from .test_following_the_run import click_action

INSTRUMENTS_ON = {"probe_examples": 32, "sharpness": {"enabled": True, "every": 2, "iterations": 8},
                  "noise": {"enabled": True, "every": 2}, "effective_learning_rate": {"enabled": True, "every": 1}}


def spec_with(instruments: dict[str, Any] | None = INSTRUMENTS_ON, optimizer: str = "sgd", lr: float = 0.05,
              epochs: int = 3, seed: int = 7) -> Any:
    spec = tiny_spec(epochs=epochs, layers=2, units=8)
    spec["seed"] = seed
    spec["optimizer"] = {"name": optimizer, "learning_rate": lr}
    if instruments is not None:
        spec["training"]["instruments"] = instruments
    return parse_experiment(spec)


def open_dock(qtbot: Any, window: Any, key: str) -> Any:
    """Open the dock from the View menu (they start closed) and bring it in front."""
    mon = monitor_of(window)
    dock = mon.dock_of[key]
    if dock.isHidden():
        dock.toggleViewAction().trigger()
    dock.raise_()
    qtbot.waitUntil(lambda: mon.panels[key].on_screen, timeout=2_000)
    return mon.panels[key]


def drawn(qtbot: Any, window: Any, key: str) -> Any:
    """The panel brought in front (a new run brings the decision boundary forward in its group),
    once it has drawn the buffers' newest version (the monitor's timer pulls)."""
    panel = open_dock(qtbot, window, key)
    qtbot.waitUntil(lambda: panel.drawn_version == window.controller.buffers.version, timeout=5_000)
    return panel


def train(qtbot: Any, window: Any) -> dict[str, np.ndarray]:
    """Train to the end; the run's history as its session stores it."""
    click_action(window, qtbot, "train")
    wait_idle(qtbot, window, timeout=30_000)
    return window.controller.trainer.history_arrays()


def measured(history: dict[str, np.ndarray], key: str) -> np.ndarray:
    a = history[key]
    return np.flatnonzero(np.isfinite(a) if a.ndim == 1 else np.isfinite(a).any(axis=1))


def points(curve: Any) -> int:
    """How many points a curve draws (pyqtgraph holds None for an emptied curve)."""
    return 0 if curve.xData is None else len(curve.xData)


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


# ----------------------------------------------------------------------------- the three docks


def test_sharpness_is_plotted_against_the_stability_threshold(make_window: Any, qtbot: Any, tmp_path: Path) -> None:
    window = make_window(spec_with())
    panel = open_dock(qtbot, window, "sharpness")
    history = train(qtbot, window)
    drawn(qtbot, window, "sharpness")
    rows = measured(history, "step_sharpness")
    assert rows.size >= 5 and np.array_equal(rows, np.arange(0, len(history["step"]), 2))
    spe = window.controller.buffers.steps_per_epoch
    np.testing.assert_allclose(panel.sharpness.xData, history["step"][rows] / spe)
    np.testing.assert_allclose(10 ** panel.sharpness.yData, history["step_sharpness"][rows], rtol=1e-6)
    # SGD at η = 0.05: the measured threshold is 2/η, and so is the planned line (constant schedule)
    np.testing.assert_allclose(10 ** panel.threshold.yData, 2 / 0.05, rtol=1e-6)
    np.testing.assert_allclose(10 ** panel.planned.yData, 2 / 0.05, rtol=1e-9)
    assert panel.planned.xData[-1] > 2.7                      # the whole planned run
    assert points(panel.raw) == 0                          # SGD: no preconditioned sharpness
    last = float(history["step_sharpness"][rows[-1]])
    assert f"λ_max {last:.3g} vs 2/η = 40" in panel.caption.full_text()
    assert panel.off_bar.isHidden() and not panel.note.isVisible()
    # CSV: the measured rows of the history
    panel.export_csv(tmp_path / "sharpness.csv")
    header, body = read_csv(tmp_path / "sharpness.csv")
    assert header == ["step", "epoch", "sharpness", "preconditioned_sharpness", "stability_threshold"]
    assert [int(r[0]) for r in body] == history["step"][rows].tolist()
    np.testing.assert_allclose([float(r[2]) for r in body], history["step_sharpness"][rows], rtol=1e-6)
    assert all(r[3] == "" for r in body)
    np.testing.assert_allclose([float(r[4]) for r in body], history["step_stability_threshold"][rows], rtol=1e-6)


def test_an_adaptive_optimizer_plots_its_preconditioned_sharpness_against_38_over_eta(make_window: Any,
                                                                                     qtbot: Any) -> None:
    window = make_window(spec_with(optimizer="adam", lr=0.01, epochs=2))
    panel = open_dock(qtbot, window, "sharpness")
    history = train(qtbot, window)
    drawn(qtbot, window, "sharpness")
    rows = measured(history, "step_sharpness")
    pre = history["step_preconditioned_sharpness"][rows]
    shown = np.isfinite(pre)
    np.testing.assert_allclose(10 ** panel.sharpness.yData[shown], pre[shown], rtol=1e-6)
    np.testing.assert_allclose(10 ** panel.raw.yData, history["step_sharpness"][rows], rtol=1e-6)
    np.testing.assert_allclose(10 ** panel.planned.yData, 38 / 0.01, rtol=1e-9)   # (2 + 2β1)/((1 − β1)η)
    assert "λ_max(P⁻¹H)" in panel.caption.full_text() and "((1−β₁)η)" in panel.caption.full_text()


def test_the_noise_dock_draws_the_noise_scale_against_the_batch_size(make_window: Any, qtbot: Any,
                                                                      tmp_path: Path) -> None:
    window = make_window(spec_with())
    panel = open_dock(qtbot, window, "noise")
    history = train(qtbot, window)
    drawn(qtbot, window, "noise")
    rows = measured(history, "step_noise_scale")
    assert rows.size >= 5
    np.testing.assert_allclose(10 ** panel.scale.yData, history["step_noise_scale"][rows], rtol=1e-6)
    assert panel.batch_line.isVisible() and panel.batch_line.value() == math.log10(32)
    assert panel.batch_line.label.format == "batch 32"
    for j, curve in enumerate(panel.snr_curves):
        np.testing.assert_allclose(10 ** curve.yData, history["snr"][rows, j], rtol=1e-6)
    last = float(history["step_noise_scale"][rows[-1]])
    assert panel.advice.isVisible() and panel.advice.text() == batch_advice(32, last)
    panel.export_csv(tmp_path / "noise.csv")
    header, body = read_csv(tmp_path / "noise.csv")
    names = window.controller.buffers.layer_names
    assert header == ["step", "epoch", "noise_scale", *(f"snr[{n}]" for n in names)]
    np.testing.assert_allclose([float(r[2]) for r in body], history["step_noise_scale"][rows], rtol=1e-6)
    np.testing.assert_allclose([[float(v) for v in r[3:]] for r in body], history["snr"][rows], rtol=1e-6)


def test_the_batch_size_advisor_says_which_side_of_the_noise_scale_the_batch_is() -> None:
    assert "noise dominates" in batch_advice(8, 400.0) and "larger batch would help" in batch_advice(8, 400.0)
    assert "wasted compute" in batch_advice(512, 20.0)
    assert "efficient" in batch_advice(32, 50.0)
    assert batch_advice(32, math.nan) == ""


def test_the_effective_learning_rate_dock_draws_each_layer_next_to_the_schedule(make_window: Any, qtbot: Any,
                                                                                tmp_path: Path) -> None:
    spec = tiny_spec(epochs=3, layers=2, units=8)
    spec["optimizer"] = {"name": "momentum", "learning_rate": 0.02, "momentum": 0.9}
    spec["schedule"] = {"name": "exponential", "steps": 10}
    spec["training"]["instruments"] = INSTRUMENTS_ON
    window = make_window(parse_experiment(spec))
    panel = open_dock(qtbot, window, "effective_lr")
    history = train(qtbot, window)
    drawn(qtbot, window, "effective_lr")
    rows = measured(history, "effective_learning_rate")
    assert len(panel.curves) == 3 and rows.size == len(history["step"])
    for j, curve in enumerate(panel.curves):
        np.testing.assert_allclose(10 ** curve.yData, history["effective_learning_rate"][rows, j], rtol=1e-6)
    # momentum: η/(1 − β) of the rate the next step takes, ten times the planned η (independently)
    spe = window.controller.buffers.steps_per_epoch
    planned = 0.02 * 0.1 ** (np.asarray(history["step"][rows], dtype=float) / 10)
    np.testing.assert_allclose(10 ** panel.curves[0].yData, planned / (1 - 0.9), rtol=1e-5)
    np.testing.assert_allclose(10 ** panel.planned.yData, 0.02 * 0.1 ** (panel.planned.xData * spe / 10), rtol=1e-9)
    np.testing.assert_allclose(10 ** panel.used.yData, history["step_learning_rate"][rows], rtol=1e-6)
    panel.export_csv(tmp_path / "rates.csv")
    header, body = read_csv(tmp_path / "rates.csv")
    assert header[:3] == ["step", "epoch", "learning_rate"] and len(header) == 6
    np.testing.assert_allclose([[float(v) for v in r[3:]] for r in body], history["effective_learning_rate"],
                               rtol=1e-6)


# ----------------------------------------------------------------------------- off, and turning on


def test_an_instrument_that_is_off_says_so_and_turns_on_in_one_undoable_click(make_window: Any, qtbot: Any) -> None:
    window = make_window(spec_with(instruments=None))        # the defaults: sharpness off
    state = window.state
    panel = open_dock(qtbot, window, "sharpness")
    assert panel.off_bar.isVisible() and "off for this experiment" in panel.off_note.text()
    assert not monitor_of(window).panels["noise"].off_bar.isVisibleTo(monitor_of(window).panels["noise"])
    train(qtbot, window)
    drawn(qtbot, window, "sharpness")
    assert panel.note.isVisible() and "off" in panel.note.textItem.toPlainText()
    assert points(panel.sharpness) == 0
    button = panel.findChild(QPushButton, "sharpnessTurnOn")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert state.experiment.training.instruments.sharpness.enabled
    assert state.undo_stack.undoText() == "Turn the sharpness instrument on"
    assert panel.off_bar.isHidden()
    drawn(qtbot, window, "sharpness")
    assert "measured every 500 steps" in panel.note.textItem.toPlainText()
    state.undo_stack.undo()
    assert not state.experiment.training.instruments.sharpness.enabled and panel.off_bar.isVisible()


def test_turning_an_instrument_on_during_a_run_measures_from_then_on(make_window: Any, qtbot: Any) -> None:
    off = {**INSTRUMENTS_ON, "sharpness": {"enabled": False, "every": 2, "iterations": 8}}
    window = make_window(spec_with(instruments=off, epochs=400))   # stopped below, long before its end
    c = window.controller
    panel = open_dock(qtbot, window, "sharpness")
    click_action(window, qtbot, "train")
    qtbot.waitUntil(lambda: c.buffers.size > 20, timeout=20_000)
    qtbot.mouseClick(panel.findChild(QPushButton, "sharpnessTurnOn"), Qt.MouseButton.LeftButton)
    assert c.mode == "running" and not c.run_superseded     # a live edit: the run goes on
    qtbot.waitUntil(lambda: np.isfinite(c.buffers.instrument("step_sharpness")).sum() >= 3, timeout=20_000)
    c.stop()
    wait_idle(qtbot, window)
    drawn(qtbot, window, "sharpness")
    sharp = c.buffers.instrument("step_sharpness")
    first = int(np.flatnonzero(np.isfinite(sharp))[0])
    assert first > 20 and np.isnan(sharp[:first]).all()
    assert points(panel.sharpness) == np.isfinite(sharp).sum()


# ----------------------------------------------------------------------------- following the run


def test_the_instrument_docks_show_the_second_run_after_hiding_and_a_resize(make_window: Any, qtbot: Any) -> None:
    window = make_window(spec_with())
    c, mon = window.controller, monitor_of(window)
    for key in ("sharpness", "noise", "effective_lr"):
        open_dock(qtbot, window, key)
        mon.refresh(force=True)
    first = train(qtbot, window)
    for key in ("sharpness", "noise", "effective_lr"):
        open_dock(qtbot, window, key)
        drawn(qtbot, window, key)
    mon.dock_of["metrics"].raise_()                          # sharpness hidden behind the loss dock
    mon.dock_of["noise"].close()                             # noise closed altogether
    mon.dock_of["heatmap"].raise_()                          # effective rates behind the heatmap
    qtbot.waitUntil(lambda: not any(mon.panels[k].on_screen for k in ("sharpness", "noise", "effective_lr")),
                    timeout=2_000)
    window.state.set_field("seed", 23)
    window.state.set_field("optimizer.learning_rate", 0.08)
    second = train(qtbot, window)
    assert not np.allclose(first["step_sharpness"][::2], second["step_sharpness"][::2])
    window.resize(window.width() - 120, window.height() - 60)
    spe = c.buffers.steps_per_epoch
    for key in ("sharpness", "noise", "effective_lr"):
        panel = open_dock(qtbot, window, key)
        drawn(qtbot, window, key)
        if key == "sharpness":
            rows = measured(second, "step_sharpness")
            np.testing.assert_allclose(10 ** panel.sharpness.yData, second["step_sharpness"][rows], rtol=1e-6)
            np.testing.assert_allclose(10 ** panel.threshold.yData, 2 / 0.08, rtol=1e-6)
            np.testing.assert_allclose(10 ** panel.planned.yData, 2 / 0.08, rtol=1e-9)
        elif key == "noise":
            rows = measured(second, "step_noise_scale")
            np.testing.assert_allclose(10 ** panel.scale.yData, second["step_noise_scale"][rows], rtol=1e-6)
        else:
            rows = measured(second, "effective_learning_rate")
            np.testing.assert_allclose(10 ** panel.curves[1].yData, second["effective_learning_rate"][rows, 1],
                                       rtol=1e-6)
        xs = [item.xData for item in panel.plots[0].listDataItems() if item.xData is not None and len(item.xData)]
        assert xs and max(float(x.max()) for x in xs) <= 3.0 + 1e-9
        curve = panel.sharpness if key == "sharpness" else panel.scale if key == "noise" else panel.curves[0]
        np.testing.assert_allclose(curve.xData, second["step"][rows] / spe)
        (x0, x1), _ = panel.plots[0].vb.viewRange()
        assert x0 <= 0.1 and x1 >= second["step"][rows[-1]] / spe     # the range follows the second run
