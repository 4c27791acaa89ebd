"""Regularization and the remedies for unstable gradients (chapter 11, "Avoiding Overfitting
Through Regularization" and "Gradient Clipping").

ℓ1/ℓ2 act on kernels only (Keras's ``kernel_regularizer``); max-norm constrains each
unit's incoming weights after every step; clipping acts on the gradients before the
optimizer sees them; early stopping watches a validation metric; augmentation makes new
training examples from old ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


def weight_penalty(kernels: Mapping[str, np.ndarray], l1: float, l2: float) -> float:
    """The cost added to the data loss: ``l1·Σ|W| + l2·ΣW²`` over kernels only."""
    total = 0.0
    for w in kernels.values():
        flat = w.ravel()
        if l1:
            total += l1 * float(np.abs(flat).sum())
        if l2:
            total += l2 * float(np.dot(flat, flat))
    return total


def add_weight_penalty_gradient(kernels: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray],
                                l1: float, l2: float) -> None:
    """In place: ``∂/∂W (l1·Σ|W| + l2·ΣW²) = l1·sign(W) + 2·l2·W`` added to each kernel gradient."""
    for key, w in kernels.items():
        g = grads[key]
        if l1:
            g += w.dtype.type(l1) * np.sign(w)
        if l2:
            g += w.dtype.type(2.0 * l2) * w


def apply_max_norm(kernels: Mapping[str, np.ndarray], max_norm: float) -> None:
    """In place: rescale each unit's incoming weights w so that ‖w‖₂ ≤ r (the book's max-norm,
    applied after each training step: ``w ← w·r/‖w‖₂`` when ‖w‖₂ > r)."""
    for w in kernels.values():
        norms = np.sqrt(np.einsum("ij,ij->j", w, w, dtype=np.float64))  # one norm per output unit (column)
        scale = np.minimum(1.0, max_norm / np.maximum(norms, 1e-12)).astype(w.dtype, copy=False)
        w *= scale


def _norm(a: np.ndarray) -> float:
    """‖a‖₂ summed in float64: an exploding float32 gradient (entries ~1e20) is still finite,
    but its squared norm is not, and clipping exists for exactly that case."""
    flat = a.ravel().astype(np.float64, copy=False)
    return math.sqrt(float(np.dot(flat, flat)))


def clip_by_value(grads: Mapping[str, np.ndarray], threshold: float) -> None:
    """In place: every gradient component into [−t, t] (Keras ``clipvalue``); may change the
    gradient's direction."""
    for g in grads.values():
        np.clip(g, -threshold, threshold, out=g)


def clip_by_norm(grads: Mapping[str, np.ndarray], threshold: float) -> None:
    """In place, per tensor: ``g ← g·t/‖g‖₂`` when ‖g‖₂ > t (Keras ``clipnorm``); keeps direction."""
    for g in grads.values():
        norm = _norm(g)
        if norm > threshold:
            g *= g.dtype.type(threshold / norm)


def clip_by_global_norm(grads: Mapping[str, np.ndarray], threshold: float) -> float:
    """In place, all tensors together: ``g ← g·t/max(‖G‖₂, t)`` with ‖G‖₂ the norm of all
    gradients concatenated (Keras ``global_clipnorm``). Returns ‖G‖₂ before clipping."""
    total = math.sqrt(sum(_norm(g) ** 2 for g in grads.values()))
    if total > threshold:
        for g in grads.values():
            g *= g.dtype.type(threshold / total)
    return total


def clip_gradients(grads: Mapping[str, np.ndarray], mode: str, threshold: float) -> None:
    """Dispatch on the spec's ``regularization.gradient_clip.mode``."""
    if mode == "value":
        clip_by_value(grads, threshold)
    elif mode == "norm":
        clip_by_norm(grads, threshold)
    elif mode == "global_norm":
        clip_by_global_norm(grads, threshold)
    elif mode != "none":
        raise ValueError(f"gradient_clip.mode: must be none, value, norm or global_norm, got {mode!r}")


def is_better(monitor: str, value: float, best: float, min_delta: float) -> bool:
    """Losses improve downwards, accuracies upwards, by more than ``min_delta``."""
    if not math.isfinite(value):
        return False
    if "accuracy" in monitor:
        return value > best + min_delta
    return value < best - min_delta


@dataclass
class EarlyStopping:
    """Stop when the monitored metric has not improved by ``min_delta`` for ``patience``
    epochs; the trainer keeps the best weights to restore them ("early stopping is a
    beautiful free lunch" — Hinton, quoted in the book)."""

    monitor: str = "val_loss"
    patience: int = 10
    min_delta: float = 0.0
    best: float = math.nan
    best_epoch: int = -1
    wait: int = 0
    stopped_epoch: int = -1

    def update(self, epoch: int, logs: Mapping[str, float]) -> tuple[bool, bool]:
        """Feed one epoch's metrics; returns ``(improved, should_stop)``."""
        value = float(logs.get(self.monitor, math.nan))
        if math.isnan(self.best) and math.isfinite(value) or is_better(self.monitor, value, self.best,
                                                                        self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            return True, False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            return False, True
        return False, False

    def state_dict(self) -> dict[str, Any]:
        return {"best": None if math.isnan(self.best) else self.best, "best_epoch": self.best_epoch,
                "wait": self.wait, "stopped_epoch": self.stopped_epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        best = state["best"]
        self.best = math.nan if best is None else float(best)
        self.best_epoch = int(state["best_epoch"])
        self.wait = int(state["wait"])
        self.stopped_epoch = int(state["stopped_epoch"])


# ----------------------------------------------------------------------------- data augmentation


def shift_images(X: np.ndarray, image_shape: tuple[int, int], max_shift: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Shift each image by a random whole number of pixels in [−k, k] along both axes, filling
    with zeros — the book's "shift, rotate, resize" augmentation for images, vectorized as one
    gather from a zero-padded copy (no loop over samples)."""
    n = X.shape[0]
    h, w = image_shape
    k = int(max_shift)
    images = X.reshape(n, h, w)
    padded = np.zeros((n, h + 2 * k, w + 2 * k), dtype=X.dtype)
    padded[:, k:k + h, k:k + w] = images
    dy = rng.integers(-k, k + 1, size=n)
    dx = rng.integers(-k, k + 1, size=n)
    rows = (np.arange(h)[None, :] + k - dy[:, None])[:, :, None]
    cols = (np.arange(w)[None, :] + k - dx[:, None])[:, None, :]
    out = padded[np.arange(n)[:, None, None], rows, cols]
    return out.reshape(n, h * w)


def add_gaussian_noise(X: np.ndarray, stddev: float, rng: np.random.Generator) -> np.ndarray:
    """Tabular augmentation: ``x + ε`` with ε ~ N(0, σ²) per feature (features are
    standardized, so σ is in units of each feature's spread)."""
    noise = rng.standard_normal(X.shape, dtype=X.dtype if X.dtype in (np.float32, np.float64) else np.float64)
    noise *= X.dtype.type(stddev)
    return X + noise
