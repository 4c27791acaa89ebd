"""The one experiment state object the whole window binds to (model / view).

The truth is a canonical experiment dict (``Experiment.to_dict()``) that always validates.
Panels never keep their own copy: they call ``set_field(path, value)``; a valid edit becomes
an undoable command on ``undo_stack`` and ``changed`` is emitted, an invalid one is kept as
a field error (``errors``: field path → the validator's message) so the panel can mark the
field and the window can disable Train until it is fixed. The spec is derived from this
state, never scraped from widgets.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from core.spec import Experiment, SpecError, get_path, parse_experiment, parse_path, set_path


class _Edit(QUndoCommand):
    """One edit: the canonical dicts and the parsed experiments on both sides (no re-parsing)."""

    def __init__(self, state: ExperimentState, before: tuple[dict, Experiment], after: tuple[dict, Experiment],
                 text: str, base_dirs: tuple[Path | None, Path | None] | None = None) -> None:
        super().__init__(text)
        self._state, self._before, self._after = state, before, after
        self._base_dirs = base_dirs       # (before, after) for an edit that changes it (a preset)

    def redo(self) -> None:
        if self._base_dirs is not None:
            self._state.base_dir = self._base_dirs[1]
        self._state._apply(*self._after)

    def undo(self) -> None:
        if self._base_dirs is not None:
            self._state.base_dir = self._base_dirs[0]
        self._state._apply(*self._before)


class ExperimentState(QObject):
    """The current experiment, its undo history, its field errors and its file."""

    changed = Signal(object)          # the new Experiment, after every applied edit / undo / redo
    errors_changed = Signal(dict)     # field path → message of the edits that were refused
    file_changed = Signal(object)     # Path | None of the session / experiment file
    dirty_changed = Signal(bool)

    def __init__(self, experiment: Experiment, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._data = experiment.to_dict()
        self._experiment = experiment
        self.errors: dict[str, str] = {}
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._clean_changed)
        self.file: Path | None = None
        self.base_dir: Path | None = None

    # ------------------------------------------------------------------ reading

    @property
    def experiment(self) -> Experiment:
        return self._experiment

    @property
    def data(self) -> dict[str, Any]:
        """A deep copy of the canonical dict (callers may modify it freely)."""
        return copy.deepcopy(self._data)

    def get(self, path: str) -> Any:
        return copy.deepcopy(get_path(self._data, parse_path(path)))

    @property
    def valid(self) -> bool:
        """False while any field holds a refused value (Train is disabled then)."""
        return not self.errors

    @property
    def dirty(self) -> bool:
        return not self.undo_stack.isClean()

    # ------------------------------------------------------------------ editing

    def set_field(self, path: str, value: Any, text: str | None = None) -> str | None:
        """Set one field; returns ``None`` if applied, else the validator's message (kept in
        ``errors[path]`` until a valid value is set for that field)."""
        data = self.data
        try:
            set_path(data, parse_path(path), value)
        except (KeyError, IndexError, TypeError) as exc:
            return self._refuse(path, f"{path}: no such field ({exc})")
        return self.replace_data(data, text or f"Set {path}", error_path=path)

    def replace_data(self, data: dict[str, Any], text: str, error_path: str | None = None,
                     base_dir: Path | None | str = "keep") -> str | None:
        """Apply a whole new canonical dict as one undoable edit (add a layer, apply a preset...);
        ``base_dir`` other than "keep" also changes the folder relative paths resolve against (a
        preset's paths are not relative to the file opened before it), undone with the edit."""
        try:
            experiment = parse_experiment(data)
        except SpecError as exc:
            return self._refuse(error_path or exc.path, str(exc))
        if error_path is not None and error_path in self.errors:
            del self.errors[error_path]
            self.errors_changed.emit(dict(self.errors))
        canonical = experiment.to_dict()
        dirs = None if base_dir == "keep" else (self.base_dir, base_dir)
        if canonical == self._data and (dirs is None or dirs[0] == dirs[1]):
            return None
        self.undo_stack.push(_Edit(self, (copy.deepcopy(self._data), self._experiment), (canonical, experiment), text,
                                   dirs))  # type: ignore[arg-type]
        return None

    def set_experiment(self, experiment: Experiment, text: str = "Replace experiment") -> None:
        self.replace_data(experiment.to_dict(), text)

    def load(self, experiment: Experiment, file: Path | None = None, base_dir: Path | None = None) -> None:
        """Start over on another experiment (opening a file): no undo across files.

        ``base_dir`` is the folder the spec's relative paths (``data.path``, ``model.transfer.from``)
        resolve against: the experiment JSON's folder, or the one a session recorded; by default
        the file's folder."""
        self.base_dir = base_dir if base_dir is not None else (file.parent if file is not None else None)
        self.undo_stack.clear()
        self.errors = {}
        self.errors_changed.emit({})
        self._apply(experiment.to_dict(), experiment)
        self.set_file(file)
        self.undo_stack.setClean()

    def report_error(self, path: str, message: str) -> None:
        """A problem found outside the spec's validation (the data file the preview could not
        read): kept in ``errors`` like a refused value, so Train waits until it is cleared."""
        if self.errors.get(path) != message:
            self._refuse(path, message)

    def clear_error(self, path: str) -> None:
        """Forget a refused value (the panel reverted the field to the state's value)."""
        if self.errors.pop(path, None) is not None:
            self.errors_changed.emit(dict(self.errors))

    def set_file(self, file: Path | None) -> None:
        self.file = file
        self.file_changed.emit(file)

    def mark_saved(self, file: Path) -> None:
        if self.base_dir is None:
            self.base_dir = file.parent
        self.set_file(file)
        self.undo_stack.setClean()

    # ------------------------------------------------------------------ internals

    def _clean_changed(self, clean: bool) -> None:
        # A bound slot, not a lambda: Qt drops it with this object, so a stack destroyed while
        # not clean cannot call into a deleted state.
        self.dirty_changed.emit(not clean)

    def _refuse(self, path: str, message: str) -> str:
        self.errors[path] = message
        self.errors_changed.emit(dict(self.errors))
        return message

    def _apply(self, data: dict[str, Any], experiment: Experiment) -> None:
        # Experiments are frozen, so the parsed one can be shared; the dict is copied because
        # callers of ``data`` may modify theirs.
        self._data = copy.deepcopy(data)
        self._experiment = experiment
        self.changed.emit(self._experiment)
