"""Field widgets bound to paths of the one ``ExperimentState`` (model / view).

A field widget shows a value and emits ``edited(value)`` when the *user* changes it; it never
decides whether the value is valid. The :class:`Binder` writes edits through the state
(``set_field`` or a custom writer, both undoable), refreshes every widget from the state when
it changes, and marks a field whose value was refused with the validator's message (red
border, tooltip and an inline label). A refused value stays in the widget so the user can fix
it; Escape puts the field back to the state's value.

Numbers follow the user's locale (``QLocale``): ``0,001`` in German, ``0.001`` in English,
and ``1e-3`` everywhere; text that is not a number is passed on as text, so the validator
names the problem (``must be a finite number, got 'abc'``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QLocale, QObject, Qt, Signal
from PySide6.QtGui import QFocusEvent, QKeyEvent, QValidator
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.monitor import applies_live

from ..state import ExperimentState

INT_MAX = 2**31 - 1

# Applied to each editor panel: only widgets marked invalid are restyled, the rest keep the
# platform look.
ERROR_STYLE = """
*[invalid="true"] { border: 2px solid #d32f2f; border-radius: 3px; }
QLabel[role="error"] { color: #d32f2f; }
QLabel[role="warning"] { color: #b26a00; font-weight: bold; }
"""


# ----------------------------------------------------------------------------- numbers


def _locale() -> QLocale:
    locale = QLocale()
    locale.setNumberOptions(QLocale.NumberOption.RejectGroupSeparator)
    return locale


def parse_number(text: str, kind: str) -> int | float | None:
    """``text`` as ``kind`` (``"int"`` or ``"float"``) in the user's locale, then in C; None if
    it is not a number. An int field given ``3.5`` returns the float so the validator can say
    "must be an integer, got 3.5"."""
    text = text.strip()
    if not text:
        return None
    for locale in (_locale(), QLocale.c()):
        if kind == "int":
            value, ok = locale.toLongLong(text)
            if ok:
                return int(value)
        value, ok = locale.toDouble(text)
        if ok:
            return int(value) if kind == "int" and value.is_integer() and "e" not in text.lower() else float(value)
    return None


def format_number(value: Any) -> str:
    """A number as the user's locale writes it (shortest form, no grouping)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    text = format(value, ".12g")
    point = _locale().decimalPoint()
    return text.replace(".", point) if point != "." else text


def _list_separator() -> str:
    return "; " if _locale().decimalPoint() == "," else ", "


def parse_list(text: str, kind: str) -> list[Any]:
    """Items separated by ``;``, spaces or (where it is not the decimal point) commas."""
    pattern = r"[;\s]+" if _locale().decimalPoint() == "," else r"[;,\s]+"
    items = [t for t in re.split(pattern, text.strip()) if t]
    out: list[Any] = []
    for item in items:
        number = parse_number(item, "int" if kind == "mixed" else kind)
        if kind == "mixed" and (number is None or isinstance(number, float)):
            out.append(item)
        else:
            out.append(item if number is None else number)
    return out


def format_list(values: Iterable[Any] | None) -> str:
    if values is None:
        return ""
    return _list_separator().join(format_number(v) for v in values)


# ----------------------------------------------------------------------------- error marking


def mark(widget: QWidget, message: str | None, tooltip: str = "") -> None:
    """Red border and the message as tooltip while ``message`` is set; the plain tooltip otherwise."""
    invalid = message is not None
    if bool(widget.property("invalid")) != invalid:
        widget.setProperty("invalid", invalid)
        widget.style().unpolish(widget)
        widget.style().polish(widget)
        widget.update()
    widget.setToolTip(f"<b>{escape(message)}</b><br>{escape(tooltip)}" if invalid else tooltip)


def escape(text: Any) -> str:
    """Plain text for a rich-text label or tooltip."""
    return ("" if text is None else str(text)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def vbox(*widgets: QWidget) -> QVBoxLayout:
    layout = QVBoxLayout()
    for widget in widgets:
        layout.addWidget(widget)
    return layout


def short_message(path: str, message: str) -> str:
    """The validator's message without the field path it starts with (shown next to the field)."""
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def error_label() -> QLabel:
    label = QLabel()
    label.setProperty("role", "error")
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.hide()
    return label


def hint_label(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setProperty("role", "hint")
    label.setWordWrap(True)
    return label


# ----------------------------------------------------------------------------- field widgets


class NumberEdit(QLineEdit):
    """A number (``kind`` "int" or "float"), a list of numbers ("int_list", "float_list",
    "mixed_list") or text ("text"). ``optional`` fields may be left empty (``None``)."""

    edited = Signal(object)
    reverted = Signal()

    def __init__(self, kind: str = "float", optional: bool = False, placeholder: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = kind
        self.optional = optional
        self._shown = ""
        if placeholder:
            self.setPlaceholderText(placeholder)
        if kind in ("int", "float"):
            self.setMaximumWidth(160)
        self.editingFinished.connect(self._finish)

    def set_value(self, value: Any) -> None:
        if self.kind.endswith("_list"):
            text = format_list(value)
        elif self.kind == "text":
            text = "" if value is None else str(value)
        else:
            text = format_number(value)
        self._shown = text
        if self.text() != text:
            self.setText(text)
            self.setCursorPosition(0)

    def value(self) -> Any:
        text = self.text().strip()
        if self.kind == "text":
            return self.text()
        if self.kind.endswith("_list"):
            if not text and self.optional:
                return None
            return parse_list(text, self.kind[: -len("_list")])
        if not text:
            return None if self.optional else ""
        number = parse_number(text, self.kind)
        return text if number is None else number

    def _finish(self) -> None:
        if self.text() != self._shown:
            self._shown = self.text()
            self.edited.emit(self.value())

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt override)
        if event.key() == Qt.Key.Key_Escape and (self.isModified() or self.property("invalid")):
            self.reverted.emit()
            event.accept()
            return
        super().keyPressEvent(event)


class IntSpin(QSpinBox):
    """An integer with arrows; the range is wide on purpose so that a refused value (``-5``) can
    be typed and shown with the validator's message instead of being silently clamped."""

    edited = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._unread: int | float | None = None      # see valueFromText
        self.setRange(-INT_MAX, INT_MAX)
        self.setKeyboardTracking(False)
        self.setCorrectionMode(QAbstractSpinBox.CorrectionMode.CorrectToPreviousValue)
        self.setMaximumWidth(160)
        self._updating = False
        self.valueChanged.connect(self._changed)

    def sizeHint(self):  # noqa: N802 (Qt override): the huge range would make it very wide
        hint = super().sizeHint()
        hint.setWidth(min(hint.width(), self.fontMetrics().horizontalAdvance("0" * 9) + 40))
        return hint

    def minimumSizeHint(self):  # noqa: N802 (Qt override)
        hint = super().minimumSizeHint()
        hint.setWidth(min(hint.width(), self.fontMetrics().horizontalAdvance("0" * 6) + 30))
        return hint

    def set_value(self, value: Any) -> None:
        self._updating = True
        self._unread = None
        try:
            self.setValue(int(value))
        finally:
            self._updating = False

    def _changed(self, value: int) -> None:
        if not self._updating:
            self.edited.emit(value)

    # A QSpinBox drops a keystroke its validator calls invalid: "2.5" typed became 25 without a
    # word. A number it cannot read is kept as typed (and counts as input a table cell may commit)
    # and, when the edit ends, goes to the experiment's validator as it is, which says "must be an
    # integer, got 2.5" at the field; the spin box's own value stays what it was.
    def validate(self, text: str, pos: int) -> object:  # noqa: D102 (Qt override)
        if not self._reads(text) and parse_number(self._typed(text), "float") is not None:
            return QValidator.State.Acceptable, text, pos
        return super().validate(text, pos)

    def valueFromText(self, text: str) -> int:  # noqa: N802 (Qt override)
        # A table cell's delegate interprets the text before it commits, which shows the value
        # again: what was typed is kept for ``not_an_integer``.
        self._unread = None if self._reads(text) else parse_number(self._typed(text), "int")
        return self.value() if self._unread is not None else super().valueFromText(text)

    def not_an_integer(self) -> int | float | None:
        """The number typed, when the spin box itself cannot read it ("2.5"; "2.0" is 2); else None."""
        text = self.lineEdit().text()
        return self._unread if self._reads(text) else parse_number(self._typed(text), "int")

    def _reads(self, text: str) -> bool:
        result = super().validate(text, 0)
        return (result[0] if isinstance(result, tuple) else result) != QValidator.State.Invalid

    def _typed(self, text: str) -> str:
        text = text.strip()
        prefix, suffix = self.prefix(), self.suffix()
        if prefix and text.startswith(prefix):
            text = text[len(prefix):]
        if suffix and text.endswith(suffix):
            text = text[:-len(suffix)]
        return text

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt override)
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self._finish_not_an_integer():
            return
        super().keyPressEvent(event)

    def focusOutEvent(self, event: QFocusEvent) -> None:  # noqa: N802 (Qt override)
        self._finish_not_an_integer()
        super().focusOutEvent(event)

    def _finish_not_an_integer(self) -> bool:
        number = self.not_an_integer()
        if number is None:
            return False
        if not self._updating:
            self.edited.emit(number)
        return True


class ChoiceCombo(QComboBox):
    """A fixed choice: items are ``(value, label, tooltip)``; ``edited`` carries the value."""

    edited = Signal(object)

    def __init__(self, items: Sequence[tuple[Any, str, str]] = (), parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._values: list[Any] = []
        self._updating = False
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.set_items(items)
        self.currentIndexChanged.connect(self._changed)

    def set_items(self, items: Sequence[tuple[Any, str, str]]) -> None:
        self._updating = True
        try:
            self.clear()
            self._values = []
            for value, label, tip in items:
                self.addItem(label)
                self.setItemData(self.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
                self._values.append(value)
        finally:
            self._updating = False

    def index_of(self, value: Any) -> int:
        for i, v in enumerate(self._values):
            if type(v) is type(value) and v == value:
                return i
        return -1

    def set_value(self, value: Any) -> None:
        self._updating = True
        try:
            self.setCurrentIndex(self.index_of(value))
        finally:
            self._updating = False

    def value(self) -> Any:
        i = self.currentIndex()
        return self._values[i] if 0 <= i < len(self._values) else None

    def item_tooltip(self) -> str:
        tip = self.itemData(self.currentIndex(), Qt.ItemDataRole.ToolTipRole)
        return str(tip) if tip else ""

    def _changed(self, _index: int) -> None:
        if not self._updating:
            self.edited.emit(self.value())


class CheckField(QCheckBox):
    edited = Signal(object)

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self._updating = False
        self.toggled.connect(self._changed)

    def set_value(self, value: Any) -> None:
        self._updating = True
        try:
            self.setChecked(bool(value))
        finally:
            self._updating = False

    def value(self) -> bool:
        return self.isChecked()

    def _changed(self, checked: bool) -> None:
        if not self._updating:
            self.edited.emit(checked)


# ----------------------------------------------------------------------------- binding


@dataclass(eq=False)
class Field:
    """One widget bound to one spec path."""

    path: str
    widget: Any
    read: Callable[[], Any]
    write: Callable[[Any], Any]
    tooltip: str = ""
    label: QLabel | None = None          # the inline error label
    on_refresh: Callable[[], None] | None = None
    live_note: str = ""                  # while a run is live: whether an edit here applies to it

    def current_tooltip(self) -> str:
        if isinstance(self.widget, ChoiceCombo):
            item = self.widget.item_tooltip()
            tip = f"{item}<br><br>{escape(self.tooltip)}" if item and self.tooltip else item or self.tooltip
        else:
            tip = self.tooltip
        if not self.live_note:
            return tip
        if "<" in tip:                   # rich text: the note as a paragraph of it
            return f"<b>{escape(self.live_note)}</b><br><br>{tip}" if tip else escape(self.live_note)
        return f"{self.live_note}\n\n{tip}" if tip else self.live_note


#: What a field's tooltip says while a run is live (``Binder.set_run_live``).
LIVE_APPLIES = "⚡ Applies to the running run from its next batch."
LIVE_WAITS = ("A run is live: this edit waits for the next run (Train then starts a new model from "
              "fresh weights); the running one goes on as it was.")


class Binder(QObject):
    """The fields of one panel: writes go through the state, reads come from it."""

    def __init__(self, state: ExperimentState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.fields: list[Field] = []
        self._marked: set[Field] = set()
        self.run_live = False

    def set_run_live(self, live: bool) -> None:
        """While a run is live, every field's tooltip says whether an edit of it applies to that
        run (learning rate, schedule, unfreezing) or waits for the next one."""
        self.run_live = live
        for field in self.fields:
            self._note_live(field)
            self._mark(field, self.state.errors.get(field.path) if field in self._marked else None)

    def _note_live(self, field: Field) -> None:
        if not self.run_live:
            field.live_note = ""
        else:
            field.live_note = LIVE_APPLIES if applies_live(field.path) else LIVE_WAITS

    def bind(self, widget: Any, path: str, *, read: Callable[[], Any] | None = None,
             write: Callable[[Any], Any] | None = None, tooltip: str = "", label: QLabel | None = None,
             default: Any = None, text: str | None = None) -> Field:
        """Bind ``widget`` (a field widget with ``set_value`` / ``edited``) to ``path``.

        By default the value is ``state.get(path)`` (``default`` when the path is absent, as for
        a hyperparameter left at its default) and an edit is ``state.set_field(path, value)``.
        """
        state = self.state

        def default_read() -> Any:
            try:
                return state.get(path)
            except (KeyError, IndexError, TypeError):
                return default

        def default_write(value: Any) -> Any:
            return state.set_field(path, value, text or f"Change {path}")

        field = Field(path, widget, read or default_read, write or default_write, tooltip, label)
        self._note_live(field)
        widget.edited.connect(lambda value, f=field: self._edited(f, value))
        if isinstance(widget, NumberEdit):
            widget.reverted.connect(lambda f=field: self.revert(f))
        self.fields.append(field)
        self.refresh_field(field)
        self._mark(field, state.errors.get(path))
        return field

    def unbind(self, fields: Iterable[Field]) -> None:
        drop = set(fields)
        self.fields = [f for f in self.fields if f not in drop]
        self._marked -= drop

    def refresh(self) -> None:
        for field in list(self.fields):
            self.refresh_field(field)

    def refresh_field(self, field: Field) -> None:
        if field.path not in self.state.errors:
            field.widget.set_value(field.read())
        if field.on_refresh is not None:
            field.on_refresh()
        if field not in self._marked:
            field.widget.setToolTip(field.current_tooltip())

    def show_errors(self, errors: dict[str, str] | None = None) -> None:
        errors = self.state.errors if errors is None else errors
        for field in list(self.fields):
            message = errors.get(field.path)
            was_marked = field in self._marked
            self._mark(field, message)
            if was_marked and message is None:
                self.refresh_field(field)  # the refused text gives way to the state's value

    def revert(self, field: Field) -> None:
        """Escape: forget the refused value and show the state's again."""
        self.state.clear_error(field.path)
        field.widget.set_value(field.read())
        self._mark(field, None)

    def _edited(self, field: Field, value: Any) -> None:
        field.write(value)
        # A refused edit leaves the state unchanged and only errors_changed fires: the field
        # keeps the typed value and is marked. An accepted one refreshes through `changed`.
        self._mark(field, self.state.errors.get(field.path))

    def _mark(self, field: Field, message: str | None) -> None:
        if message is None:
            self._marked.discard(field)
        else:
            self._marked.add(field)
        mark(field.widget, message, field.current_tooltip())
        if field.label is not None:
            field.label.setText(short_message(field.path, message or ""))
            field.label.setVisible(message is not None)


def clear_errors(state: ExperimentState, prefix: str, keep: Iterable[str] = ()) -> None:
    """Forget refused values of the fields under ``prefix`` (after an edit made them moot:
    another optimizer, a deleted layer...)."""
    keep = set(keep)
    for path in [p for p in state.errors if p.startswith(prefix) and p not in keep]:
        state.clear_error(path)


def edit(state: ExperimentState, error_path: str, change: Callable[[dict], None], text: str) -> str | None:
    """A compound edit: ``change`` modifies a copy of the canonical dict, applied as one undo step;
    a refusal is kept under ``error_path``."""
    data = state.data
    change(data)
    return state.replace_data(data, text, error_path=error_path)


def add_row(form: QFormLayout, label: str, widget: QWidget, tooltip: str = "") -> tuple[QLabel, QLabel]:
    """A form row with a label, the widget and, under it, a hidden inline error label."""
    caption = QLabel(label)
    caption.setToolTip(tooltip)
    caption.setBuddy(widget)
    form.addRow(caption, widget)
    err = error_label()
    form.addRow(err)
    return caption, err


def new_form() -> QFormLayout:
    form = QFormLayout()
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
    form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
    form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return form


# ----------------------------------------------------------------------------- tab order


def _layout_widgets(layout: QLayout) -> list[QWidget]:
    items = []
    if isinstance(layout, QFormLayout):
        for row in range(layout.rowCount()):
            for role in (QFormLayout.ItemRole.LabelRole, QFormLayout.ItemRole.FieldRole,
                         QFormLayout.ItemRole.SpanningRole):
                item = layout.itemAt(row, role)
                if item is not None:
                    items.append(item)
    elif isinstance(layout, QGridLayout):
        positioned = []
        for i in range(layout.count()):
            row, col, _, _ = layout.getItemPosition(i)
            positioned.append((row, col, i))
        items = [layout.itemAt(i) for _, _, i in sorted(positioned)]
    else:
        items = [layout.itemAt(i) for i in range(layout.count())]
    out: list[QWidget] = []
    for item in items:
        if item.widget() is not None:
            out.extend(_focus_chain(item.widget()))
        elif item.layout() is not None:
            out.extend(_layout_widgets(item.layout()))
    return out


def _focus_chain(widget: QWidget) -> list[QWidget]:
    # Hidden widgets stay in the chain: Qt skips them while hidden and they are in place when shown.
    takes_tab = bool(widget.focusPolicy() & Qt.FocusPolicy.TabFocus)
    layout = widget.layout()
    if takes_tab or layout is None:
        return [widget] if takes_tab else []
    return _layout_widgets(layout)


def fix_tab_order(root: QWidget) -> None:
    """Tab goes through the panel's fields in the order they are laid out (fields added later,
    such as an optimizer's hyperparameters, would otherwise come last)."""
    chain = _focus_chain(root) if root.layout() is not None else []
    for a, b in zip(chain, chain[1:], strict=False):
        QWidget.setTabOrder(a, b)
