"""GUI-side growing buffers fed by the run's snapshots (``core.monitor.TrainingSnapshot``); the
plots read them at their own pace.

Appending a snapshot is cheap (a slice copy into preallocated, geometrically grown arrays);
every append bumps ``version`` so a plot redraws only when something new arrived. The
gradient norms are also kept as log10 (computed once per row on arrival), so the log-scale
plots never take the logarithm of the whole history at every frame.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.engine.diagnostics import EPOCH_METRICS, LAYER_QUANTITIES, Rows
from core.engine.distributions import KINDS as DISTRIBUTION_KINDS
from core.engine.instruments import LAYER_INSTRUMENTS, STEP_INSTRUMENTS
from core.monitor import RunInfo, TrainingSnapshot

#: Per-layer quantities the monitor keeps (the recorder has a few more).
KEPT = ("grad_norm", "update_ratio", "weight_norm", "activation_mean", "activation_std", "dead_fraction",
        "saturated_fraction")


#: Where an exactly-zero norm is drawn on the log scales (a dead layer's gradient): at the floor,
#: not as a gap, which is kept for NaN / infinity.
ZERO_LOG10 = -12.0


def safe_log10(a: np.ndarray) -> np.ndarray:
    """log10, with exact zeros at ``ZERO_LOG10`` and NaN (a gap in the plots) for negative and
    non-finite values."""
    a = np.asarray(a, dtype=np.float64)
    out = np.full(a.shape, np.nan)
    good = np.isfinite(a) & (a > 0)
    np.log10(a, out=out, where=good)
    out[a == 0] = ZERO_LOG10
    return out


class DistributionBuffer:
    """The histogram rows of a run (``core.engine.distributions``): ``steps`` (rows,) and one
    (rows, layers, columns) table per kind, grown geometrically, rewound like the diagnostics."""

    def __init__(self) -> None:
        self.size = 0
        self._steps = np.zeros(0, dtype=np.int64)
        self._tables: dict[str, np.ndarray] = {}

    def apply(self, rows: Rows) -> None:
        start = min(rows.start, self.size)
        end = start + len(rows)
        if end > len(self._steps):
            cap = max(64, 2 * end)
            steps = np.zeros(cap, dtype=np.int64)
            steps[:start] = self._steps[:start]
            self._steps = steps
            for kind in DISTRIBUTION_KINDS:
                block = rows[kind]
                grown = np.zeros((cap, *block.shape[1:]), dtype=np.float32)
                old = self._tables.get(kind)
                if old is not None and old.shape[1:] == block.shape[1:]:
                    grown[:start] = old[:start]
                self._tables[kind] = grown
        self._steps[start:end] = rows["step"]
        for kind in DISTRIBUTION_KINDS:
            self._tables[kind][start:end] = rows[kind]
        self.size = end

    @property
    def steps(self) -> np.ndarray:
        return self._steps[: self.size]

    def table(self, kind: str) -> np.ndarray:
        """(rows, layers, columns) view of one kind (empty before the first row)."""
        a = self._tables.get(kind)
        return a[: self.size] if a is not None else np.zeros((0, 0, 0), dtype=np.float32)


class RunBuffers:
    """Everything the monitor plots about the current run."""

    def __init__(self) -> None:
        self.run = 0
        self.version = 0
        self.extras_version = 0
        self.clear()

    def clear(self, layer_names: Sequence[str] = ()) -> None:
        # ``run`` counts the runs held; ``version`` and ``extras_version`` only ever grow, so that a
        # panel's cache keyed by them can never take a new run's rows for the old run's (a second
        # run of the same length has the same size at the same point).
        self.run += 1
        # The run shown before this one, for the Distributions dock's run-vs-run difference.
        old = getattr(self, "distributions", None)
        if old is not None and old.size:
            self.previous_distributions: DistributionBuffer | None = old
            self.previous_layer_names = list(self.layer_names)
        elif not hasattr(self, "previous_distributions"):
            self.previous_distributions, self.previous_layer_names = None, []
        self.distributions = DistributionBuffer()
        self.layer_names = list(layer_names)
        n_layers = len(self.layer_names)
        self.size = 0
        self._cap = 1024
        self._steps = np.zeros(self._cap, dtype=np.float64)
        self._layer = {q: np.full((self._cap, n_layers), np.nan, dtype=np.float32) for q in KEPT}
        self._log_grad = np.full((n_layers, self._cap), np.nan, dtype=np.float64)   # layer-major: curve rows
        self._loss = np.full(self._cap, np.nan, dtype=np.float64)
        self._lr = np.full(self._cap, np.nan, dtype=np.float64)
        # The instruments' rows (``core.engine.instruments``): NaN where an instrument did not measure.
        self._instruments = {k: np.full(self._cap, np.nan, dtype=np.float64) for k in STEP_INSTRUMENTS}
        self._instruments.update({k: np.full((self._cap, n_layers), np.nan, dtype=np.float32)
                                  for k in LAYER_INSTRUMENTS})
        self.epochs: dict[str, list[float]] = {k: [] for k in EPOCH_METRICS}
        self.events: list[dict[str, Any]] = []
        self.health: list[dict[str, Any]] = []
        self.progress: dict[str, Any] = {}
        self.frozen_layers: list[bool] = [False] * n_layers   # per layer: frozen by transfer learning now
        self.meta: dict[str, Any] = {"layer_names": self.layer_names, "steps_per_epoch": 1, "epochs": 0,
                                     "classification": False, "class_names": [], "planned_lr": None,
                                     "points": None, "dataset": "", "gradient_clip": ("none", math.nan),
                                     "batch_size": 0, "optimizer": "", "adaptive": False, "planned_threshold": None,
                                     "instruments": {}}
        self.confusion: np.ndarray | None = None
        self.boundary: np.ndarray | None = None
        self.version += 1
        self.extras_version += 1

    # ------------------------------------------------------------------ feeding

    def _reserve(self, n: int) -> None:
        if n <= self._cap:
            return
        cap = self._cap
        while cap < n:
            cap *= 2

        def grow(a: np.ndarray, axis: int = 0) -> np.ndarray:
            shape = list(a.shape)
            shape[axis] = cap
            out = np.full(shape, np.nan, dtype=a.dtype)
            if axis == 0:
                out[: self.size] = a[: self.size]
            else:
                out[:, : self.size] = a[:, : self.size]
            return out

        self._steps = grow(self._steps)
        self._layer = {q: grow(a) for q, a in self._layer.items()}
        self._log_grad = grow(self._log_grad, axis=1)
        self._loss = grow(self._loss)
        self._lr = grow(self._lr)
        self._instruments = {k: grow(a) for k, a in self._instruments.items()}
        self._cap = cap

    def apply(self, snap: TrainingSnapshot) -> None:
        """Take one snapshot of the run (``core.monitor.TrainingSnapshot``): a reset starts over,
        the new rows replace what is held from their start on and extend it."""
        if snap.run is not None:
            self.clear(snap.run.layer_names)
            self.meta = _meta(snap.run)
        rows = snap.rows
        start = min(rows.start, self.size)
        n = len(rows)
        if n or start < self.size:
            end = start + n
            self._reserve(end)
            self._steps[start:end] = rows["step"]
            for q in KEPT:
                block = rows[q]
                if block.shape[1:] == self._layer[q].shape[1:]:
                    self._layer[q][start:end] = block
            # What the optimizer was given: the post-clip norm where clipping recorded one.
            clipped = rows["clipped_grad_norm"] if "clipped_grad_norm" in rows.columns else None
            given = rows["grad_norm"] if clipped is None else np.where(np.isnan(clipped), rows["grad_norm"], clipped)
            self._log_grad[:, start:end] = safe_log10(given).T
            self._loss[start:end] = rows["loss"]
            self._lr[start:end] = rows["learning_rate"]
            for key, table in self._instruments.items():
                block = rows.columns.get(key)
                if block is not None and block.shape[1:] == table.shape[1:]:
                    table[start:end] = block
                else:
                    table[start:end] = np.nan
            self.size = end
        e0 = snap.epochs.start
        for k in EPOCH_METRICS:
            del self.epochs[k][e0:]
            self.epochs[k].extend(float(v) for v in snap.epochs[k])
        self.events = [dict(e) for e in snap.events]
        self.health = [issue.to_dict() for issue in snap.health]
        self.progress = snap.progress.to_dict()
        if len(snap.frozen_layers) == self.n_layers:
            self.frozen_layers = list(snap.frozen_layers)
        if snap.distributions is not None:
            self.distributions.apply(snap.distributions)
        if snap.confusion is not None:
            self.confusion = snap.confusion
            self.extras_version += 1
        if snap.boundary is not None:
            self.boundary = snap.boundary
            self.extras_version += 1
        self.version += 1

    # ------------------------------------------------------------------ reading (views, no copies)

    @property
    def n_layers(self) -> int:
        return len(self.layer_names)

    @property
    def steps(self) -> np.ndarray:
        return self._steps[: self.size]

    def layer(self, quantity: str) -> np.ndarray:
        """(steps, layers) view of one per-layer quantity."""
        return self._layer[quantity][: self.size]

    def log_grad_norm(self) -> np.ndarray:
        """(layers, steps) view of log10 gradient norms (NaN where not finite)."""
        return self._log_grad[:, : self.size]

    @property
    def loss(self) -> np.ndarray:
        return self._loss[: self.size]

    @property
    def learning_rate(self) -> np.ndarray:
        return self._lr[: self.size]

    def instrument(self, key: str) -> np.ndarray:
        """View of one instrument's column: (steps,) for ``STEP_INSTRUMENTS``, (steps, layers) for
        ``LAYER_INSTRUMENTS``; NaN on the rows where it did not measure."""
        return self._instruments[key][: self.size]

    def last(self, quantity: str) -> np.ndarray:
        """The newest row of a per-layer quantity (NaN if nothing recorded)."""
        if self.size == 0:
            return np.full(self.n_layers, np.nan)
        return self._layer[quantity][self.size - 1].astype(np.float64)

    @property
    def steps_per_epoch(self) -> int:
        return max(int(self.meta.get("steps_per_epoch") or 1), 1)


def write_csv(path: str | Path, header: Sequence[str], columns: Iterable[Sequence[Any] | np.ndarray]) -> None:
    """Write columns (equal length) as a CSV file with a header row; NaN is written empty."""
    cols = [np.asarray(c) for c in columns]
    n = max((len(c) for c in cols), default=0)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for i in range(n):
            row = []
            for c in cols:
                v = c[i] if i < len(c) else ""
                if isinstance(v, float | np.floating):
                    row.append("" if not math.isfinite(float(v)) else repr(float(v)))
                else:
                    row.append(str(v))
            writer.writerow(row)


def _meta(run: RunInfo) -> dict[str, Any]:
    """What the panels read of a run that does not change while it trains (``RunBuffers.meta``)."""
    p = run.points
    points = None if p is None else {"X": p.X, "y": p.y, "X_val": p.X_val, "y_val": p.y_val, "bounds": p.bounds,
                                     "n_classes": p.n_classes}
    return {"layer_names": list(run.layer_names), "steps_per_epoch": run.steps_per_epoch, "epochs": run.epochs,
            "classification": run.classification, "class_names": list(run.class_names),
            "planned_lr": run.planned_lr, "points": points, "dataset": run.dataset,
            "gradient_clip": run.gradient_clip, "batch_size": run.batch_size, "optimizer": run.optimizer,
            "adaptive": run.adaptive, "planned_threshold": run.planned_threshold,
            "instruments": dict(run.instruments)}


__all__ = ["KEPT", "DistributionBuffer", "LAYER_QUANTITIES", "ZERO_LOG10", "RunBuffers", "safe_log10", "write_csv"]
