"""Help › Lessons: open a lesson, load its example in one click, train a short run, read the
check's verdict; and the transfer dialog's defaults, the book's advice."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt

from core.lessons import LESSONS, RunRecord, check_vanishing
from core.presets import PRESETS
from core.sessions.format import load_session
from core.zoo import EXAMPLES_DIR, ZOO_DIR
from workbench.lessons import LessonsPanel

from .monitor_support import make_window_fixture, tab_row_with, wait_idle  # noqa: F401 (fixture)


def open_lessons(window: Any) -> LessonsPanel:
    assert not window.lessons.dock.isVisible()
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    action = next(a for a in help_menu.actions() if a.objectName() == "lessonsAction")
    action.trigger()
    assert window.lessons.dock.isVisible()
    return window.lessons.panel


def train(qtbot: Any, window: Any, epochs: int) -> None:
    assert window.state.set_field("training.epochs", epochs) is None
    window.controller.actions["train"].trigger()
    qtbot.waitUntil(lambda: window.controller.mode != "idle", timeout=5_000)
    wait_idle(qtbot, window, timeout=60_000)


def test_a_lesson_loads_its_preset_trains_and_shows_the_checks_verdict(make_window: Any, qtbot: Any) -> None:
    window = make_window()
    panel = open_lessons(window)
    assert panel.lesson_list.count() == len(LESSONS) == 10
    panel.select("vanishing")
    assert "gradient-norm plot" in panel.look.text() and "dock" in panel.look.text()
    assert panel.steps.text().count("<li>") == len(LESSONS["vanishing"].steps)
    qtbot.mouseClick(panel.load_button, Qt.MouseButton.LeftButton)
    assert window.state.experiment.to_dict() == PRESETS["vanishing"][1]()
    shown: list[tuple[str, Any]] = []
    panel.verdict_shown.connect(lambda key, verdict: shown.append((key, verdict)))
    train(qtbot, window, epochs=2)
    qtbot.waitUntil(lambda: bool(shown), timeout=20_000)
    key, verdict = shown[0]
    assert key == "vanishing" and verdict.appeared
    # the verdict is the check's on this very run
    expected = check_vanishing(RunRecord.from_trainer(window.controller.trainer))
    assert verdict.value == pytest.approx(expected.value)
    text = panel.verdict_label.text()
    assert "The expected effect appeared" in text and "dense_0&#x27;s gradient is" in text
    assert "smaller than dense_9" in text
    window.state.undo_stack.setClean()


def test_the_transfer_lesson_opens_the_zoo_example_and_measures_the_gain(make_window: Any, qtbot: Any) -> None:
    window = make_window()
    panel = open_lessons(window)
    panel.select("transfer")
    assert panel.load()
    qtbot.waitUntil(lambda: "Loaded" in panel.verdict_label.text(), timeout=10_000)   # read on a worker
    experiment = window.state.experiment
    assert experiment.model.transfer is not None and window.state.base_dir == EXAMPLES_DIR
    shown: list[Any] = []
    panel.verdict_shown.connect(lambda key, verdict: shown.append(verdict))
    train(qtbot, window, epochs=3)
    qtbot.waitUntil(lambda: bool(shown), timeout=30_000)
    assert np.isfinite(shown[0].value)
    assert "from scratch" in panel.verdict_label.text() and "points" in panel.verdict_label.text()
    window.state.undo_stack.setClean()


def test_a_lesson_is_not_loaded_over_a_run_in_progress(make_window: Any, qtbot: Any) -> None:
    window = make_window()
    panel = open_lessons(window)
    panel.select("regularization")
    assert panel.load()
    window.controller.actions["train"].trigger()
    qtbot.waitUntil(lambda: window.controller.busy, timeout=5_000)
    panel.select("vanishing")
    before = window.state.experiment
    assert not panel.load() and window.state.experiment == before
    assert "Stop training" in panel.verdict_label.text()
    window.controller.stop()
    wait_idle(qtbot, window, timeout=20_000)
    window.state.undo_stack.setClean()


def test_the_transfer_dialog_defaults_to_the_books_advice(make_window: Any, qtbot: Any) -> None:
    """On the zoo's digits 0-4 model: reuse the lower six of eight layers and replace the top two,
    freeze them, unfreeze after 2 epochs at the same rate (×1.0 measured better than the book's ×0.1 here),
    and the new task is digits 5-9."""
    source = ZOO_DIR / "digits_0-4.gwb"
    base = load_session(source)
    window = make_window(base.experiment)
    dialog = window.sessions.show_transfer_dialog(source)
    qtbot.waitUntil(lambda: not dialog.loading, timeout=10_000)     # the source is read on a worker
    assert dialog.choice() == ([0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5])
    assert dialog.unfreeze.value() == 2 and dialog.factor.value() == pytest.approx(1.0)
    assert dialog.classes_edit.isVisibleTo(dialog) and dialog.classes_edit.text() == "5 6 7 8 9"
    assert dialog.ok_button.isEnabled(), dialog.error_label.text()
    dialog.accept()
    experiment = window.state.experiment
    transfer = experiment.model.transfer
    assert transfer.layers == (0, 1, 2, 3, 4, 5) and transfer.freeze == (0, 1, 2, 3, 4, 5)
    assert transfer.unfreeze_at_epoch == 2 and transfer.learning_rate_factor == pytest.approx(1.0)
    assert experiment.data.params["classes"] == [5, 6, 7, 8, 9]
    window.state.undo_stack.setClean()


def test_the_transfer_dialog_refuses_an_unknown_class_at_its_field(make_window: Any, qtbot: Any) -> None:
    source = ZOO_DIR / "digits_0-4.gwb"
    window = make_window(load_session(source).experiment)
    dialog = window.sessions.show_transfer_dialog(source)
    qtbot.waitUntil(lambda: not dialog.loading, timeout=10_000)     # the source is read on a worker
    dialog.classes_edit.setText("5 6 eleven")
    assert not dialog.ok_button.isEnabled()
    assert dialog.error is not None and dialog.error.path.startswith("data")
    assert "border" in dialog.classes_edit.styleSheet()
    dialog.classes_edit.setText("")                # empty: every class
    assert dialog.ok_button.isEnabled(), dialog.error_label.text()
    dialog.reject()
    window.state.undo_stack.setClean()


def test_a_hidden_panel_checks_nothing_and_check_the_run_checks_on_demand(make_window: Any, qtbot: Any) -> None:
    window = make_window()                      # tiny moons, not a lesson's example
    panel = window.lessons.panel
    shown: list[Any] = []
    panel.verdict_shown.connect(lambda key, verdict: shown.append((key, verdict)))
    train(qtbot, window, epochs=2)
    qtbot.wait(300)
    assert not shown and panel.verdict_label.text() == ""
    open_lessons(window)
    panel.select("initialization")
    qtbot.mouseClick(panel.check_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(shown), timeout=20_000)
    key, verdict = shown[0]
    assert key == "initialization" and np.isfinite(verdict.value)
    assert "gradient" in panel.verdict_label.text()
    window.state.undo_stack.setClean()


def test_opening_the_lessons_widens_a_column_too_narrow_for_its_sixth_tab(make_window: Any, qtbot: Any) -> None:
    """Help › Lessons adds a sixth tab to the left column's five; a column as narrow as it goes (as a
    user may have dragged it) showed "Mo…" and "Optimi…": opening the lessons widens it to fit."""
    from PySide6.QtWidgets import QDockWidget

    from workbench.main_window import TAB_PADDING

    window = make_window()
    data = window.findChild(QDockWidget, "editorDataDock")
    row = [data, *window.tabifiedDockWidgets(data)]
    five = sum(window.fontMetrics().horizontalAdvance(d.windowTitle()) + TAB_PADDING for d in row if not d.isHidden())
    window.resizeDocks([data], [five], Qt.Orientation.Horizontal)
    qtbot.wait(50)
    six = five + window.fontMetrics().horizontalAdvance("Lessons") + TAB_PADDING
    assert data.width() < six          # as narrow as the column goes: too narrow for a sixth tab
    open_lessons(window)
    qtbot.wait(50)
    tabs, squeezed = tab_row_with(window, "Lessons")
    assert tabs == 6
    assert squeezed == []            # every tab at the width its label asks for: none elided
