"""Benchmark: training while the window watches, against training headless (issue 13).

Two configurations: the default experiment (digits, the book's default network) and a
784-300-100-10 ReLU network (Nesterov momentum) on a 60,000 x 784 synthetic set at batch 128,
read from an ``.npz`` file as a user's data would be. Each is trained

* headless: ``Trainer.fit`` in this process, nothing else running in it;
* in the window: a real ``MainWindow``, shown (offscreen unless a display is set), Train
  clicked; the run goes to its training process and the window draws every snapshot.

for ``--seconds`` each, alternately, ``--repeats`` times, so both see the same host load. It
reports steps per second (median), the window's share of the headless rate (target: at least
0.9), the steps per CPU second of the training process against the headless trainer's (how
much the process boundary costs, whatever share of the cores the scheduler gives each), the
GUI thread's event-loop lateness while the window trains (a 10 ms timer, as the
responsiveness tests measure it: 99th percentile target under 50 ms) and, for the default
experiment, the time from Train to the first plotted step (target: 1.5 s). The host's load
average is printed with the figures: the ratios are what to compare between runs.

With ``--labs`` it also times the learning-rate finder (a lab that trains a scratch copy of
the default experiment, in a child process started by its ``JobRunner``: ``core.process.ProcessJob``)
and reports the same event-loop lateness while it runs.

    python benchmarks/bench_window.py [--quick] [--labs] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen" if not os.environ.get("DISPLAY") else "xcb")

import numpy as np  # noqa: E402

from core.spec import load_experiment, parse_experiment  # noqa: E402
from core.training import Trainer  # noqa: E402

RATIO_TARGET = 0.9
PIN_WINDOW = True       # --no-pin: leave the window and its training process on every core
LATENESS_TARGET = 0.050
FIRST_STEP_TARGET = 1.5
N_ROWS, N_FEATURES, N_CLASSES = 60_000, 784, 10


def write_synthetic(folder: Path, rows: int = N_ROWS) -> Path:
    """A learnable MNIST-sized set: standard-normal features, labels from a random linear teacher."""
    rng = np.random.Generator(np.random.PCG64(13))
    X = rng.standard_normal((rows, N_FEATURES), dtype=np.float32)
    teacher = rng.standard_normal((N_FEATURES, N_CLASSES), dtype=np.float32)
    y = np.argmax(X @ teacher + 5.0 * rng.standard_normal((rows, N_CLASSES), dtype=np.float32), axis=1)
    path = folder / "synthetic.npz"
    np.savez(path, X=X, y=y.astype(np.int64))
    return path


def wide_spec(data: Path) -> dict[str, Any]:
    return {
        "name": "784-300-100-10 on 60,000 synthetic", "seed": 42,
        "data": {"source": "npz", "path": str(data), "validation_split": 0.1, "test_split": 0.0},
        "model": {"layers": [{"units": 300, "activation": "relu", "init": "he_normal"},
                             {"units": 100, "activation": "relu", "init": "he_normal"}]},
        "optimizer": {"name": "nesterov", "learning_rate": 0.01, "momentum": 0.9},
        "training": {"epochs": 1000, "batch_size": 128},
    }


def long_run(experiment: Any) -> Any:
    """The experiment planned for 1,000 epochs with early stopping off: both sides train for the whole
    measurement (the default experiment's early stopping would end the window's run within seconds)."""
    spec = experiment.to_dict()
    regularization = spec.get("regularization", {})
    early = {**regularization.get("early_stopping", {}), "enabled": False}
    return parse_experiment({**spec, "training": {**spec["training"], "epochs": 1000},
                             "regularization": {**regularization, "early_stopping": early}})


def headless_rate(experiment: Any, base_dir: Path, seconds: float) -> tuple[float, float]:
    """(steps per second, steps per CPU second of this process: the trainer and its BLAS threads)."""
    trainer = Trainer(experiment, base_dir)
    trainer.fit(epochs=None, should_stop=lambda: trainer.step >= 20)        # warm-up
    start, first, cpu = time.perf_counter(), trainer.step, time.process_time()
    trainer.fit(epochs=None, should_stop=lambda: time.perf_counter() - start >= seconds)
    steps = trainer.step - first
    return steps / (time.perf_counter() - start), steps / max(time.process_time() - cpu, 1e-9)


def cpu_seconds(pid: int | None) -> float:
    """CPU seconds a process has used (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


class Lateness:
    """A 10 ms precise timer on the GUI thread: how late each tick is."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.late: list[float] = []
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self._last = 0.0

    def _tick(self) -> None:
        now = time.perf_counter()
        self.late.append(max(0.0, now - self._last - 0.010))
        self._last = now

    def start(self) -> None:
        self.late.clear()
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> tuple[float, float]:
        self.timer.stop()
        late = np.array(self.late or [0.0])
        return float(np.percentile(late, 99)), float(late.max())


def spin(app: Any, seconds: float, until: Any = None) -> bool:
    """Run the event loop for ``seconds``, or until ``until()`` holds (checked every 2 ms); True
    when it held (or there was nothing to wait for).

    A real event loop, as the application's ``exec()``: the GUI thread sleeps until a timer or a
    message wakes it. (A loop of ``processEvents`` and 2 ms sleeps, as this benchmark had, wakes
    it 500 times a second, and each wake-up took a core from the training process: the wide
    network's window/headless ratio was 0.63-0.74 with it.)"""
    from PySide6.QtCore import QEventLoop, QTimer

    if until is not None and until():
        return True
    loop = QEventLoop()
    held = [until is None]
    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(loop.quit)
    check = QTimer()
    check.setInterval(2)

    def poll() -> None:
        if until():
            held[0] = True
            loop.quit()

    check.timeout.connect(poll)
    deadline.start(int(seconds * 1000))
    if until is not None:
        check.start()
    loop.exec()
    check.stop()
    deadline.stop()
    return held[0]


def window_rate(app: Any, experiment: Any, base_dir: Path, seconds: float, settings: Path) -> dict[str, float]:
    from PySide6.QtCore import QSettings

    from workbench.main_window import MainWindow
    from workbench.runtime import keep_the_window_on_its_cores
    from workbench.state import ExperimentState

    previous = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if PIN_WINDOW:
        keep_the_window_on_its_cores()     # as the application does when it starts
    state = ExperimentState(experiment)
    state.base_dir = base_dir
    window = MainWindow(state, QSettings(str(settings), QSettings.Format.IniFormat))
    window.resize(1400, 900)
    window.show()
    c = window.controller
    spin(app, 4.0)                                 # the window settles; its spare training process starts
    t0 = time.perf_counter()
    c.train()
    if not spin(app, 120.0, lambda: c.buffers.size > 0):
        raise RuntimeError("the window did not start training")
    first_step = time.perf_counter() - t0
    spin(app, 2.0)                                 # past the first frames' one-time costs
    lateness = Lateness()
    pid = getattr(c.trainer, "pid", None)
    step0, start, cpu0, gui0 = c.current_step, time.perf_counter(), cpu_seconds(pid), time.process_time()
    lateness.start()
    spin(app, seconds)
    p99, worst = lateness.stop()
    seconds_passed = time.perf_counter() - start
    steps = c.current_step - step0
    rate = steps / seconds_passed
    per_cpu = steps / max(cpu_seconds(pid) - cpu0, 1e-9)
    gui_share = (time.process_time() - gui0) / seconds_passed
    c.stop()
    spin(app, 10.0, lambda: c.mode == "idle")
    window.state.undo_stack.setClean()
    c.shutdown()
    window.close()
    window.deleteLater()
    app.processEvents()
    if previous is not None:
        os.sched_setaffinity(0, previous)   # the headless runs use every core
    import core.process
    core.process.TRAINING_CORES = core.process.ALL_CORES = None
    return {"rate": rate, "p99": p99, "worst": worst, "first_step": first_step, "per_cpu": per_cpu,
            "gui_share": gui_share}


def time_lab(app: Any, experiment: Any, key: str, prepare: Any, start: Any, finished: Any,
             limit: float) -> dict[str, float]:
    """Open lab ``key`` on ``experiment`` in a window of its own, ``prepare(lab)``, then time
    ``start(lab)`` until the lab's ``finished(lab)`` signal: seconds and event-loop lateness
    (p99 / worst) meanwhile."""
    from PySide6.QtWidgets import QMainWindow

    from workbench.labs import create_labs_menu
    from workbench.state import ExperimentState

    window = QMainWindow()
    state = ExperimentState(experiment, window)
    menu = create_labs_menu(state, window)
    window.menuBar().addMenu(menu)
    window.show()
    menu.lab_actions[key].trigger()
    lab = menu.windows[key]
    prepare(lab)
    spin(app, 1.0)
    done: list[float] = []
    finished(lab).connect(lambda _result: done.append(time.perf_counter()))
    lateness = Lateness()
    lateness.start()
    began = time.perf_counter()
    start(lab)
    spin(app, limit, lambda: bool(done))
    p99, worst = lateness.stop()
    seconds = (done[0] if done else time.perf_counter()) - began
    state.undo_stack.setClean()
    window.close()
    window.deleteLater()
    app.processEvents()
    return {"seconds": seconds, "p99": p99, "worst": worst}


def lab_lateness(app: Any, experiment: Any, steps: int = 300) -> dict[str, float]:
    """The learning-rate finder on ``experiment`` in its lab window (in its child process)."""
    return time_lab(app, experiment, "lr_finder", lambda lab: lab.steps_spin.setValue(steps),
                    lambda lab: lab.start_button.click(), lambda lab: lab.finished, 120.0)


def explorer_lateness(app: Any, experiment: Any) -> dict[str, float]:
    """The initialization explorer on a deep, wide stack (100 layers of 1,000 units, a batch of 256,
    one weight draw: 26 G multiply-adds forward) on its ``JobRunner`` thread. It stays on a thread
    because it recomputes at every spin box change, where a child process's start-up would add a
    few tenths of a second each time."""

    def prepare(lab: Any) -> None:
        spin(app, 5.0, lambda: not lab.runner.busy)          # its first computation, on opening
        for box, value in ((lab.depth_spin, 100), (lab.width_spin, 1000), (lab.batch_spin, 256),
                           (lab.draws_spin, 1)):
            box.blockSignals(True)
            box.setValue(value)
            box.blockSignals(False)

    return time_lab(app, experiment, "init_explorer", prepare, lambda lab: lab.recompute_now(),
                    lambda lab: lab.runner.finished, 300.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 repetition")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--labs", action="store_true", help="also the learning-rate finder's lateness")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--only", metavar="TEXT", help="only the configurations whose name contains TEXT")
    parser.add_argument("--paint-share", type=float, default=None, metavar="F",
                        help="the share of a core the plots may spend (default: workbench.monitor.view.PAINT_SHARE)")
    parser.add_argument("--reserve", type=int, default=None, metavar="N",
                        help="cores the training process leaves to the window when it chooses its BLAS threads "
                             "(default: core.process.RESERVED_CORES)")
    parser.add_argument("--no-pin", action="store_true",
                        help="leave the window and its training process on every core (the app keeps the "
                             "window on one: workbench.runtime.keep_the_window_on_its_cores)")
    args = parser.parse_args()
    global PIN_WINDOW
    PIN_WINDOW = not args.no_pin
    if args.paint_share is not None:
        import workbench.monitor.view

        workbench.monitor.view.PAINT_SHARE = args.paint_share
    if args.reserve is not None:
        import core.process

        core.process.RESERVED_CORES = args.reserve
    seconds, repeats = (3.0, 1) if args.quick else (args.seconds, args.repeats)

    from PySide6.QtWidgets import QApplication, QMessageBox

    app = QApplication.instance() or QApplication(["bench_window"])
    # Closing a window with an unsaved run asks Save / Discard: the benchmark discards.
    QMessageBox.question = staticmethod(lambda *a, **k: QMessageBox.StandardButton.Discard)  # type: ignore[method-assign]
    results: dict[str, Any] = {"load_before": os.getloadavg(), "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        examples = ROOT / "resources" / "examples"
        configs = {
            "default (digits)": (load_experiment(examples / "default.json"), examples),
            "784-300-100-10 b128 on 60,000": (parse_experiment(wide_spec(write_synthetic(folder))), folder),
        }
        for name, (experiment, base) in configs.items():
            if args.only and args.only not in name:
                continue
            experiment = long_run(experiment)
            headless, window = [], []
            for r in range(repeats):
                headless.append(headless_rate(experiment, base, seconds))
                window.append(window_rate(app, experiment, base, seconds, folder / f"settings{r}.ini"))
            h = statistics.median(x[0] for x in headless)
            w = statistics.median(x["rate"] for x in window)
            h_cpu = statistics.median(x[1] for x in headless)
            w_cpu = statistics.median(x["per_cpu"] for x in window)
            row = {"headless_steps_per_s": h, "window_steps_per_s": w, "ratio": w / h,
                   "headless_steps_per_cpu_s": h_cpu, "child_steps_per_cpu_s": w_cpu, "cpu_ratio": w_cpu / h_cpu,
                   "gui_cpu_share": statistics.median(x["gui_share"] for x in window),
                   "lateness_p99_ms": 1000 * max(x["p99"] for x in window),
                   "lateness_worst_ms": 1000 * max(x["worst"] for x in window),
                   "first_step_s": min(x["first_step"] for x in window),
                   "headless_runs": [x[0] for x in headless], "window_runs": [x["rate"] for x in window]}
            results[name] = row
            print(f"{name}: headless {h:,.0f} steps/s, window {w:,.0f} steps/s, window/headless {w / h:.2f} "
                  f"(target >= {RATIO_TARGET}); event-loop lateness p99 {row['lateness_p99_ms']:.1f} ms "
                  f"(target < {LATENESS_TARGET * 1000:.0f}), worst {row['lateness_worst_ms']:.1f} ms; "
                  f"Train to first plotted step {row['first_step_s']:.2f} s; per CPU second: headless "
                  f"{h_cpu:,.0f}, training process {w_cpu:,.0f} steps ({w_cpu / h_cpu:.2f}); the GUI process used "
                  f"{row['gui_cpu_share']:.2f} of a core", flush=True)
        if args.labs:
            idle = Lateness()
            idle.start()
            spin(app, 3.0)
            idle_p99, idle_worst = idle.stop()
            lab = lab_lateness(app, load_experiment(examples / "default.json"))
            results["lr_finder"] = {**lab, "idle_p99": idle_p99, "idle_worst": idle_worst}
            print(f"learning-rate finder (300 steps of the default experiment in its child process): "
                  f"{lab['seconds']:.2f} s; event-loop lateness p99 {lab['p99'] * 1000:.1f} ms, worst "
                  f"{lab['worst'] * 1000:.1f} ms (idle window: p99 {idle_p99 * 1000:.1f}, worst "
                  f"{idle_worst * 1000:.1f} ms)", flush=True)
            explorer = explorer_lateness(app, load_experiment(examples / "default.json"))
            results["init_explorer"] = explorer
            print(f"initialization explorer (100 layers x 1,000 units, batch 256, on its "
                  f"JobRunner thread): {explorer['seconds']:.2f} s; event-loop lateness p99 "
                  f"{explorer['p99'] * 1000:.1f} ms, worst {explorer['worst'] * 1000:.1f} ms", flush=True)
    results["load_after"] = os.getloadavg()
    print(f"load average before {results['load_before'][0]:.1f}, after {results['load_after'][0]:.1f} "
          f"on {results['cores']} cores")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
