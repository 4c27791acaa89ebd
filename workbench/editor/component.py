"""A registry choice and its hyperparameters: the optimizer, the schedule, an initializer, a
dataset. The choice list is built from the registry (a newly registered class appears by
itself, its ``summary`` as tooltip) and only the chosen class's ``parameters()`` get fields, each
labelled and explained by the class's own ``hyperparameter(name)`` help."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from PySide6.QtWidgets import QWidget

from core.engine.schedules import MONITORS

from .fields import Binder, CheckField, ChoiceCombo, Field, IntSpin, NumberEdit, add_row, edit, error_label, new_form
from .help import MONITOR_TIPS, parameter_help, summary_of

# String hyperparameters with a fixed set of values (anything else gets a text field and the
# validator's message if it is wrong).
CHOICES: dict[str, Sequence[str]] = {"monitor": MONITORS}


def parameter_kind(cls: type, name: str, default: Any) -> str:
    """The field kind of a hyperparameter, from its annotation (``"float | None"``,
    ``"Sequence[int]"``...) or, failing that, its default."""
    try:
        annotation = inspect.signature(cls.__init__).parameters[name].annotation  # type: ignore[misc]
    except (KeyError, ValueError, TypeError):
        annotation = inspect.Parameter.empty
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    text = text.replace(" ", "")
    if name in CHOICES:
        return "choice"
    if text.startswith("Sequence[int]") or text.startswith("list[int]"):
        return "int_list"
    if text.startswith("Sequence[float]") or text.startswith("list[float]"):
        return "float_list"
    if text.startswith("list") or text.startswith("Sequence"):
        return "mixed_list"
    if text in ("float|None", "None|float"):
        return "optional_float"
    if text == "bool" or isinstance(default, bool):
        return "bool"
    if text == "int" or isinstance(default, int):
        return "int"
    if text == "float" or isinstance(default, float):
        return "float"
    return "text"


def make_widget(kind: str, name: str) -> Any:
    if kind == "int":
        return IntSpin()
    if kind == "float":
        return NumberEdit("float")
    if kind == "optional_float":
        return NumberEdit("float", optional=True, placeholder="auto")
    if kind in ("int_list", "float_list"):
        return NumberEdit(kind)
    if kind == "mixed_list":
        return NumberEdit(kind, optional=True, placeholder="all")
    if kind == "bool":
        return CheckField()
    if kind == "choice":
        return ChoiceCombo([(c, c, MONITOR_TIPS.get(c, "")) for c in CHOICES[name]])
    return NumberEdit("text")


class ComponentEditor(QWidget):
    """A form: the registry choice, then one row per hyperparameter of the chosen class.

    ``extra`` choices (name, text, tooltip) follow the registry's; those named in ``extra_classes``
    get rows for their class's hyperparameters too (an image folder's size). The caller says how
    to read the section (``read() -> (name, params)``), how to change the
    choice (``set_name``), where the hyperparameters sit in the canonical dict (``params_at(d)``
    returns that mutable dict) and under which spec path a hyperparameter's errors are kept
    (``param_path``); the fields are bound through the panel's ``binder``.

    Hyperparameters that constrain each other (piecewise ``boundaries`` and ``values``) cannot
    always be changed one at a time, so an edit also carries the values still refused in the
    other fields of the same component: typing the matching second list fixes both.
    """

    def __init__(self, binder: Binder, registry: Any, *, family: str, name_path: str, label: str,
                 tooltip: str, read: Callable[[], tuple[str, dict[str, Any]]], set_name: Callable[[str], Any],
                 params_at: Callable[[dict], dict], param_path: Callable[[str], str],
                 extra: Sequence[tuple[str, str, str]] = (), extra_classes: Mapping[str, type] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.binder = binder
        self.registry = registry
        self.extra_classes = dict(extra_classes or {})   # the classes of ``extra`` choices that take parameters
        self.family = family
        self._read, self._params_at, self._param_path = read, params_at, param_path
        self.form = new_form()
        self.form.setContentsMargins(0, 0, 0, 0)
        self.setLayout(self.form)
        items = [(name, name, summary_of(registry, name)) for name in registry.names()]
        self.combo = ChoiceCombo([*items, *extra])
        self.combo.setObjectName(f"{name_path}")
        _, err = add_row(self.form, label, self.combo, tooltip)
        self.name_field = binder.bind(self.combo, name_path, read=lambda: self._read()[0], write=set_name,
                                      tooltip=tooltip, label=err)
        self.param_fields: list[Field] = []
        self.param_widgets: dict[str, Any] = {}
        self._built_for: str | None = None
        self.sync()

    @property
    def name(self) -> str:
        return self._read()[0]

    def set_name_path(self, path: str) -> None:
        """The edited component moved (another layer selected): new paths, rows rebuilt at ``sync``."""
        self.name_field.path = path
        self.combo.setObjectName(path)
        self._built_for = None

    def sync(self) -> bool:
        """Rebuild the hyperparameter rows if the chosen class changed; True if it did."""
        name = self._read()[0]
        if name == self._built_for:
            return False
        self._built_for = name
        for field in self.param_fields:
            self.form.removeRow(field.widget)
            if field.label is not None:
                self.form.removeRow(field.label)
        self.binder.unbind(self.param_fields)
        self.param_fields, self.param_widgets = [], {}
        cls = self.registry.get(name) if name in self.registry else self.extra_classes.get(name)
        if cls is None:
            return True
        row, _ = self.form.getWidgetPosition(self.combo)
        row += 2  # after the choice and its error label
        for key, default in cls.parameters().items():
            kind = parameter_kind(cls, key, default)
            widget = make_widget(kind, key)
            widget.setObjectName(self._param_path(key))
            caption, tip = parameter_help(cls, key)
            err = error_label()
            self.form.insertRow(row, caption, widget)
            self.form.insertRow(row + 1, err)
            self.form.labelForField(widget).setToolTip(tip)
            # Shown now rather than at the next event-loop pass (as a layout would): the tab
            # order and anyone looking at the panel see the new rows at once.
            widget.show()
            self.form.labelForField(widget).show()
            row += 2
            field = self.binder.bind(
                widget, self._param_path(key),
                read=lambda k=key, d=default: _plain(self._read()[1].get(k, d)),
                write=lambda value, k=key: self.write_param(k, value), tooltip=tip, label=err)
            self.param_fields.append(field)
            self.param_widgets[key] = widget
        return True


    def write_param(self, key: str, value: Any) -> str | None:
        """One undoable edit of ``key``, together with the other fields' refused values."""
        state = self.binder.state
        values = {k: f.widget.value() for k, f in zip(self.param_widgets, self.param_fields, strict=True)
                  if k != key and f.path in state.errors}
        values[key] = value
        message = edit(state, self._param_path(key), lambda d: self._params_at(d).update(values),
                       f"Change {self.family} {key}")
        if message is None:
            for k in values:
                state.clear_error(self._param_path(k))
        return message


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
