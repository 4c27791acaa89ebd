"""The headless commands of ``gradient-workbench``: ``train``, ``resume``, ``info`` and ``inspect``
(``core.cli.inspection``).

Bad input (a spec that fails validation, a missing or damaged file, a bad flag) exits with
status 2 and one line on stderr; nothing is written half (sessions are saved atomically). A
save that fails exits 1; a run that diverged is saved (its last finite state) and exits 3.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from core import __version__
from core.engine.diagnostics import EPOCH_METRICS
from core.engine.validation import open_regular, printable, quote
from core.monitor import SnapshotSource
from core.sessions.branch import branch_record, branch_trainer, parse_changes, replay_start
from core.sessions.format import Session, SessionError, load_session, peek_session
from core.sessions.recovery import DEFAULT_INTERVAL, Autosaver, recovery_path_for
from core.sessions.summary import layer_names, session_summary
from core.sessions.trainer_io import restore_trainer, save_trainer
from core.sessions.transfer import describe_lineage
from core.spec import SpecError, load_experiment

from .args import (
    EXIT_BAD_INPUT,
    EXIT_DIVERGED,
    EXIT_WRITE_FAILED,
    Parser,
    UsageError,
    check_out,
    non_negative_int,
    plural,
    positive_float,
    positive_int,
    same_file,
)
from .commands import COMMANDS as MORE_COMMANDS
from .commands import add_commands
from .inspection import add_inspect, cmd_inspect


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="gradient-workbench",
                     description="Train deep feed-forward networks and see why they train or fail.")
    parser.add_argument("--version", action="version", version=f"gradient-workbench {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)
    t = sub.add_parser("train", help="train an experiment headless and write a session file")
    t.add_argument("spec", help="experiment JSON file")
    t.add_argument("--out", required=True, help="session file to write (*.gwb)")
    t.add_argument("--epochs", type=positive_int, help="train this many epochs (default: the spec's)")
    r = sub.add_parser("resume", help="continue a saved session (or a recovery copy) for more epochs")
    r.add_argument("session", help="session file (*.gwb, or a .RUN.gwb.recovery copy)")
    r.add_argument("--epochs", type=positive_int,
                   help="epochs to train further; a half-done epoch counts as one (default: the rest of the "
                        "planned training.epochs)")
    r.add_argument("--out", required=True, help="session file to write (may be the same file)")
    for command in (t, r):
        command.add_argument("--quiet", action="store_true", help="no progress on stderr")
        command.add_argument("--autosave-seconds", type=positive_float, default=DEFAULT_INTERVAL, metavar="S",
                             help="write the recovery copy .OUT.gwb.recovery after every epoch and at least every "
                                  f"S seconds (default {DEFAULT_INTERVAL:g}); deleted when the run ends cleanly")
        command.add_argument("--no-autosave", action="store_true", help="write no recovery copy")
    i = sub.add_parser("info", help="print a session's architecture, metrics and last gradient norms")
    i.add_argument("session", help="session file (*.gwb)")
    i.add_argument("--json", action="store_true",
                   help="print the summary as one JSON object (findings under 'health'; docs/DESIGN.md)")
    b = sub.add_parser("branch", help="fork a saved run at an optimizer step, optionally with changed settings")
    b.add_argument("session", help="session file (*.gwb)")
    b.add_argument("--at-step", type=non_negative_int, required=True, metavar="K",
                   help="the optimizer step to fork at (0 to the run's last step)")
    b.add_argument("--out", required=True, help="session file to write for the branch (*.gwb)")
    b.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="change a field of the experiment from step K on, e.g. optimizer.learning_rate=0.001 "
                        "(PATH as in the experiment JSON, VALUE as JSON or a plain word); repeatable")
    o = sub.add_parser("open", help="open a session or experiment in the window")
    o.add_argument("file", help="session (*.gwb) or experiment (*.json)")
    add_commands(sub)  # sweep, sweep-report, export (core/cli/commands.py)
    add_inspect(sub)   # inspect (core/cli/inspection.py)
    return parser


class Progress:
    """Epoch lines (and a live step counter on a terminal) on stderr: a trainer's observer that
    reads what it prints from the trainer's snapshots (``core.monitor.TrainingSnapshot``, what
    the window reads), taken when there is something to print."""

    def __init__(self, stream: TextIO, total_epochs: int, source: SnapshotSource, quiet: bool = False) -> None:
        self.stream = stream
        self.total = total_epochs
        self.source = source
        self.quiet = quiet
        self.live = stream.isatty()
        self._cr = "\r" if self.live else ""  # return over the live step counter
        self._last = 0.0

    def __call__(self, kind: str, info: dict[str, Any]) -> None:
        if self.quiet:
            return
        if kind == "step" and self.live and time.monotonic() - self._last > 0.2:
            self._last = time.monotonic()
            p = self.source.take().progress
            self.stream.write(f"\r  epoch {p.epoch + 1}/{self.total}  batch {p.batch}/{p.batches}  "
                              f"loss {p.loss:.4f}  ")
            self.stream.flush()
        elif kind in ("epoch", "event"):
            snap = self.source.take()
            for i in range(len(snap.epochs)):
                self.stream.write(self._cr + self.epoch_line({k: float(snap.epochs[k][i]) for k in EPOCH_METRICS}))
            if kind == "event" and snap.events:
                self.stream.write(f"{self._cr}{snap.events[-1]['message']}\n")

    def epoch_line(self, row: dict[str, float]) -> str:
        acc = "" if math.isnan(row["accuracy"]) else f"  accuracy {row['accuracy']:.4f}"
        val = "" if math.isnan(row["val_loss"]) else f"  val_loss {row['val_loss']:.4f}"
        vacc = "" if math.isnan(row["val_accuracy"]) else f"  val_accuracy {row['val_accuracy']:.4f}"
        return (f"epoch {int(row['epoch'])}/{self.total}  loss {row['loss']:.4f}{acc}{val}{vacc}  "
                f"lr {row['learning_rate']:.3g}  {row['seconds']:.2f}s\n")


class DataProgress:
    """One self-overwriting line on a terminal while the data loads (a first download of the
    book's data sets takes a while), at most every whole per cent; nothing when stderr is a file
    or a pipe, whose reader wants the one-line result, not a stream of percentages."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.shown = -1
        self.live = bool(getattr(stream, "isatty", lambda: False)())

    def __call__(self, fraction: float) -> None:
        percent = int(fraction * 100)
        if self.live and percent != self.shown:
            self.shown = percent
            end = "\n" if percent >= 100 else ""
            self.stream.write(f"\rloading data {percent:3d}%{end}")
            self.stream.flush()


class WriteFailed(Exception):
    """The run could not be saved (a full disk, a read-only folder): exit status 1."""


@contextlib.contextmanager
def _stop_on_interrupt(trainer: Any) -> Iterator[None]:
    """The first Ctrl-C asks the trainer to stop between batches (so the saved state is whole);
    a second one interrupts at once."""
    def handler(signum: int, frame: Any) -> None:
        trainer.request_stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: no signal handling
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _check_no_recovery(recovery: Path, resuming: Path | None = None) -> None:
    """A recovery copy left by a run that did not end cleanly is never overwritten by a new run."""
    if not recovery.exists() or (resuming is not None and recovery.resolve() == resuming.resolve()):
        return
    try:
        _, _, state = peek_session(recovery)
        what = f" (epoch {state.get('epoch', '?')}, step {state.get('step', '?')})"
    except SessionError:
        what = " (unreadable)"
    raise UsageError(f"{recovery} holds the recovery copy of a run that did not end cleanly{what}; continue it "
                     f"with `gradient-workbench resume {recovery} --out {recovery.parent / recovery.name[1:-9]}` "
                     "or delete it")


def _run(trainer: Any, epochs: int | None, out: Path, args: argparse.Namespace, base_dir: Path | None,
         carried: dict[str, Any] | None = None) -> int:
    """Train ``trainer`` and write ``out`` (and its recovery copy meanwhile) with ``carried``, the
    saved session's own records that are not the trainer's (where a branch came from)."""
    quiet = args.quiet
    total = trainer.epoch + epochs if epochs else trainer.experiment.training.epochs
    progress = Progress(sys.stderr, total, SnapshotSource(trainer, history=False), quiet)
    extra = {**(carried or {}), **({"base_dir": str(base_dir.resolve())} if base_dir is not None else {})}
    autosaver = None if args.no_autosave else Autosaver(recovery_path_for(out), interval=args.autosave_seconds)
    if autosaver is not None and not quiet:
        sys.stderr.write(f"autosaving to {autosaver.path} at the end of an epoch (at most every "
                         f"{autosaver.epoch_gap:g} s) and at least every {autosaver.interval:g} s\n")
    warned: list[str] = []

    def observe(kind: str, info: dict[str, Any]) -> None:
        progress(kind, info)
        if autosaver is not None and autosaver.maybe_save(trainer, kind, extra) is False \
                and autosaver.last_error is not None and not warned:
            warned.append(str(autosaver.last_error))
            sys.stderr.write(f"{progress._cr}warning: autosave to {autosaver.path} failed "
                             f"({autosaver.last_error}); training goes on\n")

    if trainer.finished:
        reason = "early_stopping"
    else:
        with _stop_on_interrupt(trainer):
            reason = trainer.fit(epochs=epochs, observer=observe)
    try:
        save_trainer(out, trainer, extra)
    except OSError as exc:
        kept = f"; the recovery copy {autosaver.path} is kept" if autosaver and autosaver.path.exists() else ""
        raise WriteFailed(f"could not write {out} ({exc}){kept}") from None
    if autosaver is not None:
        autosaver.finish()
    if not quiet:
        for issue in progress.source.take().health:
            sys.stderr.write(f"health: {issue.message}\n")
        if not reason.startswith("diverged"):
            sys.stderr.write(f"{reason}; wrote {out}\n")
    if reason.startswith("diverged"):
        # Saved (the last finite state, for inspection or a resume with other settings), but a
        # script must not take a run that blew up for a finished one.
        sys.stderr.write(f"error: the run {reason}; wrote {out}\n")
        return EXIT_DIVERGED
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    out = check_out(args.out)
    spec_path = Path(args.spec)
    experiment = load_experiment(spec_path)
    if args.epochs is not None:
        # `--epochs N` replaces the spec's count for this run, so the schedule is planned for it.
        experiment = experiment.replace(training=replace(experiment.training, epochs=args.epochs))
    if not args.no_autosave:
        _check_no_recovery(recovery_path_for(out))
    from core.training import Trainer

    folder = spec_path.parent.resolve()  # absolute, so the session says where its data and sources are
    trainer = Trainer(experiment, folder, data_progress=None if args.quiet else DataProgress(sys.stderr))
    return _run(trainer, None, out, args, folder)


def cmd_resume(args: argparse.Namespace) -> int:
    out = check_out(args.out)
    session = load_session(args.session)
    if not args.no_autosave:
        _check_no_recovery(recovery_path_for(out), resuming=Path(args.session))
    trainer = restore_trainer(session)
    epochs = args.epochs
    if epochs is None:
        epochs = trainer.experiment.training.epochs - trainer.epoch
        if epochs <= 0 and not trainer.finished:
            planned = plural(trainer.experiment.training.epochs, "planned epoch")
            raise UsageError(f"{args.session} has completed its {planned}; give --epochs N to train further")
    folder = session.state.get("base_dir")
    # A branch resumed is still that branch: where it came from stays in its state (it was dropped).
    branch = session.state.get("branch")
    carried = {"branch": branch} if isinstance(branch, dict) else None
    return _run(trainer, epochs, out, args, Path(folder) if folder else None, carried)


def describe_session(session: Session) -> str:
    """The text ``gradient-workbench info`` prints (``session_summary`` rendered)."""
    s = session_summary(session)
    exp = session.experiment
    lines = [f"session      {session.path}",
             f"experiment   {quote(exp.name)} (seed {exp.seed})",
             f"data         {exp.data.source}" + (f" ({quote(exp.data.path)})" if exp.data.path else "")
             + (f", labels {quote(exp.data.labels_path)}" if exp.data.labels_path else ""),
             f"optimizer    {exp.optimizer.name} {dict(exp.optimizer.params) or ''}".rstrip(),
             f"schedule     {exp.schedule.name} {dict(exp.schedule.params) or ''}".rstrip(),
             f"app version  {printable(str(s['app_version'] or '?')[:40])}, "
             f"saved {printable(str(s['saved'] or '?')[:40])}",
             "", "architecture"]
    for row in s["architecture"]:
        shape = "x".join(map(str, row["kernel_shape"])) if row["kernel_shape"] else "?"
        extra = ""
        if row["key"] != "output":
            extra = "".join([f", BN {row['batch_norm']}" if row["batch_norm"] else "",
                             f", dropout {row['dropout']:g}" if row["dropout"] else "",
                             f", init {row['init']}"])
        name = printable(str(row["name"])[:60])
        lines.append(f"  {name:<32} kernel {shape:<10} {row['parameters']:>10,} parameters{extra}")
    lines.append(f"  {'total':<32} {'':<17} {s['parameters']:>10,} parameters")
    lines += ["", f"epochs       {s['epochs']} trained, {s['steps']:,} steps"]
    for metric, best in s["best"].items():
        lines.append(f"best {metric:<12} {best['value']:.4f} (epoch {best['epoch']}), last "
                     + (f"{best['last']:.4f}" if best["last"] is not None else "nan"))
    if s["last_grad_norm"]:
        lines += ["", f"gradient norms at step {s['last_grad_norm']['step']:,} (input → output)"]
        for layer in s["last_grad_norm"]["layers"]:
            value = layer["grad_norm"]
            lines.append(f"  {layer['name']:<32} " + (f"{value:.3e}" if value is not None else "nan"))
    lines += ["", "health (the detector's findings at the last recorded steps)"]
    lines += [f"  {h['kind']:<10} {printable(h['layer_name'][:60])} at step {h['step']:,}: {printable(h['message'])}"
              for h in s["health"]] or ["  nothing found"]
    transfer = exp.model.transfer
    lines += ["", "lineage (layers reused from saved sessions)"]
    lines += describe_lineage(session.lineage, [printable(n[:60]) for n in layer_names(session)],
                              transfer.unfreeze_at_epoch if transfer else None)
    if s["branch"]:
        lines += ["", f"branched from {printable(str(s['branch'].get('from'))[:200])} at step "
                      f"{s['branch'].get('at_step')}"]
    if s["events"]:
        lines += ["", "events"] + [f"  step {e.get('step', '?'):>7}: {printable(str(e.get('message', ''))[:300])}"
                                   for e in s["events"]]
    return "\n".join(lines)


def cmd_branch(args: argparse.Namespace) -> int:
    """Replay the run to step K, apply the changes, write the branch; ``resume`` trains it on."""
    out = check_out(args.out)
    if same_file(out, Path(args.session)):
        # A branch is a new run beside the one it forks: written over its source, the original
        # run (all its steps after K) would be lost.
        raise UsageError(f"--out: {args.out!r} is the session being branched; write the branch to another "
                         "file (the original run is kept as it is)")
    try:
        changes = parse_changes(args.set)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    session = load_session(args.session)
    trainer = branch_trainer(session, args.at_step, changes)
    extra: dict[str, Any] = {"branch": branch_record(session.path, args.at_step, changes)}
    if isinstance(session.state.get("base_dir"), str):
        extra["base_dir"] = session.state["base_dir"]
    try:
        save_trainer(out, trainer, extra)
    except OSError as exc:
        raise WriteFailed(f"could not write {out} ({exc})") from None
    start = replay_start(session, args.at_step)
    origin = f"replayed from its checkpoint at step {start:,}" if start else "replayed from its start"
    sys.stderr.write(f"branched {args.session} at step {args.at_step:,} (epoch {trainer.epoch}, batch "
                     f"{trainer.batch_index}; {origin}){' with ' + ', '.join(args.set) if args.set else ''}; "
                     f"wrote {out}\n"
                     f"continue it with: gradient-workbench resume {out} --out {out}\n")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    refuse_experiment_file(Path(args.session), "info")
    session = load_session(args.session)
    if args.json:
        sys.stdout.write(json.dumps(session_summary(session), indent=2, allow_nan=False) + "\n")
    else:
        sys.stdout.write(describe_session(session) + "\n")
    return 0


def refuse_experiment_file(path: Path, command: str) -> None:
    """A session command given an experiment JSON: say so, and that ``train`` runs it (instead of
    "not a readable zip archive; it may be truncated", which sends the user looking for damage)."""
    try:
        with open_regular(path) as fh:          # a named pipe or a device is refused at once, not read
            head = fh.read(1)
    except OSError:
        return                                  # load_session says what is wrong with the path
    if head not in (b"{", b" ", b"\n", b"\r", b"\t"):
        return
    try:
        load_experiment(path)
    except (SpecError, OSError, ValueError):
        return
    raise UsageError(f"{path}: not a Gradient Workbench session but an experiment; `{command}` reads saved "
                     f"sessions (.gwb): train the experiment with: gradient-workbench train {path}")


COMMANDS = {"train": cmd_train, "resume": cmd_resume, "info": cmd_info, "branch": cmd_branch,
            "inspect": cmd_inspect, **MORE_COMMANDS}


def run_headless(argv: Sequence[str]) -> int:
    """Parse and run a headless command; returns the exit status."""
    try:
        args = build_parser().parse_args(list(argv))
        if args.command not in COMMANDS:
            raise UsageError(f"gradient-workbench: unknown command {args.command!r}")
        return COMMANDS[args.command](args)
    except (UsageError, SpecError, SessionError, FileNotFoundError, IsADirectoryError) as exc:
        sys.stderr.write(f"error: {printable(str(exc))}\n")  # one line, whatever a file held
        return EXIT_BAD_INPUT
    except WriteFailed as exc:
        sys.stderr.write(f"error: {printable(str(exc))}\n")
        return EXIT_WRITE_FAILED
