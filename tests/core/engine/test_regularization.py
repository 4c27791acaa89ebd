"""Regularization: ℓ1/ℓ2 against their formula and finite differences (alone and inside a
network), max-norm, gradient clipping, early stopping, and the two augmentations."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from core.engine.losses import LOSSES
from core.engine.network import Network
from core.engine.regularization import (
    EarlyStopping,
    add_gaussian_noise,
    add_weight_penalty_gradient,
    apply_max_norm,
    clip_by_global_norm,
    clip_by_norm,
    clip_by_value,
    clip_gradients,
    shift_images,
    weight_penalty,
)
from core.spec import LayerSpec, ModelSpec

from .gradcheck import numerical_gradient


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Entries with |w| in [0.1, 1]: far from the kink of |w| at 0."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 1.0, size=shape)


def norm(a: np.ndarray) -> float:
    return math.sqrt(sum(float(v) ** 2 for v in a.ravel()))


# ----------------------------------------------------------------------------- ℓ1 / ℓ2


@pytest.mark.parametrize(("l1", "l2"), [(0.01, 0.0), (0.0, 0.003), (0.02, 0.005), (0.0, 0.0)])
def test_weight_penalty_is_l1_sum_abs_plus_l2_sum_squares(l1: float, l2: float) -> None:
    rng = np.random.default_rng(0)
    kernels = {"layers.0.kernel": rng.normal(size=(4, 3)), "output.kernel": rng.normal(size=(3, 2))}
    expected = sum(l1 * abs(float(w)) + l2 * float(w) ** 2 for k in kernels.values() for w in k.ravel())
    assert weight_penalty(kernels, l1, l2) == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(("l1", "l2"), [(0.01, 0.0), (0.0, 0.003), (0.02, 0.005)])
def test_weight_penalty_gradient_matches_finite_differences(l1: float, l2: float) -> None:
    rng = np.random.default_rng(1)
    kernels = {"layers.0.kernel": away_from_zero(rng, (4, 3)), "output.kernel": away_from_zero(rng, (3, 2))}
    start = {k: rng.normal(size=w.shape) for k, w in kernels.items()}
    grads = {k: g.copy() for k, g in start.items()}
    add_weight_penalty_gradient(kernels, grads, l1, l2)
    for key, w in kernels.items():
        numeric = numerical_gradient(lambda: weight_penalty(kernels, l1, l2), w)
        # Added to what was there, not written over it.
        np.testing.assert_allclose(grads[key] - start[key], numeric, rtol=1e-6, atol=1e-9, err_msg=key)


@pytest.mark.parametrize("batch_norm", [False, "before_activation"])
def test_total_loss_gradient_inside_a_network_matches_finite_differences(batch_norm: str | bool) -> None:
    l1, l2 = 0.01, 0.02
    model = ModelSpec(layers=(LayerSpec(units=4, activation="elu", batch_norm=batch_norm, dropout=0.2),
                              LayerSpec(units=3, activation="tanh", init="glorot_normal")),
                      input_dropout=0.1)
    loss = LOSSES.get("softmax_cross_entropy")()
    net = Network(model, 5, 3, loss, np.random.default_rng(2), np.float64)
    rng = np.random.default_rng(3)
    for key, a in net.parameters().items():
        if key.endswith(".kernel"):
            a[...] = away_from_zero(rng, a.shape)
        else:
            a[...] = rng.uniform(0.5, 1.5, size=a.shape)  # biases, γ, β: no penalty on them
    X = rng.normal(size=(8, 5))
    y = rng.integers(0, 3, size=8)
    params = net.parameters()
    kernels = {k: a for k, a in params.items() if k.endswith(".kernel")}

    def total_loss() -> float:
        logits = net.forward(X, training=True, rng=np.random.default_rng(4))
        return loss.value(logits, y) + weight_penalty(kernels, l1, l2)

    logits = net.forward(X, training=True, rng=np.random.default_rng(4))
    _, grad_logits = loss.value_and_gradient(logits, y)
    net.backward(grad_logits)
    grads = net.gradients()
    add_weight_penalty_gradient(kernels, grads, l1, l2)
    analytic = {k: g.copy() for k, g in grads.items()}
    for key, param in params.items():
        numeric = numerical_gradient(total_loss, param)
        scale = max(float(np.max(np.abs(numeric))), 1e-3)
        err = float(np.max(np.abs(analytic[key] - numeric))) / scale
        assert err < 1e-6, f"{key}: relative error {err:.2e}"


# ----------------------------------------------------------------------------- max-norm


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_apply_max_norm(dtype: type) -> None:
    rng = np.random.default_rng(5)
    r = 1.5
    target_norms = np.array([0.3, 1.0, 1.49, 1.6, 3.0, 40.0])
    directions = rng.normal(size=(7, 6))
    directions /= np.sqrt((directions**2).sum(axis=0))
    kernels = {"layers.0.kernel": (directions * target_norms).astype(dtype),
               "output.kernel": (rng.normal(size=(6, 4)) * 2).astype(dtype)}
    before = {k: w.copy() for k, w in kernels.items()}
    apply_max_norm(kernels, r)
    # The tolerance allows the last-bit rounding of w·r/‖w‖ (see the report on max-norm).
    slack = r * (1 + 4 * np.finfo(dtype).eps)
    for key, w in kernels.items():
        assert w.dtype == np.dtype(dtype), key
        for j in range(w.shape[1]):
            old, new = before[key][:, j], w[:, j]
            old_norm, new_norm = norm(old), norm(new)
            assert new_norm <= slack, (key, j, new_norm)
            if old_norm <= r:
                np.testing.assert_array_equal(new, old, err_msg=f"{key} column {j} was inside")
            else:
                assert new_norm == pytest.approx(r, rel=1e-6)
                # Same direction: new = old · (r / ‖old‖), a positive multiple.
                np.testing.assert_allclose(new, old * (r / old_norm), rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------- gradient clipping


def _grads(dtype: type = np.float64) -> dict[str, np.ndarray]:
    """Three tensors with norms 5, 0.5 and 12: two above a threshold of 1, one below."""
    rng = np.random.default_rng(6)
    out = {}
    for key, shape, n in (("layers.0.kernel", (4, 3), 5.0), ("layers.0.bias", (3,), 0.5),
                          ("output.kernel", (3, 2), 12.0)):
        g = rng.normal(size=shape)
        out[key] = (g * (n / norm(g))).astype(dtype)
    return out


def test_clip_by_value() -> None:
    grads = _grads()
    grads["layers.0.bias"][0] = -3.0
    before = {k: g.copy() for k, g in grads.items()}
    t = 0.7
    clip_by_value(grads, t)
    for key, g in grads.items():
        old = before[key]
        assert np.all(np.abs(g) <= t), key
        inside = np.abs(old) <= t
        np.testing.assert_array_equal(g[inside], old[inside])
        np.testing.assert_array_equal(g[~inside], t * np.sign(old[~inside]))
    assert np.count_nonzero(np.abs(before["output.kernel"]) > t) > 0  # the check above bit


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_by_norm_is_per_tensor_and_keeps_direction(dtype: type) -> None:
    grads = _grads(dtype)
    before = {k: g.copy() for k, g in grads.items()}
    t = 1.0
    clip_by_norm(grads, t)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    for key, g in grads.items():
        assert g.dtype == np.dtype(dtype)
        old_norm = norm(before[key])
        if old_norm > t:
            assert norm(g) == pytest.approx(t, rel=tol * 10)
            np.testing.assert_allclose(g, before[key] * (t / old_norm), rtol=tol * 10, atol=tol)
        else:
            # 0.5 stays untouched although the norm of all tensors together is far above 1.
            np.testing.assert_array_equal(g, before[key])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_by_global_norm(dtype: type) -> None:
    grads = _grads(dtype)
    before = {k: g.copy() for k, g in grads.items()}
    expected_norm = math.sqrt(sum(norm(g) ** 2 for g in before.values()))  # √(25 + 0.25 + 144)
    t = 2.0
    returned = clip_by_global_norm(grads, t)
    assert returned == pytest.approx(expected_norm, rel=1e-6)
    after_norm = math.sqrt(sum(norm(g) ** 2 for g in grads.values()))
    assert after_norm == pytest.approx(t, rel=1e-6)
    # Every tensor scaled by the same factor t/‖G‖: the ratios between them are kept.
    for key, g in grads.items():
        assert g.dtype == np.dtype(dtype)
        np.testing.assert_allclose(g, before[key] * (t / expected_norm), rtol=1e-6, atol=1e-7)


def test_clip_by_global_norm_below_the_threshold_changes_nothing() -> None:
    grads = _grads()
    before = {k: g.copy() for k, g in grads.items()}
    expected_norm = math.sqrt(sum(norm(g) ** 2 for g in before.values()))
    assert clip_by_global_norm(grads, 100.0) == pytest.approx(expected_norm, rel=1e-12)
    for key, g in grads.items():
        np.testing.assert_array_equal(g, before[key])


@pytest.mark.parametrize("mode", ["norm", "global_norm"])
def test_norm_clipping_of_large_finite_float32_gradients(mode: str) -> None:
    """Exploding gradients are what clipping is for: float32 entries of 1e20 are finite (the
    float32 maximum is 3.4e38), so the clipped gradient must have norm t and the same direction
    (not be zeroed by an inf norm, nor raise an overflow warning)."""
    g = np.array([[1e20, -2e20], [3e20, 0.5e20]], dtype=np.float32)
    grads = {"output.kernel": g.copy()}
    clip_gradients(grads, mode, 1.0)
    old_norm = math.sqrt(sum(float(v) ** 2 for v in g.ravel()))
    assert grads["output.kernel"].dtype == np.float32
    assert norm(grads["output.kernel"]) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(grads["output.kernel"], g.astype(np.float64) / old_norm, rtol=1e-5)


@pytest.mark.parametrize("mode", ["none", "value", "norm", "global_norm"])
def test_clip_gradients_dispatches_on_the_mode(mode: str) -> None:
    t = 1.0
    grads, expected = _grads(), _grads()
    {"none": lambda g, t: None, "value": clip_by_value, "norm": clip_by_norm,
     "global_norm": clip_by_global_norm}[mode](expected, t)
    clip_gradients(grads, mode, t)
    for key in grads:
        np.testing.assert_array_equal(grads[key], expected[key], err_msg=key)
    # The four modes give four different results on these gradients, so the dispatch is seen.
    results = []
    for other in ("none", "value", "norm", "global_norm"):
        g = _grads()
        clip_gradients(g, other, t)
        results.append(np.concatenate([a.ravel() for a in g.values()]))
    assert all(not np.allclose(results[i], results[j]) for i in range(4) for j in range(i))


def test_clip_gradients_refuses_an_unknown_mode() -> None:
    grads = _grads()
    before = {k: g.copy() for k, g in grads.items()}
    with pytest.raises(ValueError, match="clipnorm") as info:
        clip_gradients(grads, "clipnorm", 1.0)
    for allowed in ("none", "value", "norm", "global_norm"):
        assert allowed in str(info.value)
    for key, g in grads.items():
        np.testing.assert_array_equal(g, before[key])


# ----------------------------------------------------------------------------- early stopping


def _run(es: EarlyStopping, values: list[float], start: int = 0) -> list[tuple[bool, bool]]:
    return [es.update(start + i, {es.monitor: v, "other": 0.0}) for i, v in enumerate(values)]


def test_early_stopping_val_loss_improves_downwards_by_more_than_min_delta() -> None:
    es = EarlyStopping(monitor="val_loss", patience=10, min_delta=0.05)
    improved = [imp for imp, _ in _run(es, [1.0, 0.9, 0.87, 0.95, 0.8, 0.78, 0.7])]
    # 1.0 first; 0.9 is 0.1 better; 0.87 only 0.03; 0.95 worse; 0.8 is 0.1 better than 0.9;
    # 0.78 only 0.02; 0.7 is 0.1 better than 0.8.
    assert improved == [True, True, False, False, True, False, True]
    assert es.best == pytest.approx(0.7)
    assert es.best_epoch == 6


def test_early_stopping_val_accuracy_improves_upwards() -> None:
    es = EarlyStopping(monitor="val_accuracy", patience=10, min_delta=0.01)
    improved = [imp for imp, _ in _run(es, [0.5, 0.6, 0.605, 0.4, 0.7, 0.69])]
    assert improved == [True, True, False, False, True, False]
    assert es.best == pytest.approx(0.7)
    assert es.best_epoch == 4


@pytest.mark.parametrize("patience", [1, 2, 3, 5])
def test_early_stopping_stops_after_exactly_patience_epochs_without_improvement(patience: int) -> None:
    es = EarlyStopping(monitor="val_loss", patience=patience)
    # An improvement in the middle resets the count.
    values = [1.0] + [1.1] * (patience - 1) + [0.5] + [0.6] * (patience + 3)
    stopped_at = None
    for epoch, value in enumerate(values):
        _, stop = es.update(epoch, {"val_loss": value})
        if stop:
            stopped_at = epoch
            break
    assert stopped_at == 2 * patience  # 0.5 comes at epoch `patience`, then `patience` more without
    assert es.stopped_epoch == 2 * patience
    assert es.best == 0.5 and es.best_epoch == patience


@pytest.mark.parametrize("monitor", ["val_loss", "val_accuracy"])
def test_early_stopping_nan_never_improves(monitor: str) -> None:
    es = EarlyStopping(monitor=monitor, patience=3)
    results = _run(es, [math.nan, 0.5, math.nan, math.inf, -math.inf])
    assert [imp for imp, _ in results] == [False, True, False, False, False]
    assert results[-1] == (False, True)
    assert es.best == 0.5 and es.best_epoch == 1
    # NaN before any finite value counts as an epoch without improvement too.
    es = EarlyStopping(monitor=monitor, patience=2)
    assert _run(es, [math.nan, math.nan]) == [(False, False), (False, True)]
    assert math.isnan(es.best)


@pytest.mark.parametrize("split", range(9))
def test_early_stopping_state_round_trip_continues_identically(split: int) -> None:
    values = [1.0, 0.8, 0.85, math.nan, 0.79, 0.7, 0.75, 0.72, 0.71, 0.73, 0.74]
    config = {"monitor": "val_loss", "patience": 4, "min_delta": 0.005}
    straight = EarlyStopping(**config)
    first = _run(straight, values)
    resumed = EarlyStopping(**config)
    _run(resumed, values[:split])
    state = json.loads(json.dumps(resumed.state_dict(), allow_nan=False))  # JSON-only values
    fresh = EarlyStopping(**config)
    fresh.load_state_dict(state)
    assert fresh.state_dict() == resumed.state_dict()
    rest = _run(fresh, values[split:], start=split)
    assert rest == first[split:]
    assert fresh.state_dict() == straight.state_dict()


# ----------------------------------------------------------------------------- augmentation


def shifted(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """The image moved dy rows down and dx columns right, zeros where nothing came in."""
    h, w = image.shape
    out = np.zeros_like(image)
    for r in range(h):
        for c in range(w):
            if 0 <= r - dy < h and 0 <= c - dx < w:
                out[r, c] = image[r - dy, c - dx]
    return out


def global_random_state() -> tuple:
    """The legacy global generator's state: the thing that must not move (randomness is passed in:
    CONTRIBUTING.md, "Style")."""
    return np.random.get_state()  # noqa: NPY002


def assert_same_random_state(after: tuple, before: tuple) -> None:
    assert after[0] == before[0]
    np.testing.assert_array_equal(after[1], before[1])
    assert after[2:] == before[2:]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
@pytest.mark.parametrize("max_shift", [1, 2])
def test_shift_images_shifts_each_image_with_zero_fill(max_shift: int, dtype: type) -> None:
    h, w, n = 5, 6, 60
    X = np.random.default_rng(7).integers(1, 200, size=(n, h * w)).astype(dtype)  # no zeros inside
    X_before = X.copy()
    out = shift_images(X, (h, w), max_shift, np.random.default_rng(8))
    assert out.shape == X.shape and out.dtype == X.dtype
    np.testing.assert_array_equal(X, X_before)  # the input is left alone
    shifts = range(-max_shift, max_shift + 1)
    seen = set()
    for i in range(n):
        image, result = X[i].reshape(h, w), out[i].reshape(h, w)
        matches = [(dy, dx) for dy in shifts for dx in shifts if np.array_equal(result, shifted(image, dy, dx))]
        assert len(matches) == 1, f"image {i} is no shift of its input"
        seen.add(matches[0])
    # Drawn at random over the whole square: most of the (2k+1)² shifts occur in 60 images.
    assert len(seen) >= (2 * max_shift + 1) ** 2 - 2


def test_shift_images_uses_only_the_given_generator() -> None:
    X = np.random.default_rng(9).normal(size=(20, 16)).astype(np.float32)
    before = global_random_state()
    a = shift_images(X, (4, 4), 1, np.random.default_rng(10))
    b = shift_images(X, (4, 4), 1, np.random.default_rng(10))
    c = shift_images(X, (4, 4), 1, np.random.default_rng(11))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert_same_random_state(global_random_state(), before)
    # It draws from the generator it is given (the next draw differs from a fresh one).
    rng = np.random.default_rng(10)
    shift_images(X, (4, 4), 1, rng)
    assert rng.random() != np.random.default_rng(10).random()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_add_gaussian_noise_statistics_and_dtype(dtype: type) -> None:
    X = np.random.default_rng(12).normal(size=(400, 250)).astype(dtype) * 3 + 1
    X_before = X.copy()
    sigma = 0.1
    out = add_gaussian_noise(X, sigma, np.random.default_rng(13))
    assert out.dtype == np.dtype(dtype) and out.shape == X.shape
    np.testing.assert_array_equal(X, X_before)
    noise = out.astype(np.float64) - X.astype(np.float64)
    n = noise.size
    assert abs(noise.mean()) < 5 * sigma / math.sqrt(n)
    assert noise.std() == pytest.approx(sigma, rel=5 / math.sqrt(2 * n) + 1e-4)
    # The noise is independent per entry: features barely correlate.
    corr = np.corrcoef(noise[:, :2].T)[0, 1]
    assert abs(corr) < 5 / math.sqrt(noise.shape[0])


def test_add_gaussian_noise_uses_only_the_given_generator() -> None:
    X = np.zeros((10, 4))
    before = global_random_state()
    a = add_gaussian_noise(X, 0.5, np.random.default_rng(14))
    b = add_gaussian_noise(X, 0.5, np.random.default_rng(14))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, add_gaussian_noise(X, 0.5, np.random.default_rng(15)))
    assert_same_random_state(global_random_state(), before)
