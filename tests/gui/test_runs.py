"""The Runs panel (issue 4) and File › Export › PyTorch script (issue 7), driven through the real
main window: sessions saved or opened are listed, ticked ones are overlaid (the curves are the
sessions' own histories, aligned by core.sessions.compare), and the export writes a script that compiles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from core.engine import distributions as dist
from core.sessions.format import load_session
from core.sessions.trainer_io import save_trainer
from core.spec import parse_experiment
from core.training import Trainer

from .monitor_support import make_window_fixture, tiny_experiment, wait_idle  # noqa: F401 (fixture)


def make_session(path: Path, epochs: int, layers: int, activation: str = "elu") -> Path:
    exp = tiny_experiment(epochs=epochs, layers=layers, units=8, activation=activation)
    trainer = Trainer(exp)
    trainer.fit()
    save_trainer(path, trainer)
    return path


@pytest.fixture(name="two_sessions")
def two_sessions_fixture(tmp_path: Path) -> tuple[Path, Path]:
    return (make_session(tmp_path / "elu.gwb", 3, 2),
            make_session(tmp_path / "tanh.gwb", 5, 4, activation="tanh"))


def runs_of(window: Any) -> Any:
    return window.runs.panel


def finite(a: Any) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a[np.isfinite(a)]


def test_open_two_sessions_overlays_their_histories(make_window: Any, qtbot: Any,
                                                    two_sessions: tuple[Path, Path]) -> None:
    window = make_window()
    panel = runs_of(window)
    for p in two_sessions:
        assert window.open_file(p)
        wait_idle(qtbot, window)
    paths = [p.resolve() for p in two_sessions]
    assert panel.paths() == paths and panel.checked_paths() == []
    # tick both, as a user does
    with qtbot.waitSignal(panel.refreshed, timeout=10_000):
        for i in range(panel.list.count()):
            panel.list.item(i).setCheckState(Qt.CheckState.Checked)
    qtbot.waitUntil(lambda: panel.data is not None and panel.data.paths == paths, timeout=10_000)
    for p, layers in zip(paths, (2, 4), strict=True):
        h = load_session(p).history
        for plot, what in ((panel.loss_plot, "loss"), (panel.loss_plot, "val_loss"),
                           (panel.accuracy_plot, "accuracy"), (panel.accuracy_plot, "val_accuracy")):
            curve = plot.curves[(p, what)]
            np.testing.assert_array_equal(curve.xData, h["epoch"])
            np.testing.assert_allclose(curve.yData, h[what], rtol=1e-6)
            assert curve.opts["pen"].width() in (0, 1)
        # gradient norm, per step, of the last hidden layer (runs of different depths)
        panel.grad_plot.layer_combo.setCurrentIndex(1)
        curve = panel.grad_plot.curves[(p, f"grad_norm[{layers - 1}]")]
        np.testing.assert_array_equal(curve.xData, h["step"])
        np.testing.assert_allclose(10 ** curve.yData, h["grad_norm"][:, layers - 1], rtol=1e-5)
    for plot in panel.plots:
        if plot is panel.instrument_plot:
            assert plot.curves == {}         # the sharpness (drawn first) was off in both runs
        elif plot is panel.difference_plot:  # an image: both runs recorded distributions (on by default)
            assert plot.message == "" and plot.data.size > 0
        else:
            assert len(plot.curves) == (2 if plot in (panel.grad_plot, panel.distribution_plot) else 4)
    # the output layer, and hidden layer 3 which only the deeper run has
    panel.grad_plot.layer_combo.setCurrentIndex(2)
    assert sorted(k[1] for k in panel.grad_plot.curves) == ["grad_norm[output]"] * 2
    panel.grad_plot.layer_combo.setCurrentText("hidden 3")
    assert list(panel.grad_plot.curves) == [(paths[1], "grad_norm[2]")]
    # untick one: one run left
    with qtbot.waitSignal(panel.refreshed, timeout=10_000):
        panel.list.item(0).setCheckState(Qt.CheckState.Unchecked)
    assert {k[0] for k in panel.loss_plot.curves} == {paths[1]}
    header, columns = panel.loss_plot.csv_data()
    assert header == ["tanh.gwb: epoch", "tanh.gwb: loss", "tanh.gwb: epoch", "tanh.gwb: val_loss"]


def test_saved_run_is_listed_and_ticked(make_window: Any, qtbot: Any, tmp_path: Path) -> None:
    window = make_window(tiny_experiment(epochs=2, layers=2))
    panel = runs_of(window)
    window.controller.train()
    wait_idle(qtbot, window)
    target = tmp_path / "trained.gwb"
    with qtbot.waitSignal(panel.refreshed, timeout=10_000):
        assert window._save_to(target)
    assert panel.checked_paths() == [target.resolve()]
    h = load_session(target).history
    np.testing.assert_allclose(panel.loss_plot.curves[(target.resolve(), "loss")].yData, h["loss"], rtol=1e-6)


def test_add_bad_file_says_why(make_window: Any, tmp_path: Path) -> None:
    window = make_window()
    bad = tmp_path / "bad.gwb"
    bad.write_bytes(b"not a zip")
    assert not runs_of(window).add_session(bad)
    assert "bad.gwb" in runs_of(window).status.text()
    assert runs_of(window).paths() == []


def test_export_pytorch_script_compiles(make_window: Any, qtbot: Any, tmp_path: Path,
                                        two_sessions: tuple[Path, Path]) -> None:
    window = make_window()
    assert window.open_file(two_sessions[0])
    wait_idle(qtbot, window)
    out = tmp_path / "model.py"
    written = window.runs.export_to(out, with_weights=True)
    assert written == [out, tmp_path / "model.weights.npz"]
    compile(out.read_text(encoding="utf-8"), str(out), "exec")
    assert "model.weights.npz" in out.read_text(encoding="utf-8")
    # the menu entries exist, with shortcuts
    actions = [a.text() for a in window.runs.export_menu.actions()]
    assert actions == ["&PyTorch script…", "PyTorch script with &weights…"]
    # an error goes to a dialog and the window keeps working
    window.state.set_file(tmp_path / "missing.gwb")
    assert window.runs.export_to(tmp_path / "x.py") == []
    box = window.findChild(QMessageBox, "exportErrorDialog")
    assert box is not None and "missing.gwb" in box.text()


def make_instrumented_session(path: Path, lr: float, seed: int) -> Path:
    spec = tiny_experiment(epochs=2, layers=2, units=8).to_dict()
    spec["seed"] = seed
    spec["optimizer"] = {"name": "sgd", "learning_rate": lr}
    spec["training"]["instruments"] = {"probe_examples": 32, "noise": {"enabled": True, "every": 3},
                                       "sharpness": {"enabled": True, "every": 2, "iterations": 8}}
    trainer = Trainer(parse_experiment(spec))
    trainer.fit()
    save_trainer(path, trainer)
    return path


def test_the_runs_dock_overlays_two_sessions_sharpness_and_instruments(make_window: Any, qtbot: Any,
                                                                       tmp_path: Path) -> None:
    paths = [make_instrumented_session(tmp_path / "slow.gwb", 0.02, 3).resolve(),
             make_instrumented_session(tmp_path / "fast.gwb", 0.2, 4).resolve()]
    window = make_window()
    panel = runs_of(window)
    with qtbot.waitSignal(panel.refreshed, timeout=10_000):
        panel.set_checked(paths, exclusive=True)
    plot = panel.instrument_plot
    assert plot.what_combo.currentIndex() == 0 and not plot.layer_combo.isEnabled()
    assert len(plot.curves) == 4                    # each run's λ_max and its threshold (dashed)
    for p, lr in zip(paths, (0.02, 0.2), strict=True):
        h = load_session(p).history
        measured = np.isfinite(h["step_sharpness"])
        sharp, limit = plot.curves[(p, "sharpness")], plot.curves[(p, "stability_threshold")]
        np.testing.assert_array_equal(sharp.xData, h["step"][measured])
        np.testing.assert_allclose(10 ** sharp.yData, h["step_sharpness"][measured], rtol=1e-5)
        np.testing.assert_allclose(10 ** limit.yData, 2 / lr, rtol=1e-5)          # 2/η of each run
        assert limit.opts["pen"].style() == Qt.PenStyle.DashLine
    header, columns = plot.csv_data()
    i = header.index("slow.gwb: sharpness")
    assert header[i - 1] == "slow.gwb: optimizer step" and "fast.gwb: stability_threshold" in header
    np.testing.assert_allclose(columns[i], load_session(paths[0]).history["step_sharpness"][::2], rtol=1e-5)
    # the noise scale, then the SNR of the output layer
    plot.what_combo.setCurrentIndex(2)
    assert sorted(k[1] for k in plot.curves) == ["noise_scale"] * 2
    h = load_session(paths[1]).history
    every_third = np.isfinite(h["step_noise_scale"])
    np.testing.assert_allclose(10 ** plot.curves[(paths[1], "noise_scale")].yData, h["step_noise_scale"][every_third],
                               rtol=1e-5)
    plot.what_combo.setCurrentIndex(3)
    plot.layer_combo.setCurrentIndex(2)
    assert plot.layer_combo.isEnabled()
    np.testing.assert_allclose(10 ** plot.curves[(paths[1], "snr[output]")].yData, h["snr"][every_third, 2],
                               rtol=1e-5)
    plot.what_combo.setCurrentIndex(4)
    np.testing.assert_allclose(10 ** plot.curves[(paths[0], "effective_learning_rate[output]")].yData, 0.02,
                               rtol=1e-5)                                         # SGD: η itself


def make_distribution_session(path: Path, activation: str, every: int, seed: int, enabled: bool = True) -> Path:
    spec = tiny_experiment(epochs=2, layers=2, units=8, activation=activation).to_dict()
    spec["seed"] = seed
    spec["optimizer"] = {"name": "sgd", "learning_rate": 0.05}
    spec["training"]["instruments"] = {"distributions": {"enabled": enabled, "every": every}}
    trainer = Trainer(parse_experiment(spec))
    trainer.fit()
    save_trainer(path, trainer)
    return path.resolve()


def test_the_runs_dock_overlays_distribution_summaries_and_subtracts_two_runs_histograms(
        make_window: Any, qtbot: Any, tmp_path: Path) -> None:
    paths = [make_distribution_session(tmp_path / "tanh.gwb", "tanh", every=2, seed=3),
             make_distribution_session(tmp_path / "relu.gwb", "relu", every=3, seed=4)]
    histories = [load_session(p).history for p in paths]
    window = make_window()
    panel = runs_of(window)
    for p in paths:
        panel.add_session(p)                    # listed in this order: run 0 is the tanh run, run 1 the ReLU one
    with qtbot.waitSignal(panel.refreshed, timeout=10_000):
        panel.set_checked(paths, exclusive=True)
    assert panel.data.paths == paths
    plot = panel.distribution_plot
    # the default: each run's share of exact zeros in its first hidden layer's activations
    assert sorted(k[1] for k in plot.curves) == ["activations_zero_fraction[0]"] * 2
    for p, h in zip(paths, histories, strict=True):
        curve = plot.curves[(p, "activations_zero_fraction[0]")]
        np.testing.assert_array_equal(curve.xData, h["distribution_step"])
        np.testing.assert_allclose(curve.yData, dist.zero_fraction(h["distribution_activations"])[:, 0], atol=1e-7)
    relu_zeros = plot.curves[(paths[1], "activations_zero_fraction[0]")].yData
    assert relu_zeros.min() > 0.1                                  # ReLU outputs exact zeros, tanh none
    assert plot.curves[(paths[0], "activations_zero_fraction[0]")].yData.max() == 0
    # the saturated share: the tanh run only (ReLU does not saturate)
    plot.summary_combo.setCurrentIndex(1)
    assert list(plot.curves) == [(paths[0], "activations_saturated_fraction[0]")]
    tanh = histories[0]["distribution_activations"]
    expected = dist.saturated_fraction(tanh, [(-1.0, 1.0), (-1.0, 1.0), None])[:, 0]
    np.testing.assert_allclose(plot.curves[(paths[0], "activations_saturated_fraction[0]")].yData, expected,
                               atol=1e-7)
    # the median gradient magnitude of the output layer, log y, and its CSV in the gradients' own units
    plot.summary_combo.setCurrentIndex(2)
    plot.kind_combo.setCurrentIndex(dist.KINDS.index("gradients"))
    plot.layer_combo.setCurrentIndex(2)
    assert plot.plot.getAxis("left").logMode
    for p, h in zip(paths, histories, strict=True):
        want = dist.median_magnitude("gradients", h["distribution_gradients"])[:, -1]
        np.testing.assert_allclose(10 ** plot.curves[(p, "gradients_median_magnitude[output]")].yData, want,
                                   rtol=1e-6)
    header, columns = plot.csv_data()
    i = header.index("relu.gwb: gradients_median_magnitude[output]")
    assert header[i - 1] == "relu.gwb: optimizer step"
    np.testing.assert_allclose(columns[i], dist.median_magnitude("gradients", histories[1]["distribution_gradients"])
                               [:, -1], rtol=1e-6)
    # a summary defined for the activations only: no curve, and the caption says why
    plot.summary_combo.setCurrentIndex(1)
    assert plot.curves == {} and "defined for the activations" in plot.caption.full_text()

    # run A − run B: the tanh run's activations of hidden layer 1 minus the ReLU run's, at their common steps
    diff = panel.difference_plot
    assert (diff.run_a.currentIndex(), diff.run_b.currentIndex()) == (0, 1) and diff.message == ""
    common = sorted(set(histories[0]["distribution_step"]) & set(histories[1]["distribution_step"]))
    assert common == [1, 7]                          # every 2 steps (1, 3, 5, …) against every 3 (1, 4, 7, …)
    np.testing.assert_array_equal(diff.shown_steps, common)
    rows = [[list(h["distribution_step"]).index(s) for s in common] for h in histories]
    want = (histories[0]["distribution_activations"][rows[0], 0].astype(np.float64)
            - histories[1]["distribution_activations"][rows[1], 0])
    np.testing.assert_allclose(diff.data, want.T, atol=1e-6)
    assert diff.data.shape == (dist.kind_columns("activations"), 2)
    assert diff.data[0].max() < -0.1                  # the ReLU run's zeros: more mass in B
    header, columns = diff.csv_data()
    assert header[:3] == ["step", "activations[= 0]", "activations[< -2]"]
    np.testing.assert_array_equal(columns[0], common)
    np.testing.assert_allclose(columns[1], want[:, 0], atol=1e-6)
    # the weights of the output layer, B − A
    diff.kind_combo.setCurrentIndex(0)
    diff.layer_combo.setCurrentIndex(diff.layer_combo.count() - 1)
    diff.run_a.setCurrentIndex(1)
    diff.run_b.setCurrentIndex(0)
    np.testing.assert_allclose(diff.data.T, histories[1]["distribution_weights"][rows[1], 2].astype(np.float64)
                               - histories[0]["distribution_weights"][rows[0], 2], atol=1e-6)
    diff.run_b.setCurrentIndex(1)
    assert diff.message == "Choose two different runs" and diff.data.size == 0
    assert diff.csv_data()[1][0].size == 0

    # a run without distributions: refused with the reason, and the overlay skips it
    off = make_distribution_session(tmp_path / "off.gwb", "relu", every=2, seed=5, enabled=False)
    panel.add_session(off)
    with qtbot.waitSignal(panel.refreshed, timeout=10_000):
        panel.set_checked([paths[0], off], exclusive=True)
    diff.run_a.setCurrentIndex(0)
    diff.run_b.setCurrentIndex(1)
    assert "has no distributions over time" in diff.message and "off.gwb" in diff.message
    assert diff.note.isVisible() and diff.data.size == 0
    plot.summary_combo.setCurrentIndex(0)
    plot.kind_combo.setCurrentIndex(dist.KINDS.index("activations"))
    assert [k[0] for k in plot.curves] == [paths[0]]


def test_a_narrow_loss_pane_names_its_plot(make_window: Any, qtbot: Any) -> None:
    """The Runs dock's loss caption is "Loss per epoch — solid: train, dashed: validation"; where
    it does not fit (the docked dock at 1366 × 768) it must shorten to the plot's name, not to
    "Train, dashed: validation", which does not say what is plotted."""
    window = make_window()
    window.runs.dock.show()
    panel = window.runs.panel
    for plot, name in ((panel.loss_plot, "Loss per epoch"), (panel.accuracy_plot, "Accuracy per epoch")):
        caption = plot.caption
        full = caption.full_text()
        assert full.startswith(name + " — ")
        wide = caption.fontMetrics().horizontalAdvance(full) + 20
        caption.resize(wide, caption.height())
        assert caption.text() == full
        caption.resize(caption.fontMetrics().horizontalAdvance(full) - 30, caption.height())
        assert caption.text() == name
