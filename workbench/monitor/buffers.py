"""GUI-side growing buffers fed by the worker's snapshots; the plots read them at their own pace.

Appending a snapshot is cheap (a slice copy into preallocated, geometrically grown arrays);
every append bumps ``version`` so a plot redraws only when something new arrived. The
gradient norms are also kept as log10 (computed once per row on arrival), so the log-scale
plots never take the logarithm of the whole history at every frame.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.engine.diagnostics import LAYER_QUANTITIES
from core.training import EPOCH_METRICS

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


class RunBuffers:
    """Everything the monitor plots about the current run."""

    def __init__(self) -> None:
        self.clear()

    def clear(self, layer_names: Sequence[str] = ()) -> None:
        self.layer_names = list(layer_names)
        n_layers = len(self.layer_names)
        self.size = 0
        self._cap = 1024
        self._steps = np.zeros(self._cap, dtype=np.float64)
        self._layer = {q: np.full((self._cap, n_layers), np.nan, dtype=np.float32) for q in KEPT}
        self._log_grad = np.full((n_layers, self._cap), np.nan, dtype=np.float64)   # layer-major: curve rows
        self._loss = np.full(self._cap, np.nan, dtype=np.float64)
        self._lr = np.full(self._cap, np.nan, dtype=np.float64)
        self.epochs: dict[str, list[float]] = {k: [] for k in EPOCH_METRICS}
        self.events: list[dict[str, Any]] = []
        self.health: list[dict[str, Any]] = []
        self.progress: dict[str, Any] = {}
        self.frozen_layers: list[bool] = [False] * n_layers   # per layer: frozen by transfer learning now
        self.meta: dict[str, Any] = {"layer_names": self.layer_names, "steps_per_epoch": 1, "epochs": 0,
                                     "classification": False, "class_names": [], "planned_lr": None,
                                     "points": None, "dataset": ""}
        self.confusion: np.ndarray | None = None
        self.boundary: np.ndarray | None = None
        self.version = 0
        self.extras_version = 0

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
        self._cap = cap

    def apply(self, snap: Mapping[str, Any]) -> None:
        """Take one worker snapshot (see ``worker.TrainingWorker._emit``)."""
        if snap.get("reset"):
            meta = dict(snap["meta"])
            self.clear(meta["layer_names"])
            self.meta = meta
        steps = np.asarray(snap["steps"])
        start = min(int(snap["row_start"]), self.size)
        n = len(steps)
        if n or start < self.size:
            end = start + n
            self._reserve(end)
            self._steps[start:end] = steps
            for q in KEPT:
                block = snap["layers"][q]
                if block.shape[1:] == self._layer[q].shape[1:]:
                    self._layer[q][start:end] = block
            self._log_grad[:, start:end] = safe_log10(snap["layers"]["grad_norm"]).T
            self._loss[start:end] = snap["loss"]
            self._lr[start:end] = snap["learning_rate"]
            self.size = end
        e0 = int(snap["epoch_start"])
        for k in EPOCH_METRICS:
            del self.epochs[k][e0:]
            self.epochs[k].extend(float(v) for v in snap["epochs"][k])
        self.events = list(snap["events"])
        self.health = list(snap["health"])
        self.progress = dict(snap["progress"])
        frozen = snap.get("frozen_layers")
        if frozen is not None and len(frozen) == self.n_layers:
            self.frozen_layers = [bool(f) for f in frozen]
        if "confusion" in snap:
            self.confusion = np.asarray(snap["confusion"])
            self.extras_version += 1
        if "boundary" in snap:
            self.boundary = np.asarray(snap["boundary"])
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


__all__ = ["KEPT", "LAYER_QUANTITIES", "ZERO_LOG10", "RunBuffers", "safe_log10", "write_csv"]
