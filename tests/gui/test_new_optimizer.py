"""One class plus its registration is the whole way to add an optimizer (CONTRIBUTING.md): a
throwaway optimizer registered for one test reaches the editor's choice list with its help, the
command line's validation and training, the optimizer race, the measured Table 11-2 and the tests
parametrized over the registry; the PyTorch exporter refuses it by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication, QComboBox, QDockWidget, QLineEdit, QMessageBox

from core.cli.main import run_headless
from core.engine.optimizers import OPTIMIZERS
from core.engine.schedules import SCHEDULES
from core.export.pytorch import export_pytorch
from core.labs.optimizer_race import SURFACES, book_rating, run_optimizer
from core.sessions.format import load_session
from core.spec import parse_experiment

from .new_optimizer_support import NAME, SignDescent, register, unregister

ROOT = Path(__file__).resolve().parents[2]


def spec(optimizer: str = NAME, **hyper: Any) -> dict[str, Any]:
    return {
        "name": "a new optimizer", "seed": 4,
        "data": {"source": "moons", "params": {"n_samples": 200}, "validation_split": 0.2},
        "model": {"layers": [{"units": 8, "activation": "elu"}] * 2},
        "optimizer": {"name": optimizer, "learning_rate": 0.01, **hyper},
        "training": {"epochs": 2, "batch_size": 32},
    }


@pytest.fixture
def new_optimizer() -> Iterator[type[SignDescent]]:
    """The throwaway registered for one test, removed afterwards whatever happens."""
    cls = register()
    try:
        yield cls
    finally:
        unregister()
    assert NAME not in OPTIMIZERS


@pytest.fixture
def window(new_optimizer: Any, qtbot: Any, tmp_path: Path, monkeypatch: Any) -> Iterator[Any]:
    """The main window, built after the throwaway was registered."""
    from workbench.main_window import MainWindow
    from workbench.state import ExperimentState

    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Discard)
    state = ExperimentState(parse_experiment(spec("adam")))
    main = MainWindow(state, QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(main)
    main.show()
    yield main
    main.state.undo_stack.setClean()
    main.close()


def optimizer_panel(main: Any) -> Any:
    from workbench.editor.optimizer_panel import OptimizerPanel

    dock = next(d for d in main.findChildren(QDockWidget) if d.windowTitle() == "Optimizer")
    dock.raise_()
    QApplication.processEvents()
    return main.findChild(OptimizerPanel)


def test_the_editor_offers_it_with_its_help(window: Any) -> None:
    panel = optimizer_panel(window)
    combo = panel.findChild(QComboBox, "optimizer.name")
    names = [combo.itemText(i) for i in range(combo.count())]
    assert names == OPTIMIZERS.names() and NAME in names
    assert combo.itemData(names.index(NAME), Qt.ItemDataRole.ToolTipRole) == SignDescent.summary

    combo.setCurrentText(NAME)
    QApplication.processEvents()
    assert window.state.experiment.optimizer.name == NAME
    assert combo.toolTip().startswith(SignDescent.summary[:30])
    editor = panel.optimizer
    assert set(editor.param_widgets) == {"learning_rate", "threshold"}
    threshold = editor.param_widgets["threshold"]
    assert isinstance(threshold, QLineEdit) and threshold.isVisibleTo(panel)
    label = editor.form.labelForField(threshold)
    assert label.text() == "Dead zone τ" and label.toolTip() == SignDescent.hyperparameter("threshold").help
    # the base class's help for η, as for every optimizer
    rate_label = editor.form.labelForField(editor.param_widgets["learning_rate"])
    assert rate_label.toolTip() == OPTIMIZERS.get("sgd").hyperparameter("learning_rate").help

    # the sweep dialog's axis over optimizer.name offers it too
    from workbench.runs.sweep_dialog import choices_for

    assert choices_for("optimizer.name") == OPTIMIZERS.names()

    threshold.setText("0.5")
    threshold.editingFinished.emit()
    assert window.state.experiment.optimizer.params == {"learning_rate": 0.01, "threshold": 0.5}
    threshold.setText("-1")
    threshold.editingFinished.emit()
    assert "threshold: must be a non-negative number, got -1" in window.state.errors["optimizer.threshold"]


def test_every_hyperparameter_row_shows_the_class_s_help(window: Any) -> None:
    """The labels and tooltips of the optimizer's and the schedule's fields are those the classes
    document (no table in the GUI), for every registered entry."""
    panel = optimizer_panel(window)
    for editor, registry in ((panel.optimizer, OPTIMIZERS), (panel.schedule, SCHEDULES)):
        for name in registry.names():
            editor.combo.setCurrentText(name)
            QApplication.processEvents()
            cls = registry.get(name)
            assert set(editor.param_widgets) == set(cls.parameters()), name
            for key, widget in editor.param_widgets.items():
                documented = cls.hyperparameter(key)
                label = editor.form.labelForField(widget)
                assert label.toolTip() == documented.help, (name, key)
                assert label.text().lower() == documented.label.lower(), (name, key)


def test_the_command_line_accepts_it_and_lists_it(new_optimizer: Any, tmp_path: Path, capsys: Any) -> None:
    good = tmp_path / "spec.json"
    good.write_text(json.dumps(spec(threshold=0.001)))
    out = tmp_path / "run.gwb"
    assert run_headless(["train", str(good), "--out", str(out), "--quiet"]) == 0
    session = load_session(out)
    assert session.experiment.optimizer.name == NAME
    assert dict(session.experiment.optimizer.params) == {"learning_rate": 0.01, "threshold": 0.001}
    assert list(session.history["epoch"]) == [1, 2] and np.all(np.isfinite(session.history["loss"]))
    resumed = tmp_path / "more.gwb"
    assert run_headless(["resume", str(out), "--epochs", "1", "--out", str(resumed), "--quiet"]) == 0
    assert list(load_session(resumed).history["epoch"]) == [1, 2, 3]

    bad = tmp_path / "typo.json"
    bad.write_text(json.dumps(spec("sign_descnet")))
    capsys.readouterr()
    assert run_headless(["train", str(bad), "--out", str(tmp_path / "typo.gwb")]) == 2
    err = capsys.readouterr().err
    assert "optimizer.name" in err and "'sign_descnet'" in err
    allowed = ", ".join(OPTIMIZERS.names())
    assert f"must be one of {allowed}, got" in err and allowed.endswith(NAME)
    assert err.count("\n") == 1
    assert not (tmp_path / "typo.gwb").exists()


def test_the_optimizer_race_runs_it_and_rates_it(new_optimizer: Any, qtbot: Any) -> None:
    from workbench.labs.optimizer_race import OptimizerRaceLab

    lab = OptimizerRaceLab(autotune=False)
    qtbot.addWidget(lab)
    try:
        lanes = {lane.name: lane for lane in lab.lanes}
        assert list(lanes) == OPTIMIZERS.names() and NAME in lanes
        assert lanes[NAME].enabled.toolTip() == SignDescent.summary
        assert lanes[NAME].rate.value() == pytest.approx(0.01)  # its own default η
        assert lanes[NAME].momentum is None                      # nothing momentum-like to set
        lanes[NAME].rate.setValue(0.02)
        qtbot.waitUntil(lambda: any(t.optimizer == NAME and t.learning_rate == pytest.approx(0.02)
                                    for t in lab.trajectories), timeout=20000)
        mine = next(t for t in lab.trajectories if t.optimizer == NAME)
        surface = SURFACES.get(lab.surface_combo.currentData())()
        expected = run_optimizer(surface, NAME, 0.02, lab.steps_spin.value())
        np.testing.assert_array_equal(mine.points, expected.points)
        x, y = lab.curves[NAME].getData()
        assert len(x) >= 1
        rows = [lab.table.item(r, 0).text() for r in range(lab.table.rowCount())]
        assert NAME in rows
    finally:
        lab.close()
        lab.shutdown()
    assert book_rating(NAME) == ("**", "*")   # the measured Table 11-2's "book" columns


def test_the_registry_parametrized_engine_tests_take_it_up() -> None:
    """Registered before collection (this module as a plugin), the throwaway runs through every
    test of tests/core/engine/test_optimizers.py parametrized over the registry; only the two that
    compare with equations written out again in the test file fail, asking for its equations."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.gui.new_optimizer_support",
         "tests/core/engine/test_optimizers.py", "-k", NAME, "-rf"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    summary = proc.stdout.strip().splitlines()[-1]
    failed = sorted(line.split("::")[1].split(" ")[0] for line in proc.stdout.splitlines()
                    if line.startswith("FAILED"))
    assert failed == [f"test_first_three_steps_match_the_equations[{NAME}]",
                      f"test_float32_stays_float32[{NAME}]"], proc.stdout[-3000:]
    assert f"no reference equations for {NAME}" in proc.stdout
    passed = int(summary.split(" passed")[0].rsplit(" ", 1)[-1])
    assert passed >= 12, summary


def test_the_pytorch_exporter_refuses_it_by_name(new_optimizer: Any, tmp_path: Path) -> None:
    from core.sessions.trainer_io import save_trainer
    from core.training import Trainer

    trainer = Trainer(parse_experiment(spec()))
    path = tmp_path / "run.gwb"
    save_trainer(path, trainer)
    with pytest.raises(ValueError, match=NAME):
        export_pytorch(load_session(path), tmp_path / "model.py")
    assert not (tmp_path / "model.py").exists()
