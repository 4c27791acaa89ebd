"""How much memory loading a Fashion-MNIST-sized IDX pair takes, against the float32 array it makes.

Writes a gzipped IDX images file of ``--rows`` × 28 × 28 bytes (60,000 by default: Fashion-MNIST's
training set, gzipped as the official files are) and its labels file into a temporary folder,
then loads the pair in a fresh child process per measurement, so no earlier allocation hides in
the figures:

1. **idx importer** — ``IMPORTERS["idx"]().load(images, labels_path=labels)``, what the window
   and ``gradient-workbench train`` do with ``data.source = "idx"`` (the book sets' loader reads
   the same files with the same reader into the same float32 array);
2. **naive** (the baseline, measured in the same run) — the whole file decompressed into a bytes
   object, ``np.frombuffer``, then ``astype(float32) / 255``: what a loader written without
   care does.

For each: the **tracemalloc peak** (every NumPy and Python allocation during the load) and the
**peak RSS growth** (``ru_maxrss`` after the load minus the resident size before it, which also
counts what tracemalloc cannot see), each as a ratio to the size of the float32 array the load
produces (n × 784 × 4 bytes: 188 MB for 60,000 images). The exit status is 1 if the importer's
ratio reaches ``--limit`` (2 by default) by either measure.

    python benchmarks/bench_book_memory.py [--rows 60000] [--limit 2.0] [--json out.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

SIDE = 28


def write_idx_pair(folder: Path, rows: int, seed: int = 0) -> tuple[Path, Path]:
    """``train-images-idx3-ubyte.gz`` (rows × 28 × 28 bytes, image-like: a blurred random field,
    so it compresses about as the real one does) and ``train-labels-idx1-ubyte.gz``."""
    rng = np.random.default_rng(seed)
    images = folder / "train-images-idx3-ubyte.gz"
    labels = folder / "train-labels-idx1-ubyte.gz"
    with gzip.open(images, "wb") as fh:
        fh.write(bytes([0, 0, 0x08, 3]) + np.array([rows, SIDE, SIDE], dtype=">u4").tobytes())
        for start in range(0, rows, 5000):
            n = min(5000, rows - start)
            field = rng.integers(0, 256, size=(n, SIDE, SIDE), dtype=np.uint8)
            field[rng.random(field.shape) < 0.5] = 0           # half the pixels background, as in the real set
            fh.write(field.tobytes())
    with gzip.open(labels, "wb") as fh:
        fh.write(bytes([0, 0, 0x08, 1]) + np.array([rows], dtype=">u4").tobytes())
        fh.write(rng.integers(0, 10, size=rows, dtype=np.uint8).tobytes())
    return images, labels


def resident_bytes() -> int:
    """The process's resident size now (Linux: /proc/self/statm)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()


def load_importer(images: Path, labels: Path) -> np.ndarray:
    from core.data import IMPORTERS

    return IMPORTERS.get("idx")().load(images, labels_path=labels).X


def load_naive(images: Path, labels: Path) -> np.ndarray:
    with gzip.open(images, "rb") as fh:
        raw = fh.read()
    pixels = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, SIDE * SIDE)
    return pixels.astype(np.float32) / 255.0


LOADERS = {"idx importer": load_importer, "naive": load_naive}


def child(loader: str, images: Path, labels: Path, measure: str) -> dict[str, float]:
    """One load in this (fresh) process: bytes of the array made, and the peak it took."""
    import core.data  # noqa: F401  (imported before measuring: the module's own memory is not the load's)

    if measure == "tracemalloc":
        tracemalloc.start()
        t0 = time.perf_counter()
        X = LOADERS[loader](images, labels)
        seconds = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    else:
        before = resident_bytes()
        t0 = time.perf_counter()
        X = LOADERS[loader](images, labels)
        seconds = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before   # Linux: ru_maxrss in KiB
    assert X.dtype == np.float32
    return {"array": float(X.nbytes), "peak": float(peak), "seconds": seconds}


def measure_in_child(loader: str, images: Path, labels: Path, measure: str) -> dict[str, float]:
    proc = subprocess.run([sys.executable, __file__, "--child", loader, str(images), str(labels), measure],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"the {loader} load failed in its child process:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=60_000, help="images in the IDX file (default 60,000)")
    parser.add_argument("--limit", type=float, default=2.0, help="largest accepted peak / array ratio")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--child", nargs=4, metavar=("LOADER", "IMAGES", "LABELS", "MEASURE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        loader, images, labels, measure = args.child
        print(json.dumps(child(loader, Path(images), Path(labels), measure)))
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-book-memory-") as tmp:
        print(f"writing a gzipped IDX pair of {args.rows:,} × {SIDE}×{SIDE} images …", file=sys.stderr)
        images, labels = write_idx_pair(Path(tmp), args.rows)
        print(f"images file {images.stat().st_size / 1e6:.1f} MB gzipped", file=sys.stderr)
        results: dict[str, dict[str, dict[str, float]]] = {}
        for loader in LOADERS:
            for measure in ("tracemalloc", "rss"):
                print(f"{loader}: {measure} …", file=sys.stderr)
                results.setdefault(loader, {})[measure] = measure_in_child(loader, images, labels, measure)

    array = results["idx importer"]["tracemalloc"]["array"]
    print(f"float32 array: {args.rows:,} × {SIDE * SIDE} × 4 bytes = {array / 1e6:.1f} MB\n")
    print(f"{'loader':<14} {'tracemalloc peak':>18} {'ratio':>7} {'peak RSS growth':>17} {'ratio':>7} {'seconds':>8}")
    failed = False
    for loader, by in results.items():
        t, r = by["tracemalloc"], by["rss"]
        print(f"{loader:<14} {t['peak'] / 1e6:>15.1f} MB {t['peak'] / array:>7.2f} {r['peak'] / 1e6:>14.1f} MB "
              f"{r['peak'] / array:>7.2f} {r['seconds']:>8.2f}")
        if loader == "idx importer" and max(t["peak"], r["peak"]) / array >= args.limit:
            failed = True
    importer, naive = results["idx importer"], results["naive"]
    print(f"\nthe importer's peak is {naive['tracemalloc']['peak'] / importer['tracemalloc']['peak']:.2f}× "
          "smaller than the naive loader's (tracemalloc), "
          f"{naive['rss']['peak'] / max(importer['rss']['peak'], 1):.2f}× (RSS)")
    if failed:
        print(f"FAIL: the idx importer's peak reached {args.limit:g}× the array it makes")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": args.rows, "array_bytes": array, "results": results}, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
