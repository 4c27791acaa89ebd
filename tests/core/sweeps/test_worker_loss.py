"""Losing sweep workers: a dead worker is charged to exactly the run it was training (not to
every run the broken pool held), each loss is reported, and workers do not outlive the sweep."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.sessions.format import load_session
from core.sweeps import runner
from core.sweeps.spec import parse_sweep

ROOT = Path(__file__).resolve().parents[3]

BASE = {"name": "slow", "seed": 3, "data": {"source": "moons", "params": {"n_samples": 200}},
        "model": {"layers": [{"units": 8}, {"units": 8}]},
        "optimizer": {"name": "sgd", "learning_rate": 0.05},
        "training": {"epochs": 100, "batch_size": 8}}  # about a second: a worker is caught training


def three_runs() -> dict:
    return {"format": "gradient-workbench.sweep", "version": 1, "name": "slow", "base": BASE,
            "axes": [{"path": "optimizer.learning_rate", "values": [0.05, 0.1, 0.2]}], "seeds": [0],
            "target": {"metric": "val_accuracy", "value": 0.8}}


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def test_a_killed_worker_is_charged_to_its_own_run_only(tmp_path, monkeypatch):
    """Two workers, three runs; the worker training the first run is killed twice. Only that run
    is recorded as lost (failed after the second loss); the run on the other worker, stopped
    with the pool, and the one still waiting complete without a mark."""
    sweep = parse_sweep(three_runs(), tmp_path)
    target = sweep.runs()[0].run_id
    kills: list[int] = []
    wait = runner.LocalBackend.wait

    def wait_and_kill(self, futures):
        done = wait(self, futures)
        pid = self.running.get(target)
        if pid is not None and len(kills) < 2 and pid not in kills:
            os.kill(pid, signal.SIGKILL)
            kills.append(pid)
        return done

    monkeypatch.setattr(runner.LocalBackend, "wait", wait_and_kill)
    events: list[dict] = []
    outcome = runner.run_sweep(sweep, tmp_path / "out", workers=2,
                               progress=lambda info: events.append(info.get("worker_lost")))
    assert len(kills) == 2
    assert [e for e in events if e] == [{"run_id": target, "times": 1}, {"run_id": target, "times": 2}]
    assert outcome.failed == 1 and outcome.completed == 2
    record = json.loads(next((tmp_path / "out").glob("*.failed.json")).read_text())
    assert record["run_id"] == target and record["reason"].startswith("worker lost: the process training it died 2")
    for run in sweep.runs()[1:]:
        session = load_session(tmp_path / "out" / run.file_name)
        assert "worker_losses" not in session.state["sweep"]


def test_a_run_lost_once_is_retried_and_says_so_in_its_session(tmp_path, monkeypatch):
    sweep = parse_sweep({**three_runs(), "axes": [{"path": "optimizer.learning_rate", "values": [0.05]}]}, tmp_path)
    target = sweep.runs()[0].run_id
    wait = runner.LocalBackend.wait
    kills: list[int] = []

    def wait_and_kill(self, futures):
        done = wait(self, futures)
        if target in self.running and not kills:
            kills.append(self.running[target])
            os.kill(kills[0], signal.SIGKILL)
        return done

    monkeypatch.setattr(runner.LocalBackend, "wait", wait_and_kill)
    outcome = runner.run_sweep(sweep, tmp_path / "out", workers=1)
    assert kills and outcome.completed == 1 and outcome.failed == 0
    assert load_session(tmp_path / "out" / sweep.runs()[0].file_name).state["sweep"]["worker_losses"] == 1


CHILD = """
import json, sys, time
from core.sweeps.runner import LocalBackend
backend = LocalBackend(2)
base = json.loads(sys.argv[1])
for i in range(2):
    backend.submit({"run_id": f"r{i}", "experiment": base, "base_dir": None})
deadline = time.monotonic() + 60
while len(getattr(backend._pool, "_processes", None) or {}) < 2 and time.monotonic() < deadline:
    time.sleep(0.05)
time.sleep(1.0)  # both are training by now
print(json.dumps(list(backend._pool._processes)), flush=True)
time.sleep(600)
"""


def test_workers_exit_when_the_sweep_process_is_killed():
    long_run = {**BASE, "training": {"epochs": 100_000, "batch_size": 8}}  # would train for many minutes
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(long_run)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, text=True)
    pids: list[int] = []
    try:
        pids = json.loads(proc.stdout.readline())
        assert len(pids) == 2 and all(alive(p) for p in pids)
    finally:
        proc.kill()  # the sweep's process only, not its process group
        proc.wait()
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [p for p in pids if alive(p)]
    for p in survivors:  # leave nothing behind, whatever the outcome
        os.kill(p, signal.SIGKILL)
    assert not survivors, "workers kept training after the sweep's process was killed"
