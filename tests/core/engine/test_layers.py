"""Layers: batch norm against Eq. 11-3 written out again here, every backward pass against
central finite differences in float64, inverted dropout, and the activation statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.engine.activations import ACTIVATIONS, get_activation
from core.engine.layers import (
    SELU_SATURATION,
    ActivationStats,
    BatchNorm,
    Dense,
    HiddenLayer,
    alpha_dropout,
    dropout_mask,
    kept_units,
)

from .gradcheck import numerical_gradient

EPS_FD = 1e-6  # central-difference step (float64)
BN_EPS = 1e-5  # ε of Eq. 11-3 (DESIGN.md, "Conventions")
BN_MOMENTUM = 0.99
POSITIONS = [False, "before_activation", "after_activation"]




def assert_gradient_close(analytic: np.ndarray, numeric: np.ndarray, what: str) -> None:
    assert analytic.shape == numeric.shape, what
    # Relative to the gradient's scale; the absolute floor covers entries that are exactly 0
    # analytically (e.g. the Dense bias in front of batch norm) where differences leave ~1e-10.
    scale = max(float(np.max(np.abs(numeric))), 1e-3)
    err = float(np.max(np.abs(analytic - numeric))) / scale
    assert err < 1e-6, f"{what}: relative error {err:.2e}\nanalytic {analytic}\nnumeric {numeric}"


def reference_batch_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                         eps: float = BN_EPS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eq. 11-3 with explicit sums over the m_B rows: (z, μ_B, σ²_B)."""
    m = x.shape[0]
    mu = sum(x[i] for i in range(m)) / m
    var = sum((x[i] - mu) ** 2 for i in range(m)) / m  # biased: divided by m_B, not m_B − 1
    x_hat = (x - mu) / np.sqrt(var + eps)
    return gamma * x_hat + beta, mu, var


def _bn_batch(rng: np.random.Generator, m: int = 6) -> np.ndarray:
    """A batch whose columns have very different means and spreads; the last column has a
    variance of the order of ε, so a wrong ε (or ε outside the root) changes its output."""
    x = rng.normal(size=(m, 4)) * np.array([1.0, 5.0, 0.2, 3e-3]) + np.array([0.0, -3.0, 10.0, 1.0])
    return x


# ----------------------------------------------------------------------------- batch norm


def test_batch_norm_training_forward_is_equation_11_3() -> None:
    rng = np.random.default_rng(0)
    x = _bn_batch(rng)
    bn = BatchNorm(4, np.dtype(np.float64))
    bn.gamma[...] = rng.uniform(0.5, 2.0, size=4)
    bn.beta[...] = rng.normal(size=4)
    expected, _, _ = reference_batch_norm(x, bn.gamma.copy(), bn.beta.copy())
    out = bn.forward(x, training=True)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    # Not the unbiased variance, and ε is 1e-5 (both visible with 6 rows and a tiny column).
    unbiased = (x - x.mean(0)) / np.sqrt(x.var(0, ddof=1) + BN_EPS) * bn.gamma + bn.beta
    assert not np.allclose(out, unbiased, rtol=1e-6)
    other_eps, _, _ = reference_batch_norm(x, bn.gamma, bn.beta, eps=1e-3)
    assert not np.allclose(out[:, 3], other_eps[:, 3], rtol=1e-3)


def test_batch_norm_moving_averages_follow_momentum_0_99() -> None:
    rng = np.random.default_rng(1)
    bn = BatchNorm(4, np.dtype(np.float64))
    moving_mean, moving_var = np.zeros(4), np.ones(4)  # the documented starting values
    np.testing.assert_array_equal(bn.moving_mean, moving_mean)
    np.testing.assert_array_equal(bn.moving_variance, moving_var)
    for _ in range(3):
        x = _bn_batch(rng, m=8)
        _, mu, var = reference_batch_norm(x, np.ones(4), np.zeros(4))
        moving_mean = BN_MOMENTUM * moving_mean + (1 - BN_MOMENTUM) * mu
        moving_var = BN_MOMENTUM * moving_var + (1 - BN_MOMENTUM) * var
        bn.forward(x, training=True)
        np.testing.assert_allclose(bn.moving_mean, moving_mean, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(bn.moving_variance, moving_var, rtol=1e-12, atol=1e-14)


def test_batch_norm_inference_uses_the_moving_statistics_and_leaves_them_alone() -> None:
    rng = np.random.default_rng(2)
    bn = BatchNorm(4, np.dtype(np.float64))
    bn.gamma[...] = rng.uniform(0.5, 2.0, size=4)
    bn.beta[...] = rng.normal(size=4)
    bn.moving_mean[...] = rng.normal(size=4)
    bn.moving_variance[...] = rng.uniform(0.1, 3.0, size=4)
    before = (bn.moving_mean.copy(), bn.moving_variance.copy())
    x = _bn_batch(rng)
    out = bn.forward(x, training=False)
    expected = bn.gamma * (x - before[0]) / np.sqrt(before[1] + BN_EPS) + bn.beta
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(bn.moving_mean, before[0])
    np.testing.assert_array_equal(bn.moving_variance, before[1])
    # Each row on its own: inference does not depend on the rest of the batch.
    np.testing.assert_allclose(bn.forward(x[2:3], training=False), out[2:3], rtol=1e-14)


def test_batch_norm_backward_matches_finite_differences() -> None:
    rng = np.random.default_rng(3)
    x = _bn_batch(rng, m=7)
    bn = BatchNorm(4, np.dtype(np.float64))
    bn.gamma[...] = rng.uniform(0.5, 2.0, size=4)
    bn.beta[...] = rng.normal(size=4)
    R = rng.normal(size=x.shape)

    def loss() -> float:
        return float(np.sum(bn.forward(x, training=True) * R))

    bn.forward(x, training=True)
    grad_x = bn.backward(R.copy())
    grad_gamma, grad_beta = bn.grad_gamma.copy(), bn.grad_beta.copy()
    assert_gradient_close(grad_x, numerical_gradient(loss, x), "x")
    assert_gradient_close(grad_gamma, numerical_gradient(loss, bn.gamma), "gamma")
    assert_gradient_close(grad_beta, numerical_gradient(loss, bn.beta), "beta")


def test_batch_norm_in_float32_keeps_float32_and_the_unit_major_layout() -> None:
    """The training path's sums are BLAS products with a vector of ones and x̂ is written over
    x − μ: in float32 everything stays float32 and column-major (the layout of the layers'
    values), and agrees with the float64 formulas to float32's precision."""
    rng = np.random.default_rng(11)
    x64 = _bn_batch(rng, m=32)
    gamma, beta = rng.uniform(0.5, 2.0, size=4), rng.normal(size=4)
    delta64 = rng.normal(size=x64.shape)
    bn = BatchNorm(4, np.dtype(np.float32))
    bn.gamma[...], bn.beta[...] = gamma, beta
    x = np.asfortranarray(x64.astype(np.float32))
    out = bn.forward(x, training=True)
    grad_x = bn.backward(np.asfortranarray(delta64.astype(np.float32)))
    for array in (out, grad_x, bn.grad_gamma, bn.grad_beta, bn.moving_mean, bn.moving_variance):
        assert array.dtype == np.float32
    assert out.flags.f_contiguous and grad_x.flags.f_contiguous
    expected, mu, var = reference_batch_norm(x.astype(np.float64), gamma, beta)
    np.testing.assert_allclose(out, expected, rtol=2e-5, atol=2e-5)
    reference = BatchNorm(4, np.dtype(np.float64))
    reference.gamma[...], reference.beta[...] = gamma, beta
    reference.forward(x.astype(np.float64), training=True)
    np.testing.assert_allclose(grad_x, reference.backward(delta64.astype(np.float32).astype(np.float64)),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.moving_mean, (1 - BN_MOMENTUM) * mu, rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------------------- dense


def test_dense_forward_is_x_at_kernel_plus_bias() -> None:
    rng = np.random.default_rng(4)
    kernel = rng.normal(size=(3, 5))  # (fan_in, fan_out)
    dense = Dense(kernel.copy())
    assert dense.kernel.shape == (3, 5)
    assert dense.bias is not None and dense.bias.shape == (5,)
    np.testing.assert_array_equal(dense.bias, np.zeros(5))  # biases start at 0
    dense.bias[...] = rng.normal(size=5)
    x = rng.normal(size=(4, 3))
    expected = np.array([[sum(x[n, i] * kernel[i, j] for i in range(3)) + dense.bias[j] for j in range(5)]
                         for n in range(4)])
    np.testing.assert_allclose(dense.forward(x), expected, rtol=1e-12, atol=1e-12)


def test_dense_without_bias_has_no_bias() -> None:
    rng = np.random.default_rng(5)
    kernel = rng.normal(size=(3, 2))
    dense = Dense(kernel, use_bias=False)
    assert dense.bias is None and dense.grad_bias is None
    x = rng.normal(size=(4, 3))
    np.testing.assert_allclose(dense.forward(x), np.einsum("ni,ij->nj", x, kernel), rtol=1e-12)


@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_backward_matches_finite_differences(use_bias: bool) -> None:
    rng = np.random.default_rng(6)
    dense = Dense(rng.normal(size=(3, 4)), use_bias=use_bias)
    if use_bias:
        dense.bias[...] = rng.normal(size=4)
    x = rng.normal(size=(5, 3))
    R = rng.normal(size=(5, 4))

    def loss() -> float:
        return float(np.sum(dense.forward(x) * R))

    dense.forward(x)
    grad_x = dense.backward(R.copy())
    assert grad_x is not None
    grad_kernel = dense.grad_kernel.copy()
    assert_gradient_close(grad_x, numerical_gradient(loss, x), "x")
    assert_gradient_close(grad_kernel, numerical_gradient(loss, dense.kernel), "kernel")
    if use_bias:
        assert_gradient_close(dense.grad_bias.copy(), numerical_gradient(loss, dense.bias), "bias")
    dense.forward(x)
    assert dense.backward(R, need_input_grad=False) is None


# ----------------------------------------------------------------------------- dropout


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5])
def test_dropout_mask_is_inverted_dropout(rate: float, dtype: type) -> None:
    dt = np.dtype(dtype)
    mask = dropout_mask((200, 500), rate, np.random.default_rng(7), dt)
    assert mask.shape == (200, 500)
    assert mask.dtype == dt
    kept = mask != 0
    # Kept units are scaled by 1/(1 − rate) at training, so nothing changes at inference.
    np.testing.assert_array_equal(mask[kept], np.full(np.count_nonzero(kept), 1.0 / (1.0 - rate), dtype=dt))
    assert np.all(mask[~kept] == 0)
    # Drop share ≈ rate: within 5 standard errors of a binomial proportion.
    n = mask.size
    dropped = 1.0 - np.count_nonzero(kept) / n
    assert abs(dropped - rate) < 5 * np.sqrt(rate * (1 - rate) / n)
    # Inverted dropout keeps the expected activation: the mask averages ≈ 1.
    assert abs(float(mask.mean(dtype=np.float64)) - 1.0) < 5 * np.sqrt(rate / (1 - rate) / n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_mask_depends_only_on_the_generator(dtype: type) -> None:
    dt = np.dtype(dtype)
    a = dropout_mask((30, 20), 0.4, np.random.default_rng(123), dt)
    b = dropout_mask((30, 20), 0.4, np.random.default_rng(123), dt)
    c = dropout_mask((30, 20), 0.4, np.random.default_rng(124), dt)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masks_by_unit_are_the_same_draws_stored_unit_by_unit(dtype: type) -> None:
    dt = np.dtype(dtype)
    drawn = np.random.default_rng(5).random((30, 20), dtype=dt)     # example by example
    by_unit = kept_units((30, 20), 0.6, np.random.default_rng(5), dt, by_unit=True)
    assert by_unit.flags.f_contiguous and not by_unit.flags.c_contiguous
    np.testing.assert_array_equal(by_unit, drawn < 0.6)
    for make in (lambda bu: dropout_mask((30, 20), 0.4, np.random.default_rng(5), dt, by_unit=bu),
                 lambda bu: alpha_dropout((30, 20), 0.4, np.random.default_rng(5), dt, by_unit=bu)[0]):
        assert make(True).flags.f_contiguous and make(False).flags.c_contiguous
        np.testing.assert_array_equal(make(True), make(False))       # the same mask, stored otherwise


def test_a_layer_keeps_its_values_unit_by_unit_and_computes_them_as_written() -> None:
    """Pre-activations, activations, the dropout mask and the input gradient are stored unit
    by unit (column-major), the layout the engine's products are computed in; the numbers are
    the formulas', whatever the layout of the input."""
    rng = np.random.default_rng(8)
    kernel = rng.normal(size=(6, 4))
    layer = HiddenLayer(kernel.copy(), get_activation("elu"), dropout=0.3)
    layer.dense.bias[...] = rng.normal(size=4)
    for x in (rng.normal(size=(9, 6)), np.asfortranarray(rng.normal(size=(9, 6)))):
        out = layer.forward(x, training=True, rng=np.random.default_rng(1))
        z = x @ kernel + layer.dense.bias
        np.testing.assert_allclose(layer.pre_activation, z, rtol=1e-12)
        a = np.where(z > 0, z, np.expm1(z))
        np.testing.assert_allclose(out, a * layer._mask, rtol=1e-12, atol=1e-15)
        for values in (layer.pre_activation, layer.activation_output, layer._mask, out):
            assert values.flags.f_contiguous and not values.flags.c_contiguous
        grad_out = rng.normal(size=(9, 4))
        grad_x = layer.backward(grad_out)
        assert grad_x is not None and grad_x.flags.f_contiguous
        grad_z = grad_out * layer._mask * np.where(z > 0, 1.0, a + 1.0)
        np.testing.assert_allclose(grad_x, grad_z @ kernel.T, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(layer.dense.grad_kernel, x.T @ grad_z, rtol=1e-10, atol=1e-14)


def test_dropout_mask_keeps_float32() -> None:
    x = np.ones((10, 6), dtype=np.float32)
    mask = dropout_mask(x.shape, 0.3, np.random.default_rng(0), x.dtype)
    assert mask.dtype == np.float32
    assert (x * mask).dtype == np.float32


# ----------------------------------------------------------------------------- alpha dropout


def selu_normal(n: int, seed: int = 0) -> np.ndarray:
    """SELU of standard-normal pre-activations: the fixed point of a self-normalizing layer,
    mean ≈ 0 and variance ≈ 1 (Klambauer et al.)."""
    z = np.random.default_rng(seed).normal(size=n)
    return get_activation("selu").forward(z)


@pytest.mark.parametrize("rate", [0.05, 0.1, 0.2, 0.5])
def test_alpha_dropout_keeps_the_mean_and_variance_of_selu_outputs(rate: float) -> None:
    x = selu_normal(1_000_000)
    assert abs(x.mean()) < 0.01 and abs(x.var() - 1.0) < 0.01       # the inputs are what SELU keeps
    multiplier, shift = alpha_dropout(x.shape, rate, np.random.default_rng(1), x.dtype)
    y = x * multiplier + shift
    tolerance = 5 / np.sqrt(x.size) * 3                             # a few standard errors
    assert abs(y.mean()) < max(tolerance, 0.01), y.mean()
    assert abs(y.var() - 1.0) < 0.015, y.var()
    # A dropped unit sits at SELU's saturation α′ = −λα before the affine correction a·(·) + b.
    keep = 1.0 - rate
    a = 1.0 / np.sqrt(keep + SELU_SATURATION ** 2 * keep * (1.0 - keep))
    b = -a * (1.0 - keep) * SELU_SATURATION
    dropped = multiplier == 0
    np.testing.assert_allclose(y[dropped], a * SELU_SATURATION + b)
    np.testing.assert_allclose(y[~dropped], a * x[~dropped] + b)
    assert abs(dropped.mean() - rate) < 5 * np.sqrt(rate * (1 - rate) / x.size)
    # Ordinary (inverted) dropout on the same inputs does not keep the variance: 1/q instead of 1.
    inverted = x * dropout_mask(x.shape, rate, np.random.default_rng(1), x.dtype)
    assert abs(inverted.var() - 1.0 / keep) < 0.02 and abs(inverted.var() - 1.0) > 0.04


def test_alpha_dropout_through_a_deep_selu_stack_keeps_the_activations_normalized() -> None:
    """Twenty SELU layers (LeCun normal) with alpha dropout at training keep the activations'
    standard deviation near 1; the same layers with ordinary dropout drift away from it."""
    def last_std(dropout_type: str) -> float:
        rng = np.random.default_rng(3)
        h = rng.normal(size=(2000, 100))
        for _ in range(20):
            kernel = rng.normal(size=(100, 100)) / np.sqrt(100)        # LeCun normal: Var = 1/fan_in
            layer = HiddenLayer(kernel, get_activation("selu"), dropout=0.2, dropout_type=dropout_type)
            layer.dense.bias[...] = 0.0
            h = layer.forward(h, training=True, rng=rng)
        return float(h.std())

    assert abs(last_std("alpha") - 1.0) < 0.1
    assert abs(last_std("standard") - 1.0) > 0.15


@pytest.mark.parametrize("batch_norm", [False, "after_activation"])
def test_alpha_dropout_backward_matches_finite_differences(batch_norm: str | bool) -> None:
    rng = np.random.default_rng(8)
    layer = HiddenLayer(rng.normal(size=(5, 4)) * 0.8, get_activation("selu"), batch_norm=batch_norm,
                        dropout=0.3, dropout_type="alpha")
    layer.dense.bias[...] = rng.normal(size=4) * 0.5
    x = rng.normal(size=(7, 5))
    R = np.random.default_rng(9).normal(size=(7, 4))

    def forward() -> np.ndarray:
        return layer.forward(x, training=True, rng=np.random.default_rng(10))   # the same units dropped

    def loss() -> float:
        return float(np.sum(forward() * R))

    out = forward()
    keep = 0.7
    a = 1.0 / np.sqrt(keep + SELU_SATURATION ** 2 * keep * (1.0 - keep))
    assert np.any(np.isclose(out, a * SELU_SATURATION - a * (1 - keep) * SELU_SATURATION)), "none dropped"
    grad_x = layer.backward(R.copy())
    analytic = {k: g.copy() for k, g in layer.grads.items()}
    assert_gradient_close(grad_x, numerical_gradient(loss, x), "x")
    for key, param in layer.params.items():
        assert_gradient_close(analytic[key], numerical_gradient(loss, param), key)
    # At inference alpha dropout does nothing (as ordinary dropout).
    plain = HiddenLayer(layer.dense.kernel.copy(), get_activation("selu"), batch_norm=batch_norm)
    plain.dense.bias[...] = layer.dense.bias
    if batch_norm:
        plain.batch_norm.gamma[...] = layer.batch_norm.gamma
        plain.batch_norm.moving_mean[...] = layer.batch_norm.moving_mean
        plain.batch_norm.moving_variance[...] = layer.batch_norm.moving_variance
        plain.batch_norm.beta[...] = layer.batch_norm.beta
    np.testing.assert_array_equal(layer.forward(x, training=False), plain.forward(x, training=False))


def test_an_unknown_dropout_type_is_refused() -> None:
    with pytest.raises(ValueError, match="standard, alpha"):
        HiddenLayer(np.ones((2, 2)), get_activation("selu"), dropout=0.1, dropout_type="gaussian")


# ----------------------------------------------------------------------------- hidden layer


def _hidden_layer(activation: str, batch_norm: str | bool, dropout: float, use_bias: bool = True,
                  seed: int = 8) -> tuple[HiddenLayer, np.ndarray]:
    rng = np.random.default_rng(seed)
    layer = HiddenLayer(rng.normal(size=(5, 4)) * 0.8, get_activation(activation), use_bias=use_bias,
                        batch_norm=batch_norm, dropout=dropout)
    # Non-trivial values for every parameter, so a gradient that ignored one would show.
    if use_bias:
        layer.dense.bias[...] = rng.normal(size=4) * 0.5
    if layer.batch_norm is not None:
        layer.batch_norm.gamma[...] = rng.uniform(0.5, 1.5, size=4)
        layer.batch_norm.beta[...] = rng.normal(size=4) * 0.5
    return layer, rng.normal(size=(7, 5))


@pytest.mark.parametrize("batch_norm", POSITIONS)
@pytest.mark.parametrize("activation", ACTIVATIONS.names())
def test_hidden_layer_backward_matches_finite_differences(activation: str, batch_norm: str | bool) -> None:
    layer, x = _hidden_layer(activation, batch_norm, dropout=0.3)
    R = np.random.default_rng(9).normal(size=(7, 4))

    def forward() -> np.ndarray:
        # The same seed for every pass, so each one drops the same units.
        return layer.forward(x, training=True, rng=np.random.default_rng(10))

    def loss() -> float:
        return float(np.sum(forward() * R))

    out = forward()
    assert np.any(out == 0), "dropout should have dropped some units"
    grad_x = layer.backward(R.copy())
    assert grad_x is not None
    analytic = {k: g.copy() for k, g in layer.grads.items()}
    expected_keys = {"kernel", "bias"} | ({"gamma", "beta"} if batch_norm else set())
    assert set(layer.params) == set(analytic) == expected_keys
    assert_gradient_close(grad_x, numerical_gradient(loss, x), "x")
    for key, param in layer.params.items():
        assert_gradient_close(analytic[key], numerical_gradient(loss, param), key)


@pytest.mark.parametrize("batch_norm", POSITIONS)
def test_hidden_layer_without_bias_backward_matches_finite_differences(batch_norm: str | bool) -> None:
    layer, x = _hidden_layer("elu", batch_norm, dropout=0.0, use_bias=False)
    assert "bias" not in layer.params and "bias" not in layer.grads
    R = np.random.default_rng(11).normal(size=(7, 4))

    def loss() -> float:
        return float(np.sum(layer.forward(x, training=True) * R))

    layer.forward(x, training=True)
    grad_x = layer.backward(R.copy())
    analytic = {k: g.copy() for k, g in layer.grads.items()}
    assert_gradient_close(grad_x, numerical_gradient(loss, x), "x")
    for key, param in layer.params.items():
        assert_gradient_close(analytic[key], numerical_gradient(loss, param), key)


@pytest.mark.parametrize("batch_norm", POSITIONS)
def test_hidden_layer_forward_composes_dense_bn_activation_dropout(batch_norm: str | bool) -> None:
    layer, x = _hidden_layer("tanh", batch_norm, dropout=0.25)
    kernel, bias = layer.dense.kernel.copy(), layer.dense.bias.copy()
    h = x @ kernel + bias
    if batch_norm == "before_activation":
        h, _, _ = reference_batch_norm(h, layer.batch_norm.gamma, layer.batch_norm.beta)
    a = np.tanh(h)
    if batch_norm == "after_activation":
        a, _, _ = reference_batch_norm(a, layer.batch_norm.gamma, layer.batch_norm.beta)
    mask = dropout_mask(a.shape, 0.25, np.random.default_rng(12), a.dtype)
    out = layer.forward(x, training=True, rng=np.random.default_rng(12))
    np.testing.assert_allclose(out, a * mask, rtol=1e-12, atol=1e-12)
    # Inference: no dropout, and the layer needs no generator.
    inference = layer.forward(x, training=False)
    assert np.all(inference != 0)


# ----------------------------------------------------------------------------- activation statistics


def test_dead_fraction_counts_units_zero_for_the_whole_batch() -> None:
    a = np.array([[0.0, 0.0, 1.0, 0.0, 2.0],
                  [0.0, 3.0, 1.0, 0.0, 0.0],
                  [0.0, 0.0, 0.5, 0.0, 0.0]])
    # Units 0 and 3 are zero for every example; unit 1 and 4 are zero for most but not all.
    stats = ActivationStats(a, get_activation("relu"))
    assert stats.dead_fraction == pytest.approx(2 / 5)
    assert stats.saturated_fraction == 0.0  # the ReLU does not saturate
    assert stats.mean == pytest.approx(float(np.sum(a)) / a.size)
    assert stats.std == pytest.approx(float(np.sqrt(np.mean((a - a.mean()) ** 2))))


def test_dead_fraction_from_column_sums_agrees_with_the_general_count() -> None:
    rng = np.random.default_rng(5)
    a = np.maximum(rng.normal(size=(32, 50)), 0).astype(np.float32)
    a[:, ::7] = 0.0  # dead units
    a[3, 14] = 1e-30  # alive by one tiny output
    fast, general = ActivationStats(a, get_activation("relu")), ActivationStats(a, None)
    assert fast.dead_fraction == general.dead_fraction == pytest.approx(7 / 50)
    assert fast.mean == pytest.approx(float(a.astype(np.float64).mean()), rel=1e-6)


@pytest.mark.parametrize("activation", ["tanh", "elu", None])
def test_dead_fraction_of_signed_outputs_is_not_fooled_by_columns_that_sum_to_zero(activation) -> None:
    """Signed outputs can cancel: a column summing to zero is dead only if every entry is 0."""
    act = None if activation is None else get_activation(activation)
    a = np.array([[0.5, 0.0, -0.25, 0.0],
                  [-0.5, 0.0, 0.75, 0.0],
                  [0.0, 0.0, 0.1, -0.0]], dtype=np.float32)  # column 0 sums to 0 but is alive
    assert ActivationStats(a, act).dead_fraction == pytest.approx(2 / 4)
    a[:, 1] = [0.1, 0.2, 0.3]  # every column sums to non-zero but column 3: 1 dead of 4
    assert ActivationStats(a, act).dead_fraction == pytest.approx(1 / 4)
    a[:, 3] = [1.0, -2.0, 3.0]  # no column sums to zero: none dead
    assert ActivationStats(a, act).dead_fraction == 0.0


def test_dead_fraction_of_a_relu_layer_with_a_dead_unit() -> None:
    rng = np.random.default_rng(13)
    x = rng.uniform(0.1, 1.0, size=(16, 3))  # positive inputs
    kernel = rng.uniform(0.1, 1.0, size=(3, 4))
    kernel[:, 2] = -kernel[:, 2]  # unit 2 gets a negative weighted sum for every input: dead
    layer = HiddenLayer(kernel, get_activation("relu"))
    layer.forward(x, training=True, record=True)
    assert layer.stats is not None
    assert layer.stats.dead_fraction == pytest.approx(1 / 4)


def test_saturated_fraction_of_the_logistic_counts_outputs_within_1_percent_of_0_or_1() -> None:
    act = get_activation("logistic")
    # σ(±4) ≈ 0.018 / 0.982 (not saturated), σ(±5) ≈ 0.0067 / 0.9933, σ(±8) (saturated).
    z = np.array([[-8.0, -5.0, -4.0, -1.0, 0.0, 1.0, 4.0, 5.0, 8.0]] * 2)
    a = act.forward(z)
    stats = ActivationStats(a, act)
    assert stats.saturated_fraction == pytest.approx(8 / 18)
    # The same with outputs chosen directly on both sides of the 1 % margins.
    a = np.array([[0.0, 0.005, 0.0099, 0.0101, 0.5, 0.98, 0.9899, 0.9901, 0.995, 1.0]])
    assert ActivationStats(a, act).saturated_fraction == pytest.approx(6 / 10)
    # With one example, the unit whose output is 0 counts as dead: 1 of 10.
    assert ActivationStats(a, act).dead_fraction == pytest.approx(1 / 10)


def test_saturated_fraction_of_tanh_uses_1_percent_of_its_range() -> None:
    act = get_activation("tanh")
    # The range (−1, 1) is 2 wide, so the margin is 0.02: |a| ≥ 0.98 is saturated.
    a = np.array([[-1.0, -0.99, -0.97, 0.0, 0.5, 0.97, 0.985, 1.0]])
    assert ActivationStats(a, act).saturated_fraction == pytest.approx(4 / 8)


def test_recorded_stats_of_a_logistic_layer() -> None:
    x = np.array([[1.0], [-1.0]])
    kernel = np.array([[10.0, 0.5, -10.0]])  # unit 0 and 2 saturate for both inputs, unit 1 does not
    layer = HiddenLayer(kernel, get_activation("logistic"))
    layer.forward(x, training=True, record=True)
    assert layer.stats is not None
    assert layer.stats.saturated_fraction == pytest.approx(4 / 6)
    assert layer.stats.dead_fraction == 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_kernel_gradient_bound_is_the_product_of_its_factors_squared_norms_and_bounds_the_gradient(dtype):
    rng = np.random.default_rng(11)
    dense = Dense(rng.standard_normal((20, 7)).astype(dtype))
    x = rng.standard_normal((32, 20)).astype(dtype)
    dense.forward(x)
    grad_z = (rng.standard_normal((32, 7)) * 1e3).astype(dtype)
    dense.backward(grad_z)
    x64, g64 = x.astype(np.float64), grad_z.astype(np.float64)
    expected = float(np.sum(x64 * x64)) * float(np.sum(g64 * g64))
    assert dense.kernel_gradient_bound() == pytest.approx(expected, rel=1e-5)
    exact = float(np.sum((x64.T @ g64) ** 2))
    assert exact <= expected and float(np.sum(dense.grad_kernel.astype(np.float64) ** 2)) <= expected * (1 + 1e-5)
    # Aligned factors reach it: a rank-one product, where Cauchy–Schwarz holds with equality.
    dense.forward(np.ones((4, 20), dtype))
    dense.backward(np.full((4, 7), 2.0, dtype))
    assert dense.kernel_gradient_bound() == 80 * 112 == float(np.sum(dense.grad_kernel.astype(np.float64) ** 2))
    x[3, 5] = np.nan
    dense.forward(x)
    dense.backward(grad_z)
    assert math.isnan(dense.kernel_gradient_bound())
