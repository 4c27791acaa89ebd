"""Remedies tried before they are offered: a short trial of each of the book's fixes for a
finding of the health detector, measured against the run left as it is.

A trial trains what applying the fix asks the user to do. A fix the app applies to the run as it
goes on (``LIVE_REMEDIES``, a lower learning rate: ``core.monitor.hyperparameter_only_change``)
is tried as a branch of the run at its current step (``core.sessions.branch.continue_as``), next
to the unchanged run continued from the same step. Every other fix (matched initialization, a
non-saturating or leaky activation, batch normalization, gradient clipping) needs a new model:
the banner then says to train again from the start, so it is tried from the start, next to the
unchanged experiment trained from the start for as long. So is every fix when the run cannot
go on where it is (``continues`` false): a complete run (Train then starts from fresh weights),
and a finding whose damage a continuing run keeps (``LASTING``: dead units, and hidden gradients
all zero, ``hidden_gradients_zero``), where a lower rate tried at step 680 of
``dying_relu.json`` looked better on a dead network while a retrain with it still lost 52-86 %
of its units. A trial from the start trains as far as the run had when the finding was made
(at least ``TRIAL_STEPS``, at most ``MAX_TRIAL_STEPS`` optimizer steps), so it shows whether the
fix prevents what the run showed by then; one from the current step trains ``TRIAL_STEPS``.
Either stops early after ``TRIAL_SECONDS`` per ``TRIAL_STEPS`` steps, and a fix is trained as
many steps as its baseline was. Each trial is measured the same way:

* the loss: the batch losses of its last ``MEASURE_WINDOW`` recorded steps (their median is the
  loss after) and the median of its first ones (the loss before);
* the gradient spread ``s = ‖g₁‖ / ‖g_L‖``, the first hidden layer's kernel-gradient norm over
  the top hidden layer's (medians of the last recorded steps); balanced is ``s ≈ 1``, and the
  imbalance ``|log₁₀ s|`` counts the decades between them;
* the largest share of dead units of a hidden layer, and of saturated ones (medians);
* divergence: the trial reached a non-finite loss or gradient, or its loss blew up: a level of
  it (the median of a block of ``MEASURE_WINDOW`` steps) reached ``BLOWUP_FACTOR`` (10) times the
  lowest before it and went above where it started (the detector's test of a blown-up run,
  ``core.engine.diagnostics.blow_up``), even if it came down again.

A fix *helps* when the run trains better with it and no longer shows what was found:

* its final loss is lower than the unchanged run's by more than ``LOSS_MARGIN`` (relative)
  *and* beyond the batches' noise: in most pairs of the two runs' last batch losses the fix's
  is the lower, at the one-sided 1 % level of that share (``loss_consistency``, the detector's
  ``RISE_CONSISTENCY`` test); and
* the finding's own symptom (``SYMPTOMS``) is better than the unchanged run's by its margin
  (the imbalance by ``SPREAD_MARGIN`` decades for vanishing or exploding gradients, or the
  largest gradient norm for gradients exploding by their size; the share of dead or saturated
  units by ``FRACTION_MARGIN``) and no longer past the detector's threshold
  for it, so the detector would not report the finding on the trial; for the other findings
  (a stall, a divergence, a NaN) the loss is the symptom.

The loss is what a fix is for, and the detector's threshold is what the finding claimed: a
smaller gradient imbalance on a network whose loss stays at chance has not helped (matched Glorot
initialization on ``vanishing.json`` moved the spread from 1.3e-8 to 3.6e-6, still more than
five decades, and left the loss at 2.31 with the unchanged run's), nor has a lower rate whose
loss fell a little while 86 % of a layer's units still died (``dying_relu.json``). A fix is
*worse* when it diverged, or its loss (beyond noise) or its symptom got worse by the margin;
else it made *no difference*, and the verdict's text says which half failed. A fix that changes
nothing in the experiment (its initialization already matched) is not tried
(``RemedyReport.skipped``). A structural fix that diverged is tried again paired with the
learning rate halved (then quartered, then divided by 8, until the pair does not diverge), and
the pair is offered when it helps (leaky ReLU with a lower rate when the rate killed the units).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.engine.diagnostics import (
    DEAD_FRACTION,
    EXPLODING_NORM,
    EXPLODING_RATIO,
    REMEDIES,
    SATURATED_FRACTION,
    VANISHING_RATIO,
    DiagnosticsRecorder,
    HealthIssue,
    blow_up,
    later_above_earlier,
    loss_levels,
)
from core.engine.initializers import get_initializer
from core.sessions.branch import continue_as
from core.spec import Experiment, parse_experiment
from core.training import Trainer

TRIAL_STEPS = 200        # optimizer steps per trial (at least, from the start)
MAX_TRIAL_STEPS = 1000   # a trial from the start retrains as far as the finding's step, at most this
TRIAL_SECONDS = 2.0      # ... or this much training per TRIAL_STEPS steps, whichever comes first
MEASURE_WINDOW = 20      # recorded steps whose medians a trial's measurements are
SPREAD_MARGIN = 0.3      # decades of gradient spread that count as a change
FRACTION_MARGIN = 0.1    # share of a layer's units (dead or saturated) that counts as a change
LOSS_MARGIN = 0.05       # relative change of the final loss that counts
ONE_SIDED_1_PERCENT = 2.326   # z of the one-sided 1 % level: how far beyond the batches' noise
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
#: Remedies the app applies to a run as it goes on, from its next batch (what
#: ``core.monitor.hyperparameter_only_change`` lets through): only these are tried from the
#: current step, and only when the run can go on (``starts_over``).
LIVE_REMEDIES = frozenset({"learning_rate"})
#: Remedies that need a new model (new initial weights, shapes or regularization; the banner says
#: to train again from the start): always tried from the start.
FROM_START = frozenset(REMEDY_EDITS) - LIVE_REMEDIES
#: Findings whose damage a run going on from its step keeps: dead units get no gradient, so
#: nothing brings them back (with ``hidden_gradients_zero``: every fix is tried from the start).
LASTING = frozenset({"dead"})


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


def starts_over(fix: tuple[str, ...], gradients_zero: bool = False, continues: bool = True) -> bool:
    """Whether a trial of ``fix`` trains from the start rather than from the current step, as
    applying it asks the user to: a fix that needs a new model always does (anything beyond
    ``LIVE_REMEDIES``: the banner then says to train again from the start), and so does every
    fix when the run cannot go on from where it is (``continues`` false: a complete run, which
    Train restarts from fresh weights, or a finding in ``LASTING``) or its hidden gradients are
    all zero (``hidden_gradients_zero``): from there nothing below the output moves whatever the
    rate (a halved rate tried at step 680 of ``dying_relu.json``, every unit dead, changed
    nothing)."""
    return gradients_zero or not continues or not LIVE_REMEDIES.issuperset(fix)


def run_continues(trainer: Trainer, finding: HealthIssue) -> bool:
    """Whether applying a live fix (``LIVE_REMEDIES``) lets the run go on from its current step
    and show its effect there: the run has planned epochs left (the app restarts a complete run
    from fresh weights) and the finding is not damage a continuing run keeps (``LASTING``)."""
    complete = trainer.finished or trainer.epoch >= trainer.experiment.training.epochs
    return not complete and finding.kind not in LASTING


def _canonical(data: Mapping[str, Any]) -> dict[str, Any]:
    """The experiment as parsed, each initializer as the one it builds (``"he_normal"`` and
    ``{"name": "he_normal"}`` are one initializer)."""
    out = parse_experiment(dict(data)).to_dict()
    for row in [*out["model"]["layers"], out["model"]["output"]]:
        init = get_initializer(row["init"])
        row["init"] = {"class": type(init).__name__, **init.get_config()}
    return out


def same_experiment(data: Mapping[str, Any], fix: tuple[str, ...]) -> bool:
    """Whether applying ``fix`` leaves the experiment as it is (its initialization already matched
    to its activations, say): compared as parsed, so spellings of one value count as one."""
    return _canonical(apply_remedies(data, fix)) == _canonical(data)


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
    losses: tuple[float, ...] = ()     # the batch losses of the last recorded steps (non-finite: inf)
    dead: float = math.nan             # the largest share of dead units of a hidden layer, at the end
    saturated: float = math.nan        # ... of saturated units
    grad_norm: float = math.nan        # the largest kernel-gradient norm of a layer, at the end
    peak_loss: float = math.nan        # the highest level of the loss (a block's median) in the trial
    blew_up: bool = False              # diverged by a loss that blew up (``blow_up``), not a NaN

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
    """The trials for one finding: baselines and fixes, each with its measured effect, and the
    fixes not tried because they change nothing in the experiment."""

    finding: HealthIssue
    baselines: dict[bool, Trial]                 # from_start → the unchanged run's trial
    trials: tuple[Trial, ...] = field(default_factory=tuple)
    skipped: tuple[tuple[str, ...], ...] = ()

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


def _largest_share(rec: DiagnosticsRecorder, quantity: str, window: int) -> float:
    """The largest median over the last ``window`` rows of ``quantity`` among the hidden layers."""
    table = rec[quantity][-window:, :max(rec.n_layers - 1, 1)].astype(np.float64)
    medians = [_median(table[:, i]) for i in range(table.shape[1])]
    finite = [m for m in medians if math.isfinite(m)]
    return max(finite) if finite else math.nan


def _measure(trainer: Trainer, fix: tuple[str, ...], from_start: bool, start_step: int, reason: str,
             seconds: float) -> Trial:
    rec = trainer.recorder
    n = rec.size
    window = min(MEASURE_WINDOW, max(n // 2, 1))
    grads = rec["grad_norm"].astype(np.float64)
    top = rec.n_layers - 2 if rec.n_layers > 2 else 0
    losses = rec["loss"].astype(np.float64)
    diverged = reason.startswith("diverged") or (n > 0 and not np.isfinite(losses[-1]))
    blew_up = False
    if n:
        low, high = _median(grads[-window:, 0]), _median(grads[-window:, top])
        spread = low / high if high > 0 and math.isfinite(low) else math.nan
        before, after = _median(losses[:window]), _median(losses[-window:])
        levels = loss_levels(losses, window)
        peak = float(np.nanmax(levels)) if np.isfinite(levels).any() else math.nan
        if not diverged and blow_up(levels, trainer.health_context().chance_loss) is not None:
            diverged = blew_up = True
        last = tuple(float(v) if math.isfinite(v) else math.inf for v in losses[-window:])
        dead = _largest_share(rec, "dead_fraction", window)
        saturated = _largest_share(rec, "saturated_fraction", window)
        norms = [_median(grads[-window:, i]) for i in range(rec.n_layers)]
        grad_norm = max((v for v in norms if math.isfinite(v)), default=math.nan)
    else:
        spread = before = after = peak = dead = saturated = grad_norm = math.nan
        last = ()
    # A loss that blew up keeps its measured value (the banner says how high it went); a NaN does not.
    return Trial(fix, from_start, start_step, trainer.step - start_step, seconds, spread, before,
                 after if not diverged or blew_up else math.inf, diverged, losses=last, dead=dead,
                 saturated=saturated, grad_norm=grad_norm, peak_loss=peak, blew_up=blew_up)


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
    from the start if it needs a new model (``starts_over``, or ``from_start`` says so), else
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


@dataclass(frozen=True)
class Symptom:
    """How a trial reads the symptom of a kind of finding: ``measure`` (lower is healthier), the
    change that counts (``margin``) and the detector's threshold past which it is a finding."""

    name: str
    measure: Callable[[Trial], float]
    margin: float
    threshold: float
    remains: str          # what the trial still shows when its measure is past the threshold


def _decades(x: float) -> float:
    """log₁₀ x (−∞ for 0, NaN for what was not measured)."""
    return math.log10(x) if x > 0 else -math.inf if x == 0 else math.nan


#: The symptom each kind of finding is read by in a trial; other kinds (a stall, a divergence, a
#: NaN) are read by the loss alone.
SYMPTOMS = {
    "vanishing": Symptom("gradient spread", lambda t: t.imbalance, SPREAD_MARGIN, math.log10(VANISHING_RATIO),
                         "the gradients still vanish"),
    "exploding": Symptom("gradient spread", lambda t: t.imbalance, SPREAD_MARGIN, math.log10(EXPLODING_RATIO),
                         "the gradients are still out of balance"),
    # gradients exploding by their size (a norm past EXPLODING_NORM), not by their balance
    "exploding_norm": Symptom("largest gradient norm (decades)", lambda t: _decades(t.grad_norm), SPREAD_MARGIN,
                              math.log10(EXPLODING_NORM), "a gradient norm is still past 1e4"),
    "dead": Symptom("dead units", lambda t: t.dead, FRACTION_MARGIN, DEAD_FRACTION,
                    "most units of a layer still die"),
    "saturated": Symptom("saturated units", lambda t: t.saturated, FRACTION_MARGIN, SATURATED_FRACTION,
                         "most outputs of a layer still saturate"),
}


def loss_consistency(n: int, m: int) -> float:
    """The share of pairs of ``n`` and ``m`` batch losses one run must win to be lower beyond
    noise: the one-sided 1 % level of the Mann-Whitney statistic over its pairs (normal
    approximation, ``0.5 + z·√((n + m + 1) / (12·n·m))``): 0.81 for 10 against 10, the
    detector's ``RISE_CONSISTENCY``, and 0.72 for two trials' last 20 steps."""
    return 0.5 + ONE_SIDED_1_PERCENT * math.sqrt((n + m + 1) / (12 * n * m)) if n and m else math.nan


def loss_lower_share(trial: Trial, baseline: Trial) -> float:
    """The share of pairs of the two runs' last batch losses in which the trial's is the lower
    (ties a half): 1 when every one of its batches beat every one of the unchanged run's, about
    0.5 for two runs whose losses differ by noise only; NaN when either kept none."""
    if not trial.losses or not baseline.losses:
        return math.nan
    return later_above_earlier(np.asarray(trial.losses), np.asarray(baseline.losses))


def symptom_of(trainer: Trainer, finding: HealthIssue) -> str:
    """The key in ``SYMPTOMS`` a trial for ``finding`` is read by: its kind, or ``exploding_norm``
    for gradients exploding by their size rather than their balance (told by its evidence or, for
    a finding that crossed from another process without it, by the detector on ``trainer``)."""
    if finding.kind != "exploding":
        return finding.kind
    if finding.evidence:
        return "exploding_norm" if "grad_norm" in dict(finding.evidence) else "exploding"
    by_norm = any(i.kind == "exploding" and "grad_norm" in dict(i.evidence) for i in trainer.health())
    return "exploding_norm" if by_norm else "exploding"


def judge(trial: Trial, baseline: Trial, kind: str | None = None) -> Trial:
    """The trial with its verdict against ``baseline`` (the unchanged run over the same span),
    for a finding of ``kind`` (a key of ``SYMPTOMS``, ``symptom_of``; see the module docstring):
    it *helps* only when its loss is lower
    by more than ``LOSS_MARGIN`` and beyond the batches' noise (``loss_consistency``) *and* the
    finding's symptom (``SYMPTOMS``) is better by its margin and no longer past the detector's
    threshold: the trial no longer shows what was found. Without ``kind`` the loss alone counts."""
    if trial.diverged:
        if trial.blew_up:
            return _with(trial, "diverged", f"diverged within {trial.steps} steps: its loss blew up to "
                                            f"{trial.peak_loss:.3g} (from {trial.loss_before:.3g}; unchanged run "
                                            f"{baseline.loss_after:.3g} at the end)")
        return _with(trial, "diverged", f"diverged within {trial.steps} steps")
    if math.isfinite(baseline.loss_after) and baseline.loss_after > 0:
        loss_gain = (baseline.loss_after - trial.loss_after) / baseline.loss_after
    else:
        loss_gain = math.inf if math.isfinite(trial.loss_after) else 0.0
    share = loss_lower_share(trial, baseline)
    level = loss_consistency(len(trial.losses), len(baseline.losses))
    loss_better = loss_gain > LOSS_MARGIN and not share < level
    loss_worse = loss_gain < -LOSS_MARGIN and not share > 1 - level
    loss_text = f"loss {trial.loss_after:.3g} after {trial.steps} steps (unchanged run {baseline.loss_after:.3g}"
    loss_text += f"; lower in {share:.0%} of batch pairs)" if math.isfinite(share) else ")"
    texts = [f"gradient spread {_spread(trial.spread)} (unchanged run {_spread(baseline.spread)})", loss_text]
    symptom = SYMPTOMS.get(kind or "")
    symptom_better = symptom_worse = still = False
    if symptom is not None:
        now, was = symptom.measure(trial), symptom.measure(baseline)
        # unmeasurable (a gradient at 0 has no spread) is the worst there is
        now, was = (math.inf if math.isnan(v) else v for v in (now, was))
        symptom_better = was - now > symptom.margin or (math.isinf(was) and math.isfinite(now))
        symptom_worse = now - was > symptom.margin or (math.isinf(now) and math.isfinite(was))
        still = not now <= symptom.threshold
        if symptom.name.endswith("units"):
            texts.insert(0, f"{symptom.name} {_share(now)} (unchanged run {_share(was)})")
        elif symptom is SYMPTOMS["exploding_norm"]:
            texts.insert(0, f"largest gradient norm {_spread(trial.grad_norm)} (unchanged run "
                            f"{_spread(baseline.grad_norm)})")
    text = ", ".join(texts)
    if loss_better and (symptom is None or (symptom_better and not still)):
        return _with(trial, "helps", text)
    if loss_worse or symptom_worse:
        return _with(trial, "worse", text)
    if symptom is not None and loss_better:
        why = symptom.remains if still else f"the {symptom.name} did not improve"
        return _with(trial, "no_change", f"{text}; the loss fell, but {why}")
    if symptom is not None and symptom_better:
        return _with(trial, "no_change", f"{text}; the {symptom.name} improved, but the loss did not fall "
                                         "beyond the batches' noise")
    return _with(trial, "no_change", text)


def _spread(s: float) -> str:
    return f"{s:.3g}" if math.isfinite(s) else "n/a"


def _share(s: float) -> str:
    return f"{s:.0%}" if math.isfinite(s) else "n/a"


def _with(trial: Trial, verdict: str, explanation: str) -> Trial:
    return dataclasses.replace(trial, verdict=verdict, explanation=explanation)


def try_remedies(trainer: Trainer, finding: HealthIssue, steps: int = TRIAL_STEPS,
                 seconds: float = TRIAL_SECONDS, should_stop: Callable[[], bool] | None = None,
                 progress: Callable[[str], None] | None = None) -> RemedyReport:
    """Try each remedy the finding names (``finding.remedies``) for the budget and report each
    one's measured effect against the unchanged run (see the module docstring). ``trainer`` is
    left as it was; ``should_stop`` (checked at every step) ends early with the trials so far;
    ``progress`` hears the label of each trial as it starts. A trial from the start retrains as
    far as ``trainer`` is (``steps`` to ``MAX_TRIAL_STEPS``), its time limit ``seconds`` per
    ``steps`` steps; each fix trains as many steps as its baseline did."""
    baselines: dict[bool, Trial] = {}
    trials: list[Trial] = []
    skipped: list[tuple[str, ...]] = []
    data = trainer.experiment.to_dict()
    keys = [k for k in finding.remedies if k in REMEDY_EDITS]
    gradients_zero = hidden_gradients_zero(trainer, finding)
    continues = run_continues(trainer, finding)
    symptom = symptom_of(trainer, finding)
    tell = progress or (lambda label: None)
    budget = {False: steps, True: max(steps, min(trainer.step, MAX_TRIAL_STEPS))}

    def timed(fix: tuple[str, ...], length: int, from_start: bool) -> Trial:
        # ``seconds`` is the time limit of ``steps`` steps: a longer trial gets as much more
        return try_fix(trainer, fix, length, seconds * length / max(steps, 1), from_start, should_stop)

    def trial_of(fix: tuple[str, ...], from_start: bool) -> Trial:
        # as far as the unchanged run went (its time ran out first, say); the full budget when
        # it diverged, so a fix is not cut short where the run it is measured against broke
        base = baselines[from_start]
        length = budget[from_start] if base.diverged or base.steps <= 0 else base.steps
        return judge(timed(fix, length, from_start), base, symptom)

    for key in keys:
        if should_stop is not None and should_stop():
            break
        fix = (key,)
        if same_experiment(data, fix):
            skipped.append(fix)
            continue
        from_start = starts_over(fix, gradients_zero, continues)
        if from_start not in baselines:
            tell("the unchanged run" + (" from the start" if from_start else ""))
            baselines[from_start] = timed((), budget[from_start], from_start)
        tell(key)
        trial = trial_of(fix, from_start)
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
            trial = trial_of(paired, from_start)
            trials.append(trial)
    return RemedyReport(finding, baselines, tuple(trials), tuple(skipped))


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
