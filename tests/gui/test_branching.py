"""What-if branches in the window: the step cursor, Branch here, the parent drawn dashed, ghost
runs in the plots and the Runs dock, no discard question on a retrain, the findings timeline."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QLineEdit

from core.spec import parse_experiment

from .monitor_support import make_window_fixture, monitor_of, tiny_spec, wait_idle  # noqa: F401

EPOCHS = 6          # 160 training rows in batches of 32: 5 steps an epoch, 30 steps


def trained_window(make_window: Any, qtbot: Any, checkpoints: dict | None = None, **spec: Any) -> Any:
    experiment = tiny_spec(epochs=EPOCHS, **spec)
    if checkpoints is not None:
        experiment["training"]["checkpoints"] = checkpoints
    window = make_window(parse_experiment(experiment))
    train(window, qtbot)
    return window


def train(window: Any, qtbot: Any) -> None:
    window.controller.actions["train"].trigger()
    qtbot.waitUntil(lambda: window.controller.mode == "idle" and window.controller.current_step == EPOCHS * 5,
                    timeout=30_000)


def click_plot(qtbot: Any, panel: Any, plot: Any, x: float, button: Qt.MouseButton = Qt.MouseButton.LeftButton) -> None:
    """Click ``plot`` (inside ``panel``'s graphics view) at data x, halfway up, once the plot shows x
    and its layout has settled (a redraw's new axis widths move the view box)."""
    qtbot.waitUntil(lambda: plot.vb.viewRange()[0][0] <= x <= plot.vb.viewRange()[0][1], timeout=5_000)
    QApplication.processEvents()
    (_, _), (y0, y1) = plot.vb.viewRange()
    scene = plot.vb.mapViewToScene(QPointF(x, (y0 + y1) / 2))
    where = panel.graphics.mapFromScene(scene)
    qtbot.mouseClick(panel.graphics.viewport(), button, pos=where)


def parent_history(window: Any) -> dict[str, np.ndarray]:
    b = window.controller.buffers
    return {"steps": b.steps.copy(), "loss": b.loss.copy(), "grad": b.layer("grad_norm").copy()}


def test_clicking_a_plot_sets_the_shared_step_cursor(make_window: Any, qtbot: Any) -> None:
    window = trained_window(make_window, qtbot)
    monitor = monitor_of(window)
    assert monitor.cursor.step is None
    monitor.refresh(force=True)
    click_plot(qtbot, monitor.grad_norm, monitor.grad_norm.plot, 12.0)
    assert monitor.cursor.step is not None and abs(monitor.cursor.step - 12) <= 1
    step = monitor.cursor.step
    central, *on_metrics = monitor.cursor_lines
    assert central.line.isVisible() and central.line.value() == pytest.approx(step)
    assert "step" in central.line.label.format and str(step) in central.line.label.format
    # the same step on the loss / accuracy / rate plots, whose x is in epochs (5 steps an epoch)
    assert [line.line.value() for line in on_metrics] == pytest.approx([step / 5] * 3)
    # a click on the loss plot moves it for every panel
    metrics = monitor.panels["metrics"]
    window.monitor.dock_of["metrics"].raise_()
    monitor.refresh(force=True)
    click_plot(qtbot, metrics, metrics.loss_plot, 4.0)           # epoch 4 = step 20
    assert monitor.cursor.step is not None and abs(monitor.cursor.step - 20) <= 1
    assert central.line.value() == pytest.approx(monitor.cursor.step)


@pytest.mark.parametrize("checkpoints", [None, {"every": 4, "keep": 3}],
                         ids=["no checkpoints", "replayed from a checkpoint"])
def test_branch_here_with_a_learning_rate_edit_trains_a_branch_that_parts_at_the_fork(
        make_window: Any, qtbot: Any, unsaved_questions: list[str], checkpoints: dict | None) -> None:
    # The default checkpoints (every 200 steps) come after this run's 30 steps; every 4 steps
    # the live run's state carries them, as a window's run past step 200 does.
    window = trained_window(make_window, qtbot, checkpoints)
    monitor = monitor_of(window)
    parent = parent_history(window)
    monitor.refresh(force=True)
    click_plot(qtbot, monitor.grad_norm, monitor.grad_norm.plot, 12.0)
    fork = monitor.cursor.step
    assert fork is not None and 5 < fork < 25
    link = monitor.cursor_lines[0].branch_link            # "Branch here…" riding on the cursor line
    assert link.isVisible() and link.toPlainText() == "Branch here…"
    plot_area = monitor.grad_norm.plot.vb.sceneBoundingRect()
    qtbot.waitUntil(lambda: plot_area.contains(link.sceneBoundingRect().center()))   # placed once painted
    where = monitor.grad_norm.graphics.mapFromScene(link.sceneBoundingRect().center())
    qtbot.mouseMove(monitor.grad_norm.graphics.viewport(), where)
    qtbot.mouseClick(monitor.grad_norm.graphics.viewport(), Qt.MouseButton.LeftButton, pos=where)
    assert monitor.cursor.step == fork                     # the click on the link did not move the cursor
    dialog = monitor.branching.dialog
    assert dialog is not None and dialog.isVisible() and str(f"{fork:,}") in dialog.windowTitle()
    rate = dialog.findChild(QLineEdit, "branchLearningRate")
    rate.clear()
    qtbot.keyClicks(rate, "0.001")
    assert "continues this run's own state" in dialog.note.text()
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.controller.ghosts.parent() is not None, timeout=30_000)
    wait_idle(qtbot, window, 30_000)
    qtbot.waitUntil(lambda: window.controller.current_step == EPOCHS * 5, timeout=30_000)
    assert window.state.experiment.learning_rate == 0.001      # the editor shows the branch
    child = parent_history(window)
    np.testing.assert_array_equal(child["steps"], parent["steps"])
    upto = int(np.searchsorted(parent["steps"], fork, side="right"))
    np.testing.assert_array_equal(child["loss"][:upto], parent["loss"][:upto])
    np.testing.assert_array_equal(child["grad"][:upto], parent["grad"][:upto])
    assert not np.array_equal(child["loss"][upto + 1:], parent["loss"][upto + 1:])
    # the parent is drawn over the branch from the fork on, in the same colours, dashed
    overlay = monitor.ghost_overlay
    assert overlay.dashed
    assert all(item.opts["pen"].style() == Qt.PenStyle.DashLine for item in overlay.dashed)
    dashed_steps = [item.xData for item in overlay.dashed if item in [i for _, i in overlay.items
                                                                     if _ is monitor.grad_norm.plot]]
    assert dashed_steps and all(x.min() >= fork for x in dashed_steps)
    ghost_list = window.runs.ghost_list
    assert any("parent, dashed" in label for label in ghost_list.labels())
    assert unsaved_questions == []         # an unnamed, never-saved run is kept as a ghost: nothing asked


def test_a_structural_branch_starts_from_the_fork_weights_and_says_so(make_window: Any, qtbot: Any) -> None:
    window = trained_window(make_window, qtbot)
    monitor = monitor_of(window)
    monitor.cursor.set_step(15)
    monitor.branching.action.trigger()
    dialog = monitor.branching.dialog
    qtbot.keyClicks(dialog.more, "model.layers[1].units=8")
    assert "Structural change" in dialog.note.text() and "where shapes allow" in dialog.note.text()
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.state.experiment.model.layers[1].units == 8, timeout=30_000)
    wait_idle(qtbot, window, 30_000)
    qtbot.waitUntil(lambda: window.controller.current_step == EPOCHS * 5, timeout=30_000)
    events = [e for e in window.controller.buffers.events if e.get("kind") == "branch"]
    assert events and "weights of step 15" in events[0]["message"]


def test_two_runs_leave_ghosts_on_the_plots_and_in_the_runs_dock(
        make_window: Any, qtbot: Any, unsaved_questions: list[str]) -> None:
    window = trained_window(make_window, qtbot)
    monitor = monitor_of(window)
    assert window.controller.ghosts.runs == [] and not window.runs.ghost_list.isVisibleTo(window.runs.panel)
    train(window, qtbot)           # the run is complete: a new one from fresh weights, the old one a ghost
    train(window, qtbot)
    assert unsaved_questions == []          # issue 17 item 12: a finished unnamed run is not asked about
    ghosts = window.controller.ghosts.runs
    assert len(ghosts) == 2
    faint = monitor.ghost_overlay.faint
    plots = {id(plot) for plot, item in monitor.ghost_overlay.items if item in faint}
    metrics = monitor.panels["metrics"]
    assert {id(monitor.grad_norm.plot), id(metrics.loss_plot), id(metrics.acc_plot)} <= plots
    assert all(item in monitor.grad_norm.plot.listDataItems() or item in metrics.loss_plot.listDataItems()
               or item in metrics.acc_plot.listDataItems() for item in faint)
    assert all(item.opts["pen"].color().alpha() < 255 for item in faint)
    # grey, never a live layer's colour, and never what sets the axes (the view fits the live run)
    from workbench.monitor.plots.style import layer_colours

    live = {QColor(c).rgb() for c in layer_colours(len(window.controller.buffers.layer_names),
                                                   monitor.grad_norm.dark)}
    colours = {item.opts["pen"].color().rgb() for item in faint}
    assert len(colours) == 1 and not colours & live
    assert all(item not in plot.vb.addedItems for plot, item in monitor.ghost_overlay.items if item in faint)
    ghost_list = window.runs.ghost_list
    assert ghost_list.isVisibleTo(window.runs.panel) and len(ghost_list.labels()) == 2
    assert all("30 steps" in label for label in ghost_list.labels())
    # untick one: its curves go; remove the other: the list and the plots lose it
    first = ghost_list.list.item(0)
    first.setCheckState(Qt.CheckState.Unchecked)
    assert len(monitor.ghost_overlay.faint) < len(faint)
    ghost_list.list.setCurrentItem(ghost_list.list.item(1))
    qtbot.mouseClick(ghost_list.remove_button, Qt.MouseButton.LeftButton)
    assert len(window.controller.ghosts.runs) == 1 and monitor.ghost_overlay.faint == []
    # at most three are kept
    for _ in range(3):
        train(window, qtbot)
    assert len(window.controller.ghosts.runs) == 3


def test_retraining_a_run_the_user_named_still_asks(make_window: Any, qtbot: Any,
                                                   unsaved_questions: list[str]) -> None:
    window = trained_window(make_window, qtbot)
    name = window.findChild(QLineEdit, "name")
    name.selectAll()
    qtbot.keyClicks(name, "my careful run")
    qtbot.keyClick(name, Qt.Key.Key_Return)
    assert window.state.experiment.name == "my careful run"
    train(window, qtbot)
    assert len(unsaved_questions) == 1 and "discards the current run" in unsaved_questions[0]


def test_clicking_a_finding_puts_the_cursor_on_its_step(make_window: Any, qtbot: Any) -> None:
    window = trained_window(make_window, qtbot, layers=8, activation="logistic",
                            init={"name": "random_normal", "stddev": 0.05})
    monitor = monitor_of(window)
    timeline = monitor.findings
    assert timeline.isVisible() and timeline.count() >= 1
    assert "Vanishing" in timeline.item(0).text()
    assert timeline.steps() == sorted(timeline.steps())
    item = timeline.item(0)
    rect = timeline.visualItemRect(item)
    qtbot.mouseClick(timeline.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert monitor.cursor.step == timeline.steps()[0]
    assert monitor.cursor_lines[0].line.isVisible()
    assert monitor.cursor_lines[0].line.value() == pytest.approx(timeline.steps()[0])
    # a new run starts a new timeline
    train(window, qtbot)
    assert all(s <= EPOCHS * 5 for s in timeline.steps())


def test_branching_a_live_run_stops_it_and_trains_the_branch_from_the_fork(make_window: Any, qtbot: Any) -> None:
    from core.training import Trainer

    spec = tiny_spec(epochs=2000)         # 10,000 steps: still training when the branch is made
    window = make_window(parse_experiment(spec))
    monitor = monitor_of(window)
    window.controller.actions["train"].trigger()
    qtbot.waitUntil(lambda: window.controller.current_step >= 40, timeout=30_000)
    assert window.controller.mode == "running"
    monitor.refresh(force=True)
    click_plot(qtbot, monitor.grad_norm, monitor.grad_norm.plot, 20.0)
    fork = monitor.cursor.step
    assert fork is not None and 0 < fork < window.controller.current_step
    qtbot.keyClick(window, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)     # Training › Branch here…
    dialog = monitor.branching.dialog
    assert dialog is not None and dialog.isVisible()
    dialog.optimizer.setCurrentText("sgd")
    dialog.epochs.setValue(20)                                    # the branch ends at step 100
    assert "continues this run's own state" in dialog.note.text()
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.controller.ghosts.parent() is not None, timeout=30_000)
    wait_idle(qtbot, window, 60_000)
    assert window.state.experiment.optimizer.name == "sgd"
    assert window.controller.current_step == 20 * 5
    # up to the fork the branch is the run as the experiment trains it (independently, headless)
    reference = Trainer(parse_experiment(spec))
    reference.fit(epochs=None, should_stop=lambda: reference.step >= fork + 5)
    b = window.controller.buffers
    upto = int(np.searchsorted(b.steps, fork, side="right"))
    np.testing.assert_array_equal(b.loss[:upto], reference.recorder["loss"][:upto].astype(np.float64))
    assert not np.array_equal(b.loss[upto:upto + 5], reference.recorder["loss"][upto:upto + 5].astype(np.float64))
    parent, at = window.controller.ghosts.parent()
    assert at == fork and parent.last_step >= 40


def test_an_opened_session_branches_and_keeps_its_saved_history_to_the_fork(
        make_window: Any, qtbot: Any, tmp_path: Any) -> None:
    from core.sessions.format import load_session
    from core.sessions.trainer_io import save_trainer
    from core.training import Trainer

    saved = Trainer(parse_experiment(tiny_spec(epochs=EPOCHS)))
    saved.fit()
    path = tmp_path / "saved.gwb"
    save_trainer(path, saved)
    window = make_window()
    assert window.open_file(path)
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: window.controller.current_step == EPOCHS * 5)
    monitor = monitor_of(window)
    monitor.refresh(force=True)
    click_plot(qtbot, monitor.grad_norm, monitor.grad_norm.plot, 17.0)
    fork = monitor.cursor.step
    dialog = monitor.branching.open_dialog()
    qtbot.keyClicks(dialog.more, "regularization.l2=0.01")
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.controller.ghosts.parent() is not None, timeout=30_000)
    wait_idle(qtbot, window, 30_000)
    assert window.state.file is None and window.state.experiment.regularization.l2 == 0.01   # unsaved branch
    history = load_session(path).history
    b = window.controller.buffers
    upto = int(np.searchsorted(history["step"], fork, side="right"))
    np.testing.assert_array_equal(b.loss[:upto], history["step_loss"][:upto].astype(np.float64))
    assert not np.array_equal(b.loss[upto:], history["step_loss"][upto:].astype(np.float64))
