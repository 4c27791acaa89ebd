"""Initializers: Table 11-1 variances, sample statistics, bounds, dtypes, seeding, config."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from core.engine import initializers
from core.engine.initializers import INITIALIZERS, Initializer, get_initializer

NAMES = INITIALIZERS.names()
NORMAL = ["random_normal", "glorot_normal", "he_normal", "lecun_normal"]
UNIFORM = ["random_uniform", "glorot_uniform", "he_uniform", "lecun_uniform"]

# Table 11-1 (and the plain distributions), written out independently of the module.
TABLE_11_1 = {
    "zeros": lambda fan_in, fan_out: 0.0,
    "random_normal": lambda fan_in, fan_out: 1.0,
    "random_uniform": lambda fan_in, fan_out: 0.1**2 / 12,
    "glorot_normal": lambda fan_in, fan_out: 1 / ((fan_in + fan_out) / 2),
    "glorot_uniform": lambda fan_in, fan_out: 1 / ((fan_in + fan_out) / 2),
    "he_normal": lambda fan_in, fan_out: 2 / fan_in,
    "he_uniform": lambda fan_in, fan_out: 2 / fan_in,
    "lecun_normal": lambda fan_in, fan_out: 1 / fan_in,
    "lecun_uniform": lambda fan_in, fan_out: 1 / fan_in,
}
SHAPE = (400, 600)


def test_every_entry_is_covered() -> None:
    assert set(TABLE_11_1) == set(NAMES)
    assert set(NORMAL) | set(UNIFORM) | {"zeros"} == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_registered_class_is_an_initializer_with_a_tooltip(name: str) -> None:
    init = get_initializer(name)
    assert isinstance(init, Initializer)
    assert init.name == name and init.family == "initializer"
    assert isinstance(init.summary, str) and len(init.summary) > 20 and "\n" not in init.summary


@pytest.mark.parametrize("fans", [(400, 600), (3, 7), (784, 10)])
@pytest.mark.parametrize("name", NAMES)
def test_variance_follows_table_11_1(name: str, fans: tuple[int, int]) -> None:
    assert get_initializer(name).variance(*fans) == pytest.approx(TABLE_11_1[name](*fans), rel=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_sample_statistics_match_the_target_variance(name: str) -> None:
    init = get_initializer(name)
    w = init(SHAPE, np.random.default_rng(42)).astype(np.float64)
    target = TABLE_11_1[name](*SHAPE)
    assert w.shape == SHAPE
    if target == 0.0:
        assert not w.any()
        return
    assert w.var() == pytest.approx(target, rel=0.03)
    assert abs(w.mean()) < 5 * math.sqrt(target / w.size)


@pytest.mark.parametrize("name", [n for n in UNIFORM if n != "random_uniform"])
def test_uniform_variants_stay_within_r(name: str) -> None:
    r = math.sqrt(3 * TABLE_11_1[name](*SHAPE))
    w = get_initializer(name)(SHAPE, np.random.default_rng(1))
    assert np.abs(w).max() <= np.float32(r)
    assert np.abs(w).max() > 0.99 * r  # and fill the whole interval


def test_random_uniform_respects_its_bounds() -> None:
    init = get_initializer({"name": "random_uniform", "minval": 0.5, "maxval": 2.0})
    w = init(SHAPE, np.random.default_rng(2))
    assert w.min() >= 0.5 and w.max() <= 2.0
    assert w.min() < 0.51 and w.max() > 1.99


@pytest.mark.parametrize("name", [n for n in NORMAL if n != "random_normal"])
def test_normal_variants_are_not_truncated(name: str) -> None:
    # A plain normal puts 4.55 % of its mass beyond 2σ; Keras's truncated normal puts none.
    w = get_initializer(name)(SHAPE, np.random.default_rng(3))
    sigma = math.sqrt(TABLE_11_1[name](*SHAPE))
    assert 0.040 < np.mean(np.abs(w) > 2 * sigma) < 0.051


def test_random_normal_mean_and_stddev() -> None:
    init = get_initializer({"name": "random_normal", "mean": 3.0, "stddev": 0.5})
    w = init(SHAPE, np.random.default_rng(4)).astype(np.float64)
    assert w.mean() == pytest.approx(3.0, abs=0.01)
    assert w.std() == pytest.approx(0.5, rel=0.02)
    assert init.variance(*SHAPE) == 0.25


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_dtype(name: str, dtype: type) -> None:
    w = get_initializer(name)((5, 7), np.random.default_rng(0), dtype)
    assert w.dtype == dtype and w.shape == (5, 7)


def test_default_dtype_is_float32() -> None:
    assert get_initializer("he_normal")((5, 7), np.random.default_rng(0)).dtype == np.float32


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_weights_different_seed_different(name: str) -> None:
    init = get_initializer(name)
    a = init((20, 30), np.random.default_rng(7))
    np.testing.assert_array_equal(a, init((20, 30), np.random.default_rng(7)))
    if name != "zeros":
        assert not np.array_equal(a, init((20, 30), np.random.default_rng(8)))


@pytest.mark.parametrize("name", NAMES)
def test_global_random_state_is_untouched(name: str) -> None:
    # Reading the legacy global state is the point here: it must not move.
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    get_initializer(name)((20, 30), np.random.default_rng(0))
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip_and_repr(name: str) -> None:
    init = get_initializer(name)
    config = init.get_config()
    assert config["name"] == name
    assert json.loads(json.dumps(config)) == config
    assert get_initializer(config) == init
    assert type(init).from_config(config) == init
    assert eval(repr(init), vars(initializers)) == init


def test_defaults() -> None:
    assert get_initializer("random_normal").get_config() == {"name": "random_normal",
                                                             "mean": 0.0, "stddev": 1.0}
    assert get_initializer("random_uniform").get_config() == {"name": "random_uniform",
                                                              "minval": -0.05, "maxval": 0.05}
    assert get_initializer("he_normal").get_config() == {"name": "he_normal"}


@pytest.mark.parametrize("bad", [0, -1, float("inf"), True, "1"])
def test_bad_stddev_is_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match=r"^stddev: must be a positive number, got "):
        get_initializer({"name": "random_normal", "stddev": bad})


@pytest.mark.parametrize(("minval", "maxval"), [(0.1, 0.1), (0.2, -0.2)])
def test_minval_not_below_maxval_is_rejected(minval: float, maxval: float) -> None:
    with pytest.raises(ValueError, match=r"^maxval: must be greater than minval"):
        get_initializer({"name": "random_uniform", "minval": minval, "maxval": maxval})


def test_bad_specs_are_rejected_clearly() -> None:
    with pytest.raises(KeyError, match=r"unknown initializer 'he'; allowed: zeros, "):
        get_initializer("he")
    with pytest.raises(KeyError, match="unknown initializer 'xavier'"):
        get_initializer({"name": "xavier"})
    with pytest.raises(ValueError, match=r"^mean: unknown parameter for initializer 'he_normal'"):
        get_initializer({"name": "he_normal", "mean": 0.0})
    with pytest.raises(ValueError, match=r"^scale: unknown parameter .* allowed: mean, stddev"):
        get_initializer({"name": "random_normal", "scale": 2.0})
    with pytest.raises(ValueError, match=r"^name: must be one of zeros, "):
        get_initializer({"stddev": 1.0})
    with pytest.raises(ValueError, match="must be an initializer name"):
        get_initializer(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("shape", [(3,), (0, 5), (5, -1), (2, 3, 4), (2.0, 3)])
def test_bad_shape_is_rejected(shape: tuple) -> None:
    with pytest.raises(ValueError, match=r"^shape: must be"):
        get_initializer("glorot_uniform")(shape, np.random.default_rng(0))


def test_bad_dtype_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"^dtype: must be float32 or float64, got int32"):
        get_initializer("he_normal")((2, 3), np.random.default_rng(0), np.int32)
