"""Per-layer diagnostics, the reason Gradient Workbench exists, and the detector that reads them.

At every recorded step the trainer writes, for each layer with parameters (input to output):

* ``grad_norm``        ‖∂L/∂W‖₂ of the kernel — the quantity that vanishes or explodes;
* ``bias_grad_norm``   ‖∂L/∂b‖₂ (0 for a layer without bias); both gradient norms are taken
  before gradient clipping, which changes the step but must not hide an exploding gradient;
* ``clipped_grad_norm`` the kernel's gradient norm after clipping, the size of what the
  optimizer was given (NaN when clipping is off: it would equal ``grad_norm``);
* ``weight_norm``      ‖W‖₂;
* ``update_ratio``     ‖ΔW‖₂ / ‖W‖₂ of the step taken (healthy around 1e-3);
* ``activation_mean``, ``activation_std`` of the layer's activation output;
* ``dead_fraction``    share of units that output zero for the whole batch (dying ReLU);
* ``saturated_fraction`` share of logistic / tanh outputs within 1 % of an asymptote.

The arrays are preallocated and grow geometrically, so a 100,000-step run of 20 layers
appends rows without per-step Python lists. A reader that follows a run as it trains (the
window, a training process's messages) takes only what is new: ``DiagnosticsRecorder.since(row)``
copies the rows from ``row`` on into a ``Rows``, and consecutive ``Rows`` coalesce with ``then``.

The per-epoch history (``EPOCH_METRICS``) and the per-step tables are stored together in a
session's ``history.npz``; ``check_history`` is the one check of those arrays, used when a
session is read and when a trainer's state is put back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# The per-epoch history a trainer keeps and a session stores (history.npz), in this order.
EPOCH_METRICS = ("epoch", "loss", "val_loss", "accuracy", "val_accuracy", "learning_rate", "seconds")
LAYER_QUANTITIES = ("grad_norm", "bias_grad_norm", "clipped_grad_norm", "weight_norm", "update_ratio",
                    "activation_mean", "activation_std", "dead_fraction", "saturated_fraction")
STEP_QUANTITIES = ("loss", "learning_rate")

# Thresholds of the health detector.
VANISHING_RATIO = 1000.0    # lowest layer's gradient norm this many times below the top hidden layer's
EXPLODING_RATIO = 100.0     # ... or this many times above it
EXPLODING_NORM = 1e4        # any gradient norm beyond this is exploding, whatever the ratio
DEAD_FRACTION = 0.5         # more than half of a layer's units dead
SATURATED_FRACTION = 0.5    # most logistic / tanh outputs within 1 % of an asymptote
STALLED_RELATIVE = 1e-7     # a gradient norm below this share of its weight norm is float rounding (≈ ε of float32)
CHANCE_TOLERANCE = 0.05     # a loss within 5 % of the chance level is "at chance"
FLAT_TOLERANCE = 0.02       # ... and flat when its two halves' medians differ by less than 2 % of it
STALL_WINDOW = 50           # recorded steps the loss must sit at chance before the run is called stalled
DIVERGING_RATIO = 0.1       # update / weight ratio above this: each step rewrites a tenth of the weights
RISE_FACTOR = 1.2           # loss's last-third median this many times its first-third median: rising
DIVERGE_WINDOW = 30         # recorded steps over which a rising loss is read
# ... and by at least this share of the run's loss scale (the chance loss, else its first
# recorded losses). A healthy run's batch loss wanders by more than RISE_FACTOR: on the
# bundled examples the medians of the thirds rose by up to 0.023 of the chance loss on the
# default experiment (1.6 times; called diverging at 29 recorded steps of its run), 0.031 on
# batch_norm.json and 0.14 on selu.json (2.9 times), all three reaching 94-96 % validation
# accuracy. A rise of a tenth of the chance loss (0.23 nats for ten classes) is a loss
# visibly worse than a few steps before.
RISE_MIN_SHARE = 0.1
# ... and consistently: at least this share of the (first-third, last-third) pairs of losses
# has the later one larger (the Mann-Whitney statistic over both thirds' sizes; 0.81 is its
# one-sided 1 % level for two thirds of 10). Alone the medians swing with a few outlying
# batches: selu.json's rise of 0.14 had a share of 0.78 at most, a loss climbing steadily 1.0.
RISE_CONSISTENCY = 0.81
HEALTH_WINDOW = 20          # recorded steps whose median the detector reads (one step is noisy)
# A loss that blew up: its recent level (the median of the last HEALTH_WINDOW recorded steps) at
# least this many times the lowest level it reached (the medians of consecutive blocks of as many
# steps) and above where it started (its first level, or the chance loss if that is higher: a
# loss that falls fast has a first level well below its real start). A rise of the medians over
# the last DIVERGE_WINDOW steps misses it once the loss falls back from its peak:
# dying_relu.json with leaky ReLUs went 4.3 → 19,040 (epoch 15) → 674 (chance 2.3), its last 30
# steps falling, and nothing was found. A decade is no batch noise: a loss that sits ten times
# above its best while it is above where it started has lost what the run learned (a healthy
# run's loss that wanders up from 0.001 to 0.01 is still far below its start, and is left alone).
BLOWUP_FACTOR = 10.0


def own_copy(a: Any, dtype: Any = None) -> np.ndarray:
    """A private, read-only copy of ``a``: what a snapshot holds, so neither the trainer writing on
    nor a reader scribbling can change what another reader sees."""
    out = np.array(a, dtype=dtype, copy=True)
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class Rows:
    """Rows ``start, start + 1, …`` of a table whose columns share their first axis (the recorded
    steps, or the epochs), as copies: what an incremental reader appends.

    A reader that holds rows ``[0, k)`` of the table with ``k ≥ start`` keeps ``[0, start)`` and
    puts these after them; ``k > start`` happens after a NaN roll-back rewound the table, and the
    rows past ``start`` it holds are then replaced, not kept.
    """

    start: int
    columns: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        lengths = {name: len(a) for name, a in self.columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"rows: every column needs the same number of rows, got {lengths}")
        if self.start < 0:
            raise ValueError(f"rows: start must be ≥ 0, got {self.start}")

    def __len__(self) -> int:
        return next((len(a) for a in self.columns.values()), 0)

    @property
    def end(self) -> int:
        """The table's length once these rows are in."""
        return self.start + len(self)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def then(self, later: Rows) -> Rows:
        """These rows followed by ``later`` ones (taken afterwards from the same table) as one
        ``Rows``: what a reader would hold after taking both, in order."""
        if later.start > self.end:
            raise ValueError(f"rows: the later rows start at {later.start}, after a gap from {self.end}")
        if later.start <= self.start:
            return later
        if set(later.columns) != set(self.columns):
            raise ValueError("rows: the later rows have other columns")
        keep = later.start - self.start
        return Rows(self.start, {name: own_copy(np.concatenate([a[:keep], later.columns[name]]))
                                 for name, a in self.columns.items()})


class DiagnosticsRecorder:
    """Growable per-step tables: ``step`` (n,), per-layer arrays (n, layers), per-step scalars (n,)."""

    def __init__(self, layer_names: list[str], capacity: int = 1024) -> None:
        self.layer_names = list(layer_names)
        self.n_layers = len(layer_names)
        self.size = 0
        cap = max(int(capacity), 16)
        self._step = np.zeros(cap, dtype=np.int64)
        # One block (step, quantity, layer) holds every per-layer quantity, so that a step's row
        # is one write (``append_row``); ``_layer`` holds each quantity's view of it.
        self._layers = np.full((cap, len(LAYER_QUANTITIES), self.n_layers), np.nan, dtype=np.float32)
        self._layer = self._views()
        self._scalar = {q: np.full(cap, np.nan, dtype=np.float32) for q in STEP_QUANTITIES}
        # The sizes ``truncate`` cut the tables to, in order: a reader that copies rows as they come
        # re-reads from the smallest one it has not seen (rows past it were rewritten).
        self.truncated_to: list[int] = []

    @property
    def capacity(self) -> int:
        return self._step.shape[0]

    def _views(self) -> dict[str, np.ndarray]:
        return {q: self._layers[:, i, :] for i, q in enumerate(LAYER_QUANTITIES)}

    def _grow(self) -> None:
        new = self.capacity * 2
        self._step = np.resize(self._step, new)
        grown = np.full((new, *self._layers.shape[1:]), np.nan, dtype=self._layers.dtype)
        grown[: self.size] = self._layers[: self.size]
        self._layers = grown
        self._layer = self._views()
        for q, a in self._scalar.items():
            grown = np.full(new, np.nan, dtype=a.dtype)
            grown[: self.size] = a[: self.size]
            self._scalar[q] = grown

    def append(self, step: int) -> int:
        """Start a new row for optimizer step ``step`` and return its index; the caller fills
        ``table(q)[index]`` — no temporary arrays per step. Rows past ``size`` are always NaN
        (allocation, growth and ``truncate`` see to it), so a quantity left unfilled reads NaN."""
        if self.size == self.capacity:
            self._grow()
        i = self.size
        self._step[i] = step
        self.size += 1
        return i

    def append_row(self, step: int, layers: np.ndarray, loss: float, learning_rate: float) -> int:
        """A whole row at once: ``layers`` holds every per-layer quantity, shape
        (``len(LAYER_QUANTITIES)``, layers) in that order (NaN for one not measured); returns the
        row's index. The trainer's way: one write instead of one per quantity."""
        i = self.append(step)
        self._layers[i] = layers
        self._scalar["loss"][i] = loss
        self._scalar["learning_rate"][i] = learning_rate
        return i

    def table(self, quantity: str) -> np.ndarray:
        """The growing backing array (write access for the trainer)."""
        return self._layer[quantity] if quantity in self._layer else self._scalar[quantity]

    def truncate(self, size: int) -> None:
        """Forget rows past ``size`` (a NaN roll-back rewinds the history with the weights)."""
        size = min(self.size, int(size))
        self._layers[size:self.size] = np.nan
        for a in self._scalar.values():
            a[size:self.size] = np.nan
        self.size = size
        self.truncated_to.append(size)

    # -------------------------------------------------------------- read access (views)

    @property
    def steps(self) -> np.ndarray:
        return self._step[: self.size]

    def __getitem__(self, quantity: str) -> np.ndarray:
        return self.table(quantity)[: self.size]

    def last(self, quantity: str) -> np.ndarray:
        return self.table(quantity)[self.size - 1].copy()

    def since(self, row: int) -> Rows:
        """Copies of the rows from ``row`` on (from ``size`` if ``row`` is past it): ``step`` and
        every per-layer and per-step quantity, under the names ``self[...]`` reads."""
        start = min(max(int(row), 0), self.size)
        columns = {"step": own_copy(self._step[start:self.size])}
        columns.update({q: own_copy(self._layer[q][start:self.size]) for q in LAYER_QUANTITIES})
        columns.update({q: own_copy(self._scalar[q][start:self.size]) for q in STEP_QUANTITIES})
        return Rows(start, columns)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Copies of everything recorded, as stored in ``history.npz``."""
        out = {"step": self.steps.copy()}
        out.update({q: self[q].copy() for q in LAYER_QUANTITIES})
        out.update({f"step_{q}": self[q].copy() for q in STEP_QUANTITIES})
        out["layer_names"] = np.array(self.layer_names, dtype=np.str_)
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> DiagnosticsRecorder:
        names = [str(s) for s in arrays["layer_names"]]
        n = int(arrays["step"].shape[0])
        rec = cls(names, capacity=max(16, n))
        rec._step[:n] = arrays["step"]
        for q in LAYER_QUANTITIES:
            if q in arrays:
                rec._layer[q][:n] = arrays[q]
        for q in STEP_QUANTITIES:
            if f"step_{q}" in arrays:
                rec._scalar[q][:n] = arrays[f"step_{q}"]
        rec.size = n
        return rec


#: The history keys of the distributions over time (``core.engine.distributions``), which have
#: their own rows and shapes.
DISTRIBUTION_PREFIX = "distribution_"


def check_history(history: Mapping[str, np.ndarray], n_layers: int, where: str = "history",
                  complete: bool = False) -> None:
    """Check the arrays of a stored history (as ``history.npz`` holds them, or ``history/…`` in a
    trainer's state) against a model of ``n_layers`` layers with parameters (output included);
    ``ValueError`` names the first that does not fit, as ``where[key]``.

    The per-epoch metrics (``EPOCH_METRICS``) are numbers, one per epoch; ``step`` holds one
    integer per recorded step; ``layer_names`` names the layers; every other array is floats of
    shape (recorded steps, layers), or (recorded steps,) for ``step_*``; the ``distribution_*``
    arrays have their own rows and are checked by ``distributions.check_distributions``. With ``complete`` the
    arrays must be enough to rebuild a recorder (``step`` and ``layer_names`` present).
    """
    if complete:
        for key in ("step", "layer_names"):
            if key not in history:
                raise ValueError(f"{where}[{key}] is missing")
    for key in ("epoch", "step"):
        # Counters: a NaN, an infinity or a fraction here would load and then fail every save.
        a = history.get(key)
        if a is None or a.ndim != 1:
            continue    # a missing or misshapen counter is reported below
        whole = a.dtype.kind in "iu" or (a.dtype.kind == "f" and bool(np.all(np.isfinite(a)))
                                         and bool(np.all(a == np.round(a))))
        if a.ndim != 1 or not whole or (a.size and a.min() < 0):
            raise ValueError(f"{where}[{key}] must hold non-negative whole numbers (1-D), got {a.dtype} {a.shape}"
                             + ("" if whole else " with a NaN, an infinity or a fraction"))
    epochs = history.get("epoch")
    n_epochs = len(epochs) if epochs is not None and epochs.ndim == 1 else 0
    for key in EPOCH_METRICS:
        a = history.get(key)
        if a is not None and (a.ndim != 1 or len(a) != n_epochs or a.dtype.kind not in "iuf"):
            raise ValueError(f"{where}[{key}] must hold one number per epoch ({n_epochs}), got {a.dtype} {a.shape}")
    names = history.get("layer_names")
    if names is not None and (names.shape != (n_layers,) or names.dtype.kind != "U"):
        raise ValueError(f"{where}[layer_names] must name the {n_layers} layers, got {names.shape}")
    steps = history.get("step")
    if steps is not None and (steps.ndim != 1 or steps.dtype.kind not in "iu"):
        raise ValueError(f"{where}[step] must hold one integer per recorded step, got {steps.dtype} {steps.shape}")
    n_steps = len(steps) if steps is not None else 0
    for key, a in history.items():
        if key in EPOCH_METRICS or key in ("layer_names", "step"):
            continue
        if key.startswith(DISTRIBUTION_PREFIX):
            continue    # their own shapes: checked by core.engine.distributions.check_distributions
        want = (n_steps,) if key.startswith("step_") else (n_steps, n_layers)
        if a.shape != want or a.dtype.kind != "f":
            raise ValueError(f"{where}[{key}] must be floats of shape {want} (recorded steps × layers), "
                             f"got {a.dtype} {a.shape}")


# ----------------------------------------------------------------------------- health detector

KINDS = ("vanishing", "exploding", "dead", "saturated", "stalled", "diverging", "nan", "clipping")

REMEDIES = {
    "init": "use an initialization matched to the activation (He for ReLU/ELU, Glorot for tanh/logistic, "
            "LeCun for SELU)",
    "activation": "use a non-saturating activation (ELU > leaky ReLU > ReLU > tanh > logistic)",
    "batch_norm": "add batch normalization to the hidden layers",
    "clip": "clip the gradients (by norm or by global norm)",
    "learning_rate": "lower the learning rate",
    "leaky": "use leaky ReLU or ELU, whose units cannot die",
}


@dataclass(frozen=True)
class HealthIssue:
    """One finding: what (one of ``KINDS``), where, when, why (the message states the evidence
    in numbers, also kept in ``evidence``), and the book's remedies (keys of ``REMEDIES``)."""

    kind: str
    layer: int           # column in the diagnostics (0 = first hidden layer)
    layer_name: str
    step: int
    message: str
    remedies: tuple[str, ...] = field(default_factory=tuple)
    evidence: tuple[tuple[str, float], ...] = field(default_factory=tuple, compare=False)

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "layer": self.layer, "layer_name": self.layer_name, "step": self.step,
                "message": self.message, "remedies": list(self.remedies)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HealthIssue:
        """The finding ``to_dict`` gave (without its evidence, which the dict does not carry)."""
        return cls(str(data["kind"]), int(data["layer"]), str(data["layer_name"]), int(data["step"]),
                   str(data["message"]), tuple(str(r) for r in data.get("remedies", ())))

    def measured(self, name: str) -> float:
        """One number of the evidence (NaN if the finding has none of that name)."""
        return dict(self.evidence).get(name, math.nan)


@dataclass(frozen=True)
class HealthContext:
    """What the detector needs besides the per-step tables.

    ``chance_loss``: the loss of a model that predicts the class frequencies, whatever its
    input (``chance_loss``; ``None`` for regression). ``clip_mode`` / ``clip_threshold``:
    the run's gradient clipping. ``events``: the trainer's events, whose ``"nonfinite"``
    entries say where a NaN first appeared."""

    chance_loss: float | None = None
    clip_mode: str = "none"
    clip_threshold: float = math.nan
    events: tuple[Mapping[str, Any], ...] = ()


def chance_loss(loss: str, n_outputs: int, class_counts: np.ndarray | None = None) -> float | None:
    """The loss of the best input-blind model: the entropy of the class frequencies, −Σ p_k ln p_k
    (ln k for k balanced classes; ``class_counts`` gives the frequencies when known).
    ``None`` for ``mse`` (no chance level without the targets' variance)."""
    if loss == "mse":
        return None
    k = 2 if loss == "sigmoid_binary_cross_entropy" else max(int(n_outputs), 2)
    if class_counts is None or not np.sum(class_counts):
        return math.log(k)
    p = np.asarray(class_counts, dtype=np.float64) / float(np.sum(class_counts))
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def column_nanmedian(table: np.ndarray) -> np.ndarray:
    """Each column's median over its values that are not NaN (NaN for a column of NaNs): what
    ``np.nanmedian(table, axis=0)`` gives, without its masked-array path for small tables (0.5 ms
    a call, most of the detector's time). Sorting puts the NaNs last; the median is then the
    middle of each column's first ``count`` values, or the mean of its two middle ones."""
    ordered = np.sort(table, axis=0)
    counts = np.count_nonzero(~np.isnan(table), axis=0)
    columns = np.arange(table.shape[1])
    low, high = ordered[np.maximum(counts - 1, 0) // 2, columns], ordered[counts // 2 - (counts == 0), columns]
    with np.errstate(all="ignore"):
        median = np.where(counts % 2 == 1, low, (low + high) / 2)
    return np.where(counts == 0, np.nan, median).astype(table.dtype, copy=False)


def _window_median(rec: DiagnosticsRecorder, quantity: str, end: int, window: int) -> np.ndarray:
    block = rec[quantity][max(0, end - window):end]
    return column_nanmedian(block) if np.isfinite(block).any() else np.full(rec.n_layers, np.nan)


def _effective_norms(rec: DiagnosticsRecorder, end: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows of the window, kernel-gradient norms the optimizer was given): the post-clip norms
    where clipping recorded them, else the gradient's own."""
    start = max(0, end - window)
    raw = rec["grad_norm"][start:end]
    clipped = rec["clipped_grad_norm"][start:end]
    return raw, np.where(np.isnan(clipped), raw, clipped)


def _nan_finding(rec: DiagnosticsRecorder, end: int, window: int, context: HealthContext) -> HealthIssue | None:
    """Where a non-finite value first appeared, from the trainer's record of the diverging step
    (the ``nonfinite`` entry of its last ``diverged`` event, or of a roll-back within the window)."""
    names = rec.layer_names
    first_step = int(rec.steps[max(0, end - window)]) if end else 0
    for event in reversed(context.events):
        origin = event.get("nonfinite")
        if not isinstance(origin, Mapping):
            continue
        step = int(origin.get("step", event.get("step", 0)))
        if event.get("kind") != "diverged" and step < first_step:
            return None          # rolled back long ago and healthy since
        layer = int(origin.get("layer", 0))
        layer = min(max(layer, 0), rec.n_layers - 1)
        where = str(origin.get("where", "forward"))
        what = {"weights": f"the weights of {names[layer]} were already not finite before the forward pass",
                "forward": f"the forward pass first produced a non-finite value in {names[layer]}"
                           f" ({origin.get('value', 'its output')})",
                "loss": "every layer's output was finite but the loss was not",
                "backward": f"the backward pass first produced a non-finite gradient in {names[layer]}"
                            " (every forward value was finite)"}.get(where, where)
        rolled = "; the run was rolled back" if event.get("kind") == "rollback" else "; training has diverged"
        return HealthIssue("nan", layer, names[layer], step,
                           f"not a number: at step {step} {what}{rolled}", ("learning_rate", "clip", "init"),
                           (("step", float(step)),))
    return None


def assess_health(rec: DiagnosticsRecorder, upto: int | None = None, window: int = HEALTH_WINDOW,
                  context: HealthContext | None = None) -> list[HealthIssue]:
    """Read the last ``window`` recorded steps (before row ``upto``) and report what the lessons
    of chapter 11 show, each finding naming the layer, the step and the evidence:

    * ``nan``: where a non-finite value first appeared (``context.events``);
    * ``vanishing``: the first hidden layer's kernel-gradient norm more than 1000× below the
      top hidden layer's; ``exploding``: more than 100× above it, or any norm past 1e4 (the
      symptoms Glorot & Bengio (2010) traced to saturating activations and ill-scaled
      initialization). With clipping on, the norms read are those after clipping;
    * ``clipping``: the share of steps clipped, with the norms before and after;
    * ``stalled``: every hidden gradient at zero up to float rounding (‖g‖ ≤ 1e-7·‖W‖), or the
      loss flat at the chance level for ``STALL_WINDOW`` recorded steps;
    * ``saturated``: most of a logistic / tanh layer's outputs within 1 % of an asymptote
      (where σ′ or tanh′ is close to 0: the saturation story behind vanishing gradients);
    * ``diverging``: the loss rising over ``DIVERGE_WINDOW`` steps (by ``RISE_FACTOR`` and by
      ``RISE_MIN_SHARE`` of the loss's scale, so a batch loss wandering near 0 is not read as
      a divergence), or blown up (now ``BLOWUP_FACTOR`` times the lowest level it reached and
      above its start, even while it falls back from a peak), or an update / weight ratio
      above 1e-1 (healthy is about 1e-3);
    * ``dead``: more than half of a layer's units output zero for a whole batch.
    """
    context = context or HealthContext()
    end = rec.size if upto is None else int(upto)
    if end == 0 or rec.n_layers < 2:
        return []
    step = int(rec.steps[end - 1])
    names = rec.layer_names
    issues: list[HealthIssue] = []
    nan = _nan_finding(rec, end, window, context)
    if nan is not None and context.events and context.events[-1].get("kind") == "diverged":
        return [nan]
    last_row = rec["grad_norm"][end - 1]
    if not np.all(np.isfinite(last_row)):
        bad = int(np.flatnonzero(~np.isfinite(last_row))[0])
        return [HealthIssue("nan", bad, names[bad], step,
                            f"the gradient of {names[bad]} is not a finite number at step {step}: "
                            "training has diverged", ("learning_rate", "clip", "init"))]
    if nan is not None:
        issues.append(nan)
    raw, given = _effective_norms(rec, end, window)
    norms = column_nanmedian(given) if np.isfinite(given).any() else np.full(rec.n_layers, np.nan)
    clipping = context.clip_mode != "none" and np.isfinite(rec["clipped_grad_norm"][max(0, end - window):end]).any()
    if clipping:
        issues.append(_clipping_finding(rec, end, window, context))
    clip_remedy: tuple[str, ...] = () if clipping else ("clip",)
    # The top hidden layer is the last one before the output, when there is one.
    top = rec.n_layers - 2 if rec.n_layers > 2 else rec.n_layers - 1
    low, high = float(norms[0]), float(norms[top])
    weights = _window_median(rec, "weight_norm", end, window)
    hidden = slice(0, rec.n_layers - 1)    # every layer but the output
    hidden_given = given[:, hidden]
    hidden_weights = np.where(np.isfinite(weights[hidden]), weights[hidden], 1.0)
    if len(hidden_given) and np.isfinite(hidden_given).all() and \
            np.all(hidden_given <= STALLED_RELATIVE * np.maximum(hidden_weights, 1e-30)):
        largest = float(np.max(hidden_given))
        issues.append(HealthIssue(
            "stalled", 0, names[0], step,
            f"stalled: every hidden layer's gradient is zero up to float rounding (largest {largest:.2e}) over "
            f"the last {len(hidden_given)} recorded steps to step {step}; nothing below the output learns",
            ("learning_rate", "init", "leaky"), (("largest_hidden_grad_norm", largest),)))
    elif math.isfinite(low) and math.isfinite(high) and top > 0:
        if high > 0 and low < high / VANISHING_RATIO:
            ratio = high / max(low, 1e-30)
            issues.append(HealthIssue(
                "vanishing", 0, names[0], step,
                f"vanishing gradients: the gradient norm of {names[0]} ({low:.2e}) is {ratio:,.0f}× smaller "
                f"than that of {names[top]} ({high:.2e}) around step {step}; the lower layers barely learn",
                ("init", "activation", "batch_norm"), (("spread", low / high),)))
        elif high > 0 and low > high * EXPLODING_RATIO:
            issues.append(HealthIssue(
                "exploding", 0, names[0], step,
                f"exploding gradients: the gradient norm of {names[0]} ({low:.2e}) is {low / high:,.0f}× "
                f"larger than that of {names[top]} ({high:.2e}) around step {step}"
                + ("" if not clipping else " even after clipping") + "; updates to the lower layers are far too large",
                ("init", *clip_remedy, "batch_norm", "learning_rate"), (("spread", low / high),)))
    biggest = int(np.nanargmax(norms)) if np.isfinite(norms).any() else -1
    if biggest >= 0 and norms[biggest] > EXPLODING_NORM and not any(i.kind == "exploding" for i in issues):
        issues.append(HealthIssue(
            "exploding", biggest, names[biggest], step,
            f"exploding gradients: the gradient norm of {names[biggest]} reached {norms[biggest]:.2e} "
            f"around step {step}", (*clip_remedy, "learning_rate", "init", "batch_norm"),
            (("grad_norm", float(norms[biggest])),)))
    stalled_loss = _stalled_loss(rec, end, context)
    if stalled_loss is not None and not any(i.kind == "stalled" for i in issues):
        issues.append(stalled_loss)
    saturated = _window_median(rec, "saturated_fraction", end, window)
    for i in range(rec.n_layers - 1):
        if math.isfinite(saturated[i]) and saturated[i] > SATURATED_FRACTION:
            issues.append(HealthIssue(
                "saturated", i, names[i], step,
                f"saturated units: {saturated[i]:.0%} of the outputs of {names[i]} lie within 1 % of an asymptote "
                f"around step {step}, where the activation's derivative is close to 0, so little gradient "
                "passes back through them", ("init", "activation", "batch_norm"),
                (("saturated_fraction", float(saturated[i])),)))
            break   # the lowest saturated layer; the ones above it say the same
    issues += _diverging(rec, end, window, context)
    dead = _window_median(rec, "dead_fraction", end, window)
    for i in range(rec.n_layers - 1):
        if math.isfinite(dead[i]) and dead[i] > DEAD_FRACTION:
            issues.append(HealthIssue(
                "dead", i, names[i], step,
                f"dying ReLUs: {dead[i]:.0%} of the units of {names[i]} output zero for every example "
                f"around step {step}; they get no gradient and stop learning",
                ("leaky", "learning_rate", "init"), (("dead_fraction", float(dead[i])),)))
    return issues


def _clipping_finding(rec: DiagnosticsRecorder, end: int, window: int, context: HealthContext) -> HealthIssue:
    """The share of recorded steps whose gradient clipping shrank, with the norms (all kernels
    together) before and after, medians over the window."""
    raw, clipped = _effective_norms(rec, end, window)
    with np.errstate(all="ignore"):
        before = np.sqrt(np.nansum(raw.astype(np.float64) ** 2, axis=1))
        after = np.sqrt(np.nansum(clipped.astype(np.float64) ** 2, axis=1))
    shrunk = after < before * (1 - 1e-6)
    share = float(np.mean(shrunk)) if len(shrunk) else 0.0
    step = int(rec.steps[end - 1])
    pre, post = float(np.median(before)), float(np.median(after))
    threshold = f" at {context.clip_threshold:g}" if math.isfinite(context.clip_threshold) else ""
    return HealthIssue(
        "clipping", 0, rec.layer_names[0], step,
        f"clipping active: {context.clip_mode} clipping{threshold} shrank {share:.0%} of the last {len(shrunk)} "
        f"recorded steps to step {step} (kernel-gradient norm {pre:.3g} before, {post:.3g} after, medians); "
        "clipping caps the step but does not change why the gradients grow", (),
        (("clipped_share", share), ("norm_before", pre), ("norm_after", post)))


def _stalled_loss(rec: DiagnosticsRecorder, end: int, context: HealthContext) -> HealthIssue | None:
    """The loss at the chance level and flat for the last ``STALL_WINDOW`` recorded steps."""
    chance = context.chance_loss
    if chance is None or chance <= 0 or end < STALL_WINDOW:
        return None
    losses = rec["loss"][end - STALL_WINDOW:end].astype(np.float64)
    if not np.isfinite(losses).all():
        return None
    half = STALL_WINDOW // 2
    first, second, median = np.median(losses[:half]), np.median(losses[half:]), float(np.median(losses))
    if abs(median - chance) > CHANCE_TOLERANCE * chance or abs(first - second) > FLAT_TOLERANCE * chance:
        return None
    step = int(rec.steps[end - 1])
    return HealthIssue(
        "stalled", rec.n_layers - 1, rec.layer_names[-1], step,
        f"stalled: the loss has stayed at the chance level ({median:.3f}, chance {chance:.3f}) for the last "
        f"{STALL_WINDOW} recorded steps to step {step}; the model predicts no better than the class frequencies",
        ("learning_rate", "init", "batch_norm"), (("loss", median), ("chance_loss", chance)))


def later_above_earlier(earlier: np.ndarray, later: np.ndarray) -> float:
    """The share of pairs (e, l), e from ``earlier`` and l from ``later``, with l > e (ties
    count a half): the Mann-Whitney U statistic of ``later`` over ``earlier`` divided by the
    number of pairs. 1 when every later value is larger, 0.5 for two samples of one noise."""
    earlier, later = np.asarray(earlier, np.float64), np.asarray(later, np.float64)
    above = (later[:, None] > earlier[None, :]).sum() + 0.5 * (later[:, None] == earlier[None, :]).sum()
    return float(above) / (earlier.size * later.size)


def loss_levels(losses: np.ndarray, block: int) -> np.ndarray:
    """The levels a loss sat at: the medians of consecutive blocks of ``block`` recorded losses
    from the first (a last, shorter block included), each over its finite values (NaN for a block
    of none). A few outlying batches do not move a level; a loss that stays up does."""
    losses = np.asarray(losses, dtype=np.float64)
    block = max(int(block), 1)
    full = len(losses) // block * block
    parts = [losses[:full].reshape(-1, block).T] if full else []
    if full < len(losses):
        parts.append(losses[full:, None])
    if not parts:
        return np.zeros(0)
    levels = [column_nanmedian(np.where(np.isfinite(p), p, np.nan)) for p in parts]
    return np.concatenate(levels)


def _loss_start(levels: np.ndarray, chance: float | None) -> float:
    """Where a loss started, for ``blown_up_from``: its first level, or the chance loss if that is
    higher (a loss that falls fast has a first level well below its real start)."""
    return max(float(levels[0]), chance or 0.0)


def blown_up_from(level: Any, lowest: Any, start: float) -> Any:
    """Whether a loss ``level`` (a number or an array of them) has blown up: at least
    ``BLOWUP_FACTOR`` times the ``lowest`` level before it and above ``start`` (``_loss_start``).
    The one test of the detector (``_blown_up``) and of the remedies' trials (``blow_up``)."""
    with np.errstate(invalid="ignore"):
        return (level >= BLOWUP_FACTOR * lowest) & (level > start)


def blow_up(levels: np.ndarray, chance: float | None = None) -> tuple[int, int] | None:
    """The first level of ``levels`` (``loss_levels``) at least ``BLOWUP_FACTOR`` times the lowest
    level before it and above where the loss started (the first level, or ``chance`` if higher),
    as (its index, the lowest's index); ``None`` if the loss never blew up so."""
    levels = np.asarray(levels, dtype=np.float64)
    if levels.size < 2 or not np.isfinite(levels[0]):
        return None
    up = np.flatnonzero(blown_up_from(levels, np.fmin.accumulate(levels), _loss_start(levels, chance)))
    if not up.size:
        return None
    k = int(up[0])
    return k, int(np.nanargmin(levels[:k + 1]))


def _blown_up(rec: DiagnosticsRecorder, end: int, window: int, chance: float | None) -> HealthIssue | None:
    """The loss now (the median of the last ``window`` recorded steps) at least ``BLOWUP_FACTOR``
    times the lowest level it reached before (``loss_levels`` of blocks of ``window`` steps from
    the first) and above where it started (its first level, or ``chance`` if higher): the run has
    left its best weights far behind, even if the loss is falling from a peak right now."""
    if end < 2 * window:
        return None
    losses = rec["loss"][:end].astype(np.float64)
    recent = losses[end - window:]
    recent = recent[np.isfinite(recent)]
    if not recent.size:
        return None
    levels = loss_levels(losses[:end - window], window)
    if not np.isfinite(levels).any() or not np.isfinite(levels[0]):
        return None
    best_at = int(np.nanargmin(levels))
    now, best, start = float(np.median(recent)), float(levels[best_at]), _loss_start(levels, chance)
    # Only the level now counts: a loss that blew up once and came back down is not a finding.
    if not blown_up_from(now, best, start):
        return None
    best_step = int(rec.steps[min(best_at * window + window // 2, end - 1)])
    step = int(rec.steps[end - 1])
    times = f"{now / best:,.0f}× " if best > 0 else ""
    return HealthIssue(
        "diverging", rec.n_layers - 1, rec.layer_names[-1], step,
        f"diverging: the loss blew up: {now:.3g} over the last {window} recorded steps to step {step} (median) is "
        f"{times}the lowest it reached ({best:.3g}, around step {best_step}) and above where it started "
        f"({start:.3g}); the run has lost what it had learned",
        ("learning_rate", "clip"), (("loss_after", now), ("loss_best", best), ("loss_start", start)))


def _diverging(rec: DiagnosticsRecorder, end: int, window: int, context: HealthContext) -> list[HealthIssue]:
    """A loss rising over the last ``DIVERGE_WINDOW`` steps: its last third's median above its
    first third's by ``RISE_FACTOR`` and by a share of the run's loss scale (``RISE_MIN_SHARE``),
    and most of the last third's losses above most of the first third's (``RISE_CONSISTENCY``);
    else a loss that blew up (``_blown_up``: now ``BLOWUP_FACTOR`` times the lowest it reached and
    above its start), whichever way it is heading now; update / weight ratios above 1e-1."""
    out: list[HealthIssue] = []
    step = int(rec.steps[end - 1])
    names = rec.layer_names
    loss_rose = False
    ratios = _window_median(rec, "update_ratio", end, window)
    if np.isfinite(ratios).any() and np.nanmax(ratios) > DIVERGING_RATIO:
        i = int(np.nanargmax(ratios))
        out.append(HealthIssue(
            "diverging", i, names[i], step,
            f"diverging: each step changes the weights of {names[i]} by {ratios[i]:.2g} of their norm (update / "
            f"weight ratio, median around step {step}; healthy is about 1e-3, above 1e-1 the steps overshoot)",
            ("learning_rate", "clip"), (("update_ratio", float(ratios[i])),)))
    if end >= DIVERGE_WINDOW:
        losses = rec["loss"][end - DIVERGE_WINDOW:end].astype(np.float64)
        third = DIVERGE_WINDOW // 3
        if np.isfinite(losses).all():
            first, last = float(np.median(losses[:third])), float(np.median(losses[-third:]))
            middle = float(np.median(losses[third:-third]))
            scale = context.chance_loss or float(np.median(rec["loss"][:third].astype(np.float64)))
            rose = (last > RISE_FACTOR * first and last - first > RISE_MIN_SHARE * scale
                    and later_above_earlier(losses[:third], losses[-third:]) >= RISE_CONSISTENCY)
            loss_rose = first > 0 and rose and first <= middle <= last
            if loss_rose:
                out.append(HealthIssue(
                    "diverging", rec.n_layers - 1, names[-1], step,
                    f"diverging: the loss rose from {first:.3g} to {last:.3g} over the last {DIVERGE_WINDOW} "
                    f"recorded steps to step {step} (medians of the first and last thirds)",
                    ("learning_rate", "clip"), (("loss_before", first), ("loss_after", last))))
    if not loss_rose:
        blown = _blown_up(rec, end, window, context.chance_loss)
        if blown is not None:
            out.append(blown)
    return out
