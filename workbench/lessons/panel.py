"""The Lessons panel: pick a lesson, **Load** its example in one click, train, read the verdict.

Everything a lesson says and checks comes from ``core.lessons.LESSONS`` (the guide's step
lists are made from the same definitions). A lesson's example is a preset, applied as one
undoable edit like the Presets menu does, or a bundled example file (the transfer lesson's,
whose reused layers are read relative to it), opened like File › Open. When a run ends —
the training controller leaves a running or paused state for idle — the selected lesson's
check runs on a worker thread (the transfer check trains a from-scratch twin) and its
verdict appears under the steps.
"""

from __future__ import annotations

import html
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from core.lessons import LESSONS, Lesson, RunRecord, Verdict
from core.zoo import EXAMPLES_DIR

from ..concurrent import JobRunner
from ..editor import apply_preset
from ..monitor.controller import IDLE, PAUSED, RUNNING, STOPPING

SEEN_STYLE = "color: #1e7b34;"
NOT_SEEN_STYLE = "color: #a35200;"


def examples_folder() -> Path:
    """The bundled examples: ``resources/examples`` of a source tree or an installed package, or
    ``examples/`` beside the program of the self-contained build (packaging/build.sh)."""
    beside = Path(sys.executable).resolve().parent / "examples"
    return EXAMPLES_DIR if EXAMPLES_DIR.is_dir() or not beside.is_dir() else beside


def _markdown_inline(text: str) -> str:
    """The guide's ``**bold**`` and ```code``` as rich text (the steps are written once, for both)."""
    out, bold, code = [], False, False
    for i, part in enumerate(html.escape(text).replace("**", "\0").split("\0")):
        if i:
            bold = not bold
            out.append("<b>" if bold else "</b>")
        pieces = part.split("`")
        for j, piece in enumerate(pieces):
            if j:
                code = not code
                out.append("<code>" if code else "</code>")
            out.append(piece)
    return "".join(out)


class LessonsPanel(QWidget):
    """``verdict_shown`` fires with (lesson key, ``Verdict``) when a check's verdict is on screen."""

    verdict_shown = Signal(str, object)

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.setObjectName("lessonsPanel")
        self.window_ = window
        self.state = window.state                  # type: ignore[attr-defined]
        self.controller = window.controller        # type: ignore[attr-defined]
        self.verdict: Verdict | None = None
        self._previous_mode = self.controller.mode
        self.checker = JobRunner(self, "lesson-check")
        self.checker.finished.connect(self._on_checked)
        self.checker.failed.connect(self._on_check_failed)

        self.lesson_list = QListWidget()
        self.lesson_list.setObjectName("lessonList")
        for i, lesson in enumerate(LESSONS.values(), 1):
            item = QListWidgetItem(f"{i}. {lesson.title}")
            item.setData(Qt.ItemDataRole.UserRole, lesson.key)
            item.setToolTip(f"Chapter 11, “{lesson.section}”")
            self.lesson_list.addItem(item)
        self.lesson_list.setMaximumHeight(self.lesson_list.sizeHintForRow(0) * (len(LESSONS) + 1) + 6)
        self.lesson_list.currentItemChanged.connect(lambda item, _: item and self._show(item.data(
            Qt.ItemDataRole.UserRole)))

        self.title = QLabel()
        self.title.setObjectName("lessonTitle")
        self.title.setWordWrap(True)
        self.look = QLabel()
        self.look.setObjectName("lessonLook")
        self.look.setWordWrap(True)
        self.steps = QLabel()
        self.steps.setObjectName("lessonSteps")
        self.steps.setWordWrap(True)
        self.steps.setTextFormat(Qt.TextFormat.RichText)
        self.load_button = QPushButton("&Load the example")
        self.load_button.setObjectName("lessonLoad")
        self.load_button.clicked.connect(self.load)
        self.check_button = QPushButton("&Check the run")
        self.check_button.setObjectName("lessonCheck")
        self.check_button.setToolTip("Check the current run again (it is checked by itself when a run ends)")
        self.check_button.clicked.connect(self.check_run)
        self.verdict_label = QLabel()
        self.verdict_label.setObjectName("lessonVerdict")
        self.verdict_label.setWordWrap(True)
        self.verdict_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        body = QWidget()
        body_layout = QVBoxLayout(body)
        body_layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.title, self.look, self.steps):
            body_layout.addWidget(widget)
        buttons = QHBoxLayout()
        buttons.addWidget(self.load_button)
        buttons.addWidget(self.check_button)
        buttons.addStretch(1)
        body_layout.addLayout(buttons)
        body_layout.addWidget(self.verdict_label)
        body_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(body)
        scroll.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        layout = QVBoxLayout(self)
        layout.addWidget(self.lesson_list)
        layout.addWidget(scroll, 1)

        self.controller.mode_changed.connect(self._on_mode_changed)
        self.lesson_list.setCurrentRow(0)

    # ------------------------------------------------------------------ selection

    @property
    def lesson(self) -> Lesson:
        item = self.lesson_list.currentItem()
        return LESSONS[item.data(Qt.ItemDataRole.UserRole)] if item else next(iter(LESSONS.values()))

    def select(self, key: str) -> None:
        for row in range(self.lesson_list.count()):
            if self.lesson_list.item(row).data(Qt.ItemDataRole.UserRole) == key:
                self.lesson_list.setCurrentRow(row)
                return
        raise KeyError(f"unknown lesson {key!r}; allowed: {', '.join(LESSONS)}")

    def _show(self, key: str) -> None:
        lesson = LESSONS[key]
        self.title.setText(f"<b>{html.escape(lesson.title)}</b> — chapter 11, “{html.escape(lesson.section)}”")
        self.look.setText(lesson.look)
        items = "".join(f"<li>{_markdown_inline(step)}</li>" for step in lesson.steps)
        self.steps.setText(f"<ol style='margin-left: -20px'>{items}</ol>")
        self.load_button.setToolTip(f"Load {lesson.file_name} ({lesson.loads})")
        self._set_verdict(None, "")

    # ------------------------------------------------------------------ loading

    def load(self) -> bool:
        """Load the lesson's example; False if it could not be (a run in progress, or the
        user kept unsaved work)."""
        lesson = self.lesson
        if self.controller.busy:
            self._set_verdict(None, "Stop training before loading the lesson's example.")
            return False
        if lesson.preset is not None:
            message = apply_preset(self.state, lesson.preset)
            if message is not None:
                self._set_verdict(None, message)
                return False
        elif not self.window_.open_file(examples_folder() / lesson.file_name):  # type: ignore[attr-defined]
            return False
        if getattr(self.window_, "opening_file", False):
            # The example is read on a worker: say it is loaded when it is.
            self._set_verdict(None, "Loading the lesson's example…")
            opened = self.window_.file_opened  # type: ignore[attr-defined]

            def loaded(_path: object) -> None:
                opened.disconnect(loaded)
                self._set_verdict(None, "Loaded. Press Train (F5).")

            opened.connect(loaded)
            return True
        self._set_verdict(None, "Loaded. Press Train (F5).")
        return True

    # ------------------------------------------------------------------ checking

    def _on_mode_changed(self, mode: str) -> None:
        was, self._previous_mode = self._previous_mode, mode
        # Only while the panel is shown: a hidden panel's student is not doing a lesson (and the
        # transfer check would train a second network for nothing).
        if mode == IDLE and was in (RUNNING, PAUSED, STOPPING) and not self.controller.stale and self.isVisible():
            self.check_run()

    def check_run(self) -> bool:
        """Check the current run with the selected lesson's check (on the worker); False if
        there is no run to check."""
        trainer = self.controller.trainer
        if trainer is None or self.controller.busy:
            self._set_verdict(None, "Train first: the lesson checks a run.")
            return False
        lesson = self.lesson
        record = RunRecord.from_trainer(trainer, self.state.base_dir)
        self._set_verdict(None, "Checking the run…" if lesson.key != "transfer" else
                          "Checking the run (training the same network from scratch to compare)…")
        self.checker.submit(lambda _progress, _stop: (lesson.key, lesson.check(record)))
        return True

    def _on_checked(self, result: Any) -> None:
        key, verdict = result
        if key != self.lesson.key:
            return
        self._set_verdict(verdict, verdict.text)
        self.verdict_shown.emit(key, verdict)

    def _on_check_failed(self, message: str) -> None:
        self._set_verdict(None, f"The check failed: {message}")

    def _set_verdict(self, verdict: Verdict | None, text: str) -> None:
        self.verdict = verdict
        if verdict is None:
            self.verdict_label.setStyleSheet("")
            self.verdict_label.setText(html.escape(text))
            return
        head = "The expected effect appeared" if verdict.appeared else "The expected effect did not appear"
        self.verdict_label.setStyleSheet(SEEN_STYLE if verdict.appeared else NOT_SEEN_STYLE)
        self.verdict_label.setText(f"<b>{head}.</b> {html.escape(text)}")
