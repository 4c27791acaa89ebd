"""The Sweep dialog (issue 7), opened from the real main window's Tools menu: a tiny grid runs to
completion on a worker thread (the sweep's own process pool trains), the results table has one
row per configuration and sorts, selecting rows overlays their sessions in the Runs panel, a
bad axis value is marked at its field, and Cancel stops the sweep and keeps the finished runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QItemSelectionModel, Qt

from core.sessions.format import load_session

from .monitor_support import make_window_fixture, tiny_experiment  # noqa: F401 (fixture)


@pytest.fixture(name="dialog")
def dialog_fixture(make_window: Any) -> Any:
    window = make_window(tiny_experiment(epochs=1, layers=2, units=8, samples=200))
    window.runs.sweep_action.trigger()          # Tools › Sweep… (Ctrl+Shift+W)
    dialog = window.runs.sweep_dialog
    assert dialog is not None and dialog.isVisible()
    yield dialog
    dialog.shutdown()
    assert not dialog.runner.running


def wait_finished(qtbot: Any, dialog: Any, timeout: int = 60_000) -> dict[str, Any]:
    qtbot.waitUntil(lambda: dialog.last_result is not None, timeout=timeout)
    return dialog.last_result


def test_tiny_grid_runs_sorts_and_overlays(dialog: Any, qtbot: Any, tmp_path: Path) -> None:
    editor = dialog.add_axis("optimizer.learning_rate")
    editor.kind.setCurrentIndex(0)                # values
    editor.values_edit.setText("0.0001, 0.05")
    dialog.out_edit.setText(str(tmp_path / "sweep"))
    dialog.workers.setValue(2)
    assert dialog.start()
    assert "2 configurations × 1 seed = 2 runs" in dialog.plan_label.text()
    result = wait_finished(qtbot, dialog)
    assert not result["stopped"] and result["completed"] == 2 and result["failed"] == 0
    assert dialog.progress_bar.value() == dialog.progress_bar.maximum() == 2
    assert "Finished: 2 done" in dialog.progress_label.text()
    files = sorted((tmp_path / "sweep").glob("run-*.gwb"))
    assert len(files) == 2
    # one row per configuration, best validation accuracy first (the report's order)
    proxy = dialog.proxy
    assert proxy.rowCount() == 2
    header = [proxy.headerData(c, Qt.Orientation.Horizontal) for c in range(proxy.columnCount())]
    assert header[:4] == ["#", "learning_rate", "runs", "best val accuracy"]
    rates = [proxy.index(r, 1).data() for r in range(2)]
    assert sorted(rates) == ["0.0001", "0.05"]
    # sort by learning rate (numbers), both ways
    dialog.table.sortByColumn(1, Qt.SortOrder.AscendingOrder)
    assert [proxy.index(r, 1).data() for r in range(2)] == ["0.0001", "0.05"]
    dialog.table.sortByColumn(1, Qt.SortOrder.DescendingOrder)
    assert [proxy.index(r, 1).data() for r in range(2)] == ["0.05", "0.0001"]
    acc = header.index("best val accuracy")
    dialog.table.sortByColumn(acc, Qt.SortOrder.DescendingOrder)
    values = [float(proxy.index(r, acc).data()) for r in range(2)]
    assert values == sorted(values, reverse=True)
    # select both rows: both sessions overlaid in the Runs panel
    panel = dialog.runs_panel
    sel = dialog.table.selectionModel()
    with qtbot.waitSignal(panel.refreshed, timeout=10_000):
        sel.select(proxy.index(0, 0), QItemSelectionModel.SelectionFlag.ClearAndSelect
                   | QItemSelectionModel.SelectionFlag.Rows)
    with qtbot.waitSignal(panel.refreshed, timeout=10_000):
        sel.select(proxy.index(1, 0), QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows)
    assert sorted(panel.checked_paths()) == sorted(f.resolve() for f in files)
    qtbot.waitUntil(lambda: panel.data is not None and len(panel.data.paths) == 2, timeout=10_000)
    for f in files:
        h = load_session(f).history
        np.testing.assert_allclose(panel.loss_plot.curves[(f.resolve(), "loss")].yData, h["loss"], rtol=1e-6)


def test_bad_axis_value_is_marked_at_the_field(dialog: Any) -> None:
    lr = dialog.add_axis("optimizer.learning_rate")
    lr.kind.setCurrentIndex(0)
    lr.values_edit.setText("0.01, -1")
    act = dialog.add_axis("model.layers[*].activation")
    assert act.values_list is not None and act.values_list.count() >= 5
    assert not dialog.start()
    assert "learning_rate" in lr.error.text() and not lr.error.isHidden()
    assert act.error.isHidden()
    assert "border" in lr.values_edit.styleSheet()
    # a log range whose low end is not positive: the range row is marked
    lr.kind.setCurrentIndex(2)
    lr.low.setText("0")
    assert dialog.validate() is None
    assert "log_range" in lr.error.text() and "border" in lr.range_row.styleSheet()
    lr.low.setText("0.001")
    # an activation axis with nothing ticked
    for i in range(act.values_list.count()):
        act.values_list.item(i).setCheckState(Qt.CheckState.Unchecked)
    assert dialog.validate() is None
    assert "values" in act.error.text() and lr.error.isHidden()
    act.values_list.item(0).setCheckState(Qt.CheckState.Checked)
    assert dialog.validate() is not None
    assert act.error.isHidden() and lr.error.isHidden()


def test_cancel_stops_and_keeps_finished_runs(dialog: Any, qtbot: Any, tmp_path: Path) -> None:
    editor = dialog.add_axis("training.epochs")
    editor.values_edit.setText("1, 5000")
    dialog.out_edit.setText(str(tmp_path / "cancel"))
    dialog.workers.setValue(1)
    assert dialog.start()
    qtbot.waitUntil(lambda: dialog.last_progress.get("done") == 1, timeout=60_000)
    dialog.cancel_button.click()
    result = wait_finished(qtbot, dialog, timeout=20_000)
    assert result["stopped"] and result["completed"] == 1
    assert len(list((tmp_path / "cancel").glob("run-*.gwb"))) == 1
    assert "Cancelled: 1 done" in dialog.progress_label.text()
    assert dialog.start_button.isEnabled() and not dialog.cancel_button.isEnabled()
    statuses = sorted(r["status"] for r in result["table"]["runs"])
    assert statuses == ["completed", "pending"]
