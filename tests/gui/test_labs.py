"""The Labs menu and its three lab windows, driven offscreen."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt, QThread
from PySide6.QtWidgets import QLabel, QMainWindow

from core.labs.optimizer_race import SURFACES, run_optimizer
from core.spec import parse_experiment
from workbench.concurrent import JobRunner
from workbench.labs import LABS, create_labs_menu
from workbench.state import ExperimentState


def tiny_experiment(schedule: dict[str, Any] | None = None) -> Any:
    return parse_experiment({
        "name": "tiny moons", "seed": 3,
        "data": {"source": "moons", "params": {"n_samples": 300}, "validation_split": 0.2},
        "model": {"layers": [{"units": 16, "init": "he_normal", "activation": "elu"}] * 2},
        "optimizer": {"name": "adam", "learning_rate": 0.001},
        "schedule": schedule or {"name": "constant"},
        "training": {"epochs": 5, "batch_size": 32},
    })


@pytest.fixture
def labs(qtbot: Any) -> Iterator[Any]:
    """A bare main window with the Labs menu; every lab thread is checked to be finished afterwards."""
    window = QMainWindow()
    qtbot.addWidget(window)
    state = ExperimentState(tiny_experiment(), window)
    menu = create_labs_menu(state, window)
    window.menuBar().addMenu(menu)
    window.show()
    yield menu
    threads = [t for w in menu.windows.values() for t in w.findChildren(QThread)]
    threads += [r.thread for w in menu.windows.values() for r in w.findChildren(JobRunner)]
    # A dirty undo stack emits cleanChanged while Qt deletes it, into the state's lambda (state.py):
    # mark it clean first, as the main window tests do.
    state.undo_stack.setClean()
    window.close()                        # the menu shuts the labs down with the window
    assert menu.windows == {}
    assert all(t.isFinished() for t in threads)


def open_lab(menu: Any, key: str) -> Any:
    menu.lab_actions[key].trigger()
    return menu.windows[key]


def y_data(curve: Any) -> np.ndarray:
    return np.asarray(curve.getData()[1], dtype=np.float64)


def test_menu_has_one_action_per_lab_with_a_shortcut_and_a_tooltip(labs: Any) -> None:
    assert labs.title() == "&Labs"
    actions = labs.actions()
    assert [a.objectName() for a in actions] == [f"lab_{k}" for k in LABS]
    shortcuts = [a.shortcut().toString() for a in actions]
    assert all(shortcuts) and len(set(shortcuts)) == len(shortcuts)
    assert all(len(a.toolTip()) > 40 for a in actions)


def test_main_window_has_the_labs_menu(qtbot: Any, tmp_path: Any) -> None:
    from workbench.main_window import MainWindow

    window = MainWindow(ExperimentState(tiny_experiment()), QSettings(str(tmp_path / "s.ini"),
                                                                      QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    titles = [a.text() for a in window.menuBar().actions()]
    assert "&Labs" in titles and titles.index("&Labs") == titles.index("&Help") - 1
    window.state.undo_stack.setClean()
    window.close()


def test_init_explorer_plots_follow_the_controls(labs: Any, qtbot: Any) -> None:
    lab = open_lab(labs, "init_explorer")
    qtbot.waitUntil(lambda: lab.result is not None, timeout=20000)
    assert len(y_data(lab.forward_curve)) == 50
    assert lab.violin_item.path().elementCount() > 50 * 10
    before = y_data(lab.forward_curve).copy()
    with qtbot.waitSignal(lab.updated, timeout=20000):
        lab.depth_spin.setValue(20)
        lab.width_spin.setValue(64)
        lab.pair_combo.setCurrentIndex(4)
        lab.pair_combo.activated.emit(4)                          # N(0, 1) + logistic
    qtbot.waitUntil(lambda: lab.result.settings.activation == "logistic" and lab.result.depth == 20, timeout=20000)
    assert len(y_data(lab.forward_curve)) == 20
    assert not np.array_equal(before[:20], y_data(lab.forward_curve))
    assert y_data(lab.saturated_curve)[5:].min() > 0.2             # the logistic saturates (He + ReLU: 0)
    assert lab.init_spec() == "random_normal"                      # stddev 1 is the registry default
    lab.init_params.spin("stddev").setValue(0.05)                   # → vanishing gradients
    qtbot.waitUntil(lambda: lab.result.settings.init == {"name": "random_normal", "mean": 0.0, "stddev": 0.05},
                    timeout=20000)
    assert y_data(lab.backward_curve)[0] < -10                     # log10 of the bottom/top gradient ratio


def test_init_explorer_shows_the_signal_propagation_and_the_jacobian_spectrum(labs: Any, qtbot: Any) -> None:
    lab = open_lab(labs, "init_explorer")
    qtbot.waitUntil(lambda: lab.result is not None, timeout=20000)
    with qtbot.waitSignal(lab.updated, timeout=20000):
        lab.depth_spin.setValue(12)
        lab.width_spin.setValue(40)
    qtbot.waitUntil(lambda: lab.result.depth == 12 and lab.result.settings.width == 40, timeout=20000)
    r = lab.result
    assert lab.propagation_plot.isVisible() and lab.jacobian_plot.isVisible()
    np.testing.assert_allclose(y_data(lab.measured_forward), np.log10(r.std ** 2))
    np.testing.assert_allclose(y_data(lab.predicted_forward), np.log10(r.predicted_forward_variance))
    np.testing.assert_allclose(y_data(lab.predicted_backward), np.log10(r.predicted_backward_variance))
    # He + ReLU (the first book pair): the predicted forward variance is flat; Glorot's halves per layer
    assert np.ptp(y_data(lab.predicted_forward)) < 1e-6
    glorot = y_data(lab.reference_curves["glorot_normal"])
    np.testing.assert_allclose(np.diff(glorot[1:]), np.log10(0.5), atol=1e-6)
    assert len(lab.jacobian_curves) == 3
    for i, curve in enumerate(lab.jacobian_curves):
        values = r.jacobian_singular_values[i]
        assert len(y_data(curve)) == 40 and (values > 0).sum() > 5
        np.testing.assert_allclose(y_data(curve)[values > 0], np.log10(values[values > 0]))
        assert np.isnan(y_data(curve)[values == 0]).all()      # ReLU's lost directions: a gap, not -inf
    assert not lab.jacobian_note.isVisible()


def test_init_explorer_refuses_a_pass_too_large_to_hold_and_stops_a_large_one(labs: Any, qtbot: Any) -> None:
    lab = open_lab(labs, "init_explorer")
    qtbot.waitUntil(lambda: lab.result is not None and not lab.runner.busy, timeout=20000)
    shown = lab.result
    lab.draws_spin.setValue(lab.draws_spin.maximum())          # 32 draws of 100 × 1,000: 70 GB
    lab.depth_spin.setValue(100)
    lab.width_spin.setValue(1000)
    qtbot.waitUntil(lambda: "million values" in lab.summary_label.text(), timeout=5000)
    assert "32 draw(s) of 100 layers of 1000 units" in lab.summary_label.text()
    assert not lab.runner.busy and lab.result is shown           # nothing was started
    lab.draws_spin.setValue(1)                                  # one draw is allowed, and takes seconds
    qtbot.waitUntil(lambda: lab.runner.busy, timeout=5000)
    lab.depth_spin.setValue(3)                                  # the large pass is dropped at its next layer
    lab.width_spin.setValue(10)
    qtbot.waitUntil(lambda: lab.result is not shown and lab.result.depth == 3, timeout=10000)


def test_init_explorer_applies_the_pair_as_one_undoable_edit(labs: Any, qtbot: Any) -> None:
    lab = open_lab(labs, "init_explorer")
    lab.set_pair("lecun_normal", "selu")
    state = lab.state
    depth = state.undo_stack.count()
    qtbot.mouseClick(lab.apply_button, Qt.MouseButton.LeftButton)
    assert state.undo_stack.count() == depth + 1
    assert all(layer.init == "lecun_normal" and layer.activation == "selu" for layer in state.experiment.model.layers)
    assert state.experiment.model.layers[0].units == 16
    lab.set_pair("he_normal", "leaky_relu")
    lab.activation_params.spin("alpha").setValue(0.1)
    assert lab.apply_to_experiment() is None
    assert state.experiment.model.layers[1].activation_params == {"alpha": 0.1}
    state.undo_stack.undo()
    state.undo_stack.undo()
    assert state.experiment.model.layers[0].activation == "elu"


def test_optimizer_race_draws_core_trajectories_and_animates(labs: Any, qtbot: Any) -> None:
    lab = open_lab(labs, "optimizer_race")
    lab.autotune = False
    qtbot.waitUntil(lambda: bool(lab.trajectories) and not lab.race_runner.busy and not lab.tune_runner.busy,
                    timeout=30000)
    bowl = SURFACES.get("bowl")()
    sgd_lane = next(lane for lane in lab.lanes if lane.name == "sgd")
    with qtbot.waitSignal(lab.raced, timeout=20000):
        sgd_lane.rate.setValue(0.02)
    expected = run_optimizer(bowl, "sgd", 0.02, bowl.steps)
    x, y = lab.curves["sgd"].getData()
    np.testing.assert_array_equal(np.column_stack([x, y]), expected.points)
    assert lab.table.rowCount() == len(lab.lanes)
    lab.resize(1300, 660)                                  # as on a 1366 × 768 screen: every row in view
    qtbot.waitUntil(lambda: lab.table.height() >= lab.table.minimumHeight(), timeout=2_000)
    last = lab.table.rowCount() - 1
    assert lab.table.rowViewportPosition(last) + lab.table.rowHeight(last) <= lab.table.viewport().height()
    with qtbot.waitSignal(lab.raced, timeout=20000):
        sgd_lane.enabled.setChecked(False)
    assert lab.table.rowCount() == len(lab.lanes) - 1 and len(lab.curves["sgd"].getData()[0] or []) == 0

    before = lab.contour_data.copy()
    with qtbot.waitSignal(lab.raced, timeout=20000):
        lab.surface_combo.setCurrentIndex(lab.surface_combo.findData("saddle"))
    assert not np.array_equal(before, lab.contour_data)
    assert list(lab.start_marker.getData()[0]) == [SURFACES.get("saddle").start[0]]
    assert len(lab.minima_marker.getData()[0]) == 2

    lab.reset()
    assert len(lab.curves["adam"].getData()[0]) == 1
    lab.play()
    qtbot.waitUntil(lambda: 10 < lab.frame_step, timeout=10000)
    lab.pause()
    shown = len(lab.curves["adam"].getData()[0])
    assert 10 < shown <= lab.frame_step + 1
    assert lab.step_text.toPlainText().startswith(f"step {lab.frame_step} /")


def test_optimizer_race_tunes_rates_on_the_worker(labs: Any, qtbot: Any) -> None:
    lab = open_lab(labs, "optimizer_race")      # the bowl, tuned on first show
    with qtbot.waitSignal(lab.tuned, timeout=30000) as blocker:
        pass
    rates = blocker.args[0]
    assert set(rates) == {lane.name for lane in lab.lanes}
    qtbot.waitUntil(lambda: not lab.race_runner.busy, timeout=20000)
    assert all(lane.rate.value() == pytest.approx(rates[lane.name]) for lane in lab.lanes)
    # The Table 11-2 dialog computes on its own thread and stops when closed.
    dialog = lab.measure_table()
    qtbot.waitUntil(lambda: dialog.runner.busy, timeout=5000)
    dialog.close()
    assert dialog.runner.thread.isFinished()


def test_lr_finder_runs_to_completion_and_applies_its_suggestion(labs: Any, qtbot: Any) -> None:
    lab = open_lab(labs, "lr_finder")
    lab.steps_spin.setValue(120)
    with qtbot.waitSignal(lab.finished, timeout=60000) as blocker:
        lab.start_button.click()
        assert not lab.start_button.isEnabled() and lab.stop_button.isEnabled()
    result = blocker.args[0]
    assert result.reason in ("exploded", "completed") and result.suggestion is not None
    assert len(lab.smooth_curve.getData()[0]) == result.n_steps
    np.testing.assert_allclose(lab.smooth_curve.getData()[0], np.log10(result.learning_rates))
    assert lab.suggestion_line.isVisible() and lab.suggestion_line.value() == pytest.approx(np.log10(result.suggestion))
    assert "Suggested η" in lab.suggestion_label.text()
    qtbot.waitUntil(lambda: lab.start_button.isEnabled(), timeout=5000)

    state = lab.state
    rounded = float(f"{result.suggestion:.2g}")
    lab.use_rate_button.click()
    assert state.experiment.learning_rate == pytest.approx(rounded)
    state.undo_stack.undo()
    assert state.experiment.learning_rate == pytest.approx(0.001)
    lab.use_peak_button.click()
    assert state.experiment.schedule.name == "one_cycle"
    assert state.experiment.schedule.params["max_learning_rate"] == pytest.approx(rounded)


def test_lr_finder_axis_spans_the_rates_it_will_try_before_it_has_drawn_any(labs: Any, qtbot: Any) -> None:
    """An empty log axis spans 10⁰ to 10¹ and reads "2 3 … 9"; the finder's shows its own span."""
    lab = open_lab(labs, "lr_finder")
    view = lab.plot.getPlotItem().getViewBox()
    low, high = view.viewRange()[0]
    assert low == pytest.approx(np.log10(lab.min_spin.value()), abs=0.2)
    assert high == pytest.approx(np.log10(lab.max_spin.value()), abs=0.2)
    lab.min_spin.setValue(1e-4)
    lab.max_spin.setValue(1e-2)
    assert view.viewRange()[0] == pytest.approx([-4.0, -2.0], abs=0.1)


def test_lr_finder_stop_keeps_what_was_measured(labs: Any, qtbot: Any) -> None:
    lab = open_lab(labs, "lr_finder")
    lab.steps_spin.setValue(5000)
    lab.max_spin.setValue(1e-3)                  # never explodes: only Stop ends it early
    lab.start()
    qtbot.waitUntil(lambda: len(lab.points["lr"]) > 20, timeout=30000)
    with qtbot.waitSignal(lab.finished, timeout=30000) as blocker:
        lab.stop_button.click()
    assert blocker.args[0].reason == "stopped" and 20 < blocker.args[0].n_steps < 5000


def test_closing_the_main_window_ends_a_running_finder(labs: Any, qtbot: Any) -> None:
    lab = open_lab(labs, "lr_finder")
    lab.steps_spin.setValue(5000)
    lab.max_spin.setValue(1e-3)
    lab.start()
    qtbot.waitUntil(lambda: len(lab.points["lr"]) > 5, timeout=30000)
    thread = lab.runner.thread
    labs.parent().close()
    assert thread.isFinished() and labs.windows == {}


def test_a_lab_job_hands_the_gil_over_between_its_steps(qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lab job's ``should_stop()`` also sleeps briefly every few milliseconds, so the GUI thread
    gets the GIL while the job computes (workbench.gil)."""
    import time

    from workbench import gil

    sleeps: list[float] = []
    real_sleep = time.sleep
    monkeypatch.setattr(gil.time, "sleep", lambda s: (sleeps.append(s), real_sleep(s)))

    def job(progress: Any, should_stop: Any) -> int:
        t0, steps = time.perf_counter(), 0
        while time.perf_counter() - t0 < 0.2 and not should_stop():
            steps += 1
        return steps

    runner = JobRunner(name="gil-test")
    try:
        with qtbot.waitSignal(runner.finished, timeout=5_000) as blocker:
            runner.submit(job)
    finally:
        runner.shutdown()
    expected = 0.2 / gil.YIELD_EVERY
    assert blocker.args[0] > 10 * len(sleeps)
    assert 0.5 * expected <= len(sleeps) <= 1.5 * expected + 1


def test_lr_finder_says_why_it_suggests_nothing_and_offers_no_use(labs: Any, qtbot: Any) -> None:
    from core.labs.lr_finder import RangeTest
    lab = open_lab(labs, "lr_finder")
    falling = np.linspace(2.0, 0.01, 50)            # still falling at the end of the range
    result = RangeTest(learning_rates=np.geomspace(1e-5, 1.0, 50), losses=falling, smoothed=falling,
                       reason="completed", min_learning_rate=1e-5, max_learning_rate=1.0)
    lab._done(result)
    text = lab.suggestion_label.text()
    assert "no suggestion" in text and "did not rise" in text
    assert not lab.use_rate_button.isEnabled() and not lab.use_peak_button.isEnabled()


def test_the_measured_table_beside_the_book_is_the_one_the_docs_show(labs: Any, qtbot: Any) -> None:
    """Measure Table 11-2… shows the measured ratings, the book's, and one line per disagreement
    saying why; the docs' table is the same measurement (same function, grid and tolerance)."""
    from pathlib import Path

    from core.labs.optimizer_race import DEFAULT_TOLERANCE, disagreements, docs_block, format_report, learning_rate_grid

    lab = open_lab(labs, "optimizer_race")
    lab.tolerance_spin.setValue(DEFAULT_TOLERANCE)
    dialog = lab.measure_table()
    qtbot.waitUntil(lambda: hasattr(dialog, "rows"), timeout=120_000)
    rows = dialog.rows
    docs = (Path(__file__).resolve().parents[2] / "docs" / "labs.md").read_text(encoding="utf-8")
    assert format_report(rows, DEFAULT_TOLERANCE, learning_rate_grid()) == docs_block(docs)
    shown = dialog.browser.toPlainText()
    why = disagreements(rows, DEFAULT_TOLERANCE, learning_rate_grid())
    assert why and all(line in shown for line in why)
    rmsprop = next(r for r in rows if r.optimizer == "rmsprop")
    assert rmsprop.book is not None and f"book {rmsprop.book[0]}" in shown
    assert "four a decade" in dialog.findChild(QLabel).text()
    dialog.close()
