"""The book's data sets: downloading (``core.data.download``), their formats
(``core.data.formats``) and the registered sources (``core.data.book``), all against files
generated here and served from 127.0.0.1."""

import gzip
import socket

import numpy as np
import pytest

from core.data import DatasetError, LoadCancelled, book, load_dataset
from core.data.download import CACHE_VARIABLE, MIRROR_VARIABLE, fetch
from core.data.formats import read_cifar10, read_idx, read_idx_pair
from core.spec import SpecError, parse_experiment
from core.training import Trainer

from .book_support import cifar_like, idx_bytes, mnist_like, remote_files, serve


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_VARIABLE, str(folder))
    monkeypatch.delenv(MIRROR_VARIABLE, raising=False)
    return folder / "datasets"


@pytest.fixture
def fashion(monkeypatch):
    files, arrays = mnist_like(50, 20)
    monkeypatch.setattr(book.FashionMNIST, "files", remote_files(files))
    return files, arrays


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- formats


def test_idx_round_trip_gzipped_or_not(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for compress in (True, False):
        path = tmp_path / f"a{compress}.idx"
        path.write_bytes(idx_bytes(a, compress=compress))
        assert np.array_equal(read_idx(path), a)
    b = np.linspace(-1, 1, 6).astype(np.float32).reshape(2, 3)
    (tmp_path / "f.idx").write_bytes(idx_bytes(b, type_code=0x0D))
    got = read_idx(tmp_path / "f.idx")
    assert got.dtype == np.float32 and np.array_equal(got, b)


@pytest.mark.parametrize("damage, message", [
    (lambda raw: b"\x01\x00" + raw[2:], "not an IDX file"),
    (lambda raw: raw[:2] + b"\x42" + raw[3:], "not an IDX file"),
    (lambda raw: raw[:6], "truncated IDX header"),
    (lambda raw: raw[:-5], "truncated"),
    (lambda raw: raw + b"\x00", "has data after"),
    (lambda raw: raw[:4] + np.array([2**31, 2**31, 8], ">u4").tobytes() + raw[16:], "more than"),
])
def test_a_damaged_idx_file_is_one_clear_error(tmp_path, damage, message):
    raw = idx_bytes(np.zeros((4, 5, 6), np.uint8), compress=False)
    path = tmp_path / "bad.idx"
    path.write_bytes(damage(raw))
    with pytest.raises(DatasetError, match=message):
        read_idx(path)


def test_a_truncated_gzip_is_one_clear_error(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(idx_bytes(np.ones((50, 28, 28), np.uint8))[:-40])
    with pytest.raises(DatasetError, match="damaged compressed data|truncated"):
        read_idx(path)


def test_idx_images_and_labels_must_agree(tmp_path):
    (tmp_path / "i").write_bytes(idx_bytes(np.zeros((5, 2, 2), np.uint8)))
    (tmp_path / "l").write_bytes(idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(DatasetError, match="4 labels for the 5 images"):
        read_idx_pair(tmp_path / "i", tmp_path / "l")


def test_cifar10_binary_records_are_read_as_written(tmp_path):
    data, pixels, labels = cifar_like(per_file=7)
    path = tmp_path / "cifar-10-binary.tar.gz"
    path.write_bytes(data)
    got_pixels, got_labels = read_cifar10(path, tuple(f"data_batch_{i}.bin" for i in range(1, 6)), per_file=7)
    assert np.array_equal(got_pixels, pixels[:35]) and np.array_equal(got_labels, labels[:35])
    with pytest.raises(DatasetError, match=r"test_batch.bin has 21,511 bytes, expected 24,584 \(8 records\)"):
        read_cifar10(path, ("test_batch.bin",), per_file=8)


def test_the_pickled_python_cifar10_is_refused_by_name_and_by_content(tmp_path):
    data, _, _ = cifar_like(per_file=2, folder="cifar-10-batches-py", names=("data_batch_1", "batches.meta"))
    by_content = tmp_path / "innocent.tar.gz"
    by_content.write_bytes(data)
    with pytest.raises(DatasetError, match="Python version of CIFAR-10"):
        read_cifar10(by_content, ("test_batch.bin",), per_file=2)
    by_name = tmp_path / "cifar-10-python.tar.gz"
    by_name.write_bytes(b"whatever")
    with pytest.raises(DatasetError, match="never loaded"):
        read_cifar10(by_name, ("test_batch.bin",), per_file=2)


# ----------------------------------------------------------------------------- downloads


def test_download_reports_progress_verifies_and_keeps_the_official_name(cache, fashion, monkeypatch):
    files, arrays = fashion
    seen: list[float] = []
    with serve(files) as (url, log):
        monkeypatch.setenv(MIRROR_VARIABLE, url)
        dataset = load_dataset("fashion_mnist", {}, rng=np.random.default_rng(0),
                               progress=lambda f: seen.append(f))
    assert sorted(p.name for p in cache.iterdir()) == sorted(files)
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 4
    assert [entry[1] for entry in log] == [200] * 4
    # pixels x / 255 as float32, published training rows then test rows
    assert dataset.X.dtype == np.float32 and dataset.X.shape == (70, 784)
    assert np.array_equal(dataset.X[:50], arrays["train_images"].reshape(50, -1) / np.float32(255))
    assert np.array_equal(dataset.test_rows, np.arange(50, 70))
    assert np.array_equal(dataset.y[50:], arrays["test_labels"])
    assert dataset.image_shape == (28, 28) and dataset.class_names[0] == "T-shirt/top"


def test_a_cached_file_is_used_without_the_network_and_checked_again(cache, fashion, monkeypatch):
    files, _ = fashion
    with serve(files) as (url, _):
        monkeypatch.setenv(MIRROR_VARIABLE, url)
        load_dataset("fashion_mnist", {}, rng=np.random.default_rng(0))
    monkeypatch.setenv(MIRROR_VARIABLE, f"http://127.0.0.1:{free_port()}")   # nothing listens there
    assert load_dataset("fashion_mnist", {}, rng=np.random.default_rng(0)).n_samples == 70
    # a damaged cached file is set aside (never used) and fetched again
    (cache / "t10k-labels-idx1-ubyte.gz").write_bytes(b"junk")
    with serve(files) as (url, log):
        monkeypatch.setenv(MIRROR_VARIABLE, url)
        load_dataset("fashion_mnist", {}, rng=np.random.default_rng(0))
    assert [entry[0].rsplit("/", 1)[-1] for entry in log] == ["t10k-labels-idx1-ubyte.gz"]
    assert (cache / "t10k-labels-idx1-ubyte.gz.bad").read_bytes() == b"junk"


def test_cancel_keeps_no_file_under_the_official_name(cache, fashion, monkeypatch):
    files, _ = fashion
    with serve(files) as (url, _):
        monkeypatch.setenv(MIRROR_VARIABLE, url)
        with pytest.raises(LoadCancelled):
            load_dataset("fashion_mnist", {}, rng=np.random.default_rng(0), progress=lambda f: False)
    assert not (cache / "train-images-idx3-ubyte.gz").exists()


def test_a_broken_download_is_continued_with_a_range_request(cache, tmp_path):
    data = bytes(range(256)) * 8000            # 2 MB: more than one read block
    remote = remote_files({"big.bin": data})["big.bin"]
    with serve({"big.bin": data}, fail_after={"big.bin": 700_000}) as (url, log):
        remote = type(remote)(remote.name, url, remote.size, remote.sha256)
        with pytest.raises(DatasetError, match="try again to continue it|has 700,000 bytes"):
            fetch(remote, folder=cache)
        assert (cache / "big.bin.part").stat().st_size == 700_000
        path = fetch(remote, folder=cache)
    assert path.read_bytes() == data and not (cache / "big.bin.part").exists()
    assert log[-1][1] == 206 and log[-1][2] == len(data) - 700_000


def test_a_wrong_digest_deletes_the_download_and_says_what_to_do(cache, fashion, monkeypatch):
    files, _ = fashion
    served = dict(files)
    served["train-labels-idx1-ubyte.gz"] = gzip.compress(b"\x00" * 20)[:len(files["train-labels-idx1-ubyte.gz"])]
    served["train-labels-idx1-ubyte.gz"] = served["train-labels-idx1-ubyte.gz"].ljust(
        len(files["train-labels-idx1-ubyte.gz"]), b"\x00")
    with serve(served) as (url, _):
        monkeypatch.setenv(MIRROR_VARIABLE, url)
        with pytest.raises(DatasetError, match=r"SHA-256 .* expected .* put it, under that name, into") as info:
            load_dataset("fashion_mnist", {}, rng=np.random.default_rng(0))
    assert str(cache) in str(info.value)
    assert not (cache / "train-labels-idx1-ubyte.gz").exists()
    assert not (cache / "train-labels-idx1-ubyte.gz.part").exists()


def test_a_404_and_a_refused_connection_are_one_clear_error(cache, fashion, monkeypatch):
    with serve({}) as (url, _):
        monkeypatch.setenv(MIRROR_VARIABLE, url)
        with pytest.raises(DatasetError, match="HTTP 404"):
            load_dataset("fashion_mnist", {}, rng=np.random.default_rng(0))
    monkeypatch.setenv(MIRROR_VARIABLE, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(DatasetError, match=f"cannot reach .*{MIRROR_VARIABLE} sets another download location"):
        load_dataset("fashion_mnist", {}, rng=np.random.default_rng(0))
    assert not any(cache.glob("*.gz"))


def test_the_mirror_is_used_as_base_url_with_the_official_names(cache, fashion, monkeypatch):
    files, _ = fashion
    with serve(files) as (url, log):
        monkeypatch.setenv(MIRROR_VARIABLE, url + "/")
        load_dataset("fashion_mnist", {}, rng=np.random.default_rng(0))
    assert sorted(entry[0] for entry in log) == sorted(f"/data/{name}" for name in files)


# ----------------------------------------------------------------------------- in an experiment


def test_the_published_test_set_is_the_test_split_and_subsets_are_seeded(cache, fashion, monkeypatch):
    files, arrays = fashion
    spec = {"seed": 5, "data": {"source": "fashion_mnist", "params": {"n_train": 30, "n_test": 10},
                                "validation_split": 0.2},
            "model": {"layers": [{"units": 8}]}, "training": {"epochs": 1, "batch_size": 8}}
    with serve(files) as (url, _):
        monkeypatch.setenv(MIRROR_VARIABLE, url)
        trainer = Trainer(parse_experiment(spec))
        again = Trainer(parse_experiment(spec))
    assert len(trainer.split.test) == 10 and len(trainer.split.train) + len(trainer.split.val) == 30
    assert np.array_equal(trainer.split.test, np.arange(30, 40))
    assert len(trainer.split.val) == 6
    assert np.array_equal(trainer.dataset.X, again.dataset.X)   # the same subset for the same seed
    # test images come from the published test file only
    test_pixels = arrays["test_images"].reshape(20, -1) / np.float32(255)
    assert all(any(np.array_equal(row, t) for t in test_pixels) for row in trainer.dataset.X[30:])
    assert trainer.fit() == "completed"
    with pytest.raises(SpecError, match="data.test_split: must be 0 for fashion_mnist"):
        Trainer(parse_experiment({**spec, "data": {**spec["data"], "test_split": 0.1}}))


def test_cifar10_grayscale_subset(cache, monkeypatch):
    data, pixels, labels = cifar_like(per_file=6)
    monkeypatch.setattr(book.CIFAR10, "files", remote_files({"cifar-10-binary.tar.gz": data}))
    monkeypatch.setattr(book.CIFAR10, "records_per_file", 6)
    with serve({"cifar-10-binary.tar.gz": data}) as (url, _):
        monkeypatch.setenv(MIRROR_VARIABLE, url)
        grey = load_dataset("cifar10", {"grayscale": True}, rng=np.random.default_rng(0))
        colour = load_dataset("cifar10", {"n_train": 12}, rng=np.random.default_rng(0))
    assert grey.X.shape == (36, 1024) and grey.image_shape == (32, 32)
    planes = pixels.reshape(36, 3, 1024).astype(np.float64)
    luma = (0.299 * planes[:, 0] + 0.587 * planes[:, 1] + 0.114 * planes[:, 2]) / 255
    assert np.allclose(grey.X, luma, atol=1e-6)
    assert np.array_equal(grey.y, labels)
    assert colour.X.shape == (18, 3072) and colour.image_shape is None
    assert np.array_equal(colour.test_rows, np.arange(12, 18))
    assert np.array_equal(colour.X[12:], pixels[30:] / np.float32(255))


def test_bad_parameters_name_the_field():
    with pytest.raises(SpecError, match="n_train"):
        parse_experiment({"data": {"source": "mnist", "params": {"n_train": 5}}})
    with pytest.raises(SpecError, match="grayscale"):
        parse_experiment({"data": {"source": "cifar10", "params": {"grayscale": "yes"}}})
    with pytest.raises(SpecError, match="unknown"):
        parse_experiment({"data": {"source": "fashion_mnist", "params": {"grayscale": True}}})


def test_the_cli_shows_a_progress_line_while_the_data_downloads(cache, fashion, monkeypatch, tmp_path, capsys):
    import io
    import json

    from core.cli.main import DataProgress, run_headless

    files, _ = fashion
    spec = tmp_path / "f.json"
    spec.write_text(json.dumps({"data": {"source": "fashion_mnist", "params": {"n_train": 20}},
                                "model": {"layers": [{"units": 4}]}, "training": {"epochs": 1}}))
    with serve(files) as (url, _):
        monkeypatch.setenv(MIRROR_VARIABLE, url)
        assert run_headless(["train", str(spec), "--out", str(tmp_path / "f.gwb"), "--no-autosave"]) == 0
    assert "loading data" not in capsys.readouterr().err     # not a terminal: no percentages

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    shown = Terminal()
    with serve(files) as (url, _):
        monkeypatch.setenv(MIRROR_VARIABLE, url)
        for name in files:
            (cache / name).unlink()
        Trainer(parse_experiment(json.loads(spec.read_text())), data_progress=DataProgress(shown))
    lines = shown.getvalue().split("\r")[1:]
    assert len(lines) >= 2 and lines[-1] == "loading data 100%\n"
    percents = [int(line.split()[-1].rstrip("%")) for line in lines]
    assert percents == sorted(set(percents))      # each whole per cent at most once, rising
    monkeypatch.setenv(MIRROR_VARIABLE, f"http://127.0.0.1:{free_port()}")
    for name in files:
        (cache / name).unlink()
    assert run_headless(["train", str(spec), "--out", str(tmp_path / "g.gwb"), "--no-autosave", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: data: ") and "cannot reach" in err and err.count("\n") == 1
