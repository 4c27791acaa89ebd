"""The headless commands of ``gradient-workbench``: ``train``, ``resume`` and ``info``.

Bad input (a spec that fails validation, a missing or damaged file, a bad flag) exits with
status 2 and one line on stderr; nothing is written half (sessions are saved atomically). A
save that fails exits 1; a run that diverged is saved (its last finite state) and exits 3.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from core import __version__
from core.engine.validation import printable, quote
from core.sessions.format import Session, SessionError, load_session, peek_session
from core.sessions.recovery import DEFAULT_INTERVAL, Autosaver, recovery_path_for
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
    positive_float,
    positive_int,
)
from .commands import COMMANDS as MORE_COMMANDS
from .commands import add_commands


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
    o = sub.add_parser("open", help="open a session or experiment in the window")
    o.add_argument("file", help="session (*.gwb) or experiment (*.json)")
    add_commands(sub)  # sweep, sweep-report, export (core/cli/commands.py)
    return parser


class Progress:
    """Epoch lines (and a live step counter on a terminal) on stderr."""

    def __init__(self, stream: TextIO, total_epochs: int, quiet: bool = False) -> None:
        self.stream = stream
        self.total = total_epochs
        self.quiet = quiet
        self.live = stream.isatty()
        self._cr = "\r" if self.live else ""  # return over the live step counter
        self._last = 0.0

    def __call__(self, kind: str, info: dict[str, Any]) -> None:
        if self.quiet:
            return
        if kind == "step" and self.live and time.monotonic() - self._last > 0.2:
            self._last = time.monotonic()
            self.stream.write(f"\r  epoch {info['epoch'] + 1}/{self.total}  batch {info['batch']}/"
                              f"{info['batches']}  loss {info['loss']:.4f}  ")
            self.stream.flush()
        elif kind == "epoch":
            acc = "" if math.isnan(info["accuracy"]) else f"  accuracy {info['accuracy']:.4f}"
            val = "" if math.isnan(info["val_loss"]) else f"  val_loss {info['val_loss']:.4f}"
            vacc = "" if math.isnan(info["val_accuracy"]) else f"  val_accuracy {info['val_accuracy']:.4f}"
            self.stream.write(f"{self._cr}epoch {int(info['epoch'])}/{self.total}  "
                              f"loss {info['loss']:.4f}{acc}{val}{vacc}  lr {info['learning_rate']:.3g}  "
                              f"{info['seconds']:.2f}s\n")
        elif kind == "event":
            self.stream.write(f"{self._cr}{info['message']}\n")


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


def _run(trainer: Any, epochs: int | None, out: Path, args: argparse.Namespace, base_dir: Path | None) -> int:
    quiet = args.quiet
    total = trainer.epoch + epochs if epochs else trainer.experiment.training.epochs
    progress = Progress(sys.stderr, total, quiet)
    extra = {"base_dir": str(base_dir.resolve())} if base_dir is not None else {}
    autosaver = None if args.no_autosave else Autosaver(recovery_path_for(out), interval=args.autosave_seconds)
    if autosaver is not None and not quiet:
        sys.stderr.write(f"autosaving to {autosaver.path} every epoch and at least every "
                         f"{autosaver.interval:g} s\n")
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
        for issue in trainer.health():
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
    trainer = Trainer(experiment, folder)
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
            raise UsageError(f"{args.session} has completed its {trainer.experiment.training.epochs} planned "
                             "epochs; give --epochs N to train further")
    folder = session.state.get("base_dir")
    return _run(trainer, epochs, out, args, Path(folder) if folder else None)


def describe_session(session: Session) -> str:
    """The text ``gradient-workbench info`` prints."""
    exp = session.experiment
    lines = [f"session      {session.path}",
             f"experiment   {quote(exp.name)} (seed {exp.seed})",
             f"data         {exp.data.source}" + (f" ({quote(exp.data.path)})" if exp.data.path else ""),
             f"optimizer    {exp.optimizer.name} {dict(exp.optimizer.params) or ''}".rstrip(),
             f"schedule     {exp.schedule.name} {dict(exp.schedule.params) or ''}".rstrip(),
             f"app version  {printable(str(session.manifest.get('app_version', '?'))[:40])}, "
             f"saved {printable(str(session.manifest.get('created', '?'))[:40])}",
             "", "architecture"]
    names = [printable(str(n)[:60]) for n in session.history.get("layer_names", [])]
    keys = [f"layers.{i}" for i in range(len(exp.model.layers))] + ["output"]
    total = 0
    for j, key in enumerate(keys):
        count = sum(int(a.size) for k, a in session.weights.items()
                    if k.startswith(key + ".") and not k.endswith(("moving_mean", "moving_variance")))
        total += count
        kernel = session.weights.get(f"{key}.kernel")
        shape = "x".join(map(str, kernel.shape)) if kernel is not None else "?"
        label = names[j] if j < len(names) else key
        extra = ""
        if key != "output":
            row = exp.model.layers[j]
            extra = "".join([f", BN {row.batch_norm}" if row.batch_norm else "",
                             f", dropout {row.dropout:g}" if row.dropout else "",
                             f", init {row.init_name}"])
        lines.append(f"  {label:<32} kernel {shape:<10} {count:>10,} parameters{extra}")
    lines.append(f"  {'total':<32} {'':<17} {total:>10,} parameters")
    epochs = session.history.get("epoch", np.zeros(0))
    lines += ["", f"epochs       {len(epochs)} trained, {int(session.state.get('step', 0)):,} steps"]
    for metric, best in (("val_accuracy", np.nanmax), ("val_loss", np.nanmin), ("accuracy", np.nanmax),
                         ("loss", np.nanmin)):
        values = session.history.get(metric)
        if values is not None and len(values) and np.isfinite(values).any():
            i = int(np.nanargmax(values) if best is np.nanmax else np.nanargmin(values))
            lines.append(f"best {metric:<12} {values[i]:.4f} (epoch {int(epochs[i])}), last {values[-1]:.4f}")
    grad = session.history.get("grad_norm")
    if grad is not None and len(grad):
        step = int(session.history["step"][-1])
        lines += ["", f"gradient norms at step {step:,} (input → output)"]
        for label, value in zip(names, grad[-1], strict=False):
            lines.append(f"  {label:<32} {value:.3e}")
    transfer = exp.model.transfer
    lines += ["", "lineage (layers reused from saved sessions)"]
    lines += describe_lineage(session.lineage, names, transfer.unfreeze_at_epoch if transfer else None)
    events = session.state.get("events", [])
    if events:
        lines += ["", "events"] + [f"  step {e['step']:>7}: {printable(e['message'][:300])}" for e in events]
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    sys.stdout.write(describe_session(load_session(args.session)) + "\n")
    return 0


COMMANDS = {"train": cmd_train, "resume": cmd_resume, "info": cmd_info, **MORE_COMMANDS}


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
