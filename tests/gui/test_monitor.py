"""The training half of the workbench, driven through the real main window as a user would:
Train / Pause / Resume / Stop / Step / Reset, live plots, save and reopen, worker failures,
closing during training, live edits, the health banner and plot exports."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QPushButton, QToolBar, QToolButton

from core.sessions.format import load_session
from core.training import Trainer

from .monitor_support import make_window_fixture, monitor_of, tiny_experiment, wait_idle  # noqa: F401 (fixture)


def click_action(window: Any, qtbot: Any, name: str) -> None:
    """Click the toolbar button of a training action (what a user does)."""
    action = window.controller.actions[name]
    toolbar = window.findChild(QToolBar, "TrainingToolbar")
    button = toolbar.widgetForAction(action)
    assert isinstance(button, QToolButton) and button.isEnabled(), f"{name} is not clickable"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_train_grows_one_curve_per_layer(make_window: Any, qtbot: Any) -> None:
    window = make_window(tiny_experiment(epochs=6, layers=3))
    c = window.controller
    assert c.actions["train"].isEnabled() and not c.actions["pause"].isEnabled()
    click_action(window, qtbot, "train")
    panel = monitor_of(window).panels["grad_norm"]
    qtbot.waitUntil(lambda: len(panel.curves) == 4 and panel.curves[0].xData is not None
                    and len(panel.curves[0].xData) > 0, timeout=10_000)
    first = len(panel.curves[0].xData)
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: len(panel.curves[0].xData) == c.buffers.size, timeout=2_000)
    assert len(panel.curves[0].xData) > first or first == c.buffers.size
    assert [cv.name() for cv in panel.curves] == c.buffers.layer_names
    assert c.buffers.size == c.trainer.step == 6 * c.trainer.steps_per_epoch
    assert c.buffers.epochs["epoch"] == [1, 2, 3, 4, 5, 6]
    # what the plot shows is the engine's own record
    np.testing.assert_allclose(10 ** panel.curves[2].yData, c.trainer.recorder["grad_norm"][:, 2], rtol=1e-5)
    mon = monitor_of(window)
    assert "epoch 6/6" in mon.progress_label.text()
    assert mon.progress_bar.value() == mon.progress_bar.maximum()
    assert c.buffers.confusion is not None and c.buffers.confusion.sum() == len(c.trainer.split.val)
    assert c.buffers.boundary is not None and c.buffers.boundary.shape[2] == 2
    assert c.actions["train"].isEnabled() and not c.busy


def test_pause_step_resume_stop_continue_reset(make_window: Any, qtbot: Any) -> None:
    window = make_window(tiny_experiment(epochs=500))
    c = window.controller
    click_action(window, qtbot, "train")
    qtbot.waitUntil(lambda: c.mode == "running" and c.buffers.size > 20, timeout=10_000)
    click_action(window, qtbot, "pause")
    assert c.mode == "paused" and c.busy
    assert c.actions["resume"].isEnabled() and c.actions["step"].isEnabled()
    assert not c.actions["train"].isEnabled() and not c.actions["pause"].isEnabled()
    qtbot.waitUntil(lambda: c.buffers.progress.get("step") == c.buffers.size, timeout=2_000)
    qtbot.wait(150)
    held = c.buffers.progress["step"]
    qtbot.wait(200)
    assert c.buffers.progress["step"] == held, "a paused run went on training"
    click_action(window, qtbot, "step")
    qtbot.waitUntil(lambda: c.buffers.progress.get("step") == held + 1, timeout=3_000)
    qtbot.wait(200)
    assert c.buffers.progress["step"] == held + 1 and c.mode == "paused"
    click_action(window, qtbot, "resume")
    qtbot.waitUntil(lambda: c.buffers.progress.get("step", 0) > held + 20, timeout=5_000)
    t0 = time.perf_counter()
    click_action(window, qtbot, "stop")
    wait_idle(qtbot, window, timeout=2_000)
    assert time.perf_counter() - t0 < 1.0
    # "stopped" shows at once; the batches the child took meanwhile arrive with its last snapshot
    qtbot.waitUntil(lambda: c.buffers.size == c.trainer.step, timeout=5_000)
    stopped_at = c.trainer.step
    assert stopped_at == c.buffers.size
    # Train continues the same run (the experiment did not change)
    click_action(window, qtbot, "train")
    qtbot.waitUntil(lambda: c.buffers.size > stopped_at + 10, timeout=5_000)
    assert c.buffers.steps[0] == 1
    click_action(window, qtbot, "stop")
    wait_idle(qtbot, window)
    click_action(window, qtbot, "reset")
    wait_idle(qtbot, window)
    assert c.buffers.size == 0 and c.trainer.step == 0
    assert monitor_of(window).panels["grad_norm"].curves[0].xData is None or \
        len(monitor_of(window).panels["grad_norm"].curves[0].xData) == 0


def test_step_from_idle_takes_one_batch(make_window: Any, qtbot: Any) -> None:
    window = make_window()
    c = window.controller
    click_action(window, qtbot, "step")
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: c.buffers.size == 1)
    click_action(window, qtbot, "step")
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: c.buffers.size == 2)
    assert list(c.buffers.steps) == [1, 2]
    assert not c.busy


def test_save_and_reopen_shows_the_same_history(make_window: Any, qtbot: Any, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    window = make_window(tiny_experiment(epochs=3))
    c = window.controller
    click_action(window, qtbot, "train")
    wait_idle(qtbot, window)
    path = tmp_path / "run.gwb"
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(path), ""))
    window.save_action.trigger()
    assert path.exists() and not window.state.dirty
    saved = load_session(path)
    np.testing.assert_array_equal(saved.history["grad_norm"], c.trainer.recorder["grad_norm"])

    other = make_window(tiny_experiment(epochs=9, layers=2))
    assert other.open_file(path)
    wait_idle(qtbot, other)
    oc = other.controller
    panel = monitor_of(other).panels["grad_norm"]
    qtbot.waitUntil(lambda: panel.curves and panel.curves[0].xData is not None
                    and len(panel.curves[0].xData) == saved.history["step"].shape[0], timeout=3_000)
    assert [cv.name() for cv in panel.curves] == [str(s) for s in saved.history["layer_names"]]
    np.testing.assert_array_equal(panel.curves[0].xData, saved.history["step"])
    np.testing.assert_allclose(10 ** panel.curves[1].yData, saved.history["grad_norm"][:, 1], rtol=1e-5)
    assert oc.buffers.epochs["val_loss"] == pytest.approx(list(saved.history["val_loss"]))
    assert other.state.experiment == saved.experiment
    # the reopened run is complete: Train starts a new one from fresh weights
    click_action(other, qtbot, "train")
    wait_idle(qtbot, other)
    assert oc.buffers.epochs["epoch"] == [1, 2, 3]


def test_a_second_run_shows_its_own_record_only(make_window: Any, qtbot: Any) -> None:
    """Train on a complete run starts a new trainer: its first snapshot resets the buffers, and
    what the window then holds is the new trainer's record, row for row."""
    window = make_window(tiny_experiment(epochs=3))
    c = window.controller
    click_action(window, qtbot, "train")
    wait_idle(qtbot, window)
    first = c.trainer
    click_action(window, qtbot, "train")          # the run is complete: a fresh one
    wait_idle(qtbot, window)
    second = c.trainer
    assert second is not first and second.step == first.step
    rec = second.recorder
    qtbot.waitUntil(lambda: c.buffers.size == rec.size, timeout=2_000)
    np.testing.assert_array_equal(c.buffers.steps, rec.steps)
    for q in ("grad_norm", "update_ratio", "dead_fraction"):
        np.testing.assert_array_equal(c.buffers.layer(q), rec[q], err_msg=q)
    np.testing.assert_array_equal(c.buffers.loss, rec["loss"])
    assert c.buffers.epochs == {k: [float(v) for v in second.history[k]] for k in second.history}
    assert c.buffers.events == second.events and c.buffers.progress["step"] == second.step
    assert c.buffers.health == [issue.to_dict() for issue in second.health()]
    np.testing.assert_array_equal(c.buffers.confusion, second.confusion_matrix("val"))


def test_save_while_training_copies_at_a_batch_boundary(make_window: Any, qtbot: Any, tmp_path: Path) -> None:
    window = make_window(tiny_experiment(epochs=500))
    c = window.controller
    click_action(window, qtbot, "train")
    qtbot.waitUntil(lambda: c.buffers.size > 10, timeout=10_000)
    path = tmp_path / "live.gwb"
    c.save_session(path)
    assert c.mode == "running"
    session = load_session(path)
    n = session.history["step"].shape[0]
    assert n > 10 and session.state["step"] == n
    click_action(window, qtbot, "pause")
    c.save_session(path)                       # also while paused inside fit
    assert load_session(path).state["step"] >= n
    click_action(window, qtbot, "stop")
    wait_idle(qtbot, window)


def test_worker_exception_shows_a_dialog_and_the_window_keeps_working(make_window: Any, qtbot: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # The failure is injected into this interpreter's Trainer: the run trains on the worker thread
    # (the child-process version is test_training_process's exception test).
    from workbench.monitor.controller import TrainingController

    monkeypatch.setattr(TrainingController, "child_process", False)
    window = make_window(tiny_experiment(epochs=50))
    c = window.controller
    original = Trainer.train_batch
    calls = {"n": 0}

    def failing(self: Trainer, notify: Any = None) -> Any:
        calls["n"] += 1
        if calls["n"] == 7:
            raise FloatingPointError("injected failure in the engine")
        return original(self, notify)

    monkeypatch.setattr(Trainer, "train_batch", failing)
    click_action(window, qtbot, "train")
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "errorDialog") is not None
                    and window.findChild(QMessageBox, "errorDialog").isVisible(), timeout=10_000)
    box = window.findChild(QMessageBox, "errorDialog")
    assert "injected failure" in box.text()
    assert c.mode == "idle" and c.thread.isRunning()
    box.close()
    box.deleteLater()
    monkeypatch.setattr(Trainer, "train_batch", original)
    click_action(window, qtbot, "train")       # the window still works: a fresh run trains
    wait_idle(qtbot, window)
    assert c.buffers.epochs["epoch"][-1] == 50


def test_closing_during_training_stops_within_a_batch(make_window: Any, qtbot: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[bool] = []
    monkeypatch.setattr("workbench.sessions.ask_stop_and_quit", lambda parent: asked.append(True) or True)
    window = make_window(tiny_experiment(epochs=1000))
    c = window.controller
    click_action(window, qtbot, "train")
    qtbot.waitUntil(lambda: c.mode == "running" and c.buffers.size > 5, timeout=10_000)
    t0 = time.perf_counter()
    window.close()
    elapsed = time.perf_counter() - t0
    assert c.thread.isFinished()
    assert elapsed < 1.0, f"closing took {elapsed:.2f} s"
    assert asked == [True], "closing during training did not ask to stop"
    assert c.trainer.step < 1000 * c.trainer.steps_per_epoch


def timer_lateness(qtbot: Any, seconds: float) -> tuple[float, int]:
    """Run a 10 ms timer on the GUI thread for ``seconds``: (worst lateness in seconds, ticks)."""
    from PySide6.QtCore import QTimer

    late: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        late.append(now - last[0] - 0.010)
        last[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(10)
    timer.timeout.connect(tick)
    last[0] = time.perf_counter()
    timer.start()
    qtbot.wait(int(seconds * 1000))
    timer.stop()
    return max(late, default=0.0), len(late)


def test_gui_stays_responsive_and_snapshots_are_coalesced(make_window: Any, qtbot: Any) -> None:
    """While a tiny network trains at full speed (thousands of steps a second), a 10 ms timer on the
    GUI thread is never late by more than 100 ms and the snapshot signals stay near 20 a second.

    The same timer is first measured on the idle window: on a machine shared with other busy
    processes the OS alone makes it late, and that part is not the app's (both are printed).
    Before the worker's periodic GIL yield (workbench.gil) about one window in six had a
    60-180 ms stall: the GUI thread lost the GIL race to the worker's NumPy calls. A 3-s window is
    measured up to three times and one within the bound passes, against a neighbour process
    stealing the core for a moment; a GUI thread that trained or drew too much is late in every window."""
    window = make_window(tiny_experiment(epochs=100_000, layers=3, units=8, samples=400))
    c = window.controller
    idle_worst, _ = timer_lateness(qtbot, 2.0)
    bound = 0.100 + max(idle_worst - 0.010, 0.0)
    click_action(window, qtbot, "train")
    qtbot.waitUntil(lambda: c.mode == "running" and c.buffers.size > 0, timeout=10_000)
    qtbot.wait(700)              # past the one-time costs of the first frames (glyph caches, layouts)
    windows: list[float] = []
    for _ in range(3):
        steps0, snaps0 = c.buffers.progress["step"], len(c.snapshot_times)
        t0 = time.perf_counter()
        worst, ticks = timer_lateness(qtbot, 3.0)
        seconds = time.perf_counter() - t0
        steps = c.buffers.progress["step"] - steps0
        snaps_per_s = (len(c.snapshot_times) - snaps0) / seconds
        windows.append(worst)
        print(f"\nresponsiveness: {steps / seconds:,.0f} steps/s, {snaps_per_s:.1f} snapshots/s, "
              f"10 ms timer worst lateness {worst * 1000:.1f} ms over {ticks} ticks while training "
              f"(idle window: {idle_worst * 1000:.1f} ms)")
        assert steps / seconds > 100, "the tiny network should train fast"
        assert snaps_per_s <= 25
        if worst < bound:
            break
    click_action(window, qtbot, "stop")
    wait_idle(qtbot, window)
    assert min(windows) < bound, f"late by {[round(w * 1000) for w in windows]} ms in every window"


def test_learning_rate_edit_applies_at_the_next_batch(make_window: Any, qtbot: Any) -> None:
    window = make_window(tiny_experiment(epochs=500))
    c = window.controller
    click_action(window, qtbot, "train")
    qtbot.waitUntil(lambda: c.mode == "running" and c.buffers.size > 10, timeout=10_000)
    assert c.buffers.learning_rate[-1] == pytest.approx(0.01)
    assert window.state.set_field("optimizer.learning_rate", 0.002) is None
    qtbot.waitUntil(lambda: c.buffers.size and abs(c.buffers.learning_rate[-1] - 0.002) < 1e-9, timeout=3_000)
    assert c.mode == "running" and c.buffers.steps[0] == 1      # the same run went on
    assert window.findChild(QMessageBox, "restartDialog") is None
    click_action(window, qtbot, "stop")
    wait_idle(qtbot, window)
    assert c.trainer.experiment.learning_rate == 0.002


def test_structural_edit_while_running_asks_to_restart(make_window: Any, qtbot: Any) -> None:
    window = make_window(tiny_experiment(epochs=500, units=16))
    c = window.controller
    click_action(window, qtbot, "train")
    qtbot.waitUntil(lambda: c.mode == "running" and c.buffers.size > 10, timeout=10_000)
    window.state.set_field("model.layers[0].units", 9)
    box = window.findChild(QMessageBox, "restartDialog")
    assert box is not None and box.isVisible()
    restart = next(b for b in box.findChildren(QPushButton) if b.text() == "Restart")
    qtbot.mouseClick(restart, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: c.buffers.layer_names[:1] == ["dense_0 (elu, 9)"] and c.mode == "running",
                    timeout=10_000)
    click_action(window, qtbot, "stop")
    wait_idle(qtbot, window)
    assert c.trainer.experiment == window.state.experiment


def keep_running_after_a_structural_edit(make_window: Any, qtbot: Any) -> Any:
    """A window whose run goes on after a structural edit (layer 1: 16 → 12 units) was answered
    "Keep running" in the restart question."""
    window = make_window(tiny_experiment(epochs=500))
    c = window.controller
    click_action(window, qtbot, "train")
    qtbot.waitUntil(lambda: c.mode == "running" and c.buffers.size > 10, timeout=10_000)
    assert window.state.set_field("model.layers[1].units", 12) is None
    box = window.findChild(QMessageBox, "restartDialog")
    keep = next(b for b in box.findChildren(QPushButton) if b.text() == "Keep running")
    qtbot.mouseClick(keep, Qt.MouseButton.LeftButton)
    return window


def test_keep_running_keeps_the_run_and_next_train_starts_fresh(make_window: Any, qtbot: Any) -> None:
    window = keep_running_after_a_structural_edit(make_window, qtbot)
    c = window.controller
    size = c.buffers.size
    qtbot.waitUntil(lambda: c.buffers.size > size + 10, timeout=5_000)
    assert c.buffers.layer_names[1] == "dense_1 (elu, 16)"
    click_action(window, qtbot, "stop")
    wait_idle(qtbot, window)
    click_action(window, qtbot, "train")
    qtbot.waitUntil(lambda: c.buffers.layer_names[1] == "dense_1 (elu, 12)", timeout=10_000)
    click_action(window, qtbot, "stop")
    wait_idle(qtbot, window)


def test_undoing_the_edit_after_keep_running_makes_the_run_current_again(make_window: Any, qtbot: Any) -> None:
    """Keep running, then Undo the structural edit: the run matches the experiment again, so
    the next Train continues it (same trainer, no fresh weights) instead of starting over."""
    window = keep_running_after_a_structural_edit(make_window, qtbot)
    c = window.controller
    assert c.stale
    window.undo_action.trigger()
    assert not c.stale
    click_action(window, qtbot, "stop")
    wait_idle(qtbot, window)
    trainer, step = c.trainer, c.current_step
    click_action(window, qtbot, "train")
    qtbot.waitUntil(lambda: c.current_step > step + 10, timeout=10_000)
    assert c.trainer is trainer and c.buffers.layer_names[1] == "dense_1 (elu, 16)"
    click_action(window, qtbot, "stop")
    wait_idle(qtbot, window)


def test_health_banner_names_the_layer_and_a_remedy_is_one_undoable_edit(make_window: Any, qtbot: Any) -> None:
    vanishing = tiny_experiment(epochs=3, layers=8, units=32, activation="logistic",
                                init={"name": "random_normal", "stddev": 0.05})
    window = make_window(vanishing)
    c = window.controller
    click_action(window, qtbot, "train")
    wait_idle(qtbot, window)
    banner = monitor_of(window).banner
    qtbot.waitUntil(banner.isVisible, timeout=2_000)
    assert "Vanishing gradients in dense_0" in banner.label.text()
    assert "step" in banner.label.text()
    # the fixes are offered once they have been tried
    qtbot.waitUntil(lambda: banner.report is not None, timeout=120_000)
    button = banner.buttons["init"]
    assert button.isVisible()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert all(row["init"] == "glorot_uniform" for row in window.state.data["model"]["layers"])
    qtbot.mouseClick(banner.buttons["batch_norm"], Qt.MouseButton.LeftButton)
    assert all(row["batch_norm"] == "before_activation" for row in window.state.data["model"]["layers"])
    window.undo_action.trigger()
    assert all(row["batch_norm"] is False for row in window.state.data["model"]["layers"])
    assert all(row["init"] == "glorot_uniform" for row in window.state.data["model"]["layers"])
    assert not c.busy


def test_train_is_disabled_while_the_experiment_is_invalid(make_window: Any, qtbot: Any) -> None:
    window = make_window()
    c = window.controller
    assert window.state.set_field("model.layers[0].units", -5) is not None
    assert not c.actions["train"].isEnabled() and not c.actions["step"].isEnabled()
    window.state.set_field("model.layers[0].units", 12)
    assert c.actions["train"].isEnabled()


def test_plots_export_png_and_csv_and_hover_names_the_layer(make_window: Any, qtbot: Any, tmp_path: Path) -> None:
    window = make_window(tiny_experiment(epochs=2))
    c = window.controller
    click_action(window, qtbot, "train")
    wait_idle(qtbot, window)
    mon = monitor_of(window)
    for dock in window.monitor_docks:
        dock.show()
        dock.raise_()
        mon.refresh(force=True)
    for key, panel in mon.panels.items():
        panel.redraw()
        assert panel.export_png(tmp_path / f"{key}.png")
        assert (tmp_path / f"{key}.png").stat().st_size > 1000
        panel.export_csv(tmp_path / f"{key}.csv")
        header = (tmp_path / f"{key}.csv").read_text().splitlines()[0]
        assert header
    with open(tmp_path / "grad_norm.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert len(rows) == c.buffers.size + 1
    assert rows[0] == ["step", *[f"grad_norm[{n}]" for n in c.buffers.layer_names]]
    assert float(rows[3][2]) == pytest.approx(float(c.trainer.recorder["grad_norm"][2, 1]))
    panel = mon.panels["grad_norm"]
    y = float(panel.curves[3].yData[5])
    text = panel.show_hover(float(c.buffers.steps[5]), y)
    assert text.startswith(c.buffers.layer_names[3]) and f"step {int(c.buffers.steps[5])}" in text
    panel.freeze_button.click()
    redraws = panel.redraws
    click_action(window, qtbot, "step")
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: c.buffers.size == 1)          # the run was complete: a new one began
    qtbot.waitUntil(mon.budget.allows)                     # the plots' paint budget is not spent
    mon.refresh()
    assert panel.redraws == redraws and len(panel.curves[0].xData) == 10   # frozen: keeps its picture
    panel.freeze_button.click()
    qtbot.waitUntil(mon.budget.allows)
    mon.refresh()
    assert panel.redraws == redraws + 1 and len(panel.curves[0].xData) == 1
    assert {d.objectName() for d in window.monitor_docks} == {
        "metricsDock", "gradientFlowDock", "activationsDock", "heatmapDock", "boundaryDock", "confusionDock",
        "distributionsDock", "sharpnessDock", "noiseDock", "effectiveLearningRateDock"}


def test_events_are_marked_on_the_metrics_plots(make_window: Any, qtbot: Any) -> None:
    spec = tiny_experiment(epochs=200).to_dict()
    spec["regularization"]["early_stopping"] = {"enabled": True, "patience": 2, "monitor": "val_loss",
                                                "restore_best_weights": True}
    spec["optimizer"]["learning_rate"] = 0.05
    from core.spec import parse_experiment

    window = make_window(parse_experiment(spec))
    c = window.controller
    click_action(window, qtbot, "train")
    wait_idle(qtbot, window, timeout=20_000)
    kinds = [e["kind"] for e in c.buffers.events]
    assert "early_stopping" in kinds and "restore_best" in kinds
    mon = monitor_of(window)
    panel = mon.panels["metrics"]
    panel.redraw()
    lines = [line for line, plot in panel.markers if plot is panel.loss_plot]
    assert len(lines) == len(kinds)
    stop = next(e for e in c.buffers.events if e["kind"] == "early_stopping")
    assert lines[kinds.index("early_stopping")].value() == pytest.approx(stop["step"] / c.trainer.steps_per_epoch)
    assert "early stopping" in lines[kinds.index("early_stopping")].toolTip()


def test_plots_follow_a_dark_palette(make_window: Any, qtbot: Any) -> None:
    from PySide6.QtGui import QColor, QPalette

    window = make_window()
    panel = monitor_of(window).panels["grad_norm"]
    dark = QPalette(window.palette())
    dark.setColor(QPalette.ColorRole.Base, QColor("#1e1e1e"))
    dark.setColor(QPalette.ColorRole.Window, QColor("#2b2b2b"))
    dark.setColor(QPalette.ColorRole.Text, QColor("#e0e0e0"))
    window.setPalette(dark)
    qtbot.waitUntil(lambda: panel.graphics.backgroundBrush().color().name() == "#1e1e1e", timeout=2_000)
    assert panel.plot.getAxis("left").textPen().color().name() == "#e0e0e0"


def test_block_reducer_is_incremental_and_matches_a_direct_reduction() -> None:
    from workbench.monitor.plots.downsample import BlockReducer

    rng = np.random.default_rng(1)
    rows = rng.normal(size=(3, 5000))
    rows[1, 1234] = np.nan
    x = np.arange(1, 5001, dtype=np.float64)
    grown = BlockReducer()
    for n in (1000, 2500, 4100, 5000):                 # the history grows between frames
        xs, ys = grown.envelope(x[:n], rows[:, :n], 300)
    once = BlockReducer()
    xs1, ys1 = once.envelope(x, rows, 300)
    np.testing.assert_array_equal(xs, xs1)
    np.testing.assert_array_equal(ys, ys1)
    b, m = once.block, once.count
    assert b == 32 and m == 5000 // 32 and len(xs) == 2 * m + 5000 - m * b      # 2**ceil(log2(5000 / 300))
    block = rows[:, :m * b].reshape(3, m, b)
    np.testing.assert_array_equal(ys[0, 0:2 * m:2], block[0].min(axis=1))
    np.testing.assert_array_equal(ys[2, 1:2 * m:2], block[2].max(axis=1))
    gap = 1234 // b
    assert np.isnan(ys[1, 2 * gap]) and np.isnan(ys[1, 2 * gap + 1])        # NaN → a gap
    assert np.isfinite(once.mean[1, gap])                                   # the mean skips it
    np.testing.assert_allclose(once.mean[0], block[0].mean(axis=1))


def test_log_scale_draws_zero_at_the_floor_and_nan_as_a_gap() -> None:
    from workbench.monitor.buffers import ZERO_LOG10, safe_log10

    out = safe_log10(np.array([0.0, 1e-3, np.nan, np.inf, -1.0], dtype=np.float32))
    assert out[0] == ZERO_LOG10 and out[1] == pytest.approx(-3)
    assert np.isnan(out[2:]).all()


def test_divergence_is_reported_and_the_plots_keep_what_was_recorded(make_window: Any, qtbot: Any) -> None:
    spec = tiny_experiment(epochs=50, activation="relu", init={"name": "random_normal", "stddev": 3.0}).to_dict()
    spec["optimizer"] = {"name": "sgd", "learning_rate": 1e4}
    from core.spec import parse_experiment

    window = make_window(parse_experiment(spec))
    c = window.controller
    click_action(window, qtbot, "train")
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "errorDialog") is not None, timeout=10_000)
    box = window.findChild(QMessageBox, "errorDialog")
    assert "diverged" in box.text()
    wait_idle(qtbot, window)
    assert any(e["kind"] == "diverged" for e in c.buffers.events)
    assert c.buffers.size == c.trainer.recorder.size
    box.close()
    assert c.actions["train"].isEnabled() and c.actions["reset"].isEnabled()


def test_the_gui_gate_slows_the_worker_but_never_stops_it() -> None:
    from workbench.monitor.worker import GuiGate

    gate = GuiGate()
    with gate:                                   # a GUI that never idles
        t0 = time.perf_counter()
        steps = 0
        while time.perf_counter() - t0 < 1.5:
            gate.wait()
            steps += 1
    assert steps > 100                           # it gave way at most MAX_SHARE of each second
    gate.wait()                                  # open again: no wait at all


def test_the_open_gate_still_lets_go_of_the_gil_every_few_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Between batches the worker sleeps briefly at least every YIELD_EVERY seconds, so a GUI thread
    waiting for the GIL gets it (NumPy's own quick release-and-retake does not hand it over)."""
    from workbench import gil
    from workbench.monitor.worker import GuiGate

    sleeps: list[float] = []
    real_sleep = time.sleep
    monkeypatch.setattr(gil.time, "sleep", lambda s: (sleeps.append(s), real_sleep(s)))
    gate = GuiGate()
    t0 = time.perf_counter()
    calls = 0
    while time.perf_counter() - t0 < 0.2:
        gate.wait()                              # the gate is open: only the periodic yield
        calls += 1
    expected = 0.2 / gil.YIELD_EVERY
    assert calls > 10 * len(sleeps), "a yield at every call would slow a tiny network down"
    assert 0.5 * expected <= len(sleeps) <= 1.5 * expected + 1
    assert set(sleeps) == {gil.YIELD_SLEEP} and gil.YIELD_SLEEP > 0


def test_layers_frozen_by_transfer_are_marked_until_their_unfreeze_epoch(make_window: Any, qtbot: Any,
                                                                        tmp_path: Path) -> None:
    from PySide6.QtGui import QPen

    from core.sessions.trainer_io import save_trainer
    from core.spec import parse_experiment

    from .monitor_support import tiny_spec

    source = Trainer(tiny_experiment(epochs=1, layers=3))
    source.fit()
    save_trainer(tmp_path / "base.gwb", source)
    spec = tiny_spec(epochs=3, layers=3)
    spec["model"]["transfer"] = {"from": str(tmp_path / "base.gwb"), "layers": [0, 1], "freeze": [0],
                                 "unfreeze_at_epoch": 1}
    window = make_window(parse_experiment(spec))
    c = window.controller
    mon = monitor_of(window)
    norms, flow, heat = mon.panels["grad_norm"], mon.panels["flow"], mon.panels["heatmap"]
    for dock in window.monitor_docks:
        dock.show()

    def legend() -> list[str]:
        return [label.text for _, label in norms.legend.items]

    def styles() -> list[Qt.PenStyle]:
        return [QPen(curve.opts["pen"]).style() for curve in norms.curves]

    def hatched() -> list[bool]:
        return [b.style() == Qt.BrushStyle.BDiagPattern for b in flow.norm_bars.opts["brushes"]]

    def heat_rows() -> list[str]:
        return heat.row_labels

    click_action(window, qtbot, "step")                 # one batch of epoch 1: layer 0 is still frozen
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: c.buffers.size == 1)
    mon.refresh(force=True)
    for panel in (norms, flow, heat):
        panel.redraw()
    assert c.buffers.frozen_layers == [True, False, False, False]
    assert heat_rows()[0] == "dense_0 (frozen)" and not any("frozen" in t for t in heat_rows()[1:])
    assert "frozen" in legend()[0] and legend()[0].startswith("dense_0")
    assert not any("frozen" in text for text in legend()[1:])
    assert styles()[0] == Qt.PenStyle.DashLine and set(styles()[1:]) == {Qt.PenStyle.SolidLine}
    assert hatched() == [True, False, False, False] and "frozen (dense_0)" in flow.caption.full_text()
    assert "(frozen)" in norms.show_hover(1.0, float(norms.curves[0].yData[0])).splitlines()[0]

    click_action(window, qtbot, "train")                # on past the end of epoch 1, where it is unfrozen
    wait_idle(qtbot, window)
    assert any(e["kind"] == "unfreeze" for e in c.buffers.events)
    mon.refresh(force=True)
    for panel in (norms, flow, heat):
        panel.redraw()
    assert c.buffers.frozen_layers == [False] * 4
    assert not any("frozen" in t for t in heat_rows())
    assert not any("frozen" in text for text in legend())
    assert set(styles()) == {Qt.PenStyle.SolidLine}
    assert not any(hatched()) and "frozen" not in flow.caption.full_text()
    # where the frozen part ended stays marked on the gradient-norm plot
    assert [line.value() for line in norms.unfreeze_lines] == [c.trainer.steps_per_epoch]
    assert [line.value() for line in heat.unfreeze_marks.lines] == [c.trainer.steps_per_epoch]
