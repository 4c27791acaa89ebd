"""Comparing runs: the histories of several sessions in one aligned table, by epoch or by
optimizer step (the GUI's comparison view, and anyone's notebook).

Runs differ in length, in how often they recorded diagnostics and in depth, so the table's
index is the union of every run's epochs (or steps), and a run that has no value at an index
holds NaN there — plots draw it as a gap. Per-layer quantities are aligned by position from
the input (``grad_norm[0]`` is every run's first hidden layer) and the output layer has its
own column (``grad_norm[output]``), so a 3-layer and a 10-layer run still line up where it
makes sense.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.engine.diagnostics import EPOCH_METRICS, LAYER_QUANTITIES, STEP_QUANTITIES
from core.engine.instruments import LAYER_INSTRUMENTS, STEP_INSTRUMENTS

from .format import Session, load_session

AXES = ("epoch", "step")
#: The instruments' per-step columns by their comparison names (``sharpness`` is ``step_sharpness``).
INSTRUMENT_STEP_QUANTITIES = tuple(k[len("step_"):] for k in STEP_INSTRUMENTS)
STEP_COLUMNS = STEP_QUANTITIES + INSTRUMENT_STEP_QUANTITIES
LAYER_COLUMNS = LAYER_QUANTITIES + LAYER_INSTRUMENTS
#: The per-epoch columns (the history's epoch metrics but the epoch number, which is the index).
EPOCH_QUANTITIES = tuple(k for k in EPOCH_METRICS if k != "epoch")


@dataclass
class Comparison:
    """``values[q]`` has shape (len(index), len(runs)); NaN where a run has no value."""

    runs: list[str]
    axis: str
    index: np.ndarray
    values: dict[str, np.ndarray]
    paths: list[Path | None]

    @property
    def quantities(self) -> list[str]:
        return list(self.values)

    def column(self, quantity: str, run: str | int) -> np.ndarray:
        """One run's values of one quantity, aligned with ``index``."""
        j = run if isinstance(run, int) else self.runs.index(run)
        return self.values[quantity][:, j]

    def to_csv(self) -> str:
        """The whole table, one row per index value, columns ``<run>: <quantity>``."""
        header = [self.axis] + [f"{run}: {q}" for q in self.values for run in self.runs]
        table = np.column_stack([self.index.astype(np.float64)] + [self.values[q] for q in self.values])
        out = io.StringIO()
        out.write(",".join(_csv_field(h) for h in header) + "\n")
        for row in table:
            out.write(f"{int(row[0])}," + ",".join("" if np.isnan(v) else repr(float(v)) for v in row[1:]) + "\n")
        return out.getvalue()


def _csv_field(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text


def _labels(sessions: Sequence[Session]) -> list[str]:
    """The experiments' names, made unique with the file name (then a counter) where they clash."""
    names = [s.experiment.name for s in sessions]
    out = []
    for i, (name, s) in enumerate(zip(names, sessions, strict=True)):
        if names.count(name) > 1 and s.path is not None:
            name = f"{name} ({s.path.name})"
        while name in out:
            name = f"{name} #{i + 1}"
        out.append(name)
    return out


def _series(session: Session, axis: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A run's own index and its columns (before alignment)."""
    h = session.history
    if axis == "epoch":
        index = np.asarray(h.get("epoch", np.zeros(0)), dtype=np.int64)
        return index, {q: np.asarray(h[q], dtype=np.float64) for q in EPOCH_QUANTITIES if q in h}
    index = np.asarray(h.get("step", np.zeros(0)), dtype=np.int64)
    columns = {q: np.asarray(h[f"step_{q}"], dtype=np.float64) for q in STEP_COLUMNS if f"step_{q}" in h}
    n_hidden = len(session.experiment.model.layers)
    for q in LAYER_COLUMNS:
        if q in h:
            table = np.asarray(h[q], dtype=np.float64)
            for j in range(n_hidden):
                columns[f"{q}[{j}]"] = table[:, j]
            columns[f"{q}[output]"] = table[:, n_hidden]
    return index, columns


def _order(name: str) -> tuple[int, int, str]:
    """Column order: step quantities (the instruments' after the diagnostics'), then per-layer
    ones grouped by quantity, input to output."""
    base, _, layer = name.partition("[")
    layer = layer.rstrip("]")
    rank = LAYER_COLUMNS.index(base) if base in LAYER_COLUMNS else STEP_COLUMNS.index(base) - len(STEP_COLUMNS)
    return rank, (10**9 if layer == "output" else int(layer)) if layer else -1, name


def compare_sessions(sessions: Sequence[Session | str | Path], by: str = "epoch",
                     quantities: Sequence[str] | None = None) -> Comparison:
    """Load (if given paths) and align the histories of several sessions.

    ``by`` is ``"epoch"`` (the per-epoch metrics) or ``"step"`` (the per-step diagnostics);
    ``quantities`` keeps only those columns (default: every one any run has)."""
    if by not in AXES:
        raise ValueError(f"by: must be one of {', '.join(AXES)}, got {by!r}")
    loaded = [s if isinstance(s, Session) else load_session(s) for s in sessions]
    per_run = [_series(s, by) for s in loaded]
    index = np.unique(np.concatenate([i for i, _ in per_run])) if per_run else np.zeros(0, np.int64)
    names: list[str] = []
    for _, columns in per_run:
        names += [q for q in columns if q not in names]
    names = sorted(names, key=_order) if by == "step" else [q for q in EPOCH_QUANTITIES if q in names]
    if quantities is not None:
        unknown = [q for q in quantities if q not in names]
        if unknown:
            raise ValueError(f"quantities: no run has {unknown[0]!r}; available: {', '.join(names)}")
        names = list(quantities)
    values = {q: np.full((len(index), len(loaded)), np.nan) for q in names}
    for j, (own_index, columns) in enumerate(per_run):
        rows = np.searchsorted(index, own_index)
        for q in names:
            if q in columns:
                values[q][rows, j] = columns[q]
    return Comparison(runs=_labels(loaded), axis=by, index=index.astype(np.int64), values=values,
                      paths=[s.path for s in loaded])
