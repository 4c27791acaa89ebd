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

Signal propagation. Next to what the pass measures, the explorer predicts it with Glorot and
Bengio's fan-in / fan-out argument, for zero-mean independent weights of variance Var(w):

    q_l = Var(z_l) = fan_in · Var(w) · E[f(z_{l−1})²]             (forward; q_1 from the input's E[x²])
    v_{l−1} = Var(∂L/∂a_{l−1}) = fan_out · Var(w) · E[f'(z_l)²] · v_l    (backward; v_top = 1)

with the expectations over z ~ N(0, q) taken by Simpson's rule on a fine grid. For ReLU,
E[f(z)²] = q/2 and E[f'(z)²] = 1/2, so He's Var(w) = 2/fan_in keeps q_l constant and, with
fan_in = fan_out, v_l too; for an identity-like activation (tanh near 0) Glorot's 1/fan_avg
balances the two directions and LeCun's 1/fan_in keeps the forward one. The same recursion is
drawn for the Glorot, He and LeCun variances, so the chosen init can be read against them.
(With batch norm the batch's own statistics rescale every layer: no prediction is made.)

And the whole stack as one map: the singular values of its input-output Jacobian ∂a_top/∂x
at a few input points, computed exactly by propagating through the stack's own layers (the
backward pass of an identity matrix). All near 1 (dynamical isometry) means every direction
of the input reaches the top, and every direction of the gradient the bottom, undistorted;
a spread of decades means some directions are amplified and most lost.

The pass is a training pass (batch norm uses the batch statistics, Eq. 11-3; no dropout).
The arithmetic is float64 by default, so a stack that explodes shows numbers like 1e80
rather than an overflow: that is the point of the lesson. Values that still overflow are
reported as non-finite and left out of the statistics.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
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
#: The most array values one exploration may hold (``held_values``): about 2.6 GB of float64.
#: The lab runs in the window's process, so a pass beyond it (32 draws of 100 layers of 1,000
#: units would hold 70 GB) is refused with a message instead of exhausting the machine's memory.
#: The largest single stack the window offers, 100 × 1,000 at batch 256, holds 0.30 billion
#: (measured peak 2.24 GB).
MAX_VALUES = 320_000_000
#: Arrays of batch × width values a hidden layer holds during a pass, by batch norm's place: its
#: input, z, a and the pooled copies the statistics take, and batch norm's x̂ and its own output.
#: Measured with tracemalloc (tests/core/labs/test_init_explorer.py): 3.2–3.4, 4.2–4.3 and 5.2–5.3.
BATCH_ARRAYS_PER_LAYER = {False: 4, "before_activation": 5, "after_activation": 6}
#: The input choice that is not a dataset: a batch of standard normal vectors.
NORMAL_INPUT = "normal"
#: Quantiles kept per layer, for box / violin plots: 1 %, 5 %, quartiles, median, 95 %, 99 %.
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
BATCH_NORM_CHOICES = (False, "before_activation", "after_activation")
#: The Jacobian's singular values are taken at this many input points (the batch's first rows).
JACOBIAN_POINTS = 3
#: ... when the stack is small enough: width² · (width + n_inputs) · depth multiply-adds at most.
JACOBIAN_BUDGET = 2e9
#: The reference initializations whose predictions are drawn next to the chosen one's.
REFERENCE_INITS = ("glorot_normal", "he_normal", "lecun_normal")
#: The Gaussian expectations of the predictions: Simpson's rule on this many nodes over ±this many σ.
GAUSS_NODES = 4001         # per half line (odd, for Simpson's rule)
GAUSS_SPAN = 12.0


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
        check_size(self, self.n_inputs or self.width)


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
    # The fan-in / fan-out predictions (``predict_propagation``) of Var(a_l) and Var(∂L/∂a_l) for the
    # chosen init, and for each of ``REFERENCE_INITS`` by name; NaN with batch norm.
    predicted_forward_variance: np.ndarray = field(default_factory=lambda: np.zeros(0))
    predicted_backward_variance: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reference_predictions: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    # (points, min(width, n_inputs)): the singular values of ∂a_top/∂x at the batch's first rows,
    # largest first (``input_output_jacobian``); None when the stack is beyond ``JACOBIAN_BUDGET``.
    jacobian_singular_values: np.ndarray | None = None

    @property
    def forward_variance(self) -> np.ndarray:
        """Var(a_l), measured."""
        return self.std ** 2

    @property
    def backward_variance(self) -> np.ndarray:
        """Var(∂L/∂a_l), measured."""
        return self.grad_std ** 2

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


def held_values(settings: ExplorerSettings, n_inputs: int) -> int:
    """The array values ``explore`` holds at its peak: per draw and layer, the kernel and its
    gradient (fan_in × width each) and ``BATCH_ARRAYS_PER_LAYER`` arrays of batch × width."""
    width = settings.width
    kernels = n_inputs * width + (settings.depth - 1) * width * width
    arrays = BATCH_ARRAYS_PER_LAYER[settings.batch_norm]
    return settings.draws * (2 * kernels + settings.depth * arrays * settings.batch_size * width)


def check_size(settings: ExplorerSettings, n_inputs: int) -> None:
    """Raise ValueError, naming the sizes and the limit, when the pass would hold more than
    ``MAX_VALUES`` values."""
    values = held_values(settings, n_inputs)
    if values > MAX_VALUES:
        raise ValueError(
            f"draws, depth, width and batch_size: {settings.draws} draw(s) of {settings.depth} layers of "
            f"{settings.width} units at batch {settings.batch_size} would hold {values / 1e6:,.0f} million values "
            f"({values * 8 / 1e9:.1f} GB); at most {MAX_VALUES / 1e6:,.0f} million: use fewer draws, layers, "
            "units or examples")


def stack_layers(settings: ExplorerSettings, n_inputs: int, rng: np.random.Generator,
                 dtype: npt.DTypeLike = np.float64) -> Iterator[HiddenLayer]:
    """The ``depth`` core ``HiddenLayer`` rows of one stack, bottom first, each kernel drawn by the
    registered initializer when its layer is asked for (so a caller can stop between layers)."""
    init = get_initializer(settings.init)
    fan_in = n_inputs
    for _ in range(settings.depth):
        kernel = init((fan_in, settings.width), rng, dtype)
        activation = get_activation(settings.activation, **dict(settings.activation_params))
        yield HiddenLayer(kernel, activation, batch_norm=settings.batch_norm)
        fan_in = settings.width


def build_stack(settings: ExplorerSettings, n_inputs: int, rng: np.random.Generator,
                dtype: npt.DTypeLike = np.float64) -> list[HiddenLayer]:
    """``depth`` core ``HiddenLayer`` rows, kernels drawn by the registered initializer in order."""
    return list(stack_layers(settings, n_inputs, rng, dtype))


# ----------------------------------------------------------------------------- signal propagation


@functools.cache
def _simpson_rule() -> tuple[np.ndarray, np.ndarray]:
    """Nodes t and weights w with E[g(z)] ≈ Σ_i w_i g(√q·t_i) for z ~ N(0, q): Simpson's rule times
    the standard normal density on [−``GAUSS_SPAN``, 0] and on [0, ``GAUSS_SPAN``] apart, the node
    at 0 of each half nudged to its own side, so a kink or jump at 0 (ReLU and its slope) is
    integrated as exactly as a smooth function. A polynomial (Gauss–Hermite) rule errs by a percent
    there, and on a saturating tanh's near-step tanh²."""
    half = np.linspace(0.0, GAUSS_SPAN, GAUSS_NODES)
    h = half[1] - half[0]
    simpson = np.ones(GAUSS_NODES)
    simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
    right = half.copy()
    right[0] = 1e-9 * h
    t = np.concatenate([-right[::-1], right])
    weights = np.concatenate([simpson[::-1], simpson]) * (h / 3.0)
    return t, weights * np.exp(-0.5 * t * t) / np.sqrt(2.0 * np.pi)


def gaussian_moments(activation: Any, q: float) -> tuple[float, float, float]:
    """(E[f(z)], E[f(z)²], E[f'(z)²]) for z ~ N(0, q) (``_simpson_rule``)."""
    t, weights = _simpson_rule()
    z = np.sqrt(max(q, 0.0)) * t
    with np.errstate(all="ignore"):
        a = activation.forward(z)
        slope = activation.backward(z, a, np.ones_like(z))
    return float(weights @ a), float(weights @ (a * a)), float(weights @ (slope * slope))


def predict_propagation(weight_variance: Callable[[int, int], float], activation: Any, depth: int, width: int,
                        n_inputs: int, input_second_moment: float) -> tuple[np.ndarray, np.ndarray]:
    """(Var(a_l), Var(∂L/∂a_l)) per layer l = 1…depth predicted by the fan-in / fan-out recursion
    of the module docstring, for kernels of variance ``weight_variance(fan_in, fan_out)``, an
    input with E[x²] = ``input_second_moment`` and a top gradient of unit variance."""
    q = np.zeros(depth)
    forward = np.zeros(depth)
    slope_sq = np.zeros(depth)
    second = float(input_second_moment)
    fan_in = n_inputs
    for layer in range(depth):
        q[layer] = fan_in * weight_variance(fan_in, width) * second
        mean, second, slope_sq[layer] = gaussian_moments(activation, q[layer])
        forward[layer] = second - mean * mean
        fan_in = width
    backward = np.zeros(depth)
    backward[-1] = 1.0
    for layer in range(depth - 1, 0, -1):      # ∂L/∂a_{l−1} from ∂L/∂a_l through layer l's kernel (width × width)
        backward[layer - 1] = width * weight_variance(width, width) * slope_sq[layer] * backward[layer]
    return forward, backward


def input_output_jacobian(stack: list[HiddenLayer], x: np.ndarray) -> np.ndarray:
    """∂a_top/∂x at the input point ``x`` (shape (width, n_inputs)), exactly, through the stack's own
    layers: forward m = width copies of x in inference mode (batch norm, if any, as the affine map
    of its moving statistics, as for a layer frozen by transfer learning) and back-propagate the
    m × m identity; row i of the input gradient is then e_iᵀ·J, the gradient of top unit i."""
    width = stack[-1].units
    h = np.repeat(np.asarray(x).reshape(1, -1), width, axis=0)
    frozen = [layer.frozen for layer in stack]
    try:
        for layer in stack:      # a frozen layer's batch norm is the affine map of its moving statistics
            layer.frozen = True
            h = layer.forward(h, training=False)
        g = np.eye(width, dtype=h.dtype)
        for i in range(len(stack) - 1, -1, -1):
            g = stack[i].backward(g, need_input_grad=True)
    finally:
        for layer, was in zip(stack, frozen, strict=True):
            layer.frozen = was
    return g


def freeze_batch_statistics(stack: list[HiddenLayer], X: np.ndarray) -> None:
    """Set each batch norm's moving mean and variance to the statistics of the batch ``X`` as it
    reaches that layer, so that inference mode normalizes every point exactly as the training
    pass normalized the batch (the Jacobian of one point with the batch's statistics held fixed)."""
    h = X
    for layer in stack:
        bn = layer.batch_norm
        if bn is not None:
            u = layer.dense.forward(h)
            if layer.batch_norm_position == "after_activation":
                u = layer.activation.forward(u)
            bn.moving_mean[...] = u.mean(axis=0)
            bn.moving_variance[...] = u.var(axis=0)
        h = layer.forward(h, training=False)


def jacobian_singular_values(stack: list[HiddenLayer], X: np.ndarray, points: int = JACOBIAN_POINTS) -> np.ndarray:
    """The singular values (largest first) of ``input_output_jacobian`` at the first ``points`` rows
    of ``X`` (batch norm frozen at ``X``'s statistics): shape (points, min(width, n_inputs))."""
    freeze_batch_statistics(stack, X)
    rows = [np.linalg.svd(input_output_jacobian(stack, X[i]), compute_uv=False)
            for i in range(min(points, len(X)))]
    return np.array(rows)


def _predictions(settings: ExplorerSettings, n_inputs: int, second_moment: float
                 ) -> tuple[np.ndarray, np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    depth = settings.depth
    if settings.batch_norm:
        nan = np.full(depth, np.nan)
        return nan, nan.copy(), {}
    activation = get_activation(settings.activation, **dict(settings.activation_params))
    own = get_initializer(settings.init)
    forward, backward = predict_propagation(own.variance, activation, depth, settings.width, n_inputs, second_moment)
    references = {name: predict_propagation(get_initializer(name).variance, activation, depth, settings.width,
                                            n_inputs, second_moment) for name in REFERENCE_INITS}
    return forward, backward, references


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
    of every layer pooled over the draws. ``should_stop()`` is asked before each layer is built,
    run forward and run backward; if it turns true the pass is abandoned and None returned.
    ValueError when the pass would hold more than ``MAX_VALUES`` values (``check_size``).

    Forward, per layer l:  z_l = a_{l−1} W_l (+ b_l = 0) → [BN] → a_l = f(z_l) → [BN].
    Backward:  ∂L/∂a_top = G ~ N(0, 1);  ∂L/∂a_{l−1} = layer_l.backward(∂L/∂a_l).
    """
    X = input_batch(settings, rng, dtype, dataset)
    check_size(settings, X.shape[1])             # a data set's rows set the first fan-in
    stacks: list[list[HiddenLayer]] = []
    for _ in range(settings.draws):
        stack: list[HiddenLayer] = []
        for layer in stack_layers(settings, X.shape[1], rng, dtype):
            if should_stop is not None and should_stop():   # a large stack takes seconds to draw
                return None
            stack.append(layer)
        stacks.append(stack)
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
        forward, backward, references = _predictions(settings, X.shape[1], float(np.mean(np.square(X))))
        jacobian = None
        width = settings.width
        if width * width * (width + X.shape[1]) * depth <= JACOBIAN_BUDGET:
            if should_stop is not None and should_stop():
                return None
            jacobian = jacobian_singular_values(stacks[0], X)
    return Exploration(settings=settings, input_mean=float(X.mean()), input_std=float(X.std()),
                       quantiles=quantiles, hist_edges=edges, hist_density=density,
                       predicted_forward_variance=forward, predicted_backward_variance=backward,
                       reference_predictions=references, jacobian_singular_values=jacobian, **out)
