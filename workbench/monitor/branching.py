"""What-if branches in the window: "Branch here" forks the run on screen at the step cursor.

The dialog (``BranchDialog``) takes the branch's changes: the learning rate, the optimizer, the
number of epochs at its fields, and any other field of the experiment as ``PATH=VALUE`` lines
(``schedule.name=exponential``, ``model.layers[1].units=64``), and says what the branch will be:

* changes that keep every parameter's shape (a hyperparameter, an activation, a regularizer)
  continue the run's own state from the branch step: the same weights, optimizer slots, data
  order and dropout masks, so the branch's history is the parent's up to there, bit for bit
  (``core.sessions.branch.branch_trainer``);
* a change of shape (a layer added or widened) cannot keep that state: the branch is a new run
  of the changed experiment that starts from the branch step's weights wherever their shapes
  still fit, as transfer learning reuses layers (``branch_reusing_weights``).

The replay to the branch step runs off the GUI thread (a ``JobRunner``); the run on screen is
taken from the training process at a batch boundary first, and it keeps training meanwhile.
When the branch is ready the window adopts it as its run, trains it, and keeps the parent as
a ghost drawn dashed from the fork on.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.engine.optimizers import OPTIMIZERS
from core.sessions.branch import Change, branch_record, branch_reusing_weights, branch_trainer, parse_assignment
from core.sessions.format import SessionError
from core.sessions.trainer_io import session_of
from core.spec import Experiment, SpecError, apply_changes, parse_experiment, parse_path

from ..concurrent import JobRunner
from .controller import TrainingController
from .timeline import StepCursor

EXACT = "exact"            # the branch continues the run's state
REUSED = "reused"          # a new run from the branch step's weights where shapes fit


def shapes_of(experiment: Experiment) -> list[tuple[Any, ...]]:
    """What fixes the parameters' shapes, layer by layer (the input width is the data's, unchanged)."""
    return [(row.units, bool(row.batch_norm), row.use_bias) for row in experiment.model.layers]


def classify(old: Experiment, changes: list[Change]) -> tuple[str, Experiment, str]:
    """(EXACT or REUSED, the changed experiment, a sentence saying what the branch will be).
    Raises ``SpecError`` (naming the field) for an invalid change."""
    edited = apply_changes(old.to_dict(), [(parse_path(p), v) for p, v in changes])
    new = parse_experiment(edited)
    if shapes_of(new) == shapes_of(old):
        same_model = new.model == old.model
        return EXACT, new, ("The branch continues this run's own state from the branch step (weights, optimizer, "
                            "data order, dropout masks): its history equals the run's up to there"
                            + ("" if same_model else ", with the changed layers from there on") + ".")
    before, after = shapes_of(old), shapes_of(new)
    # a layer keeps its kernel's shape if its own units and the layer feeding it are unchanged
    kept = sum(i < len(before) and before[i] == after[i] and (i == 0 or before[i - 1][0] == after[i - 1][0])
               for i in range(len(after)))
    return REUSED, new, ("Structural change: the layers' shapes differ, so the branch is a new run of the changed "
                         "experiment that starts from the branch step's weights where shapes allow (as transfer "
                         f"learning does; {kept} of {len(new.model.layers)} hidden layers keep their shape), with a "
                         "fresh optimizer and history.")


class BranchDialog(QDialog):
    """The changes of a branch at one step; ``changes()`` once accepted."""

    def __init__(self, experiment: Experiment, step: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("branchDialog")
        self.setWindowTitle(f"Branch at step {step:,}")
        self.experiment = experiment
        self.step = step
        layout = QVBoxLayout(self)
        intro = QLabel(f"Fork the run at optimizer step {step:,} into a new run with these changes. The run on "
                       "screen stays as a ghost, drawn dashed from the fork on.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.learning_rate = QLineEdit(f"{experiment.learning_rate:g}")
        self.learning_rate.setObjectName("branchLearningRate")
        self.learning_rate.setToolTip("optimizer.learning_rate of the branch")
        form.addRow("Learning rate", self.learning_rate)
        self.optimizer = QComboBox()
        self.optimizer.setObjectName("branchOptimizer")
        self.optimizer.addItems(OPTIMIZERS.names())
        self.optimizer.setCurrentText(experiment.optimizer.name)
        self.optimizer.setToolTip("optimizer.name: another optimizer starts with empty slots at the branch step")
        form.addRow("Optimizer", self.optimizer)
        self.epochs = QSpinBox()
        self.epochs.setObjectName("branchEpochs")
        self.epochs.setRange(1, 100_000)
        self.epochs.setValue(experiment.training.epochs)
        self.epochs.setToolTip("training.epochs: the branch's schedule is planned for this length")
        form.addRow("Epochs", self.epochs)
        self.more = QPlainTextEdit()
        self.more.setObjectName("branchMoreChanges")
        self.more.setPlaceholderText("More changes, one PATH=VALUE a line, e.g.\nschedule.name=exponential\n"
                                     "model.layers[0].activation=selu")
        self.more.setFixedHeight(70)
        form.addRow("More", self.more)
        layout.addLayout(form)
        self.note = QLabel()
        self.note.setObjectName("branchNote")
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Branch")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.kind = EXACT
        for signal in (self.learning_rate.textChanged, self.optimizer.currentTextChanged, self.epochs.valueChanged,
                       self.more.textChanged):
            signal.connect(lambda *_: self._check())
        self.setMinimumWidth(420)
        self._check()

    def changes(self) -> list[Change]:
        """The edited fields as (path, value), only those that differ from the run's experiment.
        Raises ``ValueError`` naming a malformed entry."""
        out: list[Change] = []
        text = self.learning_rate.text().strip()
        try:
            rate = float(text)
        except ValueError:
            raise ValueError(f"Learning rate: must be a positive number, got {text!r}") from None
        if rate != self.experiment.learning_rate:
            out.append(("optimizer.learning_rate", rate))
        if self.optimizer.currentText() != self.experiment.optimizer.name:
            out.append(("optimizer.name", self.optimizer.currentText()))
        if self.epochs.value() != self.experiment.training.epochs:
            out.append(("training.epochs", self.epochs.value()))
        for line in self.more.toPlainText().splitlines():
            if line.strip():
                out.append(parse_assignment(line.strip()))
        return out

    def _check(self) -> bool:
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        try:
            changes = self.changes()
            self.kind, _, text = classify(self.experiment, changes)
            if not changes:
                text = "No changes: the branch continues exactly as the run did. " + text
        except (ValueError, SpecError) as exc:
            self.note.setText(f"<span style='color:#c0392b'>{exc}</span>")
            ok.setEnabled(False)
            return False
        self.note.setText(text)
        ok.setEnabled(True)
        return True


def build_branch(experiment: Experiment, arrays: dict[str, Any], state: dict[str, Any], at_step: int,
                 changes: list[Change], kind: str, base_dir: str | None) -> tuple[Any, str]:
    """The branch as an in-memory session, and a sentence for the status bar (worker thread)."""
    parent = session_of(experiment, arrays, {**state, "base_dir": base_dir} if base_dir else state)
    if kind == REUSED:
        trainer, copied, fresh = branch_reusing_weights(parent, at_step, changes, base_dir)
        said = (f"new run from step {at_step:,}'s weights: {len(copied)} arrays reused, "
                f"{len(fresh)} initialized afresh ({', '.join(fresh[:4])}{'…' if len(fresh) > 4 else ''})")
    else:
        trainer = branch_trainer(parent, at_step, changes, base_dir)
        said = f"branched at step {at_step:,}" + (
            ": " + ", ".join(f"{p}={json.dumps(v)}" for p, v in changes) if changes else " (no changes)")
    out_arrays, out_state = trainer.state_dict()
    extra: dict[str, Any] = {"branch": branch_record(None, at_step, changes)}
    if base_dir:
        extra["base_dir"] = base_dir
    return session_of(trainer.experiment, out_arrays, {**out_state, **extra}), said


class BranchTools(QObject):
    """The "Branch here…" action (plots' right-click menu, the central plot's tool row, the
    Training menu) and the job that builds the branch."""

    def __init__(self, controller: TrainingController, cursor: StepCursor, window: Any) -> None:
        super().__init__(window)
        self.controller = controller
        self.cursor = cursor
        self.window = window
        self.runner = JobRunner(self, "branch", plain_errors=(SessionError, SpecError, OSError, ValueError))
        self.runner.finished.connect(self._built)
        self.runner.failed.connect(self._failed)
        self.action = QAction("&Branch here…", self)
        self.action.setObjectName("branchAction")
        self.action.setShortcut(QKeySequence("Ctrl+B"))
        tip = ("Fork the run at the step cursor into a new run with changed settings (click a plot to place the "
               "cursor; without one, at the newest step)")
        self.action.setToolTip(f"{tip} (Ctrl+B)")
        self.action.setStatusTip(tip)
        self.action.triggered.connect(lambda _=False: self.open_dialog())
        self.dialog: BranchDialog | None = None
        self._pending: tuple[int, str] | None = None
        controller.mode_changed.connect(lambda _: self._update())
        controller.updated.connect(self._update)
        self.runner.busy_changed.connect(lambda _: self._update())
        self._update()

    def _update(self) -> None:
        self.action.setEnabled(self.controller.trainer is not None and self.controller.buffers.size > 0
                               and not self.runner.busy and self.controller.mode != "building")

    def branch_step(self) -> int:
        step = self.cursor.step
        return self.controller.current_step if step is None else min(step, self.controller.current_step)

    def open_dialog(self) -> BranchDialog | None:
        """Ask for the branch's changes at the cursor's step; the branch is built when accepted."""
        if not self.action.isEnabled():
            return None
        trainer = self.controller.trainer
        if trainer is None:
            return None
        step = self.branch_step()
        dialog = BranchDialog(trainer.experiment, step, self.window)
        dialog.accepted.connect(lambda: self._accepted(dialog))
        dialog.finished.connect(lambda _: dialog.deleteLater())
        self.dialog = dialog
        dialog.open()
        return dialog

    def _accepted(self, dialog: BranchDialog) -> None:
        self.dialog = None
        try:
            changes = dialog.changes()
        except ValueError as exc:
            self._failed(str(exc))
            return
        self.branch(dialog.step, changes, dialog.kind)

    def branch(self, step: int, changes: list[Change], kind: str = EXACT) -> bool:
        """Take the run's state now and build the branch off the GUI thread."""
        try:
            taken = self.controller.run_state()
        except (OSError, SessionError) as exc:
            self._failed(f"Cannot branch this run: {exc}")
            return False
        if taken is None:
            return False
        arrays, state, experiment = taken
        base = self.controller.state.base_dir
        base_dir = str(base) if base is not None else None
        self._pending = (step if kind == EXACT else -1, kind)
        self.controller.status.emit(f"Branch: replaying the run to step {step:,}…")
        self.runner.submit(lambda progress, should_stop: build_branch(experiment, arrays, state, step, changes,
                                                                      kind, base_dir))
        self._update()
        return True

    def _built(self, result: tuple[Any, str]) -> None:
        session, said = result
        step, _ = self._pending or (-1, EXACT)
        self._pending = None
        controller = self.controller
        if not controller._may_replace_run():
            return

        def adopt() -> None:
            controller.ghosts.pending_parent_step = step if step >= 0 else None
            base = controller.state.base_dir
            controller.state.load(session.experiment, None, base)

        controller.train_session(session, before=adopt)
        controller.status.emit(f"Branch: {said}")

    def _failed(self, message: str) -> None:
        self._pending = None
        self._update()
        box = QMessageBox(QMessageBox.Icon.Warning, "Branch", message, QMessageBox.StandardButton.Ok, self.window)
        box.setObjectName("branchErrorDialog")
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.open()
