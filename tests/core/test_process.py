"""core.process: a trainer in a spawned child, driven over a pipe, equals one trained in place."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from core.process import BuildOrder, RunSummary, TrainingProcess, choose_threads
from core.spec import parse_experiment
from core.training import Trainer


def spec(epochs: int = 3) -> dict[str, Any]:
    return {
        "name": "tiny moons", "seed": 7,
        "data": {"source": "moons", "params": {"n_samples": 200}, "validation_split": 0.2, "test_split": 0.0},
        "model": {"layers": [{"units": 16, "init": "he_normal", "activation": "elu"}] * 2},
        "optimizer": {"name": "adam", "learning_rate": 0.01},
        "training": {"epochs": epochs, "batch_size": 32},
    }


def assert_same_arrays(theirs: dict[str, np.ndarray], mine: dict[str, np.ndarray]) -> None:
    """Bit for bit, except the wall-clock seconds of each epoch."""
    assert theirs.keys() == mine.keys()
    for key in mine:
        if key != "history/seconds":
            np.testing.assert_array_equal(theirs[key], mine[key], err_msg=key)


def wait_for(child: TrainingProcess, kind: str, timeout: float = 60.0) -> tuple[Any, ...]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll(0.05):
            message = child.recv()
            if message[0] == kind:
                return message
            assert message[0] not in ("failed", "refused"), message
    raise AssertionError(f"no {kind!r} message within {timeout} s")


def test_a_run_trained_in_the_child_with_a_mid_run_edit_equals_one_trained_in_place() -> None:
    child = TrainingProcess(BuildOrder(spec()))
    try:
        built = wait_for(child, "built")[1]
        assert isinstance(built, RunSummary) and built.step == 0
        child.send("step", 1)
        assert wait_for(child, "done")[1:3] == (1, "step")
        faster = dict(spec(), optimizer={"name": "adam", "learning_rate": 0.002})
        child.send("set", faster)
        child.send("train", 2)
        _, job, reason, summary = wait_for(child, "done")
        assert (job, reason, summary.epoch) == (2, "completed", 3)
        child.send("state", 9)
        _, request, arrays, state, experiment = wait_for(child, "state")
        assert request == 9 and experiment["optimizer"]["learning_rate"] == 0.002
    finally:
        assert child.end() == 0
    here = Trainer(parse_experiment(spec()))
    here.train_batch()
    here.set_hyperparameters(parse_experiment(faster))
    here.fit()
    mine, _ = here.state_dict()
    assert_same_arrays(arrays, mine)
    assert state["step"] == here.step


def test_a_child_continues_from_sent_state_bit_for_bit() -> None:
    whole = Trainer(parse_experiment(spec()))
    whole.fit()
    half = Trainer(parse_experiment(spec()))
    half.fit(epochs=1)
    arrays, state = half.state_dict()
    child = TrainingProcess()                     # a spare: started before it knows what to build
    try:
        assert not child.poll(0.2)
        child.build(BuildOrder(spec(), arrays=arrays, state=state))
        assert wait_for(child, "built")[1].epoch == 1
        child.send("train", 1)
        wait_for(child, "done")
        child.send("state", 1)
        theirs = wait_for(child, "state")[2]
    finally:
        child.end()
    assert_same_arrays(theirs, whole.state_dict()[0])


def test_pause_step_and_stop_reach_the_child_between_batches() -> None:
    child = TrainingProcess(BuildOrder(spec(epochs=100_000)))
    try:
        wait_for(child, "built")
        child.send("train", 1)
        wait_for(child, "snapshot")
        child.send("pause")
        time.sleep(0.3)
        child.send("state", 1)
        before = wait_for(child, "state")[3]["step"]
        child.send("step")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            child.send("state", 2)
            after = wait_for(child, "state")[3]["step"]
            if after != before:
                break
        assert after == before + 1              # one batch, and paused again
        child.send("stop")
        _, job, reason, _ = wait_for(child, "done")
        assert (job, reason) == (1, "stopped")
    finally:
        child.end()
    assert not child.alive()


def test_a_spec_the_data_cannot_satisfy_is_refused_with_the_field() -> None:
    bad = dict(spec(), data={"source": "csv", "params": {"path": "/nonexistent/x.csv", "target": "y"}})
    child = TrainingProcess(BuildOrder(bad))
    try:
        deadline = time.monotonic() + 60
        while not child.poll(0.05):
            assert time.monotonic() < deadline
        message = child.recv()
    finally:
        child.end()
    assert message[0] == "refused" and "Cannot build the model" in message[1]


def test_the_child_never_imports_qt() -> None:
    child = TrainingProcess(BuildOrder(spec()))
    try:
        wait_for(child, "built")
        child.send("train", 1)
        wait_for(child, "done")
        child.send("modules", 3)
        _, request, modules = wait_for(child, "modules")
    finally:
        child.end()
    assert request == 3
    assert "core.training" in modules and "numpy" in modules
    assert not [m for m in modules if m.startswith(("PySide6", "pyqtgraph", "shiboken6", "workbench"))]


def test_a_killed_child_is_seen_as_gone(tmp_path: Any) -> None:
    import os
    import signal

    child = TrainingProcess(BuildOrder(spec(epochs=100_000)))
    wait_for(child, "built")
    child.send("train", 1)
    wait_for(child, "snapshot")
    os.kill(child.pid, signal.SIGKILL)
    with pytest.raises(EOFError):
        while True:
            child.poll(1.0)
            child.recv()
    assert child.exit_description() == "killed by signal SIGKILL"
    child.end()


# ----------------------------------------------------------------------------- jobs in a process


def job_sum(progress: Any, should_stop: Any, n: int) -> dict[str, Any]:
    """A job that reports progress, and what the child it ran in looks like."""
    import os
    import sys

    total = 0
    for i in range(n):
        total += i
        progress(i)
    return {"total": total, "nice": os.nice(0), "pid": os.getpid(), "qt": "PySide6" in sys.modules}


def job_until_stopped(progress: Any, should_stop: Any) -> int:
    checks = 0
    progress("started")
    while not should_stop():
        checks += 1
        time.sleep(0.001)
    return checks


def job_refusing(progress: Any, should_stop: Any, field: str) -> None:
    from core.spec import SpecError

    raise SpecError(field, "must be positive")


def job_dying(progress: Any, should_stop: Any) -> None:
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def test_a_process_job_returns_its_result_from_a_niced_child_without_qt() -> None:
    import os

    from core.process import ProcessJob

    seen: list[Any] = []
    result = ProcessJob(job_sum, (1000,), nice=5)(seen.append, lambda: False)
    assert result["total"] == sum(range(1000))
    assert result["pid"] != os.getpid() and not result["qt"]
    assert result["nice"] == os.nice(0) + 5
    # progress is relayed, coalesced by the child (20 a second): the first and the last value go out
    assert seen and seen[0] == 0 and seen[-1] == 999 and len(seen) < 1000


def test_a_process_job_stops_when_asked_and_its_child_is_reaped() -> None:
    import multiprocessing

    from core.process import ProcessJob

    progress: list[Any] = []
    asked = {"at": None}

    def should_stop() -> bool:
        if progress and asked["at"] is None:
            asked["at"] = time.monotonic()
        return asked["at"] is not None

    checks = ProcessJob(job_until_stopped)(progress.append, should_stop)
    assert progress == ["started"] and isinstance(checks, int)
    assert time.monotonic() - asked["at"] < 2.0
    assert not multiprocessing.active_children()


def test_a_process_jobs_errors_cross_as_their_own_type_and_a_dead_child_is_reported() -> None:
    from core.process import JobProcessDied, ProcessJob
    from core.spec import SpecError

    with pytest.raises(SpecError, match="training.epochs: must be positive"):
        ProcessJob(job_refusing, ("training.epochs",))(lambda _: None, lambda: False)
    with pytest.raises(JobProcessDied, match="ended without a result"):
        ProcessJob(job_dying)(lambda _: None, lambda: False)


def test_arrays_cross_the_pipe_as_raw_buffers_exactly() -> None:
    import multiprocessing
    import threading

    from core.process import ARRAYS_FOLLOW, recv_arrays, send_with_arrays

    rng = np.random.default_rng(3)
    arrays = {"weights": rng.standard_normal((300, 784)).astype(np.float32),
              "split/train": rng.permutation(60_000), "names": np.array(["dense_0", "output"]),
              "flags": np.array([True, False, True]), "empty": np.zeros((0, 5)), "scalar": np.array(2.5),
              "strided": np.arange(20.0)[::3]}
    ours, theirs = multiprocessing.Pipe(duplex=True)
    sender = threading.Thread(target=send_with_arrays, args=(theirs, ("state", 7, {"step": 3}, {"seed": 1}), arrays))
    sender.start()                           # large frames: the reader must read while it writes
    header = ours.recv()
    assert header[0] == ARRAYS_FOLLOW
    kind, request, received, state, experiment = recv_arrays(ours, header)
    sender.join()
    assert (kind, request, state, experiment) == ("state", 7, {"step": 3}, {"seed": 1})
    assert received.keys() == arrays.keys()
    for name, array in arrays.items():
        assert received[name].dtype == array.dtype and received[name].shape == array.shape, name
        np.testing.assert_array_equal(received[name], array, err_msg=name)
    with pytest.raises(TypeError, match="bad: an object array cannot be sent"):
        send_with_arrays(theirs, ("state", 8), {"bad": np.array([{}], dtype=object)})
def test_checkpoints_travel_with_the_state_a_save_asks_for_and_never_with_a_snapshot() -> None:
    """The window saves what the child's ``("state", ...)`` reply holds, checkpoints included; the
    snapshots the plots are drawn from carry none (they would slow every one of them)."""
    import pickle

    from core.monitor import SnapshotSource

    kept = dict(spec(), training={"epochs": 3, "batch_size": 32, "checkpoints": {"every": 2, "keep": 20}})
    child = TrainingProcess(BuildOrder(kept))
    try:
        wait_for(child, "built")
        child.send("train", 1)
        wait_for(child, "done")
        child.send("state", 2)
        _, _, arrays, state, _ = wait_for(child, "state")
    finally:
        child.end()
    here = Trainer(parse_experiment(kept))
    here.fit()
    assert [s["step"] for s in state["checkpoints"]["states"]] == here.checkpoints.steps != []
    assert_same_arrays(arrays, here.state_dict()[0])
    sizes = []
    for checkpoints in ({"every": 2, "keep": 20}, {"every": 2, "keep": 0}):
        trainer = Trainer(parse_experiment(dict(kept, training={**kept["training"], "checkpoints": checkpoints})))
        source = SnapshotSource(trainer)
        trainer.fit(epochs=2)
        sizes.append(len(pickle.dumps(source.take(extras=True))))
    # the same snapshot but for the experiment's own JSON; the copies are a hundred times more
    assert trainer.checkpoints.nbytes == 0 and here.checkpoints.nbytes > 100 * 200
    assert abs(sizes[0] - sizes[1]) < 200, sizes


@pytest.mark.parametrize(("fixed", "preferred", "want"), [("auto", 4, 4), ("auto", None, 1), (2, 4, 2), (2, None, 2)])
def test_the_experiments_count_wins_then_the_windows_preference_then_the_choice(fixed, preferred, want):
    spec = {"seed": 1, "data": {"source": "moons", "params": {"n_samples": 100}},
            "model": {"layers": [{"units": 8}]}, "training": {"epochs": 1, "blas_threads": fixed}}
    trainer = Trainer(parse_experiment(spec))
    choose_threads(trainer, preferred, reserved_cores=1)
    assert trainer.blas_threads == want       # a small network: the automatic choice is one thread
    order = BuildOrder(spec, threads=preferred)
    assert order.threads == preferred

