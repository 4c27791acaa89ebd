"""The health banner: the engine's detector (``Trainer.health()``, run on the worker) in plain
words, naming layer and step, with the book's remedies as one-click edits of the experiment
(each one undoable edit through ``ExperimentState``)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from core.engine.diagnostics import REMEDIES

from ..state import ExperimentState

#: Initialization matched to each activation (chapter 11, Table 11-1).
MATCHED_INIT = {"relu": "he_normal", "leaky_relu": "he_normal", "elu": "he_normal", "gelu": "he_normal",
                "swish": "he_normal", "selu": "lecun_normal", "logistic": "glorot_uniform", "tanh": "glorot_uniform",
                "softplus": "glorot_uniform", "linear": "glorot_uniform"}

KIND_TITLES = {"vanishing": "Vanishing gradients", "exploding": "Exploding gradients", "dead": "Dying ReLUs",
               "nan": "Training diverged (NaN)"}


def _layers(data: dict[str, Any]) -> list[dict[str, Any]]:
    return data["model"]["layers"]


def remedy_init(data: dict[str, Any]) -> dict[str, Any]:
    for row in _layers(data):
        row["init"] = MATCHED_INIT.get(row["activation"], "he_normal")
    return data


def remedy_activation(data: dict[str, Any]) -> dict[str, Any]:
    for row in _layers(data):
        row.pop("alpha", None)
        row["activation"] = "elu"
        row["init"] = "he_normal"
    return data


def remedy_batch_norm(data: dict[str, Any]) -> dict[str, Any]:
    for row in _layers(data):
        if not row.get("batch_norm"):
            row["batch_norm"] = "before_activation"
    return data


def remedy_clip(data: dict[str, Any]) -> dict[str, Any]:
    data["regularization"]["gradient_clip"] = {"mode": "global_norm", "threshold": 1.0}
    return data


def remedy_learning_rate(data: dict[str, Any], current: float) -> dict[str, Any]:
    data["optimizer"]["learning_rate"] = float(f"{current / 2:.6g}")
    return data


def remedy_leaky(data: dict[str, Any]) -> dict[str, Any]:
    for row in _layers(data):
        if row["activation"] in ("relu", "logistic", "tanh"):
            row.pop("alpha", None)
            row["activation"] = "leaky_relu"
            row["init"] = "he_normal"
    return data


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


def remedy_edit(state: ExperimentState, key: str) -> str | None:
    """Apply one remedy to the experiment as one undoable edit; returns the refusal message, if any."""
    data = state.data
    fixes: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        "init": remedy_init, "activation": remedy_activation, "batch_norm": remedy_batch_norm,
        "clip": remedy_clip, "leaky": remedy_leaky,
        "learning_rate": lambda d: remedy_learning_rate(d, state.experiment.learning_rate),
    }
    if key not in fixes:
        return f"unknown remedy {key!r}"
    new = fixes[key](copy.deepcopy(data))
    return state.replace_data(new, f"Remedy: {REMEDY_BUTTONS[key][0].lower()}")


class HealthBanner(QFrame):
    """Hidden while training is healthy; else the first finding and its remedies as buttons."""

    remedy_applied = Signal(str)

    def __init__(self, state: ExperimentState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
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
        row = QHBoxLayout()
        row.setSpacing(4)
        self.hint = QLabel("Fix:")
        row.addWidget(self.hint)
        self.buttons: dict[str, QPushButton] = {}
        for key, (text, tip) in REMEDY_BUTTONS.items():
            button = QPushButton(text)
            button.setObjectName(f"remedy_{key}")
            button.setToolTip(f"{tip}.\nThe book: {REMEDIES.get(key, '')}.\nOne undoable edit; takes effect "
                              "at the next Train (a learning-rate change applies at once).")
            button.clicked.connect(lambda _=False, k=key: self.apply(k))
            row.addWidget(button)
            self.buttons[key] = button
        row.addStretch(1)
        outer.addLayout(row)
        self.issues: list[dict[str, Any]] = []
        self._shown_key: tuple[Any, ...] | None = None
        self._colour()
        self.hide()

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

    def set_issues(self, issues: list[dict[str, Any]]) -> None:
        """Show the detector's findings (dicts of ``HealthIssue.to_dict()``)."""
        self.issues = list(issues)
        if not issues:
            self._shown_key = None
            self.hide()
            return
        key = tuple((i["kind"], i["layer"]) for i in issues)
        first = issues[0]
        title = KIND_TITLES.get(first["kind"], first["kind"])
        more = ""
        if len(issues) > 1:
            others = "; ".join(KIND_TITLES.get(i["kind"], i["kind"]).lower() + f" in {i['layer_name']}"
                               for i in issues[1:])
            more = f"<br><i>Also: {others}.</i>"
        message = str(first["message"])
        head, sep, rest = message.partition(": ")
        if sep and head.lower() in (title.lower(), first["kind"], "dying relus"):
            message = rest                       # the bold title already says it
        self.label.setText(f"<b>⚠ {title} in {first['layer_name']} at step {first['step']}.</b> "
                           f"{message[0].upper()}{message[1:]}.{more}")
        if key != self._shown_key:
            remedies: list[str] = []
            for issue in issues:
                remedies += [r for r in issue["remedies"] if r not in remedies]
            for k, button in self.buttons.items():
                button.setVisible(k in remedies)
            self._shown_key = key
        self.show()

    def apply(self, key: str) -> None:
        message = remedy_edit(self.state, key)
        if message is None:
            self.remedy_applied.emit(key)
