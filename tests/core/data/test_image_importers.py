"""The idx and image_folder importers on generated files: what they read (checked against the
arrays written, scaled independently), and one clear DatasetError for every bad input."""

from __future__ import annotations

import gzip
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from core.data import IMPORTERS, LoadCancelled, load_dataset
from core.data import images as image_module
from core.data.sources import MAX_VALUES
from core.sessions.format import load_session
from core.sessions.trainer_io import restore_trainer, save_trainer
from core.spec import SpecError, parse_experiment
from core.training import Trainer

from .book_support import idx_bytes
from .support import assert_error, rng, write_idx_pair, write_image_folder

# ------------------------------------------------------------------------------------ idx


@pytest.mark.parametrize("compress", [True, False])
def test_an_idx_pair_loads_as_images_scaled_by_255(tmp_path, compress):
    images_path, labels_path, images, labels = write_idx_pair(tmp_path, n=30, shape=(6, 5), compress=compress)
    seen: list[float] = []
    data = load_dataset("idx", {}, path=images_path.name, labels_path=labels_path.name, base_dir=tmp_path,
                        rng=rng(), progress=lambda f: seen.append(f) or True)
    assert data.X.dtype == np.float32 and data.X.shape == (30, 30) and data.image_shape == (6, 5)
    np.testing.assert_array_equal(data.X, (images.reshape(30, -1) / np.float32(255)).astype(np.float32))
    assert data.X.min() >= 0 and data.X.max() <= 1
    np.testing.assert_array_equal(data.y, labels.astype(np.int64))
    assert data.class_names == ["0", "1", "2"] and data.task == "classification"
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)
    with pytest.raises(LoadCancelled):
        load_dataset("idx", {}, path=str(images_path), labels_path=str(labels_path), rng=rng(),
                     progress=lambda f: False)


def test_idx_labels_are_relabelled_in_sorted_order(tmp_path):
    images_path, labels_path, _, _ = write_idx_pair(tmp_path, n=6)
    labels_path.write_bytes(idx_bytes(np.array([7, 3, 7, 9, 3, 9], dtype=np.uint8)))
    data = IMPORTERS.get("idx")().load(images_path, labels_path=labels_path)
    assert data.class_names == ["3", "7", "9"] and list(data.y) == [1, 0, 1, 2, 0, 2]


def test_flat_idx_images_have_no_image_shape(tmp_path):
    images_path, labels_path, images, _ = write_idx_pair(tmp_path, n=12, shape=(7,))
    data = IMPORTERS.get("idx")().load(images_path, labels_path=labels_path)
    assert data.X.shape == (12, 7) and data.image_shape is None


def test_idx_errors_are_one_line_naming_the_file(tmp_path):
    images_path, labels_path, images, labels = write_idx_pair(tmp_path, n=10, shape=(4, 4))
    load = IMPORTERS.get("idx")().load
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b"\x08\x08\x08\x03" + bytes(40)))          # wrong magic
    assert_error(load, bad, labels_path=labels_path, words=[str(bad), "not an IDX file"])
    bad.write_bytes(idx_bytes(images)[:-30])                                   # truncated gzip stream
    assert_error(load, bad, labels_path=labels_path, words=[str(bad)])
    raw = tmp_path / "raw-idx3-ubyte"
    raw.write_bytes(idx_bytes(images, compress=False)[:-5])                   # truncated raw data
    assert_error(load, raw, labels_path=labels_path, words=[str(raw), "truncated"])
    raw.write_bytes(idx_bytes(images, compress=False) + b"\x00")              # data past the announced size
    assert_error(load, raw, labels_path=labels_path, words=[str(raw), "data after"])
    short = tmp_path / "short-labels.gz"
    short.write_bytes(idx_bytes(labels[:7]))                                   # mismatched counts
    assert_error(load, images_path, labels_path=short, words=[str(short), "7 labels for the 10 images"])
    assert_error(load, labels_path, labels_path=labels_path, words=["must hold byte images"])
    assert_error(load, images_path, labels_path=images_path, words=["one integer label per image"])
    floats = tmp_path / "floats.gz"
    floats.write_bytes(idx_bytes(images.astype(">f4"), type_code=0x0D))
    assert_error(load, floats, labels_path=labels_path, words=[str(floats), "byte images"])
    assert_error(load, tmp_path / "none.gz", labels_path=labels_path, words=["none.gz", "not found"])
    assert_error(load, tmp_path, labels_path=labels_path, words=[str(tmp_path), "not a file"])
    assert_error(load, images_path, labels_path=None, words=["labels file"])
    one = tmp_path / "one.gz"
    one_labels = tmp_path / "one-labels.gz"
    one.write_bytes(idx_bytes(images[:1]))
    one_labels.write_bytes(idx_bytes(labels[:1]))
    assert_error(load, one, labels_path=one_labels, words=["at least 2"])


@pytest.mark.skipif(sys.platform == "win32", reason="named pipes")
def test_idx_refuses_a_named_pipe(tmp_path):
    images_path, labels_path, _, _ = write_idx_pair(tmp_path)
    fifo = tmp_path / "pipe.gz"
    os.mkfifo(fifo)
    assert_error(IMPORTERS.get("idx")().load, fifo, labels_path=labels_path, words=[str(fifo), "not a file"])


def test_idx_refuses_a_header_beyond_the_memory_bound_before_reading(tmp_path):
    """A header announcing more than MAX_VALUES pixels is refused from its 16 bytes alone."""
    n = MAX_VALUES // (100 * 100) + 1
    header = bytes([0, 0, 8, 3]) + np.asarray([n, 100, 100], dtype=">u4").tobytes()
    huge = tmp_path / "huge-idx3-ubyte"
    huge.write_bytes(header + bytes(100))
    _, labels_path, _, _ = write_idx_pair(tmp_path)
    message = assert_error(IMPORTERS.get("idx")().load, huge, labels_path=labels_path,
                           words=[str(huge), f"{MAX_VALUES:,} values"])
    assert "truncated" not in message


def test_load_dataset_requires_the_labels_path_only_for_idx(tmp_path):
    images_path, labels_path, _, _ = write_idx_pair(tmp_path)
    assert_error(load_dataset, "idx", {}, path=str(images_path), rng=rng(), words=["labels_path: required", "'idx'"])
    assert_error(load_dataset, "npz", {}, path="x.npz", labels_path="l.gz", rng=rng(),
                 words=["labels_path: only used when source is 'idx'"])
    assert_error(load_dataset, "digits", {}, labels_path="l.gz", rng=rng(), words=["labels_path: only used"])


def test_an_idx_experiment_trains_through_the_trainer_with_paths_relative_to_its_folder(tmp_path):
    (tmp_path / "data").mkdir()
    write_idx_pair(tmp_path / "data", n=60, shape=(4, 4))
    spec = parse_experiment({"seed": 3, "data": {"source": "idx", "path": "data/images-idx3-ubyte.gz",
                                                 "labels_path": "data/labels-idx1-ubyte.gz"},
                             "model": {"layers": [{"units": 8}]}, "training": {"epochs": 2, "batch_size": 16}})
    trainer = Trainer(spec, tmp_path)
    assert trainer.dataset.image_shape == (4, 4) and trainer.dataset.n_samples == 60
    trainer.fit(1)
    assert len(trainer.history["loss"]) == 1 and np.isfinite(trainer.history["loss"][-1])
    with pytest.raises(SpecError, match="^data: .*data/data/images-idx3-ubyte.gz: file not found"):
        Trainer(spec, tmp_path / "data")       # both paths resolve against the spec's folder
    moved = parse_experiment({**spec.to_dict(), "data": {**spec.to_dict()["data"], "labels_path": "labels.gz"}})
    with pytest.raises(SpecError, match=f"^data: {tmp_path / 'labels.gz'}: file not found"):
        Trainer(moved, tmp_path)


# ------------------------------------------------------------------------------------ image folders


def _expected(pixels: np.ndarray, size: int, grayscale: bool) -> np.ndarray:
    """What the importer should give for one image, by Pillow's own resize (an independent path:
    from the array written, not from the file)."""
    from PIL import Image

    image = Image.fromarray(pixels, "RGB").convert("L" if grayscale else "RGB")
    raw = np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float64)
    if not grayscale:
        raw = raw.transpose(2, 0, 1)
    return raw.reshape(-1) / 255.0


@pytest.mark.parametrize("grayscale", [True, False])
def test_an_image_folder_loads_one_class_per_sub_folder(tmp_path, grayscale):
    written = write_image_folder(tmp_path / "photos", {"dog": 3, "cat": 4})
    (tmp_path / "photos" / "cat" / "notes.txt").write_text("not an image: skipped")
    (tmp_path / "photos" / ".thumbnails").mkdir()                 # hidden: not a class
    seen: list[float] = []
    data = load_dataset("image_folder", {"size": 6, "grayscale": grayscale}, path="photos", base_dir=tmp_path,
                        rng=rng(), progress=lambda f: seen.append(f) or True)
    channels = 1 if grayscale else 3
    assert data.X.dtype == np.float32 and data.X.shape == (7, 36 * channels)
    assert data.class_names == ["cat", "dog"] and list(data.y) == [0, 0, 0, 0, 1, 1, 1]
    assert data.image_shape == ((6, 6) if grayscale else None) and data.name == "photos"
    assert data.X.min() >= 0 and data.X.max() <= 1
    # PNG is lossless: those rows match Pillow's resize of the written pixels; JPEG (every third) is close
    rows = [(name, i) for name in ("cat", "dog") for i in range(len(written[name]))]
    for row, (name, i) in enumerate(rows):
        expected = _expected(written[name][i], 6, grayscale)
        if i % 3 != 2:
            np.testing.assert_allclose(data.X[row], expected, atol=1e-6)
        else:
            assert np.abs(data.X[row] - expected).mean() < 0.1
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) == 7
    with pytest.raises(LoadCancelled):
        load_dataset("image_folder", {"size": 6}, path=str(tmp_path / "photos"), rng=rng(), progress=lambda f: False)


def test_image_folder_errors_are_one_line_naming_what_is_wrong(tmp_path):
    load = IMPORTERS.get("image_folder")(size=4).load
    assert_error(load, tmp_path / "none", words=["none", "folder not found"])
    (tmp_path / "file.png").write_bytes(b"x")
    assert_error(load, tmp_path / "file.png", words=["not a folder"])
    one = tmp_path / "one"
    write_image_folder(one, {"only": 2})
    assert_error(load, one, words=[str(one), "1 class sub-folder", "at least 2"])
    empty = tmp_path / "empty"
    write_image_folder(empty, {"a": 2})
    (empty / "b").mkdir()
    (empty / "b" / "readme.txt").write_text("no images here")
    assert_error(load, empty, words=[str(empty / "b"), "no PNG or JPEG"])
    corrupt = tmp_path / "corrupt"
    write_image_folder(corrupt, {"a": 2, "b": 2})
    (corrupt / "b" / "zz-broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    assert_error(load, corrupt, words=[str(corrupt / "b" / "zz-broken.png"), "cannot read the image"])
    other = tmp_path / "other"
    write_image_folder(other, {"a": 2, "b": 2})
    from PIL import Image

    Image.new("RGB", (4, 4)).save(other / "a" / "gif-in-disguise.png", format="GIF")   # not PNG/JPEG inside
    assert_error(load, other, words=[str(other / "a" / "gif-in-disguise.png"), "only PNG and JPEG"])


@pytest.mark.skipif(sys.platform == "win32", reason="named pipes")
def test_image_folder_refuses_an_entry_that_is_not_a_regular_file(tmp_path):
    write_image_folder(tmp_path / "photos", {"a": 2, "b": 2})
    os.mkfifo(tmp_path / "photos" / "a" / "pipe.png")
    assert_error(IMPORTERS.get("image_folder")().load, tmp_path / "photos",
                 words=[str(tmp_path / "photos" / "a" / "pipe.png"), "not a regular file"])


def test_image_folder_refuses_too_many_values_before_decoding_any_image(tmp_path, monkeypatch):
    write_image_folder(tmp_path / "photos", {"a": 3, "b": 2})
    decoded: list[Path] = []
    monkeypatch.setattr(image_module, "read_image", lambda path, *a: decoded.append(path))
    monkeypatch.setattr(image_module, "MAX_VALUES", 5 * 16 * 16 * 3 - 1)    # one value short of 5 RGB 16×16
    assert_error(load_dataset, "image_folder", {"size": 16, "grayscale": False}, path=str(tmp_path / "photos"),
                 rng=rng(), words=["5 images of 16×16×3", f"{5 * 16 * 16 * 3:,} values", "smaller size"])
    assert decoded == []
    monkeypatch.setattr(image_module, "MAX_VALUES", 5 * 16 * 16)           # grey: exactly at the bound
    load_dataset("image_folder", {"size": 16}, path=str(tmp_path / "photos"), rng=rng())
    assert len(decoded) == 5


def test_a_missing_pillow_is_one_error_saying_what_to_install(tmp_path, monkeypatch):
    write_image_folder(tmp_path / "photos", {"a": 2, "b": 2})
    monkeypatch.setitem(sys.modules, "PIL", None)          # import PIL now raises ImportError
    assert_error(load_dataset, "image_folder", {}, path=str(tmp_path / "photos"), rng=rng(),
                 words=["Pillow", "pip install 'gradient-workbench[images]'"])


def test_image_folder_params_are_checked(tmp_path):
    with pytest.raises(ValueError, match="size: "):
        load_dataset("image_folder", {"size": 0}, path=str(tmp_path), rng=rng())
    with pytest.raises(ValueError, match="colour: unknown parameter for dataset 'image_folder'; allowed: size, "
                                         "grayscale"):
        load_dataset("image_folder", {"colour": True}, path=str(tmp_path), rng=rng())


def test_an_image_folder_experiment_trains_through_the_trainer(tmp_path):
    write_image_folder(tmp_path / "photos", {"a": 12, "b": 12, "c": 12})
    spec = parse_experiment({"seed": 1, "data": {"source": "image_folder", "path": "photos",
                                                 "params": {"size": 5}},
                             "model": {"layers": [{"units": 8}]}, "training": {"epochs": 1, "batch_size": 8}})
    trainer = Trainer(spec, tmp_path)
    assert trainer.dataset.n_features == 25 and trainer.dataset.n_classes == 3
    trainer.fit(1)
    assert len(trainer.history["loss"]) == 1 and np.isfinite(trainer.history["loss"][-1])


def test_a_session_keeps_labels_path_and_restores_an_idx_run(tmp_path):
    """The session stores the spec with labels_path; restoring rebuilds the trainer on the same data.
    Sessions written before labels_path existed still load (tests/data/session_v1.gwb)."""
    write_idx_pair(tmp_path, n=40, shape=(3, 3))
    spec = parse_experiment({"seed": 2, "data": {"source": "idx", "path": "images-idx3-ubyte.gz",
                                                 "labels_path": "labels-idx1-ubyte.gz"},
                             "model": {"layers": [{"units": 4}]}, "training": {"epochs": 1, "batch_size": 8}})
    trainer = Trainer(spec, tmp_path)
    trainer.fit(1)
    save_trainer(tmp_path / "run.gwb", trainer, {"base_dir": str(tmp_path)})
    session = load_session(tmp_path / "run.gwb")
    assert session.experiment == spec and session.experiment.data.labels_path == "labels-idx1-ubyte.gz"
    restored = restore_trainer(session)
    np.testing.assert_array_equal(restored.dataset.X, trainer.dataset.X)
    np.testing.assert_array_equal(restored.dataset.y, trainer.dataset.y)
    old = load_session(Path(__file__).parents[2] / "data" / "session_v1.gwb")
    assert old.experiment.data.labels_path is None and "labels_path" not in old.experiment.to_dict()["data"]
