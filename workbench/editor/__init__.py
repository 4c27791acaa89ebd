"""Experiment editor panels (scaffold: replaced by the real panels)."""

from __future__ import annotations

from PySide6.QtWidgets import QDockWidget, QMainWindow, QMenu

from ..state import ExperimentState


def create_editor_docks(state: ExperimentState, parent: QMainWindow) -> list[QDockWidget]:
    return []


def create_presets_menu(state: ExperimentState, parent: QMainWindow) -> QMenu:
    return QMenu("&Presets", parent)
