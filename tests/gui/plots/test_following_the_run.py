"""The plots show the run that is training, and their ranges follow it: a second run drawn while a
dock was hidden, the Loss dock's epochs, the learning rate after Fit, the Activations dock's layers
and the event labels (the teacher's trial, issue 17, items 1-4 and 6)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QToolBar, QToolButton

from core.spec import parse_experiment
from workbench.monitor.buffers import RunBuffers
from workbench.monitor.plots import MetricsPanel

from ..monitor_support import make_window_fixture, monitor_of, tiny_spec, wait_idle  # noqa: F401 (fixture)


def click_action(window: Any, qtbot: Any, name: str) -> None:
    action = window.controller.actions[name]
    button = window.findChild(QToolBar, "TrainingToolbar").widgetForAction(action)
    assert isinstance(button, QToolButton) and button.isEnabled(), f"{name} is not clickable"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def click_tool(panel: Any, qtbot: Any, text: str) -> None:
    button = next(b for b in panel.findChildren(QToolButton) if b.text() == text)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def drawn(qtbot: Any, window: Any, key: str) -> Any:
    """The panel, once it has drawn the buffers' newest version (the monitor's timer pulls)."""
    panel = monitor_of(window).panels[key]
    qtbot.waitUntil(lambda: panel.drawn_version == window.controller.buffers.version, timeout=5_000)
    return panel


def wheel(panel: Any, plot: Any, qtbot: Any, clicks: int = 3) -> None:
    """Turn the mouse wheel over a plot (zoom in), as a user does."""
    view = panel.graphics
    centre = view.mapFromScene(plot.vb.sceneBoundingRect().center())
    for _ in range(clicks):
        event = QWheelEvent(QPointF(centre), QPointF(view.viewport().mapToGlobal(centre)), QPoint(0, 0),
                            QPoint(0, 120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                            Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(view.viewport(), event)
    qtbot.wait(50)


def test_a_hidden_loss_dock_shows_the_second_run_when_it_comes_back(make_window: Any, qtbot: Any) -> None:
    window = make_window(parse_experiment(tiny_spec(epochs=4)))
    c, mon = window.controller, monitor_of(window)
    mon.dock_of["metrics"].raise_()
    click_action(window, qtbot, "train")
    wait_idle(qtbot, window)
    drawn(qtbot, window, "metrics")
    first = c.trainer
    # the first run's record, read now: its training process ends when the second run starts
    first_loss, first_step = np.array(first.recorder["loss"]), first.step
    mon.dock_of["flow"].raise_()          # the Loss dock behind another tab
    qtbot.waitUntil(lambda: not mon.panels["metrics"].on_screen, timeout=2_000)
    window.state.set_field("optimizer.learning_rate", 0.05)
    window.state.set_field("seed", 11)
    click_action(window, qtbot, "train")              # a second run, as long as the first
    wait_idle(qtbot, window)
    assert c.trainer is not first and c.buffers.size == first_step
    mon.dock_of["metrics"].raise_()
    panel = drawn(qtbot, window, "metrics")
    np.testing.assert_allclose(panel.step_loss.yData, c.buffers.loss)
    np.testing.assert_allclose(panel.step_loss.yData, c.trainer.recorder["loss"])
    assert not np.allclose(panel.step_loss.yData, first_loss)


def test_the_epoch_axis_follows_the_run_and_comes_back_with_fit(make_window: Any, qtbot: Any) -> None:
    window = make_window(parse_experiment(tiny_spec(epochs=30, samples=100)))
    c, mon = window.controller, monitor_of(window)
    mon.dock_of["metrics"].raise_()
    panel = mon.panels["metrics"]
    click_action(window, qtbot, "train")
    wait_idle(qtbot, window)
    drawn(qtbot, window, "metrics")
    qtbot.wait(100)
    for plot in (panel.loss_plot, panel.acc_plot, panel.lr_plot):
        x0, x1 = plot.vb.viewRange()[0]
        assert -1.0 < x0 <= 0.1 and 30 <= x1 <= 31.5, (x0, x1)
    wheel(panel, panel.loss_plot, qtbot)                 # the user zooms: the range stays theirs
    zoomed = panel.loss_plot.vb.viewRange()[0]
    assert zoomed[1] - zoomed[0] < 25
    mon.refresh(force=True)
    assert np.allclose(panel.loss_plot.vb.viewRange()[0], zoomed)
    click_tool(panel, qtbot, "Fit")
    drawn(qtbot, window, "metrics")
    x0, x1 = panel.loss_plot.vb.viewRange()[0]
    assert -1.0 < x0 <= 0.1 and 30 <= x1 <= 31.5, (x0, x1)
    wheel(panel, panel.loss_plot, qtbot)
    window.state.set_field("training.epochs", 12)
    click_action(window, qtbot, "train")                 # a new run follows its own epochs again
    wait_idle(qtbot, window)
    assert c.buffers.epochs["epoch"][-1] == 12
    drawn(qtbot, window, "metrics")
    x0, x1 = panel.loss_plot.vb.viewRange()[0]
    assert -1.0 < x0 <= 0.1 and 12 <= x1 <= 12.5, (x0, x1)


def test_a_constant_learning_rate_reads_as_one_line_after_fit(make_window: Any, qtbot: Any) -> None:
    window = make_window(parse_experiment(tiny_spec(epochs=3)))
    mon = monitor_of(window)
    mon.dock_of["metrics"].raise_()
    click_action(window, qtbot, "train")
    wait_idle(qtbot, window)
    panel = drawn(qtbot, window, "metrics")
    click_tool(panel, qtbot, "Fit")
    qtbot.wait(100)
    y0, y1 = panel.lr_plot.vb.viewRange()[1]
    assert y0 <= 0.0 and 0.01 < y1 < 0.02, (y0, y1)      # from 0 to just above the rate 0.01
    used = panel.used_lr.yData
    assert used is not None and len(used) == window.controller.buffers.size
    assert np.all((used > y0) & (used < y1))            # the whole "used" curve is in view


def test_the_activations_dock_shows_every_layer_when_training_starts_with_it_in_front(make_window: Any,
                                                                                      qtbot: Any) -> None:
    window = make_window(parse_experiment(tiny_spec(epochs=3, layers=5)))
    mon = monitor_of(window)
    mon.dock_of["activations"].raise_()
    panel = mon.panels["activations"]
    qtbot.waitUntil(lambda: panel.on_screen, timeout=2_000)
    mon.refresh(force=True)                              # the empty plot, drawn before Train
    click_action(window, qtbot, "train")
    wait_idle(qtbot, window)
    drawn(qtbot, window, "activations")
    n = window.controller.buffers.n_layers
    assert n == 6
    x0, x1 = panel.stat_plot.vb.viewRange()[0]
    assert x0 <= -0.4 and x1 >= n - 0.6, (x0, x1)         # dense_0 … output, not dense_0 alone
    y0, y1 = panel.stat_plot.vb.viewRange()[1]
    means = panel.means.data["y"]
    assert y0 <= means.min() and means.max() <= y1


def test_clustered_events_share_one_label_and_list_every_event_on_hover(qtbot: Any) -> None:
    buffers = RunBuffers()
    buffers.meta["steps_per_epoch"] = 10
    buffers.meta["epochs"] = 60
    panel = MetricsPanel(buffers)
    qtbot.addWidget(panel)
    buffers.events = [
        {"kind": "lr_drop", "step": 400, "message": "learning rate 0.01 → 0.005"},
        {"kind": "early_stopping", "step": 410, "message": "stopped: no improvement for 5 epochs"},
        {"kind": "restore_best", "step": 410, "message": "restored the weights of epoch 36"},
        {"kind": "lr_drop", "step": 100, "message": "learning rate 0.02 → 0.01"},
    ]
    buffers.version += 1
    panel.show()
    panel.redraw()
    labels = panel.marker_labels
    assert len(labels) == 2                               # epoch 10, and the cluster at 40-41
    texts = sorted(line.label.toPlainText() for line in labels)
    assert texts[0] == "lr ↓"
    assert "early stop" in texts[1] and "best restored" in texts[1] and "lr ↓" in texts[1]
    tip = next(line.toolTip() for line in labels if "early stop" in line.label.toPlainText())
    for message in ("0.01 → 0.005", "no improvement", "epoch 36"):
        assert message in tip
    # every event still has its line on each of the three plots
    assert len(panel.markers) == 3 * 4


def test_after_a_preset_the_plots_say_they_show_the_previous_run(make_window: Any, qtbot: Any) -> None:
    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QLabel, QMenu

    window = make_window(parse_experiment(tiny_spec(epochs=2)))
    mon = monitor_of(window)
    note = window.findChild(QLabel, "staleRunNote")
    click_action(window, qtbot, "train")
    wait_idle(qtbot, window)
    assert not note.isVisible()
    window.findChild(QMenu, "presetsMenu").findChild(QAction, "preset_overfitting").trigger()
    assert note.isVisible() and "before the last change" in note.text()
    assert not mon.panels["grad_norm"].graphics.isEnabled()
    window.undo_action.trigger()                          # the run plotted is the experiment's again
    assert not note.isVisible() and mon.panels["grad_norm"].graphics.isEnabled()
    window.redo_action.trigger()
    assert note.isVisible()
    window.state.set_field("training.epochs", 1)
    click_action(window, qtbot, "train")
    qtbot.waitUntil(lambda: not note.isVisible(), timeout=10_000)
    wait_idle(qtbot, window, timeout=60_000)
    assert not note.isVisible()


def test_the_empty_heatmap_and_confusion_matrix_show_a_note_that_fits(make_window: Any, qtbot: Any) -> None:
    window = make_window()
    mon = monitor_of(window)
    for key in ("heatmap", "confusion"):
        mon.dock_of[key].raise_()
        panel = mon.panels[key]
        qtbot.waitUntil(lambda p=panel: p.on_screen, timeout=2_000)
        mon.refresh(force=True)
        qtbot.wait(50)
        assert panel.note.isVisible()
        assert panel.plot.vb.sceneBoundingRect().contains(panel.note.sceneBoundingRect()), key
    heatmap = mon.panels["heatmap"]
    assert not heatmap.plot.getAxis("left").style["showValues"]
    assert not heatmap.plot.getAxis("bottom").style["showValues"]
    click_action(window, qtbot, "train")
    wait_idle(qtbot, window)
    mon.dock_of["heatmap"].raise_()                      # the run brought the confusion matrix forward
    drawn(qtbot, window, "heatmap")
    assert heatmap.plot.getAxis("left").style["showValues"] and not heatmap.note.isVisible()


def test_every_dock_shows_the_second_run_of_two_in_a_row(make_window: Any, qtbot: Any) -> None:
    """Train, train again: each dock brought forward afterwards draws the second run's numbers."""
    window = make_window(parse_experiment(tiny_spec(epochs=3)))
    c, mon = window.controller, monitor_of(window)
    click_action(window, qtbot, "train")
    wait_idle(qtbot, window)
    for key in mon.dock_of:                           # every dock draws the first run
        mon.dock_of[key].show()                       # (the instrument docks start closed)
        mon.dock_of[key].raise_()
        qtbot.waitUntil(lambda k=key: mon.panels[k].on_screen, timeout=2_000)
        mon.refresh(force=True)
    first = c.trainer
    first_loss = np.array(first.recorder["loss"])     # read now: its process ends with the next run
    window.state.set_field("seed", 21)
    window.state.set_field("optimizer.learning_rate", 0.03)
    click_action(window, qtbot, "train")
    wait_idle(qtbot, window)
    assert c.trainer is not first
    b = c.buffers
    for key in mon.dock_of:
        mon.dock_of[key].show()
        mon.dock_of[key].raise_()
        qtbot.waitUntil(lambda k=key: mon.panels[k].on_screen, timeout=2_000)
        mon.refresh(force=True)
    panels = mon.panels
    np.testing.assert_allclose(panels["metrics"].step_loss.yData, c.trainer.recorder["loss"])
    np.testing.assert_allclose(panels["metrics"].val_loss.yData, c.trainer.history["val_loss"])
    np.testing.assert_allclose(panels["flow"].values["grad_norm"], b.last("grad_norm"))
    np.testing.assert_allclose(panels["heatmap"].data, b.log_grad_norm())
    np.testing.assert_allclose(panels["activations"].means.data["y"], b.last("activation_mean"))
    confusion = c.trainer.confusion_matrix("val")
    share = confusion / confusion.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(panels["confusion"].image.image, share)
    assert not np.allclose(panels["metrics"].step_loss.yData, first_loss)
