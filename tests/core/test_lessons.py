"""The lessons' checks on real short runs of their presets (bundled digits data), each also on a
run where the effect must not appear; and the guide's lesson blocks made from the same source."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

import numpy as np
import pytest

from core.lessons import (
    LESSONS,
    RunRecord,
    check_clipping,
    check_dying_units,
    check_initialization,
    check_optimizer,
    check_overfitting,
    check_schedule,
    check_transfer,
    check_vanishing,
    guide_block,
    scratch_twin,
    times,
    update_guide,
)
from core.presets import PRESETS
from core.spec import load_experiment, parse_experiment
from core.training import Trainer
from core.zoo import EXAMPLES_DIR

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "guide"


def run(key: str, edit=None, epochs: int | None = None) -> RunRecord:
    spec = PRESETS[key][1]()
    if edit is not None:
        edit(spec)
    if epochs is not None:
        spec["training"]["epochs"] = epochs
    trainer = Trainer(parse_experiment(spec))
    trainer.fit()
    return RunRecord.from_trainer(trainer)


def test_times_reads_like_the_book():
    assert times(7.8e7) == "7.8e7"
    assert times(3.44) == "3.4"
    assert times(42.0) == "42"


def test_vanishing_network_is_found_and_its_fix_is_not():
    record = run("vanishing", epochs=3)
    verdict = check_vanishing(record)
    # An independent measure: the lowest and the top hidden layer's median norms of the last epoch.
    g = record.history["grad_norm"]
    last = g[-record.steps_per_epoch:]
    expected = np.median(last[:, 9]) / np.median(last[:, 0])
    assert verdict.appeared and verdict.value == pytest.approx(expected) and verdict.value > 1e4
    assert verdict.text.startswith("dense_0's gradient is") and "smaller than dense_9's" in verdict.text
    fixed = check_vanishing(run("he_elu", epochs=3))
    assert not fixed.appeared and "within" in fixed.text


def test_exploding_network_reads_as_exploding():
    verdict = check_vanishing(run("exploding", epochs=2))
    assert verdict.appeared and verdict.value < 1e-2 and "larger than dense_9's" in verdict.text


def test_initialization_check_sees_every_layer_learn_only_with_he_init():
    good = check_initialization(run("he_elu", epochs=3))
    assert good.appeared and 1 <= good.value <= 10
    bad = check_initialization(run("vanishing", epochs=2))
    assert not bad.appeared and bad.value > 1e4


def test_dying_relus_are_found_and_a_smaller_step_keeps_them_alive():
    dying = check_dying_units(run("dying_relu", epochs=10))
    assert dying.appeared and dying.value >= 0.5 and "dead" in dying.text

    def smaller_step(spec):
        spec["optimizer"]["learning_rate"] = 0.003
    alive = check_dying_units(run("dying_relu", smaller_step, epochs=10))
    assert not alive.appeared and alive.value < 0.5


def test_self_normalization_holds_at_the_start_and_its_break_during_training_is_found():
    check = LESSONS["self_normalization"].check
    record = run("selu", epochs=3)
    held = check(record)
    std = np.asarray(record.history["activation_std"])[:, :-1]
    assert held.appeared and 1 / 1.25 <= held.value <= 1.25
    assert np.all(np.abs(np.log(std[0])) <= math.log(1.25))           # measured here as well
    broke = np.flatnonzero((np.abs(np.log(std)) > math.log(1.5)).any(axis=1))
    if len(broke):                                                      # the step it names is the first one
        assert f"at step {int(record.history['step'][broke[0]]):,} " in held.text
    else:
        assert "throughout" in held.text

    def ordinary_dropout(spec):
        for row in spec["model"]["layers"]:
            row["dropout_type"] = "standard"
            row["dropout"] = 0.2
    broken = check(run("selu", ordinary_dropout, epochs=1))
    assert not broken.appeared and broken.value > 1.25 and "alpha dropout" in broken.text

    def raw_inputs(spec):
        spec["data"]["standardize"] = False
    assert not check(run("selu", raw_inputs, epochs=1)).appeared


def test_batch_norm_lesson_learns_where_the_vanishing_network_does_not():
    learned = LESSONS["batch_norm"].check(run("batch_norm"))
    assert learned.appeared and learned.value >= 0.5 and "chance is 10 %" in learned.text
    stuck = LESSONS["batch_norm"].check(run("vanishing", epochs=3))
    assert not stuck.appeared and stuck.value < 0.2


def test_clipping_keeps_the_run_finite_and_without_it_the_check_reports_the_divergence():
    record = run("clipping", epochs=2)
    verdict = check_clipping(record)
    above = (record.history["grad_norm"] > 1.0).any(axis=1).mean()
    assert verdict.appeared and verdict.value == pytest.approx(above) and verdict.value > 0

    def unclipped(spec):
        spec["regularization"]["gradient_clip"] = {"mode": "none", "threshold": 1.0}
    diverged = check_clipping(run("clipping", unclipped, epochs=2))
    assert not diverged.appeared and math.isnan(diverged.value) and "diverged" in diverged.text


def test_transfer_gain_is_measured_against_the_same_network_from_scratch():
    experiment = load_experiment(EXAMPLES_DIR / "transfer_digits_5-9.json")
    twin = scratch_twin(experiment)
    assert twin.model.transfer is None and twin.model.layers == experiment.model.layers
    assert twin.data == experiment.data and twin.seed == experiment.seed
    trainer = Trainer(experiment, EXAMPLES_DIR)
    trainer.fit(epochs=3)
    record = RunRecord.from_trainer(trainer, EXAMPLES_DIR)
    scratch = Trainer(twin, EXAMPLES_DIR)
    scratch.fit(epochs=3)
    expected = trainer.history["val_accuracy"][1] - scratch.history["val_accuracy"][1]
    verdict = check_transfer(record)        # trains its own twin
    assert verdict.value == pytest.approx(expected)
    assert verdict.appeared == (expected > 0)
    # Given a worse "scratch" history, the gain is the difference to it.
    fake = {"val_accuracy": np.asarray(trainer.history["val_accuracy"]) - 0.25}
    assert check_transfer(record, fake).value == pytest.approx(0.25)
    none = check_transfer(RunRecord.from_trainer(scratch, EXAMPLES_DIR))
    assert not none.appeared and "reuses no layers" in none.text


def test_plain_sgd_is_slow_and_nadam_is_not():
    slow = check_optimizer(run("plain_sgd", epochs=5))
    assert slow.appeared and slow.value < 0.8

    def nadam(spec):
        spec["optimizer"] = {"name": "nadam", "learning_rate": 0.001}
    fast = check_optimizer(run("plain_sgd", nadam, epochs=5))
    assert not fast.appeared and fast.value >= 0.8


def test_schedule_check_finds_the_plateau_of_a_constant_rate():
    record = run("constant_lr")
    verdict = check_schedule(record)
    best = int(np.argmin(record.history["val_loss"])) + 1
    assert verdict.appeared and verdict.value == best and "constant learning rate of 0.01" in verdict.text
    # A run still improving at its end is not a plateau.
    improving = copy.deepcopy(dict(record.history))
    improving["val_loss"] = np.linspace(1.0, 0.1, len(record.history["val_loss"]))
    still = check_schedule(RunRecord(record.experiment, improving, record.layer_names, (), record.steps_per_epoch))
    assert not still.appeared and still.value == len(improving["val_loss"])


def test_overfitting_gap_is_training_minus_validation_accuracy():
    record = run("overfitting", epochs=30)
    verdict = check_overfitting(record)
    gap = record.history["accuracy"][-1] - record.history["val_accuracy"][-1]
    assert verdict.appeared and verdict.value == pytest.approx(gap) and gap >= 0.05
    close = {**record.history, "accuracy": np.array([0.95]), "val_accuracy": np.array([0.93])}
    fitted = check_overfitting(RunRecord(record.experiment, close, record.layer_names))
    assert not fitted.appeared and fitted.value == pytest.approx(0.02) and "2-point gap" in fitted.text


def test_a_run_without_epochs_is_not_judged():
    trainer = Trainer(parse_experiment(PRESETS["vanishing"][1]()))
    verdict = check_vanishing(RunRecord.from_trainer(trainer))
    assert not verdict.appeared and "Train" in verdict.text


@pytest.mark.parametrize("key", list(LESSONS))
def test_every_lesson_starts_from_a_bundled_example_and_names_a_dock(key):
    lesson = LESSONS[key]
    assert (EXAMPLES_DIR / lesson.file_name).is_file()
    assert lesson.preset is None or lesson.preset in PRESETS
    assert re.search(r"(dock|plot in the middle|plot)", lesson.look)
    assert 2 <= lesson.look.count(". ") + 1 <= 4, "two or three sentences"
    assert (GUIDE / lesson.guide).is_file()


@pytest.mark.parametrize("key", list(LESSONS))
def test_the_guide_holds_each_lesson_block_as_generated(key):
    lesson = LESSONS[key]
    text = (GUIDE / lesson.guide).read_text(encoding="utf-8")
    assert guide_block(lesson) in text, f"run `python -m core.lessons docs/guide` ({lesson.guide} is stale)"


def test_update_guide_rewrites_a_stale_block(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("intro\n<!-- lesson: vanishing -->\nold steps\n<!-- /lesson -->\nrest\n", encoding="utf-8")
    assert update_guide(tmp_path) == [page]
    assert page.read_text(encoding="utf-8") == f"intro\n{guide_block(LESSONS['vanishing'])}\nrest\n"
    assert update_guide(tmp_path) == []


@pytest.mark.parametrize("seed", [1, 3])
@pytest.mark.parametrize("key", [key for key, lesson in LESSONS.items() if lesson.preset is not None])
def test_each_lesson_shows_its_case_whatever_the_seed(key, seed):
    """A lesson's example must show its case on other seeds too, not only on the shipped one:
    rounding differs between machines (OpenBLAS's kernels), and an example on the edge of its
    case flips with it. dying_relu.json, at momentum 0.1, diverged instead of killing its units
    in 4 of 12 runs (six seeds, two kernels), the shipped seed on the Haswell kernel among them."""
    lesson = LESSONS[key]

    def reseeded(spec):
        spec["seed"] = seed
    verdict = lesson.check(run(lesson.preset, reseeded))
    assert verdict.appeared, verdict.text
