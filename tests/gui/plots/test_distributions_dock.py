"""The Distributions dock: the image grows while the run trains, shows what the trainer recorded,
draws the second run after being hidden, survives a resize, compares two runs, exports CSV."""

from __future__ import annotations

import csv
from typing import Any

import numpy as np

from core.engine.distributions import KINDS, kind_columns
from core.spec import parse_experiment

from ..monitor_support import make_window_fixture, monitor_of, tiny_spec, wait_idle  # noqa: F401 (fixture)
from .test_following_the_run import click_action


def distribution_spec(epochs: int, every: int = 2, **kwargs: Any) -> dict[str, Any]:
    spec = tiny_spec(epochs=epochs, **kwargs)
    spec["training"]["instruments"] = {"distributions": {"enabled": True, "every": every}}
    return spec


def shown(qtbot: Any, window: Any) -> Any:
    mon = monitor_of(window)
    dock = mon.dock_of["distributions"]
    if dock.isHidden():                              # it starts closed: View › Distributions opens it
        dock.toggleViewAction().trigger()
    dock.raise_()
    panel = mon.panels["distributions"]
    qtbot.waitUntil(lambda: panel.on_screen, timeout=2_000)
    mon.refresh(force=True)
    return panel


def test_the_image_grows_while_training_and_ends_as_the_recorded_histograms(make_window: Any, qtbot: Any) -> None:
    window = make_window(parse_experiment(distribution_spec(epochs=60, samples=400)))
    c = window.controller
    panel = shown(qtbot, window)
    assert panel.note.isVisible() and panel.data.size == 0
    click_action(window, qtbot, "train")
    widths: list[int] = []

    def grown() -> bool:
        monitor_of(window).dock_of["distributions"].raise_()     # the run brought another tab forward
        monitor_of(window).refresh(force=True)
        widths.append(panel.data.shape[1] if panel.data.size else 0)
        return len({w for w in widths if w > 0}) >= 3      # seen at three different widths
    qtbot.waitUntil(grown, timeout=30_000)
    wait_idle(qtbot, window, timeout=60_000)
    panel = shown(qtbot, window)
    assert widths == sorted(widths)
    recorder = c.trainer.distributions
    layer = panel.layer
    np.testing.assert_array_equal(panel.shown_steps, recorder.steps)
    np.testing.assert_allclose(panel.data, recorder.table("activations")[:, layer, :].T)
    assert panel.data.shape[0] == kind_columns("activations")
    assert not panel.note.isVisible()
    for kind in KINDS:                              # every quantity draws the recorder's rows
        panel.kind_box.setCurrentIndex(KINDS.index(kind))
        monitor_of(window).refresh(force=True)
        np.testing.assert_allclose(panel.data, recorder.table(kind)[:, layer, :].T)


def test_hidden_during_a_second_run_then_resized_it_shows_that_run_and_the_difference(make_window: Any,
                                                                                        qtbot: Any,
                                                                                        tmp_path: Any) -> None:
    window = make_window(parse_experiment(distribution_spec(epochs=4)))
    c, mon = window.controller, monitor_of(window)
    panel = shown(qtbot, window)
    click_action(window, qtbot, "train")
    wait_idle(qtbot, window)
    panel = shown(qtbot, window)                     # the run brought another tab of its group forward
    first = np.array(c.trainer.distributions.table("activations"))   # read now: its process ends next run
    assert panel.data.shape[1] == len(first)
    mon.dock_of["heatmap"].raise_()                  # the Distributions dock behind another tab
    qtbot.waitUntil(lambda: not panel.on_screen, timeout=2_000)
    window.state.set_field("seed", 21)
    window.state.set_field("optimizer.learning_rate", 0.05)
    click_action(window, qtbot, "train")
    wait_idle(qtbot, window)
    panel = shown(qtbot, window)
    second = c.trainer.distributions
    np.testing.assert_allclose(panel.data, second.table("activations")[:, panel.layer, :].T)
    assert not np.allclose(panel.data, first[:, panel.layer, :].T)
    window.resize(window.width() - 200, window.height() - 100)
    qtbot.wait(50)
    mon.refresh(force=True)
    np.testing.assert_allclose(panel.data, second.table("activations")[:, panel.layer, :].T)
    panel.mode_box.setCurrentIndex(1)                # this run minus the previous one, step by step
    mon.refresh(force=True)
    assert np.array_equal(second.steps, c.buffers.previous_distributions.steps)   # same length, same cadence
    want = second.table("activations")[:, panel.layer, :] - first[:, panel.layer, :]
    np.testing.assert_allclose(panel.data, want.T, atol=1e-6)
    assert np.abs(panel.data).max() > 0
    path = tmp_path / "dist.csv"
    panel.export_csv(path)
    with open(path, encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][0] == "step" and len(rows[0]) == kind_columns("activations") + 1
    assert [int(r[0]) for r in rows[1:]] == list(second.steps)
    np.testing.assert_allclose([float(v or "nan") for v in rows[1][1:]], want[0], atol=1e-6)
