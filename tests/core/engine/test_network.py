"""The network: a full finite-difference gradient check for every loss and a few
architectures, parameter paths, state round trip and refusals, dtypes, inference."""

from __future__ import annotations

import re

import numpy as np
import pytest

from core.engine.layers import dropout_mask
from core.engine.losses import LOSSES, Loss
from core.engine.network import Network
from core.spec import LayerSpec, ModelSpec, OutputSpec

from .gradcheck import numerical_gradient

N_INPUTS = 5
BATCH = 8
LOSS_NAMES = LOSSES.names()
N_OUTPUTS = {"mse": 3, "sigmoid_binary_cross_entropy": 1, "softmax_cross_entropy": 3}

# Small networks covering every batch-norm position, dropout in each place, biases on and off.
ARCHITECTURES: dict[str, ModelSpec] = {
    "elu_bn_before__tanh_bn_after__dropout": ModelSpec(
        layers=(LayerSpec(units=4, init="he_normal", activation="elu", batch_norm="before_activation",
                          dropout=0.2),
                LayerSpec(units=3, init="glorot_normal", activation="tanh", batch_norm="after_activation",
                          dropout=0.1)),
        input_dropout=0.1),
    "logistic__selu_bn_before": ModelSpec(
        layers=(LayerSpec(units=4, init="glorot_uniform", activation="logistic"),
                LayerSpec(units=3, init="lecun_normal", activation="selu", batch_norm="before_activation")),
        output=OutputSpec(init="glorot_normal")),
    "leaky_bn_after_nobias__elu_dropout": ModelSpec(
        layers=(LayerSpec(units=4, init="he_uniform", activation="leaky_relu",
                          activation_params={"alpha": 0.3}, batch_norm="after_activation", use_bias=False),
                LayerSpec(units=3, init="he_normal", activation="elu", dropout=0.3)),
        input_dropout=0.2),
}




def make_loss(name: str) -> Loss:
    return LOSSES.get(name)()  # type: ignore[return-value]


def make_network(arch: str, loss_name: str = "softmax_cross_entropy", dtype: type = np.float64,
                 seed: int = 0) -> Network:
    return Network(ARCHITECTURES[arch], N_INPUTS, N_OUTPUTS[loss_name], make_loss(loss_name),
                   np.random.default_rng(seed), dtype)


def make_data(loss_name: str, dtype: type = np.float64, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(BATCH, N_INPUTS)).astype(dtype)
    if loss_name == "mse":
        y = rng.normal(size=(BATCH, 3))
    elif loss_name == "sigmoid_binary_cross_entropy":
        y = np.array([0, 1] * (BATCH // 2))
    else:
        y = rng.integers(0, 3, size=BATCH)
    return X, y


def randomize_bn(net: Network, seed: int = 2) -> None:
    """γ, β away from their initial 1, 0 so their gradients are exercised in general position."""
    rng = np.random.default_rng(seed)
    for key, a in net.parameters().items():
        if key.endswith((".gamma", ".beta", ".bias")):
            a[...] = rng.uniform(0.6, 1.4, size=a.shape) if key.endswith(".gamma") else rng.normal(size=a.shape)


def expected_keys(model: ModelSpec) -> tuple[list[str], list[str]]:
    params: list[str] = []
    buffers: list[str] = []
    for i, row in enumerate(model.layers):
        params.append(f"layers.{i}.kernel")
        if row.use_bias:
            params.append(f"layers.{i}.bias")
        if row.batch_norm:
            params += [f"layers.{i}.gamma", f"layers.{i}.beta"]
            buffers += [f"layers.{i}.moving_mean", f"layers.{i}.moving_variance"]
    return [*params, "output.kernel", "output.bias"], buffers


# ----------------------------------------------------------------------------- gradients


def test_every_loss_is_covered() -> None:
    assert set(N_OUTPUTS) == set(LOSS_NAMES)


@pytest.mark.parametrize("loss_name", LOSS_NAMES)
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_gradients_match_finite_differences(arch: str, loss_name: str) -> None:
    net = make_network(arch, loss_name)
    randomize_bn(net)
    X, y = make_data(loss_name)
    loss = net.loss

    def data_loss() -> float:
        # The same dropout masks on every pass.
        return loss.value(net.forward(X, training=True, rng=np.random.default_rng(3)), y)

    logits = net.forward(X, training=True, rng=np.random.default_rng(3))
    assert logits.shape == (BATCH, N_OUTPUTS[loss_name])
    _, grad_logits = loss.value_and_gradient(logits, y)
    net.backward(grad_logits)
    analytic = {k: g.copy() for k, g in net.gradients().items()}
    params = net.parameters()
    assert list(analytic) == list(params)
    for key, param in params.items():
        numeric = numerical_gradient(data_loss, param)
        scale = max(float(np.max(np.abs(numeric))), 1e-3)
        err = float(np.max(np.abs(analytic[key] - numeric))) / scale
        assert err < 1e-6, f"{key}: relative error {err:.2e}\nanalytic {analytic[key]}\nnumeric {numeric}"


# ----------------------------------------------------------------------------- paths and sizes


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_parameter_and_buffer_paths(arch: str) -> None:
    net = make_network(arch)
    model = ARCHITECTURES[arch]
    params, buffers = expected_keys(model)
    assert list(net.parameters()) == params
    assert list(net.gradients()) == params
    assert list(net.buffers()) == buffers
    assert set(net.state()) == set(params) | set(buffers)
    fan_in = N_INPUTS
    for i, row in enumerate(model.layers):
        assert net.parameters()[f"layers.{i}.kernel"].shape == (fan_in, row.units)
        for key in ("bias", "gamma", "beta"):
            if f"layers.{i}.{key}" in params:
                assert net.parameters()[f"layers.{i}.{key}"].shape == (row.units,)
        for key in ("moving_mean", "moving_variance"):
            if f"layers.{i}.{key}" in buffers:
                assert net.buffers()[f"layers.{i}.{key}"].shape == (row.units,)
        fan_in = row.units
    assert net.parameters()["output.kernel"].shape == (fan_in, 3)
    assert net.parameters()["output.bias"].shape == (3,)
    for key in params:
        assert net.gradients()[key].shape == net.parameters()[key].shape


def test_parameters_are_the_arrays_themselves_and_state_holds_copies() -> None:
    net = make_network("elu_bn_before__tanh_bn_after__dropout")
    net.parameters()["output.bias"][...] = 7.0
    assert np.all(net.parameters()["output.bias"] == 7.0)
    state = net.state()
    state["output.bias"][...] = -1.0
    state["layers.0.moving_mean"][...] = 5.0
    assert np.all(net.parameters()["output.bias"] == 7.0)
    assert np.all(net.buffers()["layers.0.moving_mean"] == 0.0)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_parameters_and_gradients_are_aligned_views_of_one_flat_array_each(arch: str) -> None:
    """What lets the optimizer step the whole network at once: every parameter is a view of
    ``flat_parameters`` and every gradient of ``flat_gradients`` at the same 64-byte-aligned
    offset, and the passes write through those views."""
    net = make_network(arch)
    flat_p, flat_g = net.flat_parameters, net.flat_gradients
    assert flat_p.shape == flat_g.shape and flat_p.dtype == flat_g.dtype == net.dtype
    params, grads = net.parameters(), net.gradients()
    assert sum(a.size for a in params.values()) <= flat_p.size < sum(a.size + 16 for a in params.values())
    for key, a in params.items():
        assert a.base is flat_p and grads[key].base is flat_g, key
        offset = (a.ctypes.data - flat_p.ctypes.data) // a.itemsize
        assert offset % 16 == 0 and (grads[key].ctypes.data - flat_g.ctypes.data) // a.itemsize == offset, key
        np.testing.assert_array_equal(flat_p[offset:offset + a.size], a.reshape(-1))
    X = np.random.default_rng(0).normal(size=(BATCH, N_INPUTS)).astype(net.dtype)
    flat_g.fill(np.nan)  # the backward pass must overwrite every gradient through its view
    net.backward(np.ones_like(net.forward(X, training=True, rng=np.random.default_rng(1))))
    for key, g in net.gradients().items():
        assert np.isfinite(g).all(), key
    assert np.isnan(flat_g).sum() == flat_g.size - sum(g.size for g in grads.values())  # only the gaps


@pytest.mark.parametrize("loss_name", LOSS_NAMES)
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_parameter_counts(arch: str, loss_name: str) -> None:
    net = make_network(arch, loss_name)
    expected = []
    fan_in = N_INPUTS
    for row in ARCHITECTURES[arch].layers:
        expected.append(fan_in * row.units + (row.units if row.use_bias else 0)
                        + (2 * row.units if row.batch_norm else 0))
        fan_in = row.units
    n_out = N_OUTPUTS[loss_name]
    expected.append(fan_in * n_out + n_out)
    assert net.parameter_counts() == expected


# ----------------------------------------------------------------------------- state


def _trained_a_little(arch: str, seed: int) -> Network:
    """A network whose parameters and moving statistics are no longer the initial ones."""
    net = make_network(arch, seed=seed)
    randomize_bn(net, seed=seed + 10)
    X, _ = make_data("softmax_cross_entropy", seed=seed + 20)
    net.forward(X, training=True, rng=np.random.default_rng(seed))
    return net


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_state_round_trip(arch: str) -> None:
    source = _trained_a_little(arch, seed=4)
    target = _trained_a_little(arch, seed=5)
    X, _ = make_data("softmax_cross_entropy", seed=6)
    assert not np.allclose(source.predict_logits(X), target.predict_logits(X))
    state = source.state()
    target.load_state(state)
    loaded = target.state()
    assert list(loaded) == list(state)
    for key in state:
        np.testing.assert_array_equal(loaded[key], state[key], err_msg=key)
    np.testing.assert_array_equal(target.predict_logits(X), source.predict_logits(X))
    # Loaded by copy: changing the dict afterwards does not reach the network.
    state["output.kernel"][...] = 0.0
    assert not np.all(target.parameters()["output.kernel"] == 0.0)


def _bad_states(state: dict[str, np.ndarray]) -> list[tuple[str, dict[str, np.ndarray]]]:
    missing = dict(state)
    del missing["layers.0.gamma"]
    extra = {**state, "layers.7.kernel": np.zeros((3, 3))}
    wrong_shape = dict(state)
    wrong_shape["layers.1.moving_variance"] = np.ones(4)  # the layer has 3 units
    wrong_kernel = dict(state)
    wrong_kernel["output.kernel"] = np.ones((3, 2))  # the output layer has 3 units
    transposed = dict(state)
    transposed["layers.0.kernel"] = state["layers.0.kernel"].T.copy()  # same size, shape (4, 5)
    return [("layers.0.gamma", missing), ("layers.7.kernel", extra),
            ("layers.1.moving_variance", wrong_shape), ("output.kernel", wrong_kernel),
            ("layers.0.kernel", transposed)]


@pytest.mark.parametrize("case", range(5))
def test_load_state_refuses_a_mismatch_and_changes_nothing(case: int) -> None:
    arch = "elu_bn_before__tanh_bn_after__dropout"
    net = _trained_a_little(arch, seed=7)
    before = net.state()
    # Every other array differs from the network's, so a partial copy would show.
    shifted = {k: a + 1.0 for k, a in _trained_a_little(arch, seed=8).state().items()}
    key, bad = _bad_states(shifted)[case]
    with pytest.raises(ValueError, match=re.escape(key)):
        net.load_state(bad)
    after = net.state()
    assert list(after) == list(before)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)


# ----------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("loss_name", LOSS_NAMES)
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_float32_network_stays_float32(arch: str, loss_name: str) -> None:
    net = make_network(arch, loss_name, dtype=np.float32)
    assert net.dtype == np.float32
    X, y = make_data(loss_name, dtype=np.float32)
    for key, a in {**net.parameters(), **net.buffers()}.items():
        assert a.dtype == np.float32, key
    logits = net.forward(X, training=True, rng=np.random.default_rng(0), record=True)
    assert logits.dtype == np.float32
    _, grad_logits = net.loss.value_and_gradient(logits, y)
    assert grad_logits.dtype == np.float32
    net.backward(grad_logits)
    for key, g in net.gradients().items():
        assert g.dtype == np.float32, key
    for key, a in {**net.parameters(), **net.buffers()}.items():
        assert a.dtype == np.float32, key
        assert np.all(np.isfinite(a)), key
    assert net.forward(X, training=False).dtype == np.float32
    # predict_logits converts float64 input to the network's dtype.
    assert net.predict_logits(X.astype(np.float64)).dtype == np.float32


def test_float64_network_is_float64() -> None:
    net = make_network("logistic__selu_bn_before", dtype=np.float64)
    X, _ = make_data("softmax_cross_entropy")
    assert all(a.dtype == np.float64 for a in net.state().values())
    assert net.forward(X, training=True).dtype == np.float64


# ----------------------------------------------------------------------------- inference


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_predict_logits_is_deterministic_inference(arch: str) -> None:
    net = _trained_a_little(arch, seed=9)
    X, _ = make_data("softmax_cross_entropy", seed=10)
    X = np.concatenate([X, X[::-1] * 0.5])
    buffers = {k: a.copy() for k, a in net.buffers().items()}
    first = net.predict_logits(X)
    np.testing.assert_array_equal(net.predict_logits(X), first)
    np.testing.assert_array_equal(net.forward(X, training=False), first)
    # Chunked or not, the same rows (inference is row by row).
    np.testing.assert_allclose(net.predict_logits(X, batch_size=3), first, rtol=1e-12, atol=1e-12)
    # Inference does not touch the moving statistics.
    for key, a in net.buffers().items():
        np.testing.assert_array_equal(a, buffers[key], err_msg=key)
    # Training mode differs (dropout and/or batch statistics), so the checks above can fail.
    assert not np.allclose(net.forward(X, training=True, rng=np.random.default_rng(0)), first)


def test_input_dropout_is_inverted_dropout_of_the_inputs() -> None:
    model = ModelSpec(layers=(LayerSpec(units=4, activation="tanh", init="glorot_normal"),), input_dropout=0.4)
    net = Network(model, N_INPUTS, 3, make_loss("softmax_cross_entropy"), np.random.default_rng(0), np.float64)
    X, _ = make_data("softmax_cross_entropy")
    # Without batch norm or hidden dropout the only training-time difference is the input mask.
    mask = dropout_mask(X.shape, 0.4, np.random.default_rng(11), X.dtype)
    assert np.any(mask == 0)
    np.testing.assert_allclose(net.forward(X, training=True, rng=np.random.default_rng(11)),
                               net.forward(X * mask, training=False), rtol=1e-12, atol=1e-12)
