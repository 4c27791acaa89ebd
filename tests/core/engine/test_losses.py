"""Losses: gradients by finite differences, values by the naive formulas, stability, dtypes."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest

from core.engine import losses
from core.engine.losses import LOSSES, Loss, log_softmax, row_max, softmax

NAMES = LOSSES.names()


def _classes(rng: np.random.Generator, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    return (2 * rng.normal(size=(6, 4))).astype(dtype), rng.integers(0, 4, size=6)


def _binary(rng: np.random.Generator, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    return (2 * rng.normal(size=(6, 1))).astype(dtype), rng.integers(0, 2, size=6)


def _regression(rng: np.random.Generator, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    return rng.normal(size=(6, 3)).astype(dtype), rng.normal(size=(6, 3))


CASES: dict[str, Callable[[np.random.Generator, type], tuple[np.ndarray, np.ndarray]]] = {
    "softmax_cross_entropy": _classes,
    "sigmoid_binary_cross_entropy": _binary,
    "mse": _regression,
}
OUTPUT_ACTIVATION = {"softmax_cross_entropy": "softmax", "sigmoid_binary_cross_entropy": "sigmoid",
                     "mse": "linear"}


def _naive_value(name: str, z: np.ndarray, y: np.ndarray) -> float:
    """The textbook formulas, evaluated the direct (unstable) way: fine for small logits."""
    n = len(z)
    if name == "softmax_cross_entropy":
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        return float(-np.mean(np.log(p[np.arange(n), y])))
    if name == "sigmoid_binary_cross_entropy":
        p = 1 / (1 + np.exp(-z[:, 0]))
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return float(((z - y) ** 2).sum() / z.size)


def get(name: str) -> Loss:
    return LOSSES.get(name)()  # type: ignore[return-value]


def test_every_entry_is_covered() -> None:
    assert set(CASES) == set(NAMES) == set(OUTPUT_ACTIVATION)


@pytest.mark.parametrize("name", NAMES)
def test_registered_class_is_a_loss_with_a_tooltip(name: str) -> None:
    loss = get(name)
    assert isinstance(loss, Loss)
    assert loss.name == name and loss.family == "loss"
    assert loss.output_activation == OUTPUT_ACTIVATION[name]
    assert isinstance(loss.summary, str) and len(loss.summary) > 20 and "\n" not in loss.summary


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_central_differences(name: str) -> None:
    z, y = CASES[name](np.random.default_rng(0), np.float64)
    loss = get(name)
    value, grad = loss.value_and_gradient(z, y)
    h = 1e-6
    numeric = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        step = np.zeros_like(z)
        step[idx] = h
        numeric[idx] = (loss.value(z + step, y) - loss.value(z - step, y)) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)
    assert value == loss.value(z, y)
    np.testing.assert_array_equal(grad, loss.gradient(z, y))


@pytest.mark.parametrize("name", NAMES)
def test_value_matches_naive_formula(name: str) -> None:
    z, y = CASES[name](np.random.default_rng(1), np.float64)
    assert get(name).value(z, y) == pytest.approx(_naive_value(name, z, y), rel=1e-12)


def test_gradients_by_hand() -> None:
    z = np.array([[0.0, np.log(3.0)]])  # softmax = [1/4, 3/4]
    np.testing.assert_allclose(get("softmax_cross_entropy").gradient(z, np.array([1])), [[0.25, -0.25]])
    z = np.array([[0.0], [0.0]])  # σ = 1/2
    np.testing.assert_allclose(get("sigmoid_binary_cross_entropy").gradient(z, np.array([1, 0])),
                               [[-0.25], [0.25]])
    z = np.array([[1.0, 2.0]])
    np.testing.assert_allclose(get("mse").gradient(z, np.array([[0.0, 0.0]])), [[1.0, 2.0]])
    assert get("mse").value(z, np.array([[0.0, 0.0]])) == 2.5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_for_huge_logits(dtype: type) -> None:
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 0.0]], dtype=dtype)
    value, grad = get("softmax_cross_entropy").value_and_gradient(z, np.array([0, 0]))
    assert value == pytest.approx(1000.0)  # mean of −log 1 = 0 and −log e^(−2000) = 2000
    np.testing.assert_allclose(grad, [[0, 0, 0], [-0.5, 0.5, 0]], atol=1e-7)

    z = np.array([[1000.0], [-1000.0], [1000.0], [-1000.0]], dtype=dtype)
    value, grad = get("sigmoid_binary_cross_entropy").value_and_gradient(z, np.array([1, 1, 0, 0]))
    assert value == pytest.approx(500.0)  # per sample 0, 1000, 1000, 0: a confident mistake costs |z|
    np.testing.assert_allclose(grad, [[0], [-0.25], [0.25], [0]], atol=1e-7)

    z = np.array([[1000.0], [-1000.0]], dtype=dtype)
    value, grad = get("mse").value_and_gradient(z, np.array([0.0, 0.0]))
    assert value == pytest.approx(1e6)
    np.testing.assert_allclose(grad, [[1000.0], [-1000.0]])

    for name in NAMES:
        p = get(name).predict(z if name != "softmax_cross_entropy" else np.hstack([z, -z]))
        assert np.all(np.isfinite(p))


@pytest.mark.parametrize("name", NAMES)
def test_dtype_is_preserved(name: str) -> None:
    z, y = CASES[name](np.random.default_rng(2), np.float32)
    value, grad = get(name).value_and_gradient(z, y)
    assert type(value) is float
    assert grad.dtype == np.float32 and grad.shape == z.shape
    assert get(name).predict(z).dtype == np.float32


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip_and_repr(name: str) -> None:
    loss = get(name)
    config = loss.get_config()
    assert config == {"name": name}
    assert json.loads(json.dumps(config)) == config
    assert type(loss).from_config(config) == loss
    assert eval(repr(loss), vars(losses)) == loss


def test_predict() -> None:
    z = np.random.default_rng(3).normal(size=(5, 4)).astype(np.float32)
    p = get("softmax_cross_entropy").predict(z)
    assert p.shape == (5, 4)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.log(p), log_softmax(z), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(p, softmax(z))
    p = get("sigmoid_binary_cross_entropy").predict(z[:, :1])
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-z[:, :1])), rtol=1e-6)
    out = get("mse").predict(z)
    np.testing.assert_array_equal(out, z)
    assert not np.shares_memory(out, z)


def test_targets_of_shape_n_and_n_by_1_agree() -> None:
    z = np.array([[0.3], [-1.2], [2.0]])
    targets = {"sigmoid_binary_cross_entropy": np.array([1, 0, 1]), "mse": np.array([0.5, -1.0, 2.5])}
    for name, y in targets.items():
        loss = get(name)
        assert loss.value(z, y) == loss.value(z, y[:, None])
        np.testing.assert_array_equal(loss.gradient(z, y), loss.gradient(z, y[:, None]))


SCE, BCE = "softmax_cross_entropy", "sigmoid_binary_cross_entropy"


@pytest.mark.parametrize(("name", "z", "y", "message"), [
    (SCE, np.zeros((3, 2)), np.array([0.0, 1.0, 1.0]), "^y: must hold integer class labels"),
    (SCE, np.zeros((3, 2)), np.array([0, 2, 1]), r"^y: class labels must be in 0\.\.1"),
    (SCE, np.zeros((3, 2)), np.array([[0], [1], [1]]), r"^y: must be 3 integer class labels"),
    (SCE, np.zeros(3), np.array([0, 1, 1]), r"^logits: must have shape \(n, k\)"),
    (SCE, np.zeros((0, 2)), np.array([], dtype=int), "^logits: must hold at least one"),
    (BCE, np.zeros((3, 2)), np.array([0, 1, 1]), r"^logits: must have shape \(n, 1\)"),
    (BCE, np.zeros((3, 1)), np.array([0, 2, 1]), "^y: binary labels must be 0 or 1"),
    (BCE, np.zeros((3, 1)), np.zeros((3, 2)), r"^y: binary labels must have shape"),
    ("mse", np.zeros((3, 2)), np.zeros(3), r"^y: regression targets must have shape \(3, 2\)"),
])
def test_bad_inputs_are_rejected(name: str, z: np.ndarray, y: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get(name).value_and_gradient(z, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_value_and_gradient_equals_the_separate_equations(dtype):
    loss = LOSSES.get("softmax_cross_entropy")()
    rng = np.random.default_rng(7)
    z = (rng.standard_normal((17, 5)) * 30).astype(dtype)
    y = rng.integers(0, 5, 17)
    value, grad = loss.value_and_gradient(z, y)
    assert value == pytest.approx(loss.value(z, y), rel=1e-6)
    np.testing.assert_allclose(grad, loss.gradient(z, y), rtol=1e-5, atol=1e-7)
    assert grad.dtype == dtype


def test_checked_labels_give_the_same_loss_and_gradient_and_check_targets_refuses_bad_labels():
    loss = LOSSES.get("softmax_cross_entropy")()
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((16, 5)).astype(np.float32)
    y = rng.integers(0, 5, 16)
    value, grad = loss.value_and_gradient(logits, y)
    checked_value, checked_grad = loss.value_and_gradient(logits, y, checked=True)
    assert checked_value == value and np.array_equal(checked_grad, grad)
    loss.check_targets(y, 5)
    for bad, message in ((np.array([0, 5]), r"must be in 0\.\.4, got 0\.\.5"),
                         (np.array([-1, 2]), r"must be in 0\.\.4, got -1\.\.2"),
                         (np.array([0.0, 1.0]), "integer class labels"),
                         (np.zeros((2, 1), np.int64), r"shape \(n,\)")):
        with pytest.raises(ValueError, match=message):
            loss.check_targets(bad, 5)
    with pytest.raises(ValueError, match=r"shape \(16,\)"):     # a batch that does not fit the logits
        loss.value_and_gradient(logits, y[:8], checked=True)
    LOSSES.get("mse")().check_targets(np.zeros((3, 2), np.float32), 2)   # per call, as before


@pytest.mark.parametrize(("rows", "columns"), [(32, 10), (80, 10), (512, 10), (16, 2), (64, 40), (3, 1)])
def test_row_max_is_the_maximum_of_each_row_whichever_way_it_is_taken(rows: int, columns: int) -> None:
    rng = np.random.default_rng(rows * columns)
    z = rng.standard_normal((rows, columns)).astype(np.float32)
    z[0, -1] = 50.0                    # a maximum in the last column, another in the first
    z[-1, 0] = 60.0
    expected = np.array([max(row) for row in z.tolist()], dtype=np.float32)
    got = row_max(z)
    assert got.shape == (rows,) and got.dtype == np.float32
    assert np.array_equal(got, expected)
