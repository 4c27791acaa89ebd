"""How fast ``core.data.importers.load_csv`` parses a large CSV, and how soon a stop request ends it.

Writes a CSV of about ``--mb`` megabytes (``--features`` float columns with 4-6 significant
digits and an integer class column, like an exported table) into a temporary folder, then:

1. **parse** — seconds for ``load_csv(path, "label")`` (the file is in the page cache after the
   first run), median of ``--repeat`` runs with the minimum in brackets, as MB/s of file;
2. **with progress** — the same with a progress callback that always returns True (what the
   GUI does), so the cost of the hook shows as a ratio;
3. **stop** — a second thread asks to stop at about 30 % of the file; the time from that
   request until ``LoadCancelled`` reaches the caller, and the fraction of the file read;
4. with ``--baseline REV``, the CSV reader as it was at git revision ``REV``
   (``core/data/importers.py``, or the older ``core/data/datasets.py`` / ``core/datasets.py``) is loaded
   beside the current one and timed in the same run, alternating with it (before / after).

    python benchmarks/bench_csv.py [--mb 50] [--features 20] [--repeat 5] [--baseline HEAD~1]

Compare figures within one run: timings on the shared 2-core host swing between runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from core.data import importers  # noqa: E402


def write_csv(path: Path, megabytes: float, features: int, seed: int = 0) -> int:
    """A CSV of about ``megabytes`` MB; returns its number of data rows."""
    rng = np.random.default_rng(seed)
    block_rows = 10_000
    X = rng.normal(0.0, 100.0, (block_rows, features))
    labels = rng.integers(0, 10, block_rows)
    lines = [",".join(f"{v:.5g}" for v in row) + f",{c}\n" for row, c in zip(X, labels, strict=True)]
    block = "".join(lines).encode()
    header = (",".join(f"x{j + 1}" for j in range(features)) + ",label\n").encode()
    blocks = max(1, round(megabytes * 2**20 / len(block)))
    with open(path, "wb") as fh:
        fh.write(header)
        for _ in range(blocks):
            fh.write(block)
    return blocks * block_rows


# Where the CSV reader lived, newest first: the module of the first one present at a revision is timed.
READER_PATHS = ("core/data/importers.py", "core/data/datasets.py", "core/datasets.py")


def baseline_module(rev: str):
    """The CSV reader's module at git revision ``rev``, imported as ``core.data._importers_baseline``
    (``core._importers_baseline`` for the oldest path; relative imports resolve against the current package)."""
    root = Path(__file__).resolve().parents[1]
    for where in READER_PATHS:
        shown = subprocess.run(["git", "show", f"{rev}:{where}"], cwd=root, capture_output=True, text=True)
        if shown.returncode == 0 and "def load_csv" in shown.stdout:
            break
    else:
        raise SystemExit(f"no CSV reader at {rev} (looked in {', '.join(READER_PATHS)})")
    package = where.rpartition("/")[0].replace("/", ".")
    name = f"{package}._importers_baseline"
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = package
    sys.modules[name] = module
    exec(compile(shown.stdout, f"{rev}:{where}", "exec"), module.__dict__)
    return module


def timed(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=50.0, help="file size in MB (default 50)")
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline", metavar="REV", help="also time the CSV reader of this git revision")
    args = parser.parse_args()
    has_hook = hasattr(importers, "LoadCancelled")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.csv"
        rows = write_csv(path, args.mb, args.features)
        size = path.stat().st_size
        mb = size / 2**20
        print(f"file: {mb:.1f} MB, {rows:,} rows × {args.features} features + label; numpy {np.__version__}")
        data = importers.load_csv(path, "label")   # warm-up (page cache)
        assert data.n_samples == rows, (data.n_samples, rows)

        def report(name: str, times: list[float]) -> float:
            med = statistics.median(times)
            print(f"{name:<22} {med:7.3f} s [{min(times):.3f}]  {mb / med:6.1f} MB/s [{mb / min(times):.1f}]")
            return med

        if args.baseline:
            old = baseline_module(args.baseline)
            assert old.load_csv(path, "label").n_samples == rows
            before, after = [], []
            for _ in range(args.repeat):   # alternated, so that a busy moment hits both
                before += timed(lambda: old.load_csv(path, "label"), 1)
                after += timed(lambda: importers.load_csv(path, "label"), 1)
            b = report(f"parse at {args.baseline}", before)
            a = report("parse now", after)
            print(f"{'now / baseline':<22} {a / b:7.3f}× time, {b / a:.3f}× MB/s")

        plain = report("parse", timed(lambda: importers.load_csv(path, "label"), args.repeat))
        if not has_hook:
            print("(no progress hook in this version of the CSV reader)")
            return 0

        calls: list[float] = []

        def progress(fraction: float) -> bool:
            calls.append(fraction)
            return True

        hooked = report("parse with progress", timed(lambda: importers.load_csv(path, "label", progress=progress),
                                                     args.repeat))
        print(f"{'progress / plain':<22} {hooked / plain:7.3f}×   ({len(calls) // args.repeat} calls a load)")

        latencies, read = [], []
        for _ in range(args.repeat):
            stop = threading.Event()
            asked: list[float] = []
            seen = [0.0]

            def check(fraction: float, stop=stop, seen=seen) -> bool:
                seen[0] = fraction
                return not stop.is_set()

            def ask(plain=plain, stop=stop, asked=asked) -> None:
                time.sleep(0.3 * plain)
                asked.append(time.perf_counter())
                stop.set()

            thread = threading.Thread(target=ask)
            thread.start()
            try:
                importers.load_csv(path, "label", progress=check)
            except importers.LoadCancelled:
                latencies.append(time.perf_counter() - asked[0])
                read.append(seen[0])
            thread.join()
        if latencies:
            print(f"{'stop → LoadCancelled':<22} {1000 * statistics.median(latencies):7.1f} ms median, "
                  f"{1000 * max(latencies):.1f} ms max; stopped at {100 * statistics.median(read):.0f} % of the file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
