"""Training in a child process, driven through the real window (issue 13): the child is not this
interpreter and never imports Qt; a run trained, saved mid-run, reopened and continued in the
window equals an uninterrupted headless run bit for bit; Stop shows at once even during a long
batch; a child killed with SIGKILL leaves the window up and offers the last autosave; closing
the window leaves no child behind."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtWidgets import QDialogButtonBox, QLabel, QMessageBox, QRadioButton, QSpinBox

from core.sessions.format import load_session
from core.spec import parse_experiment
from core.training import Trainer
from workbench.monitor.worker import RemoteTrainer
from workbench.sessions.autosave import INTERVAL_KEY
from workbench.sessions.preferences import threads_preference

from .monitor_support import make_window_fixture, tiny_experiment, tiny_spec, wait_idle  # noqa: F401 (fixture)
from .test_monitor import click_action

ROOT = Path(__file__).resolve().parents[2]


def child_pid(window: Any) -> int:
    trainer = window.controller.trainer
    assert isinstance(trainer, RemoteTrainer)
    pid = trainer.pid
    assert pid is not None and pid != os.getpid()
    return pid


def process_exists(pid: int) -> bool:
    """In the process table and not a zombie (a reaped child is gone from /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.spare_child   # the window's own way: Train takes the child started as the window opened
def test_the_window_trains_in_a_child_that_never_imports_qt(make_window: Any, qtbot: Any) -> None:
    window = make_window(tiny_experiment(epochs=3))
    c = window.controller
    t0 = time.perf_counter()
    click_action(window, qtbot, "train")
    qtbot.waitUntil(lambda: c.buffers.size > 0, timeout=10_000)
    first_plot = time.perf_counter() - t0
    wait_idle(qtbot, window)
    pid = child_pid(window)
    assert process_exists(pid) and pid in [p.pid for p in multiprocessing.active_children()]
    modules = c.worker.child_modules()
    assert "core.training" in modules and "numpy" in modules
    assert not [m for m in modules if m.startswith(("PySide6", "shiboken6", "pyqtgraph", "workbench"))]
    assert c.buffers.size == c.trainer.step == 3 * c.trainer.steps_per_epoch
    print(f"\nfrom Train to the first plotted step: {first_plot:.2f} s")


def test_saved_mid_run_reopened_and_continued_equals_a_headless_run(make_window: Any, qtbot: Any,
                                                                     tmp_path: Path) -> None:
    spec = tiny_spec(epochs=200, samples=400)
    spec["training"]["checkpoints"] = {"every": 10, "keep": 5}   # they travel with the save too
    window = make_window(parse_experiment(spec))
    c = window.controller
    click_action(window, qtbot, "train")
    qtbot.waitUntil(lambda: c.buffers.size > 30, timeout=10_000)
    click_action(window, qtbot, "pause")
    click_action(window, qtbot, "step")
    path = tmp_path / "mid.gwb"
    c.save_session(path)                             # at a batch boundary, from the child
    saved = load_session(path)
    saved_step = saved.state["step"]
    assert 30 < saved_step < 200 * c.trainer.steps_per_epoch
    held = [s["step"] for s in saved.state["checkpoints"]["states"]]
    assert held and held[-1] > saved_step - saved.state["checkpoints"]["interval"] and saved.checkpoints
    click_action(window, qtbot, "stop")
    wait_idle(qtbot, window)

    again = make_window(parse_experiment(spec))
    assert again.open_file(path)
    qtbot.waitUntil(lambda: again.controller.mode == "idle" and again.state.file == path, timeout=20_000)
    assert again.controller.trainer.step == saved_step
    again.controller.train()
    qtbot.waitUntil(lambda: again.controller.mode == "idle"
                    and again.controller.current_step == 200 * again.controller.trainer.steps_per_epoch,
                    timeout=30_000)
    theirs, _ = again.controller.trainer.state_dict()

    headless = Trainer(parse_experiment(spec))
    headless.fit()
    mine, _ = headless.state_dict()
    assert theirs.keys() == mine.keys() and any(k.startswith("checkpoints/") for k in mine)
    for key in mine:
        if key != "history/seconds":                 # wall-clock time
            np.testing.assert_array_equal(theirs[key], mine[key], err_msg=key)


def test_stop_shows_at_once_during_a_long_batch(make_window: Any, qtbot: Any) -> None:
    # A batch of this network takes about a second: Stop must not wait for it.
    spec = tiny_spec(epochs=5, layers=3, units=1500, samples=6000)
    spec["training"]["batch_size"] = 4096
    window = make_window(parse_experiment(spec))
    c = window.controller
    click_action(window, qtbot, "train")
    qtbot.waitUntil(lambda: c.mode == "running" and c.buffers.size >= 1, timeout=60_000)
    qtbot.wait(100)
    t0 = time.perf_counter()
    click_action(window, qtbot, "stop")
    qtbot.waitUntil(lambda: c.mode == "idle", timeout=1_000)
    shown = time.perf_counter() - t0
    assert shown < 0.1, f"Stop took {shown * 1000:.0f} ms to show"
    assert "stopped" in window.statusBar().currentMessage().lower()
    pid = child_pid(window)
    # The child finishes its batch, stays (Train continues the run), and answers again.
    arrays, state = c.trainer.state_dict()
    assert state["step"] >= 1 and process_exists(pid)


def test_a_child_killed_with_sigkill_leaves_the_window_up_and_offers_the_autosave(make_window: Any,
                                                                                 qtbot: Any) -> None:
    window = make_window(tiny_experiment(epochs=100_000, samples=400))
    window.settings.setValue(INTERVAL_KEY, 0.2)
    c = window.controller
    click_action(window, qtbot, "train")
    copy = window.sessions.autosave.path
    qtbot.waitUntil(lambda: copy.is_file() and c.buffers.size > 50, timeout=15_000)
    pid = child_pid(window)
    os.kill(pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: window.sessions.crash_box is not None and window.sessions.crash_box.isVisible(),
                    timeout=5_000)
    box = window.sessions.crash_box
    assert "SIGKILL" in box.text() and "last autosave" in box.text()
    assert window.isVisible() and c.mode == "idle" and c.buffers.size > 50    # the plots are kept
    assert not process_exists(pid)
    reopen = next(b for b in box.buttons() if b.text() == "Open the last autosave")
    saved_step = load_session(copy).state["step"]
    reopen.click()
    qtbot.waitUntil(lambda: c.mode == "idle" and isinstance(c.trainer, RemoteTrainer)
                    and c.trainer.pid != pid and c.current_step == saved_step, timeout=20_000)
    click_action(window, qtbot, "train")             # the restored run trains on
    qtbot.waitUntil(lambda: c.current_step > saved_step + 10, timeout=10_000)
    click_action(window, qtbot, "stop")
    wait_idle(qtbot, window)


def test_an_exception_in_the_child_is_a_dialog_and_the_window_keeps_working(make_window: Any, qtbot: Any) -> None:
    window = make_window(tiny_experiment(epochs=100_000))
    c = window.controller
    click_action(window, qtbot, "train")
    qtbot.waitUntil(lambda: c.buffers.size > 5, timeout=10_000)
    c.worker.send(c.trainer._child, "set", {"optimizer": "not an experiment"})    # raises in the child
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "errorDialog") is not None
                    and window.findChild(QMessageBox, "errorDialog").isVisible(), timeout=10_000)
    box = window.findChild(QMessageBox, "errorDialog")
    assert "Training failed" in box.text() and c.mode == "idle"
    box.close()
    box.deleteLater()
    click_action(window, qtbot, "train")           # a fresh run trains
    qtbot.waitUntil(lambda: c.mode == "running" and c.buffers.size > 5, timeout=10_000)
    click_action(window, qtbot, "stop")
    wait_idle(qtbot, window)


def test_a_training_process_that_cannot_start_is_a_dialog_not_a_window_stuck_building(
        make_window: Any, qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import workbench.monitor.worker as worker

    window = make_window(tiny_experiment(epochs=3))
    c = window.controller

    def no_process(*args: Any, **kwargs: Any) -> Any:
        raise OSError(11, "Resource temporarily unavailable")

    real = worker.TrainingProcess
    monkeypatch.setattr(worker, "TrainingProcess", no_process)
    click_action(window, qtbot, "train")
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "errorDialog") is not None
                    and window.findChild(QMessageBox, "errorDialog").isVisible(), timeout=10_000)
    box = window.findChild(QMessageBox, "errorDialog")
    assert "could not be started" in box.text() and "Resource temporarily unavailable" in box.text()
    wait_idle(qtbot, window)
    assert c.mode == "idle"
    box.close()
    box.deleteLater()
    monkeypatch.setattr(worker, "TrainingProcess", real)
    click_action(window, qtbot, "train")           # the relay lives on: the next Train trains
    qtbot.waitUntil(lambda: c.buffers.size > 5, timeout=10_000)
    wait_idle(qtbot, window, timeout=20_000)


@pytest.mark.spare_child   # the window's own way, spare and all: closing reaps every child it started
@pytest.mark.parametrize("how", ["close", "shutdown"])
def test_closing_during_training_leaves_no_child(make_window: Any, qtbot: Any, how: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("workbench.sessions.ask_stop_and_quit", lambda parent: True)
    window = make_window(tiny_experiment(epochs=100_000))
    c = window.controller
    click_action(window, qtbot, "train")
    qtbot.waitUntil(lambda: c.mode == "running" and c.buffers.size > 5, timeout=10_000)
    pid = child_pid(window)
    t0 = time.perf_counter()
    window.close() if how == "close" else c.shutdown()
    assert time.perf_counter() - t0 < 3.0
    assert c.thread.isFinished()
    assert not multiprocessing.active_children()
    assert not process_exists(pid)


def test_shutting_the_controller_down_also_ends_the_remedy_trials_process(make_window: Any, qtbot: Any) -> None:
    """The health banner tries its fixes in a child process of its own while the run trains: it
    ends with the training process, not only when the window's runners are shut down."""
    from core.presets import preset_experiment

    from .monitor_support import monitor_of

    window = make_window(preset_experiment("exploding"))
    c = window.controller
    click_action(window, qtbot, "train")

    def trials_running() -> bool:
        return any(p.name == "gradient-workbench-remedy-trials" for p in multiprocessing.active_children())

    qtbot.waitUntil(trials_running, timeout=60_000)
    assert monitor_of(window).banner.runner.busy
    t0 = time.perf_counter()
    c.shutdown()
    assert time.perf_counter() - t0 < 5.0
    assert not multiprocessing.active_children()


def choose_threads(window: Any, qtbot: Any, count: int | None) -> None:
    """Training › Training threads…: Automatic, or Always ``count`` threads; OK."""
    window.sessions.threads_action.trigger()
    dialog = window.sessions.threads_dialog
    qtbot.waitUntil(dialog.isVisible)
    if count is None:
        dialog.findChild(QRadioButton, "threadsAutomatic").click()
    else:
        dialog.findChild(QRadioButton, "threadsFixed").click()
        spin = dialog.findChild(QSpinBox, "threadsCount")
        assert spin.isEnabled()
        spin.setValue(count)
    dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: not dialog.isVisible())


def test_the_threads_preference_sets_the_next_runs_threads_unless_the_experiment_fixes_them(
        make_window: Any, qtbot: Any) -> None:
    window = make_window(tiny_experiment(epochs=1), settings="threads")
    choose_threads(window, qtbot, 3)        # the automatic choice for this small network is 1
    assert threads_preference(window.settings) == 3
    click_action(window, qtbot, "train")
    wait_idle(qtbot, window)
    assert window.controller.trainer.blas_threads == 3
    window.sessions.threads_action.trigger()     # the dialog says what the run on screen uses
    dialog = window.sessions.threads_dialog
    qtbot.waitUntil(dialog.isVisible)
    assert "trains on 3 threads" in dialog.findChild(QLabel, "threadsCurrent").text()
    assert dialog.findChild(QSpinBox, "threadsCount").value() == 3
    dialog.reject()

    fixed_spec = tiny_spec(epochs=1)
    fixed_spec["training"]["blas_threads"] = 2    # the experiment's own count travels with it and wins
    fixed = make_window(parse_experiment(fixed_spec), settings="threads")
    click_action(fixed, qtbot, "train")
    wait_idle(qtbot, fixed)
    assert fixed.controller.trainer.blas_threads == 2

    choose_threads(window, qtbot, None)
    assert threads_preference(window.settings) is None
    later = make_window(tiny_experiment(epochs=1), settings="threads")   # the next start of the app
    click_action(later, qtbot, "train")
    wait_idle(qtbot, later)
    assert later.controller.trainer.blas_threads == 1


CORES_SCRIPT = """
import json, os, sys, time
sys.path.insert(0, sys.argv[1])


def affinity(progress, should_stop):
    return sorted(os.sched_getaffinity(0))


if __name__ == "__main__":
    import core.process
    from core.process import ProcessJob, TrainingProcess
    from workbench.runtime import keep_the_window_on_its_cores

    before = sorted(os.sched_getaffinity(0))
    window = keep_the_window_on_its_cores(1)
    child = TrainingProcess()                       # a spare: it starts, imports, waits
    deadline = time.monotonic() + 60
    while sorted(os.sched_getaffinity(child.pid)) == sorted(os.sched_getaffinity(0)) and window is not None \\
            and time.monotonic() < deadline:
        time.sleep(0.05)
    report = {"before": before, "window": sorted(window) if window is not None else None,
              "gui": sorted(os.sched_getaffinity(0)), "training": sorted(os.sched_getaffinity(child.pid)),
              "job": ProcessJob(affinity)(lambda _: None, lambda: False),
              "training_cores": sorted(core.process.TRAINING_CORES or [])}
    child.end()
    print(json.dumps(report))
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="cores are chosen only where the system allows")
def test_the_window_keeps_a_core_and_its_training_and_job_processes_run_on_the_others(tmp_path: Path) -> None:
    script = tmp_path / "cores.py"
    script.write_text(CORES_SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(ROOT)], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    every = report["before"]
    assert report["job"] == every                     # the labs' jobs use every core
    if len(every) < 2:                                # one core: nothing to keep apart
        assert report["window"] is None and report["training"] == every == report["gui"]
        return
    assert report["window"] == report["gui"] == every[-1:]
    assert report["training"] == report["training_cores"] == every[:-1]
