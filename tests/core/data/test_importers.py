"""Tests for core/data/importers.py: the NPZ and CSV readers (their rules, errors, progress and
cancel) and the IMPORTERS registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.data import importers
from core.data.dataset import DatasetError, LoadCancelled
from core.data.importers import (
    IMPORTERS,
    FileImporter,
    FilePreview,
    labels_file_sources,
    load_csv,
    load_npz,
    read_csv_header,
    target_sources,
)
from core.data.loading import load_dataset
from core.data.sources import DATASETS

from .support import (
    GOOD_X,
    GOOD_Y,
    PointsImporter,
    assert_error,
    registered_importer,
    rng,
    write,
    write_npz,
    write_points,
)

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
    monkeypatch.setattr(importers, "CSV_BLOCK_BYTES", 2**14)
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
    monkeypatch.setattr(importers, "CSV_BLOCK_BYTES", 2**14)
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
    monkeypatch.setattr(importers, "CSV_DIAGNOSE_ROWS", 1000)
    calls.clear()
    parsed = (path.stat().st_size - 1) // 2**14 + 1   # progress calls of the whole parse

    def stop_after_the_parse(fraction: float) -> bool:
        calls.append(fraction)
        return len(calls) <= parsed + 2

    with pytest.raises(LoadCancelled):
        load_csv(path, "label", progress=stop_after_the_parse)
    assert len(calls) == parsed + 3 and calls == sorted(calls) and calls[-1] == 1.0


def test_csv_quoted_newline_across_a_block_boundary(tmp_path, monkeypatch):
    monkeypatch.setattr(importers, "CSV_BLOCK_BYTES", 64)
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
    monkeypatch.setattr(importers, "CSV_BLOCK_BYTES", 256)
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
    monkeypatch.setattr(importers, "CSV_BLOCK_BYTES", 100)
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




# ------------------------------------------------------------------------------------ the registry


def test_importers_registered_in_order_with_what_the_gui_and_the_spec_need():
    assert IMPORTERS.names() == ["npz", "csv", "idx", "image_folder"]
    assert not set(IMPORTERS.names()) & set(DATASETS.names())  # one name, one meaning in data.source
    for name in IMPORTERS:
        cls = IMPORTERS.get(name)
        assert issubclass(cls, FileImporter) and cls.name == name
        assert cls.label and cls.file_type and "\n" not in cls.summary and cls.summary
        assert cls.extensions and all(ext.startswith(".") and ext == ext.lower() for ext in cls.extensions)
    assert IMPORTERS.get("npz").extensions == (".npz",) and not IMPORTERS.get("npz").needs_target
    assert IMPORTERS.get("csv").extensions == (".csv", ".tsv", ".txt") and IMPORTERS.get("csv").needs_target
    assert IMPORTERS.get("csv").name_filter() == "CSV files (*.csv *.tsv *.txt)"
    assert IMPORTERS.get("npz").name_filter() == "NumPy archives (*.npz)"
    assert target_sources() == ["csv"]
    assert labels_file_sources() == ["idx"]
    assert [name for name in IMPORTERS if IMPORTERS.get(name).reads_folder] == ["image_folder"]
    assert IMPORTERS.get("image_folder").parameters() == {"size": 28, "grayscale": True}


def test_importer_load_is_the_reader_with_its_progress_and_cancel(tmp_path):
    csv_path = write(tmp_path / "t.csv", "a,b,t\n1,2,x\n3,4,y\n5,6,x\n")
    via_importer = IMPORTERS.get("csv")().load(csv_path, "t")
    direct = load_csv(csv_path, "t")
    np.testing.assert_array_equal(via_importer.X, direct.X)
    np.testing.assert_array_equal(via_importer.y, direct.y)
    assert via_importer.class_names == direct.class_names == ["x", "y"]
    with pytest.raises(LoadCancelled):
        IMPORTERS.get("csv")().load(csv_path, "t", progress=lambda f: False)
    npz_path = write_npz(tmp_path / "d.npz", X=GOOD_X, y=GOOD_Y)
    calls: list[float] = []
    data = IMPORTERS.get("npz")().load(npz_path, progress=lambda f: calls.append(f) or True)
    np.testing.assert_array_equal(data.X, load_npz(npz_path).X)
    assert calls and calls[-1] == 1.0
    with pytest.raises(LoadCancelled):
        IMPORTERS.get("npz")().load(npz_path, progress=lambda f: False)


def test_importer_preview_is_cheap_and_names_the_target_columns(tmp_path):
    csv_path = write(tmp_path / "t.csv", "a; b ;label\n1;2;x\n")
    assert IMPORTERS.get("csv")().preview(csv_path) == FilePreview(columns=("a", "b", "label"))
    assert_error(IMPORTERS.get("csv")().preview, write(tmp_path / "n.csv", "1,2\n"), words=["column names"])
    npz_path = write_npz(tmp_path / "d.npz", X=GOOD_X, y=GOOD_Y)
    assert IMPORTERS.get("npz")().preview(npz_path) == FilePreview(columns=())   # y is in the file
    assert_error(IMPORTERS.get("npz")().preview, tmp_path / "gone.npz", words=["gone.npz", "file not found"])


def test_a_registered_importer_is_listed_and_removed_again(tmp_path):
    with registered_importer("points", PointsImporter):
        assert IMPORTERS.names() == ["npz", "csv", "idx", "image_folder", "points"] and PointsImporter.name == "points"
        assert PointsImporter.name_filter() == "Point lists (*.pts *.points)"
        data = IMPORTERS.get("points")().load(write_points(tmp_path / "p.pts", rows=30, features=3))
        assert (data.n_samples, data.n_features, data.n_classes) == (30, 3, 3)
    assert IMPORTERS.names() == ["npz", "csv", "idx", "image_folder"]


@pytest.mark.parametrize(("content", "said"), [
    (b"x,y\n1,2\n", "it is a text file (it starts with 'x,y')"),
    (b"\x89PNG\r\n\x1a\n0000", "it is binary data of another kind (it starts with bytes 89 50 4e 47)"),
    (b"", "the file is empty"),
])
def test_an_npz_that_is_not_a_zip_is_reported_as_what_it_is(tmp_path, content, said):
    path = tmp_path / "data.npz"
    path.write_bytes(content)
    with pytest.raises(DatasetError) as caught:
        load_npz(path)
    message = str(caught.value)
    assert "not a valid .npz archive" in message and said in message, message
    assert "pickled" not in message
