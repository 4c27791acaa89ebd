"""Comparing runs: the histories of several sessions in one aligned table, by epoch, by
optimizer step, or by the steps the distributions over time were recorded at (the GUI's
comparison view, and anyone's notebook).

Runs differ in length, in how often they recorded diagnostics and in depth, so the table's
index is the union of every run's epochs (or steps), and a run that has no value at an index
holds NaN there — plots draw it as a gap. Per-layer quantities are aligned by position from
the input (``grad_norm[0]`` is every run's first hidden layer) and the output layer has its
own column (``grad_norm[output]``), so a 3-layer and a 10-layer run still line up where it
makes sense.

The distributions over time have rows of their own (``distribution_step``, every k-th step,
thinned as a run grows), so they are compared on their own axis, ``by="distribution"``: per kind
and layer the summaries of ``core.engine.distributions`` (``activations_zero_fraction[0]``,
``gradients_median_magnitude[output]``, ...). ``distribution_difference`` subtracts two runs'
histograms of one layer at the steps both recorded.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.engine.activations import ACTIVATIONS
from core.engine.diagnostics import EPOCH_METRICS, LAYER_QUANTITIES, STEP_QUANTITIES
from core.engine.distributions import (
    KINDS,
    SATURATION_KIND,
    STEP_KEY,
    SUMMARIES,
    edges_key,
    summarise,
    table_key,
)
from core.engine.instruments import LAYER_INSTRUMENTS, STEP_INSTRUMENTS

from .format import Session, load_session

AXES = ("epoch", "step", "distribution")
#: The name of the index column (the CSV's first), per axis.
INDEX_LABELS = {"epoch": "epoch", "step": "step", "distribution": STEP_KEY}
#: The instruments' per-step columns by their comparison names (``sharpness`` is ``step_sharpness``).
INSTRUMENT_STEP_QUANTITIES = tuple(k[len("step_"):] for k in STEP_INSTRUMENTS)
STEP_COLUMNS = STEP_QUANTITIES + INSTRUMENT_STEP_QUANTITIES
LAYER_COLUMNS = LAYER_QUANTITIES + LAYER_INSTRUMENTS
#: The per-epoch columns (the history's epoch metrics but the epoch number, which is the index).
EPOCH_QUANTITIES = tuple(k for k in EPOCH_METRICS if k != "epoch")


def distribution_column(kind: str, summary: str) -> str:
    """The comparison name of a distribution summary (per layer: ``[j]`` or ``[output]`` follows)."""
    return f"{kind}_{summary}"


#: The per-layer distribution summaries by their comparison names, kind by kind (the saturated
#: fraction is defined for the activations only).
DISTRIBUTION_QUANTITIES = tuple(distribution_column(k, s) for k in KINDS for s in SUMMARIES
                                if s != "saturated_fraction" or k == SATURATION_KIND)


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
        header = [INDEX_LABELS[self.axis]] + [f"{run}: {q}" for q in self.values for run in self.runs]
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


def saturation_ranges(session: Session) -> list[tuple[float, float] | None]:
    """Per layer of the session (the output last, as the distribution tables), the asymptotes of
    its activation, None for a non-saturating one and for the output layer."""
    return [ACTIVATIONS.get(layer.activation).saturation_range for layer in session.experiment.model.layers] + [None]


def _layer_columns(columns: dict[str, np.ndarray], quantity: str, table: np.ndarray, n_hidden: int) -> None:
    """Add a (rows, layers) table's columns ``quantity[0]`` … ``quantity[n_hidden − 1]``, ``quantity[output]``."""
    for j in range(n_hidden):
        columns[f"{quantity}[{j}]"] = table[:, j]
    columns[f"{quantity}[output]"] = table[:, n_hidden]


def _series(session: Session, axis: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A run's own index and its columns (before alignment)."""
    h = session.history
    n_hidden = len(session.experiment.model.layers)
    if axis == "epoch":
        index = np.asarray(h.get("epoch", np.zeros(0)), dtype=np.int64)
        return index, {q: np.asarray(h[q], dtype=np.float64) for q in EPOCH_QUANTITIES if q in h}
    columns: dict[str, np.ndarray] = {}
    if axis == "distribution":
        index = np.asarray(h.get(STEP_KEY, np.zeros(0)), dtype=np.int64)
        if len(index):          # a session from before the distributions, or one that had them off: none
            for kind in KINDS:
                summaries = summarise(kind, np.asarray(h[table_key(kind)]), saturation_ranges(session))
                for summary, table in summaries.items():
                    _layer_columns(columns, distribution_column(kind, summary), table, n_hidden)
        return index, columns
    index = np.asarray(h.get("step", np.zeros(0)), dtype=np.int64)
    columns.update({q: np.asarray(h[f"step_{q}"], dtype=np.float64) for q in STEP_COLUMNS if f"step_{q}" in h})
    for q in LAYER_COLUMNS:
        if q in h:
            _layer_columns(columns, q, np.asarray(h[q], dtype=np.float64), n_hidden)
    return index, columns


def _order(name: str) -> tuple[int, int, str]:
    """Column order: step quantities (the instruments' after the diagnostics'), then per-layer
    ones grouped by quantity, input to output (the distribution summaries kind by kind)."""
    base, _, layer = name.partition("[")
    layer = layer.rstrip("]")
    if base in DISTRIBUTION_QUANTITIES:
        rank = DISTRIBUTION_QUANTITIES.index(base)
    else:
        rank = LAYER_COLUMNS.index(base) if base in LAYER_COLUMNS else STEP_COLUMNS.index(base) - len(STEP_COLUMNS)
    return rank, (10**9 if layer == "output" else int(layer)) if layer else -1, name


def compare_sessions(sessions: Sequence[Session | str | Path], by: str = "epoch",
                     quantities: Sequence[str] | None = None) -> Comparison:
    """Load (if given paths) and align the histories of several sessions.

    ``by`` is ``"epoch"`` (the per-epoch metrics), ``"step"`` (the per-step diagnostics) or
    ``"distribution"`` (the distribution summaries, at the steps the distributions were recorded;
    a run without distributions has none: NaN); ``quantities`` keeps only those columns
    (default: every one any run has)."""
    if by not in AXES:
        raise ValueError(f"by: must be one of {', '.join(AXES)}, got {by!r}")
    loaded = [s if isinstance(s, Session) else load_session(s) for s in sessions]
    per_run = [_series(s, by) for s in loaded]
    index = np.unique(np.concatenate([i for i, _ in per_run])) if per_run else np.zeros(0, np.int64)
    names: list[str] = []
    for _, columns in per_run:
        names += [q for q in columns if q not in names]
    names = sorted(names, key=_order) if by != "epoch" else [q for q in EPOCH_QUANTITIES if q in names]
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


def _run_name(session: Session) -> str:
    return session.experiment.name + (f" ({session.path.name})" if session.path is not None else "")


def distribution_layer(session: Session, layer: int | str) -> int:
    """The row index in a session's distribution tables of hidden layer ``layer`` (0-based, by
    position from the input) or of ``"output"``; ``ValueError`` if the session has no such layer."""
    n_hidden = len(session.experiment.model.layers)
    if layer == "output":
        return n_hidden
    if not isinstance(layer, int) or not 0 <= layer < n_hidden:
        raise ValueError(f"layer: {_run_name(session)} has {n_hidden} hidden layers and an output layer, "
                         f"no layer {layer!r}")
    return layer


def distribution_difference(a: Session, b: Session, kind: str,
                            layer: int | str) -> tuple[np.ndarray, np.ndarray]:
    """Run ``a``'s histograms of one layer (by position: ``distribution_layer``) minus run ``b``'s,
    at the steps both recorded: (steps, (steps, columns) float64 differences of fractions, the
    columns of the kind: ``[exact zeros, below, bins…, above]``). Positive where ``a`` has more
    mass. The edges of a kind are fixed, so the bins match; ``ValueError`` (naming the run) when a
    run has no distributions, when the two runs' edges differ, or when they share no step."""
    if kind not in KINDS:
        raise ValueError(f"kind: must be one of {', '.join(KINDS)}, got {kind!r}")
    for s in (a, b):
        if len(s.history.get(STEP_KEY, ())) == 0:
            raise ValueError(f"{_run_name(s)} has no distributions over time (recorded when "
                             f"training.instruments.distributions is on; sessions from before them have none)")
    edges_a, edges_b = np.asarray(a.history[edges_key(kind)]), np.asarray(b.history[edges_key(kind)])
    if edges_a.shape != edges_b.shape or not np.array_equal(edges_a, edges_b):
        raise ValueError(f"{_run_name(a)} and {_run_name(b)} binned the {kind} with different edges: "
                         f"their histograms cannot be subtracted")
    steps, rows_a, rows_b = np.intersect1d(a.history[STEP_KEY], b.history[STEP_KEY], return_indices=True)
    if len(steps) == 0:
        raise ValueError(f"{_run_name(a)} and {_run_name(b)} recorded their distributions at no "
                         f"common step (a different interval, or one run thinned its table more)")
    table_a = np.asarray(a.history[table_key(kind)], dtype=np.float64)[:, distribution_layer(a, layer)]
    table_b = np.asarray(b.history[table_key(kind)], dtype=np.float64)[:, distribution_layer(b, layer)]
    return steps.astype(np.int64), table_a[rows_a] - table_b[rows_b]
