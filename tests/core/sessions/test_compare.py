"""core.sessions.compare: several sessions' histories aligned by epoch and by step."""

import csv
import io

import numpy as np
import pytest

from core.engine import distributions as dist
from core.sessions.compare import compare_sessions, distribution_difference
from core.sessions.format import load_session
from core.sessions.trainer_io import save_trainer
from core.spec import parse_experiment
from core.training import Trainer


def run(tmp_path, name, epochs, layers, every=1, file=None):
    spec = {"name": name, "seed": 4, "data": {"source": "moons", "params": {"n_samples": 60}, "validation_split": 0.25},
            "model": {"layers": [{"units": 4}] * layers}, "optimizer": {"name": "sgd", "learning_rate": 0.1},
            "training": {"epochs": epochs, "batch_size": 15, "diagnostics_every": every}}
    trainer = Trainer(parse_experiment(spec))
    trainer.fit()
    path = tmp_path / (file or f"{name}.gwb")
    save_trainer(path, trainer)
    return path


@pytest.fixture
def three(tmp_path):
    return [run(tmp_path, "short", 2, 1), run(tmp_path, "long", 4, 3, every=2),
            run(tmp_path, "short", 3, 2, file="b.gwb")]


def test_by_epoch_aligns_runs_of_different_lengths(three):
    table = compare_sessions(three, by="epoch")
    assert table.runs == ["short (short.gwb)", "long", "short (b.gwb)"]
    assert table.index.tolist() == [1, 2, 3, 4]
    assert table.quantities == ["loss", "val_loss", "accuracy", "val_accuracy", "learning_rate", "seconds"]
    val = table.values["val_loss"]
    assert val.shape == (4, 3)
    for j, path in enumerate(three):
        own = load_session(path).history["val_loss"]
        np.testing.assert_array_equal(val[: len(own), j], own)  # independently: the session's own numbers
        assert np.isnan(val[len(own):, j]).all()
    np.testing.assert_array_equal(table.column("loss", "long"), load_session(three[1]).history["loss"])


def test_by_step_aligns_recording_intervals_and_depths(three):
    table = compare_sessions(three, by="step")
    # 45 training rows / 15 = 3 steps an epoch: 6, 12 and 9 steps; the long run records steps 1, 3, ..., 11
    assert table.index.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 11]
    assert table.quantities[:2] == ["loss", "learning_rate"]
    assert "grad_norm[0]" in table.quantities and "grad_norm[2]" in table.quantities
    grad0, out = table.values["grad_norm[0]"], table.values["grad_norm[output]"]
    long = load_session(three[1]).history
    rows = [table.index.tolist().index(s) for s in long["step"]]
    np.testing.assert_array_equal(grad0[rows, 1], long["grad_norm"][:, 0])
    np.testing.assert_array_equal(out[rows, 1], long["grad_norm"][:, 3])
    assert np.isnan(grad0[[1, 3, 5, 7], 1]).all()               # steps the long run did not record
    assert np.isnan(table.values["grad_norm[2]"][:, 0]).all()   # a layer the 1-layer run does not have
    assert np.isnan(grad0[6:, 0]).all() and np.isfinite(grad0[:6, 0]).all()
    short = load_session(three[0]).history
    np.testing.assert_array_equal(out[:6, 0], short["grad_norm"][:, 1])  # its output is its second column


def test_quantity_selection_csv_and_errors(three):
    table = compare_sessions([load_session(p) for p in three[:2]], by="epoch", quantities=["val_accuracy"])
    assert table.quantities == ["val_accuracy"]
    rows = list(csv.reader(io.StringIO(table.to_csv())))
    assert rows[0] == ["epoch", "short: val_accuracy", "long: val_accuracy"]
    assert [r[0] for r in rows[1:]] == ["1", "2", "3", "4"]
    assert rows[3][1] == "" and float(rows[3][2]) == table.values["val_accuracy"][2, 1]
    with pytest.raises(ValueError, match="by: must be one of epoch, step"):
        compare_sessions(three, by="batch")
    with pytest.raises(ValueError, match="quantities: no run has 'grad_norm'"):
        compare_sessions(three, quantities=["grad_norm"])
    assert compare_sessions([], by="step").index.tolist() == []


def test_by_step_holds_the_instruments_series(tmp_path):
    spec = {"name": "sharp", "seed": 4, "data": {"source": "moons", "params": {"n_samples": 60}},
            "model": {"layers": [{"units": 4}] * 2}, "optimizer": {"name": "sgd", "learning_rate": 0.1},
            "training": {"epochs": 2, "batch_size": 15, "instruments": {
                "probe_examples": 16, "sharpness": {"enabled": True, "every": 2, "iterations": 6},
                "noise": {"enabled": True, "every": 2}}}}
    trainer = Trainer(parse_experiment(spec))
    trainer.fit()
    with_them = tmp_path / "sharp.gwb"
    save_trainer(with_them, trainer)
    table = compare_sessions([with_them, run(tmp_path, "plain", 2, 1)], by="step")
    assert table.quantities[:6] == ["loss", "learning_rate", "sharpness", "preconditioned_sharpness",
                                    "stability_threshold", "noise_scale"]
    h = load_session(with_them).history
    np.testing.assert_array_equal(table.column("sharpness", 0), h["step_sharpness"])
    np.testing.assert_array_equal(table.column("snr[1]", 0), h["snr"][:, 1])
    np.testing.assert_array_equal(table.column("effective_learning_rate[output]", 0),
                                  h["effective_learning_rate"][:, 2])
    assert np.isfinite(table.column("sharpness", 0)[::2]).all()
    assert np.isnan(table.column("sharpness", 1)).all()          # the plain run left sharpness off


def distribution_run(tmp_path, name, layers, every, activation="tanh", distributions=True, epochs=3):
    spec = {"name": name, "seed": 6, "data": {"source": "moons", "params": {"n_samples": 60}},
            "model": {"layers": [{"units": 6, "activation": activation}] * layers},
            "optimizer": {"name": "sgd", "learning_rate": 0.1},
            "training": {"epochs": epochs, "batch_size": 12,
                         "instruments": {"distributions": {"enabled": distributions, "every": every}}}}
    trainer = Trainer(parse_experiment(spec))
    trainer.fit()
    path = tmp_path / f"{name}.gwb"
    save_trainer(path, trainer)
    return path


def test_by_distribution_aligns_the_summaries_of_runs_recorded_at_other_steps(tmp_path):
    paths = [distribution_run(tmp_path, "tanh", 2, every=2), distribution_run(tmp_path, "relu", 1, every=3,
                                                                              activation="relu"),
             distribution_run(tmp_path, "off", 1, every=2, distributions=False)]
    table = compare_sessions(paths, by="distribution")
    histories = [load_session(p).history for p in paths]
    assert len(histories[2]["distribution_step"]) == 0                 # recorded nothing
    steps = sorted(set(histories[0]["distribution_step"]) | set(histories[1]["distribution_step"]))
    assert table.index.tolist() == steps and len(steps) > 5
    assert table.quantities[:4] == ["weights_zero_fraction[0]", "weights_zero_fraction[1]",
                                    "weights_zero_fraction[output]", "weights_median_magnitude[0]"]
    assert "activations_saturated_fraction[1]" in table.quantities
    assert not any("saturated" in q and not q.startswith("activations") for q in table.quantities)
    for j in (0, 1):
        h = histories[j]
        rows = np.searchsorted(table.index, h["distribution_step"])
        acts = h["distribution_activations"].astype(np.float64)
        # against the engine's summaries of the saved table and the '= 0' column itself
        np.testing.assert_array_equal(table.column("activations_zero_fraction[0]", j)[rows], acts[:, 0, 0])
        np.testing.assert_array_equal(table.column("gradients_median_magnitude[output]", j)[rows],
                                      dist.median_magnitude("gradients", h["distribution_gradients"])[:, -1])
        others = np.setdiff1d(np.arange(len(table.index)), rows)
        assert np.isnan(table.column("activations_zero_fraction[0]", j)[others]).all()
    tanh_saturated = table.column("activations_saturated_fraction[0]", 0)
    assert np.isfinite(tanh_saturated[np.searchsorted(table.index, histories[0]["distribution_step"])]).all()
    assert np.isnan(table.column("activations_saturated_fraction[0]", 1)).all()     # ReLU: not defined
    assert np.isnan(table.column("activations_saturated_fraction[output]", 0)).all()
    assert np.isnan(table.values["weights_zero_fraction[0]"][:, 2]).all()           # the run without them
    # the CSV: the index is the distribution step, a run's gaps empty
    rows = list(csv.reader(io.StringIO(table.to_csv())))
    assert rows[0][0] == "distribution_step" and rows[0][1] == "tanh: weights_zero_fraction[0]"
    assert [int(r[0]) for r in rows[1:]] == steps
    column = rows[0].index("off: activations_median_magnitude[0]")
    assert all(r[column] == "" for r in rows[1:])
    # only runs without distributions: an empty comparison, no error
    empty = compare_sessions([paths[2]], by="distribution")
    assert empty.index.tolist() == [] and empty.quantities == []
    assert compare_sessions(paths, by="step").quantities == compare_sessions(paths[:2], by="step").quantities


def test_the_difference_of_two_runs_histograms_at_their_common_steps(tmp_path):
    a = load_session(distribution_run(tmp_path, "a", 2, every=2))
    b = load_session(distribution_run(tmp_path, "b", 1, every=3, activation="relu"))
    steps, difference = distribution_difference(a, b, "activations", "output")
    ha, hb = a.history, b.history
    common = [s for s in ha["distribution_step"] if s in set(hb["distribution_step"])]
    assert steps.tolist() == common and len(common) >= 2
    for i, s in enumerate(common):
        row_a = ha["distribution_activations"][list(ha["distribution_step"]).index(s), 2]
        row_b = hb["distribution_activations"][list(hb["distribution_step"]).index(s), 1]
        np.testing.assert_allclose(difference[i], row_a.astype(np.float64) - row_b, atol=1e-7)
    steps0, first = distribution_difference(a, b, "weights", 0)
    assert first.shape == (len(common), dist.kind_columns("weights")) and np.abs(first).max() > 0
    with pytest.raises(ValueError, match=r"b \(b.gwb\) has 1 hidden layers and an output layer, no layer 1"):
        distribution_difference(a, b, "weights", 1)
    off = load_session(distribution_run(tmp_path, "off", 1, every=2, distributions=False))
    with pytest.raises(ValueError, match=r"off \(off.gwb\) has no distributions over time"):
        distribution_difference(a, off, "weights", 0)
    b.history["distribution_weights_edges"] = b.history["distribution_weights_edges"] + 0.5
    with pytest.raises(ValueError, match="binned the weights with different edges"):
        distribution_difference(a, b, "weights", 0)
    late = load_session(distribution_run(tmp_path, "late", 1, every=7, epochs=2))
    late.history["distribution_step"] = late.history["distribution_step"] + 1000
    with pytest.raises(ValueError, match="at no common step"):
        distribution_difference(a, late, "gradients", 0)
    with pytest.raises(ValueError, match="kind: must be one of weights"):
        distribution_difference(a, a, "biases", 0)
