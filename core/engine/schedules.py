"""Learning-rate scheduling (chapter 11, "Learning Rate Scheduling").

A schedule maps the optimizer step ``t`` (0-based: the number of steps already taken) to
the learning rate used for that step. η0 is the optimizer's ``learning_rate``; it is
context, not configuration, so it is passed positionally and is not part of
``get_config()``.

The trainer calls ``bind(steps_per_epoch, total_steps)`` before training (piecewise works
in epochs, 1cycle needs the length of the run), ``schedule(t)`` before every step, and
``on_epoch_end(epoch, logs)`` after every epoch (only performance scheduling reacts; it
returns True when it changed the rate, which the trainer records as an event).

Each schedule documents its hyperparameters (``hyperparameters``: label, help, range) for the
GUI's editor and the docs.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from . import validation as check
from .component import Component, Hyperparameter
from .registry import Registry

__all__ = [
    "MONITORS",
    "SCHEDULES",
    "ConstantSchedule",
    "ExponentialSchedule",
    "OneCycleSchedule",
    "PerformanceSchedule",
    "PiecewiseSchedule",
    "PowerSchedule",
    "Schedule",
    "get_schedule",
]

SCHEDULES: Registry[type[Schedule]] = Registry("schedule")

#: Quantities performance scheduling can watch; accuracies are maximized, losses minimized.
MONITORS = ("val_loss", "loss", "val_accuracy", "accuracy")

# Power and exponential scheduling share the meaning of s.
_STEPS_HELP = Hyperparameter("steps s", "s: optimizer steps over which the rate falls (power: to η0/2 for c = 1; "
                                        "exponential: to η0/10).", "a positive integer", "s")


class Schedule(Component):
    """Base class. Subclasses implement ``__call__`` and declare their parameters as
    keyword-only arguments with defaults after ``initial_learning_rate``."""

    family: ClassVar[str] = "schedule"
    summary: ClassVar[str] = ""

    def __init__(self, initial_learning_rate: float) -> None:
        self.initial_learning_rate = check.positive("initial_learning_rate", initial_learning_rate)
        self.steps_per_epoch: int | None = None
        self.total_steps: int | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any], initial_learning_rate: float) -> Schedule:  # type: ignore[override]
        schedule = super().from_config(config, initial_learning_rate)
        assert isinstance(schedule, Schedule)
        return schedule

    def bind(self, steps_per_epoch: int, total_steps: int) -> None:
        """Tell the schedule how long an epoch and the whole run are, in optimizer steps."""
        self.steps_per_epoch = check.positive_int("steps_per_epoch", steps_per_epoch)
        self.total_steps = check.positive_int("total_steps", total_steps)

    def _require_bound(self) -> None:
        if self.steps_per_epoch is None or self.total_steps is None:
            raise RuntimeError(f"{self.name} schedule: call bind(steps_per_epoch, total_steps) "
                               "before asking for a learning rate")

    def __call__(self, step: int) -> float:
        """The learning rate for optimizer step ``step`` (0-based)."""
        raise NotImplementedError

    def momentum(self, step: int) -> float | None:
        """The momentum (β of momentum and Nesterov) for step ``step``, for a schedule that cycles
        it; ``None`` leaves the optimizer's own."""
        return None

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float]) -> bool:
        """React to the end of an epoch; True if the learning rate changed."""
        return False

    def state_dict(self) -> dict[str, Any]:
        """Mutable state as plain JSON values (empty for the pure functions of ``t``)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        _check_state_keys(self.name, state, ())

    def __repr__(self) -> str:
        args = "".join(f", {k}={getattr(self, k)!r}" for k in self.parameters())
        return f"{type(self).__name__}({self.initial_learning_rate!r}{args})"

    def __eq__(self, other: object) -> bool:
        return (type(self) is type(other) and self.get_config() == other.get_config()  # type: ignore[union-attr]
                and self.initial_learning_rate == other.initial_learning_rate)  # type: ignore[union-attr]

    __hash__ = None  # type: ignore[assignment]


def _check_state_keys(name: str, state: Mapping[str, Any], keys: Sequence[str]) -> None:
    if not isinstance(state, Mapping):
        raise ValueError(f"{name} schedule state: must be a mapping, got {type(state).__name__}")
    missing = sorted(set(keys) - set(state))
    extra = sorted(set(state) - set(keys))
    if missing or extra:
        raise ValueError(f"{name} schedule state: missing keys {missing}, unexpected keys {extra}")


@SCHEDULES.register("constant")
class ConstantSchedule(Schedule):
    """η(t) = η0"""

    summary = "Constant: keep the optimizer's learning rate for the whole run."

    def __init__(self, initial_learning_rate: float) -> None:
        super().__init__(initial_learning_rate)

    def __call__(self, step: int) -> float:
        """η(t) = η0"""
        return self.initial_learning_rate


@SCHEDULES.register("power")
class PowerSchedule(Schedule):
    """Power scheduling: η(t) = η0 / (1 + t/s)^c.

    After s steps the rate is η0/2 (for c = 1), after 2s steps η0/3, ...: it drops quickly
    at first, then more and more slowly.
    """

    summary = ("Power scheduling η0/(1 + t/s)^c: the rate drops quickly at first, then more and "
               "more slowly (η0/2 after s steps, η0/3 after 2s for c = 1).")
    hyperparameters = {
        "steps": _STEPS_HELP,
        "power": Hyperparameter("power c", "c: how sharply power scheduling falls; 1 is the usual value.",
                                "c > 0", "c"),
    }

    def __init__(self, initial_learning_rate: float, *, steps: int = 1000, power: float = 1.0) -> None:
        super().__init__(initial_learning_rate)
        self.steps = check.positive_int("steps", steps)
        self.power = check.positive("power", power)

    def __call__(self, step: int) -> float:
        """η(t) = η0 / (1 + t/s)^c"""
        return self.initial_learning_rate / (1.0 + step / self.steps) ** self.power


@SCHEDULES.register("exponential")
class ExponentialSchedule(Schedule):
    """Exponential scheduling: η(t) = η0 · 0.1^(t/s), the rate divided by 10 every s steps."""

    summary = ("Exponential scheduling η0·0.1^(t/s): divides the rate by 10 every s steps; "
               "simple and effective.")
    hyperparameters = {"steps": _STEPS_HELP}

    def __init__(self, initial_learning_rate: float, *, steps: int = 1000) -> None:
        super().__init__(initial_learning_rate)
        self.steps = check.positive_int("steps", steps)

    def __call__(self, step: int) -> float:
        """η(t) = η0 · 0.1^(t/s)"""
        return self.initial_learning_rate * 0.1 ** (step / self.steps)


@SCHEDULES.register("piecewise")
class PiecewiseSchedule(Schedule):
    """Piecewise constant scheduling: a fixed rate per range of epochs.

    With boundaries b_0 < b_1 < ... (epochs) and values v_0, v_1, ... (absolute rates,
    one more than boundaries), the rate is v_i while the epoch e = t // steps_per_epoch is
    in [b_{i−1}, b_i) (b_{−1} = 0, b_n = ∞). η0 is not used.
    """

    summary = ("Piecewise constant: a fixed rate per range of epochs (e.g. 0.1 for 5 epochs, then "
               "0.001); works, but the boundaries and rates take fiddling.")
    hyperparameters = {
        "boundaries": Hyperparameter("boundaries (epochs)", "Epochs at which the rate changes, strictly "
                                                            "increasing, e.g. 5, 15.",
                                     "a non-empty list of strictly increasing positive integers"),
        "values": Hyperparameter("rates", "The rate in each range of epochs: one more value than boundaries, "
                                          "e.g. 0.01, 0.005, 0.001.",
                                 "positive numbers, one more than boundaries"),
    }

    def __init__(self, initial_learning_rate: float, *, boundaries: Sequence[int] = (),
                 values: Sequence[float] = ()) -> None:
        super().__init__(initial_learning_rate)
        if isinstance(boundaries, (str, bytes)) or not isinstance(boundaries, Sequence) or not boundaries:
            raise ValueError("boundaries: must be a non-empty list of strictly increasing positive "
                             f"integers (epochs), got {boundaries!r}")
        checked: list[int] = []
        for i, b in enumerate(boundaries):
            b = check.positive_int(f"boundaries[{i}]", b)
            if checked and b <= checked[-1]:
                raise ValueError(f"boundaries[{i}]: must be greater than boundaries[{i - 1}] = "
                                 f"{checked[-1]} (strictly increasing), got {b!r}")
            checked.append(b)
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise ValueError(f"values: must be a list of {len(checked) + 1} positive numbers, got {values!r}")
        if len(values) != len(checked) + 1:
            raise ValueError(f"values: must have one more entry than boundaries ({len(checked) + 1}), "
                             f"got {len(values)}: {list(values)!r}")
        self.boundaries = tuple(checked)
        self.values = tuple(check.positive(f"values[{i}]", v) for i, v in enumerate(values))

    def __call__(self, step: int) -> float:
        """η(t) = v_i  with  b_{i−1} ≤ t // steps_per_epoch < b_i"""
        self._require_bound()
        epoch = step // self.steps_per_epoch  # type: ignore[operator]
        return self.values[bisect.bisect_right(self.boundaries, epoch)]


@SCHEDULES.register("performance")
class PerformanceSchedule(Schedule):
    """Performance scheduling (Keras's ``ReduceLROnPlateau``).

    After every epoch: if the monitored value improved on the best so far by more than
    ``min_delta`` (lower for losses, higher for accuracies), remember it; otherwise count
    the epoch, and after ``patience`` such epochs in a row multiply the rate by ``factor``
    (never below ``min_learning_rate``) and start counting again.
    """

    summary = ("Performance scheduling: multiply the rate by a factor when the monitored metric has "
               "not improved for `patience` epochs (reduce on plateau).")
    hyperparameters = {
        "factor": Hyperparameter("factor", "Multiply the rate by this when the metric has not improved "
                                           "for `patience` epochs (0 < factor < 1).", "0 < factor < 1"),
        "patience": Hyperparameter("patience (epochs)", "Epochs without improvement to wait before acting.",
                                   "an integer ≥ 0"),
        "monitor": Hyperparameter("monitor", "The metric watched: losses must go down, accuracies up; val_ "
                                             "metrics use the validation split.", "one of " + ", ".join(MONITORS)),
        "min_delta": Hyperparameter("min. improvement", "A change smaller than this does not count as an "
                                                        "improvement.", "≥ 0"),
        "min_learning_rate": Hyperparameter("min. rate", "Never reduce the rate below this.", "≥ 0"),
    }

    def __init__(self, initial_learning_rate: float, *, factor: float = 0.1, patience: int = 10,
                 monitor: str = "val_loss", min_delta: float = 1e-4, min_learning_rate: float = 0.0) -> None:
        super().__init__(initial_learning_rate)
        self.factor = check.number("factor", factor, low=0.0, high=1.0, low_inclusive=False,
                                   high_inclusive=False)
        self.patience = check.integer("patience", patience, low=0)
        self.monitor = check.choice("monitor", monitor, MONITORS)
        self.min_delta = check.non_negative("min_delta", min_delta)
        self.min_learning_rate = check.non_negative("min_learning_rate", min_learning_rate)
        self.learning_rate = self.initial_learning_rate
        self.best: float | None = None
        self.wait = 0

    @property
    def maximize(self) -> bool:
        return self.monitor.endswith("accuracy")

    def __call__(self, step: int) -> float:
        """η(t) = the current rate (changed only by ``on_epoch_end``)"""
        return self.learning_rate

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float]) -> bool:
        """if value improved on best by > min_delta: best ← value, wait ← 0
        else: wait ← wait + 1; if wait ≥ patience: η ← max(factor·η, min_learning_rate), wait ← 0
        """
        if self.monitor not in logs:
            raise ValueError(f"monitor: {self.monitor!r} is not in this epoch's logs "
                             f"(have {', '.join(logs) or 'nothing'})")
        value = float(logs[self.monitor])
        if self.best is None:
            improved = math.isfinite(value)
        elif self.maximize:
            improved = value > self.best + self.min_delta
        else:
            improved = value < self.best - self.min_delta
        if improved:
            self.best = value
            self.wait = 0
            return False
        self.wait += 1
        if self.wait >= self.patience and self.learning_rate > self.min_learning_rate:
            self.learning_rate = max(self.learning_rate * self.factor, self.min_learning_rate)
            self.wait = 0
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "best": self.best, "wait": self.wait}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        _check_state_keys(self.name, state, ("learning_rate", "best", "wait"))
        learning_rate = check.positive("learning_rate", state["learning_rate"])
        best = state["best"]
        if best is not None:
            best = check.number("best", best)
        wait = check.integer("wait", state["wait"], low=0)
        self.learning_rate, self.best, self.wait = learning_rate, best, wait


@SCHEDULES.register("one_cycle")
class OneCycleSchedule(Schedule):
    """1cycle scheduling (Smith 2018), as the book describes it.

    With T = total_steps, the last step L = T − 1, half-cycle h = ⌊(1 − a)·L / 2⌋ and
    cycle end c = 2h (a = annihilation_fraction)::

        η(t) = η0 + (η_max − η0) · t/h            for 0 ≤ t ≤ h      (linear rise)
        η(t) = η_max − (η_max − η0) · (t − h)/h   for h ≤ t ≤ c      (linear fall back to η0)
        η(t) = η0 + (η_final − η0) · (t − c)/(L − c)  for c ≤ t ≤ L  (annihilation)

    and η_final after the last step. Defaults follow the book's implementation:
    η_max = 10·η0, η_final = η0/1000.

    Smith also cycles the momentum the other way, for the optimizers that have one (momentum,
    Nesterov): β falls from β_max to β_min while the rate rises and climbs back while it falls,
    and stays at β_max through the annihilation (0.95 → 0.85 → 0.95 by default; an empty
    ``max_momentum`` leaves the optimizer's β alone)::

        β(t) = β_max − (β_max − β_min) · t/h        for 0 ≤ t ≤ h
        β(t) = β_min + (β_max − β_min) · (t − h)/h  for h ≤ t ≤ c
        β(t) = β_max                                for t ≥ c
    """

    summary = ("1cycle: rise linearly to a high rate, fall back, then drop by orders of magnitude "
               "over the last steps; the book found it fastest and best.")
    hyperparameters = {
        "max_learning_rate": Hyperparameter(
            "peak rate", "1cycle's peak η_max, reached halfway through the cycle; empty means 10·η0 "
                         "(the book picks it with a learning-rate range test).", "empty, or > η0", "η_max"),
        "final_learning_rate": Hyperparameter("final rate", "The rate at the very end; empty means η0/1000.",
                                              "empty, or 0 < rate < η0"),
        "annihilation_fraction": Hyperparameter(
            "annihilation", "Fraction of the run spent dropping the rate by orders of magnitude after the "
                            "cycle (0.1 = last 10 %).", "0 ≤ fraction < 1"),
        "max_momentum": Hyperparameter(
            "max momentum", "β at the start and end of the cycle, for momentum and Nesterov (Smith: 0.95); "
                            "empty leaves the optimizer's β unchanged.", "empty, or min momentum ≤ β < 1", "β_max"),
        "min_momentum": Hyperparameter("min momentum", "β at the peak rate, halfway through the cycle (Smith: 0.85).",
                                       "0 ≤ β ≤ max momentum", "β_min"),
    }

    def __init__(self, initial_learning_rate: float, *, max_learning_rate: float | None = None,
                 final_learning_rate: float | None = None, annihilation_fraction: float = 0.1,
                 max_momentum: float | None = 0.95, min_momentum: float = 0.85) -> None:
        super().__init__(initial_learning_rate)
        self.min_momentum = check.fraction("min_momentum", min_momentum)
        if max_momentum is not None:
            max_momentum = check.fraction("max_momentum", max_momentum)
            if max_momentum < self.min_momentum:
                raise ValueError(f"max_momentum: must be at least min_momentum {self.min_momentum:g}, "
                                 f"got {max_momentum!r}")
        self.max_momentum = max_momentum
        eta0 = self.initial_learning_rate
        if max_learning_rate is not None:
            max_learning_rate = check.positive("max_learning_rate", max_learning_rate)
            if max_learning_rate <= eta0:
                raise ValueError(f"max_learning_rate: must be greater than the initial learning rate "
                                 f"{eta0:g}, got {max_learning_rate!r}")
        if final_learning_rate is not None:
            final_learning_rate = check.positive("final_learning_rate", final_learning_rate)
            if final_learning_rate >= eta0:
                raise ValueError(f"final_learning_rate: must be less than the initial learning rate "
                                 f"{eta0:g}, got {final_learning_rate!r}")
        self.max_learning_rate = max_learning_rate
        self.final_learning_rate = final_learning_rate
        self.annihilation_fraction = check.fraction("annihilation_fraction", annihilation_fraction)
        # The resolved rates; get_config() keeps None as given so the spec round-trips.
        self.peak_rate = 10.0 * eta0 if max_learning_rate is None else max_learning_rate
        self.final_rate = eta0 / 1000.0 if final_learning_rate is None else final_learning_rate

    def phases(self) -> tuple[int, int, int]:
        """The step indices (h, c, L): the peak, the end of the cycle and the last step."""
        self._require_bound()
        last = self.total_steps - 1  # type: ignore[operator]
        half = int((1.0 - self.annihilation_fraction) * last // 2)
        return half, 2 * half, last

    def __call__(self, step: int) -> float:
        """Piecewise linear through (0, η0), (h, η_max), (c, η0), (L, η_final)"""
        half, end, last = self.phases()
        eta0, peak = self.initial_learning_rate, self.peak_rate
        if step >= last:
            return self.final_rate if last > end else eta0
        if step <= half:
            return eta0 if half == 0 else eta0 + (peak - eta0) * step / half
        if step <= end:
            return peak - (peak - eta0) * (step - half) / half
        return eta0 + (self.final_rate - eta0) * (step - end) / (last - end)

    def momentum(self, step: int) -> float | None:
        """β(t): down from β_max to β_min while η rises, back up while it falls, β_max after."""
        high = self.max_momentum
        if high is None:
            return None
        half, end, _ = self.phases()
        low = self.min_momentum
        if half == 0 or step >= end:
            return high
        if step <= half:
            return high - (high - low) * step / half
        return low + (high - low) * (step - half) / half


def get_schedule(config: Mapping[str, Any], initial_learning_rate: float) -> Schedule:
    """Build a schedule from its spec, e.g. ``{"name": "power", "steps": 500}``, and η0."""
    if not isinstance(config, Mapping):
        raise ValueError(f"schedule: must be an object with a 'name', got {config!r}")
    name = check.choice("name", config.get("name"), SCHEDULES.names())
    return SCHEDULES.get(name).from_config(config, initial_learning_rate)
