"""A deep feed-forward network built from the ``model`` section of the spec.

Parameters are addressed by stable paths, the same in the optimizer state, the session's
``weights.npz`` and the diagnostics: ``layers.{i}.kernel``, ``layers.{i}.bias``,
``layers.{i}.gamma``, ``layers.{i}.beta``, ``layers.{i}.moving_mean``,
``layers.{i}.moving_variance``, ``output.kernel``, ``output.bias``.

The trainable parameters are views into one flat array (``flat_parameters``) and so are
their gradients (``flat_gradients``), in that path order, each starting on a 64-byte
boundary. The optimizer then steps the whole network in a few cache-sized blocks instead of
one set of NumPy calls per tensor: a 10-layer network with batch norm has 33 tensors, most of
them 100 values, where per-call overhead, not arithmetic, set the cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from .activations import get_activation
from .initializers import get_initializer
from .layers import ActivationStats, Dense, HiddenLayer, dropout_mask
from .losses import Loss
from .threads import SplitProducts

if TYPE_CHECKING:
    # Only the annotation: the spec sits above the engine (it names the data sources too), so the
    # engine reads a model spec's fields without importing its module.
    from core.spec import ModelSpec


def parameter_shapes(model: ModelSpec, n_inputs: int, n_outputs: int) -> dict[str, tuple[int, ...]]:
    """The shape of every array ``Network(model, n_inputs, n_outputs, ...).state()`` holds,
    from the spec alone (how a session's arrays are checked before any model exists)."""
    shapes: dict[str, tuple[int, ...]] = {}
    fan_in = int(n_inputs)
    for i, row in enumerate(model.layers):
        shapes[f"layers.{i}.kernel"] = (fan_in, row.units)
        if row.use_bias:
            shapes[f"layers.{i}.bias"] = (row.units,)
        if row.batch_norm:
            for name in ("gamma", "beta", "moving_mean", "moving_variance"):
                shapes[f"layers.{i}.{name}"] = (row.units,)
        fan_in = row.units
    shapes["output.kernel"] = (fan_in, int(n_outputs))
    shapes["output.bias"] = (int(n_outputs),)
    return shapes


BUFFER_NAMES = ("moving_mean", "moving_variance")
# Each parameter's segment of the flat arrays starts at a multiple of this many values
# (64 bytes of float32), so BLAS and the SIMD loops see aligned arrays; the gaps hold zeros,
# get zero gradients and so never move.
SEGMENT_ALIGNMENT = 16


def pack_flat(arrays: Mapping[str, np.ndarray], dtype: np.dtype) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One zeroed 1-D array holding every array of ``arrays`` in order (each on an aligned
    offset), and views of it with the original shapes, filled with the original values."""
    offsets, end = {}, 0
    for key, a in arrays.items():
        offsets[key] = end
        end += -(-a.size // SEGMENT_ALIGNMENT) * SEGMENT_ALIGNMENT
    flat = np.zeros(end, dtype=dtype)
    views = {}
    for key, a in arrays.items():
        view = flat[offsets[key]:offsets[key] + a.size].reshape(a.shape)
        view[...] = a
        views[key] = view
    return flat, views


class Network:
    """Hidden layers from the spec's rows plus an output layer chosen by the task's loss."""

    def __init__(self, model: ModelSpec, n_inputs: int, n_outputs: int, loss: Loss,
                 rng: np.random.Generator, dtype: np.dtype | type = np.float32) -> None:
        self.dtype = np.dtype(dtype)
        self.spec = model
        self.loss = loss
        self.n_inputs = int(n_inputs)
        self.n_outputs = int(n_outputs)
        self.input_dropout = float(model.input_dropout)
        self.layers: list[HiddenLayer] = []
        fan_in = self.n_inputs
        for row in model.layers:
            kernel = get_initializer(row.init)((fan_in, row.units), rng, self.dtype)
            activation = get_activation(row.activation, **row.activation_params)
            self.layers.append(HiddenLayer(kernel, activation, use_bias=row.use_bias,
                                           batch_norm=row.batch_norm, dropout=row.dropout,
                                           dropout_type=row.dropout_type))
            fan_in = row.units
        self.output = Dense(get_initializer(model.output.init)((fan_in, self.n_outputs), rng, self.dtype))
        self.output_stats: ActivationStats | None = None
        self._input_mask: np.ndarray | None = None
        self.flat_parameters, views = pack_flat(self.parameters(), self.dtype)
        self._rebind(views, gradient=False)
        self.flat_gradients, views = pack_flat(self.gradients(), self.dtype)
        self._rebind(views, gradient=True)

    def _rebind(self, arrays: Mapping[str, np.ndarray], gradient: bool) -> None:
        """Make the layers hold ``arrays`` (by path) as their parameters, or their gradients."""
        for key, array in arrays.items():
            owner_key, name = key.rsplit(".", 1)
            if owner_key == "output":
                owner: object = self.output
            else:
                layer = self.layers[int(owner_key.split(".")[1])]
                owner = layer.dense if name in ("kernel", "bias") else layer.batch_norm
            setattr(owner, f"grad_{name}" if gradient else name, array)

    # ------------------------------------------------------------------ names and arrays

    @property
    def layer_names(self) -> list[str]:
        """One name per layer with parameters, input to output (diagnostics columns)."""
        names = [f"dense_{i} ({layer.activation.name}, {layer.units})" for i, layer in enumerate(self.layers)]
        return [*names, f"output ({self.loss.output_activation}, {self.n_outputs})"]

    @property
    def layer_keys(self) -> list[str]:
        return [f"layers.{i}" for i in range(len(self.layers))] + ["output"]

    def parameters(self) -> dict[str, np.ndarray]:
        """Trainable arrays by path, input to output (the arrays themselves, not copies)."""
        out: dict[str, np.ndarray] = {}
        for i, layer in enumerate(self.layers):
            out.update({f"layers.{i}.{k}": a for k, a in layer.params.items()})
        out["output.kernel"] = self.output.kernel
        out["output.bias"] = self.output.bias  # type: ignore[assignment]
        return out

    def gradients(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for i, layer in enumerate(self.layers):
            out.update({f"layers.{i}.{k}": a for k, a in layer.grads.items()})
        out["output.kernel"] = self.output.grad_kernel
        out["output.bias"] = self.output.grad_bias  # type: ignore[assignment]
        return out

    def buffers(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for i, layer in enumerate(self.layers):
            out.update({f"layers.{i}.{k}": a for k, a in layer.buffers.items()})
        return out

    def state(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer (what ``weights.npz`` holds)."""
        return {k: a.copy() for k, a in {**self.parameters(), **self.buffers()}.items()}

    def check_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Raise ``ValueError`` unless ``arrays`` hold every path with the right shape and nothing else."""
        own = {**self.parameters(), **self.buffers()}
        missing = sorted(set(own) - set(arrays))
        extra = sorted(set(arrays) - set(own))
        if missing or extra:
            raise ValueError(f"weights do not fit the architecture: missing {missing or 'none'}, "
                             f"unexpected {extra or 'none'}")
        for key, target in own.items():
            if np.shape(arrays[key]) != target.shape:
                raise ValueError(f"weights do not fit the architecture: {key} has shape "
                                 f"{np.shape(arrays[key])}, the model needs {target.shape}")

    def load_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Copy arrays in; every path must be present with the right shape (else ``ValueError``).

        Checks everything first, so a mismatch leaves the network untouched."""
        self.check_state(arrays)
        for key, target in {**self.parameters(), **self.buffers()}.items():
            target[...] = arrays[key]

    def parameter_counts(self) -> list[int]:
        """Trainable parameters per layer, input to output."""
        counts = [sum(a.size for a in layer.params.values()) for layer in self.layers]
        return [*counts, self.output.kernel.size + self.output.bias.size]  # type: ignore[union-attr]

    # ------------------------------------------------------------------ passes

    def use_products(self, products: SplitProducts | None) -> None:
        """Split every layer's large products over threads (``None``: one thread)."""
        for dense in (*(layer.dense for layer in self.layers), self.output):
            dense.products = products

    def forward(self, X: np.ndarray, training: bool = False, rng: np.random.Generator | None = None,
                record: bool = False) -> np.ndarray:
        """Logits for a batch; ``record`` keeps per-layer activation statistics."""
        h = X
        if training and self.input_dropout > 0.0:
            assert rng is not None, "input dropout at training needs a random generator"
            self._input_mask = dropout_mask(h.shape, self.input_dropout, rng, h.dtype)
            h = h * self._input_mask
        for layer in self.layers:
            h = layer.forward(h, training, rng, record)
        logits = self.output.forward(h)
        if record:
            self.output_stats = ActivationStats(logits, None)
        return logits

    def backward(self, grad_logits: np.ndarray) -> None:
        """Fill every gradient array from ∂L/∂logits (the first layer's input gradient is skipped)."""
        g = self.output.backward(grad_logits, need_input_grad=bool(self.layers))
        for i in range(len(self.layers) - 1, -1, -1):
            g = self.layers[i].backward(g, need_input_grad=i > 0)

    def predict_logits(self, X: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Inference-mode logits, in chunks so a large set does not need one huge temporary."""
        X = np.asarray(X, dtype=self.dtype)
        parts = [self.forward(X[i:i + batch_size]) for i in range(0, len(X), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, self.n_outputs), self.dtype)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (softmax / sigmoid) or regression values."""
        return self.loss.predict(self.predict_logits(X))
