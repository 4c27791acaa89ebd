"""Tests for core/data/loading.py: the spec's entry point, ``load_dataset``, and ``dataset_names``."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.data.dataset import DatasetError
from core.data.loading import dataset_names, load_dataset

from .support import AUXILIARY, BUNDLED, GOOD_X, GOOD_Y, SYNTHETIC, assert_error, rng, write, write_npz


def test_dataset_names_are_the_sources_then_the_importers():
    assert dataset_names() == SYNTHETIC + BUNDLED + AUXILIARY + ["npz", "csv"]



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


