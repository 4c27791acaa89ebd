"""Training in a child process: the trainer runs where the window's interpreter lock cannot slow it.

A window that trains on a thread of its own process shares one interpreter lock with its
painting: every pyqtgraph call the GUI makes is time the trainer waits. Here the trainer runs in
a child process started with ``multiprocessing``'s *spawn* method (the same on Linux, macOS and
Windows, and inside a frozen build), which imports NumPy and ``core`` only — never Qt.

The two processes talk over one duplex pipe, in messages of the app's own making (tuples of
plain values, arrays and ``core.monitor.TrainingSnapshot``); nothing read from a file is ever
unpickled: a session crosses as the arrays and state of ``Trainer.state_dict``.

Parent → child (``TrainingProcess.send``), served between batches (from ``fit``'s
``should_stop`` callback, every 50 ms while paused) or at once while no job runs:

=======================  ============================================================
``("train", job)``       ``fit`` to the planned epochs (a Step while paused leaves it,
                         takes one batch, and goes back in, still paused)
``("step", job)``        one batch (and the end of the epoch if it was the last)
``("refresh", job)``     a snapshot with the confusion matrix and decision boundary
``("pause",)``           hold before the next batch; ``("resume",)`` goes on
``("stop",)``            end the current job before its next batch
``("set", experiment)``  ``Trainer.set_hyperparameters`` (an experiment dict)
``("state", request)``   reply ``("state", request, arrays, state, experiment dict)``, the
                         arrays as raw buffers (``send_with_arrays``)
``("modules", request)`` reply ``("modules", request, names)``: the child's ``sys.modules``
``("quit",)``            stop and end the process
=======================  ============================================================

Child → parent: ``("built", summary)`` once, then ``("snapshot", snap)`` paced by
``SnapshotSource`` (at most ``MAX_SNAPSHOTS_PER_SECOND``), ``("done", job, reason, summary)`` when a
job ends, ``("failed", job, message, summary)`` when it raised, ``("refused", message)`` when the
trainer could not be built (the user's to fix: a spec or a data file). ``summary`` is
``RunSummary``: where the run is, for the parent's decisions between jobs.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import pickle
import sys
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from core.engine.threads import limit_blas_threads, run_on
from core.monitor import SnapshotSource, TrainingSnapshot
from core.sessions.format import SessionError
from core.sessions.trainer_io import restore_state
from core.spec import SpecError, parse_experiment
from core.training import Trainer

#: The cores the parent keeps for itself when choosing the child's BLAS threads (the window paints on one).
RESERVED_CORES = 1
#: The cores training processes run on, set by the window when it keeps a core of its own
#: (``workbench.runtime.keep_the_window_on_its_cores``); ``None``: those of the parent.
TRAINING_CORES: frozenset[int] | None = None
#: The cores of the parent before the window kept one: where the labs' job processes run.
ALL_CORES: frozenset[int] | None = None


@dataclass(frozen=True)
class BuildOrder:
    """How the child gets its trainer: a fresh one for ``experiment`` (a spec dict), or — with
    ``arrays`` and ``state`` — one that continues a saved run exactly (``restore_state``)."""

    experiment: dict[str, Any]
    base_dir: str | None = None
    arrays: dict[str, np.ndarray] | None = None
    state: dict[str, Any] | None = None
    where: str = "session"            # names the run in a message about its saved state
    #: The window's preference (Training › Training threads…): the run's threads when the
    #: experiment leaves ``training.blas_threads`` at "auto"; ``None``: chosen by the child.
    threads: int | None = None

    def build(self) -> Trainer:
        experiment = parse_experiment(self.experiment)
        if self.arrays is None:
            return Trainer(experiment, Path(self.base_dir) if self.base_dir else None)
        return restore_state(experiment, self.arrays, self.state or {}, self.base_dir, self.where)


@dataclass(frozen=True)
class RunSummary:
    """Where the child's run is (sent with every job's end): what the parent decides with."""

    step: int
    epoch: int
    batch_index: int
    steps_per_epoch: int
    finished: bool
    experiment: dict[str, Any] = field(compare=False)
    blas_threads: int | None = None


def summary_of(trainer: Trainer) -> RunSummary:
    return RunSummary(step=int(trainer.step), epoch=int(trainer.epoch), batch_index=int(trainer.batch_index),
                      steps_per_epoch=int(trainer.steps_per_epoch), finished=bool(trainer.finished),
                      experiment=trainer.experiment.to_dict(), blas_threads=trainer.blas_threads)


class TrainingProcess:
    """The parent's handle on one child: start it, send it commands, read its messages, end it.

    Without an ``order`` the child starts, imports what training needs and waits for
    ``build(order)``: a window keeps one such spare ready so that Train does not wait for an
    interpreter to start (about half a second on a loaded 2-core machine). Qt-free; the window's
    worker thread reads ``recv`` and turns the messages into signals."""

    def __init__(self, order: BuildOrder | None = None, reserved_cores: int | None = None) -> None:
        if reserved_cores is None:
            reserved_cores = RESERVED_CORES     # read now: the benchmark compares settings in one run
        cores = TRAINING_CORES
        if cores is not None:
            reserved_cores = 0                  # the window's core is not among the child's
        context = multiprocessing.get_context("spawn")
        self.conn, child_end = context.Pipe(duplex=True)
        self.process = context.Process(target=child_main, args=(child_end, order, reserved_cores, cores),
                                       name="gradient-workbench-training", daemon=True)
        self.process.start()
        child_end.close()           # the child holds its end: EOF here when the child dies

    def build(self, order: BuildOrder) -> bool:
        """Give a spare child (started without an order) its trainer to build."""
        return self.send("build", order)

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.is_alive()

    def send(self, *message: Any) -> bool:
        """Send a command; False if the child is gone."""
        try:
            self.conn.send(message)
            return True
        except (OSError, ValueError, EOFError):
            return False

    def poll(self, timeout: float) -> bool:
        try:
            return self.conn.poll(timeout)
        except (OSError, ValueError, EOFError):
            return True             # recv() will raise EOFError: the caller sees the end

    def recv(self) -> tuple[Any, ...]:
        """The next message (raises ``EOFError`` when the child has gone). A message sent with
        ``send_with_arrays`` comes back whole: ``("state", request, arrays, state, experiment)``."""
        try:
            message = self.conn.recv()
            if message and message[0] == ARRAYS_FOLLOW:
                return recv_arrays(self.conn, message)
            return message
        except (OSError, ValueError, multiprocessing.BufferTooShort) as exc:
            raise EOFError(str(exc)) from None

    def end(self, grace: float = 2.0) -> int | None:
        """Ask the child to quit, wait ``grace`` seconds, then terminate (and kill) it; reap it.
        Returns its exit code."""
        if self.process.is_alive():
            self.send("quit")
            self.process.join(grace)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(1.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(1.0)
        self.conn.close()
        return self.process.exitcode

    def exit_description(self) -> str:
        """How the child ended, in words ("killed by signal SIGKILL", "exit status 1")."""
        self.process.join(1.0)
        code = self.process.exitcode
        if code is None:
            return "still running"
        if code < 0:
            try:
                import signal

                name = signal.Signals(-code).name
            except (ValueError, ImportError):
                name = str(-code)
            return f"killed by signal {name}"
        return f"exit status {code}"


# ---------------------------------------------------------------------------------------- the child


def child_main(conn: Connection, order: BuildOrder | None, reserved_cores: int = RESERVED_CORES,
               cores: frozenset[int] | None = None) -> None:
    """The child's whole life: build the trainer (waiting for ``("build", order)`` first if it was
    started without one), report it, serve commands until ``quit`` or EOF. With ``cores``, it
    runs on those (the window keeps the others) and chooses its threads among them."""
    _own_session()
    run_on(cores)
    if order is None:
        _warm_up()
    while order is None:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "quit":
            return
        if message[0] == "build":
            order = message[1]
    try:
        trainer = order.build()
    except (SpecError, SessionError, OSError, ValueError, KeyError, TypeError) as exc:
        _send(conn, ("refused", _refusal(exc)))
        return
    except Exception as exc:  # noqa: BLE001 — every failure is a message to the parent
        _send(conn, ("refused", describe_failure(exc)))
        return
    choose_threads(trainer, order.threads, reserved_cores)
    ChildRunner(conn, trainer).serve()


def choose_threads(trainer: Trainer, preferred: int | None, reserved_cores: int) -> None:
    """The run's threads: the experiment's count if it fixes one, else the window's preference,
    else the automatic choice leaving ``reserved_cores`` to the window."""
    if trainer.blas_threads_fixed:
        return
    if preferred is not None:
        trainer.blas_threads = preferred
    else:
        trainer.leave_cores(reserved_cores)


def _own_session() -> None:
    """Leave the window's session. Linux schedules by session under load ("autogroup"): a child
    in the window's session would split one share of the cores with the window's painting, so a
    busy machine would train a watched run at half the speed of a headless one (measured by
    benchmarks/bench_window.py). The child still ends when the window does: its pipe closes."""
    try:
        os.setsid()
    except (AttributeError, OSError):
        pass                        # not POSIX, or already a session leader


def _warm_up() -> None:
    """A spare child imports now what a first build would wait for: scikit-learn's data sets
    (the default experiment's digits; seconds on a loaded machine)."""
    try:
        importlib.import_module("sklearn.datasets")
    except ImportError:
        pass                        # the sources that need it say so when they are used


def _refusal(exc: BaseException) -> str:
    field_path = exc.path if isinstance(exc, SpecError) and exc.path else "the experiment"
    return (f"Cannot build the model for this experiment:\n{exc}\n\nThe experiment and the run on screen "
            f"are kept; change {field_path} and train again.")


def describe_failure(exc: BaseException) -> str:
    """One readable message with the innermost frame (for a bug report)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"\n\n(in {Path(frames[-1].filename).name}, line {frames[-1].lineno}, {frames[-1].name})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _send(conn: Connection, message: tuple[Any, ...]) -> None:
    try:
        conn.send(message)
    except (OSError, ValueError):
        pass                        # the parent has gone; the next recv ends the child


#: First field of a message whose arrays follow it as raw byte frames (``send_with_arrays``).
ARRAYS_FOLLOW = "arrays-follow"


def send_with_arrays(conn: Connection, message: tuple[Any, ...], arrays: Mapping[str, np.ndarray]) -> None:
    """Send ``message`` with ``arrays`` inserted as its third field, the arrays as raw buffers.

    A session's arrays (a wide network's weights and optimizer slots, a 60,000-row split) are the
    bulk of a save; pickled, each would be copied into the pickle stream and out again. Here a
    small header names each array's dtype and shape, and its bytes follow as one frame read
    straight into an array the receiver allocates (``recv_arrays``). Only numbers and fixed-width
    text cross: never an object array."""
    layout = []
    for name, array in arrays.items():
        array = np.asarray(array)
        if array.dtype.hasobject:
            raise TypeError(f"{name}: an object array cannot be sent")
        layout.append((name, array.dtype.str, array.shape))
    try:
        conn.send((ARRAYS_FOLLOW, message, layout))
        for array in arrays.values():
            conn.send_bytes(np.ascontiguousarray(array).reshape(-1).view(np.uint8))
    except (OSError, ValueError):
        pass                        # the parent has gone; the next recv ends the child


def recv_arrays(conn: Connection, header: tuple[Any, ...]) -> tuple[Any, ...]:
    """The message ``send_with_arrays`` sent, its arrays read from their frames."""
    _, message, layout = header
    arrays: dict[str, np.ndarray] = {}
    for name, dtype, shape in layout:
        array = np.empty(shape, dtype=np.dtype(dtype))
        if array.nbytes:
            received = conn.recv_bytes_into(array.reshape(-1).view(np.uint8))
            if received != array.nbytes:
                raise ValueError(f"{name}: {received} bytes arrived for an array of {array.nbytes}")
        else:
            conn.recv_bytes()
        arrays[name] = array
    return (*message[:2], arrays, *message[2:])


class ChildRunner:
    """Serves the parent's commands with one trainer (in the child)."""

    def __init__(self, conn: Connection, trainer: Trainer) -> None:
        self.conn = conn
        self.trainer = trainer
        self.source = SnapshotSource(trainer)
        self.stop = False
        self.step_request = False
        self.quitting = False
        _send(conn, ("built", summary_of(trainer)))
        self.send_snapshot(self.source.take(extras=True))

    def send_snapshot(self, snap: TrainingSnapshot) -> None:
        _send(self.conn, ("snapshot", snap))

    def serve(self) -> None:
        while not self.quitting:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                return              # the parent has gone: so does the child
            try:
                self.handle(message, idle=True)
            except Exception as exc:  # noqa: BLE001 — a bad command is reported; the child serves on
                _send(self.conn, ("failed", None, describe_failure(exc), summary_of(self.trainer)))

    def handle(self, message: tuple[Any, ...], idle: bool) -> None:
        kind = message[0]
        trainer = self.trainer
        if kind == "pause":
            trainer.pause()
        elif kind == "resume":
            trainer.resume()
        elif kind == "stop":
            if not idle:
                self.stop = True
                trainer.request_stop()
            trainer.resume()
        elif kind == "quit":
            self.quitting = self.stop = True
            trainer.request_stop()
        elif kind == "set":
            trainer.set_hyperparameters(parse_experiment(message[1]))
        elif kind == "state":
            arrays, state = trainer.state_dict()
            send_with_arrays(self.conn, ("state", message[1], state, trainer.experiment.to_dict()), arrays)
        elif kind == "modules":
            _send(self.conn, ("modules", message[1], sorted(sys.modules)))
        elif kind == "step" and not idle:
            self.step_request = True
        elif kind in ("train", "step", "refresh") and idle and len(message) == 2:   # ("step",): a paused fit's
            self.run_job(kind, message[1])

    def run_job(self, kind: str, job: int) -> None:
        self.stop = self.step_request = False
        try:
            if kind == "train":
                reason = self.train()
            elif kind == "step":
                self.one_step()
                reason = "step"
            else:
                self.send_snapshot(self.source.take(extras=True))
                reason = "refresh"
        except Exception as exc:  # noqa: BLE001 — the parent shows it; the child goes on serving
            _send(self.conn, ("failed", job, describe_failure(exc), summary_of(self.trainer)))
            return
        _send(self.conn, ("done", job, reason, summary_of(self.trainer)))

    def train(self) -> str:
        trainer = self.trainer
        while True:
            reason = trainer.fit(None, self.observe, self.should_stop)
            if self.step_request and not self.stop:
                self.step_request = False
                self.one_step()
                if trainer.epoch < trainer.experiment.training.epochs and not trainer.finished:
                    continue
                reason = "early_stopping" if trainer.finished else "completed"
            break
        self.send_snapshot(self.source.take(extras=True))
        return reason

    def one_step(self) -> None:
        trainer = self.trainer
        if trainer.finished or trainer.epoch >= trainer.experiment.training.epochs:
            return
        if trainer.batch_index >= trainer.steps_per_epoch:
            trainer.fit(epochs=1, observer=self.observe)
        with trainer.training_threads():                    # as fit() trains
            outcome = trainer.train_batch(self.observe)
        if outcome is None and trainer.batch_index >= trainer.steps_per_epoch:
            trainer.fit(epochs=1, observer=self.observe)     # closes the epoch: evaluation, history
        self.send_snapshot(self.source.take(extras=True))

    def should_stop(self) -> bool:
        """Between batches: serve whatever the parent sent meanwhile."""
        conn = self.conn
        try:
            while conn.poll(0):
                self.handle(conn.recv(), idle=False)
        except (EOFError, OSError):
            self.quitting = self.stop = True
        return self.stop or self.step_request

    def observe(self, kind: str, info: Mapping[str, Any]) -> None:
        snap = self.source.observe(kind)
        if snap is not None:
            self.send_snapshot(snap)


# ------------------------------------------------------------------------------- jobs in a process

#: How often a job's child may send progress (the parent's ``JobRunner`` coalesces again).
JOB_PROGRESS_PER_SECOND = 20
#: Seconds a stopped job's child gets to end by itself before it is terminated.
JOB_STOP_GRACE = 2.0


class JobProcessDied(RuntimeError):
    """A job's child process ended without a result (killed, out of memory, a native crash)."""


@dataclass(frozen=True)
class ProcessJob:
    """A ``JobRunner`` job that runs in a child process: ``target(progress, should_stop, *args)``.

    The window's background work that trains networks — the remedy trials the health banner runs
    while a run trains — would otherwise share the window's interpreter lock with its painting and
    the cores with the training process. Called on the runner's worker thread, a ``ProcessJob``
    starts a spawned child (NumPy and ``core`` only, one BLAS thread, its niceness raised by
    ``nice`` so that the training process and the window keep the cores), relays the child's
    progress, forwards a stop request, and returns the child's result or raises its exception.
    ``target`` must be a module-level function and ``args`` plain data: they cross as the app's own
    messages, and nothing read from a file is unpickled."""

    target: Any
    args: tuple[Any, ...] = ()
    nice: int = 0
    name: str = "gradient-workbench-job"

    def __call__(self, progress: Any, should_stop: Any) -> Any:
        context = multiprocessing.get_context("spawn")
        conn, child_end = context.Pipe(duplex=True)
        process = context.Process(target=job_child_main, args=(child_end, self.target, self.args, self.nice,
                                                               ALL_CORES),
                                  name=self.name, daemon=True)
        process.start()
        child_end.close()
        stop_sent: float | None = None
        try:
            while True:
                if stop_sent is None and should_stop():
                    stop_sent = time.monotonic()
                    _send(conn, ("stop",))
                if stop_sent is not None and time.monotonic() - stop_sent > JOB_STOP_GRACE:
                    raise JobProcessDied(f"{self.name} did not stop within {JOB_STOP_GRACE:g} s and was ended")
                try:
                    if not conn.poll(0.05):
                        continue
                    kind, value = conn.recv()
                except (EOFError, OSError):
                    process.join(1.0)
                    raise JobProcessDied(f"the job's process ended without a result "
                                         f"(exit code {process.exitcode})") from None
                if kind == "progress":
                    progress(value)
                elif kind == "result":
                    return value
                else:
                    raise value
        finally:
            conn.close()
            process.join(0.5)
            if process.is_alive():
                process.terminate()
                process.join(1.0)
            if process.is_alive():
                process.kill()
                process.join(1.0)


def job_child_main(conn: Connection, target: Any, args: tuple[Any, ...], nice: int,
                   cores: frozenset[int] | None = None) -> None:
    """A ``ProcessJob``'s child: run ``target(progress, should_stop, *args)`` and send its outcome
    (on ``cores`` when given: all of the machine's, not only the window's)."""
    _own_session()
    run_on(cores)
    if nice:
        try:
            os.nice(nice)
        except (AttributeError, OSError):
            pass                    # not POSIX: the job runs at normal priority
    stopped = False
    last_progress = -float("inf")
    held: list[Any] = []            # a progress value held back by the rate limit: sent later, never lost

    def send_progress(info: Any) -> None:
        nonlocal last_progress
        last_progress = time.monotonic()
        held.clear()
        _send(conn, ("progress", info))

    def progress(info: Any) -> None:
        if time.monotonic() - last_progress >= 1.0 / JOB_PROGRESS_PER_SECOND:
            send_progress(info)
        else:
            held[:] = [info]

    def should_stop() -> bool:
        nonlocal stopped
        if held and time.monotonic() - last_progress >= 1.0 / JOB_PROGRESS_PER_SECOND:
            send_progress(held[0])
        try:
            while not stopped and conn.poll(0):
                stopped = conn.recv()[0] == "stop"
        except (EOFError, OSError):
            stopped = True          # the parent has gone
        return stopped

    try:
        with limit_blas_threads(1):
            result = target(progress, should_stop, *args)
        if held:
            send_progress(held[0])
    except Exception as exc:  # noqa: BLE001 — every failure crosses to the parent, which raises it
        try:
            pickle.loads(pickle.dumps(exc))  # an exception the parent could not rebuild crosses as its text
            conn.send(("error", exc))
        except Exception:  # noqa: BLE001
            _send(conn, ("error", RuntimeError(describe_failure(exc))))
        return
    _send(conn, ("result", result))
