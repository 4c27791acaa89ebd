"""The instruments against independent computations: explicit Hessians by finite differences and
numpy.linalg.eigvalsh, per-example gradients one example at a time, numpy.histogram, and the
stability thresholds against the quadratics they come from."""

import math

import numpy as np
import pytest

from core.engine.instruments import (
    ProbeNetwork,
    adam_stability_threshold,
    adaptive_preconditioner,
    effective_learning_rates,
    gradient_noise,
    lanczos_largest_eigenvalue,
    log_magnitude_histogram,
    magnitude_exponent_range,
    momentum_stability_threshold,
    preconditioned_sharpness,
    sgd_stability_threshold,
    sharpness,
    stability_threshold,
    value_histogram,
)
from core.engine.losses import LOSSES
from core.engine.network import Network
from core.engine.optimizers import OPTIMIZERS
from core.spec import parse_experiment


def tiny_network(loss: str = "mse", batch_norm=False, activation: str = "tanh", n_outputs: int = 2,
                 units=(4, 3), seed: int = 0) -> Network:
    rows = [{"units": u, "activation": activation, "init": "glorot_uniform", "batch_norm": batch_norm}
            for u in units]
    model = parse_experiment({"model": {"layers": rows}}).model
    net = Network(model, 3, n_outputs, LOSSES.get(loss)(), np.random.default_rng(seed), np.float64)
    rng = np.random.default_rng(seed + 1)
    for layer in net.layers:  # non-trivial biases and batch-norm parameters and statistics
        for a in layer.params.values():
            if a.ndim == 1:
                a[...] = rng.normal(1.0 if a is getattr(layer.batch_norm, "gamma", None) else 0.0, 0.3, a.shape)
        if layer.batch_norm is not None:
            layer.batch_norm.moving_mean[...] = rng.normal(0, 0.2, layer.units)
            layer.batch_norm.moving_variance[...] = rng.uniform(0.5, 2.0, layer.units)
    net.output.bias[...] = rng.normal(0, 0.3, n_outputs)
    return net


def batch(loss: str, n: int = 7, n_outputs: int = 2, seed: int = 3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    if loss == "mse":
        return X, rng.normal(size=(n, n_outputs))
    return X, rng.integers(0, n_outputs, size=n).astype(np.int64)


def explicit_hessian(probe: ProbeNetwork, h: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """H[:, i] = (∇J(θ + h e_i) − ∇J(θ − h e_i)) / 2h over the trainable coordinates, symmetrized."""
    idx = np.flatnonzero(probe.trainable_mask)
    theta = probe.theta.copy()
    H = np.zeros((idx.size, idx.size))
    for col, i in enumerate(idx):
        e = np.zeros_like(theta)
        e[i] = h
        _, plus = probe.gradient(theta + e)
        _, minus = probe.gradient(theta - e)
        H[:, col] = ((plus - minus) / (2 * h))[idx]
    probe.restore()
    return 0.5 * (H + H.T), idx


CASES = {
    "mse tanh": dict(loss="mse"),
    "softmax elu + BN before": dict(loss="softmax_cross_entropy", batch_norm="before_activation",
                                    activation="elu", n_outputs=3),
    "sigmoid BN after": dict(loss="sigmoid_binary_cross_entropy", batch_norm="after_activation",
                             activation="logistic", n_outputs=1),
}


@pytest.mark.parametrize("case", CASES)
def test_sharpness_is_the_top_eigenvalue_of_the_explicit_hessian(case):
    kw = CASES[case]
    net = tiny_network(**kw)
    X, y = batch(kw["loss"], n_outputs=kw.get("n_outputs", 2))
    probe = ProbeNetwork(net, X, y, l1=0.0, l2=0.01)
    H, _ = explicit_hessian(probe)
    expected = np.linalg.eigvalsh(H)[-1]
    found = sharpness(probe, probe.start_vector(np.random.default_rng(0)), max_iterations=80, tolerance=1e-8)
    assert found.converged
    assert found.value == pytest.approx(expected, rel=1e-6)
    # The Ritz vector is an eigenvector: H y = λ y.
    y_vec = found.vector[probe.trainable_mask > 0]
    y_vec /= np.linalg.norm(y_vec)
    assert np.linalg.norm(H @ y_vec - expected * y_vec) < 1e-4 * abs(expected)


def test_the_gradient_with_its_penalty_matches_finite_differences_of_the_loss():
    net = tiny_network(batch_norm="before_activation", activation="elu")
    X, y = batch("mse")
    probe = ProbeNetwork(net, X, y, l1=0.003, l2=0.02)
    loss, grad = probe.gradient(probe.theta)
    probe.restore()
    h = 1e-6
    for i in np.flatnonzero(probe.trainable_mask):
        e = np.zeros_like(probe.theta)
        e[i] = h
        up = probe.gradient(probe.theta + e)[0]
        down = probe.gradient(probe.theta - e)[0]
        assert grad[i] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-8)
    probe.restore()
    assert loss == pytest.approx(probe.gradient(probe.theta)[0])


def test_hvp_matches_the_exact_output_block_of_a_regression_network():
    """For MSE the Hessian in the output layer's [W; b] is exactly (2/(n·k)) ĥᵀĥ ⊗ I_k, ĥ = [h, 1]."""
    net = tiny_network("mse")
    X, y = batch("mse", n=9)
    probe = ProbeNetwork(net, X, y)
    rng = np.random.default_rng(5)
    v = np.zeros_like(probe.theta)
    VW = probe.segment(v, "output.kernel")
    Vb = probe.segment(v, "output.bias")
    VW[...] = rng.normal(size=VW.shape)
    Vb[...] = rng.normal(size=Vb.shape)
    hv = probe.hessian_vector_product(v)
    h = X
    for layer in probe.net.layers:
        h = layer.forward(h, training=False)
    n, k = len(X), 2
    hat = np.hstack([h, np.ones((n, 1))])
    exact = (2.0 / (n * k)) * hat.T @ (hat @ np.vstack([VW, Vb]))
    np.testing.assert_allclose(probe.segment(hv, "output.kernel"), exact[:-1], rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(probe.segment(hv, "output.bias"), exact[-1], rtol=1e-7, atol=1e-10)


def test_hvp_matches_finite_differences_and_is_symmetric():
    net = tiny_network("softmax_cross_entropy", batch_norm="before_activation", activation="elu", n_outputs=3)
    X, y = batch("softmax_cross_entropy", n_outputs=3)
    probe = ProbeNetwork(net, X, y, l2=0.05)
    rng = np.random.default_rng(1)
    u, v = probe.start_vector(rng), probe.start_vector(rng)
    hv = probe.hessian_vector_product(v)
    # a forward difference with a much smaller step, to first order only
    step = 1e-7
    _, g1 = probe.gradient(probe.theta + step * v)
    _, g0 = probe.gradient(probe.theta)
    probe.restore()
    np.testing.assert_allclose(hv, (g1 - g0) / step, rtol=1e-4, atol=1e-6 * np.abs(hv).max())
    assert float(u @ probe.hessian_vector_product(v)) == pytest.approx(float(v @ probe.hessian_vector_product(u)),
                                                                       rel=1e-7)
    # measuring leaves the probe's weights and statistics as they were
    np.testing.assert_array_equal(probe.net.flat_parameters, probe.theta)


def test_lanczos_finds_the_largest_not_the_largest_magnitude_eigenvalue():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(60, 60)))
    eigenvalues = np.concatenate([[-50.0, 7.5, 7.0], rng.uniform(-5, 5, 57)])
    A = (q * eigenvalues) @ q.T
    found = lanczos_largest_eigenvalue(lambda v: A @ v, rng.normal(size=60), max_iterations=60, tolerance=1e-10)
    assert found.value == pytest.approx(np.linalg.eigvalsh(A)[-1], rel=1e-9)
    assert found.value == pytest.approx(7.5)


def test_preconditioned_sharpness_is_the_top_eigenvalue_of_p_inverse_h():
    net = tiny_network("mse")
    X, y = batch("mse")
    opt = OPTIMIZERS.get("adam")(learning_rate=0.01)
    opt.build(net.parameters())
    rng = np.random.default_rng(2)
    for _ in range(3):
        opt.apply(net.parameters(), {k: rng.normal(size=a.shape) for k, a in net.parameters().items()}, 0.01)
    probe = ProbeNetwork(net, X, y)
    H, idx = explicit_hessian(probe)
    p = np.concatenate([adaptive_preconditioner(opt, path).ravel() for path in net.parameters()])
    expected = np.max(np.linalg.eigvals(np.diag(1.0 / p) @ H).real)
    found = preconditioned_sharpness(probe, opt, probe.start_vector(rng), max_iterations=80, tolerance=1e-8)
    assert found.value == pytest.approx(expected, rel=1e-6)
    assert preconditioned_sharpness(probe, OPTIMIZERS.get("sgd")(), probe.start_vector(rng)) is None


@pytest.mark.parametrize("name", ["adam", "adamw", "nadam", "rmsprop", "adagrad", "adamax"])
def test_the_preconditioner_is_what_the_optimizer_divides_its_step_by(name):
    """One more step with β1 = 0 (adam-like) shows the step is −η·g/P elementwise."""
    params = {"w": np.random.default_rng(0).normal(size=(5, 4))}
    kwargs = {"beta_1": 0.0} if name in ("adam", "adamw", "nadam", "adamax") else {}
    if name == "adamw":
        kwargs["weight_decay"] = 0.0
    opt = OPTIMIZERS.get(name)(learning_rate=0.1, **kwargs)
    opt.build(params)
    rng = np.random.default_rng(1)
    for _ in range(4):
        opt.apply(params, {"w": rng.normal(size=(5, 4))}, 0.1)
    before = params["w"].copy()
    g = rng.normal(size=(5, 4))
    opt.apply(params, {"w": g}, 0.1)
    P = adaptive_preconditioner(opt, "w")  # the state the step was divided by (with β1 = 0, m̂ = g)
    np.testing.assert_allclose(params["w"] - before, -0.1 * g / P, rtol=1e-9)


def test_thresholds_follow_their_formulas():
    assert sgd_stability_threshold(0.01) == pytest.approx(200.0)
    assert momentum_stability_threshold(0.01, 0.9) == pytest.approx(380.0)
    assert adam_stability_threshold(0.001, 0.9) == pytest.approx(38 / 0.001)
    for name, lr, expected in (("sgd", 0.1, 20.0), ("momentum", 0.1, 38.0), ("nesterov", 0.1, 38.0),
                               ("adam", 0.1, 380.0), ("rmsprop", 0.1, 20.0), ("adamax", 0.1, 380.0)):
        assert stability_threshold(OPTIMIZERS.get(name)(learning_rate=lr), lr) == pytest.approx(expected)


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
def test_the_momentum_threshold_is_where_heavy_ball_on_a_quadratic_turns_unstable(beta):
    """Iterate m ← βm − ηλx, x ← x + m on J = λx²/2 just below and just above (2 + 2β)/η."""
    eta = 0.1
    limit = momentum_stability_threshold(eta, beta) if beta else sgd_stability_threshold(eta)

    def final(lam: float) -> float:
        x, m = 1.0, 0.0
        for _ in range(3000):
            m = beta * m - eta * lam * x
            x += m
        return abs(x)

    assert final(0.98 * limit) < 1.0
    assert final(1.02 * limit) > 1e3


def test_effective_learning_rates():
    net = tiny_network("mse", batch_norm="before_activation", activation="elu", n_outputs=3)  # 9 output weights
    params = net.parameters()
    for name, expected in (("sgd", 0.05), ("momentum", 0.05 / (1 - 0.8))):
        opt = OPTIMIZERS.get(name)(learning_rate=0.05, **({"momentum": 0.8} if name == "momentum" else {}))
        opt.build(params)
        rates = effective_learning_rates(net, opt, 0.05)
        assert rates[-1] == pytest.approx(expected)
        for i, layer in enumerate(net.layers):  # fed into batch norm: per unit η/‖w_j‖²
            w = layer.dense.kernel
            assert rates[i] == pytest.approx(np.median(np.broadcast_to(expected / (w * w).sum(axis=0), w.shape)))
    opt = OPTIMIZERS.get("adam")(learning_rate=0.05)
    opt.build(params)
    assert np.isnan(effective_learning_rates(net, opt, 0.05)).all()  # no second moments yet
    rng = np.random.default_rng(0)
    opt.apply(params, {k: rng.normal(size=a.shape) for k, a in params.items()}, 0.05)
    state = opt.state_dict()["slots"]
    v_hat = state["output.kernel/v"] / (1 - 0.999)
    eps_hat = 1e-7 / math.sqrt(1 - 0.999)
    rates = effective_learning_rates(net, opt, 0.05)
    assert rates[-1] == pytest.approx(np.median(0.05 / (np.sqrt(v_hat) + eps_hat)))
    w = net.layers[0].dense.kernel  # feeds batch norm: the adaptive rate of each weight over its unit's ‖w_j‖²
    per_weight = 0.05 / (np.sqrt(state["layers.0.kernel/v"] / (1 - 0.999)) + eps_hat) / (w * w).sum(axis=0)
    assert rates[0] == pytest.approx(np.median(per_weight))


def test_the_effective_rate_of_a_large_kernel_is_the_median_of_a_sample_of_its_rows():
    model = parse_experiment({"model": {"layers": [{"units": 300, "activation": "relu"}]}}).model
    net = Network(model, 784, 10, LOSSES.get("softmax_cross_entropy")(), np.random.default_rng(0), np.float32)
    opt = OPTIMIZERS.get("adam")(learning_rate=0.001)
    opt.build(net.parameters())
    rng = np.random.default_rng(1)
    scale = rng.lognormal(0, 2, size=(784, 1)).astype(np.float32)  # rows of very different gradient size
    for _ in range(3):
        grads = {k: rng.normal(size=a.shape).astype(np.float32) for k, a in net.parameters().items()}
        grads["layers.0.kernel"] *= scale
        opt.apply(net.parameters(), grads, 0.001)
    exact = np.median(0.001 / adaptive_preconditioner(opt, "layers.0.kernel"))
    assert effective_learning_rates(net, opt, 0.001)[0] == pytest.approx(exact, rel=0.03)


def per_example_gradients_by_backward(net: Network, X, y) -> np.ndarray:
    """Each example through the network's own forward and backward, one at a time."""
    rows = []
    for i in range(len(X)):
        logits = net.forward(X[i:i + 1], training=True)
        net.backward(net.loss.gradient(logits, y[i:i + 1]))
        rows.append(net.flat_gradients.copy())
    return np.array(rows)


def per_example_gradients_by_differences(net: Network, X, y, h: float = 1e-6) -> np.ndarray:
    """∂L_i/∂θ by central differences of the inference-mode (moving-statistics) loss of example i."""
    theta = net.flat_parameters
    rows = np.zeros((len(X), theta.size))
    for i in range(len(X)):
        for j in range(theta.size):
            old = theta[j]
            theta[j] = old + h
            up = net.loss.value(net.forward(X[i:i + 1]), y[i:i + 1])
            theta[j] = old - h
            down = net.loss.value(net.forward(X[i:i + 1]), y[i:i + 1])
            theta[j] = old
            rows[i, j] = (up - down) / (2 * h)
    return rows


def noise_from_rows(probe: ProbeNetwork, rows: np.ndarray, l1: float, l2: float):
    theta = probe.theta
    rows = rows + probe.kernel_mask * (l1 * np.sign(theta) + 2 * l2 * theta)
    G = rows.mean(axis=0)
    cov_trace = np.mean(np.sum((rows - G) ** 2, axis=1))  # tr Σ, Σ normalized by N
    per_layer = []
    for key in probe.layer_keys:
        cols = np.zeros_like(theta, dtype=bool)
        for path in probe.net.parameters():
            if path.startswith(key + "."):
                probe.segment(cols, path)[...] = True
        g_sq = float(np.sum(G[cols] ** 2))
        tr = float(np.mean(np.sum((rows[:, cols] - G[cols]) ** 2, axis=1)))
        per_layer.append(g_sq / tr)
    return cov_trace / float(G @ G), np.array(per_layer)


def test_noise_scale_matches_per_example_gradients_computed_one_at_a_time():
    net = tiny_network("softmax_cross_entropy", activation="elu", n_outputs=3)
    X, y = batch("softmax_cross_entropy", n=11, n_outputs=3)
    probe = ProbeNetwork(net, X, y, l1=0.001, l2=0.01)
    rows = per_example_gradients_by_backward(probe.net, X, y)
    probe.restore()
    expected_b, expected_snr = noise_from_rows(probe, rows, 0.001, 0.01)
    noise = gradient_noise(probe)
    assert noise.noise_scale == pytest.approx(expected_b, rel=1e-9)
    np.testing.assert_allclose(noise.snr, expected_snr, rtol=1e-9)
    assert noise.examples == 11


@pytest.mark.parametrize("position", ["before_activation", "after_activation"])
def test_noise_with_batch_norm_uses_each_examples_gradient_under_the_moving_statistics(position):
    net = tiny_network("mse", batch_norm=position, activation="elu")
    X, y = batch("mse", n=6)
    probe = ProbeNetwork(net, X, y)
    rows = per_example_gradients_by_differences(probe.net, X, y)
    probe.restore()
    expected_b, expected_snr = noise_from_rows(probe, rows * probe.trainable_mask, 0.0, 0.0)
    noise = gradient_noise(probe)
    assert noise.noise_scale == pytest.approx(expected_b, rel=1e-6)
    np.testing.assert_allclose(noise.snr, expected_snr, rtol=1e-6)


def test_log_magnitude_histogram_matches_numpy_histogram():
    rng = np.random.default_rng(0)
    values = rng.normal(size=5000) * 10.0 ** rng.uniform(-9, 1, 5000)
    values[:37] = 0.0
    hist = log_magnitude_histogram(values, -8.0, 0.0, 32)
    edges = 10.0 ** np.linspace(-8.0, 0.0, 33)
    mags = np.abs(values)
    inside = mags[(mags >= edges[0]) & (mags < edges[-1])]
    np.testing.assert_array_equal(hist.counts, np.histogram(inside, bins=edges)[0])
    assert hist.zeros == 37
    assert hist.below == np.count_nonzero((mags > 0) & (mags < 1e-8))
    assert hist.above == np.count_nonzero(mags >= 1.0)
    assert hist.counts.sum() + hist.zeros + hist.below + hist.above == values.size


def test_value_histogram_matches_numpy_histogram():
    rng = np.random.default_rng(1)
    values = np.tanh(rng.normal(scale=3.0, size=4000))
    values[:5] = 1.0
    np.testing.assert_array_equal(value_histogram(values, -1.0, 1.0, 40), np.histogram(values, 40, (-1.0, 1.0))[0])


def test_the_exponent_range_follows_the_data():
    assert magnitude_exponent_range([np.array([0.0, 3e-5, -2.0])], margin=0.0) == (-5.0, 1.0)
    assert magnitude_exponent_range([np.zeros(3)]) == (-1.0, 1.0)
