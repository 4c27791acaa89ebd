"""GUI tests never touch the user's data folder: recovery copies (autosave) go to a temporary one."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest

from core.sessions.recovery import DATA_ENV


@pytest.fixture(autouse=True)
def _private_user_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "user-data"
    monkeypatch.setenv(DATA_ENV, str(folder))
    return folder


@pytest.fixture(autouse=True)
def unsaved_questions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The static ``QMessageBox.question`` is modal: a test that triggers one unexpectedly (closing
    a window that trained, say) would hang. It answers "Discard" and records the question's text;
    tests that check the question read this list or patch their own answer."""
    from PySide6.QtWidgets import QMessageBox

    asked: list[str] = []

    def question(parent: object, title: str, text: str, *args: object, **kwargs: object) -> QMessageBox.StandardButton:
        asked.append(text)
        return QMessageBox.StandardButton.Discard

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked


@pytest.fixture(autouse=True)
def _free_closed_windows_now() -> Any:
    """After each test, the windows it closed are deleted and its garbage collected, here on the
    GUI thread: the app collects on a timer on the GUI thread (automatic collection is off, see
    ``workbench.runtime.collect_garbage_on_the_gui_thread``), and a whole session's closed windows
    left for one late full collection stalled a later test's GUI thread for 5 s."""
    yield
    from PySide6.QtCore import QCoreApplication, QEvent

    if QCoreApplication.instance() is not None:
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()


@pytest.fixture(autouse=True)
def _no_spare_training_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A window starts a spare training process as it opens, so that Train need not wait for an
    interpreter to start. Most tests close their window within a second, before that child has
    even imported NumPy, and closing waits for it: 0.3 s a window, and half a core spent on
    imports nobody uses. Here a child starts when a run asks for one; a test marked
    ``spare_child`` gets the window's own behaviour."""
    if request.node.get_closest_marker("spare_child") is None:
        from workbench.monitor.worker import ProcessWorker

        monkeypatch.setattr(ProcessWorker, "keep_spare", False)
