"""Run the bundled sweeps (resources/examples/sweeps/*.json) and put their results tables, with
the machine and the time they took, into docs/sweeps.md (between the sweep-tables markers).

    python docs/make_sweep_tables.py [--workers N] [--keep DIR] [--no-speedup]

Every sweep runs from scratch (a fresh results folder), so the times are real. With the
speedup measurement (default on) the activations sweep runs once more on one worker, and its
sessions are checked to be the same, weight for weight, as those of the parallel run.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.sessions.format import load_session  # noqa: E402
from core.sweeps.report import format_table, machine_info, results_table  # noqa: E402
from core.sweeps.runner import run_sweep  # noqa: E402
from core.sweeps.spec import load_sweep  # noqa: E402

SWEEPS = ROOT / "resources" / "examples" / "sweeps"
DOC = ROOT / "docs" / "sweeps.md"
BEGIN, END = "<!-- sweep-tables:begin -->", "<!-- sweep-tables:end -->"


def _run(path: Path, folder: Path, workers: int) -> tuple[float, object]:
    if folder.exists():
        shutil.rmtree(folder)
    sweep = load_sweep(path)
    outcome = run_sweep(sweep, folder, workers=workers,
                        progress=lambda i: i["last"] and print(f"  {path.stem}: {i['done'] + i['failed']}/"
                                                               f"{i['total']}", end="\r", flush=True))
    print()
    return outcome.wall_seconds, sweep


def _same_sessions(sweep: object, a: Path, b: Path) -> bool:
    for run in sweep.runs():  # type: ignore[attr-defined]
        wa, wb = load_session(a / run.file_name).weights, load_session(b / run.file_name).weights
        if wa.keys() != wb.keys() or not all(np.array_equal(wa[k], wb[k]) for k in wa):
            return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--keep", help="keep the results folders here (default: a temporary folder)")
    parser.add_argument("--no-speedup", action="store_true", help="skip the one-worker run of the first sweep")
    args = parser.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gw-sweeps-"))
    machine = machine_info()
    started = _dt.datetime.now(_dt.UTC)
    parts = [f"Measured on {started:%Y-%m-%d} with `python docs/make_sweep_tables.py`: {machine['cpus']} cores "
             f"(`nproc`), {machine['cpu_model']}, {machine['system']}, Python {machine['python']}, "
             f"NumPy {machine['numpy']}; {args.workers} worker processes. Mean ± sample standard deviation over "
             "the seeds; *vanishing* / *exploding*: share of runs that `assess_health` flagged at the end of an "
             "epoch; *diverged*: share of runs stopped by a NaN.", ""]
    walls = {}
    for path in sorted(SWEEPS.glob("*.json")):
        wall, sweep = _run(path, root / path.stem, args.workers)
        walls[path.stem] = wall
        table = results_table(root / path.stem)
        runs = len(sweep.runs())  # type: ignore[attr-defined]
        parts += [f"### `{path.relative_to(ROOT)}`", "", f"{sweep.name}: {runs} runs in "  # type: ignore[attr-defined]
                  f"{wall:.0f} s of wall time.", "", format_table(table, "markdown").rstrip(), ""]
    if not args.no_speedup:
        first = sorted(SWEEPS.glob("*.json"))[0]
        one, sweep = _run(first, root / f"{first.stem}-1-worker", 1)
        same = _same_sessions(sweep, root / first.stem, root / f"{first.stem}-1-worker")
        parts += ["### Speed-up", "", f"`{first.name}` on 1 worker: {one:.1f} s; on {args.workers} workers: "
                  f"{walls[first.stem]:.1f} s (× {one / walls[first.stem]:.2f}). The sessions of the two runs are "
                  f"{'identical, weight for weight' if same else 'NOT identical'}.", ""]
    text = DOC.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{DOC} has no {BEGIN} ... {END} markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(head + BEGIN + "\n" + "\n".join(parts) + "\n" + END + tail, encoding="utf-8")
    print(f"wrote {DOC} (results in {root})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
