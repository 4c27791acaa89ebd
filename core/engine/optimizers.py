"""Faster optimizers (chapter 11, "Faster Optimizers"; Table 11-2).

Every optimizer turns a gradient ``g = ∇J(θ)`` into a step and adds it to the parameters
in place. Parameters, gradients and optimizer slots are plain NumPy arrays keyed by a stable
path (``"layers.0.kernel"``, ``"output.bias"``). The rules follow Keras 3 (the book's
library): same names, same defaults, same placement of ``ε``.

Why the code looks the way it does:

* Each update rule is one method, ``_compute_step``, whose docstring states the equation.
  It returns the array holding the step actually taken, ``θ_new − θ_old`` (its step buffer,
  or a slot that already equals it: momentum's m, so no copy), and ``apply`` then does
  ``θ += step``; for the paths in ``measure``,
  ``apply`` also sums ‖step‖² and ‖θ_new‖² while each block is in the cache (the trainer's
  update/weight ratio), instead of two more passes over the parameters later.
* The hot path allocates nothing after ``build()``: slots, a step buffer and (where a rule
  needs one) a scratch buffer per parameter are preallocated, and every array operation
  writes with ``out=`` or in place.
* When the parameters are views into one flat array, and so are the gradients (the
  ``Network`` arranges both), ``build`` lays the slots, step and scratch out the same way
  and ``apply`` steps the whole model as one array: a few blocks instead of one set of NumPy
  calls per tensor, which on a 10-layer network with batch norm (33 tensors, most of 100
  values) cost more than the arithmetic. Other parameters (a lab's, a frozen layer's
  subset) are stepped tensor by tensor, with the same arithmetic.
* Element-wise work over a few hundred thousand parameters is memory traffic, not
  arithmetic: a rule makes 3 (momentum) to 14 (Nadam) passes over arrays of the
  parameter's size, ``y ← y + a·x`` in one (``add_scaled``: BLAS's axpy) where NumPy
  would take two. ``apply`` feeds ``_compute_step`` blocks of rows of at most
  ``BLOCK_ELEMENTS`` values, so a very large model's block stays in cache through all of the
  rule's passes; the networks of the book's size are one block (see ``BLOCK_ELEMENTS``). A
  rule is written once, for any block.
* Hyperparameters and bias corrections are Python floats, never NumPy float64 scalars, so a
  float32 model stays float32 (one float64 scalar would upcast whole arrays).
* Each class documents itself for the GUI, the labs and the docs: ``summary`` (one line),
  ``hyperparameters`` (label, help and allowed range of each ``__init__`` argument it adds)
  and ``rating``, the book's Table 11-2 stars for convergence speed and quality.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Container, Mapping
from typing import Any, ClassVar, NamedTuple

import numpy as np

from . import validation as check
from .component import Component, Hyperparameter
from .registry import Registry

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "AdaGrad",
    "AdaMax",
    "Adam",
    "AdamW",
    "Momentum",
    "Nadam",
    "Nesterov",
    "Optimizer",
    "RMSProp",
    "Rating",
    "get_optimizer",
]

OPTIMIZERS: Registry[type[Optimizer]] = Registry("optimizer")

# Values per block of ``apply``. Blocks were meant to keep a block's parameter, gradient, step,
# slots and scratch in the L2 cache through all of a rule's passes; on the 1 MiB-L2 machine the
# targets are measured on, NumPy's per-call cost outweighs that on the reference networks, which
# fit the L3 cache whole (one thread, whole arrays against 65,536-value blocks, in a trainer:
# 266 k parameters momentum 143 → 132 µs, Adam 461 → 384 µs; b128 Adam 434 → 354; the 10×100
# network's Nadam 337 → 315), and on a 5.8 M-parameter model the two are within 3 %. So only
# models of more than a million parameters are cut, where a block of 4 MiB still fits L3.
BLOCK_ELEMENTS = 1 << 20

# BLAS's axpy, y ← y + a·x in one pass over y, by dtype: the fused multiply-add NumPy lacks (its
# a·x then + y is two passes, through a scratch array). Taken from SciPy (a dependency of
# scikit-learn's) when ``axpy_functions`` first runs, and only for a dtype where it passes
# ``computes_each_element_alone``. Empty: NumPy's two passes everywhere.
_AXPY: dict[np.dtype, Callable[..., np.ndarray]] | None = None

# An axpy is given whole multiples of this many values. A BLAS kernel runs its vector loop over
# whole groups of values and the rest (n mod its group) in a scalar loop, which may round
# otherwise: OpenBLAS's AVX2 (Haswell) saxpy makes one fused multiply-add per value in groups
# of 32 and a product and a sum in its tail, so an element's last bit depended on where it fell
# in the array, and the check turned axpy off on such machines. Fed whole blocks (the last
# values of an array padded with zeros to one block), every value takes the vector loop.
AXPY_BLOCK = 256


def aligned_zeros(n: int, dtype: np.dtype, shift: int = 0) -> np.ndarray:
    """A zeroed 1-D array of ``n`` values starting ``shift`` values past a 64-byte boundary: a
    kernel's vector loop may depend on where its array starts, so ``axpy_in_whole_blocks``
    pads on a fixed alignment and ``computes_each_element_alone`` compares two alignments."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.zeros(n + shift + 64 // itemsize, dtype)
    start = (-raw.ctypes.data % 64) // itemsize + shift
    return raw[start:start + n]


_PADDED_BLOCKS = threading.local()   # per thread: dtype → its (2, AXPY_BLOCK) buffer


def padded_block(dtype: np.dtype) -> np.ndarray:
    """This thread's (2, ``AXPY_BLOCK``) buffer of ``dtype`` on a 64-byte boundary, for the
    last values of an array (``axpy_in_whole_blocks``): made once, so the hot path allocates
    nothing (a fresh one each call cost 3 µs)."""
    blocks = _PADDED_BLOCKS.__dict__.setdefault("by_dtype", {})
    block = blocks.get(dtype)
    if block is None:
        block = blocks[dtype] = aligned_zeros(2 * AXPY_BLOCK, dtype).reshape(2, AXPY_BLOCK)
    return block


def axpy_in_whole_blocks(axpy: Callable[..., np.ndarray], x: np.ndarray, y: np.ndarray, a: float) -> bool:
    """y ← y + a·x for 1-D contiguous ``x`` and ``y`` through ``axpy``, in calls of whole
    multiples of ``AXPY_BLOCK`` values: the array's last ``n mod AXPY_BLOCK`` values go through a
    zero-padded block and are copied back. False if ``axpy`` did not update in place."""
    n = y.size
    body = n - n % AXPY_BLOCK
    if body:
        head = y[:body]
        if axpy(x[:body], head, a=a) is not head:
            return False
    if body < n:
        rest = n - body
        padded = padded_block(y.dtype)
        padded[:, rest:] = 0.0
        padded[0, :rest] = x[body:]
        padded[1, :rest] = y[body:]
        tail = padded[1]
        if axpy(padded[0], tail, a=a) is not tail:
            return False
        y[body:] = tail[:rest]
    return True


def computes_each_element_alone(axpy: Callable[..., np.ndarray], dtype: np.dtype) -> bool:
    """Whether ``axpy``, called as ``add_scaled`` calls it (``axpy_in_whole_blocks``), computes
    y + a·x in place with each element's value independent of where the element falls in the
    array: the whole array against the same values in pieces of every length from 1 to 70, and
    in pieces longer than a block at offsets that are no multiple of it (a kernel that rounded by
    position or by alignment fails). Then a block, the flat arrays and the tensor-by-tensor path
    give the same numbers bit for bit."""
    rng = np.random.default_rng(0)
    x, y = (rng.standard_normal(2_485).astype(dtype) for _ in range(2))   # pieces 1..70, once each
    a = -0.0123
    whole = aligned_zeros(y.size, dtype)              # on a 64-byte boundary ...
    whole[:] = y
    if not axpy_in_whole_blocks(axpy, x, whole, a):
        return False
    for lengths in (range(1, 71), (300, 1_001, 257, 927)):
        pieces, lo = aligned_zeros(y.size, dtype, shift=1), 0   # ... and one value past it
        pieces[:] = y
        for length in lengths:
            if not axpy_in_whole_blocks(axpy, x[lo:lo + length], pieces[lo:lo + length], a):
                return False
            lo += length
        if lo != y.size or not np.array_equal(whole, pieces):
            return False
    return True


def axpy_functions() -> dict[np.dtype, Callable[..., np.ndarray]]:
    """The axpy of each dtype that passed its check, found (and checked) once per process."""
    global _AXPY
    if _AXPY is None:
        found: dict[np.dtype, Callable[..., np.ndarray]] = {}
        try:
            from scipy.linalg import blas
        except ImportError:
            blas = None
        if blas is not None:
            for dtype, axpy in ((np.dtype(np.float32), blas.saxpy), (np.dtype(np.float64), blas.daxpy)):
                if computes_each_element_alone(axpy, dtype):
                    found[dtype] = axpy
        _AXPY = found
    return _AXPY


def add_scaled(y: np.ndarray, a: float, x: np.ndarray, scratch: np.ndarray, fused: bool = True) -> None:
    """y ← y + a·x, in place: one BLAS axpy pass (each element rounded once) where ``fused``, ``y``
    and ``x`` are contiguous arrays of a dtype that has a checked axpy, else a·x into ``scratch``
    and a second pass adding it (NumPy's, the same numbers on every machine). ``scratch`` is left
    undefined."""
    axpy = _AXPY.get(y.dtype) if fused and _AXPY is not None else None
    if axpy is not None and x.dtype == y.dtype and y.flags.c_contiguous and x.flags.c_contiguous:
        if axpy_in_whole_blocks(axpy, x.reshape(-1), y.reshape(-1), a):
            return
        raise RuntimeError("axpy did not update its array in place")   # computes_each_element_alone checks it
    np.multiply(x, a, out=scratch)
    y += scratch


def squared_sum(a: np.ndarray) -> float:
    """Σ a², summed in the order ``a`` is stored: one BLAS dot over a view of a contiguous
    array in either order. ``np.vdot`` gives the same sum but copies an array stored column by
    column first (318 µs against 11 for a 128 × 784 one), and on a contiguous one its call
    costs 3–4 µs more than ``np.dot``'s (20.6 against 16.9 µs for the 266,610 values of the
    784-300-100-10 network)."""
    flat = a.ravel(order="K")
    return float(np.dot(flat, flat))


def decay_towards(average: np.ndarray, beta: float, x: np.ndarray, scratch: np.ndarray,
                  fused: bool = True) -> None:
    """average ← β·average + (1 − β)·x: an exponentially decaying mean of x (Adam's m and v,
    RMSProp's s), in two passes where ``add_scaled`` is fused."""
    average *= beta
    add_scaled(average, 1.0 - beta, x, scratch, fused)


class Rating(NamedTuple):
    """An optimizer's row of the book's Table 11-2: convergence speed and convergence quality,
    in stars as the book prints them (``"***"``, ``"** or ***"``)."""

    speed: str
    quality: str


# Hyperparameters several optimizers share, documented once.
_MOMENTUM_HELP = Hyperparameter(
    "momentum β", "β, the momentum, sets the friction on the velocity: β = 0 is high friction (each step "
                  "forgets the last: plain SGD), β close to 1 is almost none; 0.9 (the usual value) keeps "
                  "90 % of the velocity from one step to the next.", "0 ≤ β < 1", "β")
_EPSILON_HELP = Hyperparameter("ε", "ε: smoothing term that avoids a division by zero; rarely worth changing.",
                               "ε > 0", "ε")
_ADAM_HELP = {
    "beta_1": Hyperparameter("β₁", "β₁: decay of the momentum (first-moment) estimate; 0.9 by default.",
                             "0 ≤ β₁ < 1", "β₁"),
    "beta_2": Hyperparameter("β₂", "β₂: decay of the squared-gradient (second-moment) estimate; 0.999 by "
                                   "default.", "0 ≤ β₂ < 1", "β₂"),
    "epsilon": _EPSILON_HELP,
}


def flat_layout(arrays: Mapping[str, np.ndarray]) -> tuple[np.ndarray, dict[str, int]] | None:
    """``(base, offsets)`` when every array is a C-contiguous view of the same 1-D array
    ``base`` (of the same dtype), with each one's offset into it in values; else ``None``."""
    base: np.ndarray | None = None
    offsets: dict[str, int] = {}
    for key, a in arrays.items():
        b = a.base if isinstance(a, np.ndarray) else None
        if (b is None or (base is not None and b is not base) or b.ndim != 1 or b.dtype != a.dtype
                or not b.flags.c_contiguous or not a.flags.c_contiguous):
            return None
        base = b
        offset, rest = divmod(a.__array_interface__["data"][0] - b.__array_interface__["data"][0], a.itemsize)
        if rest or offset < 0 or offset + a.size > b.size:
            return None
        offsets[key] = offset
    return None if base is None else (base, offsets)


class _FlatLayout(NamedTuple):
    """The flat arrays ``build`` lays out over parameters that are views of one array."""

    base: np.ndarray                        # the parameters' own 1-D array
    offsets: dict[str, int]                 # each parameter's first value in it
    step: np.ndarray
    slots: tuple[np.ndarray, ...]
    scratch: np.ndarray | None

    def blocks(self) -> list[tuple[slice, str | None, tuple[str, ...]]]:
        """Blocks of about ``BLOCK_ELEMENTS`` values covering the flat arrays, each either a
        piece of one large parameter (``inside``) or several whole small ones (``whole``), so
        the norms ``apply`` measures can be summed block by block while a block is in cache.
        A parameter's segment runs from the end of the previous one (0 for the first) to the
        start of the next one (the end of the array for the last)."""
        order = sorted(self.offsets, key=self.offsets.__getitem__)
        ends = [*(self.offsets[path] for path in order[1:]), self.base.size]
        starts = [0, *ends[:-1]]
        blocks: list[tuple[slice, str | None, tuple[str, ...]]] = []
        group: list[str] = []
        group_lo = 0
        for path, lo, end in zip(order, starts, ends, strict=True):
            if end - lo > BLOCK_ELEMENTS:
                if group:
                    blocks.append((slice(group_lo, lo), None, tuple(group)))
                    group = []
                n_blocks = -(-(end - lo) // BLOCK_ELEMENTS)
                cuts = [lo + (end - lo) * i // n_blocks for i in range(n_blocks + 1)]
                blocks += [(slice(a, b), path, ()) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
                continue
            if group and end - group_lo > BLOCK_ELEMENTS:
                blocks.append((slice(group_lo, lo), None, tuple(group)))
                group = []
            if not group:
                group_lo = lo
            group.append(path)
        if group:
            blocks.append((slice(group_lo, self.base.size), None, tuple(group)))
        return blocks


class Optimizer(Component):
    """Base class: slot bookkeeping, ``apply``, and exact state save/restore.

    Subclasses declare ``slot_names`` (one array per parameter each, same shape and dtype),
    implement ``_compute_step`` and list their hyperparameters as keyword arguments of
    ``__init__``. The ``learning_rate`` hyperparameter is the initial rate η0; the rate used
    by a step is passed to ``apply`` (it comes from the schedule).

    ``iterations`` counts the steps taken (0 before the first ``apply``); rules with bias
    corrections use ``t = iterations`` *after* the increment, i.e. t = 1 on the first step.
    """

    family: ClassVar[str] = "optimizer"
    summary: ClassVar[str] = ""
    #: The book's Table 11-2 ratings; None for an optimizer the table does not rate.
    rating: ClassVar[Rating | None] = None
    hyperparameters: ClassVar[Mapping[str, Hyperparameter]] = {
        "learning_rate": Hyperparameter(
            "learning rate η", "η: the step size. Too high diverges (loss goes to NaN), too low crawls; "
                               "the schedule starts from it.", "η > 0", "η"),
    }
    slot_names: ClassVar[tuple[str, ...]] = ()
    # Scalar (not per-parameter) state, saved in state_dict()["slots"] as 0-d float64 arrays
    # under a key without "/" (e.g. "u_product"); the value lives in the attribute "_<name>".
    scalar_state_names: ClassVar[tuple[str, ...]] = ()
    # Whether _compute_step needs one scratch array per parameter.
    _uses_scratch: ClassVar[bool] = True
    #: Whether the rule's y + a·x may run as one BLAS axpy (``add_scaled``). Which BLAS kernels
    #: pass the check depends on the machine, and so do the last bits of the numbers; an
    #: optimizer whose numbers must be the same everywhere (the optimizer race's measured table,
    #: on arrays of two values where a BLAS call gains nothing) turns it off.
    fused_updates: bool = True

    def __init__(self, learning_rate: float = 0.01) -> None:
        self.learning_rate = check.positive("learning_rate", learning_rate)
        self.iterations = 0
        self._steps: dict[str, np.ndarray] = {}
        self._slots: dict[str, tuple[np.ndarray, ...]] = {}
        self._scratch: dict[str, np.ndarray | None] = {}
        self._blocks: dict[str, tuple[slice, ...]] = {}
        self._part_cache: dict[str, tuple[Any, ...]] = {}
        # The flat layout (see the module docstring), when build() found one: the parameters'
        # base array, their offsets in it, and the flat step, slots and scratch laid out alike;
        # then the gradients last checked against it, with the blocks made for them.
        self._flat: _FlatLayout | None = None
        self._built_params: dict[str, np.ndarray] = {}
        self._flat_grads: tuple[dict[str, np.ndarray], list[tuple[Any, ...]] | None] = ({}, None)
        #: Whether the last ``apply`` stepped the flat arrays (else tensor by tensor).
        self.stepped_flat = False
        self.squared_norms: dict[str, tuple[float, float]] = {}

    # ------------------------------------------------------------------ slots
    def _slot_initial_value(self, slot: str) -> float:
        """The value a fresh slot array starts at (0 except AdaGrad's accumulator)."""
        return 0.0

    def build(self, params: Mapping[str, np.ndarray]) -> None:
        """Allocate the slots, step and scratch buffers for every parameter path.

        Call it with *all* trainable parameters (frozen ones too: they keep zero slots until
        they are unfrozen). Building again discards the previous slots; ``iterations`` is
        left alone.
        """
        axpy_functions()   # now, not in the first step: SciPy's import and the check take a tenth of a second
        for path, param in params.items():
            if not isinstance(param, np.ndarray) or not np.issubdtype(param.dtype, np.floating):
                raise ValueError(f"{path}: must be a floating-point NumPy array, got {type(param).__name__}"
                                 + (f" of {param.dtype}" if isinstance(param, np.ndarray) else ""))
        layout = flat_layout(params)
        if layout is not None:
            base, offsets = layout
            flat_step = np.zeros_like(base)
            flat_slots = tuple(np.full_like(base, self._slot_initial_value(name)) for name in self.slot_names)
            flat_tmp = np.zeros_like(base) if self._uses_scratch else None

            def view(flat: np.ndarray, path: str) -> np.ndarray:
                return flat[offsets[path]:offsets[path] + params[path].size].reshape(params[path].shape)

            steps = {path: view(flat_step, path) for path in params}
            slots = {path: tuple(view(f, path) for f in flat_slots) for path in params}
            scratch = {path: None if flat_tmp is None else view(flat_tmp, path) for path in params}
            self._flat = _FlatLayout(base, offsets, flat_step, flat_slots, flat_tmp)
        else:
            steps = {path: np.zeros_like(param) for path, param in params.items()}
            slots = {path: tuple(np.full_like(param, self._slot_initial_value(name)) for name in self.slot_names)
                     for path, param in params.items()}
            scratch = {path: np.zeros_like(param) if self._uses_scratch else None for path, param in params.items()}
            self._flat = None
        blocks: dict[str, tuple[slice, ...]] = {}
        for path, param in params.items():
            # Blocks are whole rows (a slice of the first axis is a view whatever the layout);
            # none when the whole array is one block.
            n_rows = len(param) if param.ndim else 1
            rows = max(1, BLOCK_ELEMENTS // max(1, param.size // max(1, n_rows)))
            blocks[path] = tuple(slice(lo, lo + rows) for lo in range(0, n_rows, rows)) if rows < n_rows else ()
        self._steps, self._slots, self._scratch, self._blocks = steps, slots, scratch, blocks
        self._part_cache = {}
        self._built_params = dict(params)
        self._flat_grads = ({}, None)

    # ------------------------------------------------------------------ step
    def _begin_apply(self) -> None:
        """Advance scalar state shared by all parameters, once per step (after the increment)."""

    def _compute_step(self, param: np.ndarray, grad: np.ndarray, step: np.ndarray,
                      slots: tuple[np.ndarray, ...], tmp: np.ndarray | None, lr: float) -> np.ndarray:
        """Update ``slots`` in place and return θ_new − θ_old: ``step`` (written here) or a slot
        that already holds it. The arrays are one block of rows of a parameter."""
        raise NotImplementedError

    def apply(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray],
              learning_rate: float, updates: Mapping[str, np.ndarray] | None = None,
              measure: Container[str] = ()) -> None:
        """One optimizer step, in place, for the parameters named in ``grads``.

        Parameters left out of ``grads`` (frozen layers) are not touched, nor are their
        slots. If ``updates`` is given (preallocated arrays with the keys of ``grads``), the
        step actually taken, θ_new − θ_old, is also copied into it. For the paths in
        ``measure``, ``squared_norms[path]`` is set to (‖θ_new − θ_old‖², ‖θ_new‖²), summed
        block by block while each block is still in the cache (the trainer's update/weight
        ratio at a fraction of a separate pass's cost).
        """
        lr = float(learning_rate)
        if not math.isfinite(lr) or lr < 0:
            raise ValueError(f"learning_rate: must be a finite non-negative number, got {learning_rate!r}")
        flat_parts = self._flat_parts(params, grads, checked_only=True) if updates is None else None
        if flat_parts is not None:
            # The very arrays build() laid out and the gradients a previous call checked and
            # cut into blocks: nothing to check again (the trainer passes them every step).
            self.iterations += 1
            self._begin_apply()
            self.stepped_flat = True
            self._apply_flat(flat_parts, params, grads, lr, None, measure)
            return
        self._check_arrays(params, grads, updates)
        self.iterations += 1
        self._begin_apply()
        self.squared_norms = {}
        flat_parts = self._flat_parts(params, grads)
        self.stepped_flat = flat_parts is not None
        if flat_parts is not None:
            self._apply_flat(flat_parts, params, grads, lr, updates, measure)
            return
        compute = self._compute_step
        for path, grad in grads.items():
            param = params[path]
            out = None if updates is None else updates[path]
            measured = path in measure
            step_sq = param_sq = 0.0
            for p, g, st, sl, tm, o in self._parts(path, param, grad, out):
                taken = compute(p, g, st, sl, tm, lr)
                p += taken
                if o is not None:
                    np.copyto(o, taken)
                if measured:
                    step_sq += squared_sum(taken)
                    param_sq += squared_sum(p)
            if measured:
                self.squared_norms[path] = (step_sq, param_sq)

    def _check_arrays(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray],
                      updates: Mapping[str, np.ndarray] | None) -> None:
        """Raise unless every path of ``grads`` has slots and every array the built shape;
        ``apply`` checks everything before changing anything, so a bad call leaves no half step."""
        for path, grad in grads.items():
            buf = self._steps.get(path)
            if buf is None:
                raise KeyError(f"{path}: the optimizer has no slots for this parameter; "
                               "call build() with every trainable parameter first")
            shape = buf.shape
            if params[path].shape != shape or grad.shape != shape:
                raise ValueError(f"{path}: parameter {params[path].shape} and gradient {grad.shape} "
                                 f"must have the shape the optimizer was built for, {shape}")
            if updates is not None and updates[path].shape != shape:
                raise ValueError(f"{path}: updates buffer has shape {updates[path].shape}, expected {shape}")

    def _flat_parts(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray],
                    checked_only: bool = False) -> list[tuple[Any, ...]] | None:
        """The blocks of the flat arrays, (θ, g, step, slots, scratch), when this step can take
        the flat path: every built parameter is stepped, they are the arrays ``build`` laid out,
        and the gradients are views of one flat array at the same offsets. Else ``None``.
        With ``checked_only``, only the blocks made by an earlier call for these very gradient
        arrays (which ``apply`` checked then), else ``None``."""
        flat = self._flat
        if flat is None or len(grads) != len(self._built_params):
            return None
        built = self._built_params
        if any(params[path] is not array for path, array in built.items()):
            return None
        cached_grads, parts = self._flat_grads
        if len(cached_grads) == len(grads) and all(cached_grads.get(k) is g for k, g in grads.items()):
            return parts
        if checked_only:
            return None
        layout = flat_layout(grads)
        parts = None
        if layout is not None and layout[0].size == flat.base.size and layout[1] == flat.offsets:
            flat_grad = layout[0]
            parts = [(flat.base[b], flat_grad[b], flat.step[b], tuple(s[b] for s in flat.slots),
                      None if flat.scratch is None else flat.scratch[b], inside, whole)
                     for b, inside, whole in flat.blocks()]
        self._flat_grads = (dict(grads), parts)
        return parts

    def _apply_flat(self, parts: list[tuple[Any, ...]], params: Mapping[str, np.ndarray],
                    grads: Mapping[str, np.ndarray], lr: float, updates: Mapping[str, np.ndarray] | None,
                    measure: Container[str]) -> None:
        """``apply`` on the flat arrays, block by block, summing the measured norms while each
        block is in cache; then the per-parameter copies into ``updates`` from views of the
        flat array that held the step taken (the step buffer, or a slot such as momentum's m)."""
        compute = self._compute_step
        taken_slot = -1  # -1: the step buffer; i: slot i

        def taken_view(path: str) -> np.ndarray:
            return self._steps[path] if taken_slot < 0 else self._slots[path][taken_slot]

        sums: dict[str, list[float]] = {}
        for k, (p, g, st, sl, tm, inside, whole) in enumerate(parts):
            taken = compute(p, g, st, sl, tm, lr)
            p += taken
            if k == 0 and taken is not st:
                taken_slot = next(i for i, s in enumerate(sl) if taken is s)
            if inside is not None:
                if inside in measure:
                    acc = sums.setdefault(inside, [0.0, 0.0])
                    acc[0] += squared_sum(taken)
                    acc[1] += squared_sum(p)
                continue
            for path in whole:
                if path in measure:
                    t, q = taken_view(path), params[path]
                    sums[path] = [squared_sum(t), squared_sum(q)]
        self.squared_norms = {path: (a, b) for path, (a, b) in sums.items()}
        if updates is not None:
            for path in grads:
                np.copyto(updates[path], taken_view(path))

    def _parts(self, path: str, param: np.ndarray, grad: np.ndarray,
               out: np.ndarray | None) -> list[tuple[Any, ...]]:
        """The blocks ``apply`` feeds ``_compute_step`` for one parameter: (θ, g, step, slots,
        scratch, updates) views of each block of rows. Made once and reused while the same
        arrays come back (the trainer passes the same ones every step): making the views
        cost more than a block's arithmetic on small layers."""
        cached = self._part_cache.get(path)
        if cached is not None and cached[0] is param and cached[1] is grad and cached[2] is out:
            return cached[3]
        step, slots, tmp = self._steps[path], self._slots[path], self._scratch[path]
        blocks = self._blocks[path]
        parts: list[tuple[Any, ...]]
        if blocks:
            parts = [(param[b], grad[b], step[b], tuple(s[b] for s in slots), None if tmp is None else tmp[b],
                      None if out is None else out[b]) for b in blocks]
        else:  # one block: the arrays themselves, no views to make
            parts = [(param, grad, step, slots, tmp, out)]
        self._part_cache[path] = (param, grad, out, parts)
        return parts

    def slot(self, path: str, name: str) -> np.ndarray:
        """Slot ``name`` (one of ``slot_names``) of parameter ``path``: the optimizer's own array,
        to read (the instruments read the second moments), never to write."""
        if path not in self._slots or name not in self.slot_names:
            raise KeyError(f"{path}/{name}: no such slot; this {self.name} optimizer keeps "
                           f"{', '.join(self.slot_names) or 'none'} for {len(self._slots)} parameters")
        return self._slots[path][self.slot_names.index(name)]

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """``{"iterations": int, "slots": {"<path>/<slot>": array, ...}}`` (copies).

        Scalar state (Nadam's ``u_product``) is stored in ``slots`` too, as a 0-d float64
        array under its bare name, so the whole state is one flat mapping of arrays (one
        ``.npz``) plus an integer.
        """
        slots: dict[str, np.ndarray] = {}
        for path, arrays in self._slots.items():
            for name, array in zip(self.slot_names, arrays, strict=True):
                slots[f"{path}/{name}"] = array.copy()
        for name in self.scalar_state_names:
            slots[name] = np.array(getattr(self, f"_{name}"), dtype=np.float64)
        return {"iterations": self.iterations, "slots": slots}

    def _expected_state(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        expected = {}
        for path, arrays in self._slots.items():
            for name, array in zip(self.slot_names, arrays, strict=True):
                expected[f"{path}/{name}"] = (array.shape, array.dtype)
        for name in self.scalar_state_names:
            expected[name] = ((), np.dtype(np.float64))
        return expected

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()`` exactly (by copy) into an optimizer built for the same
        parameters. Any missing or extra key, wrong shape or wrong dtype raises ``ValueError``
        naming it, before anything is changed."""
        iterations = self.check_state_dict(state)
        slots = state["slots"]
        for path, arrays in self._slots.items():
            for name, array in zip(self.slot_names, arrays, strict=True):
                np.copyto(array, slots[f"{path}/{name}"])
        for name in self.scalar_state_names:
            setattr(self, f"_{name}", float(slots[name]))
        self.iterations = iterations

    def check_state_dict(self, state: Mapping[str, Any]) -> int:
        """Raise ``ValueError`` unless ``state`` fits this optimizer; returns its ``iterations``."""
        if not isinstance(state, Mapping):
            raise ValueError(f"optimizer state: must be a mapping, got {type(state).__name__}")
        keys = set(state)
        if keys != {"iterations", "slots"}:
            missing = sorted({"iterations", "slots"} - keys)
            extra = sorted(keys - {"iterations", "slots"})
            raise ValueError(f"optimizer state: missing keys {missing}, unexpected keys {extra}")
        iterations = state["iterations"]
        if isinstance(iterations, np.ndarray) and iterations.ndim == 0:
            iterations = iterations.item()
        if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 0:
            raise ValueError("optimizer state: iterations must be a non-negative integer, "
                             f"got {iterations!r}")
        slots = state["slots"]
        if not isinstance(slots, Mapping):
            raise ValueError(f"optimizer state: slots must be a mapping, got {type(slots).__name__}")
        expected = self._expected_state()
        for key in expected:
            if key not in slots:
                raise ValueError(f"optimizer state: missing slot {key!r}")
        for key in slots:
            if key not in expected:
                hint = "" if self._steps else "; call build() with the parameters before load_state_dict()"
                raise ValueError(f"optimizer state: unexpected slot {key!r} for this {self.name} "
                                 f"optimizer{hint}")
        for key, (shape, dtype) in expected.items():
            value = slots[key]
            if not isinstance(value, np.ndarray):
                raise ValueError(f"optimizer state: slot {key!r} must be an array, "
                                 f"got {type(value).__name__}")
            if value.shape != shape:
                raise ValueError(f"optimizer state: slot {key!r} has shape {value.shape}, expected {shape}")
            if value.dtype != dtype:
                raise ValueError(f"optimizer state: slot {key!r} has dtype {value.dtype}, expected {dtype}")
            if value.ndim == 0 and not math.isfinite(float(value)):
                raise ValueError(f"optimizer state: slot {key!r} must be finite, got {float(value)!r}")
        return int(iterations)


# ---------------------------------------------------------------------- entries
@OPTIMIZERS.register("sgd")
class SGD(Optimizer):
    """Plain gradient descent: a fixed fraction of the gradient, every step."""

    summary = ("Plain gradient descent θ ← θ − η∇J: slow but reliable (speed *, quality ***); "
               "the baseline the others are measured against.")
    rating = Rating("*", "***")
    _uses_scratch = False

    def __init__(self, learning_rate: float = 0.01) -> None:
        super().__init__(learning_rate)

    def _compute_step(self, param: np.ndarray, grad: np.ndarray, step: np.ndarray,
                      slots: tuple[np.ndarray, ...], tmp: np.ndarray | None, lr: float) -> np.ndarray:
        """θ ← θ − η ∇J(θ)"""
        return np.multiply(grad, -lr, out=step)


@OPTIMIZERS.register("momentum")
class Momentum(Optimizer):
    """Momentum optimization (Polyak 1964; the book's Equation 11-4).

    The gradient is an acceleration, not a speed: m accumulates it and β acts as friction,
    so the terminal velocity is η∇J/(1 − β) (10× plain SGD for β = 0.9) and the
    optimizer rolls through plateaus and along elongated valleys.
    """

    summary = ("Momentum: gradients accelerate a velocity (β is friction), so it rolls through "
               "plateaus and ravines much faster than SGD (speed **, quality ***).")
    rating = Rating("**", "***")
    hyperparameters = {"momentum": _MOMENTUM_HELP}
    slot_names = ("m",)
    _uses_scratch = False

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.9) -> None:
        super().__init__(learning_rate)
        self.momentum = check.fraction("momentum", momentum)

    def _compute_step(self, param: np.ndarray, grad: np.ndarray, step: np.ndarray,
                      slots: tuple[np.ndarray, ...], tmp: np.ndarray | None, lr: float) -> np.ndarray:
        """m ← β m − η ∇J(θ)
        θ ← θ + m
        """
        (m,) = slots
        m *= self.momentum
        add_scaled(m, -lr, grad, step, self.fused_updates)  # the step buffer: scratch where axpy is not taken
        return m


@OPTIMIZERS.register("nesterov")
class Nesterov(Optimizer):
    """Nesterov accelerated gradient (Nesterov 1983; the book's Equation 11-5).

    The textbook rule measures the gradient slightly ahead, at θ + βm, where momentum is
    about to take the parameters anyway::

        m ← β m − η ∇J(θ + β m);   θ ← θ + m

    That would need a second forward/backward pass at a shifted point. Like Keras we keep
    the *look-ahead* point φ = θ + βm as the parameters instead; then the gradient the
    trainer computes at the stored parameters is exactly ∇J(θ + βm). Rewriting the rule in
    terms of φ (using θ = φ − βm and m_new = βm − ηg)::

        φ_new = θ_new + β m_new = φ − β m + m_new + β m_new = φ + β m_new − η g

    which is the update below. It is the same trajectory shifted by βm, and βm → 0 as
    training converges, so the final parameters agree.
    """

    summary = ("Nesterov momentum: the gradient is measured slightly ahead in the direction of "
               "the momentum; almost always faster than plain momentum (speed **, quality ***).")
    rating = Rating("**", "***")
    hyperparameters = {"momentum": _MOMENTUM_HELP}
    slot_names = ("m",)

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.9) -> None:
        super().__init__(learning_rate)
        self.momentum = check.fraction("momentum", momentum)

    def _compute_step(self, param: np.ndarray, grad: np.ndarray, step: np.ndarray,
                      slots: tuple[np.ndarray, ...], tmp: np.ndarray | None, lr: float) -> np.ndarray:
        """m ← β m − η ∇J(θ)
        θ ← θ + β m − η ∇J(θ)      (m already updated; θ is the look-ahead point)
        """
        (m,) = slots
        m *= self.momentum
        add_scaled(m, -lr, grad, tmp, self.fused_updates)
        np.multiply(m, self.momentum, out=step)
        add_scaled(step, -lr, grad, tmp, self.fused_updates)
        return step


@OPTIMIZERS.register("adagrad")
class AdaGrad(Optimizer):
    """AdaGrad (Duchi et al. 2011; the book's Equation 11-6): an adaptive learning rate.

    s accumulates the squared gradients, so steep dimensions get smaller steps than
    shallow ones and the step points more directly at the optimum. But s only grows: on
    neural networks the rate decays so fast that training often stops before the optimum.
    ε is inside the square root, as in Keras and the book.
    """

    summary = ("AdaGrad: scales each step down along steep dimensions; good on simple quadratics "
               "but usually stops too early on neural networks (speed ***, quality *).")
    rating = Rating("***", "*")
    hyperparameters = {
        "initial_accumulator_value": Hyperparameter(
            "initial accumulator", "Starting value of AdaGrad's sum of squared gradients.", "≥ 0"),
        "epsilon": _EPSILON_HELP,
    }
    slot_names = ("s",)

    def __init__(self, learning_rate: float = 0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7) -> None:
        super().__init__(learning_rate)
        self.initial_accumulator_value = check.non_negative(
            "initial_accumulator_value", initial_accumulator_value)
        self.epsilon = check.positive("epsilon", epsilon)

    def _slot_initial_value(self, slot: str) -> float:
        return self.initial_accumulator_value

    def _compute_step(self, param: np.ndarray, grad: np.ndarray, step: np.ndarray,
                      slots: tuple[np.ndarray, ...], tmp: np.ndarray | None, lr: float) -> np.ndarray:
        """s ← s + g ⊗ g                      (s starts at initial_accumulator_value)
        θ ← θ − η g ⊘ √(s + ε)
        """
        (s,) = slots
        np.multiply(grad, grad, out=tmp)
        s += tmp
        np.add(s, self.epsilon, out=tmp)
        np.sqrt(tmp, out=tmp)
        np.multiply(grad, -lr, out=step)
        step /= tmp
        return step


@OPTIMIZERS.register("rmsprop")
class RMSProp(Optimizer):
    """RMSProp (Hinton & Tieleman 2012; the book's Equation 11-7).

    AdaGrad with an exponentially decaying accumulator: only recent gradients count, so
    the rate does not decay to nothing. ε is inside the square root, as in Keras and the
    book.
    """

    summary = ("RMSProp: AdaGrad that forgets old gradients (decay ρ), so it does not stop early; "
               "was the researchers' favourite before Adam (speed ***, quality ** or ***).")
    rating = Rating("***", "** or ***")
    hyperparameters = {
        "rho": Hyperparameter("decay ρ", "ρ: how fast RMSProp forgets old squared gradients (0.9 keeps the "
                                         "last ~10 steps).", "0 ≤ ρ < 1", "ρ"),
        "epsilon": _EPSILON_HELP,
    }
    slot_names = ("s",)

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, epsilon: float = 1e-7) -> None:
        super().__init__(learning_rate)
        self.rho = check.fraction("rho", rho)
        self.epsilon = check.positive("epsilon", epsilon)

    def _compute_step(self, param: np.ndarray, grad: np.ndarray, step: np.ndarray,
                      slots: tuple[np.ndarray, ...], tmp: np.ndarray | None, lr: float) -> np.ndarray:
        """s ← ρ s + (1 − ρ) g ⊗ g
        θ ← θ − η g ⊘ √(s + ε)
        """
        (s,) = slots
        np.multiply(grad, grad, out=tmp)
        decay_towards(s, self.rho, tmp, step, self.fused_updates)
        np.add(s, self.epsilon, out=tmp)
        np.sqrt(tmp, out=tmp)
        np.multiply(grad, -lr, out=step)
        step /= tmp
        return step


@OPTIMIZERS.register("adam")
class Adam(Optimizer):
    """Adam (Kingma & Ba 2014; the book's Equation 11-8): momentum + RMSProp.

    m is a decaying mean of the gradients, v a decaying mean of their squares. Both start
    at zero and are biased towards it early on; Keras folds the two bias corrections
    m̂ = m/(1 − β1^t) and v̂ = v/(1 − β2^t) into the step size α_t, with ε outside the
    root ("ε-hat" in the paper).
    """

    summary = ("Adam: momentum plus RMSProp's adaptive scaling with bias correction; a robust "
               "default that needs little tuning (speed ***, quality ** or ***).")
    rating = Rating("***", "** or ***")
    hyperparameters = _ADAM_HELP
    slot_names = ("m", "v")

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7) -> None:
        super().__init__(learning_rate)
        self.beta_1 = check.fraction("beta_1", beta_1)
        self.beta_2 = check.fraction("beta_2", beta_2)
        self.epsilon = check.positive("epsilon", epsilon)

    def _compute_step(self, param: np.ndarray, grad: np.ndarray, step: np.ndarray,
                      slots: tuple[np.ndarray, ...], tmp: np.ndarray | None, lr: float) -> np.ndarray:
        """m ← β1 m + (1 − β1) g
        v ← β2 v + (1 − β2) g ⊗ g
        α_t = η √(1 − β2^t) / (1 − β1^t)
        θ ← θ − α_t m ⊘ (√v + ε)
        """
        m, v = slots
        t = self.iterations
        alpha = lr * math.sqrt(1.0 - self.beta_2**t) / (1.0 - self.beta_1**t)
        decay_towards(m, self.beta_1, grad, tmp, self.fused_updates)
        np.multiply(grad, grad, out=tmp)
        decay_towards(v, self.beta_2, tmp, step, self.fused_updates)
        np.sqrt(v, out=tmp)
        tmp += self.epsilon
        np.multiply(m, -alpha, out=step)
        step /= tmp
        return step


@OPTIMIZERS.register("adamax")
class AdaMax(Optimizer):
    """AdaMax (Kingma & Ba 2014, section 7.1; in the book next to Adam): Adam with the ℓ2 norm of
    the recent gradients replaced by the ℓ∞ norm.

    Adam scales its step by √v, a decaying mean of the squared gradients; AdaMax keeps
    instead u, a decaying *maximum* of their absolute values, which needs no bias correction
    (only m does). It can be more stable than Adam on some problems; in practice Adam usually
    does better. As Keras 3 computes it (ε added to u)::

        m ← β1 m + (1 − β1) g
        u ← max(β2 u, |g|)
        θ ← θ − η m ⊘ ((1 − β1^t)(u + ε))
    """

    summary = ("AdaMax: Adam scaled by a decaying maximum of |g| (the ℓ∞ norm) instead of √v; sometimes "
               "more stable than Adam, usually not better (speed ***, quality ** or ***).")
    rating = Rating("***", "** or ***")
    hyperparameters = {
        "beta_1": _ADAM_HELP["beta_1"],
        "beta_2": Hyperparameter("β₂", "β₂: decay of AdaMax's running maximum of |g|; 0.999 by default.",
                                 "0 ≤ β₂ < 1", "β₂"),
        "epsilon": _EPSILON_HELP,
    }
    slot_names = ("m", "u")

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7) -> None:
        super().__init__(learning_rate)
        self.beta_1 = check.fraction("beta_1", beta_1)
        self.beta_2 = check.fraction("beta_2", beta_2)
        self.epsilon = check.positive("epsilon", epsilon)

    def _compute_step(self, param: np.ndarray, grad: np.ndarray, step: np.ndarray,
                      slots: tuple[np.ndarray, ...], tmp: np.ndarray | None, lr: float) -> np.ndarray:
        """m ← β1 m + (1 − β1) g
        u ← max(β2 u, |g|)
        θ ← θ − η m ⊘ ((1 − β1^t)(u + ε))
        """
        m, u = slots
        t = self.iterations
        decay_towards(m, self.beta_1, grad, tmp, self.fused_updates)
        u *= self.beta_2
        np.abs(grad, out=tmp)
        np.maximum(u, tmp, out=u)
        np.add(u, self.epsilon, out=tmp)
        np.multiply(m, -lr / (1.0 - self.beta_1**t), out=step)
        step /= tmp
        return step


@OPTIMIZERS.register("nadam")
class Nadam(Optimizer):
    """Nadam (Dozat 2016): Adam with Nesterov momentum, exactly as Keras 3 computes it.

    Keras 3 uses a warming momentum schedule u_t = β1 (1 − ½·0.96^t) and keeps the running
    product Π_{i≤t} u_i as state (here ``_u_product``, saved as the 0-d float64 array
    ``slots["u_product"]``). With t = iterations (1 on the first step)::

        u_t       = β1 (1 − 0.5 · 0.96^t)
        u_{t+1}   = β1 (1 − 0.5 · 0.96^(t+1))
        P_t       = Π_{i≤t} u_i          (advanced once per step, before the rule)
        P_{t+1}   = P_t · u_{t+1}

    Keras 2's legacy Nadam used 0.96^(0.004·t) (Dozat's schedule_decay); Keras 3 dropped
    the 0.004, and we match Keras 3.
    """

    summary = ("Nadam: Adam with Nesterov momentum; often converges slightly faster than Adam "
               "(speed ***, quality ** or ***).")
    rating = Rating("***", "** or ***")
    hyperparameters = _ADAM_HELP
    slot_names = ("m", "v")
    scalar_state_names = ("u_product",)

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7) -> None:
        super().__init__(learning_rate)
        self.beta_1 = check.fraction("beta_1", beta_1)
        self.beta_2 = check.fraction("beta_2", beta_2)
        self.epsilon = check.positive("epsilon", epsilon)
        self._u_product = 1.0

    def _u(self, t: int) -> float:
        return self.beta_1 * (1.0 - 0.5 * 0.96**t)

    def _begin_apply(self) -> None:
        """P_t ← P_{t−1} · u_t"""
        self._u_product *= self._u(self.iterations)

    def _compute_step(self, param: np.ndarray, grad: np.ndarray, step: np.ndarray,
                      slots: tuple[np.ndarray, ...], tmp: np.ndarray | None, lr: float) -> np.ndarray:
        """m ← β1 m + (1 − β1) g
        v ← β2 v + (1 − β2) g ⊗ g
        m̂ = u_{t+1} m / (1 − P_{t+1}) + (1 − u_t) g / (1 − P_t)
        v̂ = v / (1 − β2^t)
        θ ← θ − η m̂ ⊘ (√v̂ + ε)
        """
        m, v = slots
        t = self.iterations
        u_t, u_next = self._u(t), self._u(t + 1)
        p_t = self._u_product
        p_next = p_t * u_next
        decay_towards(m, self.beta_1, grad, tmp, self.fused_updates)
        np.multiply(grad, grad, out=tmp)
        decay_towards(v, self.beta_2, tmp, step, self.fused_updates)
        np.multiply(m, u_next / (1.0 - p_next), out=step)
        np.multiply(grad, (1.0 - u_t) / (1.0 - p_t), out=tmp)
        step += tmp
        np.divide(v, 1.0 - self.beta_2**t, out=tmp)
        np.sqrt(tmp, out=tmp)
        tmp += self.epsilon
        step /= tmp
        step *= -lr
        return step


@OPTIMIZERS.register("adamw")
class AdamW(Adam):
    """AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay.

    ℓ2 regularization interacts badly with Adam's per-parameter scaling; AdamW instead
    shrinks the weights directly, θ ← θ − η λ θ, then takes the Adam step (Keras applies it
    to every trained parameter, biases included, at the current learning rate).
    """

    summary = ("AdamW: Adam with decoupled weight decay, which regularizes better than ℓ2 "
               "with Adam (speed ***, quality ** or ***).")
    rating = Rating("***", "** or ***")
    hyperparameters = {
        "weight_decay": Hyperparameter("weight decay", "AdamW's decoupled decay: each step shrinks the weights "
                                                       "by η·weight_decay·θ, independently of the gradient.",
                                       "λ ≥ 0", "λ"),
    }

    def __init__(self, learning_rate: float = 0.001, weight_decay: float = 0.004, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7) -> None:
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
        self.weight_decay = check.non_negative("weight_decay", weight_decay)

    def _compute_step(self, param: np.ndarray, grad: np.ndarray, step: np.ndarray,
                      slots: tuple[np.ndarray, ...], tmp: np.ndarray | None, lr: float) -> np.ndarray:
        """θ ← θ − η λ θ                     (decoupled decay, from the old θ)
        then the Adam step:
        m ← β1 m + (1 − β1) g;  v ← β2 v + (1 − β2) g ⊗ g
        α_t = η √(1 − β2^t) / (1 − β1^t)
        θ ← θ − α_t m ⊘ (√v + ε)
        """
        step = super()._compute_step(param, grad, step, slots, tmp, lr)
        np.multiply(param, lr * self.weight_decay, out=tmp)
        step -= tmp
        return step


def get_optimizer(config: Mapping[str, Any]) -> Optimizer:
    """Build an optimizer from its spec, e.g. ``{"name": "adam", "learning_rate": 0.01}``."""
    if not isinstance(config, Mapping):
        raise ValueError(f"optimizer: must be an object with a 'name', got {config!r}")
    name = check.choice("name", config.get("name"), OPTIMIZERS.names())
    optimizer = OPTIMIZERS.get(name).from_config(config)
    assert isinstance(optimizer, Optimizer)
    return optimizer
