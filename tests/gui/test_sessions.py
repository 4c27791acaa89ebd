"""Sessions in the window (issues 3 and 4), driven through the real MainWindow offscreen:
autosave during a run, the restore-after-a-crash dialog, "New experiment from this model"
(transfer learning: reuse, freeze, conflicts explained) and opening a session on the worker."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt, QThread, QTimer
from PySide6.QtWidgets import QFileDialog

from core.sessions.format import load_session
from core.sessions.recovery import instance_id, recovery_dir, recovery_path_for, register
from core.sessions.trainer_io import save_trainer, take_snapshot, write_snapshot
from core.spec import parse_experiment
from core.training import Trainer
from workbench.sessions.autosave import INTERVAL_KEY, LIVE_COPIES
from workbench.sessions.recovery_dialog import RecoveryDialog
from workbench.sessions.transfer_dialog import TransferDialog

from .monitor_support import make_window_fixture, tiny_experiment, tiny_spec, wait_idle  # noqa: F401 (fixture)


def train_to_end(qtbot: Any, window: Any) -> None:
    window.controller.train()
    wait_idle(qtbot, window, timeout=20_000)


def save_as(window: Any, path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Save As through the menu with the file dialog answered; returns the dialog's start paths."""
    starts: list[str] = []

    def answer(parent: Any, caption: str, start: str, *rest: Any) -> tuple[str, str]:
        starts.append(start)
        return str(path), ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", answer)
    window.save_as_action.trigger()
    return starts


# ----------------------------------------------------------------------------- autosave


def test_autosave_writes_a_recovery_copy_during_a_run_and_a_clean_save_deletes_it(
        make_window: Any, qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    window = make_window(tiny_experiment(epochs=100_000, samples=400))
    window.settings.setValue(INTERVAL_KEY, 0.2)
    c = window.controller
    c.train()
    manager = window.sessions.autosave
    untitled = manager.path
    assert untitled is not None and untitled.parent == recovery_dir()
    qtbot.waitUntil(lambda: untitled.is_file() and c.buffers.size > 50, timeout=10_000)
    first = load_session(untitled)             # a complete, verified session written during the run
    assert first.state["step"] > 0 and first.experiment == window.state.experiment
    # saved: the untitled copy goes, the next ones sit next to the session
    path = tmp_path / "run.gwb"
    save_as(window, path, monkeypatch)
    assert path.is_file() and not untitled.exists()
    beside = recovery_path_for(path, instance=instance_id())  # this instance's own copy
    qtbot.waitUntil(beside.is_file, timeout=10_000)
    later = load_session(beside)
    assert later.state["step"] > load_session(path).state["step"] - 1
    copies = manager.hook.copy_seconds
    assert copies and max(copies) < 0.25, f"training waited {max(copies) * 1000:.0f} ms for a copy"
    print(f"\nautosave: {len(copies)} copies, training waited at most {max(copies) * 1000:.2f} ms "
          f"(median {np.median(copies) * 1000:.2f} ms) per copy; the write is on the writer thread")
    c.stop()
    wait_idle(qtbot, window)
    window.close()                              # clean close: nothing left to recover
    assert not beside.exists() and not untitled.exists()


# ----------------------------------------------------------------------------- recovery


def crash_copy(window: Any, qtbot: Any, path: Path, session_path: Path | None = None) -> Trainer:
    """Leave ``path`` behind as a run killed by a crash would (the window forgets its copy, as a
    killed process does)."""
    train_to_end(qtbot, window)
    window.sessions.autosave.hook.configure(None)
    LIVE_COPIES.clear()
    trainer = window.controller.trainer
    write_snapshot(path, take_snapshot(trainer))
    if session_path is not None:
        register(path, session_path)
    return trainer


def test_a_crashed_copy_is_offered_at_the_next_start_and_restoring_shows_the_same_history(
        make_window: Any, qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = make_window(tiny_experiment(epochs=3))
    session = tmp_path / "run.gwb"
    save_as(first, session, monkeypatch)        # the session on disk is older than the copy
    copy = recovery_path_for(session)
    time.sleep(0.02)
    trainer = crash_copy(first, qtbot, copy, session)
    recovery_dir().mkdir(parents=True, exist_ok=True)
    write_snapshot(recovery_dir() / "untitled-crashed.gwb", take_snapshot(trainer))

    window = make_window(tiny_experiment(epochs=9, layers=2))
    qtbot.waitUntil(lambda: window.sessions.recovery_dialog is not None
                    and window.sessions.recovery_dialog.isVisible(), timeout=3_000)
    dialog = window.sessions.recovery_dialog
    assert isinstance(dialog, RecoveryDialog) and dialog.table.topLevelItemCount() == 2
    texts = {dialog.table.topLevelItem(i).text(4): [dialog.table.topLevelItem(i).text(k) for k in range(4)]
             for i in range(2)}
    assert set(texts) == {"run.gwb", "never saved"}
    assert texts["run.gwb"][1:] == ["tiny moons", "3", str(trainer.step)]
    grab = dialog.grab()
    assert not grab.isNull()
    dialog.select([copy])
    qtbot.mouseClick(dialog.restore_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    c = window.controller
    assert c.buffers.epochs["val_loss"] == pytest.approx(list(trainer.history["val_loss"]))
    np.testing.assert_array_equal(c.buffers.steps, trainer.recorder.steps)
    assert window.state.experiment == trainer.experiment
    assert window.state.file is None and window.state.dirty and window.isWindowModified()
    assert copy.exists(), "the copy is kept until the restored session is saved"
    # Save asks where, starting at the session the copy belongs to
    starts = save_as(window, session, monkeypatch)
    assert starts == [str(session)]
    assert not window.state.dirty and not copy.exists()
    np.testing.assert_array_equal(load_session(session).history["grad_norm"], trainer.recorder["grad_norm"])
    # the other copy is still there for the next start; Discard deletes it
    third = make_window(tiny_experiment())
    qtbot.waitUntil(lambda: third.sessions.recovery_dialog is not None, timeout=3_000)
    dialog = third.sessions.recovery_dialog
    assert dialog.table.topLevelItemCount() == 1
    qtbot.mouseClick(dialog.discard_button, Qt.MouseButton.LeftButton)
    assert not (recovery_dir() / "untitled-crashed.gwb").exists()


# ----------------------------------------------------------------------------- transfer


def base_session(make_window: Any, qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Path]:
    window = make_window(tiny_experiment(epochs=3, layers=3, batch_norm="before_activation"))
    train_to_end(qtbot, window)
    path = tmp_path / "base.gwb"
    save_as(window, path, monkeypatch)
    return window, path


def test_transfer_dialog_reuses_and_freezes_layers_bit_for_bit(make_window: Any, qtbot: Any, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    window, path = base_session(make_window, qtbot, tmp_path, monkeypatch)
    base = load_session(path)
    window.sessions.transfer_action.trigger()
    dialog = window.sessions.transfer_dialog
    assert isinstance(dialog, TransferDialog) and dialog.isVisible()
    qtbot.waitUntil(lambda: not dialog.loading, timeout=10_000)     # the source is read on a worker
    assert dialog.source is not None and dialog.source.path == path
    assert dialog.table.rowCount() == 4          # three hidden layers and the output (never reused)
    assert dialog.choice() == ([0, 1], [0, 1])   # the book's default: reuse the lower layers, freeze them
    dialog.unfreeze.setValue(0)                  # frozen for the whole run: the weights must stay bit for bit
    dialog.box("reuse", 2).setChecked(True)
    dialog.box("freeze", 2).setChecked(False)    # reuse layer 2 but let it train
    assert dialog.ok_button.isEnabled(), dialog.error_label.text()
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    state = window.state
    transfer = state.experiment.model.transfer
    assert transfer is not None and transfer.layers == (0, 1, 2) and transfer.freeze == (0, 1)
    assert Path(transfer.source) == path.resolve()
    assert state.experiment.model.layers == base.experiment.model.layers
    assert state.file is None and state.dirty
    train_to_end(qtbot, window)
    out = tmp_path / "reused.gwb"
    window.controller.save_session(out)
    trained = load_session(out)
    for key in ("layers.0.kernel", "layers.0.moving_mean", "layers.1.kernel", "layers.1.gamma"):
        np.testing.assert_array_equal(trained.weights[key], base.weights[key], err_msg=key)
    assert not np.array_equal(trained.weights["layers.2.kernel"], base.weights["layers.2.kernel"])
    assert [e["frozen"] for e in trained.lineage] == [True, True, False]
    # frozen layers' gradients are still measured
    assert np.all(trained.history["grad_norm"][:, 0] > 0)


def test_reusing_another_sessions_layers_asks_before_unsaved_work_is_replaced(
        make_window: Any, qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QMessageBox

    _, path = base_session(make_window, qtbot, tmp_path, monkeypatch)
    window = make_window(tiny_experiment(epochs=2, layers=3, batch_norm="before_activation"))
    train_to_end(qtbot, window)                  # unsaved training, and an unsaved edit
    assert window.state.set_field("training.epochs", 5) is None
    before = window.state.experiment
    asked = answer_questions(monkeypatch, QMessageBox.StandardButton.Cancel)
    dialog = window.sessions.show_transfer_dialog(path)     # what "Pick a file…" opens
    qtbot.waitUntil(lambda: not dialog.loading, timeout=10_000)
    dialog.accept()
    assert len(asked) == 1 and "unsaved changes" in asked[0] and "since it was last saved" in asked[0]
    assert window.state.experiment is before and window.controller.unsaved_steps > 0   # Cancel keeps both
    asked = answer_questions(monkeypatch, QMessageBox.StandardButton.Discard)
    dialog = window.sessions.show_transfer_dialog(path)
    qtbot.waitUntil(lambda: not dialog.loading, timeout=10_000)
    dialog.accept()
    assert len(asked) == 1
    transfer = window.state.experiment.model.transfer
    assert transfer is not None and Path(transfer.source) == path.resolve()
    window.state.undo_stack.setClean()


def test_a_conflicting_choice_is_explained_at_the_field(make_window: Any, qtbot: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _, path = base_session(make_window, qtbot, tmp_path, monkeypatch)
    spec = tiny_spec(layers=3, batch_norm="before_activation")
    spec["data"] = {"source": "iris", "validation_split": 0.2, "test_split": 0.0}
    window = make_window(parse_experiment(spec))
    dialog = window.sessions.show_transfer_dialog(path)
    qtbot.waitUntil(lambda: not dialog.loading, timeout=10_000)
    assert not dialog.ok_button.isEnabled()
    assert dialog.error is not None and dialog.error.path == "model.transfer.layers[0]"
    assert "2 inputs" in dialog.error_label.text() and "iris" in dialog.error_label.text()
    assert "border" in dialog.table.cellWidget(0, 4).styleSheet()   # marked at the layer's Reuse box
    dialog.box("reuse", 2).setChecked(True)
    dialog.box("reuse", 0).setChecked(False)     # keep layer 0 new: layers 1 and 2 fit
    assert dialog.error is None and dialog.ok_button.isEnabled()
    assert not dialog.box("freeze", 0).isEnabled()
    dialog.accept()
    assert window.state.experiment.model.transfer.layers == (1, 2)
    window.controller.train()                    # core agrees: it trains
    wait_idle(qtbot, window, timeout=20_000)
    assert window.controller.buffers.epochs["epoch"][-1] == 4
    window.state.undo_stack.setClean()


# ----------------------------------------------------------------------------- opening on the worker


def test_opening_a_session_runs_on_the_worker_and_the_gui_stays_responsive(make_window: Any, qtbot: Any,
                                                                          tmp_path: Path) -> None:
    """The restore (reading, checking, rebuilding the trainer) runs on the worker: a 10 ms timer on
    the GUI thread is never late by more than 100 ms until the session is restored. Drawing the
    new run's plots afterwards is the monitor's (measured and printed, not asserted here)."""
    spec = tiny_spec(layers=6, units=256)
    spec["data"] = {"source": "digits", "validation_split": 0.2, "test_split": 0.0}
    spec["training"] = {"epochs": 3, "batch_size": 32}
    path = tmp_path / "larger.gwb"
    trainer = Trainer(parse_experiment(spec))
    trainer.fit(epochs=2)
    save_trainer(path, trainer)
    window = make_window(tiny_experiment())
    ticks: list[tuple[float, float]] = []        # (when, how late)
    restored: list[float] = []
    window.controller.opening.connect(lambda p: restored.append(time.perf_counter()) if p is None else None)

    def tick() -> None:
        now = time.perf_counter()
        ticks.append((now, now - (ticks[-1][0] if ticks else t0) - 0.010))

    timer = QTimer(window)
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(10)
    timer.timeout.connect(tick)
    qtbot.wait(200)
    t0 = time.perf_counter()
    timer.start()
    assert window.open_file(path)               # returns at once: the restore runs on the worker
    returned = time.perf_counter() - t0
    assert window.sessions.busy.isVisible()
    qtbot.waitUntil(lambda: window.controller.mode == "idle", timeout=20_000)
    qtbot.wait(100)
    timer.stop()
    assert window.state.file == path and window.controller.trainer.step == trainer.step
    assert not window.sessions.busy.isVisible() and restored
    during = max(late for when, late in ticks if when <= restored[0])
    after = max(late for when, late in ticks)
    print(f"\nopen on the worker: open_file returned in {returned * 1000:.1f} ms, restored after "
          f"{(restored[0] - t0) * 1000:.0f} ms; 10 ms timer worst lateness {during * 1000:.1f} ms during the "
          f"restore, {after * 1000:.1f} ms including drawing the new run's plots ({len(ticks)} ticks)")
    assert returned < 0.1
    assert during < 0.1, f"the GUI thread was blocked for {during * 1000:.0f} ms while restoring"


def test_a_damaged_session_is_an_error_dialog_and_the_run_is_kept(make_window: Any, qtbot: Any,
                                                                  tmp_path: Path) -> None:
    from PySide6.QtWidgets import QMessageBox

    window = make_window(tiny_experiment(epochs=2))
    train_to_end(qtbot, window)
    trainer = window.controller.trainer
    damaged = tmp_path / "damaged.gwb"
    damaged.write_bytes(b"PK\x03\x04 not a zip")
    window.open_file(damaged)
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "errorDialog") is not None, timeout=5_000)
    assert "Cannot open damaged.gwb" in window.findChild(QMessageBox, "errorDialog").text()
    wait_idle(qtbot, window)
    assert window.controller.trainer is trainer and window.state.file is None


# ----------------------------------------------------------------------------- unsaved training


def answer_questions(monkeypatch: pytest.MonkeyPatch, button: Any) -> list[str]:
    """Answer every Save / Discard / Cancel question with ``button``; returns the texts asked."""
    from PySide6.QtWidgets import QMessageBox

    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda parent, title, text, *a, **k: asked.append(text) or button)
    return asked


def test_training_since_the_last_save_marks_the_window_modified_and_closing_asks(
        make_window: Any, qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing is lost: a run trained but not saved is an unsaved change like an edit."""
    from PySide6.QtWidgets import QMessageBox

    window = make_window(tiny_experiment(epochs=2))
    assert not window.isWindowModified()
    train_to_end(qtbot, window)
    steps = window.controller.current_step
    assert steps > 0 and window.controller.unsaved_steps == steps
    assert window.isWindowModified() and not window.state.dirty     # the run, not the spec, is unsaved
    asked = answer_questions(monkeypatch, QMessageBox.StandardButton.Cancel)
    window.close()
    assert window.isVisible(), "Cancel keeps the window open"
    assert len(asked) == 1 and f"trained {steps:,} steps since it was last saved" in asked[0]

    path = tmp_path / "kept.gwb"
    save_as(window, path, monkeypatch)
    assert not window.isWindowModified() and window.controller.unsaved_steps == 0
    assert load_session(path).state["step"] == steps
    asked = answer_questions(monkeypatch, QMessageBox.StandardButton.Cancel)
    window.close()
    assert asked == [] and not window.isVisible(), "nothing unsaved: closes without a question"


def test_save_in_the_close_question_writes_the_run_then_closes(
        make_window: Any, qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QMessageBox

    window = make_window(tiny_experiment(epochs=2))
    train_to_end(qtbot, window)
    steps = window.controller.current_step
    path = tmp_path / "on-close.gwb"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(path), ""))
    answer_questions(monkeypatch, QMessageBox.StandardButton.Save)
    window.close()
    assert not window.isVisible()
    assert load_session(path).state["step"] == steps
    # The save put the session in the Runs panel (a load on its thread); closing still ends every
    # thread — one left running aborts the process when the window is deleted.
    assert [t.objectName() for t in window.findChildren(QThread) if t.isRunning()] == []


def test_opening_an_opened_session_is_clean_until_it_trains_further(
        make_window: Any, qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "base.gwb"
    trainer = Trainer(tiny_experiment(epochs=3))
    trainer.fit(epochs=1)
    save_trainer(path, trainer)
    window = make_window()
    assert window.open_file(path)
    qtbot.waitUntil(lambda: window.controller.current_step == trainer.step and window.controller.mode == "idle",
                    timeout=10_000)
    assert window.controller.unsaved_steps == 0 and not window.isWindowModified()
    window.controller.actions["step"].trigger()
    qtbot.waitUntil(lambda: window.controller.current_step == trainer.step + 1, timeout=10_000)
    wait_idle(qtbot, window)
    assert window.controller.unsaved_steps == 1 and window.isWindowModified()


def test_starting_over_after_unsaved_training_asks_first(
        make_window: Any, qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Train on a finished run and Reset weights replace the run: Cancel keeps it, Discard goes on.
    Asked for a run the user named (an unnamed one is kept as a ghost without a question:
    test_branching's retraining tests)."""
    from PySide6.QtWidgets import QMessageBox

    window = make_window(tiny_experiment(epochs=2))
    c = window.controller
    assert window.state.set_field("name", "the run I care about") is None
    train_to_end(qtbot, window)
    finished, steps = c.trainer, c.current_step
    asked = answer_questions(monkeypatch, QMessageBox.StandardButton.Cancel)
    c.actions["train"].trigger()                     # the run is complete: Train would start over
    c.actions["reset"].trigger()
    assert len(asked) == 2 and all("discards the current run" in text for text in asked)
    assert c.mode == "idle" and c.trainer is finished and c.current_step == steps

    asked = answer_questions(monkeypatch, QMessageBox.StandardButton.Discard)
    c.actions["reset"].trigger()
    qtbot.waitUntil(lambda: c.mode == "idle" and c.trainer is not finished, timeout=10_000)
    assert len(asked) == 1 and c.current_step == 0 and c.unsaved_steps == 0
    c.actions["train"].trigger()                     # fresh weights, nothing to lose: no question
    wait_idle(qtbot, window, timeout=20_000)
    assert len(asked) == 1 and c.current_step == steps


def test_saving_after_a_structural_edit_warns_that_the_trained_run_is_not_in_it(
        make_window: Any, qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A save after a structural edit writes the edited experiment with fresh weights: it says so
    first (Cancel writes nothing), and after Undo the save holds the trained run again."""
    from PySide6.QtWidgets import QMessageBox

    window = make_window(tiny_experiment(epochs=2))
    train_to_end(qtbot, window)
    steps = window.controller.current_step
    assert window.state.set_field("model.layers[0].units", 9) is None      # a new architecture
    path = tmp_path / "edited.gwb"
    asked = answer_questions(monkeypatch, QMessageBox.StandardButton.Cancel)
    save_as(window, path, monkeypatch)
    assert len(asked) == 1 and f"trained run ({steps:,} steps" in asked[0] and "undo" in asked[0]
    assert not path.exists() and window.isWindowModified()

    answer_questions(monkeypatch, QMessageBox.StandardButton.Save)
    save_as(window, path, monkeypatch)
    saved = load_session(path)
    assert saved.state["step"] == 0 and saved.experiment.model.layers[0].units == 9

    window.state.undo_stack.undo()                                          # back to the run's experiment
    asked = answer_questions(monkeypatch, QMessageBox.StandardButton.Cancel)
    kept = tmp_path / "run.gwb"
    save_as(window, kept, monkeypatch)
    assert asked == [] and load_session(kept).state["step"] == steps


# ----------------------------------------------------------------------------- a failed save


def test_a_failed_save_says_what_is_left_on_disk(make_window: Any, qtbot: Any, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """"The previous file is intact" only when it is: after its folder was deleted, the
    message says nothing was written."""
    import shutil

    from PySide6.QtWidgets import QMessageBox

    window = make_window(tiny_experiment(epochs=1))
    train_to_end(qtbot, window)
    folder = tmp_path / "runs"
    folder.mkdir()
    path = folder / "run.gwb"
    save_as(window, path, monkeypatch)
    assert path.is_file()
    shutil.rmtree(folder)
    window.save_action.trigger()
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "errorDialog") is not None, timeout=5_000)
    text = window.findChild(QMessageBox, "errorDialog").text()
    assert "Could not save run.gwb" in text and "intact" not in text and "nothing was written" in text


def test_an_open_that_fails_unexpectedly_changes_nothing(make_window: Any, qtbot: Any, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a file makes the loader raise (here a RecursionError, as deeply nested JSON once
    did), the run already open stays: not marked stale, trained on, and saved whole."""
    from PySide6.QtWidgets import QMessageBox

    import workbench.monitor.worker as worker_module

    window = make_window(tiny_experiment(epochs=2))
    train_to_end(qtbot, window)
    first = tmp_path / "first.gwb"
    save_as(window, first, monkeypatch)
    trainer, step = window.controller.trainer, window.controller.trainer.step

    def explode(path: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded while decoding a JSON array")

    monkeypatch.setattr(worker_module, "load_session", explode)
    (tmp_path / "second.gwb").write_bytes(b"PK")
    window.open_file(tmp_path / "second.gwb")
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "errorDialog") is not None, timeout=5_000)
    text = window.findChild(QMessageBox, "errorDialog").text()
    assert "Cannot open second.gwb" in text and "RecursionError" in text and "Training failed" not in text
    wait_idle(qtbot, window)
    assert window.controller.trainer is trainer and not window.controller.stale
    assert window.state.file == first
    window.save_action.trigger()
    assert load_session(first).state["step"] == step  # not a fresh model's 0 steps


def test_recovery_copies_are_looked_for_off_the_gui_thread(make_window: Any, qtbot: Any, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading the copies is file input (a copy may be a bomb, a slow disk, a huge JSON): the
    window's event loop keeps running while they are looked for, and the dialog follows."""
    import threading

    import workbench.sessions as sessions_module

    gui_thread = threading.current_thread()
    looked_from: list[threading.Thread] = []
    real = sessions_module.crashed_copies

    def slow_scan() -> list:
        looked_from.append(threading.current_thread())
        time.sleep(1.5)
        return real()

    monkeypatch.setattr(sessions_module, "crashed_copies", slow_scan)
    recovery_dir().mkdir(parents=True, exist_ok=True)
    trainer = Trainer(tiny_experiment(epochs=1))
    trainer.fit()
    write_snapshot(recovery_dir() / "untitled-crashed.gwb", take_snapshot(trainer))
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(10)
    window = make_window(tiny_experiment())
    qtbot.waitUntil(lambda: window.sessions.recovery_dialog is not None, timeout=10_000)
    timer.stop()
    assert looked_from and looked_from[0] is not gui_thread
    gaps = np.diff(ticks)
    # on the GUI thread the scan would stop the timer for its whole 1.5 s; a loaded machine
    # delays ticks too, but never by that much
    assert len(ticks) > 5 and gaps.max() < 1.0, f"the GUI thread stalled {gaps.max():.2f} s"
