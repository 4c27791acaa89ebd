"""The experiment editor: docked panels whose every field maps to the experiment spec, and the
Presets menu.

Each panel binds to the one ``ExperimentState`` (it reads ``state.experiment`` and writes
through ``state.set_field`` / ``state.replace_data``, so every edit is undoable and a refused
value is marked at its field); choice lists come from the registries.
"""

from __future__ import annotations

import inspect

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMenu

from core.presets import PRESETS

from ..state import ExperimentState
from .data_panel import DataPanel
from .dataset_info import DataInfo
from .model_panel import ModelPanel
from .optimizer_panel import OptimizerPanel
from .panel import make_dock
from .training_panels import RegularizationPanel, TrainingPanel

__all__ = ["create_editor_docks", "create_presets_menu", "apply_preset"]


def create_editor_docks(state: ExperimentState, parent: QMainWindow) -> list[QDockWidget]:
    """The Data, Model, Optimizer, Regularization and Training panels, each in a scrollable dock."""
    info = DataInfo(parent)
    panels = [
        ("Data", "editorDataDock", DataPanel(state, info), "Dataset, file import and preview, splits, augmentation"),
        ("Model", "editorModelDock", ModelPanel(state, info), "Hidden layers, output layer, parameter count"),
        ("Optimizer", "editorOptimizerDock", OptimizerPanel(state, info),
         "Optimizer, learning-rate schedule and its preview"),
        ("Regularization", "editorRegularizationDock", RegularizationPanel(state),
         "ℓ1, ℓ2, max-norm, gradient clipping, early stopping"),
        ("Training", "editorTrainingDock", TrainingPanel(state),
         "Epochs, batch size, diagnostics, NaN policy, seed and name"),
    ]
    return [make_dock(title, name, panel, parent, tip) for title, name, panel, tip in panels]


def _describe(fn: object, title: str) -> str:
    doc = inspect.getdoc(fn) or ""
    return " ".join(doc.split()) or title


def apply_preset(state: ExperimentState, key: str) -> str | None:
    """Replace the experiment by a preset as one undoable edit (refused values typed in the
    panels are dropped: they belonged to the old experiment)."""
    title, fn = PRESETS[key]
    # A preset is a fresh experiment: relative paths typed after it resolve against the working
    # folder, as for File › New, not against the folder of the file it replaced.
    message = state.replace_data(fn(), f"Preset: {title.split(' (')[0]}", base_dir=None)
    if message is None:
        for path in list(state.errors):
            state.clear_error(path)
    return message


def create_presets_menu(state: ExperimentState, parent: QMainWindow) -> QMenu:
    """One action per ``core.presets.PRESETS`` entry; applying one is a single undoable edit."""
    menu = QMenu("&Presets", parent)
    menu.setObjectName("presetsMenu")
    menu.setToolTipsVisible(True)
    for i, (key, (title, fn)) in enumerate(PRESETS.items()):
        label = f"&{i + 1} {title}" if i < 9 else title
        action = menu.addAction(label)
        action.setObjectName(f"preset_{key}")
        action.setData(key)
        description = _describe(fn, title)
        action.setToolTip(description)
        action.setStatusTip(description)
        if i < 10:      # Ctrl+1 … Ctrl+9, Ctrl+0: the first ten presets, the ones a lesson starts from
            action.setShortcut(QKeySequence(f"Ctrl+{(i + 1) % 10}"))
        elif i < 20:    # Ctrl+Alt+1 … Ctrl+Alt+0: the next ten (gradient clipping, the book's own data sets)
            action.setShortcut(QKeySequence(f"Ctrl+Alt+{(i - 9) % 10}"))
        action.triggered.connect(lambda _checked=False, k=key: apply_preset(state, k))
    return menu
