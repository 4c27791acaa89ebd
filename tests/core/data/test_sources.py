"""Tests for core/data/sources.py: the registered generators, the bundled sets and the corrupted task."""

from __future__ import annotations

import time

import numpy as np
import pytest

from core.data.loading import load_dataset
from core.data.sources import DATASETS, DatasetSource

from .support import AUXILIARY, BOOK, BUNDLED, SYNTHETIC, assert_global_state_untouched, rng

# ------------------------------------------------------------------------------------ registry


def test_registry_names_exact():
    assert DATASETS.names() == SYNTHETIC + BUNDLED + AUXILIARY + BOOK


@pytest.mark.parametrize("name", SYNTHETIC + BUNDLED)
def test_source_metadata_and_config_round_trip(name):
    cls = DATASETS.get(name)
    assert issubclass(cls, DatasetSource)
    assert cls.family == "dataset" and cls.name == name
    assert cls.kind == ("synthetic" if name in SYNTHETIC else "bundled")
    assert isinstance(cls.summary, str) and cls.summary and "\n" not in cls.summary
    source = cls()
    config = source.get_config()
    assert config["name"] == name
    assert cls.from_config(config) == source
    assert repr(source).startswith(cls.__name__ + "(")


# ------------------------------------------------------------------------------------ generators


@pytest.mark.parametrize("name", SYNTHETIC)
def test_generator_shapes_dtypes_balance(name):
    data = load_dataset(name, {"n_samples": 301}, rng=rng())
    k = data.n_classes
    assert data.X.shape == (301, 2) and data.X.dtype == np.float32
    assert data.y.shape == (301,) and data.y.dtype == np.int64
    assert data.task == "classification" and k == (3 if name == "blobs" else 2)
    assert len(data.class_names) == k and data.feature_names == ["x1", "x2"]
    assert data.image_shape is None and data.name == name
    assert np.isfinite(data.X).all()
    counts = np.bincount(data.y, minlength=k)
    assert len(counts) == k and counts.max() - counts.min() <= 1
    # shuffled: the classes do not come in blocks
    assert (np.diff(data.y) != 0).sum() > 20


@pytest.mark.parametrize("name", SYNTHETIC)
def test_generator_is_reproducible_and_seed_dependent(name):
    a = load_dataset(name, {}, rng=rng(1))
    b = load_dataset(name, {}, rng=rng(1))
    c = load_dataset(name, {}, rng=rng(2))
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)


@pytest.mark.parametrize("name", SYNTHETIC + ["digits"])
def test_global_random_state_untouched(name):
    np.random.seed(123)  # noqa: NPY002
    assert_global_state_untouched(lambda: load_dataset(name, {}, rng=rng()))


@pytest.mark.parametrize("name", ["spirals", "blobs"])
def test_many_classes(name):
    data = load_dataset(name, {"n_classes": 7, "n_samples": 700}, rng=rng())
    assert data.n_classes == 7
    assert (np.bincount(data.y) == 100).all()


def test_blobs_in_more_dimensions():
    data = load_dataset("blobs", {"n_features": 5, "n_samples": 90}, rng=rng())
    assert data.X.shape == (90, 5) and data.X.dtype == np.float32
    assert data.feature_names == ["x1", "x2", "x3", "x4", "x5"]


def test_generators_have_expected_geometry():
    circles = load_dataset("circles", {"noise": 0.0, "factor": 0.3}, rng=rng())
    radius = np.hypot(circles.X[:, 0], circles.X[:, 1])
    np.testing.assert_allclose(radius[circles.y == 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(radius[circles.y == 1], 0.3, atol=1e-6)
    xor = load_dataset("xor", {"noise": 0.0}, rng=rng())
    same_sign = (xor.X[:, 0] * xor.X[:, 1]) > 0
    np.testing.assert_array_equal(same_sign, xor.y == 0)
    spirals = load_dataset("spirals", {"noise": 0.0}, rng=rng())
    assert np.hypot(spirals.X[:, 0], spirals.X[:, 1]).max() <= 1.0 + 1e-6


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("spirals", {"n_samples": 0}, "n_samples: must be a positive integer, got 0"),
        ("moons", {"n_samples": -5}, "n_samples: must be a positive integer, got -5"),
        ("circles", {"n_samples": 10.0}, "n_samples: must be an integer, got 10.0"),
        ("xor", {"n_samples": True}, "n_samples: must be an integer, got True"),
        ("spirals", {"n_classes": 1}, "n_classes: must be an integer >= 2, got 1"),
        ("blobs", {"n_classes": 21}, "n_classes: must be an integer <= 20, got 21"),
        ("blobs", {"n_samples": 2, "n_classes": 3}, "n_samples: must be >= n_classes (3), got 2"),
        ("moons", {"noise": -0.1}, "noise: must be a non-negative number, got -0.1"),
        ("xor", {"noise": float("nan")}, "noise: must be a non-negative number"),
        ("circles", {"factor": 1.0}, "factor: must be < 1, got 1.0"),
        ("spirals", {"turns": 0}, "turns: must be a positive number, got 0"),
        ("blobs", {"cluster_std": 0}, "cluster_std: must be a positive number, got 0"),
        ("blobs", {"n_features": 0}, "n_features: must be a positive integer, got 0"),
        ("blobs", {"n_samples": 1_000_000, "n_features": 100}, "n_samples × n_features must be <="),
    ],
)
def test_generator_argument_errors(name, params, message):
    with pytest.raises(ValueError) as info:
        load_dataset(name, params, rng=rng())
    assert message in str(info.value)


@pytest.mark.parametrize("name", SYNTHETIC)
def test_absurd_sizes_refused_before_allocating(name):
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"n_samples: must be an integer <= 1000000, got 1000000000000"):
        load_dataset(name, {"n_samples": 10**12}, rng=rng())
    assert time.perf_counter() - start < 0.5


def test_unknown_parameter_names_allowed_ones():
    with pytest.raises(ValueError) as info:
        load_dataset("moons", {"n_sample": 10}, rng=rng())
    assert str(info.value) == ("n_sample: unknown parameter for dataset 'moons'; allowed: n_samples, noise")
    with pytest.raises(ValueError, match="allowed: classes"):
        load_dataset("iris", {"noise": 0.1}, rng=rng())


# ------------------------------------------------------------------------------------ bundled


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_sets_load(name):
    from sklearn import datasets as skdata

    data = load_dataset(name, {}, rng=rng())
    bunch = getattr(skdata, f"load_{name}")()
    assert data.X.dtype == np.float32 and data.y.dtype == np.int64
    assert data.X.shape == bunch.data.shape
    np.testing.assert_array_equal(data.y, bunch.target)
    assert data.class_names == [str(c) for c in bunch.target_names]
    assert data.feature_names == list(bunch.feature_names)
    assert data.n_classes == len(bunch.target_names) and data.task == "classification"
    assert data.summary()["class_counts"] == np.bincount(bunch.target).tolist()


def test_digits_image_shape_and_transfer_split():
    full = load_dataset("digits", {}, rng=rng())
    assert full.image_shape == (8, 8) and full.n_features == 64
    assert full.X.min() == 0 and full.X.max() == 16
    low = load_dataset("digits", {"classes": [0, 1, 2, 3, 4]}, rng=rng())
    high = load_dataset("digits", {"classes": [5, 6, 7, 8, 9]}, rng=rng())
    assert low.n_classes == 5 and sorted(set(low.y.tolist())) == [0, 1, 2, 3, 4]
    assert high.n_classes == 5 and sorted(set(high.y.tolist())) == [0, 1, 2, 3, 4]
    assert high.class_names == ["5", "6", "7", "8", "9"]
    assert low.n_samples + high.n_samples == full.n_samples
    np.testing.assert_array_equal(high.X, full.X[full.y >= 5])
    np.testing.assert_array_equal(high.y, full.y[full.y >= 5] - 5)
    assert high.image_shape == (8, 8)


def test_bundled_classes_keep_listed_order_and_accept_names():
    data = load_dataset("iris", {"classes": ["virginica", 0]}, rng=rng())
    assert data.class_names == ["virginica", "setosa"]
    assert np.bincount(data.y).tolist() == [50, 50]
    np.testing.assert_array_equal(data.X[data.y == 1][:3], data.X[:3])  # setosa rows come first in iris
    digits = load_dataset("digits", {"classes": [9, "5"]}, rng=rng())
    assert digits.class_names == ["9", "5"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"classes": [3]}, "classes: must list at least 2 classes, got [3]"),
        ({"classes": [1, 1]}, "classes: must not repeat a class"),
        ({"classes": [0, 10]}, "classes: unknown class 10; allowed: 0..9"),
        ({"classes": [0, True]}, "classes: unknown class True"),
        ({"classes": "0-4"}, "classes: must be null or a list of classes"),
    ],
)
def test_bundled_classes_errors(params, message):
    with pytest.raises(ValueError) as info:
        load_dataset("digits", params, rng=rng())
    assert message in str(info.value)


def test_bundled_unknown_class_name_lists_names():
    with pytest.raises(ValueError, match="allowed: 0..2 or 'setosa', 'versicolor', 'virginica'"):
        load_dataset("iris", {"classes": ["rose", "setosa"]}, rng=rng())


# ------------------------------------------------------------------------------------ real vs corrupted


def test_corrupted_metadata_and_config_round_trip():
    cls = DATASETS.get("corrupted")
    assert cls.kind == "auxiliary" and "\n" not in cls.summary
    source = cls(base="moons", base_params={"n_samples": 50}, corruption="noise", fraction=0.5, stddev=0.3)
    config = source.get_config()
    assert config == {"name": "corrupted", "base": "moons", "base_params": {"n_samples": 50}, "corruption": "noise",
                      "fraction": 0.5, "stddev": 0.3}
    assert cls.from_config(config) == source


def test_swap_corruption_keeps_each_feature_s_values_and_breaks_rows():
    base = load_dataset("moons", {"n_samples": 400}, rng=rng(3))
    data = load_dataset("corrupted", {"base": "moons", "base_params": {"n_samples": 400}, "fraction": 0.5},
                        rng=rng(3))
    assert data.X.shape == (800, 2) and data.class_names == ["corrupted", "real"]
    assert np.bincount(data.y).tolist() == [400, 400]
    real, fake = data.X[data.y == 1], data.X[data.y == 0]
    # the real rows are the base rows (labels dropped), in another order
    np.testing.assert_array_equal(np.sort(real, axis=0), np.sort(base.X, axis=0))
    # every corrupted value is a value of the same feature somewhere in the base data ...
    for j in range(2):
        assert np.isin(fake[:, j], base.X[:, j]).all()
    # ... but the rows are new: none of them is a real row (continuous features never collide)
    real_rows = {tuple(r) for r in base.X}
    assert not any(tuple(r) in real_rows for r in fake)
    again = load_dataset("corrupted", {"base": "moons", "base_params": {"n_samples": 400}, "fraction": 0.5},
                         rng=rng(3))
    np.testing.assert_array_equal(again.X, data.X)


def test_noise_corruption_touches_about_the_fraction_of_features():
    data = load_dataset("corrupted", {"base": "digits", "corruption": "noise", "fraction": 0.25, "stddev": 2.0},
                        rng=rng(1))
    assert data.X.shape == (2 * 1797, 64) and data.image_shape == (8, 8) and data.name == "corrupted(digits)"
    base = load_dataset("digits", {}, rng=rng(1))
    real = np.sort(data.X[data.y == 1].view(np.dtype((np.void, 64 * 4))).ravel())
    fake = data.X[data.y == 0]
    changed = ~np.isin(fake.view(np.dtype((np.void, 64 * 4))).ravel(), real)
    assert changed.all()
    # rows are shuffled, so compare value statistics: about a quarter of the pixels moved
    moved = 1.0 - np.isin(fake, np.arange(17)).mean()  # digits pixels are integers 0..16
    assert 0.2 < moved < 0.3
    assert np.sort(data.X[data.y == 1], axis=0).tolist() == np.sort(base.X, axis=0).tolist()


@pytest.mark.parametrize(("params", "message"), [
    ({"base": "corrupted"}, "base: must be one of spirals"),
    ({"base": "imagenet"}, "base: must be one of"),
    ({"base_params": {"classes": [11]}}, "base_params: classes: unknown class 11"),
    ({"base_params": [1]}, "base_params: must be null or an object"),
    ({"corruption": "blur"}, "corruption: must be one of"),
    ({"fraction": 0.0}, "fraction: must be > 0"),
    ({"fraction": 1.5}, "fraction: must be <= 1"),
    ({"stddev": -1}, "stddev: must be a positive number"),
])
def test_corrupted_parameter_errors(params, message):
    with pytest.raises(ValueError, match=message):
        load_dataset("corrupted", params, rng=rng())


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_source_documents_its_hyperparameters(name):
    cls = DATASETS.get(name)
    for key in cls.parameters():
        documented = cls.hyperparameter(key)
        assert documented is not None, f"dataset {name!r}: no help for {key!r}; add it to its hyperparameters"
        assert documented.label.strip() and documented.help.strip() and documented.range.strip(), key
    assert not set(cls.__dict__.get("hyperparameters", {})) - set(cls.parameters())

