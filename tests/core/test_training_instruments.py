"""``training.instruments`` in the spec, the trainer recording them, the history they add, and the
lesson they serve: a learning rate above 2/λ_max makes gradient descent oscillate or diverge."""

from pathlib import Path

import numpy as np
import pytest

from core.data import Dataset
from core.engine.instruments import INSTRUMENT_KEYS, ProbeNetwork, sharpness
from core.sessions.format import load_session
from core.sessions.trainer_io import restore_trainer, save_trainer
from core.spec import InstrumentsSpec, SpecError, parse_experiment
from core.training import Trainer

ROOT = Path(__file__).resolve().parents[2]


def spec(instruments=None, **training) -> dict:
    out = {"seed": 3, "data": {"source": "moons", "params": {"n_samples": 160}},
           "model": {"layers": [{"units": 8, "activation": "elu", "batch_norm": "before_activation"},
                                {"units": 8, "activation": "tanh"}]},
           "optimizer": {"name": "adam", "learning_rate": 0.01},
           "regularization": {"l2": 0.001},
           "training": {"epochs": 3, "batch_size": 16, **training}}
    if instruments is not None:
        out["training"]["instruments"] = instruments
    return out


ALL_ON = {"probe_examples": 40, "sharpness": {"enabled": True, "every": 5, "iterations": 10},
          "noise": {"enabled": True, "every": 4}, "effective_learning_rate": {"enabled": True, "every": 3}}
ALL_OFF = {"sharpness": {"enabled": False}, "noise": {"enabled": False},
           "effective_learning_rate": {"enabled": False}}


# ----------------------------------------------------------------------------- the spec


def test_defaults_are_left_out_of_the_json_and_other_values_round_trip():
    e = parse_experiment(spec())
    assert e.training.instruments == InstrumentsSpec()
    assert "instruments" not in e.to_dict()["training"]
    e = parse_experiment(spec(ALL_ON))
    assert e.to_dict()["training"]["instruments"]["sharpness"] == {"enabled": True, "every": 5, "iterations": 10}
    assert parse_experiment(e.to_dict()) == e


@pytest.mark.parametrize(("instruments", "message"), [
    ({"sharpnes": {}}, "training.instruments.sharpnes: unknown field"),
    ({"noise": {"every": 0}}, "training.instruments.noise.every: must be a positive integer, got 0"),
    ({"noise": {"iterations": 5}}, "training.instruments.noise.iterations: unknown field"),
    ({"sharpness": {"enabled": "yes"}}, "training.instruments.sharpness.enabled: must be true or false"),
    ({"sharpness": {"iterations": 1000}}, "training.instruments.sharpness.iterations: must be an integer <= 200"),
    ({"probe_examples": -3}, "training.instruments.probe_examples: must be a positive integer"),
    ([], "training.instruments: must be a JSON object"),
])
def test_bad_instrument_settings_are_refused_with_their_path(instruments, message):
    with pytest.raises(SpecError, match="^" + message.replace(".", r"\.")):
        parse_experiment(spec(instruments))


# ----------------------------------------------------------------------------- the trainer


def test_measuring_does_not_change_the_run():
    on, off = Trainer(parse_experiment(spec(ALL_ON))), Trainer(parse_experiment(spec(ALL_OFF)))
    on.fit()
    off.fit()
    np.testing.assert_array_equal(on.network.flat_parameters, off.network.flat_parameters)
    for key in ("grad_norm", "activation_std", "update_ratio"):
        np.testing.assert_array_equal(on.recorder[key], off.recorder[key])
    assert all(np.isnan(a).all() for k, a in off.history_arrays().items() if k in INSTRUMENT_KEYS)


def test_each_instrument_fills_the_rows_of_its_cadence_rounded_to_the_diagnostics():
    t = Trainer(parse_experiment(spec(ALL_ON, diagnostics_every=2)))
    t.fit()
    h = t.history_arrays()
    steps = h["step"] - 1  # 0-based index of the step after which each row was recorded
    assert np.all(steps % 2 == 0)
    for key, every in (("step_sharpness", 6), ("step_noise_scale", 4), ("effective_learning_rate", 4)):
        measured = np.isfinite(h[key]) if h[key].ndim == 1 else np.isfinite(h[key]).all(axis=1)
        np.testing.assert_array_equal(measured, steps % every == 0, err_msg=key)
    # Adam: the threshold is 38/η (β1 = 0.9) and the preconditioned sharpness is measured beside it
    rows = np.isfinite(h["step_sharpness"])
    np.testing.assert_allclose(h["step_stability_threshold"][rows], 38 / 0.01, rtol=1e-6)
    assert np.isfinite(h["step_preconditioned_sharpness"][rows]).all()
    assert h["snr"].shape == (len(steps), 3)


def test_the_recorded_sharpness_is_that_of_the_weights_after_the_step():
    t = Trainer(parse_experiment(spec(ALL_ON)))
    t.fit(epochs=1)
    last = int(np.flatnonzero(np.isfinite(t.history_arrays()["step_sharpness"]))[-1])
    assert t.recorder.steps[last] <= t.step
    # Train on to the measured step again from a copy and compare with an independent λ_max.
    replay = Trainer(parse_experiment(spec(ALL_OFF)))
    while replay.step < t.recorder.steps[last]:
        replay.train_batch()
    X, y = replay.probe_examples(40)
    probe = ProbeNetwork(replay.network, X, y, 0.0, 0.001)
    expected = sharpness(probe, probe.start_vector(np.random.default_rng(9)), 60, 1e-8).value
    assert t.history_arrays()["step_sharpness"][last] == pytest.approx(expected, rel=1e-3)


def test_instrument_history_survives_a_session_and_old_sessions_load(tmp_path):
    t = Trainer(parse_experiment(spec(ALL_ON)))
    t.fit(epochs=2)
    path = tmp_path / "run.gwb"
    save_trainer(path, t)
    session = load_session(path)
    for key in INSTRUMENT_KEYS:
        np.testing.assert_array_equal(session.history[key], t.history_arrays()[key])
    back = restore_trainer(session)
    back.fit(epochs=1)
    t.fit(epochs=1)
    for key in INSTRUMENT_KEYS:
        np.testing.assert_array_equal(back.history_arrays()[key], t.history_arrays()[key])
    old = load_session(ROOT / "resources" / "zoo" / "digits_0-4.gwb")
    assert not set(INSTRUMENT_KEYS) & set(old.history)
    restored = restore_trainer(old).history_arrays()
    assert all(np.isnan(restored[k]).all() and len(restored[k]) == len(restored["step"]) for k in INSTRUMENT_KEYS)


def test_a_history_with_a_bad_instrument_table_is_refused():
    t = Trainer(parse_experiment(spec(ALL_ON)))
    t.fit(epochs=1)
    arrays, state = t.state_dict()
    arrays["history/snr"] = arrays["history/snr"][:, :2]
    with pytest.raises(ValueError, match=r"history\[snr\] must be floats of shape \(\d+, 3\)"):
        Trainer(parse_experiment(spec(ALL_ON))).load_state_dict(arrays, state)


# ----------------------------------------------------------------------------- the lesson


def regression_trainer(learning_rate: float) -> Trainer:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4)).astype(np.float32)
    y = (X @ rng.normal(size=(4, 1)) + 0.3 * np.sin(3 * X[:, :1])).astype(np.float32)
    data = Dataset(X, y, "regression", 0, [f"x{i}" for i in range(4)], [], None, "toy regression")
    experiment = parse_experiment({
        "seed": 1, "data": {"source": "blobs", "validation_split": 0.0, "standardize": False},
        "model": {"layers": [{"units": 16, "activation": "tanh", "init": "glorot_uniform"}]},
        "optimizer": {"name": "sgd", "learning_rate": learning_rate},
        "training": {"epochs": 40, "batch_size": 64, "shuffle": False, "dtype": "float64",
                     "instruments": {"probe_examples": 64, "sharpness": {"enabled": True, "every": 1, "iterations": 40},
                                     "noise": {"enabled": False}}}})
    return Trainer(experiment, dataset=data)


def test_sgd_above_two_over_the_sharpness_oscillates_and_below_it_the_loss_falls():
    """Full-batch gradient descent on a small regression MLP: the probe batch is the batch."""
    start = regression_trainer(0.01)
    probe = ProbeNetwork(start.network, *start.probe_examples(64))
    lam0 = sharpness(probe, probe.start_vector(np.random.default_rng(0)), 60, 1e-8).value

    above = regression_trainer(3.0 / lam0)
    above.fit()
    h = above.history_arrays()
    loss = h["step_loss"]
    assert h["step_sharpness"][0] > h["step_stability_threshold"][0]   # what the dock shows
    assert np.any(np.diff(loss[:10]) > 0)                             # the loss goes up ...
    assert np.nanmax(loss[:10]) > loss[0]                             # ... above where it started

    below = regression_trainer(1.0 / lam0)
    below.fit()
    h = below.history_arrays()
    loss = h["step_loss"]
    assert np.all(h["step_sharpness"] < h["step_stability_threshold"])
    assert np.all(np.diff(loss) < 0)
    assert loss[-1] < 0.5 * loss[0]
