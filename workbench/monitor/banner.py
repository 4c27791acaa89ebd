"""The health banner: the engine's detector (``Trainer.health()``) in plain words, naming layer
and step, with the book's remedies offered only after they were tried.

When a finding appears, a short trial of each remedy it names runs in a child process of low
priority (a ``JobRunner`` running ``core.process.ProcessJob`` of ``core.remedies.remedy_trials_job``,
which calls ``try_remedies_for``): the run is replayed to the
finding's step and each fix trained for a bounded budget against the unchanged run. The banner
then lists each fix with its measured effect: the ones that helped as one-click edits (each one
undoable edit through ``ExperimentState``; a pair such as leaky ReLU with a lower rate is one
edit), the ones that made things worse as such, each with what it does and does not address.
After a fix is applied the banner says so and what to do next, and greys out the finding,
which describes the run before the fix; undoing the fix (Edit › Undo) takes that back, and the
next run (``new_run``) clears the banner.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from core.engine.diagnostics import REMEDIES, HealthIssue
from core.process import ProcessJob
from core.remedies import (
    MATCHED_INIT,
    MAX_TRIAL_STEPS,
    REMEDY_SCOPE,
    TRIAL_SECONDS,
    TRIAL_STEPS,
    RemedyReport,
    Trial,
    apply_remedies,
    describe,
    remedy_activation,
    remedy_batch_norm,
    remedy_clip,
    remedy_init,
    remedy_leaky,
    remedy_trials_job,
    self_normalization_gaps,
)

from ..concurrent import JobRunner
from ..state import ExperimentState

#: The remedy trials' child process yields the cores to the training process and the window.
TRIAL_NICENESS = 10

__all__ = ["KIND_TITLES", "MATCHED_INIT", "REMEDY_BUTTONS", "HealthBanner", "remedy_activation", "remedy_batch_norm",
           "remedy_clip", "remedy_edit", "remedy_init", "remedy_leaky"]

KIND_TITLES = {"vanishing": "Vanishing gradients", "exploding": "Exploding gradients", "dead": "Dying ReLUs",
               "nan": "Training diverged (NaN)", "saturated": "Saturated units", "stalled": "Training stalled",
               "diverging": "Diverging", "clipping": "Clipping active"}

#: remedy key → (button text, what the edit does)
REMEDY_BUTTONS = {
    "init": ("Matched init", "Set every layer's initializer to the one matched to its activation "
                             "(He for ReLU / ELU, Glorot for tanh / logistic, LeCun for SELU)"),
    "activation": ("ELU + He init", "Use ELU activations with He initialization in every hidden layer"),
    "batch_norm": ("Add batch norm", "Add batch normalization (before the activation) to every hidden layer"),
    "clip": ("Clip gradients", "Clip gradients by global norm at 1.0"),
    "learning_rate": ("Halve learning rate", "Halve the optimizer's learning rate"),
    "leaky": ("Leaky ReLU", "Replace ReLU / saturating activations by leaky ReLU (He initialization)"),
}


def fix_text(fix: tuple[str, ...]) -> str:
    """The button text of a fix: ``Leaky ReLU + learning rate ÷ 4`` for a pair."""
    halvings = fix.count("learning_rate")
    parts = [REMEDY_BUTTONS[k][0] for k in fix if k != "learning_rate"]
    if halvings and parts:
        parts.append(f"learning rate ÷ {2 ** halvings}")
    elif halvings:
        parts.append("Halve learning rate" if halvings == 1 else f"Learning rate ÷ {2 ** halvings}")
    return " + ".join(parts)


def fix_key(fix: tuple[str, ...]) -> str:
    return "+".join(fix)


def remedy_edit(state: ExperimentState, key: str | tuple[str, ...]) -> str | None:
    """Apply one remedy (or a pair, as remedy keys) to the experiment as one undoable edit;
    returns the refusal message, if any."""
    fix = tuple(key.split("+")) if isinstance(key, str) else tuple(key)
    if not fix or any(k not in REMEDY_BUTTONS for k in fix):
        return f"unknown remedy {key!r}"
    new = apply_remedies(state.data, fix)
    return state.replace_data(new, f"Remedy: {fix_text(fix).lower()}")


def scope(fix: tuple[str, ...]) -> str:
    """What the fix does and does not address, in the book's terms."""
    return " ".join(f"{REMEDY_BUTTONS[k][0]}: {REMEDY_SCOPE[k]}." for k in dict.fromkeys(fix))


class HealthBanner(QFrame):
    """Hidden while training is healthy; else the first finding, the trials of its remedies, and
    the fixes that helped as buttons."""

    remedy_applied = Signal(str)
    trials_finished = Signal(object)        # the RemedyReport

    def __init__(self, state: ExperimentState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.trial_steps = TRIAL_STEPS
        self.trial_seconds = TRIAL_SECONDS
        self.setObjectName("healthBanner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 4, 8, 4)
        outer.setSpacing(3)
        self.label = QLabel()
        self.label.setObjectName("healthMessage")
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        outer.addWidget(self.label)
        self.trials_label = QLabel()
        self.trials_label.setObjectName("remedyTrials")
        self.trials_label.setWordWrap(True)
        self.trials_label.setTextFormat(Qt.TextFormat.RichText)
        outer.addWidget(self.trials_label)
        self.applied_label = QLabel()
        self.applied_label.setObjectName("remedyApplied")
        self.applied_label.setWordWrap(True)
        self.applied_label.hide()
        outer.addWidget(self.applied_label)
        self.row = QHBoxLayout()
        self.row.setSpacing(4)
        self.hint = QLabel("Fix (tried):")
        self.row.addWidget(self.hint)
        self.row.addStretch(1)
        outer.addLayout(self.row)
        self.buttons: dict[str, QPushButton] = {}
        self.issues: list[dict[str, Any]] = []
        self.report: RemedyReport | None = None
        self.applied: list[tuple[str, ...]] = []
        self._applied_step: int | None = None
        self._before_fix: Any = None             # the experiment before the first fix applied
        self._tried_key: tuple[Any, ...] | None = None
        self.runner = JobRunner(self, "remedy-trials")
        self.runner.progress.connect(self._on_trial_progress)
        self.runner.finished.connect(self._on_trials)
        self.runner.failed.connect(self._on_trials_failed)
        self._colour()
        self._show_buttons([])
        state.changed.connect(lambda _: self._fix_undone())
        self.hide()

    # ------------------------------------------------------------------ look

    def _colour(self) -> None:
        pal = self.palette()
        dark = QApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128
        pal.setColor(QPalette.ColorRole.Window, QColor("#5c4400") if dark else QColor("#fff3cd"))
        pal.setColor(QPalette.ColorRole.WindowText, QColor("#ffe8a3") if dark else QColor("#4d3800"))
        self.setPalette(pal)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.ApplicationPaletteChange:
            self._colour()
        super().changeEvent(event)

    @property
    def stale(self) -> bool:
        """A fix was applied since the finding: it describes the run before the fix."""
        return bool(self.applied)

    # ------------------------------------------------------------------ findings

    def set_issues(self, issues: list[dict[str, Any]]) -> None:
        """Show the detector's findings (dicts of ``HealthIssue.to_dict()``)."""
        newest = max((int(i["step"]) for i in issues), default=-1)
        if self._applied_step is not None and (not issues or newest < self._applied_step):
            self._forget_applied()                  # a new run: the fix is in it now
        self.issues = list(issues)
        if not issues:
            self.hide()
            return
        first = issues[0]
        title = KIND_TITLES.get(first["kind"], first["kind"])
        more = ""
        if len(issues) > 1:
            others = "; ".join(_in_a_sentence(KIND_TITLES.get(i["kind"], i["kind"])) + f" in {i['layer_name']}"
                               for i in issues[1:])
            more = f"<br><i>Also: {html.escape(others)}.</i>"
        message = str(first["message"])
        head, sep, rest = message.partition(": ")
        if sep and head.lower() in (title.lower(), first["kind"], "dying relus"):
            message = rest                       # the bold title already says it
        text = (f"<b>⚠ {html.escape(title)} in {html.escape(first['layer_name'])} at step {first['step']}.</b> "
                f"{html.escape(message[0].upper() + message[1:])}.{more}")
        gaps = self_normalization_gaps(self.state.experiment)
        if gaps:        # the book's advice for SELU networks: the conditions this one breaks
            text += ("<br><i>" + html.escape("SELU network: it normalizes itself only with "
                                             + "; ".join(gaps) + ".") + "</i>")
        if self.stale:
            text = f"<span style='color: gray'>{text} (before the fix)</span>"
        self.label.setText(text)
        key = tuple((i["kind"], i["layer"]) for i in issues)
        if key != self._tried_key and not self.stale:
            self._tried_key = key
            self._start_trials(issues)
        self.show()

    def _start_trials(self, issues: list[dict[str, Any]]) -> None:
        """Try the remedies of the first finding that names any, off the GUI thread."""
        self.report = None
        self._show_buttons([])
        finding = next((i for i in issues if i.get("remedies")), None)
        if finding is None:
            self.trials_label.setText("")
            return
        issue = HealthIssue.from_dict(finding)
        experiment, steps, seconds = self.state.experiment, self.trial_steps, self.trial_seconds
        what = _in_a_sentence(KIND_TITLES.get(issue.kind, issue.kind))
        self.trials_label.setText(f"<i>Trying the fixes for {html.escape(what)} ({steps} steps or "
                                  f"{seconds:g} s each; a fix that needs a new model is trained from the start "
                                  f"as far as the run went, up to {MAX_TRIAL_STEPS:,} steps) before offering "
                                  "them…</i>")
        self.runner.request_stop()
        base_dir = None if self.state.base_dir is None else str(self.state.base_dir)
        # In a child process of low priority: trials train networks, and on a thread of the window
        # they took a third of a core and the interpreter lock from the painting while a run trained.
        self.runner.submit(ProcessJob(remedy_trials_job, (experiment, issue, steps, seconds, base_dir),
                                      nice=TRIAL_NICENESS, name="gradient-workbench-remedy-trials"))

    def _on_trial_progress(self, label: str) -> None:
        if self.report is None:
            self.trials_label.setText(f"<i>Trying the fixes before offering them: {html.escape(str(label))}…</i>")

    def _on_trials_failed(self, message: str) -> None:
        self.trials_label.setText(f"<i>The fixes could not be tried ({html.escape(message.splitlines()[0])}); "
                                  "none is offered. The book's remedies: "
                                  + html.escape("; ".join(REMEDIES[k] for k in self._named_remedies())) + ".</i>")

    def _named_remedies(self) -> list[str]:
        first = next((i for i in self.issues if i.get("remedies")), None)
        return [k for k in (first or {}).get("remedies", []) if k in REMEDIES]

    def _on_trials(self, report: RemedyReport) -> None:
        self.report = report
        lines = []
        for trial in report.trials:
            mark = "✓" if trial.verdict == "helps" else "✗"
            verdict = {"helps": "helped", "worse": "did not help here", "no_change": "made no clear difference",
                       "diverged": "diverged"}.get(trial.verdict, trial.verdict)
            lines.append(f"{mark} <b>{html.escape(fix_text(trial.fix))}</b> {verdict}: "
                         f"{html.escape(_effect(trial))}")
        if not report.offered:
            lines.append("<i>No fix helped in its trial; none is offered.</i>")
        self.trials_label.setText("<br>".join(lines))
        self.trials_label.setToolTip("\n".join(describe(t) for t in report.trials))
        self._show_buttons([t for t in report.offered if t.fix not in self.applied])
        self.trials_finished.emit(report)

    def _show_buttons(self, offered: list[Trial]) -> None:
        for button in self.buttons.values():
            self.row.removeWidget(button)
            button.deleteLater()
        self.buttons = {}
        for i, trial in enumerate(offered):
            key = fix_key(trial.fix)
            button = QPushButton(fix_text(trial.fix))
            button.setObjectName(f"remedy_{key}")
            tips = [REMEDY_BUTTONS[k][1] + "." for k in dict.fromkeys(trial.fix)]
            button.setToolTip("\n".join([*tips, f"In its trial: {_effect(trial)}.", f"What it does: {scope(trial.fix)}",
                                         "One undoable edit; an initialization or structure change takes effect "
                                         "at the next Train from the start (a learning-rate change applies at once)."]))
            button.clicked.connect(lambda _=False, k=key: self.apply(k))
            self.row.insertWidget(1 + i, button)
            button.show()        # a widget added to a shown parent's layout is otherwise shown only later
            self.buttons[key] = button
        self.hint.setVisible(bool(offered))

    # ------------------------------------------------------------------ applying

    def apply(self, key: str) -> None:
        before = self.state.data
        message = remedy_edit(self.state, key)
        if message is not None:
            return
        fix = tuple(key.split("+"))
        if not self.applied:
            self._before_fix = before
        self.applied.append(fix)
        self._applied_step = max((int(i["step"]) for i in self.issues), default=0)
        button = self.buttons.get(key)
        if button is not None:
            button.setEnabled(False)
        names = ", ".join(fix_text(f) for f in self.applied)
        tried = next((t for t in (self.report.trials if self.report else ()) if t.fix == fix), None)
        if tried is not None and not tried.from_start:
            # tried as the run going on from its step, which is what the app does with a live change
            nxt = (f"It applies to the run from its next batch: train on to see its effect, as its trial did from "
                   f"step {tried.start_step:,} (the finding above describes the run before the fix).")
        else:
            nxt = ("Retrain to see its effect (Train from the start, as its trial did; the finding above "
                   "describes the run before the fix).")
        self.applied_label.setText(f"✓ Fix applied: {names}. {nxt} {scope(fix)}")
        self.applied_label.show()
        self.set_issues(self.issues)             # greys the finding out
        self.remedy_applied.emit(key)

    def new_run(self) -> None:
        """A new run started (Train from the start, an opened session): the findings and the
        fixes applied belong to the old one."""
        self._forget_applied()
        self.issues = []
        self.hide()

    def _fix_undone(self) -> None:
        """The experiment is back to what it was before the fixes (Edit › Undo): the finding
        describes it again, and the fixes are offered again."""
        if self.applied and self.state.data == self._before_fix:
            self._forget_applied()
            self._tried_key = tuple((i["kind"], i["layer"]) for i in self.issues)   # its trials stand
            if self.report is not None:
                self._show_buttons(list(self.report.offered))
            self.set_issues(self.issues)

    def _forget_applied(self) -> None:
        self.applied = []
        self._applied_step = None
        self._tried_key = None
        self._before_fix = None
        self.applied_label.hide()


def _in_a_sentence(title: str) -> str:
    """A finding's title inside a sentence: "Dying ReLUs" → "dying ReLUs" (not "dying relus")."""
    return title[:1].lower() + title[1:]


def _effect(trial: Trial) -> str:
    if trial.diverged:
        return trial.explanation or f"diverged within {trial.steps} steps"
    where = "from the start" if trial.from_start else f"from step {trial.start_step:,}"
    change = trial.loss_change
    return (f"{trial.explanation}; loss {'+' if change >= 0 else ''}{change:.3g} over {trial.steps} steps {where}")

