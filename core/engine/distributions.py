"""Distributions over time: per layer, histograms of the weights, gradients, pre-activations and
activations, recorded every k-th step as rows of a layer × time image.

A norm or a standard deviation summarises a layer in one number; a histogram shows its shape.
Two shapes are the chapter's failure modes:

* **saturation**: a tanh unit with |z| ≫ 1 outputs ±1 and passes back tanh'(z) = 1 − a² ≈ 0,
  a logistic one 0 or 1 with σ'(z) = a(1 − a) ≈ 0; the activations' mass piles up at ±1 (tanh)
  or at 0 and 1 (logistic), and the gradients below that layer shrink;
* **dying ReLU**: a unit whose pre-activation is negative for every input outputs exactly 0 and
  gets an exactly-zero gradient; the activations' (and gradients') mass at *exactly* 0, counted
  in its own column, grows.

Weights and gradients are binned by magnitude on a log scale (``log_magnitude_histogram``),
four bins a decade from 10⁻¹⁰ to 10²: a healthy gradient of 10⁻⁴ lands four decades from one
of 1, instead of in the first bin of a linear range with every other small value. Pre-activations
and activations are binned by value (``value_histogram``) over fixed ranges whose edges fall on
−1, 0 and 1. Every kind has fixed edges for the whole run, so the rows of one layer stack into a
time × bin image, and two runs' images can be subtracted.

A row holds, per layer, the *fraction* of the tensor's values in each column, laid out as::

    [exact zeros, below the range, bin 0, …, bin n−1, above the range]

so a row of a layer sums to 1 whatever the layer's size. A tensor of more than
``HISTOGRAM_SAMPLE`` values is binned from a fixed strided sample of that many. What is binned is the step's own
mini-batch in training mode (the tensors the step computed: no extra pass), the weights before
the step and the kernels' gradient ∂J/∂W of the step (the ℓ1/ℓ2 terms included, before any
clipping). The output layer's pre-activations are the logits and its activations the loss's
predictions (softmax or sigmoid probabilities, or the regression values).

The table is bounded: it holds at most ``row_capacity`` rows (at most ``MAX_DISTRIBUTION_ROWS``,
fewer for deep networks so that it stays under ``MAX_DISTRIBUTION_VALUES`` values). When it is
full, every second row is dropped and the interval doubles (``thinned`` counts the halvings), so
a long run keeps an evenly spaced record of its whole length.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .diagnostics import Rows, own_copy
from .instruments import log_magnitude_histogram, value_histogram
from .network import Network

#: The recorded kinds, in the order the dock offers them.
KINDS = ("weights", "gradients", "pre_activations", "activations")
#: Binned by magnitude on a log scale (the others by value).
LOG_KINDS = ("weights", "gradients")
LOG_EXPONENTS = (-10.0, 2.0)          # 10⁻¹⁰ … 10², four bins a decade
LOG_BINS = 48
PRE_ACTIVATION_RANGE = (-8.0, 8.0)    # bins 0.25 wide: edges at −1, 0, 1
PRE_ACTIVATION_BINS = 64
ACTIVATION_RANGE = (-2.0, 4.0)        # bins 0.125 wide: edges at −1, 0, 1 (tanh, logistic, ReLU's 0, SELU's −1.76)
ACTIVATION_BINS = 48
#: The columns before the bins (exact zeros, below the range) and after them (above the range).
LEADING_COLUMNS = 2
EXTRA_COLUMNS = 3
#: A tensor larger than this is binned from every k-th value (row-major, a fixed stride): the
#: fractions of 16k values are within a percent of the whole tensor's, and a 784 × 300 kernel is
#: binned in a fifteenth of the time (as the effective learning rate samples its median).
HISTOGRAM_SAMPLE = 16_384
MAX_DISTRIBUTION_ROWS = 512
MAX_DISTRIBUTION_VALUES = 4_000_000   # all four tables together (float32: 16 MB)
#: history.npz keys: ``distribution_<kind>`` (rows, layers, columns), ``distribution_<kind>_edges``
#: (bins + 1: exponents for the log kinds, values for the others), ``distribution_step`` (rows)
#: and ``distribution_thinned`` (1,): how many times the table was halved.
STEP_KEY = "distribution_step"
THINNED_KEY = "distribution_thinned"


def table_key(kind: str) -> str:
    return f"distribution_{kind}"


def edges_key(kind: str) -> str:
    return f"distribution_{kind}_edges"


def kind_edges(kind: str) -> np.ndarray:
    """The fixed bin edges of a kind: log10 magnitudes for weights and gradients, values else."""
    if kind in LOG_KINDS:
        return np.linspace(*LOG_EXPONENTS, LOG_BINS + 1)
    if kind == "pre_activations":
        return np.linspace(*PRE_ACTIVATION_RANGE, PRE_ACTIVATION_BINS + 1)
    if kind == "activations":
        return np.linspace(*ACTIVATION_RANGE, ACTIVATION_BINS + 1)
    raise KeyError(f"no distribution kind {kind!r}; the kinds are {', '.join(KINDS)}")


def kind_columns(kind: str) -> int:
    """Columns of one layer's row: the bins plus zeros, below and above."""
    return len(kind_edges(kind)) - 1 + EXTRA_COLUMNS


def row_capacity(n_layers: int) -> int:
    """How many rows the table keeps for a network of ``n_layers`` layers (output included):
    ``MAX_DISTRIBUTION_ROWS``, or fewer so that the four tables hold at most
    ``MAX_DISTRIBUTION_VALUES`` values; at least 16."""
    per_row = max(int(n_layers), 1) * sum(kind_columns(k) for k in KINDS)
    return int(max(16, min(MAX_DISTRIBUTION_ROWS, MAX_DISTRIBUTION_VALUES // per_row)))


def sample(values: np.ndarray) -> np.ndarray:
    """The values a row bins: all of them, or every k-th (k = ⌈size / HISTOGRAM_SAMPLE⌉) of a larger
    tensor, flattened row-major."""
    flat = np.asarray(values).ravel()
    if flat.size > HISTOGRAM_SAMPLE:
        flat = flat[::-(-flat.size // HISTOGRAM_SAMPLE)]
    return flat


def log_row(values: np.ndarray) -> np.ndarray:
    """One layer's row for a log-binned kind: fractions [zeros, below, bins…, above] of |values|
    (of ``sample(values)``)."""
    flat = sample(values)
    h = log_magnitude_histogram(flat, *LOG_EXPONENTS, LOG_BINS)
    counts = np.concatenate([[h.zeros, h.below], h.counts, [h.above]]).astype(np.float64)
    return counts / max(flat.size, 1)


def value_row(values: np.ndarray, low: float, high: float, bins: int) -> np.ndarray:
    """One layer's row for a value-binned kind: fractions [zeros, below, bins…, above] of
    ``sample(values)``; exact zeros
    (a dead ReLU's output) are counted apart, not in the bin holding 0. NaN and infinities are in
    no column (a row of a diverged step sums to less than 1)."""
    flat = sample(values)
    nonzero = flat[flat != 0]
    counts = value_histogram(nonzero, low, high, bins)
    below = np.count_nonzero(nonzero < low)
    above = np.count_nonzero(nonzero > high)
    out = np.concatenate([[flat.size - nonzero.size, below], counts, [above]]).astype(np.float64)
    return out / max(flat.size, 1)


def kind_row(kind: str, values: np.ndarray) -> np.ndarray:
    """One layer's row of ``kind`` for the tensor ``values``."""
    if kind in LOG_KINDS:
        return log_row(values)
    low, high = (PRE_ACTIVATION_RANGE if kind == "pre_activations" else ACTIVATION_RANGE)
    bins = PRE_ACTIVATION_BINS if kind == "pre_activations" else ACTIVATION_BINS
    return value_row(values, low, high, bins)


def layer_tensors(network: Network, logits: np.ndarray) -> dict[str, list[np.ndarray]]:
    """The tensors a row bins, per kind, input layer first and the output last: the kernels, their
    gradients, and the last forward pass's pre-activations and activations (``logits`` its output)."""
    hidden = network.layers
    return {
        "weights": [layer.dense.kernel for layer in hidden] + [network.output.kernel],
        "gradients": [layer.dense.grad_kernel for layer in hidden] + [network.output.grad_kernel],
        "pre_activations": [layer.pre_activation for layer in hidden] + [logits],
        "activations": [layer.activation_output for layer in hidden] + [network.loss.predict(logits)],
    }


@dataclass(frozen=True)
class DistributionLayout:
    """The shape of the tables for one network: rows at most, layers, columns per kind."""

    n_layers: int

    @property
    def capacity(self) -> int:
        return row_capacity(self.n_layers)

    def shape(self, kind: str, rows: int) -> tuple[int, int, int]:
        return (int(rows), self.n_layers, kind_columns(kind))


class DistributionRecorder:
    """Records the per-layer histograms every ``every``·2^thinned optimizer steps (0-based step
    index a multiple of it), into bounded tables (see the module docstring)."""

    def __init__(self, n_layers: int, every: int = 50, enabled: bool = True) -> None:
        self.layout = DistributionLayout(int(n_layers))
        self.every = int(every)
        self.enabled = bool(enabled)
        self.capacity = self.layout.capacity
        self.size = 0
        self.thinned = 0
        self._steps = np.zeros(self.capacity, dtype=np.int64)
        self._tables = {k: np.zeros(self.layout.shape(k, self.capacity), dtype=np.float32) for k in KINDS}
        # Rows a reader must take again from (a roll-back or a halving rewrote them), as DiagnosticsRecorder.
        self.truncated_to: list[int] = []
        self.seconds = 0.0
        self.calls = 0

    @property
    def interval(self) -> int:
        """Optimizer steps between rows now (``every`` doubled by each halving)."""
        return max(1, self.every) << self.thinned

    def due(self, step: int) -> bool:
        """Whether the step with 0-based index ``step`` records a row."""
        return self.enabled and step % self.interval == 0

    @property
    def steps(self) -> np.ndarray:
        return self._steps[:self.size]

    def table(self, kind: str) -> np.ndarray:
        """The recorded rows of ``kind``: (rows, layers, columns), a view."""
        return self._tables[kind][:self.size]

    def record(self, step: int, network: Network, logits: np.ndarray) -> bool:
        """Bin the step's tensors (``layer_tensors``) into a new row labelled ``step`` (the count of
        optimizer steps once this one is taken). When the table is full it is halved first, and
        the row is kept only if its step is still on the doubled interval; returns whether it was."""
        t0 = time.perf_counter()
        if self.size == self.capacity:
            self._halve()
            if (step - 1) % self.interval != 0:
                return False
        tensors = layer_tensors(network, logits)
        row = self.size
        self._steps[row] = step
        with np.errstate(invalid="ignore", over="ignore"):
            for kind in KINDS:
                for j, values in enumerate(tensors[kind]):
                    self._tables[kind][row, j] = kind_row(kind, values)
        self.size += 1
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return True

    def _halve(self) -> None:
        """Keep rows 0, 2, 4, … and double the interval."""
        keep = np.arange(0, self.size, 2)
        n = len(keep)
        self._steps[:n] = self._steps[keep]
        for a in self._tables.values():
            a[:n] = a[keep]
        self.size = n
        self.thinned += 1
        self.truncated_to.append(0)

    def truncate_after(self, step: int) -> None:
        """Forget the rows of steps after ``step`` (a NaN roll-back to the start of an epoch)."""
        keep = int(np.count_nonzero(self.steps <= step))
        if keep < self.size:
            self.size = keep
            self.truncated_to.append(keep)

    def since(self, row: int) -> Rows:
        """Copies of the rows from ``row`` on: ``step`` and one column per kind."""
        start = min(max(int(row), 0), self.size)
        columns = {"step": own_copy(self._steps[start:self.size])}
        columns.update({k: own_copy(self._tables[k][start:self.size]) for k in KINDS})
        return Rows(start, columns)

    # -------------------------------------------------------------- history

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The tables as history.npz stores them (see ``STEP_KEY``)."""
        out: dict[str, np.ndarray] = {STEP_KEY: self.steps.copy(),
                                      THINNED_KEY: np.array([self.thinned], dtype=np.int64)}
        for kind in KINDS:
            out[table_key(kind)] = self.table(kind).copy()
            out[edges_key(kind)] = kind_edges(kind)
        return out

    def load_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Take the tables of a saved history (checked by ``check_distributions``); a history
        without them (a session from before them) leaves the tables empty."""
        self.size = 0
        self.thinned = 0
        self.truncated_to.append(0)
        if STEP_KEY not in arrays:
            return
        steps = np.asarray(arrays[STEP_KEY])
        n = min(len(steps), self.capacity)
        self._steps[:n] = steps[:n]
        for kind in KINDS:
            self._tables[kind][:n] = arrays[table_key(kind)][:n]
        self.thinned = int(np.asarray(arrays[THINNED_KEY]).reshape(-1)[0]) if THINNED_KEY in arrays else 0
        self.size = n


def check_distributions(history: Mapping[str, np.ndarray], n_layers: int, where: str = "history") -> None:
    """Check the distribution arrays of a stored history against a model of ``n_layers`` layers:
    all of them or none; ``distribution_step`` non-negative integers, non-decreasing, at most
    ``row_capacity`` rows; each table floats of shape (rows, layers, columns of its kind) with
    values in [0, 1]; each edges array the kind's fixed edges; ``distribution_thinned`` one
    non-negative integer. ``ValueError`` names the first that does not fit, as ``where[key]``."""
    keys = [STEP_KEY, THINNED_KEY] + [f(k) for k in KINDS for f in (table_key, edges_key)]
    present = [k for k in keys if k in history]
    if not present:
        return
    missing = [k for k in keys if k not in history]
    if missing:
        raise ValueError(f"{where}[{missing[0]}] is missing (the distribution arrays come all together or not at all)")
    steps = history[STEP_KEY]
    capacity = row_capacity(n_layers)
    if steps.ndim != 1 or steps.dtype.kind not in "iu" or len(steps) > capacity \
            or (steps.size and (steps.min() < 0 or np.any(np.diff(steps) < 0))):
        raise ValueError(f"{where}[{STEP_KEY}] must hold at most {capacity} non-decreasing non-negative integers "
                         f"(1-D), got {steps.dtype} {steps.shape}")
    thinned = history[THINNED_KEY]
    if thinned.shape != (1,) or thinned.dtype.kind not in "iu" or not 0 <= int(thinned[0]) <= 62:
        raise ValueError(f"{where}[{THINNED_KEY}] must be one integer from 0 to 62, "
                         f"got {thinned.dtype} {thinned.shape}")
    layout = DistributionLayout(int(n_layers))
    for kind in KINDS:
        a = history[table_key(kind)]
        want = layout.shape(kind, len(steps))
        if a.shape != want or a.dtype.kind != "f":
            raise ValueError(f"{where}[{table_key(kind)}] must be floats of shape {want} "
                             f"(rows × layers × columns), got {a.dtype} {a.shape}")
        if a.size and not (np.all(a >= 0) and np.all(a <= 1)):
            raise ValueError(f"{where}[{table_key(kind)}] must hold fractions from 0 to 1")
        edges = history[edges_key(kind)]
        if edges.shape != kind_edges(kind).shape or not np.allclose(edges, kind_edges(kind)):
            raise ValueError(f"{where}[{edges_key(kind)}] must be the {kind_columns(kind) - EXTRA_COLUMNS + 1} "
                             f"fixed bin edges of {kind}, got {edges.dtype} {edges.shape}")


# ----------------------------------------------------------------------------- summaries of a row
#
# A histogram image shows one layer of one run; to overlay runs (or layers) each row is reduced
# to a few numbers per layer, each worked out from the row's columns alone, so a saved table is
# enough and two runs' summaries are comparable because their edges are the same.

#: The per-layer summaries of a row (``summarise``), in the order the Runs dock offers them.
SUMMARIES = ("zero_fraction", "saturated_fraction", "median_magnitude")
#: The kind the saturated fraction is defined for (the activations, binned by value).
SATURATION_KIND = "activations"


def zero_fraction(table: np.ndarray) -> np.ndarray:
    """The share of exact zeros, the '= 0' column: P(x = 0), per row and layer (rows, layers).
    For the activations of a ReLU layer, its dead share (dying ReLU); for gradients, the share of
    weights that received no signal."""
    return np.asarray(table, dtype=np.float64)[..., 0]


def _value_edge_index(edges: np.ndarray, value: float) -> int:
    """The index of ``value`` among a value kind's edges (it must be one of them)."""
    k = int(np.argmin(np.abs(edges - value)))
    if not np.isclose(edges[k], value, rtol=0.0, atol=1e-9):
        raise ValueError(f"{value} is not a bin edge of the activations ({edges[0]:g} to {edges[-1]:g})")
    return k


def _share_below(table: np.ndarray, edges: np.ndarray, threshold: float) -> np.ndarray:
    """P(x < threshold) of a value kind's rows, exactly, for a threshold on a bin edge: the
    'below' column, the bins under it, and the exact zeros when 0 < threshold."""
    k = _value_edge_index(edges, threshold)
    share = table[..., 1] + table[..., LEADING_COLUMNS:LEADING_COLUMNS + k].sum(axis=-1)
    return share + table[..., 0] if threshold > 0 else share


def _share_at_or_above(table: np.ndarray, edges: np.ndarray, threshold: float) -> np.ndarray:
    """P(x ≥ threshold) of a value kind's rows, exactly, for a threshold on a bin edge."""
    k = _value_edge_index(edges, threshold)
    share = table[..., LEADING_COLUMNS + k:].sum(axis=-1)       # the bins from the edge on and 'above'
    return share + table[..., 0] if threshold <= 0 else share


def saturated_fraction(table: np.ndarray, saturation_ranges: Sequence[tuple[float, float] | None]) -> np.ndarray:
    """The share of a layer's activations in the bins touching its activation's asymptotes, per
    row and layer (rows, layers): for an activation saturating at (lo, hi) (tanh: (−1, 1),
    logistic: (0, 1); ``saturation_ranges[j]`` for layer j),

        saturated = P(a < lo + w) + P(a ≥ hi − w),   w = the activations' bin width (0.125),

    i.e. the outermost bin inside each asymptote and anything beyond it (a float32 tanh can round
    to exactly ±1; a logistic output that underflows to exactly 0 is in the '= 0' column, counted
    as at 0). lo + w and hi − w are bin edges, so the share is exact, not interpolated: tanh
    counts |a| ≥ 0.875 (tanh′ = 1 − a² ≤ 0.23), the logistic a < 0.125 or a ≥ 0.875
    (σ′ = a(1 − a) ≤ 0.11). NaN for a layer whose activation does not saturate (``None``: the
    ReLU family, and the output layer, whose "activations" are the loss's predictions)."""
    t = np.asarray(table, dtype=np.float64)
    edges = kind_edges(SATURATION_KIND)
    if t.ndim != 3 or t.shape[2] != kind_columns(SATURATION_KIND) or t.shape[1] != len(saturation_ranges):
        raise ValueError(f"saturated_fraction: needs an activations table of shape (rows, {len(saturation_ranges)}, "
                         f"{kind_columns(SATURATION_KIND)}), got {t.shape}")
    width = float(edges[1] - edges[0])
    out = np.full(t.shape[:2], np.nan)
    for j, asymptotes in enumerate(saturation_ranges):
        if asymptotes is not None:
            lo, hi = asymptotes
            out[:, j] = _share_below(t[:, j], edges, lo + width) + _share_at_or_above(t[:, j], edges, hi - width)
    return out


def _magnitude_columns(kind: str, table: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """A kind's rows as a histogram of |x| in increasing order: (shares (…, m), edges (m − 1),
    log). Columns: [zeros, bin 0 … bin K−1, beyond], edges e_0 … e_K of the bins (log10 for the
    log kinds). For the log kinds the 'below' column (0 < |x| < 10^e_0) comes second with the
    lower edge −∞. The value kinds fold each bin [kw, (k+1)w) with its mirror [−(k+1)w, −kw),
    while both sides are binned (up to min(−low, high)); the rest is 'beyond'."""
    t = np.asarray(table, dtype=np.float64)
    bins = t[..., LEADING_COLUMNS:-1]
    edges = kind_edges(kind)
    if kind in LOG_KINDS:
        shares = np.concatenate([t[..., :2], bins, t[..., -1:]], axis=-1)
        return shares, np.concatenate([[-np.inf], edges]), True
    width = float(edges[1] - edges[0])
    zero = _value_edge_index(edges, 0.0)
    folded = int(round(min(-edges[0], edges[-1]) / width))
    magnitude_bins = bins[..., zero:zero + folded] + bins[..., zero - 1::-1][..., :folded]
    beyond = np.clip(t.sum(axis=-1) - t[..., 0] - magnitude_bins.sum(axis=-1), 0.0, None)
    shares = np.concatenate([t[..., :1], magnitude_bins, beyond[..., None]], axis=-1)
    return shares, np.arange(folded + 1) * width, False


def median_magnitude(kind: str, table: np.ndarray) -> np.ndarray:
    """The median of |x| per row and layer (rows, layers), interpolated within the bin holding the
    50 % quantile. With F_i the share of |x| below bin i, p_i the bin's share, and q half the row's
    total (1, or less when a diverged step had NaN values):

        log kinds (weights, gradients):  m = 10^(e_i + (e_(i+1) − e_i)·(q − F_i)/p_i)
        value kinds (|z|, |a|):          m = e_i + (e_(i+1) − e_i)·(q − F_i)/p_i

    (``_magnitude_columns`` gives the magnitude bins). The true median lies in the same bin, so the
    error is at most one bin: a quarter decade for the log kinds, 0.25 (pre-activations) or 0.125
    (activations) for the value kinds. When the quantile falls in the exact zeros, m = 0; outside
    the binned range m is clamped to the range's end: 10^−10 (an upper bound) for magnitudes
    below it, 10² (log kinds), 8 (pre-activations) or 2 (activations) as lower bounds above it.
    NaN for a layer whose row is all NaN (nothing binned)."""
    shares, edges, log = _magnitude_columns(kind, table)
    cumulative = np.cumsum(shares, axis=-1)
    half = 0.5 * cumulative[..., -1:]
    column = np.argmax(cumulative >= half, axis=-1)[..., None]
    before = np.take_along_axis(cumulative - shares, column, axis=-1)
    share = np.take_along_axis(shares, column, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        within = np.clip((half - before) / share, 0.0, 1.0)
    column, within = column[..., 0], within[..., 0]
    n_bins = len(edges) - 1
    bin_index = np.clip(column - 1, 0, n_bins - 1)
    low, high = edges[bin_index], edges[bin_index + 1]
    with np.errstate(invalid="ignore"):
        position = np.where(np.isfinite(low), low + (high - low) * within, high)   # 'below': its upper end
    position = np.where(column == len(edges), edges[-1], position)                  # 'beyond': the range's end
    value = 10.0 ** position if log else position
    value = np.where(column == 0, 0.0, value)
    return np.where(half[..., 0] > 0, value, np.nan)


def summarise(kind: str, table: np.ndarray,
              saturation_ranges: Sequence[tuple[float, float] | None] | None = None) -> dict[str, np.ndarray]:
    """The summaries of a kind's table, each (rows, layers) float64: ``zero_fraction`` and
    ``median_magnitude`` for every kind, ``saturated_fraction`` for the activations when
    ``saturation_ranges`` (one per layer) is given."""
    out = {"zero_fraction": zero_fraction(table)}
    if kind == SATURATION_KIND and saturation_ranges is not None:
        out["saturated_fraction"] = saturated_fraction(table, saturation_ranges)
    out["median_magnitude"] = median_magnitude(kind, table)
    return out
