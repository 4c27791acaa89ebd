"""Remedies are tried before they are offered: on the bundled presets, what is offered as
helping measurably helped in its trial (its loss beyond noise, and the finding's symptom), what
made things worse is reported as such, a fix is tried the way applying it asks the user to train,
and a fix that needs a lower rate is offered as a pair."""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import pytest
import scipy.stats

from core.engine.diagnostics import DEAD_FRACTION, RISE_CONSISTENCY, VANISHING_RATIO, HealthIssue
from core.monitor import hyperparameter_only_change
from core.presets import PRESETS, preset_experiment
from core.remedies import (
    FROM_START,
    LIVE_REMEDIES,
    LOSS_MARGIN,
    REMEDY_EDITS,
    SPREAD_MARGIN,
    Trial,
    apply_remedies,
    describe,
    hidden_gradients_zero,
    judge,
    loss_consistency,
    same_experiment,
    symptom_of,
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
        # the run has epochs left and its gradients explode: a lower rate, which the app applies
        # to the run as it goes on, is tried from step 60; clipping needs a new model (the banner
        # asks for a retrain), so it is tried from the start like the structural fixes
        assert trial.from_start == bool(FROM_START.intersection(trial.fix))
    by_fix = {t.fix: t for t in report.trials}
    assert not by_fix[("learning_rate",)].from_start and by_fix[("clip",)].from_start


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


@pytest.fixture(scope="module")
def dying():
    trainer, finding = trained_until("dying_relu", "dead")
    return trainer, finding, try_remedies(trainer, finding, steps=STEPS, seconds=SECONDS)


def test_on_dying_relu_a_smaller_step_is_offered_and_leaky_relu_alone_is_not(dying) -> None:
    _, _, report = dying
    by_fix = {t.fix: t for t in report.trials}
    smaller = by_fix[("learning_rate",)]
    assert smaller.verdict == "helps" and not smaller.diverged and math.isfinite(smaller.loss_after)
    # dead units stay dead in a run going on, and applying it asks for a retrain: tried from the start
    assert smaller.from_start and smaller.start_step == 0
    assert smaller.loss_after < report.baselines[True].loss_after  # a fresh start at the same rate dies again
    assert smaller.dead < DEAD_FRACTION < report.baselines[True].dead
    assert smaller in report.offered
    # Leaky units do not die, but the preset's rate is too large for them: the loss blows up.
    assert by_fix[("leaky",)].verdict == "diverged"
    assert ("leaky",) not in {t.fix for t in report.offered}


def test_a_fix_that_changes_nothing_is_not_tried(dying) -> None:
    """dying_relu.json already has He initialization for its ReLUs: "Matched init" was tried and
    listed, its figures those of the unchanged run."""
    _, finding, report = dying
    assert "init" in finding.remedies
    assert ("init",) not in {t.fix for t in report.trials} and report.skipped == (("init",),)
    data = preset_experiment("dying_relu").to_dict()
    assert apply_remedies(data, ("init",)) == data and same_experiment(data, ("init",))
    for row in data["model"]["layers"]:
        row["init"] = {"name": "he_normal"}                      # the same initializer, written out
    assert apply_remedies(data, ("init",)) != data and same_experiment(data, ("init",))
    vanishing = preset_experiment("vanishing").to_dict()
    assert not same_experiment(vanishing, ("init",)) and not same_experiment(data, ("leaky",))


def block_levels(losses: np.ndarray, block: int = 20) -> np.ndarray:
    return np.array([np.median(losses[i:i + block]) for i in range(0, len(losses), block)])


def test_a_trial_whose_loss_blows_up_without_a_nan_diverged_and_the_lower_rate_pair_ran(dying) -> None:
    """Leaky ReLU at dying_relu.json's rate reached a loss of 111 from about 2 (no NaN) and was
    judged "did not help", so the pairing with a lower rate never ran."""
    trainer, _, report = dying
    leaky = next(t for t in report.trials if t.fix == ("leaky",))
    # the same trial trained here: every loss finite, and a level ten times the lowest before it
    # and above where it started (the chance level, or its first level if higher)
    again = Trainer(parse_experiment(apply_remedies(trainer.experiment.to_dict(), ("leaky",))))
    again.fit(epochs=None, should_stop=lambda: again.step >= leaky.steps)
    losses = again.recorder["loss"].astype(np.float64)
    levels = block_levels(losses)
    start = max(levels[0], math.log(10))
    assert np.isfinite(losses).all()
    assert any(levels[k] >= 10 * levels[:k + 1].min() and levels[k] > start for k in range(len(levels)))
    assert leaky.diverged and leaky.verdict == "diverged" and "blew up" in leaky.explanation
    assert leaky.peak_loss == pytest.approx(levels.max())
    pairs = [t for t in report.trials if t.fix[0] == "leaky" and "learning_rate" in t.fix]
    assert pairs and pairs[0].fix == ("leaky", "learning_rate")


def test_the_time_budget_bounds_a_trial() -> None:
    trainer = Trainer(preset_experiment("exploding"))
    trial = try_fix(trainer, ("init",), steps=10**6, seconds=0.2)
    assert 0 < trial.steps < 10**6 and 0.2 <= trial.seconds < 2.0


def trial(spread: float, loss: float, diverged: bool = False, **measured) -> Trial:
    return Trial(("clip",), False, 10, 100, 0.5, spread, 2.0, loss, diverged, **measured)


@pytest.mark.parametrize(("spread", "loss", "diverged", "kind", "verdict"), [
    (1.5, 2.0, False, "vanishing", "no_change"),    # 8 decades closer to balanced, same loss
    (4e-6, 2.0, False, "vanishing", "no_change"),   # QA's matched init on vanishing.json: still vanishing
    (1.5, 1.0, False, "vanishing", "helps"),        # balanced and half the loss
    (1e-4, 1.0, False, "vanishing", "no_change"),   # half the loss, but still four decades apart
    (1e-8, 1.0, False, "vanishing", "no_change"),   # half the loss, the spread as it was
    (1e-8, 1.0, False, None, "helps"),              # no symptom given: the loss decides
    (1e-8, 3.0, False, "vanishing", "worse"),       # same spread, loss up 50 %
    (1e-10, 2.0, False, "vanishing", "worse"),      # spread two decades further off
    (1.5, 3.0, False, "vanishing", "worse"),        # balanced but the loss is much worse: not offered
    (1.5, 2.02, False, "vanishing", "no_change"),   # balanced, the loss within the margin
    (1e-8, 1.0, False, "stalled", "helps"),         # a stall is read by the loss
    (1.5, 1.0, True, "vanishing", "diverged"),
])
def test_judge_offers_a_fix_only_when_the_loss_and_the_findings_symptom_improved(spread, loss, diverged, kind,
                                                                                  verdict) -> None:
    assert judge(trial(spread, loss, diverged), trial(1e-8, 2.0), kind).verdict == verdict


@pytest.mark.parametrize(("dead", "verdict"), [(0.17, "helps"), (0.86, "no_change"), (0.97, "no_change")])
def test_a_fix_for_dying_units_helps_only_if_they_stop_dying(dead, verdict) -> None:
    """A halved rate retrained from scratch on dying_relu.json lowered the loss a little while
    86 % of a layer's units still died: the finding remains, so it is not offered."""
    assert judge(trial(1.0, 1.0, dead=dead), trial(1.0, 2.0, dead=0.97), "dead").verdict == verdict


def test_a_lower_loss_within_the_batches_noise_is_no_help() -> None:
    rng = np.random.default_rng(5)
    unchanged = rng.lognormal(np.log(2.0), 0.4, 20)
    level = loss_consistency(20, 20)
    for scale, helps in ((0.9, False), (0.5, True)):
        losses = rng.lognormal(np.log(2.0 * scale), 0.4, 20)
        fixed = trial(1.0, float(np.median(losses)), losses=tuple(losses))
        base = trial(1.0, float(np.median(unchanged)), losses=tuple(unchanged))
        gain = (base.loss_after - fixed.loss_after) / base.loss_after
        # beyond noise: the one-sided Mann-Whitney test of the two samples at 1 %, by SciPy
        p = scipy.stats.mannwhitneyu(losses, unchanged, alternative="less").pvalue
        assert bool(gain > LOSS_MARGIN and p < 0.01) is helps, (scale, gain, p)
        assert (judge(fixed, base).verdict == "helps") is helps
    # the share of pairs the fix must win: SciPy's one-sided 1 % normal quantile over the
    # statistic's spread, and the detector's level for two samples of ten
    for n, m in ((20, 20), (10, 10), (20, 7)):
        spread = math.sqrt((n + m + 1) / (12 * n * m))
        assert loss_consistency(n, m) == pytest.approx(0.5 + scipy.stats.norm.ppf(0.99) * spread, abs=1e-3)
    assert loss_consistency(10, 10) == pytest.approx(RISE_CONSISTENCY, abs=0.005) and level < RISE_CONSISTENCY


def test_on_vanishing_a_matched_init_that_leaves_the_loss_at_chance_is_not_offered() -> None:
    """vanishing.json: "Matched init helped: gradient spread 4e-06 (unchanged run 1.52e-08), loss
    2.31 after 200 steps (unchanged run 2.31)" was offered; ELU + He and batch norm train."""
    trainer, finding = trained_until("vanishing", "vanishing")
    report = try_remedies(trainer, finding, steps=STEPS, seconds=SECONDS)
    by_fix = {t.fix: t for t in report.trials}
    base = report.baselines[True]
    init, elu = by_fix[("init",)], by_fix[("activation",)]
    # the spread moved by more than the margin (what the old rule accepted), yet stays vanishing,
    # and the loss is no lower beyond the batches' noise (SciPy's Mann-Whitney test at 1 %)
    assert math.log10(init.spread / base.spread) > SPREAD_MARGIN and init.spread < 1 / VANISHING_RATIO
    assert scipy.stats.mannwhitneyu(init.losses, base.losses, alternative="less").pvalue > 0.01
    assert init.verdict != "helps" and init not in report.offered
    assert scipy.stats.mannwhitneyu(elu.losses, base.losses, alternative="less").pvalue < 0.01
    assert elu.spread > 1 / VANISHING_RATIO and float(np.median(elu.losses)) < 0.5 * float(np.median(base.losses))
    assert {t.fix for t in report.offered} == {("activation",), ("batch_norm",)}


def test_only_a_rate_change_applies_to_a_run_as_it_goes_on_as_the_app_decides() -> None:
    """The trials' split between the current step and the start follows the app's own rule for
    an edit while a run trains (``core.monitor.hyperparameter_only_change``)."""
    experiment = preset_experiment("exploding")
    data = experiment.to_dict()
    for key in REMEDY_EDITS:
        edited = parse_experiment(apply_remedies(data, (key,)))
        assert hyperparameter_only_change(experiment, edited) is (key in LIVE_REMEDIES), key
    assert FROM_START == set(REMEDY_EDITS) - LIVE_REMEDIES


def test_a_complete_run_tries_even_a_rate_change_from_the_start_as_far_as_it_went() -> None:
    """Train on a complete run starts from fresh weights, so a rate change is tried from the
    start too, as many steps as the run had (more than the trial's minimum)."""
    data = preset_experiment("exploding").to_dict()
    data["training"] = {**data["training"], "epochs": 2}
    trainer = Trainer(parse_experiment(data))
    trainer.fit()
    assert trainer.epoch == 2 and trainer.step > 40
    finding = next(i for i in trainer.health() if i.kind == "exploding")
    report = try_remedies(trainer, dataclasses.replace(finding, remedies=("learning_rate",)), steps=40,
                          seconds=SECONDS)
    (rate,) = report.trials
    assert rate.from_start and rate.start_step == 0 and rate.steps == trainer.step
    assert set(report.baselines) == {True} and report.baselines[True].steps == trainer.step


def test_a_rate_tried_for_dead_units_is_retrained_as_far_as_the_run_went_and_not_offered_while_they_die() -> None:
    """dying_relu.json at its end (step 680): "Halve learning rate" was offered on a trial that
    continued the dead run from step 680, though retraining with it still lost most of a layer's
    units. Tried as applying it asks (from the start, to step 680), its units still die."""
    trainer = Trainer(preset_experiment("dying_relu"))
    trainer.fit()
    finding = next(i for i in trainer.health() if i.kind == "dead")
    report = try_remedies(trainer, dataclasses.replace(finding, remedies=("learning_rate",)), seconds=SECONDS)
    (rate,) = report.trials
    assert rate.from_start and rate.steps == trainer.step == 680
    # the halved rate retrained here for as long: most units of some hidden layer are dead at the end
    again = Trainer(parse_experiment(apply_remedies(trainer.experiment.to_dict(), ("learning_rate",))))
    again.fit(epochs=None, should_stop=lambda: again.step >= rate.steps)
    dead = np.median(again.recorder["dead_fraction"][-20:, :-1], axis=0).max()
    assert dead > DEAD_FRACTION and rate.dead == pytest.approx(dead)
    assert rate.verdict != "helps" and not report.offered


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


def test_gradients_exploding_by_their_size_are_read_by_the_largest_norm() -> None:
    """The detector also calls gradients exploding when one norm passes 1e4 whatever their
    balance: a fix for that finding is read by the largest norm, not by the spread."""
    by_size = HealthIssue("exploding", 2, "h2", 50, "exploding gradients: the gradient norm of h2 reached 3e5",
                          ("clip",), (("grad_norm", 3e5),))
    by_ratio = HealthIssue("exploding", 0, "h0", 50, "exploding gradients: ...", ("clip",), (("spread", 500.0),))
    trainer = Trainer(preset_experiment("exploding"))
    assert symptom_of(trainer, by_size) == "exploding_norm" and symptom_of(trainer, by_ratio) == "exploding"
    base = trial(1.0, 2.0, grad_norm=3e5)
    assert judge(trial(1.0, 1.0, grad_norm=20.0), base, "exploding_norm").verdict == "helps"
    assert judge(trial(1.0, 1.0, grad_norm=5e4), base, "exploding_norm").verdict == "no_change"   # still past 1e4
    assert judge(trial(1.0, 1.0, grad_norm=20.0), base, "exploding").verdict == "no_change"       # same spread
