"""Tests for core/datasets.py: generators, bundled sets, file import and the spec entry point."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from core.data import datasets
from core.data.datasets import (
    DATASETS,
    Dataset,
    DatasetError,
    DatasetSource,
    LoadCancelled,
    dataset_names,
    load_csv,
    load_dataset,
    load_npz,
    read_csv_header,
)

SYNTHETIC = ["spirals", "moons", "circles", "blobs", "xor"]
BUNDLED = ["digits", "iris", "wine", "breast_cancer"]
AUXILIARY = ["corrupted"]


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def assert_error(func, *args, words: list[str], **kwargs) -> str:
    """``func`` raises a one-line DatasetError containing every one of ``words``."""
    with pytest.raises(DatasetError) as info:
        func(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return message


def assert_global_state_untouched(action) -> None:
    # The legacy global state is exactly what must stay untouched, so it is read here on purpose.
    before = np.random.get_state()  # noqa: NPY002
    action()
    after = np.random.get_state()  # noqa: NPY002
    assert before[0] == after[0] and before[2:] == after[2:]
    np.testing.assert_array_equal(before[1], after[1])


# ------------------------------------------------------------------------------------ registry


def test_registry_names_exact():
    assert DATASETS.names() == SYNTHETIC + BUNDLED + AUXILIARY
    assert dataset_names() == SYNTHETIC + BUNDLED + AUXILIARY + ["npz", "csv"]


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


# ------------------------------------------------------------------------------------ npz


def test_npz_classification_round_trip(tmp_path):
    X = np.arange(12, dtype=np.float64).reshape(6, 2)
    y = np.array([3, 7, 3, 7, 7, 3])
    np.savez(tmp_path / "data.npz", X=X, y=y)
    data = load_npz(tmp_path / "data.npz")
    assert data.task == "classification" and data.n_classes == 2
    assert data.class_names == ["3", "7"]
    np.testing.assert_array_equal(data.y, [0, 1, 0, 1, 1, 0])
    assert data.y.dtype == np.int64 and data.X.dtype == np.float32
    np.testing.assert_array_equal(data.X, X)
    assert data.feature_names == ["x1", "x2"] and data.name == "data" and data.image_shape is None


def test_npz_string_and_bool_labels(tmp_path):
    X = np.ones((4, 3), dtype=np.int32)
    np.savez(tmp_path / "s.npz", X=X, y=np.array(["dog", "cat", "dog", "bird"]))
    data = load_npz(tmp_path / "s.npz")
    assert data.class_names == ["bird", "cat", "dog"]
    np.testing.assert_array_equal(data.y, [2, 1, 2, 0])
    np.savez(tmp_path / "b.npz", X=X, y=np.array([True, False, True, True]))
    assert load_npz(tmp_path / "b.npz").n_classes == 2


def test_npz_float_targets_are_regression(tmp_path):
    X = np.random.default_rng(0).standard_normal((5, 2))
    y = np.array([0.0, 1.0, 0.0, 1.0, 1.0])  # whole numbers, but float: the dtype decides
    np.savez(tmp_path / "r.npz", X=X, y=y)
    data = load_npz(tmp_path / "r.npz")
    assert data.task == "regression" and data.n_classes == 0 and data.class_names == []
    assert data.y.shape == (5, 1) and data.y.dtype == np.float32
    np.savez(tmp_path / "r2.npz", X=X, y=np.ones((5, 3), dtype=np.float32))
    two = load_npz(tmp_path / "r2.npz")
    assert two.y.shape == (5, 3) and two.n_targets == 3
    summary = two.summary()
    assert summary["n_targets"] == 3 and summary["target_mean"] == [1.0, 1.0, 1.0]


def write_npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


GOOD_X = np.ones((4, 2))
GOOD_Y = np.array([0, 1, 0, 1])


def test_npz_errors(tmp_path):
    assert_error(load_npz, tmp_path / "nope.npz", words=["nope.npz", "file not found"])
    assert_error(load_npz, tmp_path, words=["not a file"])
    (tmp_path / "text.npz").write_text("hello")
    assert_error(load_npz, tmp_path / "text.npz", words=["text.npz", "not a valid .npz", "arrays X and y"])
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 broken zip")
    assert_error(load_npz, tmp_path / "broken.npz", words=["not a valid .npz"])
    np.save(tmp_path / "single.npy", GOOD_X)
    assert_error(load_npz, tmp_path / "single.npy", words=["single.npy", ".npz archive"])
    path = write_npz(tmp_path / "noy.npz", X=GOOD_X, labels=GOOD_Y)
    assert_error(load_npz, path, words=["missing array 'y'", "X, labels"])
    path = write_npz(tmp_path / "nox.npz", y=GOOD_Y)
    assert_error(load_npz, path, words=["missing array 'X'"])
    path = write_npz(tmp_path / "obj.npz", X=np.array([[1, None]] * 4, dtype=object), y=GOOD_Y)
    assert_error(load_npz, path, words=["obj.npz", "'X'", "object array", "numeric"])
    path = write_npz(tmp_path / "objy.npz", X=GOOD_X, y=np.array([1, "a", None, 2], dtype=object))
    assert_error(load_npz, path, words=["'y'", "object array"])
    path = write_npz(tmp_path / "flat.npz", X=np.ones(4), y=GOOD_Y)
    assert_error(load_npz, path, words=["X must be 2-D", "(4,)"])
    path = write_npz(tmp_path / "cube.npz", X=np.ones((4, 2, 2)), y=GOOD_Y)
    assert_error(load_npz, path, words=["X must be 2-D", "(4, 2, 2)"])
    path = write_npz(tmp_path / "len.npz", X=GOOD_X, y=np.array([0, 1, 0]))
    assert_error(load_npz, path, words=["X has 4 rows but y has 3"])
    path = write_npz(tmp_path / "strx.npz", X=np.array([["a", "b"]] * 4), y=GOOD_Y)
    assert_error(load_npz, path, words=["X has dtype <U1", "numeric"])
    X = GOOD_X.copy()
    X[2, 1] = np.nan
    path = write_npz(tmp_path / "nan.npz", X=X, y=GOOD_Y)
    assert_error(load_npz, path, words=["nan.npz", "column 'x2'", "NaN", "finite"])
    X[2, 1] = -np.inf
    path = write_npz(tmp_path / "inf.npz", X=X, y=GOOD_Y)
    assert_error(load_npz, path, words=["column 'x2'", "infinite"])
    path = write_npz(tmp_path / "big.npz", X=np.full((4, 2), 1e300), y=GOOD_Y)
    assert_error(load_npz, path, words=["column 'x1'", "float32 range"])
    path = write_npz(tmp_path / "nany.npz", X=GOOD_X, y=np.array([0.5, np.nan, 1.0, 2.0]))
    assert_error(load_npz, path, words=["column 'y'", "NaN"])
    path = write_npz(tmp_path / "one.npz", X=GOOD_X, y=np.array([2, 2, 2, 2]))
    assert_error(load_npz, path, words=["single class (2)", "at least 2"])
    path = write_npz(tmp_path / "empty.npz", X=np.ones((0, 2)), y=np.array([], dtype=np.int64))
    assert_error(load_npz, path, words=["empty data"])
    path = write_npz(tmp_path / "nofeat.npz", X=np.ones((4, 0)), y=GOOD_Y)
    assert_error(load_npz, path, words=["empty data"])
    path = write_npz(tmp_path / "complex.npz", X=GOOD_X, y=GOOD_Y.astype(complex))
    assert_error(load_npz, path, words=["y has dtype complex128", "float regression"])
    path = write_npz(tmp_path / "y2d.npz", X=GOOD_X, y=np.ones((4, 2), dtype=np.int64))
    assert_error(load_npz, path, words=["class labels y must be 1-D"])
    path = write_npz(tmp_path / "many.npz", X=np.ones((1001, 1)), y=np.arange(1001))
    assert_error(load_npz, path, words=["1001 distinct class labels", "at most 1000"])


# ------------------------------------------------------------------------------------ csv


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path


def test_csv_integer_target_is_classification(tmp_path):
    path = write(tmp_path / "ints.csv", "a,label,b\n1.5,1,2\n3,0,4\n5,1,6e1\n")
    data = load_csv(path, "label")
    assert data.task == "classification" and data.class_names == ["0", "1"]
    np.testing.assert_array_equal(data.y, [1, 0, 1])
    assert data.feature_names == ["a", "b"] and data.name == "ints"
    np.testing.assert_array_equal(data.X, np.array([[1.5, 2], [3, 4], [5, 60]], dtype=np.float32))
    assert data.X.dtype == np.float32 and data.y.dtype == np.int64


def test_csv_integer_labels_sorted_numerically(tmp_path):
    path = write(tmp_path / "n.csv", "x,y\n0,10\n1,9\n2,-1\n3,10\n")
    data = load_csv(path, "y")
    assert data.class_names == ["-1", "9", "10"]
    np.testing.assert_array_equal(data.y, [2, 1, 0, 2])


def test_csv_decimal_target_is_regression(tmp_path):
    path = write(tmp_path / "reg.csv", "x1,x2,price\n1,2,3.0\n4,5,6.5\n7,8,1e2\n")
    data = load_csv(path, "price")
    assert data.task == "regression" and data.n_classes == 0
    assert data.y.dtype == np.float32 and data.y.shape == (3, 1)
    np.testing.assert_array_equal(data.y[:, 0], [3.0, 6.5, 100.0])


def test_csv_string_target_round_trip(tmp_path):
    rows = ["sepal,petal,species", '5.1,1.4,setosa', '7.0,4.7,"versicolor"', '6.3, 6.0 ,virginica',
            "4.9,1.4,setosa", ""]
    data = load_csv(write(tmp_path / "iris.csv", "\n".join(rows)), "species")
    assert data.class_names == ["setosa", "versicolor", "virginica"]
    np.testing.assert_array_equal(data.y, [0, 1, 2, 0])
    np.testing.assert_allclose(data.X[2], [6.3, 6.0])
    assert data.summary()["class_counts"] == [2, 1, 1]


def test_csv_round_trip_of_a_bundled_set(tmp_path):
    wine = load_dataset("wine", {}, rng=rng())
    lines = [",".join([*wine.feature_names, "cultivar"])]
    lines += [",".join([*(repr(float(v)) for v in row), wine.class_names[c]])
              for row, c in zip(wine.X, wine.y, strict=True)]
    data = load_csv(write(tmp_path / "wine.csv", "\n".join(lines) + "\n"), "cultivar")
    np.testing.assert_array_equal(data.X, wine.X)
    np.testing.assert_array_equal(data.y, wine.y)
    assert data.class_names == wine.class_names and data.feature_names == wine.feature_names


def test_csv_semicolons_bom_blank_lines_and_quoted_header(tmp_path):
    path = write(tmp_path / "eu.csv", '"a";"b c";t\n1;2;x\n\n3;4;y\n', encoding="utf-8-sig")
    data = load_csv(path, "t")
    assert data.feature_names == ["a", "b c"] and data.n_samples == 2
    assert data.class_names == ["x", "y"]


def test_csv_errors(tmp_path):
    assert_error(load_csv, tmp_path / "gone.csv", "t", words=["gone.csv", "file not found"])
    path = write(tmp_path / "ok.csv", "a,b,species\n1,2,x\n3,4,y\n")
    assert_error(load_csv, path, "label",
                 words=["ok.csv", "no column 'label'", "available columns: a, b, species"])
    path = write(tmp_path / "word.csv", "a,b,t\n1,2,x\n3,oops,y\n")
    assert_error(load_csv, path, "t", words=["word.csv", "non-numeric value 'oops'", "column 'b'", "line 3"])
    path = write(tmp_path / "blank.csv", "a,b,t\n1,,x\n3,4,y\n")
    assert_error(load_csv, path, "t", words=["empty value", "column 'b'", "line 2"])
    path = write(tmp_path / "nan.csv", "a,b,t\n1,2,x\n3,4,y\nnan,5,x\n")
    assert_error(load_csv, path, "t", words=["nan.csv", "column 'a'", "NaN"])
    path = write(tmp_path / "inf.csv", "a,b,t\n1,2,x\n3,-inf,y\n")
    assert_error(load_csv, path, "t", words=["column 'b'", "infinite"])
    path = write(tmp_path / "nant.csv", "a,t\n1,2.5\n3,nan\n")
    assert_error(load_csv, path, "t", words=["column 't'", "NaN"])
    path = write(tmp_path / "short.csv", "a,b,t\n1,2,x\n3,4,y\n5,6\n")
    assert_error(load_csv, path, "t", words=["line 4 has 2 fields", "header has 3"])
    path = write(tmp_path / "long.csv", "a,b,t\n1,2,x\n3,4,y,9\n")
    assert_error(load_csv, path, "t", words=["line 3 has 4 fields"])
    path = write(tmp_path / "notarget.csv", "a,b,t\n1,2,x\n3,4,\n")
    assert_error(load_csv, path, "t", words=["empty value in target column 't'", "line 3"])
    path = write(tmp_path / "one.csv", "a,t\n1,cat\n2,cat\n")
    assert_error(load_csv, path, "t", words=["single class (cat)", "at least 2"])
    path = write(tmp_path / "head.csv", "a,b,t\n")
    assert_error(load_csv, path, "t", words=["head.csv", "empty data", "no data rows"])
    path = write(tmp_path / "empty.csv", "")
    assert_error(load_csv, path, "t", words=["empty", "header row"])
    path = write(tmp_path / "noheader.csv", "1,2,3\n4,5,6\n")
    assert_error(load_csv, path, "3", words=["header row", "column names", "required"])
    path = write(tmp_path / "dup.csv", "a,a,t\n1,2,x\n")
    assert_error(load_csv, path, "t", words=["'a' appears twice"])
    path = write(tmp_path / "unnamed.csv", "a,,t\n1,2,x\n")
    assert_error(load_csv, path, "t", words=["column 2", "no name"])
    path = write(tmp_path / "only.csv", "t\nx\ny\n")
    assert_error(load_csv, path, "t", words=["no feature columns"])
    path = tmp_path / "latin.csv"
    path.write_bytes("a,t\n1,caf\xe9\n2,th\xe9\n".encode("latin-1"))
    assert_error(load_csv, path, "t", words=["not UTF-8"])
    lines = "\n".join(["x,t", *(f"{i},{i}" for i in range(1001))])
    path = write(tmp_path / "many.csv", lines)
    assert_error(load_csv, path, "t", words=["1001 distinct class labels", "decimal values"])


def test_read_csv_header_gives_columns_and_delimiter(tmp_path):
    assert read_csv_header(write(tmp_path / "c.csv", "a, b ,t\n1,2,x\n")) == (["a", "b", "t"], ",")
    assert read_csv_header(write(tmp_path / "s.csv", "a;b\n1;2\n")) == (["a", "b"], ";")
    assert read_csv_header(write(tmp_path / "t.csv", "a\tb\n1\t2\n")) == (["a", "b"], "\t")
    assert_error(read_csv_header, tmp_path / "gone.csv", words=["gone.csv", "file not found"])
    assert_error(read_csv_header, write(tmp_path / "n.csv", "1,2\n"), words=["column names", "required"])


def write_blocks(path: Path, rows: int, tail: str = "") -> Path:
    """A CSV of ``rows`` numeric rows with a class column, then ``tail`` (e.g. a bad last line)."""
    lines = ["x1,x2,label", *(f"{i * 0.5},{i % 7},{i % 3}" for i in range(rows))]
    return write(path, "\n".join(lines) + "\n" + tail)


def test_csv_progress_gets_increasing_fractions_of_the_file(tmp_path, monkeypatch):
    # blocks of 16 kB (the real ones are 1 MB) of a ~0.5 MB file
    monkeypatch.setattr(datasets, "CSV_BLOCK_BYTES", 2**14)
    path = write_blocks(tmp_path / "big.csv", 40_000)
    calls: list[float] = []
    data = load_csv(path, "label", progress=lambda f: calls.append(f) or True)
    assert len(calls) >= path.stat().st_size // 2**14 - 1   # once a block
    assert all(0 < a < b for a, b in zip(calls, calls[1:], strict=False)) and calls[-1] == 1.0
    plain = load_csv(path, "label")
    np.testing.assert_array_equal(data.X, plain.X)
    np.testing.assert_array_equal(data.y, plain.y)
    assert data.n_samples == 40_000
    # a reporter that returns None (not False) does not stop the load
    assert load_csv(path, "label", progress=lambda f: None).n_samples == 40_000


def test_csv_progress_returning_false_stops_before_the_rest_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "CSV_BLOCK_BYTES", 2**14)
    # the last line is bad: had the parser got that far, the load would fail with a DatasetError
    path = write_blocks(tmp_path / "big.csv", 40_000, tail="1,oops,2\n")
    assert_error(load_csv, path, "label", words=["non-numeric value 'oops'", "line 40002"])
    calls: list[float] = []

    def stop_at_third(fraction: float) -> bool:
        calls.append(fraction)
        return len(calls) < 3

    with pytest.raises(LoadCancelled, match="big.csv: loading cancelled"):
        load_csv(path, "label", progress=stop_at_third)
    assert len(calls) == 3   # no block is handed over after the stop
    assert calls[-1] < 0.2   # bytes read when it stopped: three blocks of a ~0.5 MB file
    assert not issubclass(LoadCancelled, DatasetError)   # a cancellation is not a bad file
    # the same through the spec's entry point
    with pytest.raises(LoadCancelled):
        load_dataset("csv", {}, path=str(path), target="label", rng=rng(), progress=lambda f: False)

    # A stop asked for after the parser failed, while the slow search for the bad cell runs,
    # ends that search too; the progress reported meanwhile never goes back.
    monkeypatch.setattr(datasets, "CSV_DIAGNOSE_ROWS", 1000)
    calls.clear()
    parsed = (path.stat().st_size - 1) // 2**14 + 1   # progress calls of the whole parse

    def stop_after_the_parse(fraction: float) -> bool:
        calls.append(fraction)
        return len(calls) <= parsed + 2

    with pytest.raises(LoadCancelled):
        load_csv(path, "label", progress=stop_after_the_parse)
    assert len(calls) == parsed + 3 and calls == sorted(calls) and calls[-1] == 1.0


def test_csv_quoted_newline_across_a_block_boundary(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "CSV_BLOCK_BYTES", 64)
    rows = [f'{i},"two\nlines"' if i % 2 else f"{i},one" for i in range(40)]
    data = load_csv(write(tmp_path / "q.csv", "x,t\n" + "\n".join(rows) + "\n"), "t")
    assert data.class_names == ["one", "two\nlines"] and data.n_samples == 40
    np.testing.assert_array_equal(data.y, np.arange(40) % 2)


def test_npz_progress_after_each_array_and_stop(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.ones((50, 3)), y=np.arange(50) % 2)
    calls: list[float] = []
    assert load_npz(path, progress=lambda f: calls.append(f) or True).n_samples == 50
    assert len(calls) == 2 and 0 < calls[0] < calls[1] == 1.0
    with pytest.raises(LoadCancelled):
        load_npz(path, progress=lambda f: False)


def test_npz_large_arrays_are_read_in_blocks_and_a_stop_ends_the_load_mid_array(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "CSV_BLOCK_BYTES", 256)
    X = np.arange(150, dtype=np.float64).reshape(50, 3)  # 1,200 bytes: 5 blocks
    y = np.arange(50) % 2                                 # 400 bytes: 2 blocks
    path = tmp_path / "d.npz"
    np.savez(path, X=X, y=y)
    calls: list[float] = []
    data = load_npz(path, progress=lambda f: calls.append(f) or True)
    np.testing.assert_array_equal(data.X, X.astype(np.float32))
    assert len(calls) == 7 and calls == sorted(calls) and calls[-1] == 1.0
    assert calls[0] == pytest.approx(256 / 1600)
    seen: list[float] = []
    with pytest.raises(LoadCancelled):
        load_npz(path, progress=lambda f: seen.append(f) or len(seen) < 2)
    assert len(seen) == 2 and seen[-1] < 1200 / 1600  # stopped inside X, two blocks in


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_block_reads_give_what_numpy_load_gives(tmp_path, monkeypatch, compressed):
    """Fortran order, byte order, narrow integer and string dtypes survive the block reads."""
    monkeypatch.setattr(datasets, "CSV_BLOCK_BYTES", 100)
    rng = np.random.default_rng(0)
    cases = {
        "fortran": (np.asfortranarray(rng.normal(size=(40, 3))), np.arange(40) % 3),
        "big_endian": (rng.normal(size=(40, 2)).astype(">f8"), (np.arange(40) % 2).astype(">i4")),
        "int8_strings": (rng.integers(-5, 5, size=(40, 4)).astype(np.int8),
                         np.array(["cat", "dog"] * 20)),
        "bool_labels": (rng.normal(size=(40, 2)).astype(np.float32), np.arange(40) % 2 == 0),
    }
    save = np.savez_compressed if compressed else np.savez
    for name, (X, y) in cases.items():
        path = tmp_path / f"{name}.npz"
        save(path, X=X, y=y)
        data = load_npz(path)
        np.testing.assert_array_equal(data.X, X.astype(np.float32), err_msg=name)
        labels = np.unique(y, return_inverse=True)[1]
        np.testing.assert_array_equal(data.y, labels, err_msg=name)


def test_npz_with_an_array_cut_short_is_refused(tmp_path):
    import zipfile

    path = tmp_path / "short.npz"
    np.savez(path, X=np.ones((50, 3)), y=np.arange(50) % 2)
    with zipfile.ZipFile(path) as z:
        members = {name: z.read(name) for name in z.namelist()}
    members["X.npy"] = members["X.npy"][:-100]  # the header still promises 50 × 3 values
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    assert_error(load_npz, path, words=["short.npz", "cannot read array 'X'", "100 bytes early"])


# ------------------------------------------------------------------------------------ load_dataset


def test_load_dataset_resolves_relative_paths(tmp_path):
    (tmp_path / "data").mkdir()
    write_npz(tmp_path / "data" / "set.npz", X=GOOD_X, y=GOOD_Y)
    write(tmp_path / "data" / "set.csv", "a,t\n1,x\n2,y\n")
    data = load_dataset("npz", {}, path="data/set.npz", base_dir=tmp_path, rng=rng())
    assert data.n_samples == 4
    data = load_dataset("csv", {}, path="data/set.csv", target="t", base_dir=tmp_path, rng=rng())
    assert data.class_names == ["x", "y"]
    absolute = str(tmp_path / "data" / "set.npz")
    assert load_dataset("npz", {}, path=absolute, base_dir=Path("/elsewhere"), rng=rng()).n_samples == 4
    assert_error(load_dataset, "npz", {}, path="data/missing.npz", base_dir=tmp_path, rng=rng(),
                 words=[str(tmp_path / "data" / "missing.npz"), "file not found"])


def test_load_dataset_errors(tmp_path):
    assert_error(load_dataset, "npz", {}, rng=rng(), words=["path: required", "'npz'"])
    assert_error(load_dataset, "csv", {}, path="x.csv", rng=rng(), words=["target: required", "'csv'"])
    assert_error(load_dataset, "npz", {}, path="x.npz", target="t", rng=rng(), words=["target: only used"])
    assert_error(load_dataset, "mnist", {}, rng=rng(),
                 words=["unknown dataset 'mnist'", "allowed: spirals, moons", "breast_cancer, corrupted, npz, csv"])
    assert_error(load_dataset, "moons", {}, path="x.npz", rng=rng(), words=["path: only used"])
    with pytest.raises(ValueError, match="noise: unknown parameter for dataset 'npz'; allowed: none"):
        load_dataset("npz", {"noise": 1}, path="x.npz", rng=rng())
    assert issubclass(DatasetError, ValueError)


# ------------------------------------------------------------------------------------ Dataset


def test_dataset_invariants_and_summary():
    X = np.zeros((3, 4), dtype=np.float32)
    y = np.array([0, 1, 1], dtype=np.int64)
    data = Dataset(X=X, y=y, task="classification", n_classes=2, feature_names=list("abcd"),
                   class_names=["no", "yes"], image_shape=(2, 2), name="toy")
    assert data.n_samples == 3 and data.n_features == 4 and data.n_targets == 0
    assert data.summary() == {
        "name": "toy", "task": "classification", "shape": [3, 4], "n_samples": 3, "n_features": 4,
        "image_shape": [2, 2], "n_classes": 2, "classes": ["no", "yes"], "class_counts": [1, 2],
    }
    assert "toy" in repr(data)
    common = dict(task="classification", n_classes=2, feature_names=list("abcd"), class_names=["no", "yes"],
                  image_shape=None, name="toy")
    with pytest.raises(ValueError, match="X: must be a 2-D float32 array"):
        Dataset(X=X.astype(np.float64), y=y, **common)
    with pytest.raises(ValueError, match="classification labels must be 1-D int64"):
        Dataset(X=X, y=y.astype(np.int32), **common)
    with pytest.raises(ValueError, match="y: must be an array with 3 rows"):
        Dataset(X=X, y=y[:2], **common)
    with pytest.raises(ValueError, match="image_shape"):
        Dataset(X=X, y=y, **{**common, "image_shape": (3, 3)})
    with pytest.raises(ValueError, match="task"):
        Dataset(X=X, y=y, **{**common, "task": "ranking"})


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
    ({"base": "mnist"}, "base: must be one of"),
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
