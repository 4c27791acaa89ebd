"""The initialization explorer: Glorot and Bengio's argument made visible (chapter 11,
"The Vanishing/Exploding Gradients Problems", "Glorot and He Initialization").

Build a deep stack of identical hidden layers (core's ``HiddenLayer``, with a kernel drawn by a
registered initializer and a registered activation), push one batch through it and one
gradient back, and report per layer what the signal looks like on the way up and on the way
down. For the signal to flow, Glorot and Bengio ask for

    Var(a_l) ≈ Var(a_{l−1})              (forward: activations neither shrink nor blow up)
    Var(∂L/∂a_{l−1}) ≈ Var(∂L/∂a_l)      (backward: gradients neither vanish nor explode)

which a weight variance of 1/fan_avg (Glorot), 2/fan_in (He, ReLU family) or 1/fan_in
(LeCun, SELU) gives for the matching activation, and N(0, 1) with the logistic does not.

The loss. The pass uses no output layer and no labels: the loss is the random linear
function L = Σ_ij G_ij · a_ij of the top layer's activations a, with G_ij ~ N(0, 1) drawn
once. Its gradient ∂L/∂a_top = G has unit variance, so the gradient standard deviation
printed for a lower layer reads directly as the factor by which back-propagation has grown
or shrunk the signal on its way down, whatever the task. (A softmax cross-entropy on random
labels would add an output layer whose own initialization and the 1/batch of the mean loss
colour the numbers.)

The pass is a training pass (batch norm uses the batch statistics, Eq. 11-3; no dropout).
The arithmetic is float64 by default, so a stack that explodes shows numbers like 1e80
rather than an overflow: that is the point of the lesson. Values that still overflow are
reported as non-finite and left out of the statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from core.data import DATASETS, Dataset, load_dataset
from core.engine import validation as check
from core.engine.activations import ACTIVATIONS, get_activation
from core.engine.initializers import get_initializer
from core.engine.layers import HiddenLayer

MAX_DEPTH = 100
MAX_WIDTH = 2048
MAX_BATCH = 4096
MAX_DRAWS = 32
#: The input choice that is not a dataset: a batch of standard normal vectors.
NORMAL_INPUT = "normal"
#: Quantiles kept per layer, for box / violin plots: 1 %, 5 %, quartiles, median, 95 %, 99 %.
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
BATCH_NORM_CHOICES = (False, "before_activation", "after_activation")


def input_sources() -> list[str]:
    """What the explorer can feed the stack: standard normal input, or any registered dataset."""
    return [NORMAL_INPUT, *DATASETS.names()]


@dataclass(frozen=True)
class ExplorerSettings:
    """One explorer run: ``depth`` identical layers of ``width`` units.

    ``init`` is a spec ``init`` (``"he_normal"`` or ``{"name": "random_normal", "stddev": 0.05}``),
    ``activation`` a registered name with its ``activation_params`` (``alpha``), ``batch_norm``
    one of ``False``, ``"before_activation"``, ``"after_activation"``. ``source`` is
    ``"normal"`` (a ``batch_size`` × ``n_inputs`` standard normal batch; ``n_inputs`` defaults to
    ``width``) or a registered dataset, whose rows are standardized with the dataset's own mean
    and standard deviation.
    """

    depth: int = 50
    width: int = 100
    init: str | Mapping[str, Any] = "he_normal"
    activation: str = "relu"
    activation_params: Mapping[str, Any] = field(default_factory=dict)
    batch_norm: str | bool = False
    source: str = NORMAL_INPUT
    n_inputs: int | None = None
    batch_size: int = 256
    draws: int = 1
    bins: int = 60

    def __post_init__(self) -> None:
        check.positive_int("depth", self.depth, high=MAX_DEPTH)
        check.positive_int("width", self.width, high=MAX_WIDTH)
        check.integer("batch_size", self.batch_size, low=2, high=MAX_BATCH)
        check.integer("bins", self.bins, low=2, high=1000)
        check.positive_int("draws", self.draws, high=MAX_DRAWS)
        if self.n_inputs is not None:
            check.positive_int("n_inputs", self.n_inputs, high=MAX_WIDTH)
        check.choice("activation", self.activation, ACTIVATIONS.names())
        check.choice("source", self.source, input_sources())
        if self.batch_norm not in BATCH_NORM_CHOICES or self.batch_norm is True:
            raise ValueError(f"batch_norm: must be false, 'before_activation' or 'after_activation', "
                             f"got {self.batch_norm!r}")
        get_initializer(self.init)                                  # raises naming a bad name / parameter
        get_activation(self.activation, **dict(self.activation_params))


@dataclass
class Exploration:
    """Per-layer statistics of one forward and one backward pass; row l is hidden layer l.

    ``mean``/``std``: of the layer's output a_l (the next layer's input); ``saturated_fraction`` /
    ``dead_fraction``: as the training diagnostics count them (``core.engine.layers.ActivationStats``);
    ``quantiles``: rows of ``QUANTILES``; ``hist_edges`` / ``hist_density``: a density
    histogram of a_l over its 1 %–99 % range (for violins); ``grad_std``: of ∂L/∂a_l;
    ``kernel_grad_std``: of ∂L/∂W_l; ``nonfinite``: fraction of a_l that overflowed.
    """

    settings: ExplorerSettings
    input_mean: float
    input_std: float
    mean: np.ndarray
    std: np.ndarray
    saturated_fraction: np.ndarray
    dead_fraction: np.ndarray
    nonfinite: np.ndarray
    quantiles: np.ndarray
    hist_edges: np.ndarray
    hist_density: np.ndarray
    grad_std: np.ndarray
    kernel_grad_std: np.ndarray

    @property
    def depth(self) -> int:
        return len(self.std)

    def std_ratio(self) -> np.ndarray:
        """std(a_l) / std(input): 1 everywhere is the forward half of Glorot's condition."""
        return self.std / self.input_std if self.input_std > 0 else np.full_like(self.std, np.nan)

    def grad_ratio(self) -> np.ndarray:
        """std(∂L/∂a_l) / std(∂L/∂a_top): 1 everywhere is the backward half."""
        top = self.grad_std[-1]
        return self.grad_std / top if top > 0 else np.full_like(self.grad_std, np.nan)

    def summary(self) -> str:
        """One line for the GUI's status: how far the signal drifted each way."""
        fwd, bwd = self.std_ratio(), self.grad_ratio()
        return (f"top-layer std ×{_fmt(fwd[-1])} of the input's; bottom-layer gradient std ×{_fmt(bwd[0])} "
                f"of the top's; saturated {100 * float(np.nanmax(self.saturated_fraction)):.0f} % at most, "
                f"dead {100 * float(np.nanmax(self.dead_fraction)):.0f} % at most")


def _fmt(x: float) -> str:
    return f"{x:.3g}" if np.isfinite(x) else "∞ (overflow)"


def input_batch(settings: ExplorerSettings, rng: np.random.Generator, dtype: npt.DTypeLike = np.float64,
                dataset: Dataset | None = None) -> np.ndarray:
    """The batch the stack sees: standard normal, or ``batch_size`` rows of a dataset (the one
    given, else ``settings.source``) standardized with that dataset's mean and std, x' = (x − μ)/σ
    (constant features are left at 0)."""
    if dataset is None and settings.source == NORMAL_INPUT:
        n_inputs = settings.n_inputs or settings.width
        return rng.standard_normal((settings.batch_size, n_inputs)).astype(dtype, copy=False)
    if dataset is None:
        dataset = load_dataset(settings.source, {}, rng=rng)
    X = np.asarray(dataset.X, dtype=np.float64)
    mu, sigma = X.mean(axis=0), X.std(axis=0)
    sigma = np.where(sigma > 0, sigma, 1.0)
    rows = rng.choice(len(X), size=min(settings.batch_size, len(X)), replace=False)
    return ((X[rows] - mu) / sigma).astype(dtype, copy=False)


def build_stack(settings: ExplorerSettings, n_inputs: int, rng: np.random.Generator,
                dtype: npt.DTypeLike = np.float64) -> list[HiddenLayer]:
    """``depth`` core ``HiddenLayer`` rows, kernels drawn by the registered initializer in order."""
    init = get_initializer(settings.init)
    layers = []
    fan_in = n_inputs
    for _ in range(settings.depth):
        kernel = init((fan_in, settings.width), rng, dtype)
        activation = get_activation(settings.activation, **dict(settings.activation_params))
        layers.append(HiddenLayer(kernel, activation, batch_norm=settings.batch_norm))
        fan_in = settings.width
    return layers


def _finite_std(a: np.ndarray) -> float:
    """Standard deviation of the finite entries (NaN if there are none)."""
    finite = a[np.isfinite(a)]
    return float(finite.std()) if finite.size else np.nan


def _finite_stats(a: np.ndarray, bins: int) -> tuple[float, float, float, np.ndarray, np.ndarray, np.ndarray]:
    """mean, std, non-finite fraction, quantiles, histogram edges and density of the finite values."""
    flat = a.ravel()
    finite = flat[np.isfinite(flat)]
    bad = 1.0 - finite.size / max(flat.size, 1)
    if finite.size == 0:
        nan_q = np.full(len(QUANTILES), np.nan)
        return np.nan, np.nan, bad, nan_q, np.full(bins + 1, np.nan), np.zeros(bins)
    q = np.quantile(finite, QUANTILES)
    lo, hi = q[0], q[-1]
    if not hi > lo:                       # a constant layer (dead, saturated or zero): a thin bar
        span = max(abs(lo), 1.0) * 1e-3
        lo, hi = lo - span, hi + span
    density, edges = np.histogram(finite, bins=bins, range=(lo, hi), density=True)
    return float(finite.mean()), float(finite.std()), bad, q, edges, density


@overload
def explore(settings: ExplorerSettings, rng: np.random.Generator, *, dataset: Dataset | None = ...,
            dtype: npt.DTypeLike = ..., should_stop: None = ...) -> Exploration: ...
@overload
def explore(settings: ExplorerSettings, rng: np.random.Generator, *, dataset: Dataset | None = ...,
            dtype: npt.DTypeLike = ..., should_stop: Callable[[], bool]) -> Exploration | None: ...


def explore(settings: ExplorerSettings, rng: np.random.Generator, *, dataset: Dataset | None = None,
            dtype: npt.DTypeLike = np.float64, should_stop: Callable[[], bool] | None = None) -> Exploration | None:
    """One forward pass of a batch and one backward pass of L = Σ G ⊙ a_top (see the module
    docstring) through ``settings.draws`` independently initialized stacks, with the statistics
    of every layer pooled over the draws. ``should_stop()`` is asked before each layer; if it turns
    true the pass is abandoned and None returned.

    Forward, per layer l:  z_l = a_{l−1} W_l (+ b_l = 0) → [BN] → a_l = f(z_l) → [BN].
    Backward:  ∂L/∂a_top = G ~ N(0, 1);  ∂L/∂a_{l−1} = layer_l.backward(∂L/∂a_l).
    """
    X = input_batch(settings, rng, dtype, dataset)
    stacks = [build_stack(settings, X.shape[1], rng, dtype) for _ in range(settings.draws)]
    depth, bins = settings.depth, settings.bins
    out = {k: np.full(depth, np.nan) for k in ("mean", "std", "saturated_fraction", "dead_fraction",
                                                 "nonfinite", "grad_std", "kernel_grad_std")}
    quantiles = np.full((depth, len(QUANTILES)), np.nan)
    edges = np.full((depth, bins + 1), np.nan)
    density = np.zeros((depth, bins))
    with np.errstate(all="ignore"):
        hs = [X] * len(stacks)
        for i in range(depth):
            if should_stop is not None and should_stop():
                return None
            layers = [stack[i] for stack in stacks]
            hs = [layer.forward(h, training=True, rng=rng, record=True) for layer, h in zip(layers, hs, strict=True)]
            m, s, bad, q, e, d = _finite_stats(np.concatenate(hs), bins)
            out["mean"][i], out["std"][i], out["nonfinite"][i] = m, s, bad
            quantiles[i], edges[i], density[i] = q, e, d
            # Of f(z_l) itself, as the training diagnostics count them (core.engine.layers.ActivationStats).
            out["saturated_fraction"][i] = np.mean([layer.stats.saturated_fraction for layer in layers])  # type: ignore[union-attr]
            out["dead_fraction"][i] = np.mean([layer.stats.dead_fraction for layer in layers])  # type: ignore[union-attr]
        gs = [rng.standard_normal(h.shape).astype(h.dtype, copy=False) for h in hs]
        for i in range(depth - 1, -1, -1):
            if should_stop is not None and should_stop():
                return None
            out["grad_std"][i] = _finite_std(np.concatenate(gs))
            gs = [stack[i].backward(g, need_input_grad=i > 0) for stack, g in zip(stacks, gs, strict=True)]
            out["kernel_grad_std"][i] = _finite_std(np.concatenate([stack[i].dense.grad_kernel for stack in stacks]))
    return Exploration(settings=settings, input_mean=float(X.mean()), input_std=float(X.std()),
                       quantiles=quantiles, hist_edges=edges, hist_density=density, **out)
