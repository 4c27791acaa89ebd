"""Tests for core/data/loading.py: the spec's entry point, ``load_dataset``, and ``dataset_names``."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.data.dataset import DatasetError
from core.data.loading import dataset_names, load_dataset

from .support import (
    AUXILIARY,
    BOOK,
    BUNDLED,
    GOOD_X,
    GOOD_Y,
    SYNTHETIC,
    LabelledPointsImporter,
    PointsImporter,
    assert_error,
    registered_importer,
    rng,
    write,
    write_npz,
    write_points,
)


def test_dataset_names_are_the_sources_then_the_importers():
    assert dataset_names() == SYNTHETIC + BUNDLED + AUXILIARY + BOOK + ["npz", "csv", "idx", "image_folder"]



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
    assert_error(load_dataset, "imagenet", {}, rng=rng(),
                 words=["unknown dataset 'imagenet'", "allowed: spirals, moons",
                        "breast_cancer, corrupted, fashion_mnist, mnist, cifar10, npz, csv, idx, image_folder"])
    assert_error(load_dataset, "moons", {}, path="x.npz", rng=rng(), words=["path: only used"])
    with pytest.raises(ValueError, match="noise: unknown parameter for dataset 'npz'; allowed: none"):
        load_dataset("npz", {"noise": 1}, path="x.npz", rng=rng())
    assert issubclass(DatasetError, ValueError)




def test_a_registered_importer_is_a_data_source(tmp_path):
    """An importer registered like NPZ and CSV is listed, resolved and loaded by load_dataset."""
    (tmp_path / "data").mkdir()
    write_points(tmp_path / "data" / "p.pts", rows=12, features=2)
    assert_error(load_dataset, "points", {}, path="data/p.pts", base_dir=tmp_path, rng=rng(),
                 words=["unknown dataset 'points'",
                        "breast_cancer, corrupted, fashion_mnist, mnist, cifar10, npz, csv, idx, image_folder"])
    with registered_importer("points", PointsImporter):
        assert dataset_names() == SYNTHETIC + BUNDLED + AUXILIARY + BOOK + ["npz", "csv", "idx", "image_folder",
                                                                            "points"]
        calls: list[float] = []
        data = load_dataset("points", {}, path="data/p.pts", base_dir=tmp_path, rng=rng(),
                            progress=lambda f: calls.append(f) or True)
        assert (data.n_samples, data.n_features, data.class_names) == (12, 2, ["0", "1", "2"])
        assert PointsImporter.loads == [tmp_path / "data" / "p.pts"] and calls == [1.0]
        assert_error(load_dataset, "points", {}, path="data/p.pts", target="t", base_dir=tmp_path, rng=rng(),
                     words=["target: only used when source is 'csv'", "'points' file holds its own targets"])
        assert_error(load_dataset, "points", {}, rng=rng(), words=["path: required when source is 'points'"])
        assert_error(load_dataset, "moons", {}, path="x.pts", rng=rng(),
                     words=["path: only used when source is 'npz' or 'csv' or 'idx' or 'image_folder' or 'points', "
                            "not 'moons'"])
    with registered_importer("labelled", LabelledPointsImporter):
        write_points(tmp_path / "l.lpts", rows=9, features=2, header="a b label")
        assert_error(load_dataset, "labelled", {}, path=str(tmp_path / "l.lpts"), rng=rng(),
                     words=["target: required when source is 'labelled'"])
        data = load_dataset("labelled", {}, path=str(tmp_path / "l.lpts"), target="label", rng=rng())
        assert data.feature_names == ["a", "b"] and data.n_classes == 3
        assert_error(load_dataset, "npz", {}, path="x.npz", target="t", rng=rng(),
                     words=["target: only used when source is 'csv' or 'labelled'"])
    assert "points" not in dataset_names() and "labelled" not in dataset_names()
