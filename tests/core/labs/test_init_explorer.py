"""The initialization explorer reproduces Glorot and Bengio's observations layer by layer."""

import numpy as np
import pytest

from core.engine.activations import ACTIVATIONS
from core.engine.initializers import INITIALIZERS
from core.labs.init_explorer import (
    MAX_VALUES,
    QUANTILES,
    Exploration,
    ExplorerSettings,
    explore,
    held_values,
    input_sources,
)

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


def test_should_stop_is_asked_while_the_stacks_are_drawn():
    """A 100 × 1,000 stack takes seconds to draw: a stop must not wait for every draw."""
    calls = []

    def never() -> bool:
        calls.append(1)
        return False

    depth, draws = 4, 3
    assert explore(ExplorerSettings(depth=depth, width=8, draws=draws), np.random.default_rng(0),
                   should_stop=never) is not None
    assert len(calls) >= draws * depth + 2 * depth          # each layer drawn, run forward, run backward
    calls.clear()
    assert explore(ExplorerSettings(depth=depth, width=8, draws=draws), np.random.default_rng(0),
                   should_stop=lambda: calls.append(1) or True) is None
    assert len(calls) == 1
    # Drawing layer by layer draws the same kernels as before: stopping never changes a finished pass.
    a = run(depth=depth, width=8, draws=draws, seed=5)
    b = explore(ExplorerSettings(depth=depth, width=8, draws=draws), np.random.default_rng(5), should_stop=never)
    assert b is not None and np.array_equal(a.std, b.std) and np.array_equal(a.grad_std, b.grad_std)


def test_a_pass_too_large_to_hold_is_refused_naming_the_sizes():
    with pytest.raises(ValueError, match=r"draws.*32 draw\(s\) of 100 layers of 1000 units.*at most 320 million"):
        ExplorerSettings(depth=100, width=1000, draws=32)
    with pytest.raises(ValueError, match="at most"):
        ExplorerSettings(depth=100, width=2048)
    ExplorerSettings(depth=100, width=1000)          # the largest stack the window offers, one draw
    # The count by hand: kernels and their gradients, and 4 (5, 6 with batch norm) batch × width arrays a layer.
    s = ExplorerSettings(depth=7, width=30, batch_size=50, draws=2, n_inputs=11)
    assert held_values(s, 11) == 2 * (2 * (11 * 30 + 6 * 30 * 30) + 7 * 4 * 50 * 30)
    s = ExplorerSettings(depth=7, width=30, batch_size=50, draws=2, batch_norm="after_activation")
    assert held_values(s, 30) == 2 * (2 * 7 * 30 * 30 + 7 * 6 * 50 * 30)
    assert MAX_VALUES * 8 < 3e9


def test_the_held_values_bound_what_a_pass_allocates():
    import tracemalloc

    for batch_norm in (False, "before_activation", "after_activation"):
        settings = ExplorerSettings(depth=12, width=150, batch_size=400, draws=2, batch_norm=batch_norm)
        tracemalloc.start()
        try:
            explore(settings, np.random.default_rng(0))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        estimate = held_values(settings, 150) * 8
        assert 0.7 * estimate < peak < 1.05 * estimate, (batch_norm, peak, estimate)


# ----------------------------------------------------------------------------- signal propagation


def relu_prediction(sigma2_first: float, sigma2: float, n_inputs: int, width: int, depth: int,
                    input_second_moment: float) -> tuple[np.ndarray, np.ndarray]:
    """The fan-in argument for ReLU worked out by hand: z ~ N(0, q) gives E[relu(z)²] = q/2,
    E[relu(z)] = √(q/2π), so Var(a) = q(1/2 − 1/2π); and E[relu'(z)²] = 1/2."""
    q = n_inputs * sigma2_first * input_second_moment
    forward, qs = [], []
    for _ in range(depth):
        qs.append(q)
        forward.append(q * (0.5 - 0.5 / np.pi))
        q = width * sigma2 * q / 2.0
    backward = [1.0]
    for _ in range(depth - 1):
        backward.insert(0, backward[0] * width * sigma2 * 0.5)
    return np.array(forward), np.array(backward)


def test_the_relu_prediction_is_the_books_fan_in_formula():
    from core.engine.activations import get_activation
    from core.labs.init_explorer import predict_propagation

    relu = get_activation("relu")
    # He: Var(w) = 2/fan_in keeps the forward variance and (fan_in = fan_out) the backward one
    f, b = predict_propagation(lambda fi, fo: 2.0 / fi, relu, 12, 64, 30, 1.3)
    ef, eb = relu_prediction(2.0 / 30, 2.0 / 64, 30, 64, 12, 1.3)
    np.testing.assert_allclose(f, ef, rtol=1e-7)
    np.testing.assert_allclose(b, eb, rtol=1e-7)
    np.testing.assert_allclose(f, f[0], rtol=1e-7)
    np.testing.assert_allclose(b, 1.0, rtol=1e-7)
    # Glorot with ReLU loses half the variance per layer each way
    f, b = predict_propagation(lambda fi, fo: 2.0 / (fi + fo), relu, 8, 64, 64, 1.0)
    np.testing.assert_allclose(f[1:] / f[:-1], 0.5, rtol=1e-7)
    np.testing.assert_allclose(b[:-1] / b[1:], 0.5, rtol=1e-7)


def test_the_linear_and_tanh_predictions_follow_the_variance_recursion():
    from core.engine.activations import get_activation
    from core.labs.init_explorer import gaussian_moments, predict_propagation

    # identity: q_l = n·σ²·q_{l−1}, Var(a) = q, v_{l−1} = n·σ²·v_l
    f, b = predict_propagation(lambda fi, fo: 1.5 / fi, get_activation("linear"), 5, 40, 40, 2.0)
    np.testing.assert_allclose(f, 2.0 * 1.5 ** np.arange(1, 6), rtol=1e-9)
    np.testing.assert_allclose(b, 1.5 ** np.arange(4, -1, -1), rtol=1e-9)
    # tanh's moments against a brute-force integral on a fine grid
    tanh = get_activation("tanh")
    for q in (0.01, 1.0, 30.0):
        z = np.linspace(-40 * np.sqrt(q), 40 * np.sqrt(q), 400_001)
        density = np.exp(-z * z / (2 * q)) / np.sqrt(2 * np.pi * q)
        dz = z[1] - z[0]
        mean, second, slope = gaussian_moments(tanh, q)
        assert mean == pytest.approx(0.0, abs=1e-12)
        assert second == pytest.approx(np.sum(np.tanh(z) ** 2 * density) * dz, rel=1e-4)
        assert slope == pytest.approx(np.sum((1 - np.tanh(z) ** 2) ** 2 * density) * dz, rel=1e-4)


@pytest.mark.parametrize(("init", "activation"), [("he_normal", "relu"), ("glorot_normal", "tanh"),
                                                  ("lecun_normal", "selu")])
def test_a_wide_stack_measures_what_the_prediction_says(init, activation):
    # a finite-width draw's log-variance drifts by about √(5·depth/width) (≈ 0.2 here), pooled over 4 draws
    r = run(depth=6, width=800, init=init, activation=activation, batch_size=128, draws=4, dtype=np.float32)
    np.testing.assert_allclose(r.forward_variance, r.predicted_forward_variance, rtol=0.25)
    np.testing.assert_allclose(r.backward_variance, r.predicted_backward_variance, rtol=0.25)
    assert set(r.reference_predictions) == {"glorot_normal", "he_normal", "lecun_normal"}
    own = r.reference_predictions[init]
    np.testing.assert_allclose(own[0], r.predicted_forward_variance)


def test_no_prediction_with_batch_norm():
    r = run(depth=4, width=20, batch_norm="before_activation")
    assert np.isnan(r.predicted_forward_variance).all() and r.reference_predictions == {}


def numeric_jacobian(stack, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    def top(v: np.ndarray) -> np.ndarray:
        a = v.reshape(1, -1)
        for layer in stack:
            a = layer.forward(a, training=False)
        return a[0]
    columns = []
    for j in range(len(x)):
        e = np.zeros_like(x)
        e[j] = h
        columns.append((top(x + e) - top(x - e)) / (2 * h))
    return np.array(columns).T


@pytest.mark.parametrize("batch_norm", [False, "before_activation", "after_activation"])
def test_the_jacobian_is_the_finite_difference_one(batch_norm):
    from core.labs.init_explorer import (
        build_stack,
        freeze_batch_statistics,
        input_batch,
        input_output_jacobian,
        jacobian_singular_values,
    )

    settings = ExplorerSettings(depth=5, width=14, init="glorot_normal", activation="tanh", batch_norm=batch_norm,
                                n_inputs=9, batch_size=32)
    rng = np.random.default_rng(4)
    X = input_batch(settings, rng)
    stack = build_stack(settings, 9, rng)
    freeze_batch_statistics(stack, X)
    if batch_norm:      # the frozen statistics are the batch's: inference now equals the training pass
        inference, training = X, X
        for layer in stack:
            inference = layer.forward(inference, training=False)
        for layer in stack:
            training = layer.forward(training, training=True)
        np.testing.assert_allclose(inference, training, rtol=1e-9, atol=1e-12)
    for i in range(2):
        exact = input_output_jacobian(stack, X[i])
        assert exact.shape == (14, 9)
        np.testing.assert_allclose(exact, numeric_jacobian(stack, X[i]), rtol=1e-6, atol=1e-8)
    values = jacobian_singular_values(stack, X, points=2)
    for i in range(2):
        np.testing.assert_allclose(values[i], np.linalg.svd(numeric_jacobian(stack, X[i]), compute_uv=False),
                                   rtol=1e-6, atol=1e-8)


def test_explore_reports_the_jacobian_spectrum_and_isometry_separates_the_inits():
    good = run(depth=20, width=64, init="glorot_normal", activation="tanh")
    bad = run(depth=20, width=64, init=N01, activation="tanh")
    assert good.jacobian_singular_values.shape == (3, 64)
    assert np.all(np.diff(good.jacobian_singular_values, axis=1) <= 1e-12)        # largest first
    # Glorot + tanh: the spectrum spans a few decades; N(0, 1): saturated units make most directions vanish
    spread = lambda r: np.log10(r.jacobian_singular_values[:, 0] / r.jacobian_singular_values[:, 31])  # noqa: E731
    assert spread(bad).min() > spread(good).max()
    assert run(depth=2, width=2048, n_inputs=4, batch_size=8).jacobian_singular_values is None   # past the budget
