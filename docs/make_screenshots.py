"""Make every screenshot of the docs from the current code.

    python docs/make_screenshots.py                  # all of them, into docs/screenshots/
    python docs/make_screenshots.py tour-window      # only the named ones
    python docs/make_screenshots.py --list           # the names

Each screenshot is one function below, registered with ``@screenshot(name)``: it starts the
real main window, does what the guide tells the reader to do (open a bundled example, edit
fields through the experiment state, train through the training controller) and saves the
window or one panel as ``docs/screenshots/<name>.png``. Nothing is drawn by hand, so after a
change to the window, running this again brings every picture of the guide up to date.

It runs offscreen unless ``QT_QPA_PLATFORM`` says otherwise; for a real X window on a machine
without a display: ``xvfb-run -a -s "-screen 0 1600x1000x24" env QT_QPA_PLATFORM=xcb python
docs/make_screenshots.py``. Settings go to a temporary file (the user's are left alone).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
EXAMPLES = ROOT / "resources" / "examples"
ZOO = ROOT / "resources" / "zoo"
WINDOW_SIZE = (1400, 860)
TRAIN_TIMEOUT = 300.0

SHOTS: dict[str, Callable[[], Any]] = {}


def screenshot(name: str) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    """Register a function that makes ``docs/screenshots/<name>.png`` (and returns the widget)."""
    def decorator(fn: Callable[[], Any]) -> Callable[[], Any]:
        if name in SHOTS:
            raise ValueError(f"screenshot {name!r} is registered twice")
        SHOTS[name] = fn
        return fn
    return decorator


# ---------------------------------------------------------------------- helpers

_settings_dir = tempfile.TemporaryDirectory(prefix="gw-screenshots-")
_windows: list[Any] = []


def app():
    from workbench.app import create_app

    return create_app()


def settle(seconds: float = 0.3) -> None:
    """Let the event loop run: queued snapshots arrive, the plots' refresh timer draws."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app().processEvents()
        time.sleep(0.01)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise SystemExit(f"make_screenshots: timed out waiting for {what}")
        app().processEvents()
        time.sleep(0.01)


def window(example: str | Path | None = None, panel: str = "Model", size: tuple[int, int] = WINDOW_SIZE):
    """A fresh main window at a fixed size (fresh settings: the default layout), on a bundled
    example (a file name in resources/examples, or a path) if given, with the editor ``panel``
    (Data, Model, Optimizer, Regularization or Training) in front."""
    from PySide6.QtCore import QSettings

    from workbench.main_window import MainWindow

    app()
    settings = QSettings(str(Path(_settings_dir.name) / f"settings{len(_windows)}.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings)
    win.errors = []   # what the window reported (a picture of a failed run is no picture)
    win.controller.error.connect(win.errors.append)
    _windows.append(win)
    win.resize(*size)
    win.show()
    settle(0.2)
    if example is not None:
        path = Path(example) if Path(example).is_absolute() else EXAMPLES / example
        if not win.open_file(path):
            raise SystemExit(f"make_screenshots: could not open {path}")
        wait_until(lambda: not win.controller.busy, TRAIN_TIMEOUT, f"{path.name} to open")
        win.statusBar().clearMessage()   # "Opened /home/…": no local paths in the pictures
    dock(win, f"editor{panel}Dock")
    return win


def edit(win, **fields: Any) -> None:
    """Edit the experiment as the panels do: ``edit(win, **{"optimizer.name": "nadam"})``."""
    for path, value in fields.items():
        error = win.state.set_field(path, value)
        if error:
            raise SystemExit(f"make_screenshots: {path} = {value!r} refused: {error}")
    settle(0.1)


def train(win, epochs: int | None = None) -> None:
    """Press Train and wait until the run ends (all the experiment's epochs, or ``epochs``)."""
    if epochs is not None:
        edit(win, **{"training.epochs": epochs})
    win.controller.train()
    wait_until(lambda: win.controller.busy, 30, "training to start")
    wait_until(lambda: not win.controller.busy, TRAIN_TIMEOUT, "training to finish")
    if win.errors:
        raise SystemExit(f"make_screenshots: training failed: {win.errors[-1]}")
    settle(0.6)


def trained(example: str | Path, panel: str = "Model", **fields: Any):
    """The guide's usual step: open an example, make the edits it describes, train to the end."""
    win = window(example, panel)
    edit(win, **fields)
    train(win)
    return win


def dock(win, object_name: str):
    from PySide6.QtWidgets import QDockWidget

    found = win.findChild(QDockWidget, object_name)
    if found is None:
        names = sorted(d.objectName() for d in win.findChildren(QDockWidget))
        raise SystemExit(f"make_screenshots: no dock {object_name!r}; the window has {names}")
    found.show()
    found.raise_()
    settle(0.2)
    return found


def save(widget, name: str) -> Path:
    path = OUT / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not widget.grab().save(str(path)):
        raise SystemExit(f"make_screenshots: could not write {path}")
    return path


def close_all() -> None:
    """Close every window (their training threads stop)."""
    from PySide6.QtWidgets import QMessageBox

    # A run trained for a picture is no unsaved work: answer the closing window's "Save the
    # session first?" with Discard (offscreen, the modal question would wait for ever).
    question = QMessageBox.question
    QMessageBox.question = lambda *args, **kwargs: QMessageBox.StandardButton.Discard  # type: ignore[method-assign]
    try:
        for win in _windows:
            win.state.undo_stack.setClean()   # edits made for a picture are not "unsaved changes"
            win.close()
    finally:
        QMessageBox.question = question  # type: ignore[method-assign]
    _windows.clear()
    settle(0.1)


# ---------------------------------------------------------------------- the quick tour

@screenshot("tour-window")
def tour_window():
    """The window on the default experiment after training: editor docks on the left, the
    per-layer gradient norms in the middle, the other plots on the right."""
    return trained("default.json", panel="Data")


@screenshot("tour-branch")
def tour_branch():
    """What-if branches: the default experiment trained twice (the first run is a ghost), then
    branched at the middle of the run to a constant learning rate of 0.01; the parent is drawn dashed
    from the fork on, the step cursor marks the fork, the Runs dock lists the ghosts."""
    win = trained("default.json", panel="Data", **{"training.epochs": 12})
    train(win)                                    # the finished run is kept as a ghost; a new one trains
    monitor = win.monitor
    fork = win.controller.current_step // 2
    monitor.cursor.set_step(fork)
    monitor.branching.branch(fork, [("schedule.name", "constant"), ("optimizer.learning_rate", 0.01)])
    wait_until(lambda: win.controller.ghosts.parent() is not None, TRAIN_TIMEOUT, "the branch to start")
    wait_until(lambda: not win.controller.busy, TRAIN_TIMEOUT, "the branch to finish")
    settle(0.8)
    dock(win, "metricsDock")
    return win


@screenshot("tour-ghosts")
def tour_ghosts():
    """The Runs dock after the branch of ``tour-branch``: the ghost runs, the parent marked."""
    win = _windows[-1] if _windows else tour_branch()
    return dock(win, "runsDock")


@screenshot("tour-model-panel")
def tour_model_panel():
    """The layer table of the default experiment."""
    return dock(window("default.json"), "editorModelDock")


# ---------------------------------------------------------------------- lesson 1: vanishing and exploding gradients

@screenshot("vanishing-trained")
def vanishing_trained():
    return trained("vanishing.json")


@screenshot("exploding-trained")
def exploding_trained():
    return trained("exploding.json")


@screenshot("he-elu-trained")
def he_elu_trained():
    return trained("he_elu.json")


# ---------------------------------------------------------------------- lesson 2: batch normalization

@screenshot("batchnorm-trained")
def batchnorm_trained():
    return trained("batch_norm.json")


# ---------------------------------------------------------------------- lesson 3: optimizers

@screenshot("optimizers-sgd")
def optimizers_sgd():
    return trained("plain_sgd.json", panel="Optimizer")


@screenshot("optimizers-nadam")
def optimizers_nadam():
    return trained("plain_sgd.json", panel="Optimizer", **{"optimizer.name": "nadam"})


# ---------------------------------------------------------------------- lesson 4: learning-rate schedules

@screenshot("schedules-one-cycle")
def schedules_one_cycle():
    return trained("constant_lr.json", panel="Optimizer",
                   schedule={"name": "one_cycle", "max_learning_rate": 0.03})


# ---------------------------------------------------------------------- lesson 5: regularization

@screenshot("overfitting-trained")
def overfitting_trained():
    return trained("overfitting.json", panel="Regularization")


@screenshot("regularized-trained")
def regularized_trained():
    dropout = {f"model.layers[{i}].dropout": 0.3 for i in range(3)}
    return trained("overfitting.json", panel="Regularization", **dropout,
                   **{"regularization.l2": 1e-3, "regularization.early_stopping.enabled": True})


# ---------------------------------------------------------------------- lesson 6: transfer learning

@screenshot("transfer-base")
def transfer_base():
    """The pretrained session the transfer starts from (digits 0-4), as saved in the zoo."""
    return window(ZOO / "digits_0-4.gwb")


@screenshot("transfer-trained")
def transfer_trained():
    """The zoo's transfer session (made from examples/transfer_digits_5-9.json), trained again:
    six layers copied from digits_0-4.gwb, then fine-tuned on 36 labels of each digit 5-9."""
    return trained(ZOO / "digits_5-9_transfer.gwb")


@screenshot("lessons-transfer")
def lessons_transfer():
    """Help › Lessons › Transfer learning: Load the example, Train, and the check's verdict (the
    gain over the same network trained from scratch on the same labels)."""
    win = window()
    win.lessons.action.trigger()
    panel = win.lessons.panel
    panel.select("transfer")
    if not panel.load():
        raise SystemExit("make_screenshots: the transfer lesson did not load its example")
    verdicts: list[Any] = []
    panel.verdict_shown.connect(lambda key, verdict: verdicts.append(verdict))
    train(win)
    wait_until(lambda: bool(verdicts), TRAIN_TIMEOUT, "the lesson's check")
    win.statusBar().clearMessage()
    settle(0.6)
    return win


# ---------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="screenshots to make (default: all)")
    parser.add_argument("--list", action="store_true", help="print the names and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(SHOTS))
        return 0
    unknown = [n for n in args.names if n not in SHOTS]
    if unknown:
        parser.error(f"unknown screenshot(s) {', '.join(unknown)}; known: {', '.join(SHOTS)}")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("LANG", "C.UTF-8")
    sys.path.insert(0, str(ROOT))
    try:
        for name in args.names or list(SHOTS):
            started = time.monotonic()
            path = save(SHOTS[name](), name)
            close_all()
            print(f"{path.relative_to(ROOT)}  ({time.monotonic() - started:.1f} s)", flush=True)
    finally:
        close_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
