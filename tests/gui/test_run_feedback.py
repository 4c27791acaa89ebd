"""What the window says about a run while it changes (issue 17): the status bar names what is
happening now, never an earlier state (13 → "Building…" shown while training); each editor field
says while a run is live whether an edit of it applies to that run or waits for the next one, at
every edit; a fix applied from the health banner is taken back with Edit › Undo and forgotten
by the next run."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QPushButton

from core.presets import preset_experiment

from .monitor_support import make_window_fixture, monitor_of, tiny_experiment, wait_idle  # noqa: F401 (fixture)
from .test_banner import exploding_finding
from .test_monitor import click_action


def message(window: Any) -> str:
    return window.statusBar().currentMessage()


def test_the_status_bar_says_what_the_run_is_doing_now(make_window: Any, qtbot: Any) -> None:
    window = make_window(tiny_experiment(epochs=500))
    c = window.controller
    click_action(window, qtbot, "train")
    assert message(window).startswith("Building the model")
    qtbot.waitUntil(lambda: c.mode == "running", timeout=10_000)
    assert message(window) == "Training…"                 # not the build's message any more
    qtbot.waitUntil(lambda: c.buffers.size > 10, timeout=10_000)
    click_action(window, qtbot, "pause")
    assert message(window).startswith("Paused")
    click_action(window, qtbot, "resume")
    assert message(window) == "Training…"
    # An event is shown for a while; when it goes (timeout, a menu's tip), the state shows again.
    assert window.state.set_field("optimizer.learning_rate", 0.002) is None
    assert message(window).startswith("Applied from the next batch")
    window.statusBar().clearMessage()
    assert message(window) == "Training…"
    click_action(window, qtbot, "stop")
    wait_idle(qtbot, window)
    assert "stopped" in message(window).lower()
    window.statusBar().clearMessage()
    assert message(window) == ""                          # idle: no "Training…" or "Stopping…" left over
    click_action(window, qtbot, "reset")
    wait_idle(qtbot, window)
    assert message(window).startswith("Fresh weights")   # said when they are drawn, not before


def field(window: Any, path: str) -> tuple[Any, Any]:
    """(panel, bound field) of the editor field at ``path``."""
    for panel in window.editor_panels():
        for f in panel.binder.fields:
            if f.path == path:
                return panel, f
    raise AssertionError(f"no field for {path}")


def test_each_field_says_whether_an_edit_applies_to_the_live_run(make_window: Any, qtbot: Any) -> None:
    window = make_window(tiny_experiment(epochs=500))
    c = window.controller
    lr_panel, lr = field(window, "optimizer.learning_rate")
    units_panel, units = field(window, "training.batch_size")
    assert "applies to the running run" not in lr.widget.toolTip() and not lr_panel.live_note.isVisibleTo(lr_panel)
    click_action(window, qtbot, "train")
    qtbot.waitUntil(lambda: c.mode == "running" and c.buffers.size > 10, timeout=10_000)
    assert "Applies to the running run from its next batch" in lr.widget.toolTip()
    caption = lr_panel.live_caption(lr.widget)
    assert caption is not None and caption.text().startswith("⚡")
    assert "waits for the next run" in units.widget.toolTip()
    caption = units_panel.live_caption(units.widget)
    assert caption is None or not caption.text().startswith("⚡")
    assert lr_panel.live_note.isVisibleTo(lr_panel) and units_panel.live_note.isVisibleTo(units_panel)
    # The first structural edit asks; "Keep running"; every later one still says it waits.
    assert window.state.set_field("training.batch_size", 16) is None
    box = window.findChild(QMessageBox, "restartDialog")
    keep = next(b for b in box.findChildren(QPushButton) if b.text() == "Keep running")
    qtbot.mouseClick(keep, Qt.MouseButton.LeftButton)
    assert window.state.set_field("training.batch_size", 8) is None
    assert window.findChild(QMessageBox, "restartDialog") is None or not box.isVisible()
    assert "waits for the next run" in message(window)
    assert "waits for the next run" in units.widget.toolTip()     # still said at the field after the rebuild
    click_action(window, qtbot, "stop")
    wait_idle(qtbot, window)
    assert "running run" not in lr.widget.toolTip() and "waits" not in units.widget.toolTip()
    assert not lr_panel.live_caption(lr.widget).text().startswith("⚡")
    assert not lr_panel.live_note.isVisibleTo(lr_panel)


def test_undo_takes_back_an_applied_fix_and_a_new_run_clears_it(make_window: Any, qtbot: Any) -> None:
    window = make_window(preset_experiment("exploding"))
    banner = monitor_of(window).banner
    banner.trial_steps, banner.trial_seconds = 40, 60.0
    finding = exploding_finding()
    with qtbot.waitSignal(banner.trials_finished, timeout=120_000) as done:
        banner.set_issues([finding])
    report = done.args[0]
    key = "+".join(report.offered[0].fix)
    before = window.state.data
    qtbot.mouseClick(banner.buttons[key], Qt.MouseButton.LeftButton)
    assert banner.stale and banner.applied_label.isVisibleTo(banner) and "gray" in banner.label.text()
    window.undo_action.trigger()                          # the fix is taken back
    assert window.state.data == before
    assert not banner.stale and not banner.applied_label.isVisibleTo(banner)
    assert "gray" not in banner.label.text()
    assert banner.buttons[key].isEnabled()                # offered again, without trying it again
    assert banner.report is report
    qtbot.mouseClick(banner.buttons[key], Qt.MouseButton.LeftButton)
    assert banner.stale
    # The next run starts from the fixed experiment: the old finding and its "fix applied" go.
    c = window.controller
    with qtbot.waitSignal(c.run_reset, timeout=10_000):
        click_action(window, qtbot, "train")
    assert not banner.stale and not banner.applied_label.isVisibleTo(banner)
    click_action(window, qtbot, "stop")
    wait_idle(qtbot, window)
