"""Session files: exact resume, safe writes and snapshots (hostile files: test_session_loading.py)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core.engine.optimizers import OPTIMIZERS
from core.engine.schedules import SCHEDULES
from core.sessions.format import load_session
from core.sessions.trainer_io import restore_trainer, save_trainer, take_snapshot, write_snapshot
from core.spec import parse_experiment
from core.training import Trainer

ROOT = Path(__file__).resolve().parents[3]

SCHEDULE_PARAMS = {
    "constant": {}, "power": {"steps": 5}, "exponential": {"steps": 10},
    "piecewise": {"boundaries": [2], "values": [0.01, 0.002]},
    "performance": {"patience": 1, "factor": 0.5}, "one_cycle": {},
}


def resumable_spec(optimizer: str = "nadam", schedule: str = "one_cycle", epochs: int = 4, **training) -> dict:
    """Tiny, but with every source of state on: input and hidden dropout, batch norm before and
    after the activation, shuffling, ℓ2, early stopping (best weights) and noise augmentation."""
    return {
        "seed": 3,
        "data": {"source": "moons", "params": {"n_samples": 60}, "validation_split": 0.25,
                 "augmentation": {"type": "noise", "stddev": 0.05}},
        "model": {"input_dropout": 0.1,
                  "layers": [{"units": 6, "batch_norm": "before_activation", "dropout": 0.2},
                             {"units": 5, "batch_norm": "after_activation"}]},
        "optimizer": {"name": optimizer, "learning_rate": 0.01},
        "schedule": {"name": schedule, **SCHEDULE_PARAMS[schedule]},
        "regularization": {"l2": 1e-3, "early_stopping": {"enabled": True, "patience": 2}},
        "training": {"epochs": epochs, "batch_size": 8, **training},
    }


def assert_same_run(a: Trainer, b: Trainer, checkpoints: bool = True) -> None:
    """Bit-for-bit equality of everything a trainer holds, except wall-clock seconds (and,
    with ``checkpoints=False``, the checkpoints it holds)."""
    arrays_a, state_a = a.state_dict(checkpoints=checkpoints)
    arrays_b, state_b = b.state_dict(checkpoints=checkpoints)
    assert sorted(arrays_a) == sorted(arrays_b)
    for key, x in arrays_a.items():
        if key == "history/seconds":
            continue
        y = arrays_b[key]
        assert x.dtype == y.dtype and x.shape == y.shape, key
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), key
    assert state_a.pop("epoch_seconds") >= 0 and state_b.pop("epoch_seconds") >= 0
    assert state_a == state_b


def resumed(tmp_path: Path, trainer: Trainer, name: str = "run.gwb") -> Trainer:
    path = tmp_path / name
    save_trainer(path, trainer)
    return restore_trainer(load_session(path))


@pytest.mark.parametrize("schedule", SCHEDULES.names())
@pytest.mark.parametrize("optimizer", OPTIMIZERS.names())
def test_train_save_load_train_equals_training_straight(tmp_path, optimizer, schedule):
    spec = parse_experiment(resumable_spec(optimizer, schedule))
    straight = Trainer(spec)
    straight.fit(epochs=4)
    first = Trainer(spec)
    first.fit(epochs=2)
    second = resumed(tmp_path, first)
    assert second.step == first.step and second.epoch == 2
    second.fit(epochs=2)
    assert second.epoch == straight.epoch
    assert_same_run(straight, second)
    assert second.recorder.size == straight.step  # every step's diagnostics, none twice


def test_the_matrix_is_not_trivially_equal(tmp_path):
    """The comparison can fail: a different seed, or a resumed run that loses the RNG stream,
    differs somewhere."""
    spec = parse_experiment(resumable_spec())
    straight = Trainer(spec)
    straight.fit(epochs=4)
    other = Trainer(parse_experiment({**resumable_spec(), "seed": 4}))
    other.fit(epochs=4)
    with pytest.raises(AssertionError):
        assert_same_run(straight, other)
    first = Trainer(spec)
    first.fit(epochs=2)
    second = resumed(tmp_path, first)
    second.rng = np.random.default_rng(0)  # what forgetting the RNG state would do
    second.fit(epochs=2)
    with pytest.raises(AssertionError):
        assert_same_run(straight, second)


@pytest.mark.parametrize("stop_after", [1, 3, 5])
def test_saving_mid_epoch_after_request_stop_resumes_exactly(tmp_path, stop_after):
    spec = parse_experiment(resumable_spec("adam", "exponential", epochs=3))
    straight = Trainer(spec)
    straight.fit()
    first = Trainer(spec)

    def stop_at(kind, info):
        if kind == "step" and info["step"] == first.steps_per_epoch + stop_after:
            first.request_stop()

    assert first.fit(observer=stop_at) == "stopped"
    assert first.epoch == 1 and first.batch_index == stop_after
    second = resumed(tmp_path, first)
    assert second.batch_index == stop_after
    assert second.fit(epochs=spec.training.epochs - second.epoch) == "completed"
    assert_same_run(straight, second)


@pytest.mark.parametrize("steps", [3, 6, 9])
def test_saving_after_single_batches_resumes_exactly(tmp_path, steps):
    """The GUI's Step button: train_batch calls (fit(epochs=1) closes a finished epoch, as the
    GUI's worker does), save, reopen, train on. With 6 batches an epoch, 6 steps saves with
    every batch done but the epoch not yet closed."""
    spec = parse_experiment(resumable_spec("momentum", "piecewise", epochs=3))
    straight = Trainer(spec)
    straight.fit()
    first = Trainer(spec)
    assert first.steps_per_epoch == 6
    for _ in range(steps):
        if first.batch_index == first.steps_per_epoch:
            first.fit(epochs=1)
        assert first.train_batch() is None
    second = resumed(tmp_path, first)
    assert second.batch_index == first.batch_index
    second.fit()
    assert_same_run(straight, second)


def test_one_cycle_keeps_its_plan_when_resumed_past_it(tmp_path):
    """`resume --epochs M` past training.epochs: the plan made for training.epochs is kept (the
    straight run with fit(epochs=N+M) follows the same plan), and 1cycle stays at its final rate."""
    spec = parse_experiment(resumable_spec("sgd", "one_cycle", epochs=2,
                                           ) | {"regularization": {"l2": 1e-3}})
    straight = Trainer(spec)
    straight.fit(epochs=4)
    first = Trainer(spec)
    first.fit()
    second = resumed(tmp_path, first)
    second.fit(epochs=2)
    assert_same_run(straight, second)
    rates = second.recorder["learning_rate"]
    planned = 2 * second.steps_per_epoch
    assert rates[planned - 1] == pytest.approx(0.01 / 1000)
    assert (rates[planned:] == rates[planned - 1]).all()


def test_mid_epoch_save_keeps_the_roll_back_point(tmp_path):
    """on_nan = "rollback" returns to the start of the epoch; a session saved half-way through
    that epoch must still know that point, or a resumed run would stop where the straight
    one rolls back."""
    spec = parse_experiment({
        "seed": 3, "data": {"source": "moons", "params": {"n_samples": 200}, "validation_split": 0.25},
        "model": {"layers": [{"units": 16, "init": {"name": "random_normal", "stddev": 1.0},
                              "activation": "relu"}] * 3},
        "optimizer": {"name": "sgd", "learning_rate": 0.3},
        "training": {"epochs": 3, "batch_size": 8, "on_nan": "rollback"}})
    straight = Trainer(spec)
    assert straight.fit() == "completed"
    assert straight.rollbacks == 1 and "at step 18" in straight.events[0]["message"]
    first = Trainer(spec)
    for _ in range(10):
        first.train_batch()
    second = resumed(tmp_path, first)
    assert second.fit() == "completed"
    assert_same_run(straight, second)


def test_a_snapshot_is_a_copy_that_another_thread_can_write(tmp_path):
    trainer = Trainer(parse_experiment(resumable_spec(epochs=3)))
    trainer.fit(epochs=1)
    snapshot = take_snapshot(trainer, {"note": "epoch 1"})
    at_snapshot = trainer.state_dict()[0]
    trainer.fit(epochs=1)  # training goes on while the snapshot waits to be written
    path = tmp_path / "snap.gwb"
    write_snapshot(path, snapshot)
    session = load_session(path)
    assert session.state["epoch"] == 1 and session.state["note"] == "epoch 1"
    for key, value in session.weights.items():
        np.testing.assert_array_equal(value, at_snapshot[f"weights/{key}"])
    assert not np.array_equal(session.weights["layers.0.kernel"], trainer.network.state()["layers.0.kernel"])


# ----------------------------------------------------------------------------- safe writes


def _tiny_trained(epochs: int = 1) -> Trainer:
    trainer = Trainer(parse_experiment(resumable_spec(epochs=3)))
    trainer.fit(epochs=epochs)
    return trainer


CHILD = """
import os, sys, zipfile
sys.path.insert(0, {root!r})
from core.sessions.trainer_io import save_trainer
from core.spec import parse_experiment
from core.training import Trainer
from tests.core.sessions.test_session import resumable_spec
trainer = Trainer(parse_experiment(resumable_spec(epochs=3)))
trainer.fit(epochs=2)
{attack}
"""

DIE_INSIDE_THE_WRITE = """
real = zipfile.ZipFile.writestr
written = []
def writestr(self, name, data, *args, **kwargs):
    real(self, name, data, *args, **kwargs)
    written.append(name)
    if len(written) == 3:              # manifest, experiment and weights are out: die
        self.fp.flush()
        os._exit(17)
zipfile.ZipFile.writestr = writestr
save_trainer({path!r}, trainer)
"""

SAVE_FOREVER = """
print("ready", flush=True)
while True:
    trainer.fit(epochs=1) if trainer.epoch < 3 else None
    save_trainer({path!r}, trainer)
"""


def _child(attack: str, path: Path) -> subprocess.Popen:
    code = CHILD.format(root=str(ROOT), attack=attack.format(path=str(path)))
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)


def test_a_process_killed_inside_a_save_leaves_the_previous_session_whole(tmp_path):
    path = tmp_path / "run.gwb"
    before = _tiny_trained()
    save_trainer(path, before)
    original = path.read_bytes()
    child = _child(DIE_INSIDE_THE_WRITE, path)
    assert child.wait(timeout=60) == 17
    assert path.read_bytes() == original
    session = load_session(path)  # verifies every checksum
    assert session.state["epoch"] == 1
    restore_trainer(session).fit(epochs=1)
    leftovers = list(tmp_path.glob(".run.gwb.*.tmp"))
    assert len(leftovers) == 1  # the half-written temporary file, never the session itself
    # A later save removes it once it is stale (a save still running elsewhere is spared).
    save_trainer(path, before)
    assert leftovers[0].exists()
    old = time.time() - 3600
    os.utime(leftovers[0], (old, old))
    save_trainer(path, before)
    assert not leftovers[0].exists()


def test_sigkill_at_a_random_moment_of_repeated_saves(tmp_path):
    path = tmp_path / "run.gwb"
    save_trainer(path, _tiny_trained())
    child = _child(SAVE_FOREVER, path)
    assert child.stdout.readline().strip() == "ready"
    time.sleep(0.4)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    session = load_session(path)
    assert session.state["epoch"] in (1, 2, 3)


def test_a_full_disk_during_a_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "run.gwb"
    trainer = _tiny_trained()
    save_trainer(path, trainer)
    original = path.read_bytes()
    trainer.fit(epochs=1)

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space left"):
        save_trainer(path, trainer)
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.gwb"]


def test_an_exception_while_serializing_writes_nothing(tmp_path, monkeypatch):
    path = tmp_path / "new.gwb"
    trainer = _tiny_trained()
    monkeypatch.setattr(trainer, "history_arrays", lambda: {"bad": np.array([object()], dtype=object)})
    with pytest.raises(TypeError, match="sessions hold only numbers"):
        save_trainer(path, trainer)
    assert list(tmp_path.iterdir()) == []


def test_a_save_keeps_the_permissions_of_the_file_it_replaces(tmp_path):
    path = tmp_path / "shared.gwb"
    trainer = _tiny_trained()
    save_trainer(path, trainer)
    assert path.stat().st_mode & 0o077 == 0o644 & ~_umask() & 0o077  # like open(): not mkstemp's 0600
    path.chmod(0o640)
    save_trainer(path, trainer)
    assert path.stat().st_mode & 0o777 == 0o640


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
