"""The window never waits on a read (issue 18, item 10): the transfer dialog's source session,
an experiment file opened from the window, and a CSV's header in the Data panel are each read on
a worker. With the reader made slow (a patched reader that sleeps, as a slow disk or a huge file
would), the call returns at once, a 10 ms timer on the GUI thread is never late by 100 ms, and
the result — or the refusal — still arrives at its field."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QMessageBox

from core.data import IMPORTERS, DatasetError
from core.sessions.format import SessionError
from core.sessions.trainer_io import save_trainer
from core.spec import SpecError
from core.training import Trainer

from .monitor_support import make_window_fixture, tiny_experiment, tiny_spec  # noqa: F401 (fixture)

SLOW_SECONDS = 0.8
LATE_LIMIT = 0.1


#: (start, end) of the last slow read, on the reader's thread.
READS: list[tuple[float, float]] = []


def slow(read: Callable[..., Any], fail: Exception | None = None) -> Callable[..., Any]:
    """``read`` after ``SLOW_SECONDS`` (or ``fail`` raised then): a slow disk, a huge file."""
    def reader(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        time.sleep(SLOW_SECONDS)
        try:
            if fail is not None:
                raise fail
            return read(*args, **kwargs)
        finally:
            READS.append((start, time.perf_counter()))
    return reader


def responsiveness(qtbot: Any, parent: Any, start: Callable[[], Any], done: Callable[[], bool]) -> tuple[float, float]:
    """Run ``start()`` with a 10 ms timer ticking, until ``done()``: (how long ``start`` took,
    the timer's worst lateness while the slow read went on), in seconds. Showing what was read
    afterwards (the new experiment's panels, its preview) is the GUI's own work, not counted."""
    ticks: list[float] = []
    late: list[tuple[float, float]] = []          # (when, how late)

    def tick() -> None:
        now = time.perf_counter()
        if ticks:
            late.append((now, now - ticks[-1] - 0.010))
        ticks.append(now)

    timer = QTimer(parent)
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(10)
    timer.timeout.connect(tick)
    qtbot.wait(300)                               # the new window's first paints and preview
    READS.clear()
    timer.start()
    qtbot.wait(30)
    t0 = time.perf_counter()
    start()
    returned = time.perf_counter() - t0
    qtbot.waitUntil(done, timeout=20_000)
    timer.stop()
    assert len(READS) == 1 and READS[0][1] - READS[0][0] >= SLOW_SECONDS   # the slow reader was read
    # Ticks due while the read went on (the first one after it ends included).
    during = [how for when, how in late if when - how - 0.010 <= READS[0][1]]
    return returned, max(during)


def saved_session(tmp_path: Path) -> Path:
    trainer = Trainer(tiny_experiment(epochs=1))
    trainer.fit(epochs=1)
    path = tmp_path / "base.gwb"
    save_trainer(path, trainer)
    return path


@pytest.mark.parametrize("refused", [False, True])
def test_the_transfer_dialog_reads_its_source_on_a_worker(make_window: Any, qtbot: Any, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch, refused: bool) -> None:
    import workbench.sessions.transfer_dialog as transfer_dialog

    path = saved_session(tmp_path)
    fail = SessionError(f"{path}: not a session (damaged)") if refused else None
    monkeypatch.setattr(transfer_dialog, "peek_session", slow(transfer_dialog.peek_session, fail))
    window = make_window(tiny_experiment())
    dialogs: list[Any] = []
    returned, late = responsiveness(qtbot, window, lambda: dialogs.append(window.sessions.show_transfer_dialog(path)),
                                    lambda: bool(dialogs) and not dialogs[0].loading)
    dialog = dialogs[0]
    assert returned < LATE_LIMIT and late < LATE_LIMIT, f"returned in {returned:.3f} s, late by {late:.3f} s"
    if refused:
        assert dialog.source is None and not dialog.ok_button.isEnabled()
        assert "cannot reuse layers of base.gwb" in dialog.error_label.text() and "damaged" in dialog.error_label.text()
        assert "border" in dialog.source_edit.styleSheet()          # at its field
    else:
        assert dialog.source is not None and dialog.table.rowCount() == 4
        assert dialog.ok_button.isEnabled(), dialog.error_label.text()
    dialog.reject()
    window.state.undo_stack.setClean()


def test_closing_the_transfer_dialog_does_not_wait_for_its_read(make_window: Any, qtbot: Any, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import workbench.sessions.transfer_dialog as transfer_dialog

    path = saved_session(tmp_path)
    monkeypatch.setattr(transfer_dialog, "peek_session", slow(transfer_dialog.peek_session))
    window = make_window(tiny_experiment())
    dialog = window.sessions.show_transfer_dialog(path)
    runner = dialog.reader
    t0 = time.perf_counter()
    dialog.reject()
    assert time.perf_counter() - t0 < LATE_LIMIT
    assert runner.parent() is window                 # kept until its read ends, then shut down
    qtbot.waitUntil(lambda: runner.closed, timeout=10_000)


@pytest.mark.parametrize("refused", [False, True])
def test_an_experiment_file_is_read_on_a_worker(make_window: Any, qtbot: Any, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch, refused: bool) -> None:
    import workbench.main_window as main_window

    spec = tiny_spec()
    spec["name"] = "read slowly"
    path = tmp_path / "slow.json"
    path.write_text(json.dumps(spec))
    fail = SpecError("", f"{path}: not valid JSON (line 1, column 2: oops)") if refused else None
    monkeypatch.setattr(main_window, "load_experiment", slow(main_window.load_experiment, fail))
    window = make_window(tiny_experiment())
    before = window.state.experiment
    returned, late = responsiveness(qtbot, window, lambda: window.open_file(path), lambda: not window.opening_file)
    assert returned < LATE_LIMIT and late < LATE_LIMIT, f"returned in {returned:.3f} s, late by {late:.3f} s"
    if refused:
        box = window.findChild(QMessageBox, "errorDialog")
        assert box is not None and "Cannot open slow.json" in box.text() and "oops" in box.text()
        assert window.state.experiment == before
    else:
        assert window.state.experiment.name == "read slowly" and window.state.base_dir == tmp_path


@pytest.mark.parametrize("refused", [False, True])
def test_a_csv_header_is_read_on_a_worker(make_window: Any, qtbot: Any, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, refused: bool) -> None:
    from workbench.editor.data_panel import DataPanel

    csv = tmp_path / "animals.csv"
    csv.write_text("height,weight,age\n" + "".join(f"{i * 0.1},{i * 0.2},{i % 3}\n" for i in range(30)))
    importer = IMPORTERS.get("csv")
    fail = DatasetError(f"{csv}: the header is unreadable") if refused else None
    monkeypatch.setattr(importer, "preview", slow(importer.preview, fail))
    window = make_window(tiny_experiment())
    panel = window.findChild(DataPanel)
    before = window.state.experiment
    answers: list[Any] = []
    returned, late = responsiveness(qtbot, window, lambda: answers.append(panel.use_file("csv", str(csv))),
                                    lambda: not panel.reading_columns)
    assert returned < LATE_LIMIT and late < LATE_LIMIT, f"returned in {returned:.3f} s, late by {late:.3f} s"
    assert answers == [None]                         # nothing refused yet: the columns were being read
    if refused:
        assert window.state.experiment == before
        assert panel.file_error.isVisibleTo(panel) and "the header is unreadable" in panel.file_error.text()
    else:
        data = window.state.experiment.data
        assert (data.source, data.path, data.target) == ("csv", str(csv), "age")
        target = window.findChild(type(panel.target), "data.target")
        assert [target.itemText(i) for i in range(target.count())] == ["height", "weight", "age"]
    window.state.undo_stack.setClean()
