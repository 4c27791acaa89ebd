"""File › New experiment from this model…: the transfer-learning dialog (the book's "reuse
lower layers", ``model.transfer``).

Pick a saved session, tick which of its hidden layers to reuse and which of those to freeze,
when to unfreeze them and by how much to lower the learning rate then. The new experiment is
the current one with ``model.transfer`` filled in and the reused rows copied from the source
into ``model.layers`` (so the shapes fit by construction). Every choice is checked as it is
made by ``core``'s own validation — ``parse_experiment`` and ``core.sessions.transfer``'s layer
checks, the ones ``Trainer`` runs — and a refusal is shown at the field with its
``model.transfer.*`` message; OK stays disabled until the choice is valid.

The defaults are the book's advice (chapter 11, "Reusing Pretrained Layers"): reuse the
lower layers and replace the top ones (``default_reuse``: all but the top quarter of the
hidden layers, at least one replaced), freeze every reused layer first, unfreeze them after
``DEFAULT_UNFREEZE_EPOCH`` epochs (at ``DEFAULT_RATE_FACTOR`` times the rate: 1.0, the measured
better choice here, rather than the book's 0.1, which the factor field still offers), and —
when the source learned some classes of a bundled data set —
set the new task to the other classes (``default_target_classes``: digits 0-4, then 5-9).
"""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.data import DATASETS
from core.sessions import transfer as core_transfer
from core.sessions.format import SessionError, peek_session
from core.spec import Experiment, SpecError, parse_experiment

from ..concurrent import JobRunner, retire
from ..editor.dataset_info import estimate

COLUMNS = ["Layer", "Units", "Activation", "Batch norm", "Reuse", "Freeze"]
REUSE, FREEZE = 4, 5
ERROR_STYLE = "border: 1px solid #c0392b;"
CELL_ERROR_STYLE = "QWidget#cell { border: 1px solid #c0392b; }"     # the cell only, not its check box
DEFAULT_UNFREEZE_EPOCH = 2     # "a few epochs": the new top layers learn first
# Then fine-tune everything at the same rate. The book lowers it (×0.1) so the reused weights
# are not wrecked, but our factor applies to every layer, the new top ones too, and measured on
# the zoo's transfer pair (docs/guide/06-transfer-learning.md, five seeds) ×0.1 ended below
# training from scratch (0.895 against 0.944 after 30 epochs) while ×1.0 beat it (0.949).
DEFAULT_RATE_FACTOR = 1.0
KEEP = object()                # transfer_experiment: leave the data's classes as they are


def default_reuse(n_layers: int) -> list[int]:
    """The book: the lower layers hold the general features, the upper ones the task's own.
    Reuse all but the top quarter of the hidden layers (at least one replaced when there are
    two or more): 8 layers → reuse 0-5, 3 → 0-1, 1 → 0."""
    replaced = max(1, n_layers // 4) if n_layers > 1 else 0
    return list(range(n_layers - replaced))


def has_classes(source: str) -> bool:
    """Whether the data source can keep a subset of its classes (``data.params.classes``)."""
    return source in DATASETS and "classes" in DATASETS.get(source).hyperparameters


def default_target_classes(current: dict[str, Any], source: Experiment) -> list[int] | None:
    """The new task's classes: the ones the source did *not* learn, when the source was
    trained on a subset of the same bundled data set as the current experiment (the book's
    scenario: digits 0-4 first, then 5-9); otherwise the current experiment's own."""
    data = current.get("data", {})
    params = data.get("params") or {}
    mine = params.get("classes")
    theirs = source.data.params.get("classes")
    if data.get("source") != source.data.source or not has_classes(source.data.source) or theirs is None:
        return mine
    if mine is not None and sorted(mine) != sorted(theirs):
        return mine             # the user already picked a different task
    cls = DATASETS.get(source.data.source)
    try:
        learned = set(cls.labels(theirs))
        others = [c for c in cls.labels(None) if c not in learned]
    except ValueError:
        return mine
    return others if len(others) >= 2 else mine


def parse_classes(text: str) -> list[int | str] | None:
    """``"5 6 7"`` or ``"5, 6; 7"`` → ``[5, 6, 7]`` (names stay names); empty → ``None`` (all)."""
    parts = [p for p in text.replace(",", " ").replace(";", " ").split() if p]
    if not parts:
        return None
    return [int(p) if p.lstrip("-").isdigit() else p for p in parts]


class SourceInfo:
    """What the dialog needs of a source session, read without its arrays (``peek_session``)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        _, experiment, state = peek_session(self.path)
        try:
            self.experiment = parse_experiment(experiment)
        except SpecError as exc:
            raise SessionError(f"{self.path}: its experiment does not validate: {exc}") from None
        self.n_inputs = state.get("n_inputs")
        if not isinstance(self.n_inputs, int):
            self.n_inputs = None
        self.epochs = int(state.get("epoch", 0)) if isinstance(state.get("epoch", 0), int) else 0

    @property
    def layers(self) -> tuple[Any, ...]:
        return self.experiment.model.layers

    def kernel_shape(self, index: int) -> tuple[int, int] | None:
        rows = self.layers
        fan_in = self.n_inputs if index == 0 else rows[index - 1].units
        return None if fan_in is None else (int(fan_in), int(rows[index].units))


def transfer_experiment(current: dict[str, Any], source: SourceInfo, reuse: list[int], freeze: list[int],
                        unfreeze_at_epoch: int | None, learning_rate_factor: float, name: str,
                        classes: Any = KEEP) -> dict[str, Any]:
    """The new experiment's dict: ``current`` with the reused rows copied from ``source`` (same
    indices; rows in between the current one's, or the source's where the current model is
    shallower), ``model.transfer`` filled in and, unless ``classes`` is ``KEEP``, the new
    task's classes in ``data.params.classes`` (``None``: all of them)."""
    data = copy.deepcopy(current)
    if classes is not KEEP:
        params = dict(data["data"].get("params") or {})
        params["classes"] = classes
        data["data"]["params"] = params
    rows = list(data["model"]["layers"])
    top = max(reuse, default=-1)
    for index in range(top + 1):
        if index in reuse or index >= len(rows):
            row = source.layers[index].to_dict()
            if index < len(rows):
                rows[index] = row
            else:
                rows.append(row)
    data["model"]["layers"] = rows
    data["model"]["transfer"] = {"from": str(source.path.resolve()), "layers": sorted(reuse),
                                 "freeze": sorted(freeze), "unfreeze_at_epoch": unfreeze_at_epoch,
                                 "learning_rate_factor": learning_rate_factor if unfreeze_at_epoch else 1.0}
    data["name"] = name
    return data


def check_transfer(data: dict[str, Any], source: SourceInfo) -> tuple[Experiment | None, SpecError | None]:
    """Validate the candidate with ``core``: the spec (``parse_experiment``), then the layer
    choice and every reused layer's shapes (``core.sessions.transfer.resolve_layers`` and the same
    per-layer check ``apply_transfer`` runs at training, on shapes instead of arrays)."""
    try:
        experiment = parse_experiment(data)
    except SpecError as exc:
        return None, exc
    transfer = experiment.model.transfer
    assert transfer is not None
    name = source.path.name
    rows = experiment.model.layers
    try:
        layers, _ = core_transfer.resolve_layers(transfer, len(source.layers), len(rows), name)
    except SpecError as exc:
        return experiment, exc
    n_inputs = estimate(experiment.data).n_features
    src_weights = {}
    for index in layers:
        shape = source.kernel_shape(index)
        if shape is not None:
            src_weights[f"layers.{index}.kernel"] = SimpleNamespace(shape=shape, ndim=2)
    src = SimpleNamespace(experiment=source.experiment, weights=src_weights)
    targets = []
    for index, row in enumerate(rows):
        fan_in = n_inputs if index == 0 else rows[index - 1].units
        shape = (fan_in, row.units) if fan_in is not None else (source.kernel_shape(index) or (0, row.units))
        targets.append(SimpleNamespace(dense=SimpleNamespace(kernel=SimpleNamespace(shape=shape))))
    network = SimpleNamespace(spec=experiment.model, layers=targets)
    for j, index in enumerate(layers):
        if f"layers.{index}.kernel" not in src_weights:
            continue            # the source did not record its input width: checked when training starts
        reason = core_transfer._conflict(index, src, network, experiment.data.source, name)  # noqa: SLF001
        if reason is not None:
            return experiment, SpecError(f"model.transfer.layers[{j}]", reason)
    return experiment, None


class TransferDialog(QDialog):
    """``experiment()`` after ``accept()``: the new experiment (with ``model.transfer``).

    The source session is read on a worker (``set_source``): a large or slow file never holds
    the window; ``source_read`` says when it arrived (True) or was refused at its field (False)."""

    source_read = Signal(bool)

    def __init__(self, current: dict[str, Any], source: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("transferDialog")
        self.setWindowTitle("New experiment from a saved model")
        self.current = copy.deepcopy(current)
        self.source: SourceInfo | None = None
        self._experiment: Experiment | None = None
        self.error: SpecError | None = None
        layout = QVBoxLayout(self)
        intro = QLabel("Reuse the lower layers of a trained model for a new task (chapter 11, “Reusing "
                       "pretrained layers”): their weights and batch-norm statistics are copied into the new "
                       "model; frozen layers get no updates (their gradients are still shown) while the new "
                       "upper layers learn, and can be unfrozen later with a lower learning rate.")
        intro.setWordWrap(True)
        layout.addWidget(intro)

        row = QHBoxLayout()
        self.source_edit = QLineEdit()
        self.source_edit.setObjectName("transferSource")
        self.source_edit.setReadOnly(True)
        self.source_edit.setPlaceholderText("Choose a saved session (.gwb)")
        browse = QPushButton("&Browse…")
        browse.clicked.connect(self.browse)
        row.addWidget(QLabel("Source session:"))
        row.addWidget(self.source_edit, 1)
        row.addWidget(browse)
        layout.addLayout(row)
        self.source_label = QLabel()
        self.source_label.setWordWrap(True)
        layout.addWidget(self.source_label)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("transferLayers")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        for column in range(len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self.table, 1)

        form = QFormLayout()
        self.unfreeze = QSpinBox()
        self.unfreeze.setObjectName("transferUnfreeze")
        self.unfreeze.setRange(0, 100000)
        self.unfreeze.setSpecialValueText("never (frozen for the whole run)")
        self.unfreeze.setValue(DEFAULT_UNFREEZE_EPOCH)
        self.unfreeze.setToolTip("After this many epochs the frozen layers train too (the book: train the new "
                                 "top first, then unfreeze)")
        self.factor = QDoubleSpinBox()
        self.factor.setObjectName("transferFactor")
        self.factor.setRange(0.001, 1.0)
        self.factor.setDecimals(3)
        self.factor.setSingleStep(0.1)
        self.factor.setValue(DEFAULT_RATE_FACTOR)
        self.factor.setToolTip("Multiply the learning rate by this at the unfreeze (the book: lower it then, so "
                               "the reused weights are not wrecked). It applies to every layer, the new top ones "
                               "too: after a short frozen phase, 1.0 can learn faster")
        self.name_edit = QLineEdit()
        self.name_edit.setObjectName("transferName")
        self.classes_edit = QLineEdit()
        self.classes_edit.setObjectName("transferClasses")
        self.classes_edit.setPlaceholderText("all classes")
        self.classes_edit.setToolTip("The new task's classes (labels or names, separated by spaces): by default "
                                     "the ones the source model did not learn (the book: digits 0-4, then 5-9)")
        form.addRow("Unfreeze at epoch", self.unfreeze)
        form.addRow("Learning-rate factor at the unfreeze", self.factor)
        self.classes_label = QLabel("New task's classes")
        form.addRow(self.classes_label, self.classes_edit)
        form.addRow("New experiment's name", self.name_edit)
        shown = has_classes(str(self.current.get("data", {}).get("source", "")))
        self.classes_label.setVisible(shown)
        self.classes_edit.setVisible(shown)
        layout.addLayout(form)

        self.error_label = QLabel()
        self.error_label.setObjectName("transferError")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #c0392b;")
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.error_label)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("&Create experiment")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.unfreeze.valueChanged.connect(self.revalidate)
        self.factor.valueChanged.connect(self.revalidate)
        self.name_edit.textChanged.connect(self.revalidate)
        self.classes_edit.textChanged.connect(self.revalidate)
        self.resize(680, 460)
        self.reader = JobRunner(self, "transfer-source", plain_errors=(SessionError, SpecError, OSError))
        self.reader.finished.connect(self._source_arrived)
        self.reader.failed.connect(self._source_refused)
        self._reading: Path | None = None
        if source is not None:
            self.set_source(source)
        else:
            self.revalidate()

    # ------------------------------------------------------------------ source

    def browse(self) -> None:
        start = str(self.source.path.parent) if self.source else ""
        path, _ = QFileDialog.getOpenFileName(self, "Reuse layers of", start, "Sessions (*.gwb)")
        if path:
            self.set_source(Path(path))

    @property
    def loading(self) -> bool:
        """A source session is being read."""
        return self._reading is not None

    def set_source(self, path: Path) -> None:
        """Read ``path``'s experiment and layer shapes on the worker (a newer choice replaces an
        older one still being read); the table follows when it arrives."""
        path = Path(path)
        self._reading = path
        self.source = None
        self.source_edit.setText(str(path))
        self.source_label.setText(f"<i>Reading {path.name}…</i>")
        self.table.setRowCount(0)
        self._experiment = None
        self.error = None
        self.error_label.setText("")
        self.ok_button.setEnabled(False)
        self.reader.submit(lambda _progress, _should_stop: SourceInfo(path))

    def _source_refused(self, message: str) -> None:
        path, self._reading = self._reading, None
        if path is None:
            return
        self.source_label.setText("")
        self._show_error(SpecError("model.transfer.from", f"cannot reuse layers of {path.name}: {message}"))
        self.source_read.emit(False)

    def _source_arrived(self, source: SourceInfo) -> None:
        if self._reading is None:
            return
        self._reading = None
        self.source = source
        self.source_edit.setText(str(source.path))
        width = f", {source.n_inputs} inputs" if source.n_inputs is not None else ""
        self.source_label.setText(f"<b>{source.experiment.name}</b> — {source.experiment.data.source} data{width}, "
                                  f"{len(source.layers)} hidden layers, trained {source.epochs} epochs")
        self.name_edit.blockSignals(True)
        self.name_edit.setText(f"reuse of {source.experiment.name}"[:80])
        self.name_edit.blockSignals(False)
        target = default_target_classes(self.current, source.experiment)
        self.classes_edit.blockSignals(True)
        self.classes_edit.setText(" ".join(str(c) for c in target) if target else "")
        self.classes_edit.blockSignals(False)
        self._fill_table()
        self.revalidate()
        self.source_read.emit(True)

    def _fill_table(self) -> None:
        assert self.source is not None
        rows = self.source.layers
        self.table.setRowCount(len(rows) + 1)
        reused = default_reuse(len(rows))
        for i, layer in enumerate(rows):
            bn = {False: "—", "before_activation": "before activation",
                  "after_activation": "after activation"}.get(layer.batch_norm, str(layer.batch_norm))
            for column, text in enumerate([f"hidden {i}", str(layer.units), layer.activation, bn]):
                item = QTableWidgetItem(text)
                if column in (0, 1):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, column, item)
            for column, tip in ((REUSE, "Copy this layer's weights and batch-norm statistics (the book: reuse "
                                        "the lower layers, replace the top ones)"),
                                (FREEZE, "Keep this reused layer fixed (until the unfreeze epoch)")):
                box = QCheckBox()
                box.setChecked(i in reused)
                box.setToolTip(tip)
                box.setObjectName(f"{'reuse' if column == REUSE else 'freeze'}{i}")
                box.toggled.connect(self.revalidate)
                cell = QWidget()
                cell.setObjectName("cell")
                cell_layout = QHBoxLayout(cell)
                cell_layout.setContentsMargins(0, 0, 0, 0)
                cell_layout.setAlignment(Qt.AlignmentFlag.AlignCenter)
                cell_layout.addWidget(box)
                self.table.setCellWidget(i, column, cell)
        out = len(rows)
        item = QTableWidgetItem("output")
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.table.setItem(out, 0, item)
        note = QTableWidgetItem("new for the new task (never reused)")
        self.table.setItem(out, 1, note)
        self.table.setSpan(out, 1, 1, len(COLUMNS) - 1)
        for column in range(len(COLUMNS)):
            cell = self.table.item(out, column)
            if cell is not None:
                cell.setFlags(Qt.ItemFlag.NoItemFlags)
        self.table.resizeRowsToContents()
        height = self.table.horizontalHeader().height() + 2 * self.table.frameWidth()
        height += sum(self.table.rowHeight(r) for r in range(self.table.rowCount()))
        self.table.setMaximumHeight(height + 2)     # no empty band under the rows

    def box(self, kind: str, index: int) -> QCheckBox:
        column = REUSE if kind == "reuse" else FREEZE
        return self.table.cellWidget(index, column).findChild(QCheckBox)

    # ------------------------------------------------------------------ choice

    def choice(self) -> tuple[list[int], list[int]]:
        if self.source is None:
            return [], []
        n = len(self.source.layers)
        reuse = [i for i in range(n) if self.box("reuse", i).isChecked()]
        freeze = [i for i in reuse if self.box("freeze", i).isChecked()]
        return reuse, freeze

    def candidate(self) -> dict[str, Any] | None:
        if self.source is None:
            return None
        reuse, freeze = self.choice()
        until = self.unfreeze.value() or None
        classes = parse_classes(self.classes_edit.text()) if self.classes_edit.isVisibleTo(self) else KEEP
        return transfer_experiment(self.current, self.source, reuse, freeze, until, float(self.factor.value()),
                                   self.name_edit.text().strip() or "transfer", classes)

    def revalidate(self) -> None:
        if self.loading:
            return                           # checked when the source arrives
        if self.source is not None:
            reuse, _ = self.choice()
            for i in range(len(self.source.layers)):
                self.box("freeze", i).setEnabled(i in reuse)
        self.factor.setEnabled(self.unfreeze.value() > 0)
        data = self.candidate()
        if data is None:
            self._experiment = None
            if self.error is None:
                self._show_error(SpecError("model.transfer.from", "choose the saved session to reuse layers of"))
            return
        if not self.choice()[0]:
            self._experiment = None
            self._show_error(SpecError("model.transfer.layers", "tick at least one layer to reuse"))
            return
        experiment, error = check_transfer(data, self.source)
        self._experiment = experiment if error is None else None
        self._show_error(error)

    def _show_error(self, error: SpecError | None) -> None:
        self.error = error
        self.error_label.setText("" if error is None else f"<b>{error.path}</b>: {error.message}")
        self.ok_button.setEnabled(error is None and self._experiment is not None)
        widgets: list[QWidget] = [self.source_edit, self.unfreeze, self.factor, self.name_edit, self.classes_edit]
        for widget in widgets:
            widget.setStyleSheet("")
            widget.setToolTip(widget.toolTip().split("\n\n⚠")[0])
        for i in range(self.table.rowCount() - 1 if self.source else 0):
            for column in (REUSE, FREEZE):
                self.table.cellWidget(i, column).setStyleSheet("")
        if error is None:
            return
        target = self._field_widget(error.path)
        if target is not None:
            target.setStyleSheet(CELL_ERROR_STYLE if target.objectName() == "cell" else ERROR_STYLE)
            target.setToolTip(f"{target.toolTip()}\n\n⚠ {error}")

    def _field_widget(self, path: str) -> QWidget | None:
        """The widget a ``model.transfer.*`` path is about (a table cell for a layer)."""
        if path.endswith("unfreeze_at_epoch"):
            return self.unfreeze
        if path.endswith("learning_rate_factor"):
            return self.factor
        if path.endswith(".from"):
            return self.source_edit
        if path == "name":
            return self.name_edit
        if path.startswith("data"):
            return self.classes_edit
        if self.source is None or "[" not in path:
            return None
        j = int(path.rsplit("[", 1)[1].rstrip("]"))
        reuse, freeze = self.choice()
        listed = freeze if ".freeze[" in path else reuse
        if 0 <= j < len(listed):
            return self.table.cellWidget(listed[j], FREEZE if ".freeze[" in path else REUSE)
        return None

    def experiment(self) -> Experiment | None:
        return self._experiment

    def accept(self) -> None:
        if self._experiment is not None and self.error is None:
            super().accept()

    def done(self, result: int) -> None:
        self._reading = None                 # a read still going on ends on its own, unheard
        retire(self.reader)
        super().done(result)
