"""Sessions in the window (issues 3 and 4): autosave while training, restore after a crash,
"New experiment from this model" (transfer learning), opening a session on the worker with a
busy indicator, and the questions asked before closing during a run.

``SessionTools(window)`` wires it all into a ``MainWindow``; the window calls ``saved(path)``
after a clean save and ``clean_exit()`` when it closes normally.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox, QProgressBar

from core.sessions.recovery import Recoverable, describe_copy, discard

from .autosave import AutosaveManager
from .preferences import AutosaveDialog, DownloadDialog, ThreadsDialog, apply_mirror, threads_preference
from .recovery_dialog import DISCARD, RESTORE, RecoveryDialog, crashed_copies
from .transfer_dialog import TransferDialog

__all__ = ["SessionTools", "ask_stop_and_quit"]


def ask_stop_and_quit(parent: Any) -> bool:
    """Closing during training: True for "Stop and quit", False for Cancel."""
    box = QMessageBox(QMessageBox.Icon.Question, "Training is running",
                      "A run is training. Stop it (after the current batch) and quit?",
                      QMessageBox.StandardButton.NoButton, parent)
    box.setObjectName("stopAndQuitDialog")
    stop = box.addButton("&Stop and quit", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(stop)
    box.exec()
    return box.clickedButton() is stop


def _menu(window: Any, title: str) -> QMenu | None:
    for action in window.menuBar().actions():
        menu = action.menu()
        if isinstance(menu, QMenu) and menu.title().replace("&", "") == title:
            return menu
    return None


class SessionTools(QObject):
    """The window's session features; see the module docstring."""

    _copies_found = Signal(list)  # from the thread that looked for recovery copies

    def __init__(self, window: Any, offer_recovery: bool = True) -> None:
        super().__init__(window)
        self._copies_found.connect(self._show_recovery)  # queued: shown on the GUI thread
        self.window = window
        self.controller = window.controller
        self.state = window.state
        self.autosave = AutosaveManager(self.controller, window.settings, self)
        self.suggested_path: Path | None = None      # Save As starts here (a restored session's file)
        self.recovery_dialog: RecoveryDialog | None = None
        self.transfer_dialog: TransferDialog | None = None
        self.download_dialog: DownloadDialog | None = None

        self.busy = QProgressBar()
        self.busy.setObjectName("openingBusy")
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.setTextVisible(False)
        self.busy.hide()
        window.statusBar().addPermanentWidget(self.busy)
        self.controller.opening.connect(self._on_opening)
        self.controller.crashed.connect(self.training_crashed)
        self.crash_box: QMessageBox | None = None

        self.transfer_action = QAction("New experiment from this &model…", self)
        self.transfer_action.setObjectName("transferAction")
        self.transfer_action.setShortcut(QKeySequence("Ctrl+Shift+N"))
        self.transfer_action.setStatusTip("Start a new experiment on the lower layers of a saved session "
                                          "(transfer learning: pick layers to reuse and to freeze)")
        self.transfer_action.triggered.connect(self.new_from_model)
        self.autosave_action = QAction("&Autosave settings…", self)
        self.autosave_action.setObjectName("autosaveSettingsAction")
        self.autosave_action.setShortcut(QKeySequence("Ctrl+Alt+S"))
        self.autosave_action.setStatusTip("How often a recovery copy is written while training")
        self.autosave_action.triggered.connect(self.autosave_settings)
        self.download_action = QAction("&Data set downloads…", self)
        self.download_action.setObjectName("downloadSettingsAction")
        self.download_action.setShortcut(QKeySequence("Ctrl+Alt+D"))
        self.download_action.setStatusTip("A mirror to download Fashion-MNIST, MNIST and CIFAR-10 from")
        self.download_action.triggered.connect(self.download_settings)
        self.threads_action = QAction("Training &threads…", self)
        self.threads_action.setObjectName("threadsSettingsAction")
        self.threads_action.setShortcut(QKeySequence("Ctrl+Alt+T"))
        self.threads_action.setStatusTip("How many threads a run's large matrix products are split over")
        self.threads_action.triggered.connect(self.threads_settings)
        self.threads_dialog: ThreadsDialog | None = None
        apply_mirror(window.settings)
        self._apply_threads()
        file_menu = _menu(window, "File")
        if file_menu is not None:
            file_menu.insertAction(window.open_action, self.transfer_action)
        train_menu = _menu(window, "Training")
        if train_menu is not None:
            train_menu.addSeparator()
            train_menu.addAction(self.autosave_action)
            train_menu.addAction(self.download_action)
            train_menu.addAction(self.threads_action)
        self.controller.mode_changed.connect(lambda _: self._update_actions())
        self._update_actions()
        self.state.file_changed.connect(self._on_file_changed)
        if offer_recovery:
            QTimer.singleShot(0, self.offer_recovery)

    # ------------------------------------------------------------------ hooks from the window

    def saved(self, path: Path) -> None:
        self.suggested_path = None
        self.autosave.saved(path)

    def clean_exit(self) -> None:
        self.autosave.clean_exit()

    def confirm_close(self) -> bool:
        """Closing the window: during a run ask "Stop and quit?"; on yes the run is stopped
        (between batches) before the unsaved-changes question."""
        if not self.controller.busy:
            return True
        if not ask_stop_and_quit(self.window):
            return False
        self.controller.stop()
        return True

    def _on_file_changed(self, file: Path | None) -> None:
        if file is not None:
            self.suggested_path = None

    def _update_actions(self) -> None:
        self.transfer_action.setEnabled(not self.controller.busy)

    def _on_opening(self, path: Path | None) -> None:
        self.busy.setVisible(path is not None)
        if path is not None:
            self.busy.setToolTip(f"Opening {path}")
            self.window.setCursor(Qt.CursorShape.BusyCursor)
        else:
            self.window.unsetCursor()

    # ------------------------------------------------------------------ recovery

    def training_crashed(self, message: str) -> QMessageBox:
        """The training process died: say so, keep the plots, offer the run's last autosave."""
        self.autosave.hook.flush()
        path = self.autosave.path
        # this window's own copy: its lock is ours, so list_recoverable (copies of dead owners) skips it
        copy = describe_copy(path, self.window.state.file if self.window.state.file and
                             self.window.state.file.suffix.lower() == ".gwb" else None) \
            if path is not None and path.is_file() else None
        text = message + (f"\n\nThe last autosave holds the run at epoch {copy.epoch}, step {copy.step}."
                          if copy is not None else "\n\nNo autosave of this run was written.")
        box = QMessageBox(QMessageBox.Icon.Critical, "Training process ended", text,
                          QMessageBox.StandardButton.NoButton, self.window)
        box.setObjectName("crashDialog")
        reopen = box.addButton("Open the last autosave", QMessageBox.ButtonRole.AcceptRole) if copy else None
        box.addButton("Keep the plots", QMessageBox.ButtonRole.RejectRole)

        def answered() -> None:
            self.crash_box = None
            if reopen is not None and copy is not None and box.clickedButton() is reopen:
                self.restore(copy)
            box.deleteLater()

        box.finished.connect(lambda _: answered())
        self.crash_box = box
        box.open()
        return box

    def offer_recovery(self) -> None:
        """Look for recovery copies on a worker thread (reading them is file input: the GUI never
        waits on it), then show the restore dialog (non-blocking) if runs left some."""
        def find() -> None:
            try:
                items = crashed_copies()
            except Exception:  # noqa: BLE001 — nothing to offer is better than a crash at start-up
                items = []
            with contextlib.suppress(RuntimeError):  # the window closed meanwhile
                self._copies_found.emit(items)

        threading.Thread(target=find, name="gw-find-recovery-copies", daemon=True).start()

    def _show_recovery(self, items: list[Recoverable]) -> RecoveryDialog | None:
        if not items or self.recovery_dialog is not None:
            return None
        dialog = RecoveryDialog(items, self.window)
        dialog.finished.connect(lambda _: self._recovery_answered(dialog))
        self.recovery_dialog = dialog
        dialog.open()
        return dialog

    def _recovery_answered(self, dialog: RecoveryDialog) -> None:
        self.recovery_dialog = None
        chosen = dialog.selected()
        dialog.deleteLater()
        if dialog.choice == DISCARD:
            for item in chosen:
                discard(item)
            self.window.statusBar().showMessage(f"Discarded {len(chosen)} recovery cop"
                                                f"{'y' if len(chosen) == 1 else 'ies'}", 5000)
        elif dialog.choice == RESTORE and chosen:
            self.restore(chosen[0])

    def restore(self, item: Recoverable) -> bool:
        """Open a recovery copy (on the worker) as an unsaved session: title marked modified,
        Save asks where, starting at the session it belongs to."""
        if self.controller.busy or not self.window.maybe_discard():
            return False

        def opened(session: Any) -> None:
            recorded = session.state.get("base_dir")
            base = Path(recorded) if recorded and Path(recorded).is_dir() else None
            self.state.load(session.experiment, None, base)
            self.state.undo_stack.resetClean()          # unsaved: the title shows it, closing asks
            self.suggested_path = item.session_path
            self.autosave.restored_from.append(item.path)
            self.window.statusBar().showMessage(
                f"Restored {item.name} (epoch {item.epoch}, step {item.step}) — not saved yet", 8000)

        return bool(self.controller.open_session_file(item.path, opened))

    # ------------------------------------------------------------------ transfer

    def new_from_model(self) -> TransferDialog | None:
        """Open the transfer dialog (non-blocking) on the current session, if it is saved."""
        if self.controller.busy:
            return None
        source = self.state.file if self.state.file is not None and self.state.file.suffix == ".gwb" else None
        if source is None or self.state.dirty or self.controller.unsaved_steps:
            box = QMessageBox(QMessageBox.Icon.Question, "Reuse layers of a saved model",
                              "Layers are reused from a saved session. Save the current one first, or pick "
                              "another session file?", QMessageBox.StandardButton.NoButton, self.window)
            box.setObjectName("transferSaveFirst")
            save = box.addButton("&Save first…", QMessageBox.ButtonRole.AcceptRole)
            pick = box.addButton("&Pick a file…", QMessageBox.ButtonRole.ActionRole)
            box.addButton(QMessageBox.StandardButton.Cancel)
            box.exec()
            if box.clickedButton() is save:
                if not self.window.save():
                    return None
                source = self.state.file
            elif box.clickedButton() is pick:
                folder = str(self.state.file.parent) if self.state.file else ""
                path, _ = QFileDialog.getOpenFileName(self.window, "Reuse layers of", folder, "Sessions (*.gwb)")
                if not path:
                    return None
                source = Path(path)
            else:
                return None
        return self.show_transfer_dialog(source)

    def show_transfer_dialog(self, source: Path | None) -> TransferDialog:
        dialog = TransferDialog(self.state.data, source, self.window)
        dialog.accepted.connect(lambda: self._transfer_accepted(dialog))
        dialog.finished.connect(lambda _: dialog.deleteLater())
        self.transfer_dialog = dialog
        dialog.open()
        return dialog

    def _transfer_accepted(self, dialog: TransferDialog) -> None:
        experiment = dialog.experiment()
        self.transfer_dialog = None
        # "Pick a file…" reuses another session's layers and leaves the current edits and training
        # unsaved: the new experiment replaces them only once the user said so, as Open asks.
        if experiment is None or self.controller.busy or not self.window.maybe_discard():
            return
        base = self.state.base_dir
        self.state.load(experiment, None, base)
        self.state.undo_stack.resetClean()              # a new, unsaved experiment
        self.controller.open_session(None)              # the old run's plots belong to the old session
        reused = experiment.model.transfer.layers if experiment.model.transfer else ()
        self.window.statusBar().showMessage(f"New experiment reusing layers {list(reused or [])}: "
                                            "press Train", 8000)

    # ------------------------------------------------------------------ preferences

    def download_settings(self) -> None:
        dialog = DownloadDialog(self.window.settings, self.window)
        dialog.setObjectName("downloadDialog")
        dialog.finished.connect(lambda _: dialog.deleteLater())
        self.download_dialog = dialog
        dialog.open()

    def threads_settings(self) -> None:
        trainer = self.controller.trainer
        dialog = ThreadsDialog(self.window.settings, getattr(trainer, "blas_threads", None), self.window)
        dialog.accepted.connect(self._apply_threads)
        dialog.finished.connect(lambda _: dialog.deleteLater())
        self.threads_dialog = dialog
        dialog.open()

    def _apply_threads(self) -> None:
        """Hand the preference to the training worker: every later build takes it."""
        self.controller.worker.threads = threads_preference(self.window.settings)

    def autosave_settings(self) -> None:
        dialog = AutosaveDialog(self.window.settings, self.window)
        dialog.accepted.connect(lambda: self.autosave.reconfigure())
        dialog.finished.connect(lambda _: dialog.deleteLater())
        dialog.open()
