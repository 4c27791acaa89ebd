"""Loss functions, each fused with the output activation the task calls for.

The output layer produces *logits* z (its weighted sums, before any activation). Each loss
applies its output activation itself and returns ∂L/∂z directly: fusing softmax with
cross-entropy (or the sigmoid with binary cross-entropy) turns the gradient into the
simple, stable ``(ŷ − y)/n`` and never divides by a probability that may round to 0.

The loss is the mean over the batch (Keras's convention), returned as a Python float; the
gradient has the logits' shape and dtype. Every loss is finite, and raises no overflow
warning, for logits as large as ±1000 in float32.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .activations import sigmoid
from .component import Component
from .layers import ones_vector
from .registry import Registry


class Loss(Component):
    """A batch-mean loss of logits ``z`` against targets ``y``."""

    family: ClassVar[str] = "loss"
    #: The activation applied to the logits: "softmax", "sigmoid" or "linear".
    output_activation: ClassVar[str] = "linear"
    #: One line for the GUI tooltip: which task the loss is for.
    summary: ClassVar[str] = ""

    def value(self, logits: np.ndarray, y: np.ndarray) -> float:
        """The batch-mean loss L."""
        raise NotImplementedError

    def gradient(self, logits: np.ndarray, y: np.ndarray) -> np.ndarray:
        """∂L/∂logits, through the output activation."""
        raise NotImplementedError

    def value_and_gradient(self, logits: np.ndarray, y: np.ndarray,
                           checked: bool = False) -> tuple[float, np.ndarray]:
        """``(L, ∂L/∂logits)``; the shared work is the output layer's only, cheap next to the network.

        ``checked``: ``y`` comes from targets ``check_targets`` accepted (the trainer checks its
        training set once, then every batch of it skips the per-call check)."""
        return self.value(logits, y), self.gradient(logits, y)

    def check_targets(self, y: np.ndarray, outputs: int) -> None:
        """Raise ``ValueError`` unless ``y`` are targets this loss accepts for logits of ``outputs``
        columns. Here nothing: a loss whose per-call check is costly overrides it."""

    def predict(self, logits: np.ndarray) -> np.ndarray:
        """The output activation applied to the logits (probabilities, or the values for regression)."""
        raise NotImplementedError


LOSSES: Registry[type[Loss]] = Registry("loss")


def log_softmax(z: np.ndarray) -> np.ndarray:
    """log p̂_k = z_k − log Σ_j e^(z_j), row by row, by the log-sum-exp trick.

    Subtracting m = max_j z_j first changes nothing mathematically but keeps every exponent
    ≤ 0, so nothing overflows, and log Σ_j e^(z_j − m) ≥ 0 never takes the log of 0.
    """
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def row_max(z: np.ndarray) -> np.ndarray:
    """max_j z_ij for each row i of a 2-D array, shape (n,).

    NumPy's ``z.max(axis=1)`` spends its time per row, the element-wise maximum of the k
    columns per column: with 10 classes the second took 5.2 µs against 6.7 at 128 rows and
    7.7 against 23.3 at 512, but 4.9 against 2.5 at 32 rows. So the columns from 8 rows a
    column on, when there are at most 32 of them."""
    rows, columns = z.shape
    if columns > 32 or rows < 8 * columns:
        return z.max(axis=1)
    columns = iter(z.T)
    out = next(columns).copy()
    for column in columns:
        np.maximum(out, column, out=out)
    return out


def softmax(z: np.ndarray) -> np.ndarray:
    """p̂_k = e^(z_k) / Σ_j e^(z_j), row by row (shifted by the row maximum, as in ``log_softmax``)."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)
    return e


def _check_logits(logits: np.ndarray, columns: int | None = None) -> tuple[int, int]:
    expected = "(n, 1)" if columns == 1 else "(n, k)"
    if logits.ndim != 2 or (columns is not None and logits.shape[1] != columns):
        raise ValueError(f"logits: must have shape {expected}, got {logits.shape}")
    n, k = logits.shape
    if n == 0 or k == 0:
        raise ValueError(f"logits: must hold at least one sample and one output, got shape {logits.shape}")
    return n, k


def _class_labels(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Integer labels in [0, k) of shape (n,), for logits of shape (n, k)."""
    n, k = _check_logits(logits)
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"y: must be {n} integer class labels of shape ({n},), got shape {y.shape}")
    _check_label_values(y, k)
    return y


def _check_label_values(y: np.ndarray, k: int) -> None:
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y: must hold integer class labels, got dtype {y.dtype}")
    if y.min() < 0 or y.max() >= k:
        raise ValueError(f"y: class labels must be in 0..{k - 1}, got {y.min()}..{y.max()}")


def _targets(logits: np.ndarray, y: np.ndarray, what: str) -> np.ndarray:
    """Float targets shaped like the logits, (n,) accepted for one output, in the logits' dtype."""
    n, k = logits.shape
    y = np.asarray(y)
    if y.shape != (n, k) and not (k == 1 and y.shape == (n,)):
        allowed = f"({n}, 1) or ({n},)" if k == 1 else f"({n}, {k})"
        raise ValueError(f"y: {what} must have shape {allowed}, got {y.shape}")
    # Cast, so float64 targets never upcast float32 logits and their gradient.
    return y.reshape(n, k).astype(logits.dtype, copy=False)


@LOSSES.register("softmax_cross_entropy")
class SoftmaxCrossEntropy(Loss):
    output_activation = "softmax"
    summary = ("Softmax + cross-entropy: for classification into k exclusive classes (integer labels); "
               "outputs class probabilities.")

    def value(self, logits: np.ndarray, y: np.ndarray) -> float:
        """L = −(1/n) Σ_i log p̂_(i, y_i): the cross-entropy with one-hot targets, p̂ = softmax(z).

        With m_i = max_j z_ij, log p̂_(i, y_i) = (z_(i, y_i) − m_i) − log Σ_j e^(z_ij − m_i)
        (the log-sum-exp trick of ``log_softmax``)."""
        return self._value_and_exponentials(logits, y)[0]

    def gradient(self, logits: np.ndarray, y: np.ndarray) -> np.ndarray:
        """∂L/∂z_ik = (p̂_ik − y_ik) / n, with y_ik = 1 if k = y_i else 0 (one-hot)."""
        return self.value_and_gradient(logits, y)[1]

    def check_targets(self, y: np.ndarray, outputs: int) -> None:
        """Integer class labels of shape (n,), each in 0..outputs − 1."""
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"y: must be integer class labels of shape (n,), got shape {y.shape}")
        if y.size:
            _check_label_values(y, outputs)

    def value_and_gradient(self, logits: np.ndarray, y: np.ndarray,
                           checked: bool = False) -> tuple[float, np.ndarray]:
        """``value`` and ``gradient`` from one shift, one exponential and one row sum.

        The training loop calls this every step, so the small reductions are BLAS products
        and the divisions by Σ_j e^(z_ij − m_i) and by n are one scaling; with ``checked`` the
        labels' type and range are not checked again (a tenth of a wide network's loss at
        batch 32: two reductions and a dtype test)."""
        loss, grad, total, y = self._value_and_exponentials(logits, y, checked)
        n = len(y)
        total *= n
        grad /= total[:, None]                                      # p̂ / n
        grad[np.arange(n), y] -= grad.dtype.type(1.0 / n)           # (p̂ − y) / n
        return loss, grad

    @staticmethod
    def _value_and_exponentials(logits: np.ndarray, y: np.ndarray,
                                checked: bool = False) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        """(L, e^(z − m), Σ_j e^(z_ij − m_i), the checked labels): what ``value`` needs, and
        what ``value_and_gradient`` goes on from (so both give the same L bit for bit)."""
        if not (checked and logits.ndim == 2 and y.shape == logits.shape[:1]):
            y = _class_labels(logits, y)
        n, k = logits.shape
        shifted = logits - row_max(logits)[:, None]
        exponentials = np.exp(shifted)
        total = exponentials @ ones_vector(k, exponentials.dtype)   # Σ_j e^(z_ij − m_i)
        loss = (float(np.log(total).sum()) - float(shifted[np.arange(n), y].sum())) / n
        return loss, exponentials, total, y

    def predict(self, logits: np.ndarray) -> np.ndarray:
        """p̂ = softmax(z), shape (n, k), rows summing to 1."""
        _check_logits(logits)
        return softmax(logits)


@LOSSES.register("sigmoid_binary_cross_entropy")
class SigmoidBinaryCrossEntropy(Loss):
    output_activation = "sigmoid"
    summary = ("Sigmoid + binary cross-entropy: for two classes (labels 0 and 1); outputs the probability "
               "of class 1.")

    def value(self, logits: np.ndarray, y: np.ndarray) -> float:
        """L = (1/n) Σ_i [max(z_i, 0) − z_i y_i + log(1 + e^(−|z_i|))].

        This is −[y log σ(z) + (1 − y) log(1 − σ(z))] rewritten so that no exponent is
        positive and no log sees 0 (log σ(z) = −log(1 + e^(−z)), log(1 − σ(z)) = −z − log(1 + e^(−z))).
        """
        y = self._binary_targets(logits, y)
        return float(np.mean(np.maximum(logits, 0) - logits * y + np.log1p(np.exp(-np.abs(logits)))))

    def gradient(self, logits: np.ndarray, y: np.ndarray) -> np.ndarray:
        """∂L/∂z_i = (σ(z_i) − y_i) / n."""
        y = self._binary_targets(logits, y)
        grad = sigmoid(logits) - y
        grad /= logits.shape[0]
        return grad

    def predict(self, logits: np.ndarray) -> np.ndarray:
        """p̂ = σ(z), shape (n, 1): the probability of class 1."""
        _check_logits(logits, columns=1)
        return sigmoid(logits)

    @staticmethod
    def _binary_targets(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
        _check_logits(logits, columns=1)
        y = _targets(logits, y, "binary labels")
        # Soft targets in [0, 1] are valid for the formula; anything else is a label mix-up.
        if y.min() < 0 or y.max() > 1:
            raise ValueError(f"y: binary labels must be 0 or 1, got values in {y.min():g}..{y.max():g}")
        return y


@LOSSES.register("mse")
class MeanSquaredError(Loss):
    output_activation = "linear"
    summary = "Linear output + mean squared error: for regression on float targets."

    def value(self, logits: np.ndarray, y: np.ndarray) -> float:
        """L = (1/(n·k)) Σ_i Σ_j (z_ij − y_ij)²: the mean over all n·k elements, as Keras's MSE
        (mean over the outputs, then over the batch)."""
        _check_logits(logits)
        err = logits - _targets(logits, y, "regression targets")
        return float(np.mean(err * err))

    def gradient(self, logits: np.ndarray, y: np.ndarray) -> np.ndarray:
        """∂L/∂z_ij = 2 (z_ij − y_ij) / (n·k)."""
        _check_logits(logits)
        grad = logits - _targets(logits, y, "regression targets")
        grad *= 2.0 / logits.size
        return grad

    def predict(self, logits: np.ndarray) -> np.ndarray:
        """ŷ = z (a copy, so callers may modify it)."""
        _check_logits(logits)
        return logits.copy()
