"""The Sweep dialog (issue 7, Tools › Sweep…): pick axes from the current experiment's fields,
validate with ``core.sweeps.spec``, run on a worker thread (the sweep's own process pool trains),
watch and cancel, and rank the configurations in a sortable table whose selected rows are
overlaid in the Runs panel.

The sweep spec is derived from the dialog's fields and the experiment state; it is never
kept anywhere else. Every refusal of ``core.sweeps.spec.parse_sweep`` is shown at the field it names.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDockWidget,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableView,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.engine.activations import ACTIVATIONS
from core.engine.initializers import INITIALIZERS
from core.engine.losses import LOSSES
from core.engine.optimizers import OPTIMIZERS
from core.engine.schedules import SCHEDULES
from core.spec import SpecError
from core.sweeps.report import table_rows
from core.sweeps.spec import TARGET_METRICS, Sweep, parse_sweep

from ..screens import fit_to_screen
from ..state import ExperimentState
from .panel import RunsPanel
from .sweep_runner import SweepRunner

ERROR_STYLE = "border: 1px solid #d62728;"
# Fields whose value is a registry name: the axis offers those names as a multi-select, read from
# the registry when the axis is built (so an entry registered later is offered too).
CHOICES: dict[str, Callable[[], list[str]]] = {
    "activation": ACTIVATIONS.names,
    "init": INITIALIZERS.names,
    "optimizer.name": OPTIMIZERS.names,
    "schedule.name": SCHEDULES.names,
    "loss": LOSSES.names,
    "batch_norm": lambda: ["none", "before_activation", "after_activation"],
}
KINDS = (("values", "values"), ("range", "range"), ("log range", "log_range"))


def choices_for(path: str) -> list[str] | None:
    last = path.rsplit(".", 1)[-1]
    names = CHOICES.get(path) or (CHOICES.get(last) if last in ("activation", "init", "loss", "batch_norm") else None)
    return None if names is None else names()


def parse_value(text: str) -> Any:
    """One typed value: JSON (``0.1``, ``true``, ``null``, ``"x"``) or else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def split_values(text: str) -> list[Any]:
    return [parse_value(t.strip()) for t in text.split(",") if t.strip()]


def path_pattern(axis_path: str) -> re.Pattern[str]:
    """A regex matching the concrete paths an axis path addresses (``[*]`` = any index)."""
    return re.compile("^" + re.escape(axis_path).replace(r"\[\*\]", r"\[\d+\]") + r"(?:$|[.\[])")


# ============================================================================ axis editor


class AxisEditor(QFrame):
    """One swept field: values (a multi-select of registry names, or a comma-separated list) or
    a (log) range with a number of points. ``error`` is shown under it, the field outlined."""

    def __init__(self, path: str, current: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path = path
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.choices = choices_for(path)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(3)
        head = QHBoxLayout()
        title = QLabel(f"<b>{path}</b>")
        title.setToolTip(f"Field path in the experiment; now {json.dumps(current)}")
        head.addWidget(title, 1)
        self.kind = QComboBox()
        for text, key in KINDS:
            self.kind.addItem(text, key)
        self.kind.setToolTip("values: a list; range: evenly spaced points; log range: geometric spacing "
                             "(learning rates, regularization strengths)")
        head.addWidget(self.kind)
        self.remove_button = QToolButton()
        self.remove_button.setText("✕")
        self.remove_button.setToolTip("Remove this axis")
        head.addWidget(self.remove_button)
        layout.addLayout(head)

        self.values_list: QListWidget | None = None
        self.values_edit = QLineEdit()
        if self.choices is not None:
            self.values_list = QListWidget()
            self.values_list.setMaximumHeight(58)   # one or two wrapped rows of names
            self.values_list.setFlow(QListWidget.Flow.LeftToRight)
            self.values_list.setWrapping(True)
            for name in self.choices:
                item = QListWidgetItem(name)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if name == current else Qt.CheckState.Unchecked)
                self.values_list.addItem(item)
            self.values_list.setToolTip("Tick the names to compare")
            layout.addWidget(self.values_list)
            self.kind.setEnabled(False)
        else:
            self.values_edit.setPlaceholderText("comma-separated values, e.g. 0.001, 0.01, 0.1")
            self.values_edit.setText(json.dumps(current) if not isinstance(current, str) else current)
            layout.addWidget(self.values_edit)
        self.range_row = QWidget()
        row = QHBoxLayout(self.range_row)
        row.setContentsMargins(0, 0, 0, 0)
        self.low, self.high = QLineEdit(), QLineEdit()
        number = current if isinstance(current, (int, float)) and not isinstance(current, bool) else 1.0
        self.low.setText(f"{number / 10 if number else 0.0:g}")
        self.high.setText(f"{number * 10 if number else 1.0:g}")
        self.num = QSpinBox()
        self.num.setRange(1, 1000)
        self.num.setValue(4)
        for label, w in (("from", self.low), ("to", self.high), ("points", self.num)):
            row.addWidget(QLabel(label))
            row.addWidget(w, 1)
        layout.addWidget(self.range_row)
        self.error = QLabel()
        self.error.setObjectName("axisError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #d62728;")
        self.error.hide()
        layout.addWidget(self.error)
        self.kind.currentIndexChanged.connect(lambda _: self._kind_changed())
        if isinstance(current, float) and current > 0 and path.endswith(("learning_rate", "l1", "l2")):
            self.kind.setCurrentIndex(2)
        self._kind_changed()

    def _kind_changed(self) -> None:
        values = self.kind.currentData() == "values"
        self.range_row.setVisible(not values)
        self.values_edit.setVisible(values and self.values_list is None)

    def to_dict(self) -> dict[str, Any]:
        kind = self.kind.currentData()
        out: dict[str, Any] = {"path": self.path}
        if kind == "values":
            if self.values_list is not None:
                out["values"] = [self.values_list.item(i).text() for i in range(self.values_list.count())
                                 if self.values_list.item(i).checkState() == Qt.CheckState.Checked]
            else:
                out["values"] = split_values(self.values_edit.text())
        else:
            out[kind] = [parse_value(self.low.text().strip()), parse_value(self.high.text().strip())]
            out["num"] = self.num.value()
        return out

    def set_error(self, message: str | None) -> None:
        self.error.setText(message or "")
        self.error.setVisible(bool(message))
        target: QWidget = self.values_list or self.values_edit
        if self.kind.currentData() != "values":
            target = self.range_row
        for w in (self.values_list, self.values_edit, self.range_row):
            if w is not None:
                w.setStyleSheet(ERROR_STYLE if message and w is target else "")
        self.setToolTip(message or "")


# ============================================================================ results model


class ResultsModel(QAbstractTableModel):
    """One row per configuration (``core.sweeps.report`` rows); sorts on numbers (``UserRole``)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.header: list[str] = []
        self.cells: list[list[str]] = []
        self.keys: list[list[float]] = []
        self.configurations: list[dict[str, Any]] = []
        self.runs: list[dict[str, Any]] = []
        self.n_axes = 0

    def set_table(self, table: Mapping[str, Any]) -> None:
        self.beginResetModel()
        self.header, self.cells = table_rows(table)
        self.configurations = [dict(c) for c in table["configurations"]]
        self.runs = [dict(r) for r in table["runs"]]
        axes = list(table["axes"])
        self.n_axes = len(axes)
        keys = []
        for c in self.configurations:
            row: list[float] = [float(c["configuration"])]
            for a in axes:
                try:
                    row.append(float(c[f"axis:{a}"]))
                except (TypeError, ValueError):
                    row.append(math.nan)
            row.append(float(c["done"]))
            for k in ("val_accuracy_mean", "val_loss_mean"):
                row.append(_num(c.get(k)))
            if table.get("target"):
                row.append(_num(c.get("epochs_to_target_mean")))
            row += [_num(c.get("seconds_per_epoch_mean")), _num(c.get("vanishing")), _num(c.get("exploding")),
                    _num(c.get("diverged"))]
            keys.append(row)
        self.keys = keys
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.cells)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.header)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        r, c = index.row(), index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self.cells[r][c]
        if role == Qt.ItemDataRole.UserRole:
            value = self.keys[r][c]
            return math.inf if math.isnan(value) else value      # no value: last when ascending
        if role == Qt.ItemDataRole.TextAlignmentRole and c > self.n_axes:   # numbers right, labels left
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 (Qt override)
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.header[section]
        return None

    def files(self, row: int, folder: Path) -> list[Path]:
        """Session files of the finished runs of configuration row ``row``."""
        index = self.configurations[row]["configuration"]
        return [folder / r["file"] for r in self.runs
                if r["configuration"] == index and r["status"] not in ("pending", "failed")
                and (folder / r["file"]).exists()]


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


# ============================================================================ the dialog


def _fmt_seconds(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


class SweepDialog(QDialog):
    """Set up, run, watch and rank a sweep of the current experiment."""

    def __init__(self, state: ExperimentState, runs_panel: RunsPanel | None = None,
                 runs_dock: QDockWidget | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sweepDialog")
        self.setWindowTitle("Sweep — Gradient Workbench")
        self.setModal(False)
        fit_to_screen(self, QSize(1180, 760), parent.screen() if parent is not None else None)
        self.state = state
        self.runs_panel = runs_panel
        self.runs_dock = runs_dock
        self.axes: list[AxisEditor] = []
        self.runner = SweepRunner(self)
        self.runner.progress.connect(self._on_progress)
        self.runner.finished.connect(self._on_finished)
        self.runner.failed.connect(self._on_failed)
        self.out_dir: Path | None = None
        self.last_progress: dict[str, Any] = {}
        self.last_result: dict[str, Any] | None = None
        self._started = 0.0

        # -- fields of the experiment
        self.tree = QTreeWidget()
        self.tree.setObjectName("sweepFields")
        self.tree.setHeaderLabels(["Field", "Value"])
        self.tree.setToolTip("Fields of the current experiment; double-click one (or select it and press "
                             "Add axis) to sweep it. layers[*] changes every hidden layer at once.")
        self.tree.itemDoubleClicked.connect(lambda item, _col: self._add_selected(item))
        add = QPushButton("Add axis →")
        add.setObjectName("addAxisButton")
        add.clicked.connect(lambda: self._add_selected(self.tree.currentItem()))
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(QLabel("Experiment fields"))
        left_layout.addWidget(self.tree, 1)
        left_layout.addWidget(add)

        # -- axes and settings
        self.axes_box = QVBoxLayout()
        self.axes_box.addStretch(1)
        axes_widget = QWidget()
        axes_widget.setLayout(self.axes_box)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(axes_widget)
        self.axes_hint = QLabel("No axes yet: double-click a field on the left.")
        self.axes_hint.setObjectName("axesHint")

        self.mode = QComboBox()
        self.mode.addItems(["grid", "random"])
        self.mode.setToolTip("grid: every combination of the axes' values; random: a number of random draws")
        self.samples = QSpinBox()
        self.samples.setRange(1, 10_000)
        self.samples.setValue(8)
        self.samples.setToolTip("Random mode: how many configurations to draw")
        self.repeats = QSpinBox()
        self.repeats.setRange(1, 1000)
        self.repeats.setValue(1)
        self.repeats.setToolTip("Seeds per configuration (the experiment's seed, +1, +2…): mean ± std over them")
        self.target_metric = QComboBox()
        self.target_metric.addItems(list(TARGET_METRICS))
        self.target_metric.setCurrentText("val_accuracy")
        self.target_value = QDoubleSpinBox()
        self.target_value.setDecimals(4)
        self.target_value.setRange(-1e9, 1e9)
        self.target_value.setValue(0.9)
        target_row = QHBoxLayout()
        target_row.addWidget(self.target_metric)
        target_row.addWidget(self.target_value)
        self.out_edit = QLineEdit(str(self._default_out()))
        self.out_edit.setToolTip("Every run writes a session file here; a sweep started again in the same "
                                 "folder skips the finished runs")
        browse = QToolButton()
        browse.setText("…")
        browse.clicked.connect(self._browse)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(browse)
        self.workers = QSpinBox()
        self.workers.setRange(1, max(os.cpu_count() or 1, 1) * 4)
        self.workers.setValue(os.cpu_count() or 1)
        self.workers.setToolTip("Worker processes on this machine (one training each)")
        form = QFormLayout()
        form.addRow("Mode", self.mode)
        form.addRow("Samples", self.samples)
        form.addRow("Seeds per configuration", self.repeats)
        form.addRow("Target (epochs to reach)", target_row)
        form.addRow("Output folder", out_row)
        form.addRow("Workers", self.workers)
        self.plan_label = QLabel()
        self.plan_label.setObjectName("sweepPlan")
        self.plan_label.setWordWrap(True)
        self.general_error = QLabel()
        self.general_error.setObjectName("sweepError")
        self.general_error.setWordWrap(True)
        self.general_error.setStyleSheet("color: #d62728;")
        middle = QGroupBox("Axes and settings")
        middle_layout = QVBoxLayout(middle)
        middle_layout.addWidget(self.axes_hint)
        middle_layout.addWidget(scroll, 1)
        middle_layout.addLayout(form)
        middle_layout.addWidget(self.plan_label)
        middle_layout.addWidget(self.general_error)

        # -- run controls
        self.start_button = QPushButton("Start sweep")
        self.start_button.setObjectName("startSweepButton")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel sweep")
        self.cancel_button.setObjectName("cancelSweepButton")
        self.cancel_button.setEnabled(False)
        self.cancel_button.setToolTip("Stop now: finished runs keep their session files; starting again "
                                      "in the same folder skips them")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress_bar = QProgressBar()
        self.progress_bar.setObjectName("sweepProgress")
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_label = QLabel("")
        self.progress_label.setObjectName("sweepProgressLabel")
        controls = QHBoxLayout()
        controls.addWidget(self.start_button)
        controls.addWidget(self.cancel_button)
        controls.addWidget(self.progress_bar, 1)
        controls.addWidget(self.progress_label, 2)

        # -- results
        self.model = ResultsModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(Qt.ItemDataRole.UserRole)
        self.table = QTableView()
        self.table.setObjectName("sweepResults")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(False)
        self.table.verticalHeader().hide()
        self.table.setToolTip("One row per configuration: mean ± std over seeds. Click a header to sort; "
                              "select rows to overlay their runs in the Runs panel.")
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._overlay_selection())
        results = QGroupBox("Results (select rows to compare them in the Runs panel)")
        results_layout = QVBoxLayout(results)
        results_layout.addWidget(self.table)

        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(left)
        top.addWidget(middle)
        top.setSizes([420, 740])
        outer = QSplitter(Qt.Orientation.Vertical)
        outer.addWidget(top)
        outer.addWidget(results)
        outer.setSizes([470, 250])
        layout = QVBoxLayout(self)
        layout.addWidget(outer, 1)
        layout.addLayout(controls)

        self.mode.currentTextChanged.connect(lambda _: self._settings_changed())
        for spin in (self.samples, self.repeats):
            spin.valueChanged.connect(lambda _: self._settings_changed())
        self.state.changed.connect(lambda _: self._fill_tree())
        self._fill_tree()
        self._settings_changed()

    # ------------------------------------------------------------------ fields

    def _default_out(self) -> Path:
        folder = self.state.file.parent if self.state.file is not None else Path.home()
        stem = re.sub(r"[^A-Za-z0-9_-]+", "-", self.state.experiment.name).strip("-")[:40] or "sweep"
        return folder / f"sweep-{stem}"

    def _fill_tree(self) -> None:
        self.tree.clear()

        def add(parent: Any, key: str, value: Any, path: str) -> None:
            item = QTreeWidgetItem(parent, [key, "" if isinstance(value, (dict, list)) else json.dumps(value)])
            item.setData(0, Qt.ItemDataRole.UserRole, path)
            if isinstance(value, dict):
                for k, v in value.items():
                    add(item, k, v, f"{path}.{k}" if path else k)
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                every = QTreeWidgetItem(item, ["[*] every element", ""])
                every.setData(0, Qt.ItemDataRole.UserRole, f"{path}[*]")
                for k, v in value[0].items():
                    if not isinstance(v, (dict, list)) or v is None:
                        add(every, k, v, f"{path}[*].{k}")
                for i, v in enumerate(value):
                    add(item, f"[{i}]", v, f"{path}[{i}]")
            if isinstance(value, (dict, list)):
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsSelectable)

        data = self.state.data
        for key, value in data.items():
            if key not in ("format", "version", "seed", "name"):
                add(self.tree, key, value, key)
        self.tree.expandToDepth(0)
        self.tree.resizeColumnToContents(0)

    def _add_selected(self, item: QTreeWidgetItem | None) -> None:
        if item is None or item.childCount():
            return
        self.add_axis(str(item.data(0, Qt.ItemDataRole.UserRole)))

    def _current(self, path: str) -> Any:
        node: Any = self.state.data
        for name, index in re.findall(r"([A-Za-z_]\w*)|\[(\*|\d+)\]", path):
            if name:
                node = node.get(name) if isinstance(node, dict) else None
            elif isinstance(node, list) and node:
                node = node[0 if index == "*" else int(index)]
        return node

    def add_axis(self, path: str) -> AxisEditor:
        """Sweep the field ``path`` (``model.layers[*].activation``, ``optimizer.learning_rate``…)."""
        for editor in self.axes:
            if editor.path == path:
                return editor
        editor = AxisEditor(path, self._current(path))
        editor.remove_button.clicked.connect(lambda: self.remove_axis(editor))
        self.axes_box.insertWidget(len(self.axes), editor)
        self.axes.append(editor)
        self._settings_changed()
        return editor

    def remove_axis(self, editor: AxisEditor) -> None:
        self.axes.remove(editor)
        editor.deleteLater()
        self._settings_changed()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Sweep output folder", self.out_edit.text())
        if folder:
            self.out_edit.setText(folder)

    def _settings_changed(self) -> None:
        self.samples.setEnabled(self.mode.currentText() == "random")
        self.axes_hint.setVisible(not self.axes)

    # ------------------------------------------------------------------ the spec

    def spec(self) -> dict[str, Any]:
        """The sweep JSON the dialog describes (derived from the fields and the experiment)."""
        out: dict[str, Any] = {"name": self.state.experiment.name[:150] or "sweep", "base": self.state.data,
                               "axes": [a.to_dict() for a in self.axes], "mode": self.mode.currentText(),
                               "repeats": self.repeats.value(),
                               "target": {"metric": self.target_metric.currentText(),
                                          "value": self.target_value.value()}}
        if out["mode"] == "random":
            out["samples"] = self.samples.value()
        return out

    def validate(self) -> Sweep | None:
        """Parse the spec with ``core.sweeps.spec``; on refusal mark the field it names and return None."""
        for editor in self.axes:
            editor.set_error(None)
        for w in (self.samples, self.repeats, self.target_value, self.mode):
            w.setStyleSheet("")
            w.setToolTip(w.toolTip().split("\n⚠")[0])
        self.general_error.setText("")
        try:
            sweep = parse_sweep(self.spec(), self.state.base_dir)
        except SpecError as exc:
            self.show_error(exc.path, exc.message)
            return None
        n_configs, n_seeds = len(sweep.configurations), len(sweep.seeds)
        runs = n_configs * n_seeds
        self.plan_label.setText(f"{n_configs} configuration{'s' if n_configs != 1 else ''} × {n_seeds} "
                                f"seed{'s' if n_seeds != 1 else ''} = {runs} run{'s' if runs != 1 else ''} of "
                                f"{sweep.base['training']['epochs']} epochs")
        return sweep

    def show_error(self, path: str, message: str) -> None:
        """Put a refusal at its field: an axis, a setting, or (otherwise) under the form."""
        m = re.match(r"axes\[(\d+)\]", path or "")
        editor = None
        if m and int(m.group(1)) < len(self.axes):
            editor = self.axes[int(m.group(1))]
        elif path:
            editor = next((a for a in self.axes if path_pattern(a.path).match(path)), None)
        if editor is not None:
            editor.set_error(f"{path}: {message}" if path else message)
            return
        widget = {"samples": self.samples, "repeats": self.repeats, "seeds": self.repeats,
                  "target.value": self.target_value, "target.metric": self.target_metric,
                  "mode": self.mode}.get(path or "")
        if widget is not None:
            widget.setStyleSheet(ERROR_STYLE)
            widget.setToolTip(f"{widget.toolTip()}\n⚠ {message}")
        self.general_error.setText(f"{path}: {message}" if path else message)

    # ------------------------------------------------------------------ running

    def start(self) -> bool:
        if self.runner.running:
            return False
        if not self.axes:
            self.general_error.setText("Add at least one axis (double-click a field on the left).")
            return False
        sweep = self.validate()
        if sweep is None:
            return False
        out = Path(self.out_edit.text()).expanduser()
        if not self.out_edit.text().strip():
            self.general_error.setText("Choose an output folder.")
            return False
        self.out_dir = out
        self.last_result = None
        self.last_progress = {}
        self._started = time.perf_counter()
        total = len(sweep.configurations) * len(sweep.seeds)
        self.progress_bar.setRange(0, total)
        self.progress_bar.setValue(0)
        self.progress_label.setText(f"Starting {self.workers.value()} worker process(es)…")
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.runner.start(sweep, out, self.workers.value())
        return True

    def cancel(self) -> None:
        if self.runner.running:
            self.runner.cancel()
            self.cancel_button.setEnabled(False)
            self.progress_label.setText("Cancelling: ending the worker processes…")

    def _on_progress(self, info: dict[str, Any]) -> None:
        self.last_progress = dict(info)
        total = int(info.get("total", 0))
        done, failed = int(info.get("done", 0)), int(info.get("failed", 0))
        self.progress_bar.setRange(0, max(total, 1))
        self.progress_bar.setValue(done + failed)
        self.progress_label.setText(f"{done} done · {int(info.get('running', 0))} running · {failed} failed "
                                    f"of {total} · time left {_fmt_seconds(info.get('eta_seconds'))}")

    def _on_finished(self, result: dict[str, Any]) -> None:
        self.last_result = result
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        table = result["table"]
        done = sum(1 for r in table["runs"] if r["status"] not in ("pending", "failed"))
        failed = sum(1 for r in table["runs"] if r["status"] == "failed")
        self.progress_bar.setRange(0, max(result["total"], 1))
        self.progress_bar.setValue(done + failed)
        word = "Cancelled" if result["stopped"] else "Finished"
        self.progress_label.setText(f"{word}: {done} done · {failed} failed of {result['total']} "
                                    f"({result['skipped']} already there) in {_fmt_seconds(result['wall_seconds'])}")
        self.show_table(table)

    def _on_failed(self, message: str) -> None:
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress_label.setText("The sweep could not run.")
        path, _, rest = message.partition(": ")
        if re.match(r"^[\w.\[\]*]+$", path) and rest:
            self.show_error(path, rest)
        else:
            self.general_error.setText(message)

    # ------------------------------------------------------------------ results

    def show_table(self, table: Mapping[str, Any]) -> None:
        self.model.set_table(table)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)     # the report's order: best first

    def selected_files(self) -> list[Path]:
        if self.out_dir is None:
            return []
        rows = sorted({self.proxy.mapToSource(i).row() for i in self.table.selectionModel().selectedRows()})
        return [f for r in rows for f in self.model.files(r, self.out_dir)]

    def _overlay_selection(self) -> None:
        files = self.selected_files()
        if self.runs_panel is None or not files:
            return
        self.runs_panel.set_checked(files, exclusive=True)
        if self.runs_dock is not None:
            self.runs_dock.show()
            if not self.runs_dock.isFloating():
                self.runs_dock.raise_()     # its tab in front (a floating dock is a window of its own)

    # ------------------------------------------------------------------ closing

    def shutdown(self) -> None:
        """Cancel a running sweep and end its thread (the process pool is shut down)."""
        self.runner.shutdown()
