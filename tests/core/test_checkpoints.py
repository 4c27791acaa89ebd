"""Checkpoints (``core.checkpoints`` and the trainer's use of them): the thinning rule keeps the
multiples of the smallest interval N · 2^k that needs at most ``keep`` copies, and restoring a
copy and training on repeats the run bit for bit."""

import math

import numpy as np
import pytest

from core.checkpoints import Checkpoint, CheckpointLog, interval_problem
from core.spec import CheckpointsSpec, SpecError, parse_experiment
from core.training import Trainer
from tests.core.sessions.test_session import assert_same_run, resumable_spec


def expected_steps(step: int, every: int, keep: int) -> list[int]:
    """The rule written out directly: I = every · 2^k for the least k with ⌊step / I⌋ ≤ keep;
    the copies are I, 2I, ... ≤ step."""
    interval = every
    while step // interval > keep:
        interval *= 2
    return list(range(interval, step + 1, interval))


@pytest.mark.parametrize("every, keep", [(1, 1), (1, 2), (3, 4), (5, 5), (2, 7), (10, 16)])
def test_the_log_holds_the_multiples_of_the_smallest_interval_that_fits(every, keep):
    log = CheckpointLog(every, keep)
    for step in range(1, 700):
        if log.due(step):
            log.add(Checkpoint(step, {}, {}))
        assert log.steps == expected_steps(step, every, keep), step
        assert len(log) <= keep
        if step >= every * keep:   # once the run is long enough, at least half the budget is used
            assert len(log) >= keep // 2


def test_keep_zero_keeps_nothing_and_the_nearest_copy_is_found():
    log = CheckpointLog(2, 0)
    assert not any(log.due(s) for s in range(1, 50))
    log = CheckpointLog(2, 10)
    for step in range(1, 21):
        if log.due(step):
            log.add(Checkpoint(step, {}, {}))
    assert log.at_or_before(1) is None
    assert log.at_or_before(7).step == 6 and log.at_or_before(8).step == 8
    log.drop_after(9)
    assert log.steps == [2, 4, 6, 8]


def test_interval_problems_are_named():
    spec = CheckpointsSpec(every=3, keep=2)
    assert interval_problem(spec, 12, [12, 24]) is None
    assert "power of two" in interval_problem(spec, 9, [9])
    assert "power of two" in interval_problem(spec, 2, [])
    assert "keep allows 2" in interval_problem(spec, 3, [3, 6, 9])
    assert "increasing multiples" in interval_problem(spec, 6, [12, 6])
    assert "increasing multiples" in interval_problem(spec, 6, [6, 8])


# ----------------------------------------------------------------------------- the spec field


def with_checkpoints(value) -> dict:
    spec = resumable_spec()
    spec["training"]["checkpoints"] = value
    return spec


def test_the_default_is_left_out_of_the_canonical_json():
    default = parse_experiment(resumable_spec())
    assert "checkpoints" not in default.to_dict()["training"]
    assert default.training.checkpoints == CheckpointsSpec(every=200, keep=10)
    assert parse_experiment(with_checkpoints({"every": 200, "keep": 10})).to_dict() == default.to_dict()
    changed = parse_experiment(with_checkpoints({"every": 50}))
    assert changed.to_dict()["training"]["checkpoints"] == {"every": 50, "keep": 10}
    assert parse_experiment(changed.to_dict()) == changed


@pytest.mark.parametrize("value, message", [
    ({"every": 0}, r"^training.checkpoints.every: must be a positive integer, got 0"),
    ({"every": 2.5}, r"^training.checkpoints.every: must be an integer"),
    ({"keep": -1}, r"^training.checkpoints.keep: must be an integer >= 0, got -1"),
    ({"keep": 101}, r"^training.checkpoints.keep: must be an integer <= 100"),
    ({"often": 3}, r"^training.checkpoints.often: unknown field; allowed fields here: every, keep"),
    (5, r"^training.checkpoints: must be a JSON object"),
])
def test_bad_checkpoint_settings_are_refused_naming_the_field(value, message):
    with pytest.raises(SpecError, match=message):
        parse_experiment(with_checkpoints(value))


# ----------------------------------------------------------------------------- in the trainer


def spec_with(every: int = 3, keep: int = 4, **kwargs) -> dict:
    spec = resumable_spec(**kwargs)
    spec["training"]["checkpoints"] = {"every": every, "keep": keep}
    return spec


def test_the_trainer_keeps_copies_that_training_never_writes():
    trainer = Trainer(parse_experiment(spec_with(epochs=5)))
    trainer.fit()
    assert trainer.checkpoints.steps == expected_steps(trainer.step, 3, 4)
    first = trainer.checkpoints.entries[0]
    assert all(not a.flags.writeable for a in first.arrays.values())
    assert not any(k.startswith(("split/", "history/")) for k in first.arrays)
    assert "epoch_seconds" not in first.state
    # what a save holds shares the copies instead of copying them again
    arrays, state = trainer.state_dict()
    key = f"checkpoints/{first.step}/weights/layers.0.kernel"
    assert arrays[key] is first.arrays["weights/layers.0.kernel"]
    assert [s["step"] for s in state["checkpoints"]["states"]] == trainer.checkpoints.steps
    assert "checkpoints" not in trainer.state_dict(checkpoints=False)[1]
    assert "checkpoints" not in trainer.state_dict(history=False)[1]


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nadam"])
def test_restoring_a_checkpoint_and_training_on_is_the_same_run(optimizer):
    spec = parse_experiment(spec_with(optimizer=optimizer, epochs=4))
    straight = Trainer(spec)
    straight.fit()
    for checkpoint in list(straight.checkpoints):
        again = Trainer(spec)
        arrays, state = straight.state_dict()
        again.load_state_dict(arrays, state)
        again.restore_checkpoint(again.checkpoints.at_or_before(checkpoint.step))
        assert again.step == checkpoint.step and again.recorder.size == checkpoint.state["recorded_steps"]
        assert again.checkpoints.steps[-1] == checkpoint.step
        again.fit()
        assert_same_run(straight, again)


def test_a_roll_back_forgets_the_copies_of_the_path_it_left_and_a_checkpoint_keeps_the_roll_back_point():
    """A run that diverges and rolls back: the copies taken between the start of the epoch and
    the divergence are of a path the run left; those kept restore and replay it bit for bit,
    the roll-back included (a mid-epoch copy holds the start of its epoch)."""
    spec = spec_with(every=2, keep=50, optimizer="sgd", schedule="constant", epochs=3, on_nan="rollback",
                     max_rollbacks=6)
    spec["optimizer"]["learning_rate"] = 80.0
    spec["regularization"] = {}
    straight = Trainer(parse_experiment(spec))
    straight.fit()
    assert straight.rollbacks > 0, "the run was meant to diverge and roll back"
    # A copy at every second step of the path the run kept, up to its end (a run that still
    # diverged after its last roll-back, as the rounding decides at a rate of 80, may end one
    # step after its last copy: the weights that overflowed are not copied).
    steps = straight.checkpoints.steps
    assert steps == list(range(2, steps[-1] + 1, 2)) and straight.step - 2 < steps[-1] <= straight.step
    mid_epoch = [c for c in straight.checkpoints if "rollback" in c.state]
    assert mid_epoch
    arrays, state = straight.state_dict()
    for checkpoint in [mid_epoch[0], straight.checkpoints.entries[0]]:
        again = Trainer(parse_experiment(spec))
        again.load_state_dict(arrays, state)
        again.restore_checkpoint(again.checkpoints.at_or_before(checkpoint.step))
        again.fit()
        assert_same_run(straight, again)


def test_a_saved_state_whose_checkpoints_do_not_fit_is_refused():
    trainer = Trainer(parse_experiment(spec_with(epochs=2)))
    trainer.fit()
    arrays, state = trainer.state_dict()
    fresh = Trainer(trainer.experiment)
    step = trainer.checkpoints.steps[0]

    def refused(arrays, state, message):
        with pytest.raises(ValueError, match=message):
            fresh.load_state_dict(arrays, state)
        assert fresh.step == 0 and len(fresh.checkpoints) == 0   # nothing changed

    log = state["checkpoints"]
    refused(arrays, {**state, "checkpoints": {**log, "interval": 5}}, "power of two")
    refused(arrays, {**state, "checkpoints": {"interval": log["interval"]}}, "interval and a list")
    late = [{**s, "step": s["step"] + 1000 * log["interval"]} for s in log["states"]]
    refused(arrays, {**state, "checkpoints": {**log, "states": late}}, "after the run's step")
    bad = {k: (a[:-1] if k == f"checkpoints/{step}/weights/layers.0.kernel" else a) for k, a in arrays.items()}
    refused(bad, state, f"checkpoint at step {step}: weights do not fit")
    extra = {**arrays, f"checkpoints/{step + 1}/weights/layers.0.kernel": arrays["weights/layers.0.kernel"]}
    refused(extra, state, f"arrays of step {step + 1}, which has no state")
    odd = {**arrays, f"checkpoints/{step}/history/loss": np.zeros(3)}
    refused(odd, state, "not a checkpoint array")


def test_memory_is_bounded_by_keep():
    trainer = Trainer(parse_experiment(spec_with(every=1, keep=3, epochs=6)))
    trainer.fit()
    per_copy = sum(a.nbytes for a in trainer.network.state().values())
    assert len(trainer.checkpoints) <= 3
    # each copy: weights, best weights, two Nadam slots per trainable array (+ a small data order)
    assert trainer.checkpoints.nbytes <= 3 * (4 * per_copy + 8 * len(trainer.split.train) + 1024)
    assert math.log2(trainer.checkpoints.interval).is_integer()
