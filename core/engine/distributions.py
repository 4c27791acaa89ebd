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
from collections.abc import Mapping
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
