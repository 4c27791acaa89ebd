"""Instruments beyond gradient norms: curvature against the stability limit, gradient noise,
effective learning rates and distributions.

The per-layer gradient norms show *that* training goes wrong; these show *why*:

* **Sharpness** λ_max, the largest eigenvalue of the Hessian H = ∇²J(θ) of the training loss,
  against the optimizer's stability threshold. On a quadratic with curvature λ, gradient
  descent with rate η converges only when η·λ < 2: a learning rate too high for the curvature
  makes the loss oscillate or diverge (Cohen et al. 2021, "Gradient Descent on Neural Networks
  Typically Occurs at the Edge of Stability"). Adaptive optimizers divide the step by a
  preconditioner P, so for them it is λ_max(P⁻¹H) that meets the threshold (Cohen et al. 2022,
  "Adaptive Gradient Methods at the Edge of Stability").
* **Gradient noise**: the noise scale B_simple = tr(Σ)/|G|² of the per-example gradients
  (McCandlish et al. 2018, "An Empirical Model of Large-Batch Training"), a batch-size advisor,
  and each layer's signal-to-noise ratio.
* **Effective learning rate** per layer: the step the optimizer really takes.
* **Histograms** with log-magnitude bins, so a healthy gradient of 1e-4 is not drawn as zero.

Everything is measured on a fixed *probe batch* (the first examples of the training split) by a
``ProbeNetwork``: a private float64 copy of the network without dropout. Measuring therefore
never changes the run: not its weights, its batch-norm statistics, its layers' caches nor its
random stream, and a run with instruments on follows the same trajectory as one with them off.
Sums are taken in float64.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .network import Network
from .optimizers import Optimizer, flat_layout

if TYPE_CHECKING:
    # Only the annotation: the spec sits above the engine.
    from core.spec import InstrumentsSpec

FLOAT64_EPS = float(np.finfo(np.float64).eps)
ADAPTIVE_OPTIMIZERS = ("adagrad", "rmsprop", "adam", "nadam", "adamw", "adamax")
MOMENTUM_OPTIMIZERS = ("momentum", "nesterov")
# Lanczos stops when the residual of its top Ritz pair is this share of the eigenvalue.
LANCZOS_TOLERANCE = 1e-3
# Per-example passes go through the probe batch this many examples at a time.
PER_EXAMPLE_CHUNK = 512
# The effective learning rate of a larger kernel is the median over every k-th row of it, at
# most about this many weights (the median of 16k of 235k weights is within a fraction of a
# percent of the whole kernel's, at a fifteenth of the cost).
MEDIAN_SAMPLE = 16_384


# ----------------------------------------------------------------------------- stability thresholds


def sgd_stability_threshold(learning_rate: float) -> float:
    """2/η: gradient descent θ ← θ − η∇J on a quadratic of curvature λ multiplies the error along
    that eigenvector by (1 − ηλ) each step, which shrinks only while ηλ < 2."""
    return 2.0 / learning_rate


def momentum_stability_threshold(learning_rate: float, momentum: float) -> float:
    """(2 + 2β)/η: heavy-ball momentum m ← βm − η∇J, θ ← θ + m on a quadratic of curvature λ is
    stable while ηλ < 2 + 2β (the roots of z² − (1 + β − ηλ)z + β stay in the unit disc);
    Nesterov momentum has the same limit."""
    return (2.0 + 2.0 * momentum) / learning_rate


def adam_stability_threshold(learning_rate: float, beta_1: float) -> float:
    """(2 + 2β1) / ((1 − β1)·η): the limit for the preconditioned sharpness λ_max(P⁻¹H) of Adam,
    whose first moment is an exponential average (1 − β1)·Σ β1^k g (Cohen et al. 2022);
    38/η for β1 = 0.9. Nadam, AdamW and AdaMax are held to the same limit."""
    return (2.0 + 2.0 * beta_1) / ((1.0 - beta_1) * learning_rate)


def is_adaptive(optimizer: Optimizer) -> bool:
    """Whether the optimizer divides its step by a per-parameter preconditioner."""
    return optimizer.name in ADAPTIVE_OPTIMIZERS


def stability_threshold(optimizer: Optimizer, learning_rate: float) -> float:
    """The sharpness beyond which the optimizer's step is unstable at rate η: 2/η for SGD,
    RMSProp and AdaGrad (the latter two against λ_max(P⁻¹H)), (2 + 2β)/η for momentum and
    Nesterov, (2 + 2β1)/((1 − β1)η) for Adam, Nadam, AdamW and AdaMax (against λ_max(P⁻¹H))."""
    if not learning_rate > 0:
        return math.nan
    if optimizer.name in MOMENTUM_OPTIMIZERS:
        return momentum_stability_threshold(learning_rate, optimizer.momentum)  # type: ignore[attr-defined]
    if optimizer.name in ("adam", "nadam", "adamw", "adamax"):
        return adam_stability_threshold(learning_rate, optimizer.beta_1)  # type: ignore[attr-defined]
    return sgd_stability_threshold(learning_rate)


def second_moment(optimizer: Optimizer, path: str) -> np.ndarray | None:
    """The optimizer's own second-moment slot of parameter ``path`` (s of AdaGrad and RMSProp, v of
    the Adam family, AdaMax's running maximum u; not a copy), or ``None`` for a non-adaptive
    optimizer or before Adam's first step."""
    if optimizer.name in ("adagrad", "rmsprop"):
        return optimizer.slot(path, "s")
    if optimizer.name == "adamax" and optimizer.iterations > 0:
        return optimizer.slot(path, "u")
    if optimizer.name in ("adam", "nadam", "adamw") and optimizer.iterations > 0:
        return optimizer.slot(path, "v")
    return None


def preconditioner(optimizer: Optimizer, moment: np.ndarray | float) -> np.ndarray | float:
    """The diagonal P with which an adaptive optimizer divides its step, from its second moment
    (element by element, so also for one value):

    * AdaGrad, RMSProp: P = √(s + ε)                     (ε inside the root, as in their rule)
    * Nadam:            P = √v̂ + ε,  v̂ = v / (1 − β2^t)
    * Adam, AdamW:      P = √v̂ + ε/√(1 − β2^t)           (Keras's ε: α_t·m/(√v + ε) = η·m̂/P)
    * AdaMax:           P = u + ε                        (its step is η·m̂/(u + ε))
    """
    moment = np.asarray(moment, dtype=np.float64)
    if optimizer.name in ("adagrad", "rmsprop"):
        return np.sqrt(moment + optimizer.epsilon)  # type: ignore[attr-defined]
    if optimizer.name == "adamax":
        return moment + optimizer.epsilon  # type: ignore[attr-defined]
    correction = 1.0 - optimizer.beta_2 ** optimizer.iterations  # type: ignore[attr-defined]
    eps = optimizer.epsilon if optimizer.name == "nadam" else optimizer.epsilon / math.sqrt(correction)  # type: ignore[attr-defined]
    return np.sqrt(moment / correction) + eps


def adaptive_preconditioner(optimizer: Optimizer, path: str) -> np.ndarray | None:
    """P of parameter ``path`` (``preconditioner`` of its ``second_moment``), float64; ``None``
    before the first step or for a non-adaptive optimizer."""
    moment = second_moment(optimizer, path)
    return None if moment is None else np.asarray(preconditioner(optimizer, moment))


# ----------------------------------------------------------------------------- effective learning rate


def momentum_effective_rate(learning_rate: float, momentum: float) -> float:
    """η/(1 − β): the terminal velocity of momentum under a steady gradient is η∇J/(1 − β), so
    momentum β takes steps 1/(1 − β) times plain SGD's (10× for β = 0.9)."""
    return learning_rate / (1.0 - momentum)


def scale_invariant_rate(rates: np.ndarray | float, unit_sq_norm: np.ndarray) -> np.ndarray:
    """η/‖w_j‖² for a weight of unit j of a kernel followed by batch norm: the normalized output does
    not change when w_j is scaled, so its gradient is ⊥ w_j and scales as 1/‖w_j‖, and a step of η
    turns w_j's direction by η/‖w_j‖² (van Laarhoven 2017). ``unit_sq_norm`` is ‖w_j‖² of each
    weight's unit, ``rates`` η per weight or one η."""
    with np.errstate(divide="ignore"):
        return np.asarray(rates, dtype=np.float64) / unit_sq_norm


def effective_learning_rates(network: Network, optimizer: Optimizer, learning_rate: float) -> np.ndarray:
    """Per layer (input to output), the median over its kernel's weights of the rate the
    optimizer really applies:

    * SGD: η;  momentum, Nesterov: η/(1 − β) with the optimizer's current β;
    * adaptive optimizers: η/P with P from ``preconditioner`` (η/(√v̂ + ε) for Adam);
    * a kernel feeding batch norm (``before_activation``): the above divided by ‖w_j‖², the
      squared norm of the unit's incoming weights (``scale_invariant_rate``).

    η/P falls as the second moment grows, so for a kernel not feeding batch norm the median rate
    is η/P at the median second moment (for an even count NumPy's median of the two middle second
    moments, within rounding of the two middle rates' mean when they are close): one partial sort
    of the optimizer's own slot instead of six passes over a float64 copy. Kernels larger than
    ``MEDIAN_SAMPLE`` weights are sampled every k-th input row (15 ms → under 1 ms a call on a
    784-300-100-10 network).
    """
    out = np.full(len(network.layer_keys), np.nan)
    params = network.parameters()
    for j, key in enumerate(network.layer_keys):
        path = f"{key}.kernel"
        kernel = params[path]
        sample = np.arange(0, kernel.size, -(-kernel.size // MEDIAN_SAMPLE))  # every k-th weight, row-major
        rates: Any = learning_rate
        if optimizer.name in MOMENTUM_OPTIMIZERS:
            rates = momentum_effective_rate(learning_rate, optimizer.momentum)  # type: ignore[attr-defined]
        feeds_batch_norm = key != "output" and network.layers[j].batch_norm_position == "before_activation"
        if is_adaptive(optimizer):
            moment = second_moment(optimizer, path)
            if moment is None:
                continue
            if not feeds_batch_norm:
                out[j] = learning_rate / float(preconditioner(optimizer, float(np.median(moment.ravel()[sample]))))
                continue
            rates = learning_rate / preconditioner(optimizer, moment.ravel()[sample])
        if feeds_batch_norm:
            unit_sq = np.einsum("ij,ij->j", kernel, kernel, dtype=np.float64)
            rates = scale_invariant_rate(rates, unit_sq[sample % kernel.shape[1]])
        out[j] = float(np.median(rates))
    return out


# ----------------------------------------------------------------------------- histograms


@dataclass(frozen=True)
class LogHistogram:
    """Counts of |x| in log-spaced bins: ``counts[i]`` holds 10^e_i ≤ |x| < 10^e_(i+1) with
    ``exponents`` e the bin edges; exact zeros, and magnitudes below and above the range, apart."""

    exponents: np.ndarray
    counts: np.ndarray
    zeros: int
    below: int
    above: int


def log_magnitude_histogram(values: np.ndarray, low_exponent: float, high_exponent: float,
                            bins: int) -> LogHistogram:
    """Bin i of ``bins`` holds the values with e_i ≤ log10|x| < e_(i+1), e_i = lo + i·(hi − lo)/bins.

    A gradient of 1e-4 and one of 1e-1 land three decades apart instead of in the same
    first bin of a linear range. Zeros (a dead ReLU unit's output or gradient) are counted
    apart: they have no logarithm."""
    if not high_exponent > low_exponent or bins < 1:
        raise ValueError(f"log_magnitude_histogram: needs low < high and bins >= 1, got "
                         f"{low_exponent}, {high_exponent}, {bins}")
    flat = np.abs(np.asarray(values, dtype=np.float64).ravel())
    nonzero = flat[flat > 0]
    with np.errstate(divide="ignore"):
        position = (np.log10(nonzero) - low_exponent) * (bins / (high_exponent - low_exponent))
    index = np.floor(position)
    inside = (index >= 0) & (index < bins)
    counts = np.bincount(index[inside].astype(np.int64), minlength=bins)
    return LogHistogram(np.linspace(low_exponent, high_exponent, bins + 1), counts,
                        int(flat.size - nonzero.size), int(np.count_nonzero(index < 0)),
                        int(np.count_nonzero(index >= bins)))


def value_histogram(values: np.ndarray, low: float, high: float, bins: int) -> np.ndarray:
    """Counts in ``bins`` equal bins over [low, high] (the last bin closed, as numpy.histogram):
    for activations, where saturation is mass piling at ±1 (tanh) or 0 and 1 (logistic)."""
    if not high > low or bins < 1:
        raise ValueError(f"value_histogram: needs low < high and bins >= 1, got {low}, {high}, {bins}")
    flat = np.asarray(values, dtype=np.float64).ravel()
    flat = flat[(flat >= low) & (flat <= high)]
    index = np.minimum(np.floor((flat - low) * (bins / (high - low))), bins - 1)
    return np.bincount(index.astype(np.int64), minlength=bins)


def magnitude_exponent_range(arrays: Iterable[np.ndarray], margin: float = 0.5) -> tuple[float, float]:
    """The exponents [⌊log10 min|x|⌋ − margin, ⌈log10 max|x|⌉ + margin] over the non-zero values
    of ``arrays`` (a recent window of a quantity), so the histogram's range follows the data."""
    low, high = math.inf, -math.inf
    for a in arrays:
        mag = np.abs(np.asarray(a, dtype=np.float64).ravel())
        mag = mag[(mag > 0) & np.isfinite(mag)]
        if mag.size:
            low, high = min(low, float(mag.min())), max(high, float(mag.max()))
    if not math.isfinite(low):
        return -1.0, 1.0
    return math.floor(math.log10(low)) - margin, math.ceil(math.log10(high)) + margin


# ----------------------------------------------------------------------------- the probe network


class ProbeNetwork:
    """A float64 copy of a network and a fixed probe batch, for measuring only.

    J(θ) is the experiment's training loss on the probe batch: the batch-mean data loss plus
    l1·Σ|W| + l2·ΣW² over the kernels, with batch norm normalizing by the probe batch's own
    statistics (as at a training step; layers frozen by transfer learning use their moving
    averages, as they do in training) and without dropout (a random mask would make J a
    different function at every call). ``sync`` copies the training network's current
    weights in; nothing is ever written back.
    """

    def __init__(self, network: Network, X: np.ndarray, y: np.ndarray, l1: float = 0.0, l2: float = 0.0) -> None:
        if len(X) == 0:
            raise ValueError("probe batch: needs at least one example")
        # The initial weights are overwritten by sync(); a fixed generator keeps this free of
        # any run's random stream.
        self.net = Network(network.spec, network.n_inputs, network.n_outputs, network.loss,
                           np.random.Generator(np.random.PCG64(0)), np.float64)
        self.net.input_dropout = 0.0
        for layer in self.net.layers:
            layer.dropout = 0.0
        self.loss = network.loss
        self.X = np.asarray(X, dtype=np.float64)
        self.y = y if np.issubdtype(y.dtype, np.integer) else np.asarray(y, dtype=np.float64)
        self.l1, self.l2 = float(l1), float(l2)
        params = self.net.parameters()
        layout = flat_layout(params)
        assert layout is not None and layout[0] is self.net.flat_parameters
        self._offsets = layout[1]
        self.layer_keys = self.net.layer_keys
        self.kernel_mask = self._mask(lambda path: path.endswith(".kernel"))
        self.trainable_mask = self._mask(lambda path: True)
        self.theta = self.net.flat_parameters.copy()
        self._buffers: dict[str, np.ndarray] = {}
        self.sync(network)

    def _mask(self, keep: Callable[[str], bool]) -> np.ndarray:
        """1.0 on the entries of the flat parameter vector whose path passes ``keep``, 0 elsewhere
        (the alignment gaps between segments are always 0)."""
        mask = np.zeros_like(self.net.flat_parameters)
        for path, a in self.net.parameters().items():
            if keep(path):
                mask[self._offsets[path]:self._offsets[path] + a.size] = 1.0
        return mask

    def segment(self, flat: np.ndarray, path: str) -> np.ndarray:
        """The part of a flat parameter-shaped vector that belongs to ``path``, in its shape."""
        shape = self.net.parameters()[path].shape
        start = self._offsets[path]
        return flat[start:start + int(np.prod(shape))].reshape(shape)

    def sync(self, network: Network) -> None:
        """Take the training network's current weights, batch-norm statistics and frozen layers."""
        self.net.load_state({**network.parameters(), **network.buffers()})
        self._buffers = {k: a.copy() for k, a in self.net.buffers().items()}
        frozen = [layer.frozen for layer in network.layers]
        for layer, f in zip(self.net.layers, frozen, strict=True):
            layer.frozen = f
        self.trainable_mask = self._mask(lambda path: not (path.startswith("layers.")
                                                          and frozen[int(path.split(".")[1])]))
        self.theta = self.net.flat_parameters.copy()

    def restore(self) -> None:
        """Put θ and the moving statistics back after a pass that moved them."""
        self.net.flat_parameters[...] = self.theta
        for key, a in self.net.buffers().items():
            a[...] = self._buffers[key]

    # -------------------------------------------------------------- J and ∇J

    def penalty(self, theta: np.ndarray) -> float:
        """l1·Σ|W| + l2·ΣW² over the kernels."""
        w = theta[self.kernel_mask > 0]
        return self.l1 * float(np.abs(w).sum()) + self.l2 * float(np.dot(w, w))

    def gradient(self, theta: np.ndarray, penalty: bool = True) -> tuple[float, np.ndarray]:
        """(J(θ), ∇J(θ)) as a flat vector, zero outside the trainable parameters. Without
        ``penalty`` only the data loss: the penalty's curvature is added exactly instead."""
        self.net.flat_parameters[...] = theta
        logits = self.net.forward(self.X, training=True)
        loss, grad_logits = self.loss.value_and_gradient(logits, self.y)
        self.net.backward(grad_logits)
        grad = self.net.flat_gradients * self.trainable_mask
        if penalty and (self.l1 or self.l2):
            loss += self.penalty(theta)
            grad += self.kernel_mask * self.trainable_mask * (self.l1 * np.sign(theta) + 2.0 * self.l2 * theta)
        return loss, grad

    def layer_gradient_norms(self) -> tuple[float, np.ndarray]:
        """(J(θ), ‖∂J/∂W‖₂ of each layer's kernel): the ``grad_norm`` of the diagnostics, in float64."""
        loss, grad = self.gradient(self.theta)
        self.restore()
        norms = np.array([float(np.linalg.norm(self.segment(grad, f"{k}.kernel"))) for k in self.layer_keys])
        return loss, norms

    def hessian_vector_product(self, v: np.ndarray) -> np.ndarray:
        """Hv = ∇²J(θ)·v by a central difference of gradients, plus the penalty's exact curvature:

            Hv ≈ (∇J_data(θ + h v) − ∇J_data(θ − h v)) / 2h  +  2·l2·v   (on the kernels)

        The error is O(h²) from the third derivatives and O(ε_mach/h) from rounding; in float64
        h = ε_mach^(1/3)·(1 + ‖θ‖)/‖v‖ balances the two at about 1e-10 of ‖Hv‖. The ℓ1 term has
        no curvature away from W = 0 (and a difference across 0 would only measure its kink)."""
        v = v * self.trainable_mask
        norm_v = float(np.linalg.norm(v))
        if norm_v == 0.0:
            return np.zeros_like(v)
        h = FLOAT64_EPS ** (1.0 / 3.0) * (1.0 + float(np.linalg.norm(self.theta))) / norm_v
        _, plus = self.gradient(self.theta + h * v, penalty=False)
        _, minus = self.gradient(self.theta - h * v, penalty=False)
        self.restore()
        hv = (plus - minus) / (2.0 * h)
        if self.l2:
            hv += (2.0 * self.l2) * self.kernel_mask * v
        return hv

    def start_vector(self, rng: np.random.Generator) -> np.ndarray:
        """A random unit vector on the trainable parameters."""
        v = rng.standard_normal(self.theta.shape) * self.trainable_mask
        return v / float(np.linalg.norm(v))


# ----------------------------------------------------------------------------- Lanczos


@dataclass(frozen=True)
class Eigenpair:
    """The largest eigenvalue found, its vector, the matrix-vector products used and whether the
    residual test passed within the iteration budget."""

    value: float
    vector: np.ndarray
    iterations: int
    converged: bool


def lanczos_largest_eigenvalue(matvec: Callable[[np.ndarray], np.ndarray], start: np.ndarray,
                               max_iterations: int = 20, tolerance: float = LANCZOS_TOLERANCE) -> Eigenpair:
    """λ_max of a symmetric operator A by the Lanczos iteration (with full re-orthogonalization).

    From q_1 = start/‖start‖ it builds an orthonormal basis Q_k of the Krylov space
    span{q_1, Aq_1, …, A^(k−1)q_1} in which A is tridiagonal:

        w = A q_j − β_(j−1) q_(j−1),  α_j = q_jᵀ w,  w ← w − α_j q_j,  β_j = ‖w‖,  q_(j+1) = w/β_j

    and the largest eigenvalue θ of T_k = tridiag(β, α, β) (a Ritz value) approaches λ_max from
    below, far faster than power iteration, which also would find the largest |λ| where this
    finds the largest λ. With T_k s = θ s, the Ritz vector y = Q_k s has residual
    ‖A y − θ y‖ = β_k |s_k|; the iteration stops when that is ≤ tolerance·|θ|.
    """
    n = start.size
    k_max = max(1, min(int(max_iterations), n))
    basis = np.zeros((k_max, n))
    alphas: list[float] = []
    betas: list[float] = []
    q = start / float(np.linalg.norm(start))
    theta, s, converged = math.nan, np.ones(1), False
    for j in range(k_max):
        basis[j] = q
        w = matvec(q)
        if j > 0:
            w -= betas[-1] * basis[j - 1]
        alpha = float(np.dot(q, w))
        w -= alpha * q
        # Rounding makes the basis lose orthogonality once a Ritz value converges; projecting the
        # earlier vectors out again (twice is enough) keeps T_k faithful at k·n extra work.
        for _ in range(2):
            w -= basis[:j + 1].T @ (basis[:j + 1] @ w)
        alphas.append(alpha)
        beta = float(np.linalg.norm(w))
        t = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
        values, vectors = np.linalg.eigh(t)
        theta, s = float(values[-1]), vectors[:, -1]
        if beta * abs(float(s[-1])) <= tolerance * max(abs(theta), 1e-300) or beta <= 1e-12 * max(abs(alpha), 1.0):
            converged = True
            break
        betas.append(beta)
        q = w / beta
    used = len(alphas)
    vector = basis[:used].T @ s
    return Eigenpair(theta, vector, used, converged)


def sharpness(probe: ProbeNetwork, start: np.ndarray, max_iterations: int = 20,
              tolerance: float = LANCZOS_TOLERANCE) -> Eigenpair:
    """λ_max(H), H = ∇²J(θ) on the probe batch (Lanczos on ``hessian_vector_product``)."""
    return lanczos_largest_eigenvalue(probe.hessian_vector_product, start, max_iterations, tolerance)


def preconditioner_vector(probe: ProbeNetwork, optimizer: Optimizer) -> np.ndarray | None:
    """P (``adaptive_preconditioner``) laid out like the probe's flat parameters, 1 elsewhere."""
    flat = np.ones_like(probe.theta)
    for path in probe.net.parameters():
        p = adaptive_preconditioner(optimizer, path)
        if p is None:
            return None
        probe.segment(flat, path)[...] = p
    return flat


def preconditioned_sharpness(probe: ProbeNetwork, optimizer: Optimizer, start: np.ndarray,
                             max_iterations: int = 20, tolerance: float = LANCZOS_TOLERANCE) -> Eigenpair | None:
    """λ_max(P⁻¹H), computed as λ_max(P^(−1/2) H P^(−1/2)): the same eigenvalues (similar
    matrices), but a symmetric operator, which Lanczos needs. ``None`` when the optimizer has no
    second-moment state yet (or is not adaptive)."""
    p = preconditioner_vector(probe, optimizer)
    if p is None:
        return None
    d = 1.0 / np.sqrt(p)

    def matvec(v: np.ndarray) -> np.ndarray:
        return d * probe.hessian_vector_product(d * v)

    return lanczos_largest_eigenvalue(matvec, start, max_iterations, tolerance)


# ----------------------------------------------------------------------------- gradient noise


def trace_of_covariance(mean_squared_norm: float, mean_gradient_sq_norm: float) -> float:
    """tr(Σ) = (1/N) Σ_i |g_i|² − |Ḡ|², with Σ = (1/N) Σ_i (g_i − Ḡ)(g_i − Ḡ)ᵀ the covariance of
    the per-example gradients g_i (normalized by N) and Ḡ their mean (clamped at 0 against rounding)."""
    return max(mean_squared_norm - mean_gradient_sq_norm, 0.0)


def noise_scale(trace_cov: float, gradient_sq_norm: float) -> float:
    """B_simple = tr(Σ)/|G|² (McCandlish et al. 2018): a mini-batch of B examples estimates G with
    noise tr(Σ)/B, so batches much smaller than B_simple are dominated by noise (a larger batch
    would help) and much larger ones waste compute."""
    return trace_cov / gradient_sq_norm if gradient_sq_norm > 0 else math.inf


def signal_to_noise(gradient_sq_norm: float, trace_cov: float) -> float:
    """SNR = |G|²/tr(Σ) of one layer's gradient, the inverse of its own noise scale: a mini-batch
    of B examples has SNR B·SNR, so a layer with SNR ≪ 1/B is moved mostly by noise."""
    return gradient_sq_norm / trace_cov if trace_cov > 0 else math.inf


@dataclass(frozen=True)
class GradientNoise:
    """The noise instruments of one probe batch (per-layer arrays input to output)."""

    noise_scale: float
    snr: np.ndarray
    gradient_sq_norm: np.ndarray    # |G_l|² of each layer's parameters (penalty included)
    trace_covariance: np.ndarray    # tr(Σ_l)
    examples: int


def per_example_moments(net: Network, X: np.ndarray, y: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(Σ_i g_i by parameter path, Σ_i |g_il|² by layer) over the per-example gradients g_i of the
    data loss L_i, in one batched pass through the network's layers.

    A Dense layer's per-example kernel gradient is the outer product x_i δ_iᵀ (x_i its input,
    δ_i = ∂L_i/∂z_i), so |g_i|² = |x_i|²·|δ_i|² needs no per-example matrix; the bias's is |δ_i|²,
    batch norm's γ's Σ_k (δ_ik x̂_ik)² and β's |δ_i|². Batch norm uses its moving averages here:
    with one example the batch statistics are degenerate, and with the moving averages each
    example's gradient is its own (no dropout either). δ_i = n·(∂L/∂z)_i, since every loss is a
    batch mean."""
    layers = net.layers
    sums = {path: np.zeros(a.shape) for path, a in net.parameters().items()}
    squares = np.zeros(len(layers) + 1)
    for lo in range(0, len(X), PER_EXAMPLE_CHUNK):
        xb, yb = X[lo:lo + PER_EXAMPLE_CHUNK], y[lo:lo + PER_EXAMPLE_CHUNK]
        cache = []
        h = xb
        for layer in layers:
            bn, position = layer.batch_norm, layer.batch_norm_position
            x_in = h
            u = x_in @ layer.dense.kernel
            if layer.dense.bias is not None:
                u = u + layer.dense.bias
            x_hat = inv_std = None
            if bn is not None:
                inv_std = 1.0 / np.sqrt(bn.moving_variance + bn.epsilon)
            if bn is not None and position == "before_activation":
                x_hat = (u - bn.moving_mean) * inv_std
                u = x_hat * bn.gamma + bn.beta
            a = layer.activation.forward(u)
            h = a
            if bn is not None and position == "after_activation":
                x_hat = (a - bn.moving_mean) * inv_std
                h = x_hat * bn.gamma + bn.beta
            cache.append((x_in, u, a, x_hat, inv_std))
        logits = h @ net.output.kernel + net.output.bias
        delta = net.loss.gradient(logits, yb) * float(len(xb))
        _accumulate_dense(sums, squares, -1, "output", h, delta)
        g = delta @ net.output.kernel.T
        for i in range(len(layers) - 1, -1, -1):
            layer = layers[i]
            bn, position = layer.batch_norm, layer.batch_norm_position
            x_in, u, a, x_hat, inv_std = cache[i]
            if bn is not None and position == "after_activation":
                g = _accumulate_batch_norm(sums, squares, i, g, x_hat, bn.gamma, inv_std)
            g = layer.activation.backward(u, a, g)
            if bn is not None and position == "before_activation":
                g = _accumulate_batch_norm(sums, squares, i, g, x_hat, bn.gamma, inv_std)
            _accumulate_dense(sums, squares, i, f"layers.{i}", x_in, g, has_bias=layer.dense.bias is not None)
            if i > 0:
                g = g @ layer.dense.kernel.T
    return sums, squares


def _accumulate_dense(sums: dict[str, np.ndarray], squares: np.ndarray, index: int, key: str,
                      x: np.ndarray, delta: np.ndarray, has_bias: bool = True) -> None:
    """Kernel x_i δ_iᵀ (|g_i|² = |x_i|²|δ_i|²) and bias δ_i of each example, summed."""
    delta_sq = np.einsum("ij,ij->i", delta, delta)
    squares[index] += float(np.dot(np.einsum("ij,ij->i", x, x), delta_sq))
    sums[f"{key}.kernel"] += x.T @ delta
    if has_bias:
        squares[index] += float(delta_sq.sum())
        sums[f"{key}.bias"] += delta.sum(axis=0)


def _accumulate_batch_norm(sums: dict[str, np.ndarray], squares: np.ndarray, index: int, g: np.ndarray,
                           x_hat: np.ndarray, gamma: np.ndarray, inv_std: np.ndarray) -> np.ndarray:
    """γ's per-example gradient g_i ⊗ x̂_i and β's g_i, summed; returns ∂L/∂(BN input) = g·γ/σ
    (batch norm with fixed statistics is an affine map)."""
    g_gamma = g * x_hat
    squares[index] += float(np.einsum("ij,ij->", g_gamma, g_gamma) + np.einsum("ij,ij->", g, g))
    sums[f"layers.{index}.gamma"] += g_gamma.sum(axis=0)
    sums[f"layers.{index}.beta"] += g.sum(axis=0)
    return g * (gamma * inv_std)


def gradient_noise(probe: ProbeNetwork) -> GradientNoise:
    """B_simple and the per-layer SNR of the probe batch's per-example gradients.

    With d_i the data-loss gradient of example i and R the penalty's gradient (the same for every
    example), g_i = d_i + R, G = Ḡ = mean_i d_i + R and tr(Σ_l) = (1/N)Σ_i|d_il|² − |mean_i d_il|²
    (the penalty cancels). Layers frozen by transfer learning are left out of B_simple."""
    probe.restore()
    net = probe.net
    n = len(probe.X)
    sums, squares = per_example_moments(net, probe.X, probe.y)
    theta = probe.theta
    penalty = probe.kernel_mask * (probe.l1 * np.sign(theta) + 2.0 * probe.l2 * theta)
    keys = probe.layer_keys
    g_sq, d_sq = np.zeros(len(keys)), np.zeros(len(keys))
    for path, total in sums.items():
        layer = len(keys) - 1 if path.startswith("output.") else int(path.split(".")[1])
        mean = total / n
        d_sq[layer] += float(np.dot(mean.ravel(), mean.ravel()))
        g = mean + probe.segment(penalty, path)
        g_sq[layer] += float(np.dot(g.ravel(), g.ravel()))
    trace = np.array([trace_of_covariance(squares[j] / n, d_sq[j]) for j in range(len(keys))])
    snr = np.array([signal_to_noise(g_sq[j], trace[j]) for j in range(len(keys))])
    trained = [j for j, key in enumerate(keys) if key == "output" or not net.layers[j].frozen]
    scale = noise_scale(float(trace[trained].sum()), float(g_sq[trained].sum()))
    return GradientNoise(scale, snr, g_sq, trace, n)


# ----------------------------------------------------------------------------- the recorder


# What the instruments add to the history (history.npz), each aligned with the diagnostics'
# recorded steps and NaN on the rows where the instrument did not run.
STEP_INSTRUMENTS = ("step_sharpness", "step_preconditioned_sharpness", "step_stability_threshold",
                    "step_noise_scale")
LAYER_INSTRUMENTS = ("snr", "effective_learning_rate")
INSTRUMENT_KEYS = STEP_INSTRUMENTS + LAYER_INSTRUMENTS


class InstrumentRecorder:
    """Runs the instruments a spec's ``training.instruments`` turns on, each every k-th step, and
    keeps their values in tables whose rows are the diagnostics recorder's rows."""

    def __init__(self, spec: InstrumentsSpec, n_layers: int, capacity: int = 64) -> None:
        self.spec = spec
        self.n_layers = int(n_layers)
        cap = max(16, int(capacity))
        self._tables = {k: np.full((cap,) if k in STEP_INSTRUMENTS else (cap, self.n_layers), np.nan)
                        for k in INSTRUMENT_KEYS}
        self._probe: ProbeNetwork | None = None
        self._probe_examples = 0
        self.seconds: dict[str, float] = {"sharpness": 0.0, "noise": 0.0, "effective_learning_rate": 0.0}

    @property
    def enabled(self) -> bool:
        s = self.spec
        return s.sharpness.enabled or s.noise.enabled or s.effective_learning_rate.enabled

    def due(self, step: int, diagnostics_every: int = 1) -> tuple[str, ...]:
        """The instruments that measure after the optimizer step with 0-based index ``step``.

        Their values fill rows of the diagnostics, which are recorded at the steps with
        ``step % diagnostics_every == 0``; so an instrument's ``every`` is rounded up to a
        multiple of ``diagnostics_every`` and it measures when ``step`` is a multiple of that."""
        s = self.spec
        d = max(1, int(diagnostics_every))
        return tuple(name for name, i in (("sharpness", s.sharpness), ("noise", s.noise),
                                          ("effective_learning_rate", s.effective_learning_rate))
                     if i.enabled and step % (-(-i.every // d) * d) == 0)

    def table(self, key: str) -> np.ndarray:
        return self._tables[key]

    def _ensure(self, row: int) -> None:
        cap = len(self._tables["step_sharpness"])
        if row < cap:
            return
        new = max(cap * 2, row + 1)
        for key, a in self._tables.items():
            grown = np.full((new, *a.shape[1:]), np.nan)
            grown[:cap] = a
            self._tables[key] = grown

    def measure(self, due: Iterable[str], row: int, network: Network, optimizer: Optimizer, learning_rate: float,
                probe_batch: Callable[[int], tuple[np.ndarray, np.ndarray]], l1: float, l2: float) -> None:
        """Run the instruments named in ``due`` on the network's current weights, into ``row``;
        ``learning_rate`` is the rate the next step will take (the thresholds are for it)."""
        s = self.spec
        due = set(due)
        self._ensure(row)
        if "effective_learning_rate" in due:
            t0 = time.perf_counter()
            self._tables["effective_learning_rate"][row] = effective_learning_rates(network, optimizer, learning_rate)
            self.seconds["effective_learning_rate"] += time.perf_counter() - t0
        want_sharpness, want_noise = "sharpness" in due, "noise" in due
        if not (want_sharpness or want_noise):
            return
        if self._probe is None or self._probe_examples != s.probe_examples:  # built once, again if edited
            X, y = probe_batch(s.probe_examples)
            self._probe = ProbeNetwork(network, X, y, l1, l2)
            self._probe_examples = s.probe_examples
        probe = self._probe
        probe.sync(network)
        probe.l1, probe.l2 = float(l1), float(l2)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if want_sharpness:
                t0 = time.perf_counter()
                self._measure_sharpness(row, probe, optimizer, learning_rate)
                self.seconds["sharpness"] += time.perf_counter() - t0
            if want_noise:
                t0 = time.perf_counter()
                noise = gradient_noise(probe)
                self._tables["step_noise_scale"][row] = noise.noise_scale
                self._tables["snr"][row] = noise.snr
                self.seconds["noise"] += time.perf_counter() - t0

    def _measure_sharpness(self, row: int, probe: ProbeNetwork, optimizer: Optimizer, learning_rate: float) -> None:
        iterations = self.spec.sharpness.iterations
        if not np.all(np.isfinite(probe.theta)):
            return
        pair = sharpness(probe, self._start(probe), iterations)
        self._tables["step_sharpness"][row] = pair.value
        self._tables["step_stability_threshold"][row] = stability_threshold(optimizer, learning_rate)
        if is_adaptive(optimizer):
            pre = preconditioned_sharpness(probe, optimizer, self._start(probe), iterations)
            if pre is not None:
                self._tables["step_preconditioned_sharpness"][row] = pre.value

    @staticmethod
    def _start(probe: ProbeNetwork) -> np.ndarray:
        """The same random direction at every measurement. Starting from the last top eigenvector
        would save Lanczos products, but would make the value depend on the measurements before
        it, and a run resumed from a session (which does not keep that vector) would then record
        slightly different values than the uninterrupted run; this way each value is a function
        of the weights alone."""
        return probe.start_vector(np.random.Generator(np.random.PCG64(0)))

    # -------------------------------------------------------------- history

    def truncate(self, size: int) -> None:
        """Forget rows past ``size`` (the diagnostics recorder's roll-back)."""
        for a in self._tables.values():
            a[int(size):] = np.nan

    def rows(self, start: int, end: int) -> dict[str, np.ndarray]:
        """Read-only float32 copies of rows ``[start, end)`` of every table (what a snapshot sends
        with the diagnostics rows; NaN where nothing was measured)."""
        self._ensure(max(int(end) - 1, 0))
        out = {}
        for key, a in self._tables.items():
            block = a[int(start):int(end)].astype(np.float32)
            block.flags.writeable = False
            out[key] = block
        return out

    def to_arrays(self, size: int) -> dict[str, np.ndarray]:
        """The first ``size`` rows of every table (float32, as the diagnostics), for history.npz."""
        self._ensure(max(int(size) - 1, 0))
        return {k: a[:size].astype(np.float32) for k, a in self._tables.items()}

    def load_arrays(self, arrays: Mapping[str, np.ndarray], size: int) -> None:
        """Take the tables of a saved history (keys it lacks, from before the instruments, stay NaN)."""
        self.truncate(0)
        self._ensure(max(int(size) - 1, 0))
        for key in INSTRUMENT_KEYS:
            if key in arrays:
                self._tables[key][:size] = arrays[key]
