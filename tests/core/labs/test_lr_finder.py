"""The learning-rate finder (Smith's range test) on real experiments."""

import math

import numpy as np
import pytest

from core.labs.lr_finder import (
    ExponentialRamp,
    SmoothedLoss,
    lr_range_test,
    lr_range_test_for_trainer,
    with_learning_rate,
    with_one_cycle_peak,
)
from core.presets import default_experiment
from core.spec import parse_experiment
from core.training import Trainer


@pytest.fixture(scope="module")
def default_test():
    return lr_range_test(default_experiment())


def test_default_experiment_suggestion_trains_well(default_test):
    r = default_test
    assert r.reason == "exploded"                       # 10 is far too large: the loss shoots up
    assert r.learning_rates[-1] < 10.0 and r.n_steps < 300
    # The loss at the suggested rate's neighbourhood is well below where it started.
    assert r.smoothed[r.best_index] < 0.3 * r.smoothed[0]
    suggestion = r.suggestion
    # The preset's hand-tuned Nadam rate (0.001, peak 0.003) trains well (test_default_vs_sklearn) ...
    assert 0.1 <= suggestion / 0.001 <= 10
    # ... and so does the suggestion itself: four epochs at a constant rate.
    spec = with_learning_rate(default_experiment().to_dict(), suggestion)
    spec["schedule"] = {"name": "constant"}
    spec["training"]["epochs"] = 4
    trainer = Trainer(parse_experiment(spec))
    trainer.fit()
    assert trainer.evaluate("val")[1] > 0.9
    assert r.steepest_rate is not None and r.steepest_rate < r.loss_minimum_rate


def test_learning_rates_grow_exponentially_from_min_to_max():
    ramp = ExponentialRamp(1e-6, 10.0, 301)
    rates = np.array([ramp(t) for t in range(301)])
    assert rates[0] == pytest.approx(1e-6) and rates[-1] == pytest.approx(10.0)
    np.testing.assert_allclose(rates[1:] / rates[:-1], 10 ** (7 / 300))   # a constant factor per step
    assert ramp(1000) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="max_learning_rate"):
        ExponentialRamp(1.0, 0.5, 10)


def test_smoothing_is_the_bias_corrected_moving_average():
    avg = SmoothedLoss(0.9)
    assert avg.update(5.0) == pytest.approx(5.0)          # no pull towards the initial 0
    values = [avg.update(x) for x in (1.0, 1.0, 1.0)]
    m = 0.9 * (0.9 * (0.9 * 0.5 + 0.1) + 0.1) + 0.1
    assert values[-1] == pytest.approx(m / (1 - 0.9**4))


def test_trainer_weights_and_state_are_unchanged_by_the_finder():
    trainer = Trainer(default_experiment())
    for _ in range(5):
        trainer.train_batch()
    before_arrays, before_state = trainer.state_dict()
    seen = []
    r = lr_range_test_for_trainer(trainer, steps=60, max_learning_rate=0.01, observer=seen.append)
    after_arrays, after_state = trainer.state_dict()
    assert before_arrays.keys() == after_arrays.keys()
    for key, value in before_arrays.items():
        np.testing.assert_array_equal(value, after_arrays[key], err_msg=key)
    assert before_state == after_state
    # The test itself started from the trainer's weights: its first loss is the trained one's, well
    # below the ln 10 ≈ 2.3 of a fresh network.
    assert r.n_steps == 60 and r.reason == "completed" and len(seen) == 60
    assert seen[-1]["step"] == 60 and set(seen[0]) == {"step", "steps", "learning_rate", "loss", "smoothed"}
    fresh = lr_range_test(default_experiment(), steps=3)
    assert r.losses[0] < fresh.losses[0]


def test_should_stop_ends_the_test_early():
    calls = []
    r = lr_range_test(default_experiment(), steps=200, should_stop=lambda: len(calls) >= 25,
                      observer=calls.append)
    assert r.reason == "stopped" and r.n_steps == 25


def test_a_nan_loss_is_a_divergence_not_a_crash():
    spec = default_experiment().to_dict()
    naive = {"units": 50, "init": {"name": "random_normal", "stddev": 1.0}, "activation": "relu"}
    spec["model"]["layers"] = [naive] * 6
    # A factor no finite float32 loss can exceed: the test ends at the NaN, whichever way the
    # rounding sends the loss up first.
    r = lr_range_test(parse_experiment(spec), min_learning_rate=1e-2, max_learning_rate=1e6, steps=100,
                      explode_factor=1e300)
    assert r.reason == "diverged"
    assert np.all(np.isfinite(r.losses))  # the NaN step is not recorded


def test_applying_the_suggestion_to_a_spec():
    spec = default_experiment().to_dict()            # Nadam 0.001, 1cycle peak 0.003
    d = with_learning_rate(spec, 0.01)
    assert d["optimizer"]["learning_rate"] == 0.01
    assert "max_learning_rate" not in d["schedule"]  # 0.003 ≤ 0.01: back to the default 10 × η0
    parse_experiment(d)
    low = with_learning_rate(spec, 1e-4)
    assert low["schedule"]["max_learning_rate"] == 0.003
    peak = with_one_cycle_peak(spec, 0.02)
    assert peak["schedule"]["max_learning_rate"] == 0.02 and peak["optimizer"]["learning_rate"] == 0.001
    below = with_one_cycle_peak(spec, 5e-4)            # the peak must exceed η0: η0 becomes peak / 10
    assert below["optimizer"]["learning_rate"] == pytest.approx(5e-5)
    constant = dict(spec, schedule={"name": "constant"})
    assert with_one_cycle_peak(constant, 0.05)["schedule"] == {"name": "one_cycle", "max_learning_rate": 0.05}
    assert math.isclose(parse_experiment(below).learning_rate, 5e-5)


def test_a_loss_that_never_climbs_gives_no_suggestion_and_says_why():
    """overfitting.json: the training loss falls to 0 across the whole range (a small training
    set is memorized at any rate), so there is no turning point; η = 1 (a tenth of the range's
    end) cuts validation accuracy from 0.90 to 0.36 and must not be suggested."""
    from core.presets import preset_experiment
    r = lr_range_test(preset_experiment("overfitting"))
    assert r.reason == "completed" and r.best_index is not None
    assert r.smoothed[-1] <= 1.3 * r.smoothed[r.best_index]       # it never rose
    assert r.suggestion is None
    assert "did not rise" in r.problem


def curve(smoothed, losses=None, reason="exploded"):
    from core.labs.lr_finder import RangeTest
    smoothed = np.asarray(smoothed, dtype=float)
    return RangeTest(learning_rates=np.geomspace(1e-5, 1.0, len(smoothed)),
                     losses=np.asarray(smoothed if losses is None else losses, dtype=float),
                     smoothed=smoothed, reason=reason, min_learning_rate=1e-5, max_learning_rate=1.0)


def test_a_readable_curve_is_suggested_and_flat_or_noisy_ones_are_not():
    n = 60
    down_up = np.concatenate([np.linspace(2.0, 0.5, 40), np.linspace(0.5, 3.0, n - 40)])
    readable = curve(down_up, reason="completed")
    assert readable.problem is None and readable.suggestion == pytest.approx(readable.learning_rates[39] / 10)
    flat = curve(np.concatenate([np.linspace(2.0, 1.9, 40), np.linspace(1.9, 3.0, n - 40)]))
    assert flat.suggestion is None and "too flat" in flat.problem
    rng = np.random.default_rng(0)
    noisy = curve(down_up, losses=down_up + rng.normal(0, 1.5, n))
    assert noisy.suggestion is None and "too noisy" in noisy.problem
    still_falling = curve(np.linspace(2.0, 0.1, n), reason="completed")
    assert still_falling.suggestion is None and "end of the range" in still_falling.problem


def test_a_checked_suggestion_trains_and_a_harmful_rate_fails_its_trial(default_test):
    from core.labs.lr_finder import try_rate
    r = lr_range_test(default_experiment(), check_suggestion=True)
    assert r.suggestion is not None and r.trial is not None and r.trial.learning_rate == r.suggestion
    assert r.trial.sound and r.trial.steps == 200 and r.trial.loss_after < r.trial.loss_before
    harmful = try_rate(default_experiment(), 50.0, steps=100, seconds=60.0)
    assert not harmful.sound
    # a suggestion whose trial failed is not offered, and the reason says so
    r.trial = harmful
    assert r.suggestion is None and "a trial of" in r.problem
