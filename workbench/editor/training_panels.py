"""The Regularization panel (ℓ1, ℓ2, max-norm, gradient clipping, early stopping) and the
Training panel (epochs, batch size, shuffling, diagnostics, NaN policy, the instruments, seed and
name)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QWidget

from core.engine.threads import usable_cores
from core.spec import CLIP_MODES, DTYPES, MONITORS, NAN_POLICIES, InstrumentsSpec

from ..state import ExperimentState
from .fields import CheckField, ChoiceCombo, Field, IntSpin, NumberEdit, add_row, clear_errors, edit, new_form
from .help import CLIP_MODES as CLIP_CHOICES
from .help import DTYPES as DTYPE_CHOICES
from .help import MONITOR_TIPS, ON_NAN, field_help
from .panel import Panel

#: The instruments of ``training.instruments`` the Training panel switches, in its order.
INSTRUMENT_NAMES = ("sharpness", "noise", "effective_learning_rate")


def _choices(values: Sequence[Any], described: Sequence[tuple[Any, str, str]]) -> list[tuple[Any, str, str]]:
    """The spec's allowed values, labelled and explained where help exists (new values still appear)."""
    known = {v: (label, tip) for v, label, tip in described}
    return [(v, *known.get(v, (str(v), ""))) for v in values]


def blas_thread_choices(cores: int | None = None) -> list[tuple[Any, str, str]]:
    """``training.blas_threads``: "auto", then the counts up to this machine's cores (at least 8,
    so an experiment written on a larger machine still shows its count)."""
    counts = range(1, max(8, cores or usable_cores()) + 1)
    return [("auto", "auto", "One thread for small products; the free cores for large ones (the window keeps "
                             "one core for itself)"),
            *((n, str(n), f"{n} BLAS thread{'s' if n > 1 else ''}, whatever the machine's load") for n in counts)]


class _FormPanel(Panel):
    def field(self, form: QFormLayout, path: str, widget: Any, **kwargs: Any) -> Field:
        label, tip = field_help(path)
        widget.setObjectName(path)
        if isinstance(widget, CheckField):
            widget.setText(label)
            form.addRow(widget)
            return self.binder.bind(widget, path, tooltip=tip, text=f"Change {label.lower()}", **kwargs)
        caption, err = add_row(form, label, widget, tip)
        return self.binder.bind(widget, path, tooltip=tip, label=err, text=f"Change {label.lower()}", **kwargs)


class RegularizationPanel(_FormPanel):
    def __init__(self, state: ExperimentState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        form = new_form()
        self.field(form, "regularization.l1", NumberEdit("float"))
        self.field(form, "regularization.l2", NumberEdit("float"))
        # max_norm: null (off) or a positive number; the check box switches it.
        label, tip = field_help("regularization.max_norm")
        self.max_norm_on = CheckField()
        self.max_norm_on.setObjectName("maxNormEnabled")
        self.max_norm_on.setToolTip(tip)
        self.max_norm = NumberEdit("float", placeholder="off")
        self.max_norm.setObjectName("regularization.max_norm")
        row = QWidget()
        box = QHBoxLayout(row)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.max_norm_on)
        box.addWidget(self.max_norm)
        box.addStretch(1)
        _, err = add_row(form, label, row, tip)
        self.binder.bind(self.max_norm, "regularization.max_norm", tooltip=tip, label=err, text="Change max-norm")
        self.max_norm_on.edited.connect(self._toggle_max_norm)
        self.group("Weight penalties", form)

        form = new_form()
        self.clip_mode = ChoiceCombo(_choices(CLIP_MODES, CLIP_CHOICES))
        self.field(form, "regularization.gradient_clip.mode", self.clip_mode, write=self._set_clip_mode)
        self.threshold = NumberEdit("float")
        self.field(form, "regularization.gradient_clip.threshold", self.threshold, default=1.0)
        self.group("Gradient clipping", form)

        form = new_form()
        self.es_enabled = CheckField()
        self.field(form, "regularization.early_stopping.enabled", self.es_enabled)
        self.es_widgets = [
            self.field(form, "regularization.early_stopping.patience", IntSpin()).widget,
            self.field(form, "regularization.early_stopping.monitor",
                       ChoiceCombo([(m, m, MONITOR_TIPS.get(m, "")) for m in MONITORS])).widget,
            self.field(form, "regularization.early_stopping.min_delta", NumberEdit("float")).widget,
            self.field(form, "regularization.early_stopping.restore_best_weights", CheckField()).widget,
        ]
        self.group("Early stopping", form)
        self.finish()

    def refresh(self) -> None:
        reg = self.state.experiment.regularization
        on = reg.max_norm is not None
        self.max_norm_on.set_value(on)
        self.max_norm.setEnabled(on)
        self.threshold.setEnabled(reg.gradient_clip.mode != "none")
        for widget in self.es_widgets:
            widget.setEnabled(reg.early_stopping.enabled)

    def _toggle_max_norm(self, on: bool) -> None:
        if on:
            value = self.max_norm.value()
            if not isinstance(value, (int, float)) or value <= 0:
                value = 1.0
            self.state.set_field("regularization.max_norm", float(value), "Turn max-norm on")
        else:
            clear_errors(self.state, "regularization.max_norm")
            self.state.set_field("regularization.max_norm", None, "Turn max-norm off")
        self.refresh()

    def _set_clip_mode(self, mode: str) -> Any:
        def change(d: dict) -> None:
            clip = d["regularization"]["gradient_clip"]
            clip["mode"] = mode
            if mode != "none":
                clip.setdefault("threshold", 1.0)

        message = edit(self.state, "regularization.gradient_clip.mode", change, f"Gradient clipping: {mode}")
        if message is None and mode == "none":
            clear_errors(self.state, "regularization.gradient_clip.threshold")
        return message


class TrainingPanel(_FormPanel):
    def __init__(self, state: ExperimentState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        form = new_form()
        self.field(form, "training.epochs", IntSpin())
        self.field(form, "training.batch_size", IntSpin())
        self.field(form, "training.shuffle", CheckField())
        self.group("Training loop", form)

        form = new_form()
        self.field(form, "training.diagnostics_every", IntSpin())
        self.field(form, "training.on_nan", ChoiceCombo(_choices(NAN_POLICIES, ON_NAN)))
        self.max_rollbacks = self.field(form, "training.max_rollbacks", IntSpin()).widget
        self.field(form, "training.dtype", ChoiceCombo(_choices(DTYPES, DTYPE_CHOICES)))
        self.blas_threads = self.field(form, "training.blas_threads", ChoiceCombo(blas_thread_choices()),
                                       read=lambda: self.state.experiment.training.blas_threads).widget
        self.group("Diagnostics and numerics", form)

        form = new_form()
        self.instrument_steps: dict[str, QWidget] = {}
        for name in INSTRUMENT_NAMES:
            self.field(form, f"training.instruments.{name}.enabled", CheckField(),
                       read=self._instrument_reader(name, "enabled"), write=self._instrument_writer(name, "enabled"))
            self.instrument_steps[name] = self.field(
                form, f"training.instruments.{name}.every", IntSpin(), read=self._instrument_reader(name, "every"),
                write=self._instrument_writer(name, "every")).widget
            if name == "sharpness":
                self.iterations = self.field(
                    form, "training.instruments.sharpness.iterations", IntSpin(),
                    read=self._instrument_reader(name, "iterations"),
                    write=self._instrument_writer(name, "iterations")).widget
        self.field(form, "training.instruments.probe_examples", IntSpin(),
                   read=lambda: self.state.experiment.training.instruments.probe_examples,
                   write=self._instrument_writer(None, "probe_examples"))
        box = self.group("Instruments", form, "Measured while training, on a private copy of the network (the run "
                                              "is the same with them on or off); their docks open from the View menu")
        box.setObjectName("instrumentsGroup")
        hint = QLabel("Their plots: View › Sharpness, Gradient noise, Effective LR. They can be switched while a run "
                      "trains.")
        hint.setWordWrap(True)
        self.body.addWidget(hint)

        form = new_form()
        name = NumberEdit("text")
        name.setMaxLength(200)
        self.field(form, "name", name)
        self.field(form, "seed", NumberEdit("int"))
        self.group("Experiment", form)
        hint = QLabel("The same seed, data and settings give the same run, bit for bit.")
        hint.setWordWrap(True)
        self.body.addWidget(hint)
        self.finish()

    def refresh(self) -> None:
        self.max_rollbacks.setEnabled(self.state.experiment.training.on_nan == "rollback")
        instruments = self.state.experiment.training.instruments
        for name, widget in self.instrument_steps.items():
            widget.setEnabled(getattr(instruments, name).enabled)
        self.iterations.setEnabled(instruments.sharpness.enabled)

    def _instrument_reader(self, name: str, key: str) -> Any:
        return lambda: getattr(getattr(self.state.experiment.training.instruments, name), key)

    def _instrument_writer(self, name: str | None, key: str) -> Any:
        """An edit of ``training.instruments`` (left out of the experiment at its defaults: filled in
        first), one undoable step; a refused value is marked at its field."""
        path = "training.instruments." + (f"{name}.{key}" if name else key)
        label, _ = field_help(path)

        def write(value: Any) -> str | None:
            def change(d: dict) -> None:
                instruments = d["training"].setdefault("instruments", InstrumentsSpec().to_dict())
                (instruments.setdefault(name, {}) if name else instruments)[key] = value

            if key == "enabled":
                text = f"Turn the {label.split(' λ')[0].lower()} instrument {'on' if value else 'off'}"
            else:
                text = f"Change {label.lower()}"
            return edit(self.state, path, change, text)

        return write
