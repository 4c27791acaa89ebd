"""The experiment editor, driven through its real widgets as a user would: the layer table and
its delegates, the panels' fields, the presets menu, undo, CSV import with a preview, and the
parameter count."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QLocale, QPoint, QSettings, Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableView,
    QToolButton,
    QWidget,
)

from core.data import DATASETS, IMPORTERS
from core.engine.activations import ACTIVATIONS
from core.engine.network import Network
from core.engine.optimizers import OPTIMIZERS
from core.engine.schedules import SCHEDULES
from core.presets import PRESETS
from core.spec import InstrumentsSpec, parse_experiment
from tests.core.data.support import LabelledPointsImporter, PointsImporter, registered_importer, write_points

COL_UNITS, COL_INIT, COL_ACTIVATION, COL_PARAM, COL_BN, COL_DROPOUT, COL_BIAS, COL_COUNT = range(8)


def small_spec(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "editor test", "seed": 1,
        "data": {"source": "moons", "params": {"n_samples": 300}, "validation_split": 0.2, "test_split": 0.0},
        "model": {"layers": [{"units": 16, "init": "he_normal", "activation": "elu"},
                             {"units": 8, "init": "glorot_uniform", "activation": "tanh"}]},
        "optimizer": {"name": "adam", "learning_rate": 0.01},
        "training": {"epochs": 5, "batch_size": 32},
    }
    spec.update(changes)
    return spec


@pytest.fixture
def make_window(qtbot: Any, tmp_path: Path, monkeypatch: Any) -> Iterator[Callable[..., Any]]:
    """``make_window(spec)`` → a shown MainWindow on that experiment, settings in a temporary
    file; on teardown a field still being edited is committed, the unsaved-changes question is
    answered "Discard" (a failing test must not hang on a modal dialog), and preview loads end."""
    from workbench.main_window import MainWindow
    from workbench.state import ExperimentState

    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Discard)
    windows: list[Any] = []

    def make(spec: dict[str, Any] | None = None) -> Any:
        state = ExperimentState(parse_experiment(spec or small_spec()))
        settings = QSettings(str(tmp_path / f"s{len(windows)}.ini"), QSettings.Format.IniFormat)
        window = MainWindow(state, settings)
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        focused = QApplication.focusWidget()
        if focused is not None:
            focused.clearFocus()
        window.state.undo_stack.setClean()
        window.close()
        for info in window.findChildren(_data_info_type()):
            assert info.wait(20_000)


def _data_info_type() -> type:
    from workbench.editor.dataset_info import DataInfo

    return DataInfo


# ----------------------------------------------------------------------------- helpers


def show_dock(window: Any, title: str) -> QWidget:
    """Raise the editor dock with this title and return its scroll area's content."""
    dock = next(d for d in window.findChildren(QDockWidget) if d.windowTitle() == title)
    dock.raise_()
    QApplication.processEvents()
    return dock.widget().widget()


def field(window: Any, path: str, kind: type = QWidget) -> Any:
    """The live widget bound to a spec path (widgets are named after their path)."""
    QApplication.processEvents()  # widgets added to a shown form appear at the next event loop pass
    found = [w for w in window.findChildren(kind, path) if not w.isHidden()]
    assert found, f"no visible widget for {path}"
    return found[0]


def type_into(qtbot: Any, widget: QWidget, text: str, key: Qt.Key = Qt.Key.Key_Return) -> None:
    widget.setFocus()
    qtbot.keyClick(widget, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(widget, text)
    qtbot.keyClick(widget, key)
    QApplication.processEvents()  # a table cell's editor commits on Return through a queued call


def table_of(window: Any) -> QTableView:
    show_dock(window, "Model")
    return window.findChild(QTableView, "layerTable")


def open_cell_editor(qtbot: Any, table: QTableView, row: int, column: int) -> QWidget:
    """Click the cell, then F2 (the platform's edit key): the delegate's editor opens and has focus."""
    index = table.model().index(row, column)
    table.scrollTo(index)
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=table.visualRect(index).center())
    assert table.currentIndex() == index
    qtbot.keyClick(table, Qt.Key.Key_F2)
    qtbot.waitUntil(lambda: table.state() == QAbstractItemView.State.EditingState)
    editor = QApplication.focusWidget()
    assert editor is not None and table.viewport().isAncestorOf(editor)
    return editor


def click_button(qtbot: Any, window: Any, name: str) -> None:
    button = None
    for kind in (QToolButton, QPushButton):
        button = window.findChild(kind, name)
        if button is not None:
            break
    assert button is not None and button.isEnabled(), name
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def select_row(qtbot: Any, table: QTableView, row: int) -> None:
    rect = table.visualRect(table.model().index(row, COL_COUNT))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def units(window: Any) -> list[int]:
    return [layer.units for layer in window.state.experiment.model.layers]


# ----------------------------------------------------------------------------- docks and menu


def test_docks_and_presets_menu(make_window: Any) -> None:
    window = make_window()
    names = [d.objectName() for d in window.editor_docks]
    assert len(names) == len(set(names)) == 5
    assert [d.windowTitle() for d in window.editor_docks] == ["Data", "Model", "Optimizer", "Regularization",
                                                               "Training"]
    menu = window.presets_menu
    assert menu.title() == "&Presets"
    actions = [a for a in menu.actions() if not a.isSeparator()]
    assert [a.data() for a in actions] == list(PRESETS)
    for action, (title, _) in zip(actions, PRESETS.values(), strict=True):
        assert title in action.text() and action.toolTip()


# ----------------------------------------------------------------------------- the layer table


def test_change_activation_in_the_table(make_window: Any, qtbot: Any) -> None:
    window = make_window()
    table = table_of(window)
    editor = open_cell_editor(qtbot, table, 0, COL_ACTIVATION)
    assert isinstance(editor, QComboBox)
    assert [editor.itemText(i) for i in range(editor.count())] == ACTIVATIONS.names()
    editor.setCurrentText("tanh")
    layer = window.state.experiment.model.layers[0]
    assert layer.activation == "tanh" and dict(layer.activation_params) == {}
    assert table.model().index(0, COL_PARAM).data() == ""  # tanh has no α
    assert not table.model().flags(table.model().index(0, COL_PARAM)) & Qt.ItemFlag.ItemIsEditable

    editor = open_cell_editor(qtbot, table, 0, COL_ACTIVATION)
    editor.setCurrentText("leaky_relu")
    assert window.state.experiment.model.layers[0].activation_params == {"alpha": 0.2}
    editor = open_cell_editor(qtbot, table, 0, COL_PARAM)
    type_into(qtbot, editor, "0.1")
    assert window.state.experiment.model.layers[0].activation_params == {"alpha": 0.1}
    assert table.model().index(0, COL_PARAM).data() == "0.1"


def test_batch_norm_dropout_and_bias_cells(make_window: Any, qtbot: Any) -> None:
    window = make_window()
    table = table_of(window)
    editor = open_cell_editor(qtbot, table, 1, COL_BN)
    editor.setCurrentIndex(editor.findText("before activation"))
    editor = open_cell_editor(qtbot, table, 1, COL_DROPOUT)
    type_into(qtbot, editor, "0.25")
    table.setFocus()
    table.setCurrentIndex(table.model().index(1, COL_BIAS))
    qtbot.keyClick(table, Qt.Key.Key_Space)   # toggles the check box of the current cell
    layer = window.state.experiment.model.layers[1]
    assert (layer.batch_norm, layer.dropout, layer.use_bias) == ("before_activation", 0.25, False)


def test_add_duplicate_delete_move_and_add_n_like_this(make_window: Any, qtbot: Any) -> None:
    window = make_window()
    table = table_of(window)
    assert units(window) == [16, 8]

    select_row(qtbot, table, 0)
    click_button(qtbot, window, "layer_duplicate_button")
    assert units(window) == [16, 16, 8]
    assert table.currentIndex().row() == 1

    click_button(qtbot, window, "layer_add_button")
    assert units(window) == [16, 16, 100, 8]
    assert window.state.experiment.model.layers[2].activation == "elu"
    assert table.model().rowCount() == 4

    select_row(qtbot, table, 3)
    click_button(qtbot, window, "layer_up_button")
    assert units(window) == [16, 16, 8, 100]
    assert table.currentIndex().row() == 2
    click_button(qtbot, window, "layer_down_button")
    assert units(window) == [16, 16, 100, 8]

    select_row(qtbot, table, 2)
    click_button(qtbot, window, "layer_delete_button")
    assert units(window) == [16, 16, 8]

    select_row(qtbot, table, 2)
    count = window.findChild(QSpinBox, "repeatCount")
    type_into(qtbot, count, "4")
    click_button(qtbot, window, "addLayersLikeThis")
    assert units(window) == [16, 16, 8, 8, 8, 8, 8]
    assert table.model().rowCount() == 7
    assert [layer.activation for layer in window.state.experiment.model.layers[2:]] == ["tanh"] * 5

    # the Delete key on the table deletes the current layer; each operation was one undo step
    table.setFocus()
    select_row(qtbot, table, 6)
    qtbot.keyClick(table, Qt.Key.Key_Delete)
    assert units(window) == [16, 16, 8, 8, 8, 8]
    steps = window.state.undo_stack.count()
    assert steps == 7
    for _ in range(steps):
        window.undo_action.trigger()
    assert units(window) == [16, 8]
    assert table.model().rowCount() == 2

    # the last layer cannot be deleted (the spec needs one)
    select_row(qtbot, table, 1)
    click_button(qtbot, window, "layer_delete_button")
    assert not window.findChild(QToolButton, "layer_delete_button").isEnabled()


def test_a_number_that_is_not_an_integer_is_refused_with_a_message_not_read_without_its_point(
        make_window: Any, qtbot: Any) -> None:
    """A spin box drops the keystroke its validator refuses: "2.5" had become 25 units, silently."""
    window = make_window()
    table = table_of(window)
    editor = open_cell_editor(qtbot, table, 0, COL_UNITS)
    type_into(qtbot, editor, "2.5")
    path = "model.layers[0].units"
    assert "got 2.5" in window.state.errors[path], window.state.errors
    assert window.state.experiment.model.layers[0].units == 16 and not window.state.valid
    qtbot.keyClick(table, Qt.Key.Key_Escape)
    show_dock(window, "Training")
    epochs = field(window, "training.epochs", QSpinBox)
    before = window.state.experiment.training.epochs
    type_into(qtbot, epochs, "2.5")
    assert "got 2.5" in window.state.errors["training.epochs"]
    assert window.state.experiment.training.epochs == before
    type_into(qtbot, epochs, "12")                   # an integer is taken as before
    assert window.state.experiment.training.epochs == 12 and "training.epochs" not in window.state.errors


def test_invalid_units_are_marked_in_the_table_and_disable_train(make_window: Any, qtbot: Any) -> None:
    window = make_window()
    table = table_of(window)
    train = window.controller.actions["train"]
    assert train.isEnabled()
    editor = open_cell_editor(qtbot, table, 0, COL_UNITS)
    type_into(qtbot, editor, "-5")
    path = "model.layers[0].units"
    assert "must be a positive integer, got -5" in window.state.errors[path]
    assert not window.state.valid
    assert not train.isEnabled()
    assert train.toolTip() == f"Not available: {path}: must be a positive integer, got -5"   # the path once
    index = table.model().index(0, COL_UNITS)
    assert index.data() == "-5"                                   # the typed value stays, not reverted
    assert index.data(Qt.ItemDataRole.BackgroundRole) is not None  # red
    assert "must be a positive integer" in index.data(Qt.ItemDataRole.ToolTipRole)
    message = window.findChild(QLabel, "layerErrors")
    assert message.isVisible() and "Layer 1 · units: must be a positive integer, got -5" in message.text()
    assert window.state.experiment.model.layers[0].units == 16   # the state keeps the last valid value

    # Escape on the cell forgets the refused value; then a valid one is typed
    qtbot.keyClick(table, Qt.Key.Key_Escape)
    assert window.state.valid and index.data() == "16" and not message.isVisible()
    editor = open_cell_editor(qtbot, table, 0, COL_UNITS)
    type_into(qtbot, editor, "-5")
    assert not window.state.valid
    editor = open_cell_editor(qtbot, table, 0, COL_UNITS)
    assert editor.value() == -5   # the editor starts from the refused value, to be corrected
    type_into(qtbot, editor, "64")
    assert window.state.valid and train.isEnabled()
    assert window.state.experiment.model.layers[0].units == 64
    assert not message.isVisible()
    assert index.data(Qt.ItemDataRole.BackgroundRole) is None


# ----------------------------------------------------------------------------- fields, errors, locale


def test_invalid_learning_rate_is_marked_at_the_field_then_fixed(make_window: Any, qtbot: Any) -> None:
    window = make_window()
    show_dock(window, "Optimizer")
    lr = field(window, "optimizer.learning_rate", QLineEdit)
    type_into(qtbot, lr, "0")
    message = window.state.errors["optimizer.learning_rate"]
    assert "must be a positive number, got 0" in message
    assert lr.property("invalid") is True and "must be a positive number" in lr.toolTip()
    assert lr.text() == "0"
    inline = [w for w in lr.parent().findChildren(QLabel) if w.isVisible() and "positive number" in w.text()]
    assert inline, "the validator's message is shown next to the field"
    assert not window.controller.actions["train"].isEnabled()

    qtbot.keyClick(lr, Qt.Key.Key_Escape)  # Escape gives the state's value back
    assert lr.text() == "0.01" and window.state.valid and not lr.property("invalid")

    type_into(qtbot, lr, "abc")
    assert "must be a positive number, got 'abc'" in window.state.errors["optimizer.learning_rate"]
    type_into(qtbot, lr, "3e-3")
    assert window.state.valid and window.state.experiment.learning_rate == 0.003
    assert not lr.property("invalid") and window.controller.actions["train"].isEnabled()


def test_numbers_follow_the_locale(make_window: Any, qtbot: Any) -> None:
    QLocale.setDefault(QLocale(QLocale.Language.German, QLocale.Country.Germany))
    try:
        window = make_window()
        show_dock(window, "Regularization")
        l2 = field(window, "regularization.l2", QLineEdit)
        assert l2.text() == "0"
        type_into(qtbot, l2, "0,005")
        assert window.state.experiment.regularization.l2 == 0.005
        assert l2.text() == "0,005"
        type_into(qtbot, l2, "1e-4")
        assert window.state.experiment.regularization.l2 == 1e-4
    finally:
        QLocale.setDefault(QLocale.c())


def test_picking_an_optimizer_shows_only_its_fields(make_window: Any, qtbot: Any) -> None:
    window = make_window()
    panel = show_dock(window, "Optimizer")
    combo = field(window, "optimizer.name", QComboBox)
    assert [combo.itemText(i) for i in range(combo.count())] == OPTIMIZERS.names()

    def shown() -> set[str]:
        QApplication.processEvents()
        return {w.objectName().split(".", 1)[1] for w in panel.findChildren(QWidget)
                if w.objectName().startswith("optimizer.") and w.objectName() != "optimizer.name"
                and w.isVisibleTo(panel)}

    for name in OPTIMIZERS.names():
        combo.setCurrentText(name)
        assert window.state.experiment.optimizer.name == name
        assert shown() == set(OPTIMIZERS.get(name).parameters()), name
        assert combo.toolTip().startswith(OPTIMIZERS.get(name).summary[:30])
    combo.setCurrentText("momentum")
    type_into(qtbot, field(window, "optimizer.momentum", QLineEdit), "0.95")
    assert window.state.experiment.optimizer.params == {"learning_rate": 0.01, "momentum": 0.95}
    combo.setCurrentText("sgd")  # the learning rate carries over, momentum goes
    assert window.state.experiment.optimizer.params == {"learning_rate": 0.01}

    # tab order follows the layout, also for the fields built after the choice
    QApplication.processEvents()
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is field(window, "optimizer.learning_rate", QLineEdit)


def test_schedule_change_updates_the_preview(make_window: Any, qtbot: Any) -> None:
    window = make_window()
    show_dock(window, "Optimizer")
    plot = window.findChild(QWidget, "schedulePreview")
    curve = plot.getPlotItem().listDataItems()[0]
    x, y = curve.getData()
    # moons 300 samples, 20 % validation → 240 training examples, batch 32 → 8 steps × 5 epochs
    assert len(x) == 40 and np.allclose(y, 0.01)
    combo = field(window, "schedule.name", QComboBox)
    assert [combo.itemText(i) for i in range(combo.count())] == SCHEDULES.names()
    combo.setCurrentText("exponential")
    type_into(qtbot, field(window, "schedule.steps", QSpinBox), "20")
    x, y = curve.getData()
    schedule = SCHEDULES.get("exponential").from_config({"steps": 20}, 0.01)
    schedule.bind(8, 40)
    assert np.allclose(y, [schedule(int(t)) for t in x])
    assert y[-1] < y[0] / 50
    combo.setCurrentText("piecewise")   # starts valid: the rate divided by 10 halfway
    assert window.state.experiment.schedule.params == {"boundaries": [2], "values": [0.01, 0.001]}
    values = field(window, "schedule.values", QLineEdit)
    assert values.text() == "0.01, 0.001"
    type_into(qtbot, values, "0.01, 0.005, 0.001")    # one more rate than boundaries: refused
    assert "must have one more entry than boundaries" in window.state.errors["schedule.values"]
    # the matching boundaries make both valid in one edit (the refused rates travel with it)
    type_into(qtbot, field(window, "schedule.boundaries", QLineEdit), "2 4")
    assert window.state.valid and not values.property("invalid")
    assert window.state.experiment.schedule.params == {"boundaries": [2, 4], "values": [0.01, 0.005, 0.001]}
    assert window.state.undo_stack.undoText() == "Change schedule boundaries"
    x, y = curve.getData()
    assert np.allclose(y[x < 16], 0.01) and np.allclose(y[(x >= 16) & (x < 32)], 0.005)
    assert np.allclose(y[x >= 32], 0.001)


def test_regularization_and_training_fields(make_window: Any, qtbot: Any) -> None:
    window = make_window()
    show_dock(window, "Regularization")
    max_norm_on = window.findChild(QWidget, "maxNormEnabled")
    max_norm = field(window, "regularization.max_norm", QLineEdit)
    assert not max_norm.isEnabled()
    qtbot.mouseClick(max_norm_on, Qt.MouseButton.LeftButton, pos=QPoint(8, max_norm_on.height() // 2))
    assert window.state.experiment.regularization.max_norm == 1.0 and max_norm.isEnabled()
    type_into(qtbot, max_norm, "2.5")
    assert window.state.experiment.regularization.max_norm == 2.5
    qtbot.mouseClick(max_norm_on, Qt.MouseButton.LeftButton, pos=QPoint(8, max_norm_on.height() // 2))
    assert window.state.experiment.regularization.max_norm is None

    clip = field(window, "regularization.gradient_clip.mode", QComboBox)
    threshold = field(window, "regularization.gradient_clip.threshold", QLineEdit)
    assert not threshold.isEnabled()
    clip.setCurrentText("by global norm")
    assert threshold.isEnabled()
    type_into(qtbot, threshold, "5")
    assert window.state.experiment.regularization.gradient_clip.to_dict() == {"mode": "global_norm",
                                                                              "threshold": 5.0}
    patience = field(window, "regularization.early_stopping.patience", QSpinBox)
    assert not patience.isEnabled()
    es = field(window, "regularization.early_stopping.enabled")
    es.click()
    assert patience.isEnabled()
    type_into(qtbot, patience, "7")
    field(window, "regularization.early_stopping.monitor", QComboBox).setCurrentText("val_accuracy")
    es_spec = window.state.experiment.regularization.early_stopping
    assert (es_spec.enabled, es_spec.patience, es_spec.monitor) == (True, 7, "val_accuracy")

    show_dock(window, "Training")
    type_into(qtbot, field(window, "training.epochs", QSpinBox), "12")
    type_into(qtbot, field(window, "training.batch_size", QSpinBox), "0")
    assert "must be a positive integer" in window.state.errors["training.batch_size"]
    type_into(qtbot, field(window, "training.batch_size", QSpinBox), "64")
    field(window, "training.on_nan", QComboBox).setCurrentText("roll back")
    type_into(qtbot, field(window, "seed", QLineEdit), "12345678901")
    type_into(qtbot, field(window, "name", QLineEdit), "my run")
    t = window.state.experiment.training
    assert (t.epochs, t.batch_size, t.on_nan) == (12, 64, "rollback")
    assert (window.state.experiment.seed, window.state.experiment.name) == (12345678901, "my run")
    assert window.state.valid


def test_the_blas_threads_are_chosen_in_the_training_panel(make_window: Any, qtbot: Any) -> None:
    window = make_window()
    show_dock(window, "Training")
    threads = field(window, "training.blas_threads", QComboBox)
    assert threads.currentText() == "auto"
    threads.setCurrentText("2")
    assert window.state.experiment.training.blas_threads == 2
    assert window.state.experiment.to_dict()["training"]["blas_threads"] == 2
    window.state.undo_stack.undo()
    assert window.state.experiment.training.blas_threads == "auto" and threads.currentText() == "auto"


# ----------------------------------------------------------------------------- presets and undo


def test_apply_a_preset_and_undo_it(make_window: Any, qtbot: Any) -> None:
    window = make_window()
    table = table_of(window)
    action = next(a for a in window.presets_menu.actions() if a.data() == "vanishing")
    action.trigger()
    experiment = window.state.experiment
    assert experiment.to_dict() == parse_experiment(PRESETS["vanishing"][1]()).to_dict()
    assert table.model().rowCount() == 10
    assert table.model().index(0, COL_INIT).data() == "random_normal(stddev=0.05)"
    assert field(window, "optimizer.name", QComboBox).currentText() == "sgd"
    assert window.state.undo_stack.count() == 1

    window.undo_action.trigger()
    assert units(window) == [16, 8] and table.model().rowCount() == 2
    assert field(window, "optimizer.name", QComboBox).currentText() == "adam"


def test_undo_reverts_the_widget(make_window: Any, qtbot: Any) -> None:
    window = make_window()
    show_dock(window, "Optimizer")
    lr = field(window, "optimizer.learning_rate", QLineEdit)
    type_into(qtbot, lr, "0.05")
    assert window.state.experiment.learning_rate == 0.05
    table = table_of(window)
    table.setFocus()
    qtbot.keyClick(table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)   # Edit › Undo's shortcut
    assert window.state.experiment.learning_rate == 0.01
    assert lr.text() == "0.01"
    window.redo_action.trigger()
    assert lr.text() == "0.05"


def test_selected_layer_initializer_parameters(make_window: Any, qtbot: Any) -> None:
    window = make_window()
    table = table_of(window)
    select_row(qtbot, table, 1)
    init = field(window, "model.layers[1].init", QComboBox)
    init.setCurrentText("random_normal")
    stddev = field(window, "model.layers[1].init.stddev", QLineEdit)
    assert stddev.text() == "1"
    type_into(qtbot, stddev, "0.05")
    assert window.state.experiment.model.layers[1].init == {"name": "random_normal", "stddev": 0.05}
    assert table.model().index(1, COL_INIT).data() == "random_normal(stddev=0.05)"
    type_into(qtbot, stddev, "-1")
    assert "model.layers[1].init.stddev" in window.state.errors and not window.state.valid
    type_into(qtbot, stddev, "0.5")
    assert window.state.valid


# ----------------------------------------------------------------------------- data


def test_builtin_dataset_parameters_drive_the_model_summary(make_window: Any, qtbot: Any) -> None:
    window = make_window()
    show_dock(window, "Data")
    source = field(window, "data.source", QComboBox)
    source.setCurrentText("blobs")
    for key in ("n_samples", "n_classes", "cluster_std", "n_features"):
        assert field(window, f"data.params.{key}").isVisible()
    type_into(qtbot, field(window, "data.params.n_features", QSpinBox), "5")
    type_into(qtbot, field(window, "data.params.n_classes", QSpinBox), "4")
    assert window.state.experiment.data.params == {"n_features": 5, "n_classes": 4}
    summary = window.findChild(QLabel, "parameterSummary")
    assert "Widths 5 → 16 → 8 → 4" in summary.text()
    preview = window.findChild(QLabel, "dataPreview")
    qtbot.waitUntil(lambda: "1000 samples × 5 features" in preview.text(), timeout=10_000)
    assert "4 classes" in preview.text()


def write_csv(path: Path, rows: int = 60) -> Path:
    rng = np.random.default_rng(0)
    lines = ["height,weight,species,age"]
    for i in range(rows):
        species = ["cat", "dog", "cat", "bird"][i % 4]
        lines.append(f"{rng.normal():.4f},{rng.normal():.4f},{species},{i}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def choose_file_in_dialog(qtbot: Any, window: Any, path: Path) -> None:
    qtbot.waitUntil(lambda: window.findChild(QFileDialog, "dataFileDialog") is not None)
    dialog = window.findChild(QFileDialog, "dataFileDialog")
    assert dialog.isVisible()
    dialog.selectFile(str(path))
    dialog.accept()
    # A CSV's columns are read on a worker; the edit follows when they arrive.
    qtbot.waitUntil(lambda: not data_panel(window).reading_columns, timeout=10_000)


def test_csv_import_with_target_column_and_preview(make_window: Any, qtbot: Any, tmp_path: Path) -> None:
    window = make_window()
    show_dock(window, "Data")
    csv = write_csv(tmp_path / "animals.csv")
    field(window, "data.source", QComboBox).setCurrentText("CSV file…")
    choose_file_in_dialog(qtbot, window, csv)
    data = window.state.experiment.data
    assert (data.source, data.path, data.target) == ("csv", str(csv), "age")   # the last column at first
    target = field(window, "data.target", QComboBox)
    assert [target.itemText(i) for i in range(target.count())] == ["height", "weight", "species", "age"]
    target.setCurrentText("species")
    assert window.state.experiment.data.target == "species"
    assert window.state.undo_stack.count() == 2

    preview = window.findChild(QLabel, "dataPreview")
    qtbot.waitUntil(lambda: "60 samples × 3 features" in preview.text(), timeout=10_000)
    assert "3 classes" in preview.text()
    assert "Fewest: bird (15, 25.0 %); most: cat (30, 50.0 %)" in preview.text()
    bars = window.findChild(QWidget, "classBalance").getPlotItem().items
    heights = [item.opts["height"] for item in bars if hasattr(item, "opts") and "height" in item.opts]
    assert list(heights[0]) == [15, 30, 15]   # bird, cat, dog (sorted class names)
    # the model's input width comes from the file: 3 features, 3 classes
    summary = window.findChild(QLabel, "parameterSummary")
    qtbot.waitUntil(lambda: "Widths 3 → 16 → 8 → 3" in summary.text())

    window.undo_action.trigger()
    assert window.state.experiment.data.target == "age"
    window.undo_action.trigger()
    assert window.state.experiment.data.source == "moons"
    assert field(window, "data.source", QComboBox).currentText() == "moons"


def test_npz_import_and_preview(make_window: Any, qtbot: Any, tmp_path: Path) -> None:
    window = make_window()
    show_dock(window, "Data")
    npz = tmp_path / "points.npz"
    rng = np.random.default_rng(0)
    np.savez(npz, X=rng.normal(size=(90, 7)), y=np.repeat(np.array([3, 5, 9]), 30))
    field(window, "data.source", QComboBox).setCurrentText("NPZ file…")
    choose_file_in_dialog(qtbot, window, npz)
    data = window.state.experiment.data
    assert (data.source, data.path, data.target) == ("npz", str(npz), None)
    assert window.findChild(QComboBox, "data.target").isHidden()   # an npz holds y itself
    preview = window.findChild(QLabel, "dataPreview")
    qtbot.waitUntil(lambda: "90 samples × 7 features" in preview.text(), timeout=10_000)
    assert "3 classes" in preview.text()
    qtbot.waitUntil(lambda: "Widths 7 → 16 → 8 → 3" in window.findChild(QLabel, "parameterSummary").text())


def test_a_bad_csv_is_reported_in_the_preview(make_window: Any, qtbot: Any, tmp_path: Path) -> None:
    window = make_window()
    show_dock(window, "Data")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2,x\n3,oops,y\n", encoding="utf-8")
    field(window, "data.source", QComboBox).setCurrentText("CSV file…")
    choose_file_in_dialog(qtbot, window, bad)
    preview = window.findChild(QLabel, "dataPreview")
    qtbot.waitUntil(lambda: "non-numeric value 'oops'" in preview.text(), timeout=10_000)
    assert window.state.experiment.data.source == "csv"


def data_panel(window: Any) -> Any:
    from workbench.editor.data_panel import DataPanel

    return window.findChild(DataPanel)


def test_data_panel_lists_the_registered_sources_then_the_importers_with_their_file_filters(
        make_window: Any, qtbot: Any) -> None:
    window = make_window()
    show_dock(window, "Data")
    source = field(window, "data.source", QComboBox)
    importers = [IMPORTERS.get(name) for name in IMPORTERS]
    assert [source.itemText(i) for i in range(source.count())] == (
        DATASETS.names() + [f"{importer.label}…" for importer in importers])
    tips = [source.itemData(i, Qt.ItemDataRole.ToolTipRole) for i in range(len(DATASETS), source.count())]
    assert tips == [importer.summary for importer in importers]
    for importer in importers:
        source.setCurrentText(f"{importer.label}…")
        qtbot.waitUntil(lambda: data_panel(window).file_dialog is not None)
        dialog = data_panel(window).file_dialog
        assert dialog.isVisible()
        if importer.reads_folder:     # a folder chooser: folders only, no file filter
            assert dialog.fileMode() == QFileDialog.FileMode.Directory
        else:
            assert dialog.fileMode() == QFileDialog.FileMode.ExistingFile
            assert dialog.nameFilters() == [importer.name_filter(), "All files (*)"]
            assert all(f"*{ext}" in dialog.nameFilters()[0] for ext in importer.extensions)
        dialog.reject()   # nothing chosen: the data and the choice shown stay as they were
        assert window.state.experiment.data.source == "moons" and source.currentText() == "moons"
        data_panel(window).file_dialog = None


@pytest.fixture(params=[False, True], ids=["holds_its_targets", "needs_a_target"])
def points_importer(request: Any) -> Iterator[Any]:
    """A file importer only the tests know, registered before the window is made (the Data panel
    reads the registry when it is built) and removed after the window is closed."""
    importer = LabelledPointsImporter if request.param else PointsImporter
    with registered_importer("points", importer):
        yield importer


def test_a_registered_importer_appears_in_the_data_panel_and_loads_the_preview(
        points_importer: Any, make_window: Any, qtbot: Any, tmp_path: Path) -> None:
    window = make_window()
    show_dock(window, "Data")
    source = field(window, "data.source", QComboBox)
    assert source.itemText(source.count() - 1) == f"{points_importer.label}…"
    header = "height weight age label" if points_importer.needs_target else None
    path = write_points(tmp_path / f"flock{points_importer.extensions[0]}", rows=30, features=3, header=header)
    source.setCurrentText(f"{points_importer.label}…")
    qtbot.waitUntil(lambda: data_panel(window).file_dialog is not None)
    assert data_panel(window).file_dialog.nameFilters()[0] == points_importer.name_filter()
    choose_file_in_dialog(qtbot, window, path)
    data = window.state.experiment.data
    assert (data.source, data.path) == ("points", str(path))
    assert window.findChild(QWidget, "data.path").isVisible()
    target = window.findChild(QComboBox, "data.target")
    if points_importer.needs_target:   # the columns come from the importer's preview, the last one first
        assert data.target == "label" and target.isVisible()
        assert [target.itemText(i) for i in range(target.count())] == ["height", "weight", "age", "label"]
    else:
        assert data.target is None and target.isHidden()
    preview = window.findChild(QLabel, "dataPreview")
    qtbot.waitUntil(lambda: "30 samples × 3 features" in preview.text(), timeout=10_000)
    assert "3 classes" in preview.text()
    assert points_importer.loads and points_importer.loads[-1] == path   # read by the registered importer
    qtbot.waitUntil(lambda: "Widths 3 → 16 → 8 → 3" in window.findChild(QLabel, "parameterSummary").text())
    window.undo_action.trigger()
    assert window.state.experiment.data.source == "moons" and source.currentText() == "moons"


def write_big_csv(path: Path, megabytes: float) -> int:
    """A CSV of at least ``megabytes`` MB (x1, x2, an integer label); returns its number of rows."""
    block = "".join(f"{i % 7}.25,{i % 5}.5,{i % 3}\n" for i in range(1000)).encode()
    blocks = int(megabytes * 2**20) // len(block) + 1
    with open(path, "wb") as fh:
        fh.write(b"x1,x2,label\n")
        for _ in range(blocks):
            fh.write(block)
    return blocks * 1000


def test_large_csv_loads_on_a_worker_with_progress_and_cancel(make_window: Any, qtbot: Any,
                                                               tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    rows = write_big_csv(big, 32)
    window = make_window()
    show_dock(window, "Data")
    progress = window.findChild(QProgressBar, "dataLoadProgress")
    cancel = window.findChild(QPushButton, "cancelDataLoad")
    preview = window.findChild(QLabel, "dataPreview")
    info = window.findChild(_data_info_type())

    field(window, "data.source", QComboBox).setCurrentText("CSV file…")
    choose_file_in_dialog(qtbot, window, big)
    qtbot.waitUntil(lambda: preview.text().startswith("Reading the file"), timeout=5_000)
    assert progress.isVisible() and cancel.isVisible()
    qtbot.mouseClick(cancel, Qt.MouseButton.LeftButton)
    assert not progress.isVisible() and "cancelled" in preview.text()
    qtbot.waitUntil(lambda: not info.running, timeout=10_000)

    # The GUI thread keeps running while the file loads: a 10 ms timer is never held up for long.
    # Measured over the load only (opening the file dialog above is GUI work of its own). Had the
    # parse run on the GUI thread, one gap would span the whole load; so the bound is half the
    # load's duration (it stretches with the machine's load, as the worker's time does), and at
    # most 0.5 s.
    gaps: list[float] = []
    last = [time.monotonic()]

    def tick() -> None:
        now = time.monotonic()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer(window)   # parented: a running timer must never be garbage-collected off the GUI thread
    timer.timeout.connect(tick)
    fractions: list[int] = []
    progress.valueChanged.connect(fractions.append)
    started = time.monotonic()
    last[0] = started
    timer.start(10)
    qtbot.mouseClick(window.findChild(QPushButton, "reloadData"), Qt.MouseButton.LeftButton)
    assert progress.isVisible()
    qtbot.waitUntil(lambda: f"{rows} samples × 2 features" in preview.text(), timeout=60_000)
    duration = time.monotonic() - started
    timer.stop()
    assert not progress.isVisible()
    worst = max(gaps)
    assert worst < min(0.5, duration / 2), f"GUI thread held up for {worst:.3f} s of a {duration:.3f} s load"
    # real progress: the fraction of the file parsed, growing in steps up to the whole file
    shown = [v for v in fractions if 0 < v]
    assert len(shown) >= 10 and shown == sorted(shown) and shown[-1] >= 990


@pytest.mark.parametrize("kind", ["csv", "npz"])
def test_cancel_stops_a_big_file_load_within_a_block(make_window: Any, qtbot: Any, tmp_path: Path,
                                                     monkeypatch: Any, kind: str) -> None:
    """Cancel while a large CSV is parsed, or a large NPZ's arrays are read, stops the worker at
    its next block of the file (it does not read the rest in the background); the experiment
    and the previous data's preview are untouched by it, and no load is left running."""
    import threading

    from core.data import IMPORTERS, LoadCancelled

    big = tmp_path / f"big.{kind}"
    if kind == "csv":
        write_big_csv(big, 24)
    else:
        rng = np.random.default_rng(0)
        np.savez(big, X=rng.normal(size=(200_000, 16)), y=rng.integers(0, 3, 200_000))  # 27 MB
    # Watch the worker: the fractions core reports, and how the load ends. It is held at the
    # second block until Cancel has been clicked, so that the click surely lands mid-file.
    seen: list[float] = []
    ended: list[str] = []
    clicked = threading.Event()
    importer = IMPORTERS.get(kind)
    real_load = importer.load

    def watched_load(self: Any, path: Path, *args: Any, progress: Any = None) -> Any:
        def hook(fraction: float) -> bool:
            seen.append(fraction)
            if len(seen) == 2:
                clicked.wait(20)
            return progress(fraction)

        try:
            dataset = real_load(self, path, *args, progress=hook)
        except LoadCancelled:
            ended.append("cancelled")
            raise
        ended.append("finished")
        return dataset

    monkeypatch.setattr(importer, "load", watched_load)
    window = make_window()
    show_dock(window, "Data")
    preview = window.findChild(QLabel, "dataPreview")
    progress = window.findChild(QProgressBar, "dataLoadProgress")
    info = window.findChild(_data_info_type())
    qtbot.waitUntil(lambda: "300 samples × 2 features" in preview.text(), timeout=10_000)   # moons

    field(window, "data.source", QComboBox).setCurrentText(f"{kind.upper()} file…")
    choose_file_in_dialog(qtbot, window, big)
    spec = window.state.experiment.data
    assert (spec.source, spec.path) == (kind, str(big))
    edits = window.state.undo_stack.count()
    qtbot.waitUntil(lambda: progress.isVisible() and progress.maximum() == 1000 and progress.value() > 0,
                    timeout=10_000)   # a real fraction of the file, not a busy indicator
    assert progress.value() < 500
    qtbot.mouseClick(window.findChild(QPushButton, "cancelDataLoad"), Qt.MouseButton.LeftButton)
    clicked.set()
    assert not progress.isVisible() and "cancelled" in preview.text()
    qtbot.waitUntil(lambda: not info.running, timeout=10_000)   # the worker has ended, not just been forgotten
    assert ended == ["cancelled"]
    assert len(seen) <= 3 and seen[-1] < 0.5, f"the worker went on reading: {seen}"
    # Cancel changed nothing in the experiment, and nothing of the half-read file was taken as the data
    assert window.state.experiment.data == spec and window.state.undo_stack.count() == edits
    assert not info.facts.exact and "cancelled" in preview.text()
    window.undo_action.trigger()   # back to the previous data: its preview is still there, no load needed
    assert window.state.experiment.data.source == "moons"
    assert "300 samples × 2 features" in preview.text() and not info.busy


# ----------------------------------------------------------------------------- parameter count


def independent_count(n_in: int, layers: list[dict[str, Any]], n_out: int) -> int:
    total, fan_in = 0, n_in
    for layer in layers:
        u = layer["units"]
        total += fan_in * u + (u if layer.get("use_bias", True) else 0) + (2 * u if layer.get("batch_norm") else 0)
        fan_in = u
    return total + fan_in * n_out + n_out


def test_parameter_count_matches_the_formula_and_the_engine(make_window: Any, qtbot: Any) -> None:
    layers = [{"units": 30, "batch_norm": "before_activation", "use_bias": False},
              {"units": 20, "batch_norm": "after_activation"}, {"units": 10}]
    spec = small_spec(data={"source": "iris"}, model={"layers": layers})
    window = make_window(spec)
    table = table_of(window)
    expected = independent_count(4, layers, 3)
    summary = window.findChild(QLabel, "parameterSummary")
    assert f"{expected} trainable parameters" in summary.text()
    network = Network(parse_experiment(spec).model, 4, 3, loss=None, rng=np.random.default_rng(0))  # type: ignore
    per_layer = network.parameter_counts()
    assert sum(per_layer) == expected
    assert [table.model().index(i, COL_COUNT).data() for i in range(3)] == [str(c) for c in per_layer[:3]]
    assert "output layer: 33" in summary.text()
    assert not window.findChild(QLabel, "parameterWarning").isVisible()


def test_warning_past_one_million_parameters(make_window: Any, qtbot: Any) -> None:
    window = make_window(small_spec(data={"source": "digits"}))
    table = table_of(window)
    warning = window.findChild(QLabel, "parameterWarning")
    assert not warning.isVisible()
    for row in (0, 1):
        editor = open_cell_editor(qtbot, table, row, COL_UNITS)
        type_into(qtbot, editor, "1000")
    total = independent_count(64, [{"units": 1000}, {"units": 1000}], 10)
    assert total > 1_000_000
    assert warning.isVisible() and "overfit" in warning.text()
    assert f"{total} trainable parameters" in window.findChild(QLabel, "parameterSummary").text()
    editor = open_cell_editor(qtbot, table, 1, COL_UNITS)
    type_into(qtbot, editor, "100")
    assert not warning.isVisible()


def test_tooltips_come_from_the_registries(make_window: Any) -> None:
    window = make_window()
    table = table_of(window)
    tip = table.model().index(0, COL_ACTIVATION).data(Qt.ItemDataRole.ToolTipRole)
    assert tip == ACTIVATIONS.get("elu").summary
    show_dock(window, "Optimizer")
    combo = field(window, "schedule.name", QComboBox)
    for i in range(combo.count()):
        assert combo.itemData(i, Qt.ItemDataRole.ToolTipRole) == SCHEDULES.get(combo.itemText(i)).summary


def test_experiment_loaded_from_a_file_refreshes_every_panel(make_window: Any, qtbot: Any) -> None:
    window = make_window()
    table = table_of(window)
    window.state.load(parse_experiment(PRESETS["selu"][1]()))
    assert table.model().rowCount() == 10
    assert field(window, "optimizer.name", QComboBox).currentText() == "nadam"
    assert field(window, "data.source", QComboBox).currentText() == "digits"


# ----------------------------------------------------------------------------- keyboard: the tab order


def _tab_fields(panel: QWidget) -> list[QWidget]:
    """The panel's fields a Tab can reach (shown, enabled, taking Tab focus), in reading order."""
    fields = [w for w in panel.findChildren(QWidget) if w.isVisibleTo(panel) and w.isEnabled()
              and w.focusPolicy() & Qt.FocusPolicy.TabFocus and w.focusProxy() is None
              and not any(isinstance(a, QAbstractItemView) for a in _ancestors(w, panel))]   # cell editors
    return sorted(fields, key=lambda w: (_box(panel, w)[1], _box(panel, w)[0]))


def _ancestors(widget: QWidget, panel: QWidget) -> list[QWidget]:
    out, parent = [], widget.parentWidget()
    while parent is not None and parent is not panel:
        out.append(parent)
        parent = parent.parentWidget()
    return out


def _box(panel: QWidget, widget: QWidget) -> tuple[int, int, int, int]:
    """left, top, right, bottom in the panel's coordinates."""
    top_left = widget.mapTo(panel, QPoint(0, 0))
    return top_left.x(), top_left.y(), top_left.x() + widget.width(), top_left.y() + widget.height()


def _reads_after(panel: QWidget, a: QWidget, b: QWidget) -> bool:
    """``b`` comes after ``a`` reading the panel top to bottom, left to right: below it, or on the
    same row (their boxes overlap vertically) and to its right."""
    al, at, _, ab = _box(panel, a)
    bl, bt, _, bb = _box(panel, b)
    if at < bb and bt < ab:
        return bl > al
    return bt >= ab


def rich_spec(npz: Path) -> dict[str, Any]:
    """Every optional row shown: a file source, a schedule with parameters, max-norm, clipping,
    early stopping and the NaN roll-back count switched on."""
    return small_spec(
        data={"source": "npz", "path": str(npz), "validation_split": 0.2, "test_split": 0.0},
        optimizer={"name": "momentum", "learning_rate": 0.01},
        schedule={"name": "exponential", "steps": 100},
        regularization={"l2": 0.001, "max_norm": 2.0, "gradient_clip": {"mode": "norm", "threshold": 1.0},
                        "early_stopping": {"enabled": True, "patience": 3}},
        training={"epochs": 5, "batch_size": 32, "on_nan": "rollback"})


@pytest.mark.parametrize("title", ["Data", "Model", "Optimizer", "Regularization", "Training"])
def test_tab_visits_the_panel_top_to_bottom_left_to_right(make_window: Any, qtbot: Any, tmp_path: Path,
                                                          title: str) -> None:
    """From a panel's first field, Tab goes through each of its fields in reading order (their
    places on screen) before leaving the panel. The layer table let Tab move between its cells
    and never let go: a keyboard user was stuck in it (arrow keys move between cells)."""
    npz = tmp_path / "points.npz"
    np.savez(npz, X=np.random.default_rng(0).normal(size=(60, 3)), y=np.arange(60) % 2)
    window = make_window(rich_spec(npz))
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    panel = show_dock(window, title)
    # rows built after a choice changed (they are created last, so Qt would put them last)
    if title == "Data":
        field(window, "data.source", QComboBox).setCurrentText("moons")
    elif title == "Optimizer":
        field(window, "optimizer.name", QComboBox).setCurrentText("adam")
        field(window, "schedule.name", QComboBox).setCurrentText("one_cycle")
    elif title == "Model":
        select_row(qtbot, window.findChild(QTableView, "layerTable"), 1)   # its initializer's rows
    QApplication.processEvents()
    fields = _tab_fields(panel)
    assert len(fields) >= 5, [w.objectName() for w in fields]
    fields[0].setFocus(Qt.FocusReason.TabFocusReason)
    visited: list[QWidget] = []
    for _ in range(3 * len(fields)):
        now = QApplication.focusWidget()
        while now is not None and now not in fields and panel.isAncestorOf(now):
            now = now.parentWidget()            # a spin box's line edit, a combo's view
        if not visited or now is not visited[-1]:
            if set(visited) == set(fields):
                break                           # every field seen: leaving the panel is fine now
            assert now in fields, (f"Tab left the {title} panel for {type(now).__name__} "
                                   f"{now.objectName() if now else ''!r} after {[w.objectName() for w in visited]}")
            assert now not in visited, f"{now.objectName()} reached twice: {[w.objectName() for w in visited]}"
            if visited:
                assert _reads_after(panel, visited[-1], now), (
                    f"Tab went from {visited[-1].objectName()} {_box(panel, visited[-1])} back to "
                    f"{now.objectName()} {_box(panel, now)}")
            visited.append(now)
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
    assert set(visited) == set(fields), f"never reached: {[w.objectName() for w in set(fields) - set(visited)]}"


def test_the_selected_layer_takes_alpha_dropout_as_one_undoable_edit(make_window: Any, qtbot: Any) -> None:
    """Alpha dropout (the book's dropout for SELU networks) is chosen per layer under Model ›
    Selected layer, and the choice follows the selected row."""
    window = make_window()
    table = table_of(window)
    combo = field(window, "layerDropoutType", QComboBox)
    assert combo.value() == "standard" and "alpha dropout" in combo.toolTip().lower()
    table.selectRow(1)
    combo.setCurrentIndex(combo.index_of("alpha"))
    layers = window.state.experiment.model.layers
    assert layers[1].dropout_type == "alpha" and layers[0].dropout_type == "standard"
    table.selectRow(0)
    assert combo.value() == "standard"
    table.selectRow(1)
    assert combo.value() == "alpha"
    window.undo_action.trigger()
    assert window.state.experiment.model.layers[1].dropout_type == "standard"
    window.state.undo_stack.setClean()


def test_the_instruments_are_switched_and_paced_in_the_training_panel(make_window: Any, qtbot: Any) -> None:
    from PySide6.QtWidgets import QCheckBox

    window = make_window(small_spec())
    state = window.state
    show_dock(window, "Training")
    assert state.experiment.training.instruments == InstrumentsSpec()       # left out of the file: the defaults
    sharp_on = field(window, "training.instruments.sharpness.enabled", QCheckBox)
    every = field(window, "training.instruments.sharpness.every", QSpinBox)
    assert not sharp_on.isChecked() and every.value() == 500 and not every.isEnabled()
    assert field(window, "training.instruments.noise.enabled", QCheckBox).isChecked()
    sharp_on.click()
    assert state.experiment.training.instruments.sharpness.enabled and every.isEnabled()
    assert state.undo_stack.undoText() == "Turn the sharpness instrument on"
    type_into(qtbot, every, "0")                                             # refused, at the field
    message = state.errors["training.instruments.sharpness.every"]
    assert "must be a positive integer" in message
    error = next(label for label in window.findChildren(QLabel) if label.isVisible() and label.text()
                 and "positive integer" in label.text() and label.objectName() != "staleRunNote")
    assert error.isVisible() and not state.valid
    type_into(qtbot, every, "40")
    type_into(qtbot, field(window, "training.instruments.sharpness.iterations", QSpinBox), "300")
    assert "training.instruments.sharpness.iterations" in state.errors
    type_into(qtbot, field(window, "training.instruments.sharpness.iterations", QSpinBox), "12")
    field(window, "training.instruments.effective_learning_rate.enabled", QCheckBox).click()
    type_into(qtbot, field(window, "training.instruments.probe_examples", QSpinBox), "64")
    assert state.valid
    i = state.experiment.training.instruments
    assert (i.sharpness.enabled, i.sharpness.every, i.sharpness.iterations) == (True, 40, 12)
    assert not i.effective_learning_rate.enabled and i.noise.enabled and i.probe_examples == 64
    assert state.data["training"]["instruments"]["sharpness"] == {"enabled": True, "every": 40, "iterations": 12}
    for _ in range(5):
        state.undo_stack.undo()
    assert state.experiment.training.instruments == InstrumentsSpec() and not sharp_on.isChecked()
