"""Weight initialization (chapter 11, "Glorot and He Initialization").

For the signal to flow well in both directions, each layer's outputs should have the
variance of its inputs, and the gradients the same variance before and after the layer.
Glorot and Bengio's compromise is a weight variance of 1/fan_avg (Eq. 11-1); He (ReLU
family) and LeCun (SELU) change only the variance (Table 11-1):

=============  =================================  =========
initializer    activation functions               σ²
=============  =================================  =========
Glorot         none, tanh, logistic, softmax      1/fan_avg
He             ReLU and its variants              2/fan_in
LeCun          SELU                               1/fan_in
=============  =================================  =========

with fan_avg = (fan_in + fan_out)/2. A normal variant draws W ~ N(0, σ²); a uniform variant
draws W ~ U(−r, r) with r = √(3σ²), since U(−r, r) has variance r²/3.

Kernels have the Keras shape ``(fan_in, fan_out)``. Weights are drawn directly in the
requested dtype (``Generator.standard_normal`` and ``Generator.random`` take one), so a
float32 kernel never passes through a float64 temporary. The random generator is always
passed in; the global ``np.random`` state is never touched.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from typing import Any, ClassVar, cast

import numpy as np
import numpy.typing as npt

from .component import Component, Hyperparameter
from .registry import Registry
from .validation import number, positive

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Initializer(Component):
    """Draws a Dense kernel of shape ``(fan_in, fan_out)``."""

    family: ClassVar[str] = "initializer"
    #: One line for the GUI tooltip: the variance rule and which activations it suits.
    summary: ClassVar[str] = ""

    def __call__(self, shape: tuple[int, int], rng: np.random.Generator,
                 dtype: npt.DTypeLike = np.float32) -> np.ndarray:
        raise NotImplementedError

    def variance(self, fan_in: int, fan_out: int) -> float:
        """The target variance σ² of the weights of a ``(fan_in, fan_out)`` kernel."""
        raise NotImplementedError


INITIALIZERS: Registry[type[Initializer]] = Registry("initializer")


def get_initializer(spec: str | Mapping[str, Any]) -> Initializer:
    """Build an initializer from the spec's ``init``: ``"he_normal"`` or
    ``{"name": "random_normal", "stddev": 1.0}``.

    An unknown name raises ``KeyError`` listing the registered ones; an unknown or bad
    parameter raises ``ValueError`` naming it.
    """
    if isinstance(spec, str):
        return cast(Initializer, INITIALIZERS.get(spec).from_config({}))
    if isinstance(spec, Mapping):
        if "name" not in spec:
            raise ValueError(f"name: must be one of {', '.join(INITIALIZERS.names())}, "
                             f"got an object without a name: {dict(spec)!r}")
        return cast(Initializer, INITIALIZERS.get(spec["name"]).from_config(spec))
    raise ValueError(f"must be an initializer name such as 'he_normal' or an object such as "
                     f"{{'name': 'random_normal', 'stddev': 1.0}}, got {spec!r}")


def _fans(shape: tuple[int, int]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a kernel shape, refusing anything but two positive sizes."""
    try:
        fan_in, fan_out = (operator.index(n) for n in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape: must be (fan_in, fan_out), got {shape!r}") from None
    if fan_in < 1 or fan_out < 1:
        raise ValueError(f"shape: must be two positive sizes (fan_in, fan_out), got {shape!r}")
    return fan_in, fan_out


def _float_dtype(dtype: npt.DTypeLike) -> np.dtype:
    # The Generator can draw only these two directly; anything else would need a cast.
    dt = np.dtype(dtype)
    if dt not in _FLOAT_DTYPES:
        raise ValueError(f"dtype: must be float32 or float64, got {dt}")
    return dt


def _normal(shape: tuple[int, int], rng: np.random.Generator, dtype: npt.DTypeLike,
            mean: float, stddev: float) -> np.ndarray:
    """W ~ N(mean, stddev²) = mean + stddev · N(0, 1), scaled in place."""
    w = rng.standard_normal(_fans(shape), dtype=_float_dtype(dtype))
    w *= stddev
    w += mean
    return w


def _uniform(shape: tuple[int, int], rng: np.random.Generator, dtype: npt.DTypeLike,
             low: float, high: float) -> np.ndarray:
    """W ~ U(low, high) = low + (high − low) · U(0, 1), scaled in place."""
    w = rng.random(_fans(shape), dtype=_float_dtype(dtype))
    w *= high - low
    w += low
    return w


@INITIALIZERS.register("zeros")
class Zeros(Initializer):
    summary = ("Zeros: every weight 0, so all units of a layer stay identical forever (symmetry is "
               "never broken); right for biases, never for kernels.")

    def __call__(self, shape: tuple[int, int], rng: np.random.Generator,
                 dtype: npt.DTypeLike = np.float32) -> np.ndarray:
        """W = 0."""
        return np.zeros(_fans(shape), dtype=_float_dtype(dtype))

    def variance(self, fan_in: int, fan_out: int) -> float:
        """σ² = 0."""
        return 0.0


@INITIALIZERS.register("random_normal")
class RandomNormal(Initializer):
    summary = ("Random normal N(mean, stddev²), default N(0, 1): the naive init of early deep nets, blind "
               "to fan-in, so signals explode or vanish layer by layer (Keras's own default is 0.05).")
    hyperparameters = {
        "mean": Hyperparameter("mean", "Mean of the random weights.", "any finite number"),
        "stddev": Hyperparameter("std. dev.", "Standard deviation of the weights; 1.0 is the naive N(0, 1), "
                                              "blind to fan-in.", "σ > 0", "σ"),
    }

    # stddev 1.0, not Keras's 0.05: the app demonstrates the naive N(0, 1) that made deep
    # networks hard to train before Glorot and Bengio (2010).
    def __init__(self, mean: float = 0.0, stddev: float = 1.0) -> None:
        self.mean = number("mean", mean)
        self.stddev = positive("stddev", stddev)

    def __call__(self, shape: tuple[int, int], rng: np.random.Generator,
                 dtype: npt.DTypeLike = np.float32) -> np.ndarray:
        """W ~ N(mean, stddev²)."""
        return _normal(shape, rng, dtype, self.mean, self.stddev)

    def variance(self, fan_in: int, fan_out: int) -> float:
        """σ² = stddev², whatever the fans."""
        return self.stddev**2


@INITIALIZERS.register("random_uniform")
class RandomUniform(Initializer):
    summary = ("Random uniform U(minval, maxval), default ±0.05: a fixed small scale blind to fan-in, so "
               "signals shrink layer by layer in deep stacks.")
    hyperparameters = {
        "minval": Hyperparameter("min", "Lower end of the uniform range.", "any finite number below maxval"),
        "maxval": Hyperparameter("max", "Upper end of the uniform range.", "any finite number above minval"),
    }

    def __init__(self, minval: float = -0.05, maxval: float = 0.05) -> None:
        self.minval = number("minval", minval)
        self.maxval = number("maxval", maxval)
        if self.maxval <= self.minval:
            raise ValueError(f"maxval: must be greater than minval ({self.minval:g}), got {maxval!r}")

    def __call__(self, shape: tuple[int, int], rng: np.random.Generator,
                 dtype: npt.DTypeLike = np.float32) -> np.ndarray:
        """W ~ U(minval, maxval)."""
        return _uniform(shape, rng, dtype, self.minval, self.maxval)

    def variance(self, fan_in: int, fan_out: int) -> float:
        """σ² = (maxval − minval)² / 12, the variance of a uniform distribution."""
        return (self.maxval - self.minval) ** 2 / 12.0


class VarianceScaling(Initializer):
    """Zero-mean weights whose variance σ² depends on the fans (Eq. 11-1, Table 11-1).

    Subclasses give the rule (``variance``) and the ``distribution``. The normal variants draw
    a plain, untruncated N(0, σ²), so the weights have exactly the variance of Table 11-1
    (Keras truncates at 2σ and rescales to compensate; the plain normal keeps the equation
    and the tooltip literally true).
    """

    distribution: ClassVar[str] = "normal"

    def __call__(self, shape: tuple[int, int], rng: np.random.Generator,
                 dtype: npt.DTypeLike = np.float32) -> np.ndarray:
        """W ~ N(0, σ²), or W ~ U(−r, r) with r = √(3σ²)."""
        fan_in, fan_out = _fans(shape)
        sigma2 = self.variance(fan_in, fan_out)
        if self.distribution == "normal":
            return _normal(shape, rng, dtype, 0.0, math.sqrt(sigma2))
        r = math.sqrt(3.0 * sigma2)
        return _uniform(shape, rng, dtype, -r, r)


class _Glorot(VarianceScaling):
    def variance(self, fan_in: int, fan_out: int) -> float:
        """σ² = 1 / fan_avg,  fan_avg = (fan_in + fan_out) / 2  (Eq. 11-1)."""
        return 1.0 / ((fan_in + fan_out) / 2.0)


class _He(VarianceScaling):
    def variance(self, fan_in: int, fan_out: int) -> float:
        """σ² = 2 / fan_in: ReLU zeroes half its inputs, so twice Glorot's variance (Table 11-1)."""
        return 2.0 / fan_in


class _LeCun(VarianceScaling):
    def variance(self, fan_in: int, fan_out: int) -> float:
        """σ² = 1 / fan_in  (Table 11-1)."""
        return 1.0 / fan_in


@INITIALIZERS.register("glorot_normal")
class GlorotNormal(_Glorot):
    distribution = "normal"
    summary = ("Glorot (Xavier) normal: variance 1/fan_avg, for no activation, tanh, logistic, softmax "
               "(Eq. 11-1).")


@INITIALIZERS.register("glorot_uniform")
class GlorotUniform(_Glorot):
    distribution = "uniform"
    summary = ("Glorot (Xavier) uniform: U(−r, r), r = √(3/fan_avg); Keras's default, for no activation, "
               "tanh, logistic, softmax (Eq. 11-1).")


@INITIALIZERS.register("he_normal")
class HeNormal(_He):
    distribution = "normal"
    summary = "He normal: variance 2/fan_in, for ReLU and its variants (Table 11-1); the book's default."


@INITIALIZERS.register("he_uniform")
class HeUniform(_He):
    distribution = "uniform"
    summary = "He uniform: U(−r, r), r = √(6/fan_in), for ReLU and its variants (Table 11-1)."


@INITIALIZERS.register("lecun_normal")
class LeCunNormal(_LeCun):
    distribution = "normal"
    summary = "LeCun normal: variance 1/fan_in, what SELU needs to self-normalize (Table 11-1)."


@INITIALIZERS.register("lecun_uniform")
class LeCunUniform(_LeCun):
    distribution = "uniform"
    summary = "LeCun uniform: U(−r, r), r = √(3/fan_in), for SELU (Table 11-1)."
