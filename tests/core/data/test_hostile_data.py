"""Data files that are too large, not files at all, or unreadable: refused with a DatasetError
naming the numbers, before anything large is allocated."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

import core.data.dataset as dataset_module
from core.data import DatasetError, load_csv, load_dataset, load_npz

from ..sessions.hostile import npy_header, run_cli, stored, zip_bytes


def npz_claiming(shape: tuple[int, ...]) -> bytes:
    """An .npz whose X header claims ``shape`` (float64) over a few bytes of data."""
    y = io.BytesIO()
    np.save(y, np.zeros(4, dtype=np.int64))
    return zip_bytes([stored(npy_header(shape) + bytes(64), "X.npy"), stored(y.getvalue(), "y.npy")])


@pytest.mark.parametrize(("shape", "numbers"), [((100_000_000, 2), "100,000,000 rows of X × 2 columns"),
                                                ((500_000, 1_000), "500,000 rows of X × 1,000 columns"),
                                                ((60_000_000,), "60,000,000 rows of X × 1 columns")])
def test_an_npz_too_large_to_load_is_refused_from_its_header(tmp_path, shape, numbers):
    path = tmp_path / "big.npz"
    path.write_bytes(npz_claiming(shape))
    with pytest.raises(DatasetError, match="too much data") as info:
        load_npz(path)
    assert numbers in str(info.value) and "at most 50,000,000 values (rows × columns)" in str(info.value)


def test_an_npz_claiming_gigabytes_is_refused_in_a_capped_child(tmp_path):
    """Before the limit the loader allocated the header's 1.6 GB at once (a MemoryError here)."""
    (tmp_path / "big.npz").write_bytes(npz_claiming((1_000_000, 200)))
    spec = {"data": {"source": "npz", "path": "big.npz"}, "model": {"layers": [{"units": 4}]}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    outcome = run_cli("train", str(tmp_path / "spec.json"), "--out", str(tmp_path / "o.gwb"), memory_mb=700)
    assert outcome.rc == 2 and "too much data" in outcome.error_line
    assert outcome.peak_mb < 300, outcome


def test_a_wide_input_layer_counts_against_the_parameter_limit(tmp_path):
    """40 × 30,000 zeros (a 2 KB file) into 65,536 units: 2 billion weights, refused before any exists."""
    buf = io.BytesIO()
    np.savez_compressed(buf, X=np.zeros((40, 30_000), np.float32), y=np.arange(40) % 2)
    (tmp_path / "wide.npz").write_bytes(buf.getvalue())
    spec = {"data": {"source": "npz", "path": "wide.npz"}, "model": {"layers": [{"units": 65_536}]},
            "training": {"epochs": 1}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    outcome = run_cli("train", str(tmp_path / "spec.json"), "--out", str(tmp_path / "o.gwb"), "--no-autosave",
                      memory_mb=700)
    line = outcome.error_line
    assert outcome.rc == 2 and line.startswith("error: model.layers: the network would have 1,966,"), line
    assert "30,000 input features × 65,536 units" in line and "at most 20,000,000" in line
    assert outcome.peak_mb < 400, outcome


def test_a_csv_with_more_values_than_allowed_is_refused_while_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(dataset_module, "MAX_VALUES", 3_000)
    path = tmp_path / "rows.csv"
    path.write_text("a,b,y\n" + "1,2,0\n2,3,1\n" * 600)
    with pytest.raises(DatasetError, match=r"rows \(at least\) × 3 columns is too much data"):
        load_csv(path, "y")


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="Linux only")
def test_an_unreadable_csv_is_a_dataset_error_not_an_oserror():
    with pytest.raises(DatasetError, match="cannot be read"):
        load_dataset("csv", {}, path="/proc/self/mem", target="y", rng=np.random.default_rng(0))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_as_data_is_named_for_what_it_is(tmp_path):
    fifo = tmp_path / "data.csv"
    os.mkfifo(fifo)
    with pytest.raises(DatasetError, match=r"not a file \(it is a named pipe \(FIFO\)\)"):
        load_csv(fifo, "y")


def test_whole_number_labels_beyond_int64_stay_classes(tmp_path):
    path = tmp_path / "ids.csv"
    big = 2**64
    path.write_text("x,y\n" + "".join(f"{i},{big + i % 3}\n" for i in range(12)) + "0,5\n")
    data = load_csv(path, "y")
    assert data.task == "classification"
    assert data.class_names == ["5", str(big), str(big + 1), str(big + 2)]  # by value, not as text
    assert list(data.y[:4]) == [1, 2, 3, 1]
