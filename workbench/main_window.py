"""The main window: menus, docks, files. It owns no training maths and no experiment copy:
the editor panels and the monitor bind to the one ``ExperimentState``; training goes through
the ``TrainingController`` (worker thread)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QRect, QSettings, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QFontMetrics,
    QGuiApplication,
    QKeySequence,
)
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMainWindow, QMenu, QMessageBox, QWidget

from core import __version__
from core.presets import default_experiment
from core.sessions.format import SessionError
from core.spec import SpecError, load_experiment

from .concurrent import JobRunner, shutdown_all
from .docking import hide_stray_tab_bars
from .editor import create_editor_docks, create_presets_menu
from .editor.fields import short_message
from .editor.model_panel import ModelPanel
from .editor.panel import Panel
from .file_names import proposed_name, with_extension
from .labs import create_labs_menu
from .lessons import LessonsTools
from .monitor import TrainingController, create_monitor
from .runs import RunsTools
from .runtime import collect_garbage_on_the_gui_thread, keep_blas_to_one_thread
from .screens import fit_to_screen
from .sessions import SessionTools
from .state import ExperimentState

MAX_RECENT = 10
DEFAULT_SIZE = QSize(1360, 860)          # the first window, on a screen that has room for it
TAB_PADDING = 28                         # a dock tab's margins around its label (pixels)
FILE_FILTER = "Sessions and experiments (*.gwb *.json);;Sessions (*.gwb);;Experiments (*.json)"


def recent_labels(paths: list[str]) -> list[str]:
    """Each path's file name, followed where names repeat by as many of its last folders as tell
    it from the others of that name ("default.json — examples", "default.json — shots"): the
    recent list is read by name, and seven entries reading "default.json" told nothing."""
    parts = [Path(p).parts for p in paths]
    labels: list[str] = []
    for i, own in enumerate(parts):
        twins = [other for j, other in enumerate(parts) if j != i and other[-1:] == own[-1:]]
        depth = 0
        while twins and depth < len(own) - 1:
            depth += 1
            twins = [other for other in twins if other[-depth - 1:] == own[-depth - 1:]]
        folders = Path(*own[-depth - 1:-1]).as_posix() if depth else ""
        labels.append(f"{own[-1]} — {folders}" if depth else own[-1] if own else "")
    return labels


class MainWindow(QMainWindow):
    """Gradient Workbench's window. ``file_opened`` fires after a file was loaded."""

    file_opened = Signal(object)

    def __init__(self, state: ExperimentState | None = None, settings: QSettings | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        collect_garbage_on_the_gui_thread()     # never in the worker threads this window starts
        keep_blas_to_one_thread()               # the training process needs the cores
        self.settings = settings or QSettings("GradientWorkbench", "Gradient Workbench")
        self.state = state or ExperimentState(default_experiment(), self)
        if self.state.parent() is None:
            # The window owns its state. The state's signals reach the window's panels through
            # connections Qt holds; a state left without a parent kept them, and through them the
            # whole closed window, alive for the rest of the process (11,000 objects a window).
            self.state.setParent(self)
        self.controller = TrainingController(self.state, self)
        self.setObjectName("MainWindow")
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        central, monitor_docks = create_monitor(self.controller, self)
        self.setCentralWidget(central)
        self.monitor = central.monitor  # type: ignore[attr-defined]
        self.editor_docks = create_editor_docks(self.state, self)
        for dock in self.editor_docks:
            self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        for i in range(1, len(self.editor_docks)):
            self.tabifyDockWidget(self.editor_docks[0], self.editor_docks[i])
        if self.editor_docks:
            self.editor_docks[0].raise_()
        self.monitor_docks = monitor_docks
        for dock in monitor_docks:
            if self.dockWidgetArea(dock) == Qt.DockWidgetArea.NoDockWidgetArea:
                self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.runs = RunsTools(self)        # Runs dock, File › Export, Tools › Sweep…
        self.lessons = LessonsTools(self)  # Lessons dock (Help › Lessons)
        for dock in self.findChildren(QDockWidget):   # a dock opened joins a row of tabs: room for it
            dock.toggleViewAction().triggered.connect(
                lambda checked, d=dock: self.bring_forward(d) if checked else None)
            # Qt may leave a group's replaced tab bar on screen when docks move (see docking.py)
            dock.dockLocationChanged.connect(self._hide_stray_tab_bars_soon)
            dock.topLevelChanged.connect(self._hide_stray_tab_bars_soon)
        hide_stray_tab_bars(self)
        self._default_layout = self.saveState()
        self._build_menus()
        self.sessions = SessionTools(self)  # autosave, crash recovery, transfer dialog, opening on the worker
        # The status bar: what the controller is doing now (until it changes), and events (saved,
        # stopped, applied) for a few seconds, after which the current state shows again.
        self.controller.state_status.connect(self._show_state_status)
        self.controller.status.connect(self.show_event)
        self.statusBar().messageChanged.connect(self._status_cleared)
        self.controller.mode_changed.connect(self._show_live_edits)
        # An experiment file is read and checked on a worker: the window never waits on a read.
        self.file_reader = JobRunner(self, "open-experiment", plain_errors=(SpecError, SessionError, OSError))
        self.file_reader.finished.connect(self._experiment_read)
        self.file_reader.failed.connect(self._experiment_refused)
        self._reading: Path | None = None
        self.controller.error.connect(self._show_error)
        self.state.file_changed.connect(lambda _: self._update_title())
        self.state.dirty_changed.connect(lambda _: self._update_title())
        self.state.changed.connect(lambda _: self._update_title())
        self.controller.updated.connect(self._update_title)       # training since the last save marks it modified
        self.controller.session_saved.connect(lambda _: self._update_title())
        self.controller.confirm_discard_run = self._maybe_discard_run
        self._train_tips = {name: self.controller.actions[name].toolTip() for name in ("train", "step")}
        self.state.errors_changed.connect(self._explain_disabled_training)
        self._restore_layout()
        self._update_title()

    # ------------------------------------------------------------------ status bar

    def editor_panels(self) -> list[Panel]:
        return [p for d in self.editor_docks if isinstance(p := d.widget().widget(), Panel)]

    def _show_live_edits(self, mode: str) -> None:
        # Edits of a running (or paused) run: each field says whether it applies now or waits.
        live = mode in ("running", "paused")
        for panel in self.editor_panels():
            if panel.binder.run_live != live:
                panel.set_run_live(live)

    def show_event(self, text: str, msecs: int = 5000) -> None:
        """An event (opened, saved, stopped) for ``msecs``; then the controller's state again."""
        self.statusBar().showMessage(text, msecs)

    def _show_state_status(self, text: str) -> None:
        if text:
            self.statusBar().showMessage(text)
        else:
            self.statusBar().clearMessage()

    def _status_cleared(self, text: str) -> None:
        # An event timed out (or a menu's status tip went away): say what is going on now.
        if not text and self.controller.mode_status:
            self.statusBar().showMessage(self.controller.mode_status)

    # ------------------------------------------------------------------ menus

    def _action(self, text: str, slot, shortcut: QKeySequence | str | None = None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(slot)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.new_action = self._action("&New experiment", self.new_experiment, QKeySequence.StandardKey.New,
                                       "Start over on the built-in default experiment")
        self.open_action = self._action("&Open…", self.open_dialog, QKeySequence.StandardKey.Open,
                                        "Open a session (.gwb) or an experiment (.json)")
        self.save_action = self._action("&Save", self.save, QKeySequence.StandardKey.Save,
                                        "Save the session: experiment, weights, optimizer state and history")
        self.save_as_action = self._action("Save &As…", self.save_as, QKeySequence.StandardKey.SaveAs,
                                           "Save the session under a new name")
        self.export_spec_action = self._action("&Export experiment JSON…", self.export_experiment, "Ctrl+Shift+E",
                                               "Write the experiment spec alone, for `gradient-workbench train`")
        self.recent_menu = QMenu("Open &Recent", self)
        file_menu.addActions([self.new_action, self.open_action])
        file_menu.addMenu(self.recent_menu)
        file_menu.addSeparator()
        file_menu.addActions([self.save_action, self.save_as_action, self.export_spec_action])
        file_menu.addMenu(self.runs.export_menu)
        file_menu.addSeparator()
        quit_action = self._action("&Quit", self.close, None, "Close the window (asks first if anything is unsaved)")
        # The platform's Quit key, or Ctrl+Q where it has none (Windows, the offscreen platform).
        quit_action.setShortcuts(QKeySequence.keyBindings(QKeySequence.StandardKey.Quit) or [QKeySequence("Ctrl+Q")])
        file_menu.addAction(quit_action)
        self._refresh_recent()

        edit_menu = bar.addMenu("&Edit")
        undo = self.state.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.state.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcut(QKeySequence.StandardKey.Redo)
        edit_menu.addActions([undo, redo])
        self.undo_action, self.redo_action = undo, redo
        model_panel = self.findChild(ModelPanel)
        if model_panel is not None:
            # The layer table's actions; their keys (Ins, Ctrl+D, Del, Alt+Up/Down) act while the
            # table has the focus, the menu entries on its selected layer.
            layer_menu = edit_menu.addMenu("&Layer")
            layer_menu.setObjectName("layerMenu")
            layer_menu.addActions(list(model_panel.layer_actions.values()))

        self.presets_menu = create_presets_menu(self.state, self)
        bar.addMenu(self.presets_menu)

        train_menu = bar.addMenu("&Training")
        train_menu.addActions(list(self.controller.actions.values()))
        train_menu.addSeparator()
        train_menu.addAction(self.monitor.branching.action)
        toolbar = self.addToolBar("Training")
        toolbar.setObjectName("TrainingToolbar")
        toolbar.addActions(list(self.controller.actions.values()))

        view_menu = bar.addMenu("&View")
        for dock in [*self.editor_docks, *self.monitor_docks, self.runs.dock, self.lessons.dock]:
            view_menu.addAction(dock.toggleViewAction())
        view_menu.addSeparator()
        view_menu.addAction(self._action("Reset &layout", self.reset_layout, "Ctrl+Shift+R",
                                         "Put every panel back where it started"))

        bar.addMenu(self.runs.tools_menu)
        bar.addMenu(create_labs_menu(self.state, self))

        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.lessons.action)
        help_menu.addAction(self._action("&About Gradient Workbench", self.about, QKeySequence.StandardKey.HelpContents,
                                         "What Gradient Workbench is, and its version"))

    def _explain_disabled_training(self, errors: dict[str, str]) -> None:
        """While the experiment has errors Train and Step are disabled: their tooltips say why."""
        first = next(iter(errors.items()), None)
        for name, tip in self._train_tips.items():
            action = self.controller.actions[name]
            action.setToolTip(tip if first is None
                              else f"Not available: {first[0]}: {short_message(first[0], first[1])}")

    # ------------------------------------------------------------------ files

    def maybe_discard(self) -> bool:
        """Ask before losing unsaved edits or unsaved training; True if it is fine to go on."""
        steps = self.controller.unsaved_steps
        if not self.state.dirty and not steps:
            return True
        parts = []
        if self.state.dirty:
            parts.append("The experiment has unsaved changes.")
        if steps:
            parts.append(f"The run has trained {steps:,} step{'s' if steps != 1 else ''} since it was last saved.")
        return self._ask_save(" ".join(parts) + " Save the session first?")

    def _maybe_discard_run(self) -> bool:
        """A fresh model is about to replace a run with unsaved training (Train on a finished run
        or after a structural edit, Reset weights, a branch). Its curves stay as a ghost run (the
        Runs dock lists it), so the question is asked only when work would truly be lost: a run
        saved to (or opened from) a session file that trained since, or one the user named."""
        if not (self._run_from_session_file() or self._run_named_by_user()):
            self.statusBar().showMessage("The previous run is kept as a ghost (faint curves; listed in the Runs "
                                         "dock); save a run to keep its weights", 8000)
            return True
        steps = self.controller.unsaved_steps
        return self._ask_save(f"Starting over discards the current run: {steps:,} step{'s' if steps != 1 else ''} "
                              "trained since it was last saved. Save the session first?")

    def _run_from_session_file(self) -> bool:
        return self.state.file is not None and self.state.file.suffix.lower() == ".gwb"

    def _run_named_by_user(self) -> bool:
        """The experiment's name was typed in this window (an edit of the Name field since it was
        opened): a run the user cares to call something."""
        stack = self.state.undo_stack
        return any(stack.text(i) in ("Change name", "Set name") for i in range(stack.index()))

    def _ask_save(self, text: str) -> bool:
        answer = QMessageBox.question(
            self, "Unsaved changes", text,
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def new_experiment(self) -> None:
        if self.controller.busy or not self.maybe_discard():
            return
        self.state.load(default_experiment(), None)
        self.controller.open_session(None)      # the old run's plots belong to the old experiment

    def open_dialog(self) -> None:
        folder = str(self.state.file.parent) if self.state.file else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open session or experiment", folder, FILE_FILTER)
        if path:
            self.open_file(Path(path))

    def open_file(self, path: Path | str) -> bool:
        """Open a ``.gwb`` session or an experiment ``.json``; errors go to a dialog, the window
        keeps its current experiment."""
        path = Path(path)
        if self.controller.busy:
            self._show_error("Stop training before opening another file.")
            return False
        if not self.maybe_discard():
            return False
        if path.suffix.lower() == ".gwb":
            return self._open_session_file(path)
        self._reading = path
        self.show_event(f"Reading {path.name}…", 0)
        self.file_reader.submit(lambda _progress, _should_stop: load_experiment(path))
        return True

    @property
    def opening_file(self) -> bool:
        """An experiment file is being read (``file_opened`` or an error dialog follows; a
        session is read by the controller, busy meanwhile)."""
        return self._reading is not None

    def _experiment_read(self, experiment: Any) -> None:
        path, self._reading = self._reading, None
        if path is None:
            return
        if self.controller.busy:                 # a run was started while the file was read
            self._show_error(f"Cannot open {path.name}: stop training before opening another file.")
            return
        self.state.load(experiment, None, path.parent)
        self.controller.open_session(None)
        self._add_recent(path)
        self.show_event(f"Opened {path}")
        self.file_opened.emit(path)

    def _experiment_refused(self, message: str) -> None:
        path, self._reading = self._reading, None
        if path is None:
            return
        self.statusBar().clearMessage()
        self._show_error(f"Cannot open {path.name}:\n{message}")

    def _open_session_file(self, path: Path) -> bool:
        """Load and restore the session on the worker thread; the state follows when it succeeded
        (errors arrive as the controller's ``error``, shown as a dialog)."""
        def opened(session: Any) -> None:
            recorded = session.state.get("base_dir")
            self.state.load(session.experiment, path, Path(recorded) if recorded and Path(recorded).is_dir() else None)
            self._add_recent(path)
            self.show_event(f"Opened {path}")
            self.file_opened.emit(path)

        return self.controller.open_session_file(path, opened)

    def save(self) -> bool:
        if self.state.file is None or self.state.file.suffix.lower() != ".gwb":
            return self.save_as()
        return self._save_to(self.state.file)

    def save_as(self) -> bool:
        start = str(self.state.file or self.sessions.suggested_path
                    or Path.home() / f"{proposed_name(self.state.experiment.name)}.gwb")
        path, _ = QFileDialog.getSaveFileName(self, "Save session", start, "Sessions (*.gwb)")
        if not path:
            return False
        return self._save_to(with_extension(Path(path), ".gwb"))

    def _save_to(self, path: Path) -> bool:
        steps = self.controller.unsaved_steps
        if steps and self.controller.run_superseded:
            answer = QMessageBox.question(
                self, "Save the edited experiment?",
                f"The trained run ({steps:,} steps since it was last saved) belongs to the experiment as it was "
                "before your last edits. Saving now writes the edited experiment with fresh weights, and that "
                "run is lost. To keep the run, cancel and undo the edits (Edit › Undo), then save.",
                QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel)
            if answer != QMessageBox.StandardButton.Save:
                return False
        try:
            self.controller.save_session(path)
        except (OSError, SessionError, ValueError) as exc:
            # Say what is on disk now, not what a failed atomic write usually leaves: the file (or
            # its folder) may have been deleted while the window was open.
            if path.is_file():
                left = "the previous file is intact"
            elif not path.parent.is_dir():
                left = f"its folder {path.parent} no longer exists, and nothing was written"
            else:
                left = "nothing was written"
            self._show_error(f"Could not save {path.name}; {left}.\n{exc}")
            return False
        self.state.mark_saved(path)
        self.sessions.saved(path)           # the recovery copy holds nothing new any more
        self._add_recent(path)
        self.show_event(f"Saved {path}")
        return True

    def export_experiment(self) -> None:
        start = str((self.state.file or Path.home() / "experiment").with_suffix(".json"))
        path, _ = QFileDialog.getSaveFileName(self, "Export experiment", start, "Experiments (*.json)")
        if not path:
            return
        from core.sessions.format import atomic_write

        text = self.state.experiment.to_json().encode("utf-8")
        try:
            atomic_write(path, lambda fh: fh.write(text))
        except OSError as exc:
            self._show_error(f"Could not write {path}:\n{exc}")

    def _recent(self) -> list[str]:
        value = self.settings.value("recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def _add_recent(self, path: Path) -> None:
        entry = str(path.resolve())
        recent = [entry] + [p for p in self._recent() if p != entry]
        self.settings.setValue("recent", recent[:MAX_RECENT])
        self._refresh_recent()

    def open_recent(self, entry: str) -> bool:
        """File › Open Recent: a file that has gone since (deleted, renamed, on an unmounted disk) is
        said so and dropped from the list; the window keeps what it has."""
        path = Path(entry)
        if not path.is_file():
            self.settings.setValue("recent", [p for p in self._recent() if p != entry])
            self._refresh_recent()
            self._show_error(f"Cannot open {path.name}: the file no longer exists.\n{path}\n"
                             "It was removed from the recent files.")
            return False
        return self.open_file(path)

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        recent = self._recent()
        for i, (entry, label) in enumerate(zip(recent, recent_labels(recent), strict=True)):
            action = self.recent_menu.addAction(f"&{i + 1} {label}")
            action.setToolTip(entry)
            action.triggered.connect(lambda _=False, p=entry: self.open_recent(p))
        self.recent_menu.setEnabled(bool(recent))

    # ------------------------------------------------------------------ drag and drop

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt override)
        if self._dropped_file(event.mimeData().urls()) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt override)
        path = self._dropped_file(event.mimeData().urls())
        if path is not None:
            event.acceptProposedAction()
            self.open_file(path)

    @staticmethod
    def _dropped_file(urls: list[QUrl]) -> Path | None:
        for url in urls:
            if url.isLocalFile() and Path(url.toLocalFile()).suffix.lower() in (".gwb", ".json"):
                return Path(url.toLocalFile())
        return None

    # ------------------------------------------------------------------ window state

    def _update_title(self) -> None:
        name = self.state.file.name if self.state.file else self.state.experiment.name
        title = f"{name}[*] — Gradient Workbench"      # Qt shows [*] as "*" while modified
        if title != self.windowTitle():
            self.setWindowTitle(title)
        self.setWindowModified(self.state.dirty or self.controller.unsaved_steps > 0)

    def _restore_layout(self) -> None:
        """The saved geometry and dock layout, if the saved window still lies on a screen;
        otherwise a first window sized from the screen it opens on."""
        geometry = self.settings.value("geometry")
        frame = self.settings.value("frame")        # where the window was, as the window manager framed it
        fits = not isinstance(frame, QRect) or self._on_a_screen(frame)
        restored = (fits and isinstance(geometry, QByteArray) and not geometry.isEmpty()
                    and self.restoreGeometry(geometry) and self._on_a_screen(self.geometry()))
        if restored and isinstance(frame, QRect):
            # restoreGeometry can place the frame a title bar's height off (a bar of desktop left
            # above the window): move() places the frame, exactly where it was.
            self.move(frame.topLeft())
        if not restored:
            self.fit_to_screen()
        layout = self.settings.value("windowState")
        if isinstance(layout, QByteArray) and not layout.isEmpty():
            self._restore_dock_layout(layout)
        elif not restored:
            self.fit_side_columns()

    @staticmethod
    def _on_a_screen(rect: QRect) -> bool:
        """Whether ``rect`` lies within one screen's available area: a window saved on a screen that
        has gone is placed afresh (Qt would squeeze it into a corner of the one that is left)."""
        return any(screen.availableGeometry().contains(rect) for screen in QGuiApplication.screens())

    def fit_to_screen(self) -> None:
        """Size the window to ``DEFAULT_SIZE`` or the available area of its screen, whichever is
        smaller (title bar and frame included), and centre it there."""
        fit_to_screen(self, DEFAULT_SIZE)

    def _tab_row_width(self, row: list[QDockWidget]) -> int:
        """The width a row of tabified docks needs for every tab label in full."""
        metrics = QFontMetrics(self.font())
        return sum(metrics.horizontalAdvance(d.windowTitle()) + TAB_PADDING for d in row)

    def bring_forward(self, dock: QDockWidget) -> None:
        """A dock opened from the View menu is the tab shown in its row (Qt put it back behind the
        group's current tab, where the user who asked for it could not see it), with room for its tab."""
        self.widen_column_for(dock)
        dock.raise_()

    def widen_column_for(self, dock: QDockWidget) -> None:
        """Widen ``dock``'s column, if need be, so that its row of tabs (one more since the dock was
        opened from the View menu or Help › Lessons) shows every label in full: the Lessons made
        six tabs of the left column's five, which read "Mo…", "Optimi…", and Sharpness five of the
        right column's four. Never narrows a column the user widened."""
        need = self._tab_row_width([d for d in (dock, *self.tabifiedDockWidgets(dock)) if not d.isHidden()])
        if need > dock.width():
            self.resizeDocks([dock], [need], Qt.Orientation.Horizontal)

    def fit_side_columns(self) -> None:
        """Give each side dock area the width its widest tab row needs, so that no tab label is
        elided (the central plot takes what is left)."""
        for area in (Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea):
            docks = [d for d in self.findChildren(QDockWidget) if self.dockWidgetArea(d) == area and not d.isHidden()]
            if not docks:
                continue
            rows = [[dock, *self.tabifiedDockWidgets(dock)] for dock in docks]
            need = max(self._tab_row_width(row) for row in rows)
            self.resizeDocks([docks[0]], [max(need, docks[0].width())], Qt.Orientation.Horizontal)
            groups: list[QDockWidget] = []
            for row in rows:                    # one dock per tab group, top to bottom
                if not any(d in groups for d in row):
                    groups.append(row[0])
            if len(groups) == 2:                # the stacked metrics plots get the taller share
                self.resizeDocks(groups, [int(self.height() * 0.58), int(self.height() * 0.42)],
                                 Qt.Orientation.Vertical)

    def _hide_stray_tab_bars_soon(self, *_: object) -> None:
        """After Qt has laid the docks out again (the next pass of the event loop)."""
        QTimer.singleShot(0, self, lambda: hide_stray_tab_bars(self))

    def _restore_dock_layout(self, state: QByteArray) -> None:
        """``restoreState``, then hide the tab bars it leaves on screen (Qt 6.11 keeps a group's
        replaced bar visible): every restore goes through here, so none forgets the clean-up."""
        self.restoreState(state)
        hide_stray_tab_bars(self)

    def reset_layout(self) -> None:
        self._restore_dock_layout(self._default_layout)
        for dock in [*self.editor_docks, *self.monitor_docks]:
            dock.setVisible(not dock.property("closedAtStart"))

    def about(self) -> None:
        QMessageBox.about(
            self, "About Gradient Workbench",
            f"<b>Gradient Workbench {__version__}</b><p>Train deep feed-forward networks and see, layer by "
            "layer, why they train or fail.</p><p>The lessons of chapter 11 of Aurélien Géron's "
            "<i>Hands-On Machine Learning</i>, on your own desktop.</p>")

    def _show_error(self, message: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, "Gradient Workbench", message, QMessageBox.StandardButton.Ok,
                          self)
        box.setObjectName("errorDialog")
        box.open()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        if not self.sessions.confirm_close() or not self.maybe_discard():
            event.ignore()
            return
        self.controller.shutdown()
        self.runs.shutdown()                # after the question: its Save may have queued a load
        shutdown_all(self)                  # every other job runner the window owns (the data preview)
        self.sessions.clean_exit()
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("frame", self.frameGeometry())
        self.settings.setValue("windowState", self.saveState())
        event.accept()
