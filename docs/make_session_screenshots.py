"""Screenshots of the session dialogs (offscreen): docs/screenshots/transfer_dialog.png and
recovery_dialog.png. ``python docs/make_session_screenshots.py`` (a few seconds)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["GRADIENT_WORKBENCH_DATA"] = tempfile.mkdtemp(prefix="gw-shots-")

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

OUT = Path(__file__).resolve().parent / "screenshots"


def main() -> int:
    from core.sessions.recovery import recovery_dir, recovery_path_for, register
    from core.sessions.trainer_io import save_trainer
    from core.spec import parse_experiment
    from core.training import Trainer
    from workbench.app import create_app
    from workbench.main_window import MainWindow
    from workbench.state import ExperimentState

    app = create_app() if QApplication.instance() is None else QApplication.instance()
    folder = Path(tempfile.mkdtemp(prefix="gw-shots-"))
    spec = {"name": "digits 0-4, ELU + BN", "seed": 1,
            "data": {"source": "digits", "params": {"classes": [0, 1, 2, 3, 4]}, "validation_split": 0.2},
            "model": {"layers": [{"units": 100, "activation": "elu", "batch_norm": "before_activation"},
                                 {"units": 50, "activation": "elu", "batch_norm": "before_activation"},
                                 {"units": 30, "activation": "selu", "init": "lecun_normal"}]},
            "optimizer": {"name": "nadam", "learning_rate": 0.002}, "training": {"epochs": 4}}
    trainer = Trainer(parse_experiment(spec))
    trainer.fit(epochs=3)
    base = folder / "digits-0-4.gwb"
    save_trainer(base, trainer)
    time.sleep(0.05)
    copy = recovery_path_for(base)
    trainer.fit(epochs=1)
    save_trainer(copy, trainer)
    register(copy, base)
    recovery_dir().mkdir(parents=True, exist_ok=True)
    save_trainer(recovery_dir() / "untitled-20260101-101500-1-abcd.gwb", trainer)

    settings = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
    target = dict(spec, name="digits 5-9", data={"source": "digits", "params": {"classes": [5, 6, 7, 8, 9]}})
    window = MainWindow(ExperimentState(parse_experiment(target)), settings)
    window.show()
    deadline = time.perf_counter() + 3
    while window.sessions.recovery_dialog is None and time.perf_counter() < deadline:
        app.processEvents()
    dialog = window.sessions.recovery_dialog
    OUT.mkdir(parents=True, exist_ok=True)
    if dialog is not None:
        app.processEvents()
        dialog.grab().save(str(OUT / "recovery_dialog.png"))
        dialog.done(0)
    transfer = window.sessions.show_transfer_dialog(base)
    transfer.box("freeze", 2).setChecked(False)
    transfer.unfreeze.setValue(5)
    transfer.factor.setValue(0.1)
    app.processEvents()
    transfer.grab().save(str(OUT / "transfer_dialog.png"))
    transfer.box("reuse", 0).setChecked(True)
    window2 = None
    conflict = dict(target, data={"source": "iris"})
    window2 = MainWindow(ExperimentState(parse_experiment(conflict)), settings)
    dialog2 = window2.sessions.show_transfer_dialog(base)
    app.processEvents()
    dialog2.grab().save(str(OUT / "transfer_dialog_conflict.png"))
    for w in (window, window2):
        w.state.undo_stack.setClean()
        w.controller.shutdown()
        w.close()
    print(f"wrote {OUT}/recovery_dialog.png, transfer_dialog.png, transfer_dialog_conflict.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
