"""Training and monitoring: the controller (worker thread, actions, sessions) and the live plots.

The shell uses exactly two names from here: ``TrainingController`` and ``create_monitor``.
"""

from __future__ import annotations

from .controller import TrainingController
from .view import Monitor, create_monitor

__all__ = ["Monitor", "TrainingController", "create_monitor"]
