"""The layers of a deep feed-forward network, each with its forward and backward pass.

A hidden layer is one row of the spec: Dense → optional batch norm → activation → optional
batch norm → optional dropout. Conventions are Keras's: kernel shape ``(fan_in, fan_out)``,
forward ``X @ kernel + bias``. Every layer keeps three things apart, so the optimizer, the
session file and the diagnostics each see only what is theirs:

* ``params``  — trainable parameters, keyed ``kernel``, ``bias``, ``gamma``, ``beta``;
* ``grads``   — their gradients, same keys, preallocated, written with ``out=``;
* ``buffers`` — non-trainable state (batch-norm moving statistics).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from .activations import SELU, Activation
from .optimizers import decay_towards, squared_sum
from .threads import SplitProducts

BN_MOMENTUM = 0.99
BN_EPSILON = 1e-5
# A saturating unit is "saturated" when its output lies within this share of the output
# range from an asymptote (1 % of (0, 1) for the logistic: below 0.01 or above 0.99).
SATURATION_MARGIN = 0.01


class BatchNorm:
    """Batch normalization (Ioffe & Szegedy, 2015), Equation 11-3 of the book.

    At training, with the mini-batch B of m_B rows::

        μ_B  = 1/m_B Σ x⁽ⁱ⁾                         (1)
        σ²_B = 1/m_B Σ (x⁽ⁱ⁾ − μ_B)²                (2)  biased variance
        x̂⁽ⁱ⁾ = (x⁽ⁱ⁾ − μ_B) / √(σ²_B + ε)            (3)
        z⁽ⁱ⁾ = γ ⊗ x̂⁽ⁱ⁾ + β                          (4)

    and the moving averages used at inference are updated as
    ``moving = momentum·moving + (1 − momentum)·batch`` (Keras: momentum 0.99, ε 1e-5 here).
    """

    def __init__(self, units: int, dtype: np.dtype, momentum: float = BN_MOMENTUM,
                 epsilon: float = BN_EPSILON) -> None:
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.gamma = np.ones(units, dtype=dtype)
        self.beta = np.zeros(units, dtype=dtype)
        self.moving_mean = np.zeros(units, dtype=dtype)
        self.moving_variance = np.ones(units, dtype=dtype)
        self.grad_gamma = np.zeros_like(self.gamma)
        self.grad_beta = np.zeros_like(self.beta)
        self._x_hat: np.ndarray | None = None
        self._inv_std: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        """(4) of the batch's statistics at training, of the moving ones at inference.

        The column sums of (1) and (2) are products with a vector of ones (one BLAS call each,
        where ``x.mean(axis=0)`` is several NumPy passes), and x̂ is written over x − μ_B: on
        the default experiment's 32 × 100 batches this forward took 24 µs where the
        textbook NumPy took 37."""
        if not training:
            inv_std = 1.0 / np.sqrt(self.moving_variance + self.epsilon)
            return (x - self.moving_mean) * (inv_std * self.gamma) + self.beta
        m = x.shape[0]
        ones = ones_vector(m, x.dtype)
        mean = ones @ x
        mean /= m                                               # (1)
        x_hat = x - mean
        variance = ones @ (x_hat * x_hat)
        variance /= m                                           # (2)
        inv_std = variance + self.epsilon
        np.sqrt(inv_std, out=inv_std)
        np.divide(1.0, inv_std, out=inv_std)
        x_hat *= inv_std                                        # (3)
        self._x_hat, self._inv_std = x_hat, inv_std
        # moving ← momentum·moving + (1 − momentum)·batch: μ_B and σ²_B are the scratch, and the
        # two roundings NumPy makes (not BLAS's one), as the moving statistics always had.
        decay_towards(self.moving_mean, self.momentum, mean, mean, fused=False)
        decay_towards(self.moving_variance, self.momentum, variance, variance, fused=False)
        out = x_hat * self.gamma
        out += self.beta                                        # (4)
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Back through (4)…(1), with δ = ∂L/∂z:

            ∂L/∂β = Σ δ        ∂L/∂γ = Σ δ·x̂
            ∂L/∂x = γ/(m·σ) · (m·δ − ∂L/∂β − x̂·∂L/∂γ)

        (the batch statistics depend on x too; σ = √(σ²_B + ε)). The two sums are the ones
        the parameters' gradients already hold, so they are taken once."""
        x_hat, inv_std = self._x_hat, self._inv_std
        assert x_hat is not None and inv_std is not None, "backward() before a training forward()"
        m = grad_out.shape[0]
        ones = ones_vector(m, grad_out.dtype)
        np.matmul(ones, grad_out, out=self.grad_beta)
        grad_x = grad_out * x_hat
        np.matmul(ones, grad_x, out=self.grad_gamma)
        np.multiply(x_hat, self.grad_gamma, out=grad_x)
        np.subtract(grad_out * float(m), grad_x, out=grad_x)
        grad_x -= self.grad_beta
        scale = self.gamma * inv_std
        scale /= m
        grad_x *= scale
        return grad_x


def kept_units(shape: tuple[int, ...], keep: float, rng: np.random.Generator, dtype: np.dtype,
               by_unit: bool) -> np.ndarray:
    """Which values dropout keeps, each with probability ``keep``: one uniform draw per value,
    example by example, stored unit by unit (``unit_major``) when ``by_unit``, the layout of the
    values the mask multiplies (a product of arrays stored in two orders is a strided pass,
    several times slower; the mask is reordered once and used twice, forward and backward)."""
    kept = rng.random(shape, dtype=np.float32 if dtype == np.float32 else np.float64) < keep
    return np.asfortranarray(kept) if by_unit else kept


def dropout_mask(shape: tuple[int, ...], rate: float, rng: np.random.Generator, dtype: np.dtype,
                 by_unit: bool = False) -> np.ndarray:
    """Inverted dropout (Srivastava et al., 2014): keep each unit with probability p = 1 − rate
    and scale the kept ones by 1/p at training, so nothing needs rescaling at inference."""
    keep = 1.0 - rate
    return kept_units(shape, keep, rng, dtype, by_unit).astype(dtype) * dtype.type(1.0 / keep)


#: The dropout a hidden layer applies: ordinary (inverted) dropout, or alpha dropout for SELU.
DROPOUT_TYPES = ("standard", "alpha")

#: SELU's saturation value α′ = −λα ≈ −1.7581, what a SELU unit outputs for very negative inputs.
SELU_SATURATION = -SELU.SCALE * SELU.ALPHA


def alpha_dropout(shape: tuple[int, ...], rate: float, rng: np.random.Generator,
                  dtype: np.dtype, by_unit: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Alpha dropout (Klambauer et al., 2017), the dropout of self-normalizing networks: a
    dropped unit is set to SELU's saturation value α′ = −λα instead of 0, and an affine
    correction puts the mean and variance back, so inputs with mean 0 and variance 1 keep them:

        y = a·(x·d + α′·(1 − d)) + b,   d ~ Bernoulli(q),  q = 1 − rate,
        a = (q + α′²·q·(1 − q))^(−1/2),   b = −a·(1 − q)·α′.

    (E[y] = a·(1 − q)·α′ + b = 0 and Var[y] = a²·(q + α′²·q·(1 − q)) = 1 for such x.)
    Ordinary dropout would scale the kept units by 1/q and shift the variance SELU preserves.
    Returns ``(multiplier, shift)`` with y = x·multiplier + shift, so ∂y/∂x = multiplier = a·d."""
    keep = 1.0 - rate
    a = (keep + SELU_SATURATION ** 2 * keep * (1.0 - keep)) ** -0.5
    b = -a * (1.0 - keep) * SELU_SATURATION
    kept = kept_units(shape, keep, rng, dtype, by_unit)
    multiplier = kept.astype(dtype) * dtype.type(a)
    shift = np.where(kept, dtype.type(b), dtype.type(a * SELU_SATURATION + b)).astype(dtype, copy=False)
    return multiplier, shift


def unit_major(shape: tuple[int, int], dtype: np.dtype) -> np.ndarray:
    """An empty batch × units array stored unit by unit (column-major): how a layer keeps its
    pre-activations, activations and their gradients. The element-wise steps that follow keep
    that order, and a BLAS on several threads computes a product written unit by unit with
    one thread's numbers where it does not for one written example by example (OpenBLAS's
    Haswell kernels share the columns of the 784-300-100-10 network's first product between
    two threads otherwise than one thread tiles them; see ``core.engine.threads``)."""
    return np.empty(shape, dtype=dtype, order="F")


@functools.lru_cache(maxsize=64)
def ones_vector(n: int, dtype: np.dtype) -> np.ndarray:
    """A read-only vector of n ones (one per length and dtype, reused every step).

    ``ones_vector(n) @ a`` sums the n rows of ``a`` and ``a @ ones_vector(k)`` its k columns as
    one BLAS product, several times faster than ``a.sum(axis=...)`` on a step's small arrays."""
    ones = np.ones(n, dtype)
    ones.flags.writeable = False
    return ones


class ActivationStats:
    """What the diagnostics record about a layer's activation output at a step."""

    __slots__ = ("mean", "std", "dead_fraction", "saturated_fraction")

    def __init__(self, a: np.ndarray, activation: Activation | None) -> None:
        # Mean and variance from the column sums (one BLAS product) and one BLAS dot
        # (E[a²] − E[a]²): several times cheaper than a.mean() + a.std() on a step's
        # activations. When the variance is a small share of E[a²] (a saturated layer:
        # mean ≈ 0.99, std ≈ 0.001) that difference cancels, so fall back to the two-pass formula.
        n = a.size
        column_sums = ones_vector(a.shape[0], a.dtype) @ a
        mean = float(column_sums @ ones_vector(a.shape[1], a.dtype)) / n
        mean_sq = squared_sum(a) / n
        variance = mean_sq - mean * mean
        if variance < 1e-3 * mean_sq:
            variance = float(a.var(dtype=np.float64))
        self.mean = mean
        self.std = math.sqrt(max(variance, 0.0))
        # A dead unit outputs exactly zero for every example in the batch (dying ReLU): its
        # column sums to zero. When the outputs cannot be negative the converse holds too, and
        # a column with a non-zero sum is never dead, so a second pass over the activations is
        # needed only for signed outputs with some column summing to exactly zero.
        alive = np.count_nonzero(column_sums)
        if alive < a.shape[1] and not getattr(activation, "nonnegative", False):
            alive = np.count_nonzero(a.any(axis=0))
        self.dead_fraction = 1.0 - float(alive) / a.shape[1]
        rng = getattr(activation, "saturation_range", None)
        if rng is None:
            self.saturated_fraction = 0.0
        else:
            low, high = rng
            margin = SATURATION_MARGIN * (high - low)
            saturated = np.count_nonzero(a <= low + margin) + np.count_nonzero(a >= high - margin)
            self.saturated_fraction = saturated / a.size


class Dense:
    """A fully connected layer: ``Z = X @ kernel + bias``; gradients ``∂L/∂W = Xᵀ·∂L/∂Z``,
    ``∂L/∂b = Σ_rows ∂L/∂Z``, ``∂L/∂X = ∂L/∂Z · Wᵀ``. ``Z`` and ``∂L/∂X`` are written unit by
    unit (``unit_major``)."""

    def __init__(self, kernel: np.ndarray, use_bias: bool = True) -> None:
        self.kernel = kernel
        self.bias = np.zeros(kernel.shape[1], dtype=kernel.dtype) if use_bias else None
        self.grad_kernel = np.zeros_like(kernel)
        self.grad_bias = None if self.bias is None else np.zeros_like(self.bias)
        self._x: np.ndarray | None = None
        self._grad_z: np.ndarray | None = None
        #: Splits the large products over threads (the trainer sets it while it trains).
        self.products: SplitProducts | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        matmul = np.matmul if self.products is None else self.products.matmul
        z = matmul(x, self.kernel, out=unit_major((x.shape[0], self.kernel.shape[1]), self.kernel.dtype))
        if self.bias is not None:
            z += self.bias
        return z

    def backward(self, grad_z: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        assert self._x is not None, "backward() before forward()"
        self._grad_z = grad_z
        matmul = np.matmul if self.products is None else self.products.matmul
        matmul(self._x.T, grad_z, out=self.grad_kernel)
        if self.grad_bias is not None:
            np.matmul(ones_vector(grad_z.shape[0], grad_z.dtype), grad_z, out=self.grad_bias)
        if not need_input_grad:
            return None
        return matmul(grad_z, self.kernel.T, out=unit_major((grad_z.shape[0], self.kernel.shape[0]), grad_z.dtype))

    def kernel_gradient_bound(self) -> float:
        """An upper bound of ‖∂L/∂W‖², from the last backward pass's two factors:

            ‖∂L/∂W‖² = ‖Xᵀ·∂L/∂Z‖² ≤ ‖X‖² · ‖∂L/∂Z‖²

        Each entry Σ_b x_bi·δ_bj, and every partial sum of it, is at most ‖x_:i‖·‖δ_:j‖
        (Cauchy–Schwarz); summing the squares over i and j gives the right-hand side. The
        factors hold batch × (fan_in + fan_out) values where W holds fan_in × fan_out, so for a
        wide layer the bound reads a fraction of what ‖∂L/∂W‖² does (784-300-100-10 at batch 32:
        7.4 µs against 15.3 for the norms), and for narrow ones at a large batch more (10 × 100
        at batch 64: 25.8 against 14.7 µs, 0.5 % of that network's step). NaN or infinity when
        a factor is not finite."""
        assert self._x is not None and self._grad_z is not None, "kernel_gradient_bound() before backward()"
        return squared_sum(self._x) * squared_sum(self._grad_z)


class HiddenLayer:
    """One row of the layer table: Dense → [BN] → activation → [BN] → [dropout]."""

    def __init__(self, kernel: np.ndarray, activation: Activation, *, use_bias: bool = True,
                 batch_norm: str | bool = False, dropout: float = 0.0, dropout_type: str = "standard") -> None:
        if dropout_type not in DROPOUT_TYPES:
            raise ValueError(f"dropout_type must be one of {', '.join(DROPOUT_TYPES)}, got {dropout_type!r}")
        self.dense = Dense(kernel, use_bias)
        self.activation = activation
        self.batch_norm_position = batch_norm
        self.batch_norm = BatchNorm(kernel.shape[1], kernel.dtype) if batch_norm else None
        self.dropout = float(dropout)
        self.dropout_type = dropout_type
        self.frozen = False
        self.stats: ActivationStats | None = None
        self._z: np.ndarray | None = None
        self._a: np.ndarray | None = None
        self._mask: np.ndarray | None = None

    @property
    def units(self) -> int:
        return self.dense.kernel.shape[1]

    @property
    def params(self) -> dict[str, np.ndarray]:
        out = {"kernel": self.dense.kernel}
        if self.dense.bias is not None:
            out["bias"] = self.dense.bias
        if self.batch_norm is not None:
            out["gamma"] = self.batch_norm.gamma
            out["beta"] = self.batch_norm.beta
        return out

    @property
    def grads(self) -> dict[str, np.ndarray]:
        out = {"kernel": self.dense.grad_kernel}
        if self.dense.grad_bias is not None:
            out["bias"] = self.dense.grad_bias
        if self.batch_norm is not None:
            out["gamma"] = self.batch_norm.grad_gamma
            out["beta"] = self.batch_norm.grad_beta
        return out

    @property
    def buffers(self) -> dict[str, np.ndarray]:
        if self.batch_norm is None:
            return {}
        return {"moving_mean": self.batch_norm.moving_mean, "moving_variance": self.batch_norm.moving_variance}

    def forward(self, x: np.ndarray, training: bool, rng: np.random.Generator | None = None,
                record: bool = False) -> np.ndarray:
        h = self.dense.forward(x)
        bn = self.batch_norm
        # Frozen layers keep their batch-norm statistics too (Keras runs them in inference mode).
        bn_training = training and not self.frozen
        if bn is not None and self.batch_norm_position == "before_activation":
            h = bn.forward(h, bn_training)
        self._z = h
        a = self.activation.forward(h)
        self._a = a
        if record:
            self.stats = ActivationStats(a, self.activation)
        out = bn.forward(a, bn_training) if bn is not None and self.batch_norm_position == "after_activation" else a
        if training and self.dropout > 0.0:
            assert rng is not None, "dropout at training needs a random generator"
            if self.dropout_type == "alpha":
                self._mask, shift = alpha_dropout(out.shape, self.dropout, rng, out.dtype, by_unit=True)
                out = out * self._mask + shift
            else:
                self._mask = dropout_mask(out.shape, self.dropout, rng, out.dtype, by_unit=True)
                out = out * self._mask
        else:
            self._mask = None
        return out

    @property
    def pre_activation(self) -> np.ndarray | None:
        """The last forward pass's input to the activation function (after batch norm when it
        comes before the activation), or ``None`` before any pass; not a copy."""
        return self._z

    @property
    def activation_output(self) -> np.ndarray | None:
        """The last forward pass's activation output (before a batch norm after it and dropout)."""
        return self._a

    def nonfinite_value(self) -> str | None:
        """Which value of the last forward pass first holds a NaN or infinity, in the order they
        were computed (``"pre-activation"``, ``"activation"``), or ``None``: where a diverging
        step went wrong."""
        for name, value in (("pre-activation", self._z), ("activation", self._a)):
            if value is not None and not np.isfinite(value).all():
                return name
        return None

    def backward(self, grad_out: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        g = grad_out
        if self._mask is not None:
            g = g * self._mask
        bn = self.batch_norm
        if bn is not None and self.batch_norm_position == "after_activation":
            g = self._bn_backward(g)
        g = self.activation.backward(self._z, self._a, g)
        if bn is not None and self.batch_norm_position == "before_activation":
            g = self._bn_backward(g)
        return self.dense.backward(g, need_input_grad)

    def _bn_backward(self, g: np.ndarray) -> np.ndarray:
        bn = self.batch_norm
        assert bn is not None
        if self.frozen:
            # Inference-mode BN is an affine map with fixed statistics.
            inv_std = 1.0 / np.sqrt(bn.moving_variance + bn.epsilon)
            bn.grad_gamma.fill(0)
            bn.grad_beta.fill(0)
            return g * (inv_std * bn.gamma)
        return bn.backward(g)

    def describe(self) -> dict[str, Any]:
        return {"units": self.units, "activation": self.activation.name,
                "batch_norm": self.batch_norm_position, "dropout": self.dropout, "dropout_type": self.dropout_type}
