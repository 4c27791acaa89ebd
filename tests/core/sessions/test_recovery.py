"""Autosave and crash recovery (core.sessions.recovery and the CLI's recovery copies)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import core.sessions.recovery as recovery
from core.cli.main import run_headless
from core.sessions.format import SessionError, load_session, peek_session
from core.sessions.recovery import (
    Autosaver,
    discard,
    instance_id,
    list_recoverable,
    recovery_dir,
    recovery_path_for,
    register,
    user_data_dir,
)
from core.sessions.trainer_io import restore_trainer, save_trainer, take_snapshot
from core.spec import parse_experiment
from core.training import Trainer

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "userdata"
    monkeypatch.setenv("GRADIENT_WORKBENCH_DATA", str(folder))
    return folder


def spec_dict(epochs: int = 6, n_samples: int = 80) -> dict:
    return {"name": "recoverable", "seed": 9,
            "data": {"source": "moons", "params": {"n_samples": n_samples}, "validation_split": 0.25},
            "model": {"layers": [{"units": 8, "batch_norm": "before_activation", "dropout": 0.1}] * 2},
            "optimizer": {"name": "adam", "learning_rate": 0.01},
            "schedule": {"name": "one_cycle"},
            "training": {"epochs": epochs, "batch_size": 10}}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ----------------------------------------------------------------------------- where


def test_user_data_folder_per_platform():
    home = {"HOME": "/home/ada"}
    assert user_data_dir(home, "linux") == Path("/home/ada/.local/share/gradient-workbench")
    assert user_data_dir({**home, "XDG_DATA_HOME": "/data"}, "linux") == Path("/data/gradient-workbench")
    # the XDG spec says a relative XDG_DATA_HOME is invalid and must be ignored
    assert user_data_dir({**home, "XDG_DATA_HOME": "rel"}, "linux") == Path("/home/ada/.local/share/gradient-workbench")
    assert user_data_dir(home, "darwin") == Path("/home/ada/Library/Application Support/Gradient Workbench")
    assert user_data_dir({**home, "LOCALAPPDATA": "C:/Users/ada/AppData/Local"}, "win32") == \
        Path("C:/Users/ada/AppData/Local/Gradient Workbench")
    assert user_data_dir({**home, "GRADIENT_WORKBENCH_DATA": "/tmp/gw"}, "linux") == Path("/tmp/gw")


def test_recovery_paths(data_dir, tmp_path):
    assert recovery_path_for(tmp_path / "run.gwb") == tmp_path / ".run.gwb.recovery"
    a, b = recovery_path_for(None), recovery_path_for(None)
    assert a.parent == b.parent == data_dir / "recovery" == recovery_dir()
    assert a != b and a.name.startswith("untitled-") and a.suffix == ".gwb"
    assert recovery_path_for(None, "doc-7") == data_dir / "recovery" / "doc-7.gwb"


# ----------------------------------------------------------------------------- when


def test_autosaver_timing_with_a_fake_clock(tmp_path):
    clock = FakeClock()
    saver = Autosaver(tmp_path / "copy.gwb", interval=60, clock=clock)
    assert not saver.due("step", 1, 0)
    clock.now += 59.9
    assert not saver.due("step", 1, 0)
    clock.now += 0.1
    assert saver.due("step", 1, 0)
    saver.mark(1, 0)
    assert not saver.due("step", 2, 0) and not saver.due("epoch", 2, 1)  # an epoch end right after a copy
    clock.now += 9.9
    assert not saver.due("epoch", 2, 1)
    clock.now += 0.1
    assert not saver.due("step", 2, 1) and saver.due("epoch", 2, 1)  # every epoch, once the gap has passed
    saver.mark(2, 1)
    assert not saver.due("epoch", 2, 1)  # never twice for the same moment
    eager = Autosaver(tmp_path / "e.gwb", interval=60, epoch_gap=0, clock=clock)
    assert eager.due("epoch", 1, 1) and not eager.due("step", 1, 1)
    assert not saver.due("event", 3, 1) and not saver.due("end", 3, 1)
    quiet = Autosaver(tmp_path / "q.gwb", every_epoch=False, interval=30, clock=clock)
    assert not quiet.due("epoch", 5, 1)
    clock.now += 30
    assert quiet.due("epoch", 5, 1) and quiet.due("step", 5, 1)
    with pytest.raises(ValueError, match="interval: must be a positive number"):
        Autosaver(tmp_path / "x.gwb", interval=0)
    with pytest.raises(ValueError, match=r"epoch_gap: must be between 0 and the interval \(60 s\)"):
        Autosaver(tmp_path / "x.gwb", interval=60, epoch_gap=61)


def test_a_crash_loses_at_most_one_interval_and_the_copy_resumes_exactly(tmp_path):
    """Each step takes 7 s of (fake) time; autosave at least every 60 s and every epoch. The run
    dies at step 40: the copy is at most 60 s (9 steps) old, and continuing it gives the run
    that never crashed."""
    spec = parse_experiment(spec_dict(epochs=10))
    straight = Trainer(spec)
    straight.fit()
    clock = FakeClock()
    copy = recovery_path_for(tmp_path / "run.gwb")
    saver = Autosaver(copy, every_epoch=False, interval=60, clock=clock)
    trainer = Trainer(spec)
    saved_steps = []

    def observe(kind, info):
        if kind == "step":
            clock.now += 7
            if trainer.step == 40:
                raise RuntimeError("power cut")
        if saver.maybe_save(trainer, kind):
            saved_steps.append(trainer.step)

    with pytest.raises(RuntimeError, match="power cut"):
        trainer.fit(observer=observe)
    assert saved_steps == [9, 18, 27, 36]
    session = load_session(copy)
    assert 40 - session.state["step"] <= 60 // 7
    resumed = restore_trainer(session)
    resumed.fit(epochs=spec.training.epochs - resumed.epoch)
    for key, value in straight.network.state().items():
        np.testing.assert_array_equal(resumed.network.state()[key], value, err_msg=key)
    assert resumed.history["val_loss"] == straight.history["val_loss"]
    saver.finish()
    assert not copy.exists()


def test_a_failed_autosave_does_not_stop_training(tmp_path, monkeypatch):
    def full_disk(path, snapshot):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(recovery, "write_snapshot", full_disk)
    saver = Autosaver(tmp_path / "copy.gwb", epoch_gap=0, clock=FakeClock())
    trainer = Trainer(parse_experiment(spec_dict(epochs=2)))
    assert trainer.fit(observer=lambda kind, info: saver.maybe_save(trainer, kind)) == "completed"
    assert saver.saves == 0 and "No space left" in str(saver.last_error)
    assert not (tmp_path / "copy.gwb").exists()


# ----------------------------------------------------------------------------- what is there


def test_list_register_and_discard(tmp_path):
    trainer = Trainer(parse_experiment(spec_dict(epochs=2)))
    trainer.fit(epochs=1)
    assert list_recoverable() == []
    untitled = recovery_path_for(None, "doc-1")
    saver = Autosaver(untitled, register_copy=True, epoch_gap=0, clock=FakeClock())
    saver.maybe_save(trainer, "epoch")
    session = tmp_path / "saved.gwb"
    save_trainer(session, trainer)
    trainer.fit(epochs=1)
    beside = Autosaver(recovery_path_for(session), session_path=session, register_copy=True, epoch_gap=0,
                    clock=FakeClock())
    beside.maybe_save(trainer, "epoch")
    (recovery_dir() / "half-written.gwb").write_bytes(b"PK\x03\x04 cut short")  # a crash mid-write
    found = list_recoverable()
    assert sorted((str(r.path), r.session_path, r.epoch) for r in found) == \
        [(str(beside.path), session.resolve(), 2), (str(untitled), None, 1)]
    by_path = {r.path: r for r in found}
    assert by_path[beside.path].name == "recoverable" and by_path[beside.path].step == trainer.step
    assert by_path[untitled].newer_than_session
    os.utime(session, (time.time() + 60, time.time() + 60))  # the session was saved after the copy
    assert not {r.path: r for r in list_recoverable()}[beside.path].newer_than_session
    discard(by_path[beside.path])
    assert not beside.path.exists() and [r.path for r in list_recoverable()] == [untitled]
    untitled.unlink()  # a copy deleted behind our back: its index entry is ignored, nothing fails
    register(tmp_path / "gone.gwb", None)
    assert list_recoverable() == []


# ----------------------------------------------------------------------------- the command line


def write_spec(tmp_path: Path, **kwargs) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec_dict(**kwargs)))
    return path


def test_cli_keeps_a_recovery_copy_while_training_and_deletes_it_at_the_end(tmp_path, monkeypatch):
    out = tmp_path / "run.gwb"
    seen = []
    real = Autosaver.write

    def spy(self, snapshot):
        ok = real(self, snapshot)
        seen.append((self.path.name, self.path.exists(), snapshot.state["epoch"]))
        return ok

    monkeypatch.setattr(Autosaver, "write", spy)
    monkeypatch.setattr(recovery, "DEFAULT_EPOCH_GAP", 0.0)   # a copy at every epoch end, however short
    assert run_headless(["train", str(write_spec(tmp_path, epochs=3)), "--out", str(out), "--quiet"]) == 0
    assert seen == [(".run.gwb.recovery", True, e) for e in (1, 2, 3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.gwb", "spec.json"]
    seen.clear()
    assert run_headless(["train", str(write_spec(tmp_path)), "--out", str(out), "--quiet", "--no-autosave"]) == 0
    assert seen == []


def test_cli_crash_then_resume_from_the_recovery_copy(tmp_path):
    """The user's story: a headless run is killed; `train` again refuses to overwrite the copy
    and says how to continue; `resume` from the copy finishes the run, equal to one that was
    never killed."""
    epochs, n_samples = 300, 240
    spec = write_spec(tmp_path, epochs=epochs, n_samples=n_samples)
    out = tmp_path / "run.gwb"
    copy = tmp_path / ".run.gwb.recovery"
    child = subprocess.Popen([sys.executable, "-m", "workbench", "train", str(spec), "--out", str(out), "--quiet",
                              "--autosave-seconds", "0.2"],
                             cwd=ROOT, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        try:
            if peek_session(copy)[2]["epoch"] >= 2:
                break
        except SessionError:  # not there yet
            time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    child.stderr.close()
    assert copy.exists() and not out.exists()
    killed_at = load_session(copy).state["epoch"]
    assert 2 <= killed_at < epochs

    assert run_headless(["train", str(spec), "--out", str(out), "--quiet"]) == 2
    assert not out.exists() and copy.exists()
    assert run_headless(["resume", str(copy), "--out", str(out), "--quiet"]) == 0
    assert not copy.exists()
    finished = load_session(out)
    assert finished.state["epoch"] == epochs
    straight = Trainer(parse_experiment(spec_dict(epochs=epochs, n_samples=n_samples)))
    straight.fit()
    for key, value in straight.network.state().items():
        np.testing.assert_array_equal(finished.weights[key], value, err_msg=key)
    np.testing.assert_array_equal(finished.history["val_loss"], straight.history["val_loss"])


def test_cli_refuses_to_overwrite_a_recovery_copy(tmp_path, capsys):
    spec = write_spec(tmp_path, epochs=2)
    out = tmp_path / "run.gwb"
    copy = recovery_path_for(out)
    trainer = Trainer(parse_experiment(spec_dict(epochs=2)))
    trainer.fit(epochs=1)
    save_trainer(copy, trainer)
    assert run_headless(["train", str(spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{copy} holds the recovery copy of a run that did not end cleanly (epoch 1, step" in err
    assert f"gradient-workbench resume {copy} --out {out}" in err
    assert run_headless(["train", str(spec), "--out", str(out), "--quiet", "--no-autosave"]) == 0
    assert copy.exists()


def test_resume_without_epochs_finishes_the_plan(tmp_path, capsys):
    spec = write_spec(tmp_path, epochs=3)
    first = tmp_path / "a.gwb"
    assert run_headless(["train", str(spec), "--out", str(first), "--epochs", "3", "--quiet"]) == 0
    assert run_headless(["resume", str(first), "--out", str(tmp_path / "b.gwb"), "--quiet"]) == 2
    assert "has completed its 3 planned epochs; give --epochs N" in capsys.readouterr().err
    trainer = Trainer(parse_experiment(spec_dict(epochs=3)))
    trainer.fit(epochs=1)
    for _ in range(2):
        trainer.train_batch()
    half = tmp_path / "half.gwb"
    save_trainer(half, trainer)
    assert run_headless(["resume", str(half), "--out", str(half), "--quiet"]) == 0
    assert load_session(half).state["epoch"] == 3


# ----------------------------------------------------------------------------- two instances

INSTANCE = """
import sys, time
from core.sessions.recovery import Autosaver, instance_id, recovery_path_for
from core.sessions.trainer_io import take_snapshot
from core.spec import parse_experiment
from core.training import Trainer
import json
session = sys.argv[1]
trainer = Trainer(parse_experiment(json.loads(sys.argv[2])))
trainer.fit(epochs=1)
owner = instance_id()
saver = Autosaver(recovery_path_for(session, instance=owner), session_path=session, register_copy=True, owner=owner)
assert saver.write(take_snapshot(trainer))
print(saver.path, flush=True)
time.sleep(600)
"""


def test_each_instance_owns_its_copy_and_only_a_dead_owners_copy_is_offered(tmp_path, data_dir):
    """Instance A (a child process) writes its copy of RUN.gwb and lives on; this process is
    instance B. B's copy of the same session is another file, A's live copy is not offered,
    B's clean finish deletes only B's copy, and A's copy is offered once A is killed."""
    session = tmp_path / "RUN.gwb"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    a = subprocess.Popen([sys.executable, "-c", INSTANCE, str(session), json.dumps(spec_dict(epochs=1))],
                         env=env, stdout=subprocess.PIPE, text=True)
    try:
        a_copy = Path(a.stdout.readline().strip())
        assert a_copy.is_file() and a_copy.name.startswith(".RUN.gwb.") and a_copy.name.endswith(".recovery")
        trainer = Trainer(parse_experiment(spec_dict(epochs=1)))
        trainer.fit(epochs=1)
        mine = instance_id()
        b = Autosaver(recovery_path_for(session, instance=mine), session_path=session, register_copy=True,
                      owner=mine)
        assert b.path != a_copy and b.write(take_snapshot(trainer))
        assert list_recoverable() == []        # A is running, and B is this process
        b.finish()
        assert a_copy.is_file() and not b.path.exists()
    finally:
        a.kill()
        a.wait()
    offered = list_recoverable()
    assert [item.path for item in offered] == [a_copy] and offered[0].session_path == session
