"""The Data panel: dataset (built-in with its parameters, or a file of a registered importer, with
a target column or a labels file when the importer needs one, or a folder for an importer that
reads one), a preview of shape, classes, class balance and, for images, a grid of samples per
class, the splits, standardization and augmentation. A book data set downloads on first use
with its progress and Cancel in the preview; Reload retries after an error or a cancel."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QLocale, Qt, QTimer
from PySide6.QtGui import QImage, QPixmap, QShowEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.data import DATASETS, IMPORTERS, DatasetError, FileImporter
from core.spec import AUGMENTATIONS
from core.training import split_counts

from ..concurrent import JobRunner
from ..state import ExperimentState
from .component import ComponentEditor
from .dataset_info import DataInfo, resolve
from .fields import (
    CheckField,
    ChoiceCombo,
    IntSpin,
    NumberEdit,
    add_row,
    clear_errors,
    edit,
    error_label,
    escape,
    new_form,
    vbox,
)
from .help import AUGMENTATION, field_help
from .panel import Panel

MAX_BARS = 60


def importer_of(source: str) -> type[FileImporter] | None:
    """The file importer a ``data.source`` names, or None for a registered source."""
    return IMPORTERS.get(source) if source in IMPORTERS else None


def file_filter(importer: type[FileImporter]) -> str:
    """The file dialog's name filters: the importer's extensions, then any file."""
    return f"{importer.name_filter()};;All files (*)"


#: The key in ``ExperimentState.errors`` of a data file the preview could not read (no field's path).
FILE_ERROR = "data.file"

class DataPanel(Panel):
    def __init__(self, state: ExperimentState, info: DataInfo, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.info = info
        self._headers: dict[tuple[str, str, int], list[str]] = {}
        # A file's columns are read on a worker (the GUI never waits on a read): what needs them
        # waits here, by file, until they arrive; one file is read at a time.
        self._waiting: dict[tuple[str, str, int], list[tuple[Any, Any]]] = {}
        self._reading_header: tuple[str, str, int] | None = None
        self.header_reader = JobRunner(self, "csv-header", plain_errors=(DatasetError, OSError, ValueError))
        self.header_reader.finished.connect(self._header_read)
        self.header_reader.failed.connect(self._header_refused)
        self.file_dialog: QFileDialog | None = None

        # ---- the dataset
        label, tip = field_help("data.source")
        # After the registered sources, one choice per file importer; choosing one opens the file dialog.
        extra = [(name, f"{IMPORTERS.get(name).label}…", IMPORTERS.get(name).summary) for name in IMPORTERS]
        self.source = ComponentEditor(
            self.binder, DATASETS, family="dataset", name_path="data.source", label=label, tooltip=tip,
            read=lambda: (state.experiment.data.source, dict(state.experiment.data.params)),
            set_name=self._set_source, params_at=lambda d: d["data"]["params"], param_path=lambda k: f"data.params.{k}",
            extra=extra, extra_classes={name: IMPORTERS.get(name) for name in IMPORTERS
                                        if IMPORTERS.get(name).parameters()})
        self.components.append(self.source)
        form = self.source.form
        self.path_edit, self.browse, self.path_row, self.path_caption = self._file_row(
            form, "data.path", "no file chosen", "browseDataFile", "Choose the data file",
            lambda: self.choose_file(self.state.experiment.data.source), "Change data file")
        # The second file of an importer that reads two (an IDX images file and its labels).
        self.labels_edit, self.browse_labels, self.labels_row, self.labels_caption = self._file_row(
            form, "data.labels_path", "no labels file chosen", "browseLabelsFile", "Choose the labels file",
            lambda: self.choose_labels_file(self.state.experiment.data.source), "Change labels file")
        self.target = ChoiceCombo()
        self.target.setObjectName("data.target")
        label, tip = field_help("data.target")
        self.target_caption, err = add_row(form, label, self.target, tip)
        self.target_field = self.binder.bind(self.target, "data.target", tooltip=tip, label=err,
                                             text="Change target column")
        self.target_field.on_refresh = self._fill_targets
        self.file_error = error_label()
        self.file_error.setObjectName("dataFileError")
        form.addRow(self.file_error)
        self.group("Dataset", vbox(self.source))

        # ---- the preview
        preview = QVBoxLayout()
        self.preview_label = QLabel()
        self.preview_label.setObjectName("dataPreview")
        self.preview_label.setWordWrap(True)
        self.preview_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        preview.addWidget(self.preview_label)
        self.balance_plot = pg.PlotWidget()
        self.balance_plot.setObjectName("classBalance")
        self.balance_plot.setFixedHeight(90)
        self.balance_plot.setMenuEnabled(False)
        self.balance_plot.setMouseEnabled(False, False)
        self.balance_plot.hideButtons()
        self.balance_plot.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.balance_plot.getPlotItem().getAxis("left").setWidth(36)
        self.balance_plot.setToolTip("Examples per class, pale: the whole data set; solid: the training split "
                                     "the experiment trains on. A very uneven balance makes accuracy misleading.")
        self.balance_bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush=pg.mkBrush(70, 130, 200, 90))
        self.balance_plot.addItem(self.balance_bars)
        self.train_bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush=pg.mkBrush(70, 130, 200))
        self.balance_plot.addItem(self.train_bars)
        preview.addWidget(self.balance_plot)
        self.samples = SampleGrid()
        preview.addWidget(self.samples)
        loading = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setObjectName("dataLoadProgress")
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancelDataLoad")
        self.cancel_button.setToolTip("Stop loading or downloading the data (the experiment keeps it; Reload tries "
                                      "again)")
        self.cancel_button.clicked.connect(self.info.cancel)
        self.reload_button = QPushButton("Reload")
        self.reload_button.setObjectName("reloadData")
        self.reload_button.setToolTip("Read the data again (after the file changed on disk, an error or a cancelled "
                                      "download)")
        self.reload_button.clicked.connect(self.reload)
        loading.addWidget(self.progress, 1)
        loading.addWidget(self.cancel_button)
        loading.addWidget(self.reload_button)
        preview.addLayout(loading)
        self.group("Preview", preview, "Shape, classes and class balance of the chosen data")

        # ---- splits and preprocessing
        form = new_form()
        for path in ("data.validation_split", "data.test_split"):
            label, tip = field_help(path)
            widget = NumberEdit("float")
            widget.setObjectName(path)
            _, err = add_row(form, label, widget, tip)
            self.binder.bind(widget, path, tooltip=tip, label=err, text=f"Change {label.lower()}")
        label, tip = field_help("data.standardize")
        self.standardize = CheckField(label)
        self.standardize.setObjectName("data.standardize")
        form.addRow(self.standardize)
        self.binder.bind(self.standardize, "data.standardize", tooltip=tip, text="Toggle standardization")
        label, tip = field_help("data.augmentation.type")
        self.augmentation = ChoiceCombo([v for v in AUGMENTATION if v[0] in AUGMENTATIONS])
        self.augmentation.setObjectName("data.augmentation.type")
        _, err = add_row(form, label, self.augmentation, tip)
        self.binder.bind(self.augmentation, "data.augmentation.type", write=self._set_augmentation, tooltip=tip,
                         label=err)
        self.aug_rows: dict[str, tuple[QWidget, QLabel]] = {}
        for aug_type, params in AUGMENTATIONS.items():
            for key, default in params.items():
                path = f"data.augmentation.{key}"
                label, tip = field_help(path)
                widget = IntSpin() if isinstance(default, int) else NumberEdit("float")
                widget.setObjectName(path)
                caption, err = add_row(form, label, widget, tip)
                self.binder.bind(widget, path, default=default, tooltip=tip, label=err, text=f"Change {label}")
                self.aug_rows[aug_type] = (widget, caption)
        self.group("Split and preprocessing", form)

        self.info.changed.connect(self._show_preview)
        self.info.changed.connect(self._report_file_problem)
        self.info.loading.connect(self._show_loading)
        self.info.progress.connect(self._show_progress)
        self._elapsed = QTimer(self)
        self._elapsed.setInterval(250)
        self._elapsed.timeout.connect(self._tick)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(150)
        self._debounce.timeout.connect(self._load_preview)
        self._show_loading(False)
        self.finish()

    # ------------------------------------------------------------------ state → widgets

    @property
    def base_dir(self) -> Path | None:
        return self.state.base_dir

    def refresh(self) -> None:
        data = self.state.experiment.data
        importer = importer_of(data.source)
        self.path_caption.setVisible(importer is not None)
        self.path_row.setVisible(importer is not None)
        if importer is not None:
            self.path_caption.setText("Folder" if importer.reads_folder else "File")
            self.browse.setToolTip("Choose the data folder" if importer.reads_folder else "Choose the data file")
        needs_labels = importer is not None and importer.needs_labels_file
        self.labels_caption.setVisible(needs_labels)
        self.labels_row.setVisible(needs_labels)
        needs_target = importer is not None and importer.needs_target
        self.target_caption.setVisible(needs_target)
        self.target.setVisible(needs_target)
        aug = data.augmentation.type
        for aug_type, (widget, caption) in self.aug_rows.items():
            widget.setVisible(aug_type == aug)
            caption.setVisible(aug_type == aug)
        # The estimate is immediate; the preview load waits until the edits settle.
        self.info.update(data, self.base_dir, load=False)
        self._debounce.start()

    def _load_preview(self) -> None:
        """Load the data for the preview once the edits settle. A built-in set is only loaded
        while this panel is shown (its sizes are known without loading it); a file always is,
        since the model's input width comes from it."""
        data = self.state.experiment.data
        if self.isVisible() or data.source in IMPORTERS:
            self.info.update(data, self.base_dir)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        self._debounce.start()

    def _fill_targets(self) -> None:
        data = self.state.experiment.data
        importer = importer_of(data.source)
        if importer is None or not importer.needs_target or not data.path:
            return
        self.with_columns(importer, Path(data.path), lambda columns: self._show_targets(columns, data),
                          lambda message: self._show_targets(None, data, message))

    def _show_targets(self, columns: list[str] | None, data: Any, message: str = "") -> None:
        if data != self.state.experiment.data:
            return                          # the data changed while the columns were read
        if columns is None:
            self.file_error.setText(message)
            self.file_error.show()
            columns = []
        else:
            self.file_error.hide()
        if data.target and data.target not in columns:
            columns = [*columns, data.target]
        if [self.target.itemText(i) for i in range(self.target.count())] != columns:
            self.target.set_items([(c, c, f"Predict column {c!r} from the others") for c in columns])
            self.target.set_value(data.target)

    def with_columns(self, importer: type[FileImporter], path: Path, then: Any, failed: Any) -> None:
        """Call ``then(columns)`` with the file's columns a target can be chosen from (the
        importer's preview: a CSV's first line), or ``failed(message)``. They are cached per file
        and modification time; a file not read yet is read on the worker, and the call comes
        when it arrives (at once for a cached one)."""
        file = resolve(str(path), self.base_dir)
        try:
            stamp = file.stat().st_mtime_ns
        except OSError:
            failed(f"{file}: file not found")
            return
        key = (importer.name, str(file), stamp)
        if key in self._headers:
            then(self._headers[key])
            return
        self._waiting.setdefault(key, []).append((then, failed))
        self._read_next_header()

    @property
    def reading_columns(self) -> bool:
        """A file's columns are being read (or wait to be)."""
        return bool(self._waiting)

    def _read_next_header(self) -> None:
        if self._reading_header is not None or not self._waiting or self.header_reader.closed:
            return
        key = self._reading_header = next(iter(self._waiting))
        importer, file = IMPORTERS.get(key[0]), Path(key[1])
        self.header_reader.start(lambda _progress, _should_stop: list(importer().preview(file).columns))

    def _header_read(self, columns: list[str]) -> None:
        key, self._reading_header = self._reading_header, None
        if key is not None:
            self._headers[key] = columns
            for then, _ in self._waiting.pop(key, []):
                then(columns)
        self._read_next_header()

    def _header_refused(self, message: str) -> None:
        key, self._reading_header = self._reading_header, None
        if key is not None:
            for _, failed in self._waiting.pop(key, []):
                failed(message)
        self._read_next_header()

    # ------------------------------------------------------------------ writing

    def _set_source(self, source: str) -> Any:
        if source in IMPORTERS:
            self.choose_file(source)
            return None

        def change(d: dict) -> None:
            d["data"].update(source=source, params={})
            for key in ("path", "target", "labels_path"):
                d["data"].pop(key, None)

        message = edit(self.state, "data.source", change, f"Dataset: {source}")
        if message is None:
            for path in ("data.params.", "data.path", "data.target", "data.labels_path"):
                clear_errors(self.state, path)
        return message

    def _set_augmentation(self, aug_type: str) -> Any:
        def change(d: dict) -> None:
            d["data"]["augmentation"] = {"type": aug_type}

        message = edit(self.state, "data.augmentation.type", change, f"Augmentation: {aug_type}")
        if message is None:
            clear_errors(self.state, "data.augmentation.", keep=["data.augmentation.type"])
        return message

    def _file_row(self, form: Any, path: str, placeholder: str, button_name: str, button_tip: str,
                  browse: Any, undo_text: str) -> tuple[NumberEdit, QPushButton, QWidget, Any]:
        """A file field of the Data panel: its line edit bound to ``path`` and a Browse… button in one
        row of ``form``; returns (edit, button, row, caption)."""
        edit = NumberEdit("text", placeholder=placeholder)
        edit.setObjectName(path)
        button = QPushButton("Browse…")
        button.setObjectName(button_name)
        button.setToolTip(button_tip)
        button.clicked.connect(browse)
        row_widget = QWidget()
        row = QHBoxLayout(row_widget)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit, 1)
        row.addWidget(button)
        label, tip = field_help(path)
        caption, err = add_row(form, label, row_widget, tip)
        self.binder.bind(edit, path, tooltip=tip, label=err, text=undo_text)
        return edit, button, row_widget, caption

    def choose_file(self, source: str) -> None:
        """Open the file chooser for importer ``source`` (not blocking: the window keeps running
        while it is open); its name filter is the importer's extensions, or a folder chooser for
        an importer that reads a folder. Anything else than an importer's name (the Browse button
        of a built-in source, which is hidden) does nothing."""
        importer = importer_of(source)
        if importer is None:
            return
        start = self.state.experiment.data.path or (str(self.base_dir) if self.base_dir else "")
        if importer.reads_folder:
            dialog = QFileDialog(self, f"Choose the folder of {importer.label.lower()}s", start)
            dialog.setFileMode(QFileDialog.FileMode.Directory)
            dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        else:
            what = "images" if importer.needs_labels_file else "data"
            dialog = QFileDialog(self, f"Choose a {source.upper()} {what} file", start, file_filter(importer))
            dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setObjectName("dataFileDialog")
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
        dialog.fileSelected.connect(lambda path, s=source: self._file_chosen(s, path))
        dialog.rejected.connect(lambda: self.binder.refresh_field(self.source.name_field))
        dialog.finished.connect(dialog.deleteLater)
        self.file_dialog = dialog
        dialog.open()

    def _file_chosen(self, source: str, path: str) -> None:
        """A file (or folder) was chosen. An importer that also needs a labels file keeps the
        current one, else takes the matching file next to it (``train-labels-idx1-ubyte.gz``
        beside ``train-images-idx3-ubyte.gz``), else asks for it before changing anything."""
        importer = IMPORTERS.get(source)
        if not importer.needs_labels_file:
            self.use_file(source, path)
            return
        current = self.state.experiment.data
        labels = current.labels_path if current.source == source and current.labels_path else labels_beside(path)
        if labels is not None:
            self.use_file(source, path, labels)
        else:
            self.choose_labels_file(source, images=path)

    def choose_labels_file(self, source: str, images: str | None = None) -> None:
        """Open the chooser of the labels file; with ``images`` (a new images file not yet in the
        experiment) both become the data at once, else only the labels file changes."""
        importer = importer_of(source)
        if importer is None or not importer.needs_labels_file:
            return
        start = self.state.experiment.data.labels_path or images or self.state.experiment.data.path or (
            str(self.base_dir) if self.base_dir else "")
        dialog = QFileDialog(self, f"Choose the {source.upper()} labels file", start, file_filter(importer))
        dialog.setObjectName("labelsFileDialog")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
        if images is None:
            dialog.fileSelected.connect(self.use_labels_file)
        else:
            dialog.fileSelected.connect(lambda labels, s=source, i=images: self.use_file(s, i, labels))
            dialog.rejected.connect(lambda: self.binder.refresh_field(self.source.name_field))
        dialog.finished.connect(dialog.deleteLater)
        self.file_dialog = dialog
        dialog.open()

    def use_labels_file(self, path: str) -> str | None:
        def change(d: dict) -> None:
            d["data"]["labels_path"] = path

        message = edit(self.state, "data.labels_path", change, f"Use labels file {Path(path).name}")
        if message is None:
            clear_errors(self.state, "data.labels_path")
        return message

    def use_file(self, source: str, path: str, labels_path: str | None = None) -> str | None:
        """Make ``path`` the data (one undoable edit); when the importer needs a target column, the
        target stays if the new file has it, else it starts as the file's last column; an importer
        that reads a labels file gets ``labels_path``."""
        importer = IMPORTERS.get(source)
        target = None
        if importer.needs_target:
            call: dict[str, Any] = {"inside": True}

            def arrived(columns: list[str]) -> None:
                if call["inside"]:
                    call["columns"] = columns
                else:                       # read on the worker: make the edit now
                    self.use_file(source, path, labels_path)

            def refused(message: str) -> None:
                call["refused"] = message
                self._file_refused(message)

            self.with_columns(importer, Path(path), arrived, refused)
            call["inside"] = False
            if "refused" in call:
                return call["refused"]
            if "columns" not in call:
                return None                 # the edit follows when the columns arrive
            columns = call["columns"]
            current = self.state.experiment.data
            target = (current.target if current.source == source and current.target in columns
                      else columns[-1] if columns else None)
        current = self.state.experiment.data
        params = dict(current.params) if current.source == source else {}

        def change(d: dict) -> None:
            d["data"].update(source=source, params=params, path=path)
            d["data"].pop("target", None)
            d["data"].pop("labels_path", None)
            if target is not None:
                d["data"]["target"] = target
            if importer.needs_labels_file and labels_path is not None:
                d["data"]["labels_path"] = labels_path

        message = edit(self.state, "data.source", change, f"Use data {'folder' if importer.reads_folder else 'file'} "
                                                          f"{Path(path).name}")
        if message is None:
            for error_path in ("data.params.", "data.path", "data.labels_path"):
                clear_errors(self.state, error_path)
            self.file_error.hide()
        return message

    def _file_refused(self, message: str) -> None:
        self.file_error.setText(message)
        self.file_error.show()
        self.binder.refresh_field(self.source.name_field)

    def reload(self) -> None:
        self._headers.clear()
        self.binder.refresh_field(self.target_field)
        self.info.reload(self.state.experiment.data, self.base_dir)

    # ------------------------------------------------------------------ the preview

    def _show_loading(self, loading: bool) -> None:
        self.progress.setVisible(loading)
        self.cancel_button.setVisible(loading)
        self.reload_button.setVisible(not loading)
        if loading:
            self.progress.setRange(0, 0)
            self.preview_label.setText("Loading…")
            self._elapsed.start()
        else:
            self._elapsed.stop()

    def _show_progress(self, fraction: float) -> None:
        if fraction < 0:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(fraction * 1000))
        self._tick()

    def _tick(self) -> None:
        seconds = time.monotonic() - self.info.started_at
        size = self.info.file_size
        download = self.info.download_size
        if download:
            self.progress.setFormat("%p %")
            self.preview_label.setText(f"Downloading {escape(self.info.source)} on first use, or checking the "
                                       f"copy in the cache ({download / 2**20:,.0f} MB, {seconds:.0f} s)… "
                                       "Cancel stops it; Reload goes on later.")
            return
        if not size:
            self.preview_label.setText(f"Loading… ({seconds:.0f} s)")
            return
        what = f"{size / 2**20:,.0f} MB, " if size >= 2**20 else ""
        if self.progress.maximum() == 0:
            self.progress.setFormat("")
            self.preview_label.setText(f"Parsing the file… ({what}{seconds:.0f} s)")
        else:
            self.progress.setFormat("%p %")
            self.preview_label.setText(f"Reading the file… ({what}{seconds:.0f} s)")

    def _report_file_problem(self) -> None:
        """A data file the preview could not read is an error of the experiment (key ``FILE_ERROR``):
        Train waits, saying why, instead of failing after it was pressed."""
        if self.info.busy:
            return
        error = self.info.error if self.state.experiment.data.source in IMPORTERS else None
        if error:
            self.state.report_error(FILE_ERROR, f"the data file cannot be read: {error}")
        else:
            self.state.clear_error(FILE_ERROR)

    def _split(self, summary: dict[str, Any], counts: list[int]) -> dict[str, list[int]]:
        """Rows of each class (one group for regression) in the experiment's training, validation
        and test splits, as training will cut them."""
        data = self.state.experiment.data
        tests = summary.get("test_class_counts") if len(counts) > 1 else (
            [summary["test_rows"]] if "test_rows" in summary else None)
        return split_counts(counts, data.validation_split, 0.0 if tests else data.test_split, tests)

    @staticmethod
    def _training_line(parts: dict[str, list[int]], n: int) -> str:
        """"Trains on 180 of them (10 %; validation 1,258, test 359)": the data the run sees."""
        locale = QLocale()
        train, val, test = (sum(parts[k]) for k in ("train", "val", "test"))
        return (f"<b>Trains on {locale.toString(train)}</b> of them ({100 * train / max(n, 1):.0f} %; validation "
                f"{locale.toString(val)}, test {locale.toString(test)})")

    def _show_preview(self) -> None:
        if self.info.busy:
            return
        facts = self.info.facts
        locale = QLocale()
        if self.info.error:
            self.preview_label.setText(f"<span style='color:#d32f2f'>{escape(self.info.error)}</span>")
            self.balance_bars.setOpts(x=[], height=[])
            self.samples.show_images(None, [])
            self.train_bars.setOpts(x=[], height=[])
            return
        summary = facts.summary
        self.samples.show_images(None if summary is None else summary.get("sample_images"),
                                 [] if summary is None else summary["classes"])
        if summary is None:
            if facts.n_samples is not None:
                self.preview_label.setText(f"{locale.toString(facts.n_samples)} samples × "
                                           f"{facts.n_features} features, {facts.n_classes} classes")
            else:
                self.preview_label.setText("Not loaded yet.")
            self.balance_bars.setOpts(x=[], height=[])
            self.train_bars.setOpts(x=[], height=[])
            return
        n, d = summary["shape"]
        lines = [f"<b>{locale.toString(n)} samples × {locale.toString(d)} features</b>"
                 + (f" (images {summary['image_shape'][0]}×{summary['image_shape'][1]})"
                    if summary.get("image_shape") else "")]
        if summary["task"] == "classification":
            counts = summary["class_counts"]
            names = summary["classes"]
            smallest, largest = min(counts), max(counts)
            if smallest == largest:
                lines.append(f"Classification, {len(names)} classes, balanced: {locale.toString(smallest)} each")
            else:
                lines.append(f"Classification, {len(names)} classes. Fewest: "
                             f"{escape(names[counts.index(smallest)])} ({smallest}, {100 * smallest / n:.1f} %); "
                             f"most: {escape(names[counts.index(largest)])} ({largest}, {100 * largest / n:.1f} %)")
            parts = self._split(summary, counts)
            train = parts["train"]
            lines.append(self._training_line(parts, n) + ": " + (
                f"balanced, {locale.toString(train[0])} each" if min(train) == max(train) else
                f"fewest {escape(names[train.index(min(train))])} ({locale.toString(min(train))}), "
                f"most {escape(names[train.index(max(train))])} ({locale.toString(max(train))})"))
            self.train_bars.setOpts(x=list(range(len(train[:MAX_BARS]))), height=train[:MAX_BARS], width=0.8)
            if largest > 3 * max(smallest, 1):
                lines.append("<span style='color:#b26a00'>Imbalanced classes: accuracy can look good while the "
                             "small classes are ignored.</span>")
            shown = counts[:MAX_BARS]
            self.balance_bars.setOpts(x=list(range(len(shown))), height=shown, width=0.8)
            axis = self.balance_plot.getPlotItem().getAxis("bottom")
            step = max(1, len(shown) // 12)
            axis.setTicks([[(i, str(names[i])[:8]) for i in range(0, len(shown), step)]])
            self.balance_plot.setXRange(-0.6, len(shown) - 0.4, padding=0)
            self.balance_plot.setYRange(0, max(shown) * 1.05, padding=0)
        else:
            means = ", ".join(f"{m:.3g}" for m in summary["target_mean"][:4])
            stds = ", ".join(f"{s:.3g}" for s in summary["target_std"][:4])
            lines.append(f"Regression, {summary['n_targets']} target(s): mean {means}, std {stds}")
            lines.append(self._training_line(self._split(summary, [n]), n))
            self.balance_bars.setOpts(x=[], height=[])
            self.train_bars.setOpts(x=[], height=[])
            self.train_bars.setOpts(x=[], height=[])
        self.preview_label.setText("<br>".join(lines))




def labels_beside(images: str) -> str | None:
    """The labels file published next to an IDX images file, if it is there:
    ``train-images-idx3-ubyte.gz`` → ``train-labels-idx1-ubyte.gz``."""
    path = Path(images)
    if "images" not in path.name:
        return None
    guess = path.with_name(path.name.replace("images", "labels").replace("idx3", "idx1"))
    return str(guess) if guess != path and guess.is_file() else None


class SampleGrid(QWidget):
    """A few images of each class, one row per class (name on the left), for image data."""

    CELL = 28                    # pixels per image on screen (8×8 digits are scaled up)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sampleGrid")
        self.setToolTip("The first images of each class, as the network sees them (each stretched to its own "
                        "range): a quick check that the images and their labels belong together.")
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setHorizontalSpacing(6)
        self.grid.setVerticalSpacing(2)
        self.grid.setColumnStretch(1, 1)          # the images get the width, the names what they need
        self.rows: list[tuple[QLabel, QLabel]] = []
        self.hide()

    def show_images(self, images: np.ndarray | None, class_names: list[str]) -> None:
        """``images`` (classes, per class, rows, cols) bytes from the preview, or None to hide."""
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.rows = []
        if images is None or not len(images):
            self.hide()
            return
        k, per, h, w = images.shape
        scale = max(1, self.CELL // max(h, w))
        for c in range(k):
            strip = np.zeros((h, per * (w + 1) - 1), dtype=np.uint8)
            for i in range(per):
                strip[:, i * (w + 1):i * (w + 1) + w] = images[c, i]
            strip = np.ascontiguousarray(strip)
            image = QImage(strip.data, strip.shape[1], strip.shape[0], strip.strides[0],
                           QImage.Format.Format_Grayscale8).copy()
            pixmap = QPixmap.fromImage(image).scaled(strip.shape[1] * scale, strip.shape[0] * scale,
                                                     Qt.AspectRatioMode.KeepAspectRatio,
                                                     Qt.TransformationMode.FastTransformation)
            name = QLabel(escape(str(class_names[c]) if c < len(class_names) else str(c)))
            name.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            picture = QLabel()
            picture.setObjectName(f"samples_{c}")
            picture.setPixmap(pixmap)
            self.grid.addWidget(name, c, 0)
            self.grid.addWidget(picture, c, 1, Qt.AlignmentFlag.AlignLeft)
            self.rows.append((name, picture))
        self.show()
