"""Remedies are tried before they are offered: on the bundled presets, what is offered as
helping measurably helped in its trial, what made things worse is reported as such, and a fix
that needs a lower rate is offered as a pair."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from core.engine.diagnostics import HealthIssue
from core.presets import PRESETS, preset_experiment
from core.remedies import (
    FROM_START,
    REMEDY_EDITS,
    Trial,
    apply_remedies,
    describe,
    hidden_gradients_zero,
    judge,
    try_fix,
    try_remedies,
)
from core.spec import parse_experiment
from core.training import Trainer

STEPS = 100          # short trials; a generous time budget so the step count decides (deterministic)
SECONDS = 120.0


def trained_until(name: str, kind: str, steps: int = 60, edit=None) -> tuple[Trainer, HealthIssue]:
    """The preset ``name`` (its JSON changed by ``edit`` first, if given) trained ``steps`` steps,
    and its first finding of ``kind``."""
    data = preset_experiment(name).to_dict()
    if edit is not None:
        edit(data)
    trainer = Trainer(parse_experiment(data))
    trainer.fit(epochs=None, should_stop=lambda: trainer.step >= steps)
    findings = [i for i in trainer.health() if i.kind == kind]
    assert findings, f"{name} must show {kind} by step {steps}"
    return trainer, findings[0]


@pytest.fixture(scope="module")
def exploding():
    trainer, finding = trained_until("exploding", "exploding")
    weights = {k: a.copy() for k, a in trainer.network.state().items()}
    report = try_remedies(trainer, finding, steps=STEPS, seconds=SECONDS)
    return trainer, weights, report


def test_on_exploding_every_fix_offered_lowered_the_spread_or_the_loss(exploding) -> None:
    _, _, report = exploding
    assert report.offered, "at least one fix must be offered"
    for trial in report.offered:
        base = report.baselines[trial.from_start]
        assert not trial.diverged
        assert trial.imbalance < base.imbalance or trial.loss_after < base.loss_after, trial
    offered = {t.fix for t in report.offered}
    assert ("init",) in offered                       # Glorot for tanh: the book's first fix
    # every remedy the finding names was tried, and each one not offered says why
    assert {t.fix[0] for t in report.trials} == set(report.finding.remedies)
    for trial in report.rejected:
        assert trial.verdict in ("worse", "no_change", "diverged") and describe(trial)


def test_trials_leave_the_run_as_it_was_and_start_where_they_should(exploding) -> None:
    trainer, weights, report = exploding
    assert trainer.step == 60
    for key, array in trainer.network.state().items():
        np.testing.assert_array_equal(array, weights[key])
    for trial in report.trials:
        assert trial.start_step == (0 if trial.from_start else 60)
        assert trial.steps <= STEPS
        assert trial.from_start == bool(FROM_START.intersection(trial.fix))


def test_a_fix_that_diverges_alone_is_offered_paired_with_a_lower_rate() -> None:
    """Six ReLU layers under momentum at η = 0.1 (dying_relu.json before 2026-12): its units
    die by step 60; leaky units at that rate blow up, and with the rate halved they train."""
    def momentum_at_0_1(data):
        data["optimizer"] = {"name": "momentum", "learning_rate": 0.1, "momentum": 0.9}
    trainer, finding = trained_until("dying_relu", "dead", edit=momentum_at_0_1)
    report = try_remedies(trainer, finding, steps=STEPS, seconds=SECONDS)
    by_fix = {t.fix: t for t in report.trials}
    assert by_fix[("leaky",)].verdict == "diverged"      # the rate blows the leaky net up
    pairs = [t for t in report.offered if "leaky" in t.fix and "learning_rate" in t.fix]
    assert pairs and all(not t.diverged and math.isfinite(t.loss_after) for t in pairs)
    assert ("leaky",) not in {t.fix for t in report.offered}


def test_on_dying_relu_a_smaller_step_is_offered_and_leaky_relu_alone_is_not() -> None:
    trainer, finding = trained_until("dying_relu", "dead")
    report = try_remedies(trainer, finding, steps=STEPS, seconds=SECONDS)
    by_fix = {t.fix: t for t in report.trials}
    smaller = by_fix[("learning_rate",)]
    assert smaller.verdict == "helps" and not smaller.diverged and math.isfinite(smaller.loss_after)
    assert smaller.loss_after < by_fix[("init",)].loss_after      # a fresh start at the same rate dies again
    assert smaller in report.offered
    # Leaky units do not die, but the preset's rate is too large for them: the loss grows.
    assert by_fix[("leaky",)].verdict in ("worse", "diverged")
    assert ("leaky",) not in {t.fix for t in report.offered}


def test_the_time_budget_bounds_a_trial() -> None:
    trainer = Trainer(preset_experiment("exploding"))
    trial = try_fix(trainer, ("init",), steps=10**6, seconds=0.2)
    assert 0 < trial.steps < 10**6 and 0.2 <= trial.seconds < 2.0


def trial(spread: float, loss: float, diverged: bool = False) -> Trial:
    return Trial(("clip",), False, 10, 100, 0.5, spread, 2.0, loss, diverged)


@pytest.mark.parametrize(("spread", "loss", "diverged", "verdict"), [
    (1.5, 2.0, False, "helps"),         # 2.8 decades closer to balanced, same loss
    (900.0, 1.0, False, "helps"),       # same spread, half the loss
    (900.0, 3.0, False, "worse"),       # same spread, loss up 50 %
    (9e4, 2.0, False, "worse"),         # spread two decades further off
    (1.5, 3.0, False, "worse"),         # balanced but the loss is much worse: not offered
    (950.0, 2.02, False, "no_change"),
    (1.5, 1.0, True, "diverged"),
])
def test_judge_compares_a_trial_with_the_unchanged_run(spread, loss, diverged, verdict) -> None:
    assert judge(trial(spread, loss, diverged), trial(900.0, 2.0)).verdict == verdict


def test_every_remedy_edit_gives_a_valid_experiment() -> None:
    data = preset_experiment("exploding").to_dict()
    for key in REMEDY_EDITS:
        edited = apply_remedies(data, (key,))
        assert edited != data and data == preset_experiment("exploding").to_dict()   # a copy is edited
        parse_experiment(edited)
    assert apply_remedies(data, ("learning_rate", "learning_rate"))["optimizer"]["learning_rate"] == 0.0025
    with pytest.raises(ValueError, match="remedy: must be one of"):
        apply_remedies(data, ("magic",))


def test_the_conditions_of_self_normalization_a_selu_network_breaks_are_named():
    from core.remedies import self_normalization_gaps

    selu = PRESETS["selu"][1]()
    assert self_normalization_gaps(parse_experiment(selu)) == []        # the preset meets them all
    assert self_normalization_gaps(preset_experiment("he_elu")) == []   # not a SELU network
    broken = copy.deepcopy(selu)
    broken["model"]["layers"][2].update(dropout=0.2, dropout_type="standard")
    broken["model"]["layers"][4]["init"] = "he_normal"
    broken["model"]["layers"][5]["batch_norm"] = "before_activation"
    broken["data"]["standardize"] = False
    gaps = self_normalization_gaps(parse_experiment(broken))
    assert len(gaps) == 4
    assert "LeCun normal initialization (not in dense_4)" in gaps
    assert "standardized inputs (Data panel: Standardize)" in gaps
    assert any("batch norm (in dense_5)" in g for g in gaps)
    assert any(g.startswith("alpha dropout instead of ordinary dropout (ordinary in dense_2") for g in gaps)


def test_for_a_run_whose_hidden_gradients_are_all_zero_every_fix_is_tried_from_the_start() -> None:
    """A rate halved at a step where every unit is dead changes nothing (dying_relu.json at step
    680 on an AVX2 machine: "no fix helped"); the app applies a fix by training from the start,
    so that is where it is tried. A stall of the loss alone (gradients still flowing) keeps the
    branch from the current step."""
    trainer = Trainer(preset_experiment("default"))
    trainer.fit(epochs=None, should_stop=lambda: trainer.step >= 12)
    dead = HealthIssue("stalled", 0, "dense_0", 12, "stalled: every hidden layer's gradient is zero",
                       ("learning_rate", "init"), (("largest_hidden_grad_norm", 0.0),))
    at_chance = HealthIssue("stalled", 1, "output", 12, "stalled: the loss has stayed at the chance level",
                            ("learning_rate",), (("loss_median", 2.3),))
    for finding, from_start in ((dead, True), (at_chance, False)):
        report = try_remedies(trainer, finding, steps=5, seconds=SECONDS)
        rate = next(t for t in report.trials if t.fix == ("learning_rate",))
        assert rate.from_start is from_start and rate.start_step == (0 if from_start else 12)
        assert set(report.baselines) == {from_start}
    assert trainer.step == 12
    # The window's finding crosses to the trials' process as a dict, without its evidence: the
    # detector on the replayed run decides (this run is not stalled; a stalled one is).
    crossed = HealthIssue.from_dict(dead.to_dict())
    assert not crossed.evidence and not hidden_gradients_zero(trainer, crossed)
    assert hidden_gradients_zero(trainer, dead) and not hidden_gradients_zero(trainer, at_chance)
    trainer.health = lambda: [dead]
    assert hidden_gradients_zero(trainer, crossed)
