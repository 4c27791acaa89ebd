"""The Model panel: the layer table (one row per hidden layer, edited in place), layer
operations, the selected layer's initializer and activation parameters, input dropout, the
output layer, and a live count of parameters per layer with the book's overfitting warning."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QEvent, QLocale, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QAction, QBrush, QColor, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.data import IMPORTERS
from core.engine.activations import ACTIVATIONS
from core.engine.initializers import INITIALIZERS
from core.engine.losses import LOSSES
from core.spec import MAX_LAYERS, Experiment, LayerSpec

from ..state import ExperimentState
from .component import ComponentEditor
from .dataset_info import DataFacts, DataInfo
from .fields import (
    ChoiceCombo,
    IntSpin,
    NumberEdit,
    add_row,
    clear_errors,
    edit,
    escape,
    format_number,
    new_form,
    parse_number,
    short_message,
)
from .help import BATCH_NORM, field_help, summary_of
from .panel import Panel

PARAMETER_WARNING = 1_000_000
ERROR_BRUSH = QBrush(QColor(211, 47, 47, 80))

# Columns of the layer table: key in the row's JSON (``param`` is the activation's first
# hyperparameter, e.g. α; ``count`` is derived), header, tooltip.
COLUMNS: list[tuple[str, str, str]] = [
    ("units", "Units", "Neurons in this Dense layer."),
    ("init", "Init", "How the kernel is initialized; match it to the activation (Table 11-1): He for ReLU "
                     "variants and ELU, Glorot for tanh / logistic, LeCun for SELU."),
    ("activation", "Act.", "The activation function; the book's ranking: SELU > ELU > leaky ReLU > ReLU > tanh > "
                                 "logistic."),
    ("param", "α", "The activation's parameter (α of ELU and leaky ReLU); empty when it has none."),
    ("batch_norm", "BN", "Batch normalization (Eq. 11-3): zero-centre and normalize each input over "
                                 "the batch, then scale and shift; the book adds it to deep nets."),
    ("dropout", "Drop", "Dropout: fraction of this layer's outputs dropped at each training step "
                        "(10-50 % is typical)."),
    ("use_bias", "Bias", "Add a bias vector (redundant right before batch norm)."),
    ("count", "Params", "Trainable parameters: kernel fan_in × units, bias units, batch norm γ and β."),
]
COL = {key: i for i, (key, _, _) in enumerate(COLUMNS)}

#: The selected layer's dropout type (its rate is the table's Drop column).
DROPOUT_CHOICES = [
    ("standard", "standard (inverted)", "Ordinary dropout: a dropped unit outputs 0 and the kept ones are scaled by "
                                        "1/(1 − rate), which keeps the mean but not the variance."),
    ("alpha", "alpha (for SELU)", "Alpha dropout (Klambauer et al.): a dropped unit is set to SELU's saturation "
                                  "value −λα and an affine correction keeps the mean and variance of SELU's "
                                  "outputs, so self-normalization survives it."),
]
DROPOUT_TYPE_TIP = ("Which dropout this layer applies at its Drop rate (no effect at rate 0). The book: ordinary "
                    "dropout would break self-normalization; use alpha dropout in a SELU network.")
BN_SHORT = {"before_activation": "before", "after_activation": "after", False: "—"}


# ----------------------------------------------------------------------------- counting


def layer_parameter_count(fan_in: int, layer: LayerSpec) -> int:
    """Kernel, bias and batch-norm γ / β of one hidden layer (the moving statistics are not trained)."""
    count = fan_in * layer.units
    if layer.use_bias:
        count += layer.units
    if layer.batch_norm:
        count += 2 * layer.units
    return count


def parameter_counts(experiment: Experiment, n_inputs: int | None, n_outputs: int | None) -> list[int | None]:
    """Trainable parameters per hidden layer, then the output layer; ``None`` where a width is unknown."""
    counts: list[int | None] = []
    fan_in = n_inputs
    for layer in experiment.model.layers:
        counts.append(None if fan_in is None else layer_parameter_count(fan_in, layer))
        fan_in = layer.units
    counts.append(None if n_outputs is None or fan_in is None else fan_in * n_outputs + n_outputs)
    return counts


@functools.cache
def _activation_param(name: str) -> str | None:
    """The activation's first hyperparameter (α), asked for every painted cell: cached, since
    ``parameters()`` inspects the signature each time."""
    params = list(ACTIVATIONS.get(name).parameters())
    return params[0] if params else None


def _init_text(init: Any) -> str:
    if isinstance(init, str):
        return init
    params = ", ".join(f"{k}={format_number(v)}" for k, v in init.items() if k != "name")
    return f"{init['name']}({params})" if params else init["name"]


# ----------------------------------------------------------------------------- the table model


class LayerTableModel(QAbstractTableModel):
    """The hidden layers of the state's experiment as table rows.

    Reads come from ``state.experiment``; writes are undoable state edits. A refused value is
    shown in its cell (red, the validator's message as tooltip) until it is fixed or reverted.
    """

    def __init__(self, state: ExperimentState, info: DataInfo, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.info = info
        self._rows = len(state.experiment.model.layers)
        self._pending: dict[str, Any] = {}
        self.counts: list[int | None] = []
        self._recount()

    # ---- reading

    def layers(self) -> tuple[LayerSpec, ...]:
        return self.state.experiment.model.layers

    def path(self, row: int, column: int) -> str:
        key = COLUMNS[column][0]
        if key == "param":
            name = _activation_param(self.layers()[row].activation)
            key = name or "param"
        return f"model.layers[{row}].{key}"

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else self._rows

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(COLUMNS)

    def value(self, row: int, key: str) -> Any:
        layer = self.layers()[row]
        if key == "init":
            return layer.init_name
        if key == "param":
            name = _activation_param(layer.activation)
            return None if name is None else layer.activation_params.get(name)
        if key == "count":
            return self.counts[row] if row < len(self.counts) else None
        return getattr(layer, key)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.layers()):
            return None
        row, key = index.row(), COLUMNS[index.column()][0]
        path = self.path(row, index.column())
        error = self.state.errors.get(path)
        if role == Qt.ItemDataRole.DisplayRole:
            if error is not None and path in self._pending:
                return str(self._pending[path])
            return self._display(row, key)
        if role == Qt.ItemDataRole.EditRole:
            return self.value(row, key)
        if role == Qt.ItemDataRole.CheckStateRole and key == "use_bias":
            return Qt.CheckState.Checked if self.value(row, key) else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.BackgroundRole and error is not None:
            return ERROR_BRUSH
        if role == Qt.ItemDataRole.ToolTipRole:
            if error is not None:
                return f"<b>{escape(error)}</b>"
            layer = self.layers()[row]
            if key == "init":
                return f"{escape(_init_text(layer.init))}: {summary_of(INITIALIZERS, layer.init_name)}"
            if key == "activation":
                return summary_of(ACTIVATIONS, layer.activation)
            if key == "param" and (param := _activation_param(layer.activation)) is not None:
                documented = ACTIVATIONS.get(layer.activation).hyperparameter(param)
                if documented is not None:
                    return documented.help
            return COLUMNS[index.column()][2]
        if role == Qt.ItemDataRole.TextAlignmentRole and key in ("units", "param", "dropout", "count"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _display(self, row: int, key: str) -> str:
        layer = self.layers()[row]
        if key == "init":
            return _init_text(layer.init)
        if key == "batch_norm":
            return BN_SHORT.get(layer.batch_norm, str(layer.batch_norm))
        if key == "use_bias":
            return ""
        if key == "count":
            count = self.value(row, key)
            return "?" if count is None else QLocale().toString(count)
        value = self.value(row, key)
        return "" if value is None else format_number(value)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 (Qt override)
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return COLUMNS[section][1]
            if role == Qt.ItemDataRole.ToolTipRole:
                return COLUMNS[section][2]
        elif role == Qt.ItemDataRole.DisplayRole:
            return str(section + 1)
        elif role == Qt.ItemDataRole.ToolTipRole:
            return f"Hidden layer {section + 1} (layer 1 is next to the input)"
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        key = COLUMNS[index.column()][0]
        if key == "count":
            return base
        if key == "param" and _activation_param(self.layers()[index.row()].activation) is None:
            return base
        if key == "use_bias":
            return base | Qt.ItemFlag.ItemIsUserCheckable
        return base | Qt.ItemFlag.ItemIsEditable

    # ---- writing

    def setData(self, index: QModelIndex | QPersistentModelIndex, value: Any,  # noqa: N802 (Qt override)
                role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid():
            return False
        row, key = index.row(), COLUMNS[index.column()][0]
        if role == Qt.ItemDataRole.CheckStateRole and key == "use_bias":
            value = Qt.CheckState(value) == Qt.CheckState.Checked
        elif role != Qt.ItemDataRole.EditRole:
            return False
        path = self.path(row, index.column())
        n = row + 1
        if key == "activation":
            message = self.set_activation(row, value)
        elif key == "init":
            message = write_init(self.state, path, lambda d: d["model"]["layers"][row], value)
        else:
            message = self.state.set_field(path, value, f"Layer {n}: {COLUMNS[index.column()][1].lower()}")
        if message is not None:
            self._pending[path] = value
        else:
            self._pending.pop(path, None)
        self.dataChanged.emit(index, index)
        return True

    def set_activation(self, row: int, name: Any) -> str | None:
        """Another activation: the old one's parameters go (ELU's α = 1 is not leaky ReLU's)."""
        old = set(ACTIVATIONS.get(self.layers()[row].activation).parameters())

        def change(d: dict) -> None:
            layer = d["model"]["layers"][row]
            for key in old:
                layer.pop(key, None)
            layer["activation"] = name

        message = edit(self.state, f"model.layers[{row}].activation", change, f"Layer {row + 1}: {name}")
        if message is None:
            for key in old:
                clear_errors(self.state, f"model.layers[{row}].{key}")
        return message

    # ---- following the state

    def sync(self) -> None:
        """The state changed: reset if the number of rows did, else repaint every cell."""
        self._recount()
        rows = len(self.layers())
        self._pending = {p: v for p, v in self._pending.items() if p in self.state.errors}
        if rows != self._rows:
            self.beginResetModel()
            self._rows = rows
            self.endResetModel()
        elif rows:
            self.dataChanged.emit(self.index(0, 0), self.index(rows - 1, len(COLUMNS) - 1))

    def _recount(self) -> None:
        experiment = self.state.experiment
        facts: DataFacts = self.info.facts
        self.counts = parameter_counts(experiment, facts.n_features,
                                       facts.output_width(experiment.model.output.loss))


def write_init(state: ExperimentState, path: str, owner: Callable[[dict], dict], name: str) -> str | None:
    """Another initializer (with its default parameters) for the layer or output ``owner(d)``."""
    message = edit(state, path, lambda d: owner(d).__setitem__("init", name), f"Init: {name}")
    if message is None:
        clear_errors(state, f"{path}.")
    return message



# ----------------------------------------------------------------------------- editors in the cells


class LayerDelegate(QStyledItemDelegate):
    """Spin box for units, registry combo boxes for init and activation, a choice for batch
    norm, locale-aware number fields for α and dropout. A combo box commits on selection."""

    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem,  # noqa: N802 (Qt override)
                     index: QModelIndex | QPersistentModelIndex) -> QWidget:
        key = COLUMNS[index.column()][0]
        if key == "units":
            spin = IntSpin(parent)          # keeps "2.5" as typed, for the validator's message
            spin.setMaximumWidth(16_777_215)
            spin.setFrame(False)
            return spin
        if key in ("init", "activation", "batch_norm"):
            if key == "batch_norm":
                items: Sequence[tuple[Any, str, str]] = BATCH_NORM
            else:
                registry = INITIALIZERS if key == "init" else ACTIVATIONS
                items = [(n, n, summary_of(registry, n)) for n in registry.names()]
            combo = ChoiceCombo(items, parent)
            combo.setObjectName(f"layer_{key}_editor")
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.edited.connect(lambda _value, c=combo: self._commit_now(c))
            return combo
        line = QLineEdit(parent)
        line.setFrame(False)
        return line

    def setEditorData(self, editor: QWidget, index: QModelIndex | QPersistentModelIndex) -> None:  # noqa: N802
        value = index.data(Qt.ItemDataRole.EditRole)
        if isinstance(editor, ChoiceCombo):
            editor.set_value(value)
        elif isinstance(editor, QSpinBox):
            shown = index.data(Qt.ItemDataRole.DisplayRole)
            number = parse_number(str(shown), "int")
            editor.setValue(int(number) if isinstance(number, int) else int(value))
        elif isinstance(editor, QLineEdit):
            editor.setText(str(index.data(Qt.ItemDataRole.DisplayRole) or ""))
            editor.selectAll()

    def setModelData(self, editor: QWidget, model: Any,  # noqa: N802 (Qt override)
                     index: QModelIndex | QPersistentModelIndex) -> None:
        if isinstance(editor, ChoiceCombo):
            value = editor.value()
            if value == index.data(Qt.ItemDataRole.EditRole) and type(value) is type(
                    index.data(Qt.ItemDataRole.EditRole)):
                return
            model.setData(index, value)
        elif isinstance(editor, IntSpin) and (typed := editor.not_an_integer()) is not None:
            model.setData(index, typed)
        elif isinstance(editor, QSpinBox):
            editor.interpretText()
            model.setData(index, editor.value())
        elif isinstance(editor, QLineEdit):
            text = editor.text().strip()
            number = parse_number(text, "float")
            model.setData(index, text if number is None else float(number))

    def _commit_now(self, editor: QWidget) -> None:
        self.commitData.emit(editor)
        self.closeEditor.emit(editor, QStyledItemDelegate.EndEditHint.NoHint)


# ----------------------------------------------------------------------------- the panel


class ModelPanel(Panel):
    def __init__(self, state: ExperimentState, info: DataInfo, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.info = info

        # ---- the layer table and its operations
        layers = QVBoxLayout()
        layers.setContentsMargins(4, 4, 4, 4)  # every pixel goes to the table's columns
        self.table = QTableView()
        self.table.setObjectName("layerTable")
        self.model = LayerTableModel(state, info, self)
        self.table.setModel(self.model)
        self.table.setItemDelegate(LayerDelegate(self.table))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                   | QAbstractItemView.EditTrigger.SelectedClicked
                                   | QAbstractItemView.EditTrigger.EditKeyPressed
                                   | QAbstractItemView.EditTrigger.AnyKeyPressed)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self._size_columns()
        self.table.setMinimumHeight(170)
        # Tab leaves the table for the panel's next field (the arrow keys move between cells):
        # with Tab moving from cell to cell a keyboard user could never get past it.
        self.table.setTabKeyNavigation(False)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)   # Add, Duplicate… on a right-click
        self.table.setToolTip("Hidden layers, input at the top. Double-click or type to edit a cell.")
        layers.addWidget(self.table, 1)

        self.layer_actions: dict[str, QAction] = {}
        buttons = QHBoxLayout()
        buttons.setSpacing(4)
        for key, text, shortcut, tip, slot in (
                # Insert, not Ctrl+Shift+N: that is File › New experiment from this model, and a key
                # bound twice where both are active does nothing in Qt ("ambiguous shortcut").
                ("add", "Add", "Ins", "Add a hidden layer (100 ELU units, He init) below the selected one",
                 self.add_layer),
                ("duplicate", "Duplicate", "Ctrl+D", "Insert a copy of the selected layer below it",
                 self.duplicate_layer),
                ("delete", "Delete", QKeySequence.StandardKey.Delete, "Delete the selected layer", self.delete_layer),
                ("up", "Up", "Alt+Up", "Move the selected layer towards the input", lambda: self.move_layer(-1)),
                ("down", "Down", "Alt+Down", "Move the selected layer towards the output",
                 lambda: self.move_layer(1))):
            action = QAction(text, self)
            action.setObjectName(f"layer_{key}")
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.setToolTip(f"{tip} ({action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})")
            action.triggered.connect(slot)
            self.table.addAction(action)       # the shortcuts work while the table has the focus
            self.layer_actions[key] = action
            button = QToolButton()
            button.setDefaultAction(action)
            button.setObjectName(f"layer_{key}_button")
            buttons.addWidget(button)
        buttons.addStretch(1)
        layers.addLayout(buttons)
        repeat = QHBoxLayout()
        repeat.setSpacing(4)
        self.repeat_count = QSpinBox()
        self.repeat_count.setObjectName("repeatCount")
        self.repeat_count.setRange(1, MAX_LAYERS)
        self.repeat_count.setValue(3)
        self.repeat_count.setToolTip("How many copies of the selected layer to add")
        self.repeat_button = QPushButton("Add N layers like this")
        self.repeat_button.setObjectName("addLayersLikeThis")
        self.repeat_button.setToolTip("Insert N copies of the selected layer below it (building a deep stack)")
        self.repeat_button.clicked.connect(lambda: self.add_like_this(self.repeat_count.value()))
        repeat.addWidget(QLabel("N ="))
        repeat.addWidget(self.repeat_count)
        repeat.addWidget(self.repeat_button)
        repeat.addStretch(1)
        layers.addLayout(repeat)
        self.table_error = QLabel()
        self.table_error.setObjectName("layerErrors")
        self.table_error.setProperty("role", "error")
        self.table_error.setWordWrap(True)
        self.table_error.hide()
        layers.addWidget(self.table_error)
        self.group("Hidden layers", layers)

        # ---- the selected layer's initializer and activation parameters
        self.detail_row = 0
        self.details = QVBoxLayout()
        self.init_editor = ComponentEditor(
            self.binder, INITIALIZERS, family="initializer", name_path="model.layers[0].init", label="Init",
            tooltip=COLUMNS[COL["init"]][2], read=self._read_init, set_name=self._set_init,
            params_at=lambda d: _init_dict(d["model"]["layers"][self.detail_row]),
            param_path=lambda k: f"model.layers[{self.detail_row}].init.{k}")
        self.components.append(self.init_editor)
        self.details.addWidget(self.init_editor)
        dropout_form = new_form()
        self.dropout_type = ChoiceCombo(DROPOUT_CHOICES)
        self.dropout_type.setObjectName("layerDropoutType")
        _, err = add_row(dropout_form, "Dropout type", self.dropout_type, DROPOUT_TYPE_TIP)
        self.binder.bind(self.dropout_type, "model.layers[0].dropout_type", tooltip=DROPOUT_TYPE_TIP, label=err,
                         read=lambda: self._layer().dropout_type, write=self._set_dropout_type)
        self.details.addLayout(dropout_form)
        self.detail_box = self.group("Selected layer", self.details,
                                     "The selected row's initializer with its parameters (e.g. the standard "
                                     "deviation of random_normal)")

        # ---- input and output
        form = new_form()
        label, tip = field_help("model.input_dropout")
        widget = NumberEdit("float")
        widget.setObjectName("model.input_dropout")
        _, err = add_row(form, label, widget, tip)
        self.binder.bind(widget, "model.input_dropout", tooltip=tip, label=err, text="Change input dropout")
        label, tip = field_help("model.output.loss")
        auto = ("auto", "auto (from the data)", "Softmax + cross-entropy for class labels, linear + MSE for float "
                                                "targets.")
        self.loss = ChoiceCombo([auto, *[(n, n, summary_of(LOSSES, n)) for n in LOSSES.names()]])
        self.loss.setObjectName("model.output.loss")
        _, err = add_row(form, label, self.loss, tip)
        self.binder.bind(self.loss, "model.output.loss", tooltip=tip, label=err, text="Change output loss")
        io_box = QVBoxLayout()
        io_box.addLayout(form)
        label, tip = field_help("model.output.init")
        self.output_init = ComponentEditor(
            self.binder, INITIALIZERS, family="initializer", name_path="model.output.init", label=label,
            tooltip=tip, read=lambda: _init_parts(self.state.experiment.model.output.init),
            set_name=lambda name: write_init(state, "model.output.init", lambda d: d["model"]["output"], name),
            params_at=lambda d: _init_dict(d["model"]["output"]),
            param_path=lambda k: f"model.output.init.{k}")
        self.components.append(self.output_init)
        io_box.addWidget(self.output_init)
        self.group("Input and output", io_box)

        # ---- the parameter count
        summary = QVBoxLayout()
        self.count_label = QLabel()
        self.count_label.setObjectName("parameterSummary")
        self.count_label.setWordWrap(True)
        self.count_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        summary.addWidget(self.count_label)
        self.warning = QLabel()
        self.warning.setObjectName("parameterWarning")
        self.warning.setProperty("role", "warning")
        self.warning.setWordWrap(True)
        self.warning.hide()
        summary.addWidget(self.warning)
        self.group("Parameters", summary)

        self.table.selectionModel().currentRowChanged.connect(self._row_selected)
        self.model.modelReset.connect(self._keep_current)
        self.table.installEventFilter(self)
        self.table.viewport().installEventFilter(self)      # its width changes with the vertical scroll bar
        self.info.changed.connect(self._facts_changed)
        self.table.selectRow(0)
        self.finish()

    # ------------------------------------------------------------------ state → widgets

    def refresh(self) -> None:
        self.model.sync()
        self._size_init_column()
        self._update_actions()
        self._show_counts()

    def _facts_changed(self) -> None:
        self.model.sync()
        self._show_counts()

    def _size_columns(self) -> None:
        """Narrow columns so the whole row fits in the dock; Init follows its longest entry."""
        fm = self.table.fontMetrics()
        pad = 8
        samples = {"units": "Units", "activation": "leaky_relu", "param": "0.2", "batch_norm": "before",
                   "dropout": "Drop", "use_bias": "Bias", "count": "00,000"}
        for key, sample in samples.items():
            self.table.setColumnWidth(COL[key], fm.horizontalAdvance(sample) + pad)
        self._init_width = -1
        self._size_init_column()

    def _min_last_width(self) -> int:
        """The last (stretched) column's width at its sample's size (see ``_size_columns``)."""
        return self.table.fontMetrics().horizontalAdvance("00,000") + 8

    def _size_init_column(self) -> None:
        fm = self.table.fontMetrics()
        texts = [_init_text(layer.init) for layer in self.state.experiment.model.layers] or ["Init"]
        width = min(max(fm.horizontalAdvance(t) for t in [*texts, "he_normal"]) + 12, 12 * fm.averageCharWidth() + 60)
        # The row fits the table's width (no sideways scrolling in a narrow dock): Init gives way.
        header = self.table.horizontalHeader()
        others = sum(header.sectionSize(c) for c in range(header.count())
                     if c not in (COL["init"], header.count() - 1))
        last = header.count() - 1
        room = self.table.viewport().width() - others - self._min_last_width()
        if self.table.isVisible() and last != COL["init"]:
            width = max(min(width, room), fm.horizontalAdvance("he_no…") + 12)
        if width != self._init_width:  # a width the user dragged stays until the entries change
            self._init_width = width
            self.table.setColumnWidth(COL["init"], width)

    def _show_counts(self) -> None:
        experiment = self.state.experiment
        facts = self.info.facts
        counts = self.model.counts
        locale = QLocale()
        n_out = facts.output_width(experiment.model.output.loss)
        widths = " → ".join([str(facts.n_features or "?"), *[str(layer.units) for layer in experiment.model.layers],
                             str(n_out or "?")])
        if any(c is None for c in counts):
            what = "the file's preview" if experiment.data.source in IMPORTERS else "the data"
            self.count_label.setText(f"Widths {widths}. The total is known once {what} is loaded.")
            self.warning.hide()
            return
        total = sum(c for c in counts if c is not None)
        per_layer = " · ".join(_runs([c or 0 for c in counts[:-1]], locale))
        self.count_label.setText(
            f"Widths {widths}<br><b>{locale.toString(total)} trainable parameters</b><br>"
            f"per hidden layer: {per_layer}<br>output layer: {locale.toString(counts[-1] or 0)}")
        self.count_label.setToolTip("Kernel fan_in × units, plus bias (units) and batch norm γ, β (2 × units); "
                                    "batch norm's moving averages are not trained and not counted.")
        if total > PARAMETER_WARNING:
            train = facts.train_samples(experiment.data.validation_split, experiment.data.test_split)
            examples = f" for about {locale.toString(train)} training examples" if train else ""
            self.warning.setText(
                f"⚠ Over one million parameters ({locale.toString(total)}){examples}: such a network can "
                "easily overfit the training set. Use fewer units, or regularize: early stopping, ℓ2, dropout.")
            self.warning.show()
        else:
            self.warning.hide()

    def _update_actions(self) -> None:
        rows = self.model.rowCount()
        row = self.current_row()
        self.layer_actions["delete"].setEnabled(rows > 1 and row >= 0)
        self.layer_actions["duplicate"].setEnabled(row >= 0 and rows < MAX_LAYERS)
        self.layer_actions["add"].setEnabled(rows < MAX_LAYERS)
        self.layer_actions["up"].setEnabled(row > 0)
        self.layer_actions["down"].setEnabled(0 <= row < rows - 1)
        self.repeat_button.setEnabled(row >= 0 and rows < MAX_LAYERS)

    def errors_shown(self, errors: dict[str, str]) -> None:
        self.model.sync()
        lines = [f"{escape(_where(path))}: {escape(short_message(path, message))}"
                 for path, message in errors.items() if path.startswith("model.layers")]
        self.table_error.setText("<br>".join(lines))
        self.table_error.setVisible(bool(lines))

    # ------------------------------------------------------------------ the selected layer

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        """Escape on a cell holding a refused value gives the state's value back; a resized
        table narrows its Init column rather than scrolling sideways."""
        if watched is self.table.viewport() and event.type() == QEvent.Type.Resize:
            self._init_width = -1
            self._size_init_column()
        if (watched is self.table and event.type() == QEvent.Type.KeyPress
                and event.key() == Qt.Key.Key_Escape  # type: ignore[attr-defined]
                and self.table.state() != QAbstractItemView.State.EditingState):
            index = self.table.currentIndex()
            if index.isValid():
                path = self.model.path(index.row(), index.column())
                if path in self.state.errors:
                    self.state.clear_error(path)
                    return True
        return super().eventFilter(watched, event)

    def current_row(self) -> int:
        index = self.table.currentIndex()
        return index.row() if index.isValid() else -1

    def select_row(self, row: int) -> None:
        row = max(0, min(row, self.model.rowCount() - 1))
        self.table.setCurrentIndex(self.model.index(row, max(self.table.currentIndex().column(), 0)))
        self.table.selectRow(row)

    def _keep_current(self) -> None:
        self.select_row(self.detail_row)

    def _row_selected(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.detail_row = current.row()
        self.init_editor.set_name_path(f"model.layers[{self.detail_row}].init")
        self._state_changed()
        self.detail_box.setTitle(f"Selected layer: {self.detail_row + 1}")

    def _layer(self) -> LayerSpec:
        layers = self.state.experiment.model.layers
        return layers[min(self.detail_row, len(layers) - 1)]

    def _set_dropout_type(self, value: str) -> Any:
        row = self.detail_row
        return self.state.set_field(f"model.layers[{row}].dropout_type", value,
                                    f"Layer {row + 1}: {value} dropout")

    def _read_init(self) -> tuple[str, dict[str, Any]]:
        return _init_parts(self._layer().init)

    def _set_init(self, name: str) -> Any:
        row = self.detail_row
        return write_init(self.state, f"model.layers[{row}].init", lambda d: d["model"]["layers"][row], name)

    # ------------------------------------------------------------------ layer operations

    def _structural(self, change: Callable[[list[dict]], int | None], text: str) -> bool:
        """Apply an edit of the layer list as one undo step, then select the row it returns.
        Refused values typed in the table are dropped: the rows they belonged to moved."""
        before = set(self.state.errors)
        data = self.state.data
        select = change(data["model"]["layers"])
        message = self.state.replace_data(data, text)
        if message is not None:
            for path in set(self.state.errors) - before:
                self.state.clear_error(path)
            self.table_error.setText(escape(message))
            self.table_error.show()
            return False
        clear_errors(self.state, "model.layers")
        if select is not None:
            self.select_row(select)
        return True

    def _row_or_last(self) -> int:
        row = self.current_row()
        return row if row >= 0 else self.model.rowCount() - 1

    def add_layer(self) -> None:
        row = self._row_or_last()

        def change(layers: list[dict]) -> int:
            layers.insert(row + 1, LayerSpec().to_dict())
            return row + 1

        self._structural(change, f"Add layer {row + 2}")

    def duplicate_layer(self) -> None:
        self.add_like_this(1, f"Duplicate layer {self._row_or_last() + 1}")

    def add_like_this(self, n: int, text: str | None = None) -> None:
        row = self._row_or_last()

        def change(layers: list[dict]) -> int:
            layers[row + 1:row + 1] = [dict(layers[row]) for _ in range(n)]
            return row + n

        self._structural(change, text or f"Add {n} layers like layer {row + 1}")

    def delete_layer(self) -> None:
        row = self.current_row()
        if row < 0 or self.model.rowCount() <= 1:
            return

        def change(layers: list[dict]) -> int:
            layers.pop(row)
            return min(row, len(layers) - 1)

        self._structural(change, f"Delete layer {row + 1}")

    def move_layer(self, delta: int) -> None:
        row = self.current_row()
        target = row + delta
        if row < 0 or not 0 <= target < self.model.rowCount():
            return

        def change(layers: list[dict]) -> int:
            layers[row], layers[target] = layers[target], layers[row]
            return target

        self._structural(change, f"Move layer {row + 1} {'up' if delta < 0 else 'down'}")


def _runs(counts: list[int], locale: QLocale) -> list[str]:
    """``[6600, 10300, 10300, 10300]`` → ``["1: 6,600", "2–4: 10,300 each"]``."""
    out: list[str] = []
    start = 0
    for i in range(1, len(counts) + 1):
        if i == len(counts) or counts[i] != counts[start]:
            value = locale.toString(counts[start])
            out.append(f"{start + 1}: {value}" if i - start == 1 else f"{start + 1}–{i}: {value} each")
            start = i
    return out


def _where(path: str) -> str:
    """``model.layers[2].units`` → ``Layer 3 · units``."""
    match = re.fullmatch(r"model\.layers\[(\d+)\]\.?(.*)", path)
    if match is None:
        return path
    return f"Layer {int(match.group(1)) + 1}" + (f" · {match.group(2)}" if match.group(2) else "")


def _init_dict(owner: dict) -> dict:
    """The ``init`` of a layer or the output as an object (a bare name becomes ``{"name": ...}``)."""
    if isinstance(owner["init"], str):
        owner["init"] = {"name": owner["init"]}
    return owner["init"]


def _init_parts(init: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(init, str):
        return init, {}
    return init["name"], {k: v for k, v in init.items() if k != "name"}
