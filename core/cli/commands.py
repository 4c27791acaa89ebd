"""The headless commands for many runs and for leaving the workbench (``core.cli.main`` registers them):

* ``sweep SWEEP.json --out DIR [--workers N] [--scheduler ADDRESS]`` — run a sweep
  (``core.sweeps.runner``), progress on stderr, the results table on stdout at the end;
* ``sweep-report DIR [--sort KEY] [--reverse] [--format text|markdown|csv|json]`` — the
  table of a sweep's folder (``core.sweeps.report``), also while the sweep runs;
* ``export RUN.gwb --to pytorch OUT.py [--with-weights]`` — a PyTorch script (``core.export.pytorch``);
  a session naming something the exporter cannot translate is bad input (exit 2).

Bad input exits 2 with one line on stderr (as every command of ``core.cli.main``); a sweep in which
some runs failed exits 1 after recording them; one stopped with Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from .args import UsageError, check_folder_for, check_not_a_folder, positive_int

EXIT_RUNS_FAILED = 1
EXIT_INTERRUPTED = 130
FORMATS = ("text", "markdown", "csv", "json")


def add_commands(sub: Any) -> None:
    """Add the subcommands to ``core.cli.main``'s parser (``sub`` is its subparsers object)."""
    from core.sweeps.report import SORT_KEYS

    s = sub.add_parser("sweep", help="run a sweep of experiments in parallel and rank the configurations")
    s.add_argument("sweep", help="sweep JSON file (docs/sweeps.md)")
    s.add_argument("--out", required=True, help="folder for the session files and results (created if needed; "
                                                "a sweep started again there skips its finished runs)")
    where = s.add_mutually_exclusive_group()
    where.add_argument("--workers", type=positive_int, help="local worker processes (default: one per core)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on a Dask distributed cluster, e.g. tcp://host:8786 (needs the extra 'cluster')")
    s.add_argument("--sort", default="val_accuracy", help=f"sort the table by {', '.join(SORT_KEYS)} or an axis name")
    s.add_argument("--quiet", action="store_true", help="no progress on stderr")
    r = sub.add_parser("sweep-report", help="print the results table of a sweep's folder")
    r.add_argument("dir", help="the sweep's --out folder")
    r.add_argument("--sort", default="val_accuracy", help=f"sort by {', '.join(SORT_KEYS)} or an axis name "
                                                          "(best first)")
    r.add_argument("--reverse", action="store_true", help="worst first")
    r.add_argument("--format", choices=FORMATS, default="text", help="output format (default: text)")
    e = sub.add_parser("export", help="write a PyTorch script that builds and trains the session's network")
    e.add_argument("session", help="session file (*.gwb)")
    e.add_argument("--to", required=True, choices=("pytorch",), help="target framework")
    e.add_argument("out", help="script to write (*.py)")
    e.add_argument("--with-weights", action="store_true",
                   help="also write the session's weights beside it (OUT.weights.npz) and load them")


def _duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class SweepProgress:
    """One line per finished run on stderr: counts, time left, and what the run gave."""

    def __init__(self, stream: Any, quiet: bool = False) -> None:
        self.stream = stream
        self.quiet = quiet

    def __call__(self, info: dict[str, Any]) -> None:
        last = info.get("last")
        if self.quiet or last is None:
            return
        head = (f"[{info['done'] + info['failed']}/{info['total']}] done {info['done']}, running {info['running']}, "
                f"failed {info['failed']}, {_duration(info['eta_seconds'])} left")
        acc = last.get("best_val_accuracy")
        what = last["status"] + (f", best val_accuracy {acc:.4f}" if isinstance(acc, float) else "")
        reason = str(last.get("reason", ""))
        if last["status"] in ("failed", "diverged"):
            what = reason if reason.startswith(last["status"]) else f"{last['status']}: {reason}"
        self.stream.write(f"{head} | #{last['configuration']} seed {last['seed']} ({last['label']}): {what}\n")
        self.stream.flush()


def cmd_sweep(args: argparse.Namespace) -> int:
    from core.sweeps.report import format_table, results_table
    from core.sweeps.runner import run_sweep
    from core.sweeps.spec import load_sweep

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out: {args.out!r} is a file, not a folder")
    if not out.parent.exists():
        raise UsageError(f"--out: folder {str(out.parent)!r} does not exist")
    sweep = load_sweep(args.sweep)
    _check_sort(sweep, args.sort)
    stop = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        def handler(signum: int, frame: Any) -> None:
            stop.set()
            signal.signal(signal.SIGINT, signal.default_int_handler)

        previous = signal.signal(signal.SIGINT, handler)
    try:
        if not args.quiet:
            n = len(sweep.runs())
            sys.stderr.write(f"sweep {sweep.name!r}: {len(sweep.configurations)} configurations × {len(sweep.seeds)} "
                             f"seeds = {n} runs into {out}\n")
        outcome = run_sweep(sweep, out, workers=args.workers, scheduler=args.scheduler,
                            progress=SweepProgress(sys.stderr, args.quiet), should_stop=stop.is_set)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if not args.quiet:
        backend = outcome.results.get("backend", "")
        sys.stderr.write(f"{outcome.completed} trained, {outcome.skipped} already done, {outcome.failed} failed "
                         f"in {_duration(outcome.wall_seconds)} ({backend})\n")
    sys.stdout.write(format_table(results_table(out, args.sort)))
    if outcome.stopped:
        left = outcome.total - outcome.skipped - outcome.completed - outcome.failed
        sys.stderr.write(f"stopped; run the same command again to finish the {left} runs left\n")
        return EXIT_INTERRUPTED
    return EXIT_RUNS_FAILED if outcome.failed else 0


def _check_sort(sweep: Any, key: str) -> None:
    from core.sweeps.report import SORT_KEYS
    from core.sweeps.spec import SweepError

    if key not in SORT_KEYS and key not in [a.name for a in sweep.axes]:
        raise SweepError("--sort", f"must be one of {', '.join([*SORT_KEYS, *(a.name for a in sweep.axes)])}, "
                                   f"got {key!r}")


def cmd_sweep_report(args: argparse.Namespace) -> int:
    from core.sweeps.report import format_table, read_sweep, results_table

    folder = Path(args.dir)
    if folder.exists() and not folder.is_dir():  # read_sweep would call it "no such folder"
        raise UsageError(f"DIR: {args.dir!r} is a file, not a sweep's folder; give the folder a sweep wrote "
                         "(its --out)")
    _check_sort(read_sweep(folder), args.sort)
    sys.stdout.write(format_table(results_table(args.dir, args.sort, args.reverse), args.format))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from core.export.pytorch import ExportError, export_pytorch
    from core.sessions.format import load_session

    out = Path(args.out)
    if out.suffix != ".py":
        raise UsageError(f"OUT: the script must end in .py, got {args.out!r}")
    check_not_a_folder("OUT", out)
    if args.with_weights:
        # the name export_pytorch gives the weights beside the script; written first, so a
        # folder there would fail only after the work, or leave the weights without a script
        check_not_a_folder("OUT", out.with_name(f"{out.stem}.weights.npz"))
    check_folder_for("OUT", out)
    try:
        written = export_pytorch(load_session(args.session), out, with_weights=args.with_weights)
    except ExportError as exc:  # something the exporter cannot translate: bad input, not a crash
        raise UsageError(f"{args.session}: {exc}") from None
    sys.stderr.write("wrote " + ", ".join(str(p) for p in written) + "\n")
    return 0


COMMANDS = {"sweep": cmd_sweep, "sweep-report": cmd_sweep_report, "export": cmd_export}
