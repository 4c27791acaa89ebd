"""Remedies tried before they are offered: a short trial of each of the book's fixes for a
finding of the health detector, measured against the run left as it is.

A fix that only changes hyperparameters (a lower learning rate, gradient clipping) is tried as
a branch of the run at its current step (``core.sessions.branch.continue_as``), next to the
unchanged run continued from the same step. A fix that changes the initialization or the
structure (matched initialization, a non-saturating or leaky activation, batch normalization)
cannot keep the trained weights, so it is tried from the start, next to the unchanged
experiment trained from the start for as long. So is every fix for a run whose hidden
gradients are all zero (``hidden_gradients_zero``): from its current step nothing below the output
moves, whatever the fix. Every trial has the same bounded budget
(``TRIAL_STEPS`` optimizer steps or ``TRIAL_SECONDS`` of training, whichever comes first) and
is measured the same way:

* the gradient spread ``s = ‖g₁‖ / ‖g_L‖``, the first hidden layer's kernel-gradient norm over
  the top hidden layer's (medians of the trial's last recorded steps); balanced is ``s ≈ 1``,
  and the imbalance ``|log₁₀ s|`` counts the decades between them;
* the loss change over the trial (median of its last recorded steps minus that of its first);
* divergence: the trial reached a non-finite loss or gradient.

A fix *helps* when, compared with its baseline, it lowers the imbalance by more than
``SPREAD_MARGIN`` decades without raising the final loss by more than ``LOSS_MARGIN``, or lowers
the final loss by more than ``LOSS_MARGIN`` without raising the imbalance by more than the
margin; it is *worse* when it diverged or raised the loss (or the imbalance) by more than the
margin without the other improving; else it made *no difference*. A structural fix that
diverged is tried again paired with the learning rate halved (then quartered, then divided by
8, until the pair does not diverge), and the pair is offered when it helps (leaky ReLU with a
lower rate when the rate killed the units).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.engine.diagnostics import REMEDIES, HealthIssue
from core.sessions.branch import continue_as
from core.spec import Experiment, parse_experiment
from core.training import Trainer

TRIAL_STEPS = 200        # optimizer steps per trial
TRIAL_SECONDS = 2.0      # ... or this much training, whichever comes first
MEASURE_WINDOW = 20      # recorded steps whose medians a trial's measurements are
SPREAD_MARGIN = 0.3      # decades of gradient spread that count as a change
LOSS_MARGIN = 0.05       # relative change of the final loss that counts
PAIR_HALVINGS = 3        # a diverging fix is retried with the rate halved up to this many times

#: Initialization matched to each activation (chapter 11, Table 11-1).
MATCHED_INIT = {"relu": "he_normal", "leaky_relu": "he_normal", "elu": "he_normal", "gelu": "he_normal",
                "swish": "he_normal", "selu": "lecun_normal", "logistic": "glorot_uniform", "tanh": "glorot_uniform",
                "softplus": "glorot_uniform", "linear": "glorot_uniform"}


def _layers(data: dict[str, Any]) -> list[dict[str, Any]]:
    return data["model"]["layers"]


def remedy_init(data: dict[str, Any]) -> dict[str, Any]:
    """Every layer's initializer matched to its activation (He, Glorot or LeCun)."""
    for row in _layers(data):
        row["init"] = MATCHED_INIT.get(row["activation"], "he_normal")
    return data


def remedy_activation(data: dict[str, Any]) -> dict[str, Any]:
    """ELU with He initialization in every hidden layer (non-saturating for z > 0)."""
    for row in _layers(data):
        row.pop("alpha", None)
        row["activation"] = "elu"
        row["init"] = "he_normal"
    return data


def remedy_batch_norm(data: dict[str, Any]) -> dict[str, Any]:
    """Batch normalization before the activation of every hidden layer."""
    for row in _layers(data):
        if not row.get("batch_norm"):
            row["batch_norm"] = "before_activation"
    return data


def remedy_clip(data: dict[str, Any]) -> dict[str, Any]:
    """Gradient clipping by global norm at 1."""
    data["regularization"]["gradient_clip"] = {"mode": "global_norm", "threshold": 1.0}
    return data


def remedy_learning_rate(data: dict[str, Any]) -> dict[str, Any]:
    """The optimizer's learning rate halved."""
    data["optimizer"]["learning_rate"] = float(f"{float(data['optimizer']['learning_rate']) / 2:.6g}")
    return data


def remedy_leaky(data: dict[str, Any]) -> dict[str, Any]:
    """Leaky ReLU (He initialization) in place of ReLU and the saturating activations."""
    for row in _layers(data):
        if row["activation"] in ("relu", "logistic", "tanh"):
            row.pop("alpha", None)
            row["activation"] = "leaky_relu"
            row["init"] = "he_normal"
    return data


#: remedy key (``REMEDIES``) → the edit of the experiment's JSON that applies it.
REMEDY_EDITS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "init": remedy_init, "activation": remedy_activation, "batch_norm": remedy_batch_norm,
    "clip": remedy_clip, "learning_rate": remedy_learning_rate, "leaky": remedy_leaky,
}
#: Remedies that change the initial weights or the parameters' shapes: tried from the start.
FROM_START = frozenset({"init", "activation", "batch_norm", "leaky"})


def hidden_gradients_zero(trainer: Trainer, finding: HealthIssue) -> bool:
    """Whether ``finding`` is the ``stalled`` finding of a run whose hidden gradients are all
    zero, judged by its evidence or, for a finding that crossed from another process without it
    (the window's, as a dict), by the detector on ``trainer`` at the finding's step."""
    if finding.kind != "stalled":
        return False
    measured = "largest_hidden_grad_norm"
    if finding.evidence:
        return measured in dict(finding.evidence)
    return any(i.kind == "stalled" and measured in dict(i.evidence) for i in trainer.health())


def starts_over(fix: tuple[str, ...], gradients_zero: bool = False) -> bool:
    """Whether a trial of ``fix`` trains from the start rather than from the current step: a fix
    that changes the initial weights or the structure always does (``FROM_START``), and so does
    every fix for a run whose hidden gradients are all zero (``hidden_gradients_zero``): from
    there nothing below the output moves whatever the rate (a halved rate tried at step 680 of
    ``dying_relu.json``, every unit dead, changed nothing), and the app applies a fix by
    training again from the start."""
    return gradients_zero or bool(FROM_START.intersection(fix))


#: What each remedy does and does not address, in the book's terms.
REMEDY_SCOPE = {
    "init": "gives each layer's outputs the variance of its inputs (and its gradients that of the layer above), "
            "so the signal neither fades nor grows through the stack; it acts at the start only",
    "activation": "ELU does not saturate for positive inputs and its units cannot die; it costs a little more "
                  "to compute",
    "batch_norm": "re-centers and re-scales each layer's inputs at every step, which tames vanishing and "
                  "exploding gradients and allows larger rates; it adds parameters and time per step",
    "clip": "caps the size of each step; it does not change why the gradients grow (the book uses it mostly "
            "for recurrent networks, where batch normalization is hard to apply)",
    "learning_rate": "makes every step smaller, so the weights stop overshooting; it does not change the "
                     "gradients' balance between layers, and training gets slower",
    "leaky": "a leaky ReLU keeps a small slope for negative inputs, so units that stopped firing still get "
             "a gradient and can come back; it does not stop a too-large rate from diverging",
}


def self_normalization_gaps(experiment: Experiment) -> list[str]:
    """The conditions of self-normalization (Klambauer et al., 2017; the book's list) that a
    network with SELU layers breaks, each naming what to change: SELU in every hidden layer,
    LeCun normal initialization, standardized inputs, a plain dense stack (no batch norm), and
    alpha dropout instead of ordinary dropout (which raises the variance SELU keeps at 1).
    Empty for a network without SELU, or one that meets them all."""
    layers = experiment.model.layers
    if not any(row.activation == "selu" for row in layers):
        return []

    def named(indices: list[int]) -> str:
        return ", ".join(f"dense_{i}" for i in indices)

    gaps = []
    other = [i for i, row in enumerate(layers) if row.activation != "selu"]
    if other:
        gaps.append(f"SELU in every hidden layer (not in {named(other)})")
    init = [i for i, row in enumerate(layers) if row.init_name != "lecun_normal"]
    if init:
        gaps.append(f"LeCun normal initialization (not in {named(init)})")
    if not experiment.data.standardize:
        gaps.append("standardized inputs (Data panel: Standardize)")
    normed = [i for i, row in enumerate(layers) if row.batch_norm]
    if normed:
        gaps.append(f"a plain dense stack, without batch norm (in {named(normed)})")
    dropped = [i for i, row in enumerate(layers) if row.dropout > 0 and row.dropout_type != "alpha"]
    if dropped:
        gaps.append(f"alpha dropout instead of ordinary dropout (ordinary in {named(dropped)}: set their dropout "
                    "type to alpha)")
    if experiment.model.input_dropout > 0:
        gaps.append("no ordinary dropout on the inputs (set the input dropout to 0)")
    return gaps


def apply_remedies(data: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """A copy of the experiment's JSON with the remedies ``keys`` applied in order."""
    out = copy.deepcopy(dict(data))
    for key in keys:
        if key not in REMEDY_EDITS:
            raise ValueError(f"remedy: must be one of {', '.join(REMEDY_EDITS)}, got {key!r}")
        out = REMEDY_EDITS[key](out)
    return out


@dataclass(frozen=True)
class Trial:
    """One fix trained for the budget, measured (``fix`` is empty for a baseline)."""

    fix: tuple[str, ...]
    from_start: bool
    start_step: int
    steps: int
    seconds: float
    spread: float            # ‖g₁‖ / ‖g_L‖ at the end of the trial (NaN if not measured)
    loss_before: float
    loss_after: float
    diverged: bool
    verdict: str = "baseline"      # "helps" | "worse" | "no_change" | "diverged" | "baseline"
    explanation: str = ""

    @property
    def imbalance(self) -> float:
        """Decades between the first and the top hidden layer's gradient norms, |log₁₀ s|."""
        return abs(math.log10(self.spread)) if self.spread > 0 and math.isfinite(self.spread) else math.inf

    @property
    def loss_change(self) -> float:
        return self.loss_after - self.loss_before

    @property
    def label(self) -> str:
        """``leaky + learning_rate ÷ 4`` for ``("leaky", "learning_rate", "learning_rate")``."""
        if not self.fix:
            return "no change"
        halvings = self.fix.count("learning_rate")
        parts = [k for k in self.fix if k != "learning_rate"]
        if halvings:
            parts.append(f"learning_rate ÷ {2 ** halvings}")
        return " + ".join(parts)


@dataclass(frozen=True)
class RemedyReport:
    """The trials for one finding: baselines and fixes, each with its measured effect."""

    finding: HealthIssue
    baselines: dict[bool, Trial]                 # from_start → the unchanged run's trial
    trials: tuple[Trial, ...] = field(default_factory=tuple)

    @property
    def offered(self) -> list[Trial]:
        """The fixes that helped, best first (by final loss)."""
        return sorted((t for t in self.trials if t.verdict == "helps"), key=lambda t: t.loss_after)

    @property
    def rejected(self) -> list[Trial]:
        return [t for t in self.trials if t.verdict != "helps"]


def _median(a: np.ndarray) -> float:
    a = a[np.isfinite(a)]
    return float(np.median(a)) if a.size else math.nan


def _measure(trainer: Trainer, fix: tuple[str, ...], from_start: bool, start_step: int, reason: str,
             seconds: float) -> Trial:
    rec = trainer.recorder
    n = rec.size
    window = min(MEASURE_WINDOW, max(n // 2, 1))
    grads = rec["grad_norm"].astype(np.float64)
    top = rec.n_layers - 2 if rec.n_layers > 2 else 0
    losses = rec["loss"].astype(np.float64)
    diverged = reason.startswith("diverged") or (n > 0 and not np.isfinite(losses[-1]))
    if n:
        low, high = _median(grads[-window:, 0]), _median(grads[-window:, top])
        spread = low / high if high > 0 and math.isfinite(low) else math.nan
        before, after = _median(losses[:window]), _median(losses[-window:])
    else:
        spread = before = after = math.nan
    return Trial(fix, from_start, start_step, trainer.step - start_step, seconds, spread, before,
                 after if not diverged else math.inf, diverged)


def _run_trial(trainer: Trainer, steps: int, seconds: float,
               should_stop: Callable[[], bool] | None = None) -> tuple[str, float]:
    goal = trainer.step + steps
    t0 = time.perf_counter()
    deadline = t0 + seconds
    outer = should_stop or (lambda: False)
    reason = trainer.fit(epochs=10**6, should_stop=lambda: trainer.step >= goal or time.perf_counter() > deadline
                         or outer())
    return reason, time.perf_counter() - t0


def _trial_experiment(data: Mapping[str, Any], fix: tuple[str, ...]) -> dict[str, Any]:
    edited = apply_remedies(data, fix)
    # A trial shows divergence instead of hiding it behind a roll-back, and never stops early.
    edited["training"] = {**edited["training"], "on_nan": "stop"}
    edited["regularization"] = {**edited["regularization"],
                                "early_stopping": {**edited["regularization"].get("early_stopping", {}),
                                                   "enabled": False}}
    return edited


def try_fix(trainer: Trainer, fix: tuple[str, ...], steps: int = TRIAL_STEPS,
            seconds: float = TRIAL_SECONDS, from_start: bool | None = None,
            should_stop: Callable[[], bool] | None = None) -> Trial:
    """Train ``fix`` (remedy keys; empty for the unchanged run) for the budget and measure it:
    from the start if it changes initialization or structure (or ``from_start`` says so), else
    from the current step. ``trainer`` is left as it was; ``should_stop`` ends the trial early."""
    if from_start is None:
        from_start = starts_over(fix)
    data = _trial_experiment(trainer.experiment.to_dict(), fix)
    experiment = parse_experiment(data)
    if from_start:
        trial = Trainer(experiment, dataset=trainer.dataset, transfer=False)
        start = 0
    else:
        trial = continue_as(trainer, experiment, history=False)
        start = trial.step
    trial.blas_threads = 1
    reason, took = _run_trial(trial, steps, seconds, should_stop)
    return _measure(trial, fix, from_start, start, reason, took)


def judge(trial: Trial, baseline: Trial) -> Trial:
    """The trial with its verdict against ``baseline`` (the unchanged run over the same span)."""
    if trial.diverged:
        return _with(trial, "diverged", f"diverged within {trial.steps} steps")
    spread_gain = baseline.imbalance - trial.imbalance          # decades closer to balanced
    if math.isfinite(baseline.loss_after) and baseline.loss_after > 0:
        loss_gain = (baseline.loss_after - trial.loss_after) / baseline.loss_after
    else:
        loss_gain = math.inf if math.isfinite(trial.loss_after) else 0.0
    spread_text = (f"gradient spread {_spread(trial.spread)} (unchanged run {_spread(baseline.spread)})")
    loss_text = f"loss {trial.loss_after:.3g} after {trial.steps} steps (unchanged run {baseline.loss_after:.3g})"
    text = f"{spread_text}, {loss_text}"
    spread_better, spread_worse = spread_gain > SPREAD_MARGIN, spread_gain < -SPREAD_MARGIN
    loss_better, loss_worse = loss_gain > LOSS_MARGIN, loss_gain < -LOSS_MARGIN
    if (spread_better and not loss_worse) or (loss_better and not spread_worse):
        return _with(trial, "helps", text)
    if loss_worse or spread_worse:
        return _with(trial, "worse", text)
    return _with(trial, "no_change", text)


def _spread(s: float) -> str:
    return f"{s:.3g}" if math.isfinite(s) else "n/a"


def _with(trial: Trial, verdict: str, explanation: str) -> Trial:
    return Trial(trial.fix, trial.from_start, trial.start_step, trial.steps, trial.seconds, trial.spread,
                 trial.loss_before, trial.loss_after, trial.diverged, verdict, explanation)


def try_remedies(trainer: Trainer, finding: HealthIssue, steps: int = TRIAL_STEPS,
                 seconds: float = TRIAL_SECONDS, should_stop: Callable[[], bool] | None = None,
                 progress: Callable[[str], None] | None = None) -> RemedyReport:
    """Try each remedy the finding names (``finding.remedies``) for the budget and report each
    one's measured effect against the unchanged run (see the module docstring). ``trainer`` is
    left as it was; ``should_stop`` (checked at every step) ends early with the trials so far;
    ``progress`` hears the label of each trial as it starts."""
    baselines: dict[bool, Trial] = {}
    trials: list[Trial] = []
    keys = [k for k in finding.remedies if k in REMEDY_EDITS]
    gradients_zero = hidden_gradients_zero(trainer, finding)
    tell = progress or (lambda label: None)
    for key in keys:
        if should_stop is not None and should_stop():
            break
        fix = (key,)
        from_start = starts_over(fix, gradients_zero)
        if from_start not in baselines:
            tell("the unchanged run" + (" from the start" if from_start else ""))
            baselines[from_start] = try_fix(trainer, (), steps, seconds, from_start, should_stop)
        tell(key)
        trial = judge(try_fix(trainer, fix, steps, seconds, from_start, should_stop), baselines[from_start])
        trials.append(trial)
        # A fix that diverged may need a smaller step too: paired with the rate halved, up to
        # PAIR_HALVINGS times, until the pair stops diverging.
        halvings = 0
        while trial.verdict == "diverged" and "learning_rate" not in fix and halvings < PAIR_HALVINGS:
            halvings += 1
            if should_stop is not None and should_stop():
                break
            paired = (*fix, *["learning_rate"] * halvings)
            tell(" + ".join(paired))
            trial = judge(try_fix(trainer, paired, steps, seconds, from_start, should_stop), baselines[from_start])
            trials.append(trial)
    return RemedyReport(finding, baselines, tuple(trials))


def describe(trial: Trial) -> str:
    """One line on a fix's trial: what it is, what it did, and what it does not address."""
    halvings = trial.fix.count("learning_rate")
    names = " with ".join([REMEDIES.get(k, k) for k in trial.fix if k != "learning_rate"]
                          + ([f"the learning rate divided by {2 ** halvings}"] if halvings else []))
    verdict = {"helps": "helped", "worse": "did not help here", "no_change": "made no clear difference",
               "diverged": "diverged", "baseline": "unchanged run"}[trial.verdict]
    where = "from the start" if trial.from_start else f"from step {trial.start_step:,}"
    return f"{names}: {verdict} ({trial.explanation}; trial of {trial.steps} steps {where}, {trial.seconds:.1f} s)"


REPLAY_LIMIT = 5000      # steps a run is replayed to, at most, to try the fixes from where it is


def try_remedies_for(experiment: Experiment, finding: HealthIssue, steps: int = TRIAL_STEPS,
                     seconds: float = TRIAL_SECONDS, should_stop: Callable[[], bool] | None = None,
                     progress: Callable[[str], None] | None = None,
                     base_dir: str | Path | None = None) -> RemedyReport:
    """``try_remedies`` for a run known by its experiment only (the window's, whose trainer is
    elsewhere): the run is rebuilt and replayed to the finding's step (at most ``REPLAY_LIMIT``
    steps: a run is deterministic given its experiment), then the fixes are tried from there.
    Relative data paths resolve against ``base_dir``."""
    trainer = Trainer(experiment, None if base_dir is None else Path(base_dir))
    goal = min(max(int(finding.step), 0), REPLAY_LIMIT)
    stop = should_stop or (lambda: False)
    if goal:
        if progress is not None:
            progress(f"replaying the run to step {goal:,}")
        trainer.fit(epochs=10**6, should_stop=lambda: trainer.step >= goal or stop())
    return try_remedies(trainer, finding, steps, seconds, should_stop, progress)


def remedy_trials_job(progress: Callable[[str], None], should_stop: Callable[[], bool], experiment: Experiment,
                      finding: HealthIssue, steps: int, seconds: float,
                      base_dir: str | None = None) -> RemedyReport:
    """``try_remedies_for`` in the shape of a job (``core.process.ProcessJob``): the window runs the
    trials in a child process of low priority, never on its own interpreter while a run trains."""
    return try_remedies_for(experiment, finding, steps, seconds, should_stop, progress, base_dir)
