"""The initialization explorer reproduces Glorot and Bengio's observations layer by layer."""

import numpy as np
import pytest

from core.engine.activations import ACTIVATIONS
from core.engine.initializers import INITIALIZERS
from core.labs.init_explorer import QUANTILES, Exploration, ExplorerSettings, explore, input_sources

N01 = {"name": "random_normal", "stddev": 1.0}
N005 = {"name": "random_normal", "stddev": 0.05}


def run(seed: int = 0, dtype: type = np.float64, **settings) -> Exploration:
    return explore(ExplorerSettings(**settings), np.random.default_rng(seed), dtype=dtype)


def test_he_relu_keeps_the_std_within_a_factor_2_of_the_input_over_50_layers():
    # The variance is preserved in expectation; one finite-width draw drifts like a random walk
    # (about √(5·depth/width) in log-variance), hence 4 pooled draws of 300 units (float32: drawing
    # 18 M weights is most of the time).
    r = run(depth=50, width=300, init="he_normal", activation="relu", batch_size=32, draws=4, dtype=np.float32)
    ratio = r.std_ratio()
    assert 0.5 <= ratio.min() and ratio.max() <= 2.0, ratio
    assert 0.5 <= r.grad_ratio().min() and r.grad_ratio().max() <= 2.0
    # The same stack with the naive N(0, 1) explodes: ×√(fan_in/2) per layer.
    naive = run(depth=50, width=100, init=N01, activation="relu", batch_size=32)
    assert naive.std_ratio()[-1] > 1e30


def test_normal_init_with_the_logistic_saturates_and_glorot_does_not():
    # z = Σ w·a with w ~ N(0, 1) and a ∈ (0, 1) has std ≈ 0.67·√width: 15 for 500 units, so about
    # three quarters of the units sit within 1 % of 0 or 1 (|z| > 4.6) in every deeper layer.
    r = run(depth=20, width=500, init=N01, activation="logistic", batch_size=64)
    assert r.saturated_fraction[5:].min() > 0.7
    glorot = run(depth=20, width=500, init="glorot_normal", activation="logistic", batch_size=64)
    assert glorot.saturated_fraction.max() < 0.01
    # Batch norm before the activation re-centres and rescales z: the saturation is gone.
    bn = run(depth=20, width=500, init=N01, activation="logistic", batch_norm="before_activation", batch_size=64)
    assert bn.saturated_fraction.max() < 0.01


def test_selu_with_lecun_normal_self_normalizes_over_50_layers():
    r = run(depth=50, width=100, init="lecun_normal", activation="selu")
    assert np.all(np.abs(r.mean) < 0.1), r.mean
    assert np.all((r.std > 0.85) & (r.std < 1.15)), r.std
    # With He init instead the SELU stack is no longer at its fixed point.
    he = run(depth=50, width=100, init="he_normal", activation="selu")
    assert he.std[-1] > 1.5


def test_glorot_tanh_stays_flat_ish_while_small_logistic_weights_kill_the_gradient():
    tanh = run(depth=50, width=100, init="glorot_normal", activation="tanh")
    # No saturation, and the std only decays like 1/√depth, not geometrically ...
    assert tanh.saturated_fraction[1:].max() < 0.01
    assert tanh.std[-1] / tanh.std[9] > 0.3
    assert tanh.grad_ratio()[0] > 0.05
    # ... whereas logistic + N(0, 0.05) shrinks the gradient by σ'·0.05·√100 ≈ 1/8 per layer.
    logistic = run(depth=50, width=100, init=N005, activation="logistic")
    g = logistic.grad_ratio()
    assert g[0] < 1e-30
    per_layer = np.exp(np.mean(np.diff(np.log(g))))  # grad_ratio grows by this factor per layer upwards
    assert 5 < per_layer < 12


def test_report_shapes_quantiles_and_histograms():
    r = run(depth=7, width=20, init="he_normal", activation="elu", batch_size=50, bins=30, draws=2)
    assert r.depth == 7
    assert r.quantiles.shape == (7, len(QUANTILES))
    assert np.all(np.diff(r.quantiles, axis=1) >= 0)
    assert r.hist_edges.shape == (7, 31) and r.hist_density.shape == (7, 30)
    widths = np.diff(r.hist_edges, axis=1)
    mass = (r.hist_density * widths).sum(axis=1)
    np.testing.assert_allclose(mass, 1.0, rtol=1e-9)  # density over the 1–99 % range
    assert r.grad_std[-1] == pytest.approx(1.0, abs=0.1)  # ∂L/∂a_top = G ~ N(0, 1)
    assert "top-layer std" in r.summary()


def test_dataset_input_is_standardized_and_sets_the_fan_in():
    r = run(depth=3, width=16, source="digits", batch_size=400)
    assert r.input_mean == pytest.approx(0.0, abs=0.1)
    assert r.input_std == pytest.approx(1.0, abs=0.15)
    assert "digits" in input_sources() and input_sources()[0] == "normal"


def test_same_seed_same_numbers_and_an_overflow_is_reported_not_raised():
    a = run(3, depth=10, width=30, init="glorot_uniform", activation="tanh")
    b = run(3, depth=10, width=30, init="glorot_uniform", activation="tanh")
    np.testing.assert_array_equal(a.std, b.std)
    np.testing.assert_array_equal(a.grad_std, b.grad_std)
    boom = explore(ExplorerSettings(depth=100, width=200, init={"name": "random_normal", "stddev": 30.0},
                                    activation="relu", batch_size=16), np.random.default_rng(0), dtype=np.float32)
    assert boom.nonfinite[-1] == 1.0 and np.isnan(boom.std[-1])
    assert "overflow" in boom.summary()


@pytest.mark.parametrize("init", INITIALIZERS.names())
@pytest.mark.parametrize("activation", ACTIVATIONS.names())
def test_every_registered_pair_runs(init, activation):
    r = run(depth=3, width=8, init=init, activation=activation, batch_size=16)
    assert np.all(np.isfinite(r.std)) and np.all(np.isfinite(r.grad_std))


@pytest.mark.parametrize("bad, field", [({"depth": 101}, "depth"), ({"width": 0}, "width"),
                                        ({"activation": "nope"}, "activation"), ({"init": "nope"}, "nope"),
                                        ({"batch_norm": True}, "batch_norm"), ({"source": "x"}, "source"),
                                        ({"draws": 0}, "draws")])
def test_bad_settings_are_refused_naming_the_field(bad, field):
    with pytest.raises((ValueError, KeyError), match=field):
        ExplorerSettings(**bad)


def test_should_stop_abandons_the_pass():
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 3

    assert explore(ExplorerSettings(depth=20, width=8), np.random.default_rng(0), should_stop=stop) is None
    assert len(calls) == 4
    assert explore(ExplorerSettings(depth=2, width=8), np.random.default_rng(0), should_stop=lambda: False) is not None
