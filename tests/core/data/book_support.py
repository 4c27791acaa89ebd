"""Small files in the book data sets' formats, and a local HTTP server that serves them.

No test touches the network: the server listens on 127.0.0.1 on a free port, answers range
requests (to test continuing a partial download) and counts what it sent."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from core.data.download import RemoteFile


def idx_bytes(array: np.ndarray, type_code: int = 0x08, compress: bool = True) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    raw = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    return gzip.compress(raw) if compress else raw


def mnist_like(n_train: int, n_test: int, seed: int = 0) -> tuple[dict[str, bytes], dict[str, np.ndarray]]:
    """The four IDX files of an MNIST-shaped set (28×28 bytes, labels 0-9), and the arrays."""
    rng = np.random.default_rng(seed)
    arrays = {"train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
              "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "test_labels": (np.arange(n_test) % 10).astype(np.uint8)}
    files = {"train-images-idx3-ubyte.gz": idx_bytes(arrays["train_images"]),
             "train-labels-idx1-ubyte.gz": idx_bytes(arrays["train_labels"]),
             "t10k-images-idx3-ubyte.gz": idx_bytes(arrays["test_images"]),
             "t10k-labels-idx1-ubyte.gz": idx_bytes(arrays["test_labels"])}
    return files, arrays


def cifar_like(per_file: int, seed: int = 0, folder: str = "cifar-10-batches-bin",
               names: tuple[str, ...] | None = None) -> tuple[bytes, np.ndarray, np.ndarray]:
    """A cifar-10-binary.tar.gz with ``per_file`` records per batch; returns it, all pixels and labels."""
    rng = np.random.default_rng(seed)
    names = names or tuple(f"data_batch_{i}.bin" for i in range(1, 6)) + ("test_batch.bin",)
    buffer = io.BytesIO()
    pixels, labels = [], []
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in names:
            label = rng.integers(0, 10, per_file, dtype=np.uint8)
            image = rng.integers(0, 256, (per_file, 3072), dtype=np.uint8)
            data = np.concatenate([label[:, None], image], axis=1).tobytes()
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            pixels.append(image)
            labels.append(label)
    return buffer.getvalue(), np.concatenate(pixels), np.concatenate(labels)


def remote_files(files: dict[str, bytes], base_url: str = "http://127.0.0.1:9/unused") -> dict[str, RemoteFile]:
    """RemoteFile entries with these files' real sizes and digests (patched in for one test)."""
    return {name: RemoteFile(name, base_url, len(data), hashlib.sha256(data).hexdigest())
            for name, data in files.items()}


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes]
    log: list[tuple[str, int, int]]    # (path, status, bytes sent)
    fail_after: dict[str, int]         # name → bytes after which the connection drops (once)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        name = self.path.rsplit("/", 1)[-1]
        data = self.files.get(name)
        if data is None:
            self.send_error(404, "Not Found")
            self.log.append((self.path, 404, 0))
            return
        start = 0
        status = 200
        ranged = self.headers.get("Range")
        if ranged and ranged.startswith("bytes="):
            start = int(ranged[6:].split("-")[0])
            status = 206
        body = data[start:]
        cut = self.fail_after.pop(name, None)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        sent = body if cut is None else body[:cut]
        self.wfile.write(sent)
        self.log.append((self.path, status, len(sent)))
        if cut is not None:
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serve(files: dict[str, bytes], fail_after: dict[str, int] | None = None) -> Iterator[tuple[str, list]]:
    """Serve ``files`` at http://127.0.0.1:PORT/data/<name>; yields (base URL, request log)."""
    log: list[tuple[str, int, int]] = []
    handler = type("Handler", (_Handler,), {"files": files, "log": log, "fail_after": dict(fail_after or {})})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/data", log
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def served_book_sets(monkeypatch) -> Iterator[None]:
    """fashion_mnist, mnist and cifar10 as small generated files from 127.0.0.1, for a test that
    needs a run on them (the real files are never fetched: their digests are patched)."""
    from core.data import book
    from core.data.download import MIRROR_VARIABLE

    idx_files, _ = mnist_like(40, 20)
    cifar, _, _ = cifar_like(per_file=8)
    monkeypatch.setattr(book.FashionMNIST, "files", remote_files(idx_files))
    monkeypatch.setattr(book.MNIST, "files", remote_files(idx_files))
    monkeypatch.setattr(book.CIFAR10, "files", remote_files({"cifar-10-binary.tar.gz": cifar}))
    monkeypatch.setattr(book.CIFAR10, "records_per_file", 8)
    with serve({**idx_files, "cifar-10-binary.tar.gz": cifar}) as (url, _):
        monkeypatch.setenv(MIRROR_VARIABLE, url)
        yield
