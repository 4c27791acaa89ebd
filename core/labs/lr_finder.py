"""The learning-rate finder: Leslie Smith's range test as the book describes it (chapter 11,
"Learning Rate Scheduling" and "1cycle scheduling").

Train the experiment for a few hundred steps while the learning rate grows exponentially from
a very small to a large value,

    η_t = η_min · (η_max / η_min)^(t / (T − 1)),   t = 0 … T − 1,

and record the loss against η. The loss first barely moves (η too small), then falls faster
and faster, then shoots back up (η too large). The run stops early once the smoothed loss
exceeds ``explode_factor`` (4) times the best seen, or becomes NaN.

Smoothing. Each batch's loss is noisy, so the curve is the bias-corrected exponential moving
average (Adam's correction, with β = ``smoothing``):

    m_t = β m_{t−1} + (1 − β) L_t,   m_{−1} = 0;     L̃_t = m_t / (1 − β^(t+1))

β = 0.9 averages over roughly the last 10 steps; a larger β lags more and, because η grows
every step, shifts the curve towards larger rates.

The suggestion. The book: "the optimal learning rate will be a bit lower than the point at
which the loss starts to climb (typically about 10 times lower than the turning point)", so

    suggestion = η at the minimum of L̃ / 10.

A suggestion is made only when the curve can be read that way: the smoothed loss must rise
after its minimum (by ``RISE_FACTOR``, or the run exploded or diverged), since a loss still
falling at η_max has no turning point and a tenth of the range's end is not a rate the test
has justified; it must fall by at least ``FLAT_DROP`` of where it started (else it is too flat
to read); and the batch losses' scatter around the smoothed curve before the minimum must be
below ``NOISE_RATIO`` of that fall (else it is too noisy). Otherwise ``suggestion`` is
``None`` and ``problem`` says why.

Also reported: the *steepest descent* rate, where L̃ falls fastest per factor of η,
argmin_t dL̃/d(ln η) before the minimum (fastai's choice); the two usually agree within a
factor of a few.

Nothing of the caller's is changed. The test runs on a *scratch* trainer built for the same
experiment (same data, split and seed) with, if given, a copy of a live trainer's weights and
batch-norm statistics; its optimizer starts with fresh slots. On that scratch trainer, whose
schedule is ours to replace, ``Trainer.schedule`` (the public attribute the training loop
asks for η before every step) is the exponential ramp above, early stopping is off and a NaN
stops the run (no roll-back). Driving ``Trainer.fit`` with an ``observer`` and ``should_stop``
gives the range test the trainer's exact step (regularization, clipping, frozen layers) without
a line of training code here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.data import Dataset
from core.engine import validation as check
from core.engine.schedules import Schedule
from core.spec import Experiment, parse_experiment
from core.training import Trainer

#: Progress observer: called after every step with {"step", "steps", "learning_rate", "loss",
#: "smoothed"} (plain floats and ints).
Progress = Callable[[dict[str, Any]], None]

WARMUP_STEPS = 10   # explosions are not judged before this many steps (the average is still settling)
RISE_FACTOR = 1.3   # the smoothed loss must climb this far above its minimum after it: a turning point
FLAT_DROP = 0.1     # ... and must have fallen by this share of where it started
NOISE_RATIO = 0.5   # the batch losses' scatter (std around the smoothed curve) must stay below this share of the fall
TRIAL_STEPS = 200   # a suggestion is checked by training this many steps at it (or TRIAL_SECONDS)
TRIAL_SECONDS = 2.0


class ExponentialRamp(Schedule):
    """The range test's schedule: η_t = η_min · (η_max / η_min)^(t / (T − 1)), η_max after T − 1.

    Not registered in ``SCHEDULES``: it is a measuring device, not a way to train."""

    name = "lr_range_test"

    def __init__(self, min_learning_rate: float, max_learning_rate: float, steps: int) -> None:
        super().__init__(min_learning_rate)
        self.max_learning_rate = check.positive("max_learning_rate", max_learning_rate)
        if self.max_learning_rate <= self.initial_learning_rate:
            raise ValueError(f"max_learning_rate: must be greater than min_learning_rate "
                             f"{self.initial_learning_rate:g}, got {max_learning_rate!r}")
        self.steps = check.integer("steps", steps, low=2)

    def __call__(self, step: int) -> float:
        """η_t = η_min · (η_max / η_min)^(min(t, T − 1) / (T − 1))"""
        frac = min(max(step, 0), self.steps - 1) / (self.steps - 1)
        return self.initial_learning_rate * (self.max_learning_rate / self.initial_learning_rate) ** frac

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "max_learning_rate": self.max_learning_rate, "steps": self.steps}

    def __repr__(self) -> str:
        return f"ExponentialRamp({self.initial_learning_rate!r}, {self.max_learning_rate!r}, {self.steps!r})"


class SmoothedLoss:
    """The bias-corrected exponential moving average of the module docstring, one loss at a time:
    m_t = β m_{t−1} + (1 − β) L_t,  L̃_t = m_t / (1 − β^(t+1))."""

    def __init__(self, beta: float) -> None:
        self.beta = check.fraction("smoothing", beta)
        self._m = 0.0
        self._t = 0

    def update(self, loss: float) -> float:
        """Feed L_t, get L̃_t."""
        self._m = self.beta * self._m + (1.0 - self.beta) * float(loss)
        self._t += 1
        return self._m / (1.0 - self.beta**self._t)


@dataclass(frozen=True)
class RateTrial:
    """A short training at one constant rate from the experiment's start: the check a suggestion
    passes before it is offered. ``loss_before`` is the first batch's loss (taken before any
    step), ``loss_after`` the median of the last 20 batch losses."""

    learning_rate: float
    steps: int
    loss_before: float
    loss_after: float
    diverged: bool

    @property
    def sound(self) -> bool:
        """It did not diverge and the loss came down."""
        return not self.diverged and math.isfinite(self.loss_after) and self.loss_after < self.loss_before


def try_rate(experiment: Experiment, learning_rate: float, *, dataset: Dataset | None = None,
             base_dir: str | Path | None = None, steps: int = TRIAL_STEPS, seconds: float = TRIAL_SECONDS,
             should_stop: Callable[[], bool] | None = None) -> RateTrial:
    """Train ``experiment`` from its start at the constant rate η = ``learning_rate`` for ``steps``
    optimizer steps or ``seconds`` of training, whichever comes first (a NaN stops it)."""
    d = with_learning_rate(experiment.to_dict(), learning_rate)
    d["schedule"] = {"name": "constant"}
    d["regularization"]["early_stopping"]["enabled"] = False
    d["training"].update(on_nan="stop", diagnostics_every=1_000_000, epochs=max(int(steps), 1))
    trainer = Trainer(parse_experiment(d), base_dir, dataset=dataset)
    losses: list[float] = []
    deadline = time.perf_counter() + seconds
    outer = should_stop or (lambda: False)
    reason = trainer.fit(observer=lambda kind, info: losses.append(float(info["loss"])) if kind == "step" else None,
                         should_stop=lambda: len(losses) >= steps or time.perf_counter() > deadline or outer())
    window = max(1, min(20, len(losses) // 2))
    finite = np.asarray(losses, dtype=np.float64)
    diverged = reason.startswith("diverged") or not np.isfinite(finite).all()
    before = float(finite[0]) if len(finite) else math.nan
    after = float(np.median(finite[-window:])) if len(finite) and not diverged else math.inf
    return RateTrial(float(learning_rate), len(losses), before, after, diverged)


@dataclass
class RangeTest:
    """A finished (or stopped) range test. ``learning_rates``, ``losses`` (raw batch loss, with the
    ℓ1/ℓ2 penalty as training reports it) and ``smoothed`` have one entry per step taken.

    ``reason``: ``"completed"`` (all steps), ``"exploded"`` (L̃ > factor × best), ``"diverged"``
    (NaN / inf) or ``"stopped"`` (``should_stop``)."""

    learning_rates: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    reason: str
    min_learning_rate: float
    max_learning_rate: float
    settings: dict[str, Any] = field(default_factory=dict)
    #: The short training at the suggested rate, when the test was asked to check it.
    trial: RateTrial | None = None

    @property
    def n_steps(self) -> int:
        return len(self.losses)

    @property
    def best_index(self) -> int | None:
        """Step of the lowest smoothed loss (None before any finite loss)."""
        finite = np.isfinite(self.smoothed)
        if not finite.any():
            return None
        return int(np.nanargmin(np.where(finite, self.smoothed, np.nan)))

    @property
    def loss_minimum_rate(self) -> float | None:
        """η at the lowest smoothed loss."""
        i = self.best_index
        return None if i is None else float(self.learning_rates[i])

    @property
    def problem(self) -> str | None:
        """Why the curve cannot be read (module docstring), or ``None`` when it can."""
        best = self.best_index
        if best is None:
            return "the test ended before any finite loss"
        smoothed = self.smoothed
        low, start = float(smoothed[best]), float(smoothed[0])
        after = smoothed[best:]
        rose = self.reason in ("exploded", "diverged") or not np.isfinite(after).all() or \
            float(np.max(after)) > RISE_FACTOR * low
        if not rose:
            lowest = float(self.learning_rates[best])
            return (f"the loss did not rise by the end of the range: it is lowest at η = {lowest:.2g}"
                    f"{' (the end of the range)' if best == self.n_steps - 1 else ''}, so the test shows no rate "
                    "where training becomes unstable and a tenth of it is not justified (on a small training set "
                    "the loss can fall to 0 at any rate); widen the range or judge by validation loss")
        drop = start - low
        if start <= 0 or drop < FLAT_DROP * start:
            share = max(drop, 0.0) / max(start, 1e-30)
            return f"the curve is too flat to read: the smoothed loss fell by only {share:.0%} from where it started"
        scatter = float(np.std(self.losses[:best + 1] - smoothed[:best + 1]))
        if best >= WARMUP_STEPS and scatter > NOISE_RATIO * drop:
            return (f"the curve is too noisy to read: the batch losses scatter by {scatter:.3g} around the smoothed "
                    f"curve, more than half of its fall ({drop:.3g}); use a larger batch or more steps")
        trial = self.trial
        if trial is not None and not trial.sound:
            what = "diverged" if trial.diverged else \
                f"did not lower the loss ({trial.loss_before:.3g} → {trial.loss_after:.3g})"
            return f"a trial of {trial.steps} steps at the rule's η = {trial.learning_rate:.2g} {what}"
        return None

    @property
    def suggestion(self) -> float | None:
        """The book's pick: a tenth of η at the lowest smoothed loss, when the curve can be read
        (``problem`` is ``None``)."""
        lr = self.loss_minimum_rate
        return None if lr is None or self.problem is not None else lr / 10.0

    @property
    def steepest_rate(self) -> float | None:
        """η where the smoothed loss falls fastest per factor of η, argmin dL̃/d(ln η), among the steps
        after the warm-up and up to the minimum."""
        best = self.best_index
        if best is None:
            return None
        lo = min(WARMUP_STEPS, best)
        if best - lo < 2:
            return float(self.learning_rates[best])
        x = np.log(self.learning_rates[lo:best + 1])
        slope = np.gradient(self.smoothed[lo:best + 1], x)
        return float(self.learning_rates[lo + int(np.argmin(slope))])


def range_test_experiment(experiment: Experiment, steps: int) -> Experiment:
    """The experiment the scratch trainer is built from: early stopping off, a NaN stops the run,
    diagnostics recorded only at the first step (they cost time and nobody looks at them), and
    enough epochs for ``steps``."""
    d = experiment.to_dict()
    d["regularization"]["early_stopping"]["enabled"] = False
    d["training"].update(on_nan="stop", diagnostics_every=1_000_000, epochs=max(int(steps), 1))
    return parse_experiment(d)


def lr_range_test(experiment: Experiment, *, weights: Mapping[str, np.ndarray] | None = None,
                  dataset: Dataset | None = None, base_dir: str | Path | None = None,
                  min_learning_rate: float = 1e-6, max_learning_rate: float = 10.0, steps: int = 300,
                  smoothing: float = 0.9, explode_factor: float = 4.0,
                  observer: Progress | None = None, should_stop: Callable[[], bool] | None = None,
                  check_suggestion: bool = False) -> RangeTest:
    """Run the range test (module docstring) on a scratch trainer for ``experiment``.

    ``weights``: parameters and buffers to start from (``Trainer.network.state()`` or the
    ``weights/…`` arrays of ``Trainer.state_dict()`` without the prefix); default: the
    experiment's initial weights. ``dataset`` skips reloading the data (pass the live trainer's).
    ``observer`` gets a progress dict after each step; ``should_stop()`` is asked before each.
    With ``check_suggestion`` a suggestion is tried (``try_rate``) and kept only if it trains.
    """
    check.positive("min_learning_rate", min_learning_rate)
    check.positive_int("steps", steps, high=100_000)
    check.number("explode_factor", explode_factor, low=1.0, low_inclusive=False)
    ramp = ExponentialRamp(min_learning_rate, max_learning_rate, max(steps, 2))
    trainer = Trainer(range_test_experiment(experiment, steps), base_dir, dataset=dataset)
    if weights is not None:
        trainer.network.load_state(weights)
    trainer.schedule = ramp
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    average = SmoothedLoss(smoothing)
    state = {"best": math.inf, "exploded": False}

    def on_event(kind: str, info: dict[str, Any]) -> None:
        if kind != "step":
            return
        loss, lr = float(info["loss"]), float(info["learning_rate"])
        t = len(losses)
        value = average.update(loss)
        lrs.append(lr)
        losses.append(loss)
        smoothed.append(value)
        if math.isfinite(value):
            state["best"] = min(state["best"], value)
        if not math.isfinite(value) or (t >= WARMUP_STEPS and value > explode_factor * state["best"]):
            state["exploded"] = True
        if observer is not None:
            observer({"step": t + 1, "steps": steps, "learning_rate": lr, "loss": loss, "smoothed": value})

    def stop() -> bool:
        return state["exploded"] or len(losses) >= steps or (should_stop is not None and should_stop())

    outcome = trainer.fit(epochs=steps, observer=on_event, should_stop=stop)
    if outcome.startswith("diverged"):
        reason = "diverged"
    elif state["exploded"]:
        reason = "exploded"
    elif len(losses) >= steps:
        reason = "completed"
    else:
        reason = "stopped"
    result = RangeTest(learning_rates=np.array(lrs), losses=np.array(losses), smoothed=np.array(smoothed),
                       reason=reason, min_learning_rate=float(min_learning_rate),
                       max_learning_rate=float(max_learning_rate),
                       settings={"steps": steps, "smoothing": smoothing, "explode_factor": explode_factor})
    rate = result.suggestion
    if check_suggestion and rate is not None and reason != "stopped":
        result.trial = try_rate(experiment, rate, dataset=trainer.dataset, base_dir=base_dir,
                                should_stop=should_stop)
    return result


def lr_range_test_job(progress: Callable[[dict[str, Any]], None], should_stop: Callable[[], bool],
                      experiment: Experiment, base_dir: str | None, options: Mapping[str, Any]) -> RangeTest:
    """``lr_range_test`` in the shape of a job (``core.process.ProcessJob``: the window runs it in
    a child process). ``progress`` gets the whole curve so far — ``step``, ``lr``, ``loss``,
    ``smoothed`` — since values in between may be skipped; the suggestion is checked."""
    points: dict[str, list[float]] = {"lr": [], "loss": [], "smoothed": []}

    def observe(info: dict[str, Any]) -> None:
        points["lr"].append(info["learning_rate"])
        points["loss"].append(info["loss"])
        points["smoothed"].append(info["smoothed"])
        progress({"step": info["step"], **{k: list(v) for k, v in points.items()}})

    return lr_range_test(experiment, base_dir=base_dir, observer=observe, should_stop=should_stop,
                         check_suggestion=True, **options)


def lr_range_test_for_trainer(trainer: Trainer, **options: Any) -> RangeTest:
    """The range test from a live trainer's current weights, leaving the trainer untouched
    (its weights are copied out with ``Trainer.state_dict``; the test runs on a scratch trainer)."""
    arrays, _ = trainer.state_dict(history=False)
    weights = {k[len("weights/"):]: a for k, a in arrays.items() if k.startswith("weights/")}
    return lr_range_test(trainer.experiment, weights=weights, dataset=trainer.dataset, **options)


# ------------------------------------------------------------------ applying the suggestion to a spec


def with_learning_rate(spec: Mapping[str, Any], learning_rate: float) -> dict[str, Any]:
    """A copy of an experiment dict with ``optimizer.learning_rate`` = η.

    Under 1cycle, explicit bounds that η would break (``max_learning_rate`` ≤ η,
    ``final_learning_rate`` ≥ η) are dropped, so they fall back to their defaults 10·η and η/1000.
    """
    d = parse_experiment(dict(spec)).to_dict()
    lr = check.positive("learning_rate", learning_rate)
    d["optimizer"]["learning_rate"] = lr
    sched = d["schedule"]
    if sched["name"] == "one_cycle":
        if sched.get("max_learning_rate") is not None and sched["max_learning_rate"] <= lr:
            sched.pop("max_learning_rate")
        if sched.get("final_learning_rate") is not None and sched["final_learning_rate"] >= lr:
            sched.pop("final_learning_rate")
    return d


def with_one_cycle_peak(spec: Mapping[str, Any], peak: float) -> dict[str, Any]:
    """A copy of an experiment dict whose schedule is 1cycle with ``max_learning_rate`` = peak.

    The book: the peak η1 is the rate the range test finds, and the start η0 "is usually 10 times
    lower"; η0 (the optimizer's ``learning_rate``) is kept if it is already below the peak, else set
    to peak/10. Other 1cycle settings are kept where still valid.
    """
    d = parse_experiment(dict(spec)).to_dict()
    peak = check.positive("max_learning_rate", peak)
    eta0 = Experiment(optimizer=parse_experiment(d).optimizer).learning_rate
    if eta0 >= peak:
        eta0 = peak / 10.0
        d["optimizer"]["learning_rate"] = eta0
    old = d["schedule"] if d["schedule"]["name"] == "one_cycle" else {}
    sched: dict[str, Any] = {"name": "one_cycle", "max_learning_rate": peak}
    if "annihilation_fraction" in old:
        sched["annihilation_fraction"] = old["annihilation_fraction"]
    final = old.get("final_learning_rate")
    if final is not None and final < eta0:
        sched["final_learning_rate"] = final
    d["schedule"] = sched
    return d


__all__ = [
    "ExponentialRamp",
    "RangeTest",
    "RateTrial",
    "lr_range_test",
    "lr_range_test_for_trainer",
    "range_test_experiment",
    "SmoothedLoss",
    "try_rate",
    "with_learning_rate",
    "with_one_cycle_peak",
]
