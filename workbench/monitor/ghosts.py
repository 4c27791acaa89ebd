"""Ghost runs: the last few runs of the window, kept as faint curves without being saved.

When a new run replaces the one on screen (Train on a finished run, a branch, Reset weights,
New), a reduced copy of the old run's curves is kept: each layer's gradient norm per step (a
min / max envelope of ``GHOST_POINTS`` columns, so a ghost costs the same to draw however long
its run was) and the loss and accuracy per epoch. ``GhostRuns`` holds at most ``MAX_GHOSTS``
(the oldest goes first); the plots draw the visible ones faintly under the live run, and the
Runs dock lists them with a tick to hide one and a button to drop it.

A branch's parent is a ghost too: the branch carries the parent's history up to the fork, so
the parent is drawn from the fork on, in the live run's colours and dashed, where the two can
be seen to part (``GhostRuns.parent_of_current``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QObject, Signal

from core.engine.diagnostics import EPOCH_METRICS

from .buffers import RunBuffers
from .plots.downsample import envelope

MAX_GHOSTS = 3
GHOST_POINTS = 800         # envelope columns kept of each ghost's per-step curves

_ids = itertools.count(1)


@dataclass
class GhostRun:
    """A finished or replaced run's curves, reduced; ``visible`` is the Runs dock's tick."""

    label: str
    layer_names: list[str]
    steps_per_epoch: int
    steps: np.ndarray                     # envelope x (optimizer steps)
    log_grad_norm: np.ndarray             # (layers, points) log10 gradient norm envelope
    epochs: dict[str, np.ndarray]         # per-epoch metrics (EPOCH_METRICS)
    last_step: int
    id: int = field(default_factory=lambda: next(_ids))
    visible: bool = True

    @classmethod
    def from_buffers(cls, buffers: RunBuffers, label: str) -> GhostRun:
        steps = buffers.steps
        if buffers.size:
            xs, ys = envelope(steps, buffers.log_grad_norm(), GHOST_POINTS // 2)
        else:
            xs, ys = np.zeros(0), np.zeros((buffers.n_layers, 0))
        return cls(label, list(buffers.layer_names), buffers.steps_per_epoch, np.array(xs, dtype=np.float64),
                   np.array(ys, dtype=np.float64),
                   {k: np.asarray(buffers.epochs.get(k, []), dtype=np.float64) for k in EPOCH_METRICS},
                   int(steps[-1]) if buffers.size else 0)

    def after(self, step: float) -> GhostRun:
        """The part from ``step`` on (a parent drawn where its branch parts from it)."""
        keep = self.steps >= step
        epochs = self.epochs.get("epoch", np.zeros(0))
        rows = epochs * self.steps_per_epoch >= step
        return GhostRun(self.label, self.layer_names, self.steps_per_epoch, self.steps[keep],
                        self.log_grad_norm[:, keep], {k: v[rows] if len(v) == len(rows) else v
                                                      for k, v in self.epochs.items()},
                        self.last_step, self.id, self.visible)


class GhostRuns(QObject):
    """The window's ghost runs, newest last. ``changed`` fires when one is added, hidden, shown
    or removed, or the current run's parent changes."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None, limit: int = MAX_GHOSTS) -> None:
        super().__init__(parent)
        self.limit = limit
        self.runs: list[GhostRun] = []
        self.parent_of_current: tuple[int, int] | None = None   # (ghost id, fork step) of a branch on screen
        self.pending_parent_step: int | None = None              # a branch is being built from the run on screen

    def keep(self, buffers: RunBuffers, label: str) -> GhostRun | None:
        """Keep the run in ``buffers`` (about to be replaced) as a ghost; a run that recorded
        nothing is not kept. Becomes the new run's parent if a branch of it is being built."""
        if buffers.size == 0:
            self.parent_of_current = None
            self.pending_parent_step = None
            self.changed.emit()
            return None
        ghost = GhostRun.from_buffers(buffers, label)
        self.runs.append(ghost)
        self.parent_of_current = None if self.pending_parent_step is None else (ghost.id, self.pending_parent_step)
        self.pending_parent_step = None
        self._trim()
        self.changed.emit()
        return ghost

    def _trim(self) -> None:
        keep_id = self.parent_of_current[0] if self.parent_of_current else None
        while len(self.runs) > self.limit:
            oldest = next((g for g in self.runs if g.id != keep_id), self.runs[0])
            self.runs.remove(oldest)

    def get(self, ghost_id: int) -> GhostRun | None:
        return next((g for g in self.runs if g.id == ghost_id), None)

    def set_visible(self, ghost_id: int, visible: bool) -> None:
        ghost = self.get(ghost_id)
        if ghost is not None and ghost.visible != visible:
            ghost.visible = visible
            self.changed.emit()

    def remove(self, ghost_id: int) -> None:
        ghost = self.get(ghost_id)
        if ghost is None:
            return
        self.runs.remove(ghost)
        if self.parent_of_current and self.parent_of_current[0] == ghost_id:
            self.parent_of_current = None
        self.changed.emit()

    def parent(self) -> tuple[GhostRun, int] | None:
        """The ghost the run on screen was branched from, with the fork step (None if it is not a branch)."""
        if self.parent_of_current is None:
            return None
        ghost = self.get(self.parent_of_current[0])
        return None if ghost is None else (ghost, self.parent_of_current[1])

    def faint(self) -> list[GhostRun]:
        """The ghosts drawn faintly: visible, and not the parent (drawn dashed from its fork instead)."""
        parent_id = self.parent_of_current[0] if self.parent_of_current else None
        return [g for g in self.runs if g.visible and g.id != parent_id]
