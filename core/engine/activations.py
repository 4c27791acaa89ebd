"""Activation functions (chapter 11, "Better Activation Functions").

Each class is one equation. ``forward`` computes ``a = f(z)`` and ``backward`` applies the
chain rule ``∂L/∂z = f'(z) · ∂L/∂a``, written with whichever of ``z`` and ``a`` is cheaper
and stable (the logistic's derivative is ``a(1 − a)``, so no second exponential).

The book's ranking for hidden layers is ELU > leaky ReLU > ReLU > tanh > logistic: the
saturating functions (logistic, tanh) have derivatives near 0 at both ends, which is what
makes gradients vanish in deep stacks; the ReLU family does not saturate for z > 0.

Numerics: every function is finite, and raises no overflow warning, for inputs as large as
±1e4 in float32. No exponential ever sees a positive argument it could overflow on
(``e^(−|z|)`` instead of ``e^(−z)``, ``expm1(min(z, 0))`` instead of ``expm1(z)``).
Hyperparameters are Python floats, so a float32 array stays float32 (NumPy treats Python
scalars as "weak"; a ``np.float64`` scalar would upcast the result).
"""

from __future__ import annotations

import math
from typing import ClassVar, cast

import numpy as np

from .component import Component, Hyperparameter
from .registry import Registry
from .validation import positive


class Activation(Component):
    """An element-wise function ``a = f(z)`` applied after a layer's weighted sum."""

    family: ClassVar[str] = "activation"
    #: The two asymptotes of a saturating function, for the diagnostics (a unit within 1 % of
    #: the range from either one counts as saturated); ``None`` for non-saturating functions.
    saturation_range: ClassVar[tuple[float, float] | None] = None
    #: Whether every output is ≥ 0 (ReLU, logistic, softplus): the diagnostics then find dead
    #: units from the column sums they already have.
    nonnegative: ClassVar[bool] = False
    #: One line for the GUI tooltip: what the function does and when the book recommends it.
    summary: ClassVar[str] = ""

    def forward(self, z: np.ndarray) -> np.ndarray:
        """``a = f(z)``, a new array of ``z``'s shape and dtype."""
        raise NotImplementedError

    def backward(self, z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
        """``∂L/∂z = f'(z) · ∂L/∂a`` given ``z``, ``a = forward(z)`` and ``∂L/∂a``."""
        raise NotImplementedError


ACTIVATIONS: Registry[type[Activation]] = Registry("activation")


def get_activation(name: str, **params: object) -> Activation:
    """Build a registered activation by its spec name: ``get_activation("elu", alpha=0.5)``."""
    return cast(Activation, ACTIVATIONS.get(name).from_config(params))


def sigmoid(z: np.ndarray) -> np.ndarray:
    """σ(z) = 1 / (1 + e^(−z)), evaluated without overflow.

    ``e^(−z)`` overflows for very negative z, so with e = e^(−|z|) ≤ 1:
    σ(z) = 1 / (1 + e) for z ≥ 0, and σ(z) = e / (1 + e) for z < 0 (top and bottom times e^z).
    Shared by the logistic, swish, softplus and GELU derivatives and by the sigmoid loss.
    """
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1, e) / (1 + e)


@ACTIVATIONS.register("logistic")
class Logistic(Activation):
    saturation_range = (0.0, 1.0)
    nonnegative = True
    summary = ("Logistic σ(z) = 1/(1+e^−z): saturates at 0 and 1 with mean 0.5, the classic cause of "
               "vanishing gradients; last in the book's ranking (use Glorot init if at all).")

    def forward(self, z: np.ndarray) -> np.ndarray:
        """σ(z) = 1 / (1 + e^(−z))."""
        return sigmoid(z)

    def backward(self, z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
        """σ'(z) = σ(z)(1 − σ(z)) = a(1 − a), at most 1/4: each logistic layer shrinks the gradient."""
        return grad_a * a * (1 - a)


@ACTIVATIONS.register("tanh")
class Tanh(Activation):
    saturation_range = (-1.0, 1.0)
    summary = ("tanh: zero-centred, but saturates at −1 and 1; better than the logistic, worse than any "
               "ReLU variant for hidden layers (Glorot init).")

    def forward(self, z: np.ndarray) -> np.ndarray:
        """tanh(z) = (e^z − e^(−z)) / (e^z + e^(−z)) = 2σ(2z) − 1."""
        return np.tanh(z)

    def backward(self, z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
        """tanh'(z) = 1 − tanh²(z) = 1 − a²."""
        return grad_a * (1 - a * a)


@ACTIVATIONS.register("relu")
class ReLU(Activation):
    nonnegative = True
    summary = ("ReLU max(0, z): fast and does not saturate for z > 0, but units can die (output 0 for "
               "every input); use He init.")

    def forward(self, z: np.ndarray) -> np.ndarray:
        """ReLU(z) = max(0, z)."""
        return np.maximum(z, 0)

    def backward(self, z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
        """ReLU'(z) = 1 if z > 0 else 0 (the kink at 0 is given slope 0, as in Keras).

        Multiplying by the boolean mask is several times faster than ``np.where`` (benchmarks/)."""
        return grad_a * (z > 0)


@ACTIVATIONS.register("leaky_relu")
class LeakyReLU(Activation):
    summary = ("Leaky ReLU max(αz, z): the small slope α for z < 0 keeps units from dying; beats ReLU, "
               "second to ELU in the book's ranking (He init; the book uses α = 0.2).")
    hyperparameters = {
        "alpha": Hyperparameter("α", "α: the slope for z < 0; a small leak keeps units from dying "
                                     "(the book uses 0.2).", "0 < α ≤ 1", "α"),
    }

    def __init__(self, alpha: float = 0.2) -> None:
        # α > 1 would make the negative side steeper than the positive one: no longer a "leak".
        self.alpha = positive("alpha", alpha, high=1.0)

    def forward(self, z: np.ndarray) -> np.ndarray:
        """LeakyReLU_α(z) = max(αz, z)  (z for z > 0, αz otherwise; α ≤ 1)."""
        return np.maximum(z, self.alpha * z)

    def backward(self, z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
        """LeakyReLU_α'(z) = 1 if z > 0 else α."""
        positive = z > 0
        slope = np.full(z.shape, self.alpha, dtype=grad_a.dtype)
        slope *= ~positive
        slope += positive  # masks as 0/1 factors: several times faster than np.where here
        return grad_a * slope


@ACTIVATIONS.register("elu")
class ELU(Activation):
    summary = ("ELU (Eq. 11-2): smooth, negative outputs down to −α keep the mean near 0 and never die; "
               "first in the book's ranking (He init), a little slower to compute.")
    hyperparameters = {
        "alpha": Hyperparameter("α", "α: the level negative outputs approach, −α; 1 is the usual value.",
                                "α > 0", "α"),
    }

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = positive("alpha", alpha)

    def forward(self, z: np.ndarray) -> np.ndarray:
        """ELU_α(z) = α(e^z − 1) if z < 0, z if z ≥ 0  (Eq. 11-2).

        Written as max(z, 0) + α·expm1(min(z, 0)): each term vanishes on the other side, so no
        branch is needed; ``expm1`` is exact near 0 where e^z − 1 cancels, and ``min(z, 0)``
        keeps the exponential from overflowing for large positive z. With the usual α = 1 the
        product is skipped (the same numbers: multiplying by 1 is exact), a sixth of the 30 µs a
        32 × 100 layer takes; ``expm1`` itself is most of the rest (NumPy has no vector loop for it).
        """
        negative = np.expm1(np.minimum(z, 0))
        if self.alpha != 1.0:
            negative *= self.alpha
        negative += np.maximum(z, 0)
        return negative

    def backward(self, z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
        """ELU_α'(z) = 1 if z > 0, α e^z = a + α otherwise (reusing a: no second exponential)."""
        positive = z > 0
        slope = np.minimum(a, 0)
        slope += self.alpha
        slope *= ~positive
        slope += positive  # masks as 0/1 factors: several times faster than np.where here
        return grad_a * slope


@ACTIVATIONS.register("selu")
class SELU(Activation):
    summary = ("SELU: a scaled ELU whose layers self-normalize (mean 0, std 1) if LeCun normal init, a "
               "plain stack of dense layers and standardized inputs; then it beats the others.")

    # Klambauer et al. (2017) derive these so that mean 0 / variance 1 is a fixed point; they
    # are constants, not hyperparameters (any other value breaks self-normalization).
    ALPHA: ClassVar[float] = 1.6732632423543772848170429916717
    SCALE: ClassVar[float] = 1.0507009873554804934193349852946

    def forward(self, z: np.ndarray) -> np.ndarray:
        """SELU(z) = λ · ELU_α(z) = λz if z > 0, λα(e^z − 1) otherwise (λ ≈ 1.0507, α ≈ 1.6733)."""
        out = np.maximum(z, 0) + self.ALPHA * np.expm1(np.minimum(z, 0))
        out *= self.SCALE
        return out

    def backward(self, z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
        """SELU'(z) = λ if z > 0, λα e^z = a + λα otherwise."""
        # λ · ELU_α'(z), with ELU_α'(z) = a/λ + α on the negative side (masks as 0/1 factors).
        positive = z > 0
        slope = np.minimum(a, 0)
        slope += self.SCALE * self.ALPHA  # exactly 0 where a = −λα (e^z underflowed)
        slope *= 1.0 / self.SCALE
        slope *= ~positive
        slope += positive
        out = grad_a * slope
        out *= self.SCALE
        return out


# Beyond |z| = 25 the GELU's gate σ(2u) is exactly 0 or 1 even in float64 (2u > 1100, and
# e^(−1100) underflows to 0), while the cube in u would overflow float32 for |z| > 7e12.
_GELU_CLIP = 25.0
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


@ACTIVATIONS.register("gelu")
class GELU(Activation):
    summary = ("GELU z·Φ(z) (tanh approximation): a smooth ReLU variant (3rd edition) that often does "
               "better on complex tasks, at some compute cost; He init.")

    def forward(self, z: np.ndarray) -> np.ndarray:
        """GELU(z) ≈ ½ z [1 + tanh(u)],  u = √(2/π) (z + 0.044715 z³).

        The exact GELU is z·Φ(z) = ½ z [1 + erf(z/√2)]; NumPy has no vectorized erf (only
        ``math.erf``, one Python float at a time), so this is Hendrycks & Gimpel's tanh
        approximation (also Keras's ``approximate=True``), within 5e-4 of the exact value.
        It is evaluated as z·σ(2u), the same number since ½(1 + tanh u) = σ(2u), because
        1 + tanh(u) cancels catastrophically for negative z while the stable σ does not.
        """
        zc = np.clip(z, -_GELU_CLIP, _GELU_CLIP)
        return z * sigmoid(2 * self._u(zc))

    def backward(self, z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
        """GELU'(z) = s + z · 2s(1 − s) · u'(z),  s = σ(2u),  u'(z) = √(2/π) (1 + 3·0.044715 z²).

        Outside ±25, s(1 − s) is exactly 0, so the clipped z gives the exact limits 0 and 1
        without ever forming an overflowing z².
        """
        zc = np.clip(z, -_GELU_CLIP, _GELU_CLIP)
        s = sigmoid(2 * self._u(zc))
        du = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * zc * zc)
        return grad_a * (s + zc * 2 * s * (1 - s) * du)

    @staticmethod
    def _u(z: np.ndarray) -> np.ndarray:
        """u = √(2/π) (z + 0.044715 z³)."""
        return _SQRT_2_OVER_PI * (z + 0.044715 * z * z * z)


@ACTIVATIONS.register("swish")
class Swish(Activation):
    summary = ("Swish z·σ(z) (SiLU): a smooth, non-monotonic ReLU variant (3rd edition) that often does "
               "better on complex tasks, at some compute cost; He init.")

    def forward(self, z: np.ndarray) -> np.ndarray:
        """Swish(z) = z σ(z)  (Swish_β with β = 1, also called SiLU)."""
        return z * sigmoid(z)

    def backward(self, z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
        """Swish'(z) = σ(z) + z σ(z)(1 − σ(z)).

        Not the shorter a + σ(1 − a): for huge z that subtracts two huge numbers and loses the 1.
        """
        s = sigmoid(z)
        return grad_a * (s + z * s * (1 - s))


@ACTIVATIONS.register("softplus")
class Softplus(Activation):
    nonnegative = True
    summary = ("softplus log(1 + e^z): a smooth ReLU, always positive; rarely used in hidden layers "
               "(slow, outputs never centred), handy where an output must be positive.")

    def forward(self, z: np.ndarray) -> np.ndarray:
        """softplus(z) = log(1 + e^z) = max(z, 0) + log(1 + e^(−|z|))  (no overflow for large z)."""
        return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))

    def backward(self, z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
        """softplus'(z) = σ(z)."""
        return grad_a * sigmoid(z)


@ACTIVATIONS.register("linear")
class Linear(Activation):
    summary = ("Linear (identity): no non-linearity, so a stack of such layers is one linear map; for "
               "regression outputs, or to see why hidden layers need an activation.")

    def forward(self, z: np.ndarray) -> np.ndarray:
        """linear(z) = z  (a copy, so callers may modify the output in place as with every other f)."""
        return z.copy()

    def backward(self, z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
        """linear'(z) = 1  (a copy of ∂L/∂a, for the same reason)."""
        return grad_a.copy()
