"""Screenshots of the Runs panel and the Sweep dialog (docs/screenshots/runs.png, sweep.png).

    QT_QPA_PLATFORM=offscreen python docs/make_runs_screenshots.py

Trains three small runs of a deep network on moons with core (ELU + He, tanh + Glorot,
logistic + N(0, 1)), overlays them in the Runs panel, then runs a 3-activation sweep with two
seeds in the Sweep dialog and selects its two best rows. About 30 s on two cores.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("LANG", "C.UTF-8")

from PySide6.QtCore import QItemSelectionModel, QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from core.sessions.trainer_io import save_trainer  # noqa: E402
from core.spec import parse_experiment  # noqa: E402
from core.training import Trainer  # noqa: E402

OUT = Path(__file__).resolve().parent / "screenshots"


def spec(activation: str, init: str, epochs: int = 15) -> dict:
    return {"name": f"moons, 6 × 32 {activation} + {init}", "seed": 3,
            "data": {"source": "moons", "params": {"n_samples": 600, "noise": 0.2}, "validation_split": 0.2,
                     "test_split": 0.0},
            "model": {"layers": [{"units": 32, "init": init, "activation": activation} for _ in range(6)]},
            "optimizer": {"name": "sgd", "learning_rate": 0.05},
            "training": {"epochs": epochs, "batch_size": 32}}


def wait(app: QApplication, until, timeout: float = 120.0) -> None:
    t0 = time.time()
    while not until():
        app.processEvents()
        time.sleep(0.02)
        if time.time() - t0 > timeout:
            raise TimeoutError


def main() -> None:
    from workbench.main_window import MainWindow
    from workbench.state import ExperimentState

    app = QApplication(sys.argv)
    tmp = Path(tempfile.mkdtemp(prefix="gw-runs-shots-"))
    paths = []
    for act, init in (("elu", "he_normal"), ("tanh", "glorot_uniform"), ("logistic", "random_normal")):
        trainer = Trainer(parse_experiment(spec(act, init)))
        trainer.fit()
        paths.append(tmp / f"{act}.gwb")
        save_trainer(paths[-1], trainer)
    window = MainWindow(ExperimentState(parse_experiment(spec("elu", "he_normal", epochs=8))),
                        QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    window.resize(1366, 768)
    window.show()
    panel = window.runs.panel
    for p in paths:
        panel.add_session(p, source="added")
    panel.grad_plot.layer_combo.setCurrentIndex(0)      # first hidden layer: where vanishing shows
    panel.set_checked(paths)
    wait(app, lambda: panel.data is not None and len(panel.data.paths) == 3)
    window.runs.dock.setFloating(True)
    window.runs.dock.resize(560, 860)
    window.runs.dock.show()
    wait(app, lambda: True)
    for _ in range(20):
        app.processEvents()
    OUT.mkdir(exist_ok=True)
    window.runs.dock.grab().save(str(OUT / "runs.png"))

    dialog = window.runs.open_sweep()
    axis = dialog.add_axis("model.layers[*].activation")
    for i in range(axis.values_list.count()):
        item = axis.values_list.item(i)
        item.setCheckState(item.checkState().Checked if item.text() in ("elu", "relu", "tanh", "logistic")
                           else item.checkState().Unchecked)
    dialog.repeats.setValue(2)
    dialog.out_edit.setText(str(tmp / "sweep"))
    dialog.workers.setValue(2)
    dialog.resize(1280, 800)
    assert dialog.start()
    wait(app, lambda: dialog.last_result is not None, timeout=300)
    sel = dialog.table.selectionModel()
    sel.select(dialog.proxy.index(0, 0), QItemSelectionModel.SelectionFlag.ClearAndSelect
               | QItemSelectionModel.SelectionFlag.Rows)
    for _ in range(20):
        app.processEvents()
    dialog.grab().save(str(OUT / "sweep.png"))
    print(dialog.progress_label.text())
    dialog.shutdown()
    window.state.undo_stack.setClean()
    window.close()


if __name__ == "__main__":
    main()
