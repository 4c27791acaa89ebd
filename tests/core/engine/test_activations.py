"""Activations: gradients by finite differences, stability, dtypes, config, values by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from core.engine import activations
from core.engine.activations import ACTIVATIONS, SELU, Activation, get_activation

NAMES = ACTIVATIONS.names()

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _sigma(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# Independent scalar formulas, straight from the definitions (default hyperparameters).
REFERENCE = {
    "logistic": _sigma,
    "tanh": lambda x: (math.exp(x) - math.exp(-x)) / (math.exp(x) + math.exp(-x)),
    "relu": lambda x: x if x > 0 else 0.0,
    "leaky_relu": lambda x: x if x > 0 else 0.2 * x,
    "elu": lambda x: x if x > 0 else 1.0 * (math.exp(x) - 1.0),
    "selu": lambda x: SELU_SCALE * (x if x > 0 else SELU_ALPHA * (math.exp(x) - 1.0)),
    "gelu": lambda x: 0.5 * x * (1 + math.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
    "swish": lambda x: x * _sigma(x),
    "softplus": lambda x: math.log(1.0 + math.exp(x)),
    "linear": lambda x: x,
}

# (f(−L), f(+L), f'(−L), f'(+L)) for a large L, default hyperparameters.
LIMITS = {
    "logistic": lambda L: (0.0, 1.0, 0.0, 0.0),
    "tanh": lambda L: (-1.0, 1.0, 0.0, 0.0),
    "relu": lambda L: (0.0, L, 0.0, 1.0),
    "leaky_relu": lambda L: (-0.2 * L, L, 0.2, 1.0),
    "elu": lambda L: (-1.0, L, 0.0, 1.0),
    "selu": lambda L: (-SELU_SCALE * SELU_ALPHA, SELU_SCALE * L, 0.0, SELU_SCALE),
    "gelu": lambda L: (0.0, L, 0.0, 1.0),
    "swish": lambda L: (0.0, L, 0.0, 1.0),
    "softplus": lambda L: (0.0, L, 0.0, 1.0),
    "linear": lambda L: (-L, L, 1.0, 1.0),
}


def test_every_entry_has_reference_values_and_limits() -> None:
    assert set(REFERENCE) == set(NAMES)
    assert set(LIMITS) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_registered_class_is_an_activation_with_a_tooltip(name: str) -> None:
    act = get_activation(name)
    assert isinstance(act, Activation)
    assert act.name == name and act.family == "activation"
    assert isinstance(act.summary, str) and len(act.summary) > 20 and "\n" not in act.summary


@pytest.mark.parametrize("name", NAMES)
def test_backward_matches_central_differences(name: str) -> None:
    rng = np.random.default_rng(0)
    z = rng.uniform(-5, 5, size=(8, 16))
    # Values near 0 on both sides, but never within h of the kink of the ReLU family.
    z[0, :8] = [-1e-3, 1e-3, -0.05, 0.05, -1.0, 1.0, -3.0, 3.0]
    act = get_activation(name)
    grad_a = rng.normal(size=z.shape)
    h = 1e-6
    # f is element-wise, so the gradient of Σ grad_a·f(z) is grad_a · f'(z), entry by entry.
    numeric = grad_a * (act.forward(z + h) - act.forward(z - h)) / (2 * h)
    analytic = act.backward(z, act.forward(z), grad_a)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("big", [1000.0, 1e4])
@pytest.mark.parametrize("name", NAMES)
def test_stable_and_correct_limits_for_huge_inputs(name: str, big: float, dtype: type) -> None:
    act = get_activation(name)
    z = np.array([[-big, -1.0, 0.0, 1.0, big]], dtype=dtype)
    a = act.forward(z)  # RuntimeWarnings are errors in this suite (pyproject.toml)
    g = act.backward(z, a, np.ones_like(z))
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(g))
    lo, hi, dlo, dhi = LIMITS[name](big)
    np.testing.assert_allclose([a[0, 0], a[0, -1]], [lo, hi], rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose([g[0, 0], g[0, -1]], [dlo, dhi], rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_dtype_is_preserved(name: str, dtype: type) -> None:
    act = get_activation(name)
    z = np.linspace(-3, 3, 12, dtype=dtype).reshape(3, 4)
    a = act.forward(z)
    g = act.backward(z, a, np.ones_like(z))
    assert a.dtype == dtype and g.dtype == dtype
    assert a.shape == z.shape and g.shape == z.shape


@pytest.mark.parametrize("name", NAMES)
def test_forward_returns_a_new_array(name: str) -> None:
    act = get_activation(name)
    z = np.array([[-1.0, 0.5, 2.0]])
    grad_a = np.ones_like(z)
    assert not np.shares_memory(act.forward(z), z)
    assert not np.shares_memory(act.backward(z, act.forward(z), grad_a), grad_a)


@pytest.mark.parametrize("name", NAMES)
def test_forward_matches_independent_formula(name: str) -> None:
    xs = [-3.0, -1.0, -0.5, 0.25, 1.0, 2.5]
    expected = [REFERENCE[name](x) for x in xs]
    got = get_activation(name).forward(np.array([xs]))[0]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip_and_repr(name: str) -> None:
    act = get_activation(name)
    config = act.get_config()
    assert config["name"] == name
    assert json.loads(json.dumps(config)) == config
    assert type(act).from_config(config) == act
    assert get_activation(**config) == act
    assert eval(repr(act), vars(activations)) == act


def test_elu_value_and_slope_follow_eq_11_2() -> None:
    for alpha in (1.0, 0.5):
        elu = get_activation("elu", alpha=alpha)
        z = np.array([-1.0, 2.0])
        a = elu.forward(z)
        assert a[0] == pytest.approx(alpha * (math.exp(-1.0) - 1.0), rel=1e-14)
        assert a[1] == 2.0
        g = elu.backward(z, a, np.ones(2))
        assert g[0] == pytest.approx(alpha * math.exp(-1.0), rel=1e-12)
        assert g[1] == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("alpha", [1.0, 0.5, 1.7])
def test_elu_keeps_expm1_accuracy_dtype_and_layout(dtype: type, alpha: float) -> None:
    # A layer's pre-activations are column-major (core.engine.layers.unit_major); ELU must keep
    # that order and the dtype, and stay exact near 0, where e^z − 1 would cancel: the float64
    # reference below is computed in the test from math.expm1, value by value.
    rng = np.random.default_rng(7)
    z = np.asfortranarray((rng.standard_normal((32, 41)) * 3).astype(dtype))
    z[0, :4] = [0.0, -1e-7, -1e-30, 50.0]
    a = get_activation("elu", alpha=alpha).forward(z)
    assert a.dtype == dtype and a.flags.f_contiguous
    reference = np.vectorize(lambda x: x if x > 0 else alpha * math.expm1(x))(z.astype(np.float64))
    rel = np.finfo(dtype).eps * 2
    np.testing.assert_allclose(a, reference, rtol=rel, atol=0.0)
    assert a[0, 1] != 0.0 and a[0, 2] != 0.0   # e^z − 1 rounds these to 0 in float32

def test_selu_constants() -> None:
    assert SELU.ALPHA == pytest.approx(1.6732632423543772, rel=1e-15)
    assert SELU.SCALE == pytest.approx(1.0507009873554805, rel=1e-15)
    assert SELU.parameters() == {}
    a = get_activation("selu").forward(np.array([1.0, -1.0]))
    np.testing.assert_allclose(a, [SELU_SCALE, SELU_SCALE * SELU_ALPHA * (math.exp(-1.0) - 1.0)], rtol=1e-14)


def test_leaky_relu_default_alpha_is_the_books_and_sets_the_slope() -> None:
    assert get_activation("leaky_relu").alpha == 0.2
    leaky = get_activation("leaky_relu", alpha=0.01)
    z = np.array([-2.0, 3.0])
    np.testing.assert_array_equal(leaky.forward(z), [-0.02, 3.0])
    np.testing.assert_array_equal(leaky.backward(z, leaky.forward(z), np.ones(2)), [0.01, 1.0])


def test_gelu_approximates_the_exact_erf_form() -> None:
    xs = np.linspace(-6, 6, 241)
    exact = [x * 0.5 * (1 + math.erf(x / math.sqrt(2))) for x in xs]
    np.testing.assert_allclose(get_activation("gelu").forward(xs), exact, atol=1e-3)


def test_saturation_ranges() -> None:
    expected = {"logistic": (0.0, 1.0), "tanh": (-1.0, 1.0)}
    for name in NAMES:
        act = get_activation(name)
        assert act.saturation_range == expected.get(name)
        if act.saturation_range is not None:
            low, high = act.saturation_range
            a = act.forward(np.linspace(-50, 50, 101))
            assert a.min() >= low and a.max() <= high


def test_nonnegative_flag_matches_the_outputs() -> None:
    """The diagnostics count dead units from column sums when ``nonnegative`` is set: it must
    hold for every input, and the flagged set is exactly the functions that cannot go below 0."""
    z = np.concatenate([np.linspace(-1e4, 1e4, 2001), [-1e-30, 0.0, 1e-30]])
    flagged = [name for name in NAMES if ACTIVATIONS.get(name).nonnegative]
    assert flagged == ["logistic", "relu", "softplus"]
    for name in NAMES:
        a = get_activation(name).forward(z)
        assert bool(np.all(a >= 0)) or name not in flagged, name


@pytest.mark.parametrize("name", ["leaky_relu", "elu"])
@pytest.mark.parametrize("bad", [-1, 0, float("nan"), True, "0.2"])
def test_bad_alpha_is_rejected_by_name(name: str, bad: object) -> None:
    with pytest.raises(ValueError, match=r"^alpha: must be a positive number, got "):
        get_activation(name, alpha=bad)


def test_leaky_relu_alpha_above_one_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"^alpha: must be <= 1, got 2"):
        get_activation("leaky_relu", alpha=2)


def test_unknown_parameter_and_name_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"^alpha: unknown parameter for activation 'relu'; allowed: none"):
        get_activation("relu", alpha=0.1)
    with pytest.raises(KeyError, match="unknown activation 'sigmoidal'"):
        get_activation("sigmoidal")
