"""Autosave during training (issue 3): the GUI half of ``core.sessions.recovery``.

``AutosaveHook`` is called by the training worker after every step and epoch (on the worker
thread, between batches). When ``core.sessions.recovery.Autosaver.due`` says so it copies the trainer's
state (``take_snapshot``: copies only, the one cost training pays) and hands the copy to a
one-thread writer, so serializing and the fsync never hold training up. A copy that comes due
while the previous one is still being written is skipped (the next step retries).

``AutosaveManager`` (GUI thread) decides where the copy goes — ``.RUN.gwb.<instance>.recovery``
next to a saved session (each running instance its own, owned under its OS lock),
``<user data>/recovery/untitled-….gwb`` for an unsaved one — and deletes it on
a clean save or a clean close. A crash leaves it for the next start (``recovery_dialog``).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSettings, Signal

from core.sessions.recovery import (
    DEFAULT_INTERVAL,
    Autosaver,
    discard,
    instance_id,
    new_untitled_id,
    recovery_path_for,
)
from core.sessions.trainer_io import Snapshot, take_snapshot

INTERVAL_KEY = "autosave/interval_seconds"
EVERY_EPOCH_KEY = "autosave/every_epoch"
ENABLED_KEY = "autosave/enabled"
WRITE_WAIT_SECONDS = 30.0
#: Epoch copies closer together than this are skipped (a tiny network finishes hundreds of
#: epochs a second; writing each would only load the machine): the next epoch end takes it.
MIN_GAP_SECONDS = 2.0

#: Recovery copies this process is writing now (another window of the same process must not
#: offer them as "left by a crash").
LIVE_COPIES: set[Path] = set()


def autosave_settings(settings: QSettings) -> tuple[bool, float, bool]:
    """(enabled, interval in seconds, every epoch) from the settings, with the defaults."""
    def flag(key: str) -> bool:
        value = settings.value(key, True)
        return value if isinstance(value, bool) else str(value).lower() not in ("false", "0", "no")

    try:
        interval = float(settings.value(INTERVAL_KEY, DEFAULT_INTERVAL))
    except (TypeError, ValueError):
        interval = DEFAULT_INTERVAL
    return flag(ENABLED_KEY), interval if interval > 0 else DEFAULT_INTERVAL, flag(EVERY_EPOCH_KEY)


class AutosaveHook:
    """Worker-side: ``hook(trainer, kind)`` between batches. Thread-safe configuration."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._autosaver: Autosaver | None = None
        self._extra: dict[str, Any] = {}
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gw-autosave")
        self._pending: Future[bool] | None = None
        self.copy_seconds: list[float] = []     # how long training waited for each copy (measured)
        self.on_written: Any = None             # callable(path, ok) called on the writer thread
        self.last_error: Exception | None = None

    @property
    def autosaver(self) -> Autosaver | None:
        return self._autosaver

    def configure(self, autosaver: Autosaver | None, extra_state: dict[str, Any] | None = None) -> None:
        with self._lock:
            self._autosaver = autosaver
            self._extra = dict(extra_state or {})

    def restart_clock(self) -> None:
        """A run (re)starts: the interval counts from now."""
        with self._lock:
            if self._autosaver is not None:
                self._autosaver.last_saved = self._autosaver.clock()

    def __call__(self, trainer: Any, kind: str) -> None:
        import time

        with self._lock:
            saver, extra = self._autosaver, self._extra
            if saver is None or kind not in ("step", "epoch"):
                return
            if self._pending is not None and not self._pending.done():
                return                          # still writing the last copy: try again next step
            if not saver.due(kind, trainer.step, trainer.epoch):
                return
            if saver.saved_at is not None and saver.clock() - saver.last_saved < min(MIN_GAP_SECONDS, saver.interval):
                return
            saver.mark(trainer.step, trainer.epoch)
            t0 = time.perf_counter()
            try:
                snapshot = take_snapshot(trainer, extra)
            except Exception as exc:  # noqa: BLE001 — autosave never stops training
                self.last_error = exc
                return
            self.copy_seconds.append(time.perf_counter() - t0)
            self._pending = self._writer.submit(self._write, saver, snapshot)

    def _write(self, saver: Autosaver, snapshot: Snapshot) -> bool:
        ok = saver.write(snapshot)
        callback = self.on_written
        if callback is not None:
            callback(saver.path, ok)
        return ok

    def flush(self, timeout: float = WRITE_WAIT_SECONDS) -> None:
        """Wait for a copy being written (before deleting it, so it cannot come back)."""
        pending = self._pending
        if pending is not None:
            try:
                pending.result(timeout)
            except Exception:  # noqa: BLE001 — a failed write is in last_error; nothing to wait for
                pass

    def close(self) -> None:
        self.configure(None)
        self.flush()
        self._writer.shutdown(wait=True)


class AutosaveManager(QObject):
    """GUI-side: keeps the worker's hook pointed at the right recovery copy, deletes it on a
    clean save / close. ``written(path, ok)`` is re-emitted on the GUI thread."""

    written = Signal(object, bool)
    _written_any_thread = Signal(object, bool)

    def __init__(self, controller: Any, settings: QSettings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.state = controller.state
        self.settings = settings
        self.hook = AutosaveHook()
        self.hook.on_written = lambda path, ok: self._written_any_thread.emit(path, ok)
        self._written_any_thread.connect(self.written)   # queued: from the writer thread to here
        self.restored_from: list[Path] = []   # recovery copies this window restored (kept until saved)
        self._untitled = new_untitled_id()
        self._instance = instance_id()      # this process's copies are its own, under its lock
        self._closed = False
        controller.worker.autosave = self.hook
        controller.mode_changed.connect(self._on_mode)
        self.state.file_changed.connect(lambda _: self.reconfigure(discard_old=True))
        self.reconfigure()

    @property
    def path(self) -> Path | None:
        saver = self.hook.autosaver
        return None if saver is None else saver.path

    def reconfigure(self, discard_old: bool = False) -> None:
        """Point the hook at the copy for the current file, with the interval of the settings."""
        if self._closed:
            return
        old = self.hook.autosaver
        enabled, interval, every_epoch = autosave_settings(self.settings)
        file = self.state.file if self.state.file is not None and self.state.file.suffix == ".gwb" else None
        target = recovery_path_for(file, self._untitled, instance=self._instance)
        saver = None
        if enabled:
            saver = Autosaver(target, every_epoch=every_epoch, interval=interval, session_path=file,
                              register_copy=True, owner=self._instance)
        base = self.state.base_dir          # relative data paths of the restored copy resolve here
        self.hook.configure(saver, {"base_dir": str(Path(base).resolve())} if base is not None else None)
        if old is not None and (discard_old or old.path != target or saver is None):
            self._forget(old.path)      # another file, or the run was saved / left: the copy is stale
        if saver is not None:
            LIVE_COPIES.add(target.resolve())

    def _forget(self, path: Path) -> None:
        self.hook.flush()
        discard(path)
        LIVE_COPIES.discard(path.resolve())

    def _on_mode(self, mode: str) -> None:
        if mode in ("running", "stepping"):
            self.reconfigure()          # settings may have changed since
            self.hook.restart_clock()

    def saved(self, path: Path) -> None:
        """The session was saved cleanly: its recovery copies hold nothing new."""
        self.reconfigure()
        saver = self.hook.autosaver
        if saver is not None:
            self._forget(saver.path)
        for copy in self.restored_from:
            self._forget(copy)
        self.restored_from.clear()

    def clean_exit(self) -> None:
        """The window closes normally (the user saved or chose to discard): delete the copies."""
        if self._closed:
            return
        saver = self.hook.autosaver
        self._closed = True
        self.hook.close()
        if saver is not None:
            self._forget(saver.path)
        for copy in self.restored_from:
            self._forget(copy)
        self.restored_from.clear()
