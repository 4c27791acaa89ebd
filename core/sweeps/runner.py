"""Running a sweep: every run on a local process pool, or on a Dask distributed cluster.

``run_sweep(sweep, out_dir)`` trains every run of ``sweep`` that has no result in ``out_dir``
yet and writes, for each, an ordinary session file ``run-<id>.gwb`` (atomically, so a sweep
killed at any moment leaves only whole files; started again, it skips the finished runs).
A run that raises is recorded in ``run-<id>.failed.json`` with its reason (and tried again
by the next start); a run that diverges is a result like any other (its session keeps the
last finite weights and the reason). Neither stops the other runs. After every run the
results (``results.json``, ``runs.csv``, ``configurations.csv``) are rewritten.

Workers receive plain JSON-able task dicts (the run's canonical experiment, never a
pickled object of ours) and send back the session file's bytes, which this process writes:
so the results folder needs to be visible to this process only, not to the cluster.

* Local (default): ``concurrent.futures.ProcessPoolExecutor`` with the ``spawn`` start
  method, one process per core; each worker's BLAS runs one thread (``OPENBLAS_NUM_THREADS``
  and friends set to 1 while the workers start), so N workers do not fight over the cores.
  Each worker tells the sweep which run it starts: when a worker dies (killed, out of
  memory) the whole pool breaks, but only the run that worker had is charged with the loss
  (recorded as failed the second time); the others start again on a fresh pool. Workers
  exit as soon as the sweep's own process dies.
* ``scheduler="tcp://host:8786"`` (or a ``dask.distributed.Client``): the runs go to that
  cluster through ``dask.distributed`` (the optional extra ``cluster``), imported only here.
  Its workers need Gradient Workbench installed; Dask's nanny already starts them with one
  BLAS thread each.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as _dt
import json
import multiprocessing
import multiprocessing.connection
import os
import signal
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.sessions.format import atomic_write, remove_stale_temporaries
from core.sessions.trainer_io import save_trainer
from core.spec import SpecError, parse_experiment

from .report import (
    FAILED_SUFFIX,
    SWEEP_FILE,
    failure_summary,
    load_run_summaries,
    run_row,
    write_results,
)
from .spec import Run, Sweep, SweepError

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                    "NUMEXPR_NUM_THREADS")
POLL_SECONDS = 0.2
MAX_POOL_BREAKS = 2   # a run whose worker died this often is recorded as failed
LOST_WORKER_WAIT = 5.0  # seconds to learn how the workers of a broken pool ended
EXIT_ORPHANED = 70    # a worker's exit status when it ends because the sweep's process died

Progress = Callable[[dict[str, Any]], None]


# ----------------------------------------------------------------------------- the worker side


def execute_run(task: Mapping[str, Any]) -> dict[str, Any]:
    """Train one run; plain data in, plain data out (runs in a worker process).

    ``task``: ``run_id``, ``experiment`` (canonical dict), ``base_dir`` (or None). Returns
    ``run_id``, ``status`` ("ok" or "failed"), ``reason``, ``wall_seconds`` and, if ok,
    ``session`` (the bytes of the session file)."""
    from core.training import Trainer  # the heavy part, imported in the worker

    t0 = time.perf_counter()
    run_id = str(task["run_id"])
    try:
        experiment = parse_experiment(task["experiment"])
        base_dir = task.get("base_dir")
        trainer = Trainer(experiment, base_dir)
        reason = trainer.fit()
        wall = time.perf_counter() - t0
        extra: dict[str, Any] = {"sweep": {"run_id": run_id, "reason": reason, "wall_seconds": wall}}
        if task.get("worker_losses"):
            extra["sweep"]["worker_losses"] = int(task["worker_losses"])  # lost with its worker before
        if base_dir:
            extra["base_dir"] = str(base_dir)
        with tempfile.TemporaryDirectory(prefix="gw-sweep-") as tmp:
            path = Path(tmp) / f"run-{run_id}.gwb"
            save_trainer(path, trainer, extra)
            data = path.read_bytes()
        return {"run_id": run_id, "status": "ok", "reason": reason, "wall_seconds": wall, "session": data}
    except Exception as exc:  # one failing run must not stop the others: report it instead
        message = str(exc) if isinstance(exc, SpecError) else f"{type(exc).__name__}: {exc}"
        return {"run_id": run_id, "status": "failed", "reason": message, "wall_seconds": time.perf_counter() - t0,
                "traceback": traceback.format_exc(limit=8)}


# The worker's end of the local pool: where it says which run it starts (set by _init_worker).
_started_runs: Any = None


def _init_worker(started: Any) -> None:
    """Initializer of every local worker: keep the queue that hears which run each worker
    starts, and exit as soon as the sweep's process dies (otherwise a killed sweep would leave
    its workers training for minutes, with nobody to receive their results)."""
    global _started_runs
    _started_runs = started
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True,
                         name="exit-with-the-sweep").start()


def _exit_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])  # ready when the parent process has ended
    os._exit(EXIT_ORPHANED)


def _execute_local(task: Mapping[str, Any]) -> dict[str, Any]:
    """``execute_run`` in a local worker, first telling the sweep which process runs it (so a
    worker's death is charged to the run it had, not to runs still waiting in the queue)."""
    if _started_runs is not None:
        _started_runs.put((str(task["run_id"]), os.getpid()))  # SimpleQueue: written before training starts
    return execute_run(task)


# ----------------------------------------------------------------------------- backends


@contextlib.contextmanager
def single_threaded_blas_for_children() -> Iterator[None]:
    """Set the BLAS / OpenMP thread variables to 1 while worker processes start (they inherit
    the environment; this process's own BLAS, already loaded, is unaffected), then restore."""
    saved = {k: os.environ.get(k) for k in THREAD_VARIABLES}
    os.environ.update({k: "1" for k in THREAD_VARIABLES})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class LocalBackend:
    """A process pool on this machine ('spawn': no state inherited from this process)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.description = f"{workers} local worker process{'es' if workers != 1 else ''}"
        self._env = single_threaded_blas_for_children()
        self._env.__enter__()
        self._context = multiprocessing.get_context("spawn")
        self.running: dict[str, int] = {}  # run id → pid of the worker training it
        self._pool = self._new_pool()

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        self._started = self._context.SimpleQueue()
        self.running = {}
        return cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=self._context,
                                      initializer=_init_worker, initargs=(self._started,))

    def submit(self, task: dict[str, Any]) -> cf.Future:
        return self._pool.submit(_execute_local, task)

    def _hear_starts(self) -> None:
        while not self._started.empty():
            run_id, pid = self._started.get()
            self.running[run_id] = pid

    def wait(self, futures: set[Any]) -> set[Any]:
        done, _ = cf.wait(futures, timeout=POLL_SECONDS, return_when=cf.FIRST_COMPLETED)
        self._hear_starts()
        return done

    def result(self, future: cf.Future) -> dict[str, Any]:
        outcome = future.result()
        self.running.pop(str(outcome.get("run_id")), None)
        return outcome

    def is_broken(self, exc: BaseException) -> bool:
        return isinstance(exc, cf.process.BrokenProcessPool)

    def lost_runs(self) -> set[str]:
        """After the pool broke: the runs that were on a worker that died by itself (killed,
        out of memory), not those the pool then stopped (SIGTERM) or that never started."""
        self._hear_starts()
        processes = dict(getattr(self._pool, "_processes", None) or {})
        # The pool reports the break as soon as a worker's pipe closes, which can be a moment
        # before that process has fully ended; the pool stops the others right after. Wait
        # (briefly) until every exit status is known, so the SIGTERM ones can be told apart.
        deadline = time.monotonic() + LOST_WORKER_WAIT
        for process in processes.values():
            with contextlib.suppress(Exception):
                process.join(max(0.0, deadline - time.monotonic()))
        # join() can return with no status yet: when the pool's own thread reaps the process
        # first, this thread's waitpid fails and the status appears only once that thread has
        # stored it (seen: a SIGKILLed worker's status unknown here, so every run was charged).
        while any(p.exitcode is None for p in processes.values()) and time.monotonic() < deadline:
            time.sleep(0.01)
        died = {pid for pid, process in processes.items()
                if process.exitcode is not None and process.exitcode != -signal.SIGTERM}
        lost = {run_id for run_id, pid in self.running.items() if pid in died}
        # a worker ended by SIGTERM from outside looks like one the pool stopped: then every
        # run that was training is charged (never one that was only waiting)
        return lost or set(self.running)

    def renew(self) -> None:
        """After a worker died (killed, out of memory): a fresh pool for the runs left."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def close(self, cancel: bool = False) -> None:
        if cancel:
            # Stop at once: running trainings are abandoned (redone by the next start). Python
            # 3.11 has no public way to end busy workers, so end them by their process handles.
            for process in list(getattr(self._pool, "_processes", {}).values()):
                with contextlib.suppress(Exception):
                    process.terminate()
        self._pool.shutdown(wait=not cancel, cancel_futures=True)
        self._env.__exit__(None, None, None)


class DaskBackend:
    """Runs on a Dask distributed cluster; ``scheduler`` is an address or a ``Client``."""

    def __init__(self, scheduler: Any) -> None:
        try:
            from dask.distributed import Client
        except ImportError:
            raise SweepError("scheduler", "running on a cluster needs dask.distributed: "
                                          "pip install 'gradient-workbench[cluster]'") from None
        self._own = isinstance(scheduler, str)
        try:
            self.client = Client(scheduler, timeout="10s") if self._own else scheduler
        except (OSError, TimeoutError, ValueError) as exc:
            raise SweepError("scheduler", f"cannot connect to the Dask scheduler at {scheduler!r} ({exc})") \
                from None
        info = self.client.scheduler_info()
        workers = info.get("workers", {})
        self.workers = max(1, sum(int(w.get("nthreads", 1)) for w in workers.values()))
        self.description = f"Dask cluster {info.get('address', scheduler)} ({len(workers)} workers, " \
                           f"{self.workers} threads)"

    def submit(self, task: dict[str, Any]) -> Any:
        # pure=False: a run is never taken from Dask's cache; the key names the run.
        return self.client.submit(execute_run, task, pure=False, key=f"gradient-workbench-run-{task['run_id']}-"
                                                                      f"{time.monotonic_ns()}")

    def wait(self, futures: set[Any]) -> set[Any]:
        done = {f for f in futures if f.done()}
        if not done:
            time.sleep(POLL_SECONDS)
        return done

    def result(self, future: Any) -> dict[str, Any]:
        return future.result()

    def is_broken(self, exc: BaseException) -> bool:
        return False

    def lost_runs(self) -> set[str]:  # never asked: is_broken is always False
        return set()

    def renew(self) -> None:  # Dask reschedules the tasks of a lost worker itself
        pass

    def close(self, cancel: bool = False) -> None:
        if self._own:
            self.client.close()


# ----------------------------------------------------------------------------- the sweep loop


@dataclass
class SweepOutcome:
    """What ``run_sweep`` did: counts, the results (as written to ``results.json``), whether
    it was stopped."""

    total: int
    skipped: int
    completed: int
    failed: int
    stopped: bool
    wall_seconds: float
    results: dict[str, Any] = field(default_factory=dict)


def _write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda fh: fh.write(data))


def preflight(sweep: Sweep) -> None:
    """Build a trainer for each distinct data / output / transfer choice, so a missing data
    file or a loss that does not fit the data is reported before anything runs."""
    from core.training import Trainer

    seen: set[str] = set()
    for config in sweep.configurations:
        exp = config.experiment
        key = json.dumps([exp["data"], exp["model"]["output"], exp["model"].get("transfer")], sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        try:
            Trainer(parse_experiment(exp), sweep.base_dir)
        except SpecError as exc:
            raise SweepError(exc.path, f"{exc.message}; in configuration {config.index} ({config.label})") from None


def run_sweep(sweep: Sweep, out_dir: str | Path, *, workers: int | None = None, scheduler: Any = None,
              progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
              check: bool = True) -> SweepOutcome:
    """Train every run of ``sweep`` that has no result in ``out_dir`` yet (see the module doc).

    ``workers``: local processes (default: every core); ``scheduler``: a Dask scheduler
    address or ``Client`` instead. ``progress`` gets a plain dict after every finished run and
    about once a second (``done``, ``running``, ``failed``, ``pending``, ``total``,
    ``eta_seconds``, ``last``); ``should_stop()`` is asked as often and ends the sweep early
    (unfinished runs are redone by the next start)."""
    started = time.time()
    t0 = time.perf_counter()
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.gwb"):
        remove_stale_temporaries(stale)
    _write_bytes(folder / SWEEP_FILE, (json.dumps(sweep.to_dict(), indent=2) + "\n").encode("utf-8"))
    runs = sweep.runs()
    summaries = {k: v for k, v in load_run_summaries(sweep, folder, runs).items() if v["status"] != "failed"}
    pending = [r for r in runs if r.run_id not in summaries]
    skipped = len(runs) - len(pending)
    if check and pending:
        preflight(sweep)
    timing = {"started": _dt.datetime.fromtimestamp(started, _dt.UTC).isoformat(timespec="seconds")}

    def rows() -> list[dict[str, Any]]:
        return [run_row(sweep, r, summaries.get(r.run_id)) for r in runs]

    def save_results() -> dict[str, Any]:
        timing["wall_seconds"] = time.perf_counter() - t0
        return write_results(folder, sweep, rows(), {"timing": dict(timing), "backend": description})

    description = "nothing to run"
    completed = failed = 0
    stopped = False
    if pending:
        backend: LocalBackend | DaskBackend = (DaskBackend(scheduler) if scheduler is not None
                                               else LocalBackend(workers or os.cpu_count() or 1))
        description = backend.description
        breaks: dict[str, int] = {}
        futures: dict[Any, Run] = {}
        try:
            for run in pending:
                futures[backend.submit(_task(sweep, run))] = run
            last_tick = 0.0
            while futures:
                if should_stop is not None and should_stop():
                    stopped = True
                    break
                broken: list[Run] = []
                lost: set[str] = set()
                for future in backend.wait(set(futures)):
                    run = futures.pop(future)
                    try:
                        outcome = backend.result(future)
                    except BaseException as exc:  # the worker died, or the cluster lost the task
                        if backend.is_broken(exc):
                            # Every run in the pool fails with it; which ones were on the worker
                            # that died is asked once, while the pool's processes are still known.
                            lost = lost or backend.lost_runs()
                            broken.append(run)
                            continue
                        outcome = {"run_id": run.run_id, "status": "failed",
                                   "reason": f"worker lost: {type(exc).__name__}: {exc}", "wall_seconds": None}
                    completed, failed = _record(folder, sweep, run, outcome, summaries, completed, failed)
                    if progress is not None:
                        progress(_progress_info(runs, summaries, futures, backend.workers, t0, skipped,
                                                run_row(sweep, run, summaries.get(run.run_id))))
                    save_results()
                if broken:
                    backend.renew()
                    retry = []
                    # Only the runs that were on the dead worker are charged (also when their
                    # futures had not reported the break yet); the others just start again.
                    for run in [*broken, *futures.values()]:
                        if run.run_id in lost:
                            breaks[run.run_id] = breaks.get(run.run_id, 0) + 1
                            if progress is not None:
                                progress({**_progress_info(runs, summaries, {}, backend.workers, t0, skipped, None),
                                          "worker_lost": {"run_id": run.run_id, "times": breaks[run.run_id]}})
                            if breaks[run.run_id] >= MAX_POOL_BREAKS:
                                outcome = {"run_id": run.run_id, "status": "failed", "wall_seconds": None,
                                           "reason": f"worker lost: the process training it died "
                                                     f"{breaks[run.run_id]} times (killed, or out of memory)"}
                                completed, failed = _record(folder, sweep, run, outcome, summaries, completed,
                                                            failed)
                                save_results()
                                continue
                        retry.append(run)
                    futures = {backend.submit(_task(sweep, r, breaks.get(r.run_id, 0))): r for r in retry}
                if progress is not None and time.perf_counter() - last_tick > 1.0:
                    last_tick = time.perf_counter()
                    progress(_progress_info(runs, summaries, futures, backend.workers, t0, skipped, None))
        finally:
            backend.close(cancel=bool(futures))
    timing["finished"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    results = save_results()
    return SweepOutcome(total=len(runs), skipped=skipped, completed=completed, failed=failed, stopped=stopped,
                        wall_seconds=time.perf_counter() - t0, results=results)


def _task(sweep: Sweep, run: Run, worker_losses: int = 0) -> dict[str, Any]:
    task = {"run_id": run.run_id, "experiment": run.experiment, "base_dir": sweep.base_dir}
    if worker_losses:
        task["worker_losses"] = worker_losses
    return task


def _record(folder: Path, sweep: Sweep, run: Run, outcome: Mapping[str, Any], summaries: dict[str, Any],
            completed: int, failed: int) -> tuple[int, int]:
    """Write a finished run's session (or its failure record) and its summary."""
    failed_path = folder / (run.file_name[:-4] + FAILED_SUFFIX)
    if outcome["status"] == "ok":
        _write_bytes(folder / run.file_name, outcome["session"])
        failed_path.unlink(missing_ok=True)
        summaries.update(load_run_summaries(sweep, folder, [run]))
        return completed + 1, failed
    record = {"run_id": run.run_id, "seed": run.seed, "configuration": run.configuration.index,
              "label": run.configuration.label, "reason": outcome["reason"],
              "wall_seconds": outcome.get("wall_seconds"), "traceback": outcome.get("traceback"),
              "experiment": run.experiment}
    _write_bytes(failed_path, (json.dumps(record, indent=2) + "\n").encode("utf-8"))
    summaries[run.run_id] = failure_summary(record)
    return completed, failed + 1


def _progress_info(runs: list[Run], summaries: Mapping[str, Any], futures: Mapping[Any, Run], workers: int,
                   t0: float, skipped: int, last: dict[str, Any] | None) -> dict[str, Any]:
    failed = sum(1 for s in summaries.values() if s["status"] == "failed")
    remaining = len(futures)
    finished_here = len(runs) - remaining - skipped
    elapsed = time.perf_counter() - t0
    eta = elapsed / finished_here * remaining if finished_here > 0 else None
    return {"total": len(runs), "done": len(summaries) - failed, "failed": failed,
            "running": min(workers, remaining), "pending": remaining, "elapsed_seconds": elapsed,
            "eta_seconds": eta, "last": last}
