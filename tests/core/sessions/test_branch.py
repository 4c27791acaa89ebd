"""What-if branches (``core.sessions.branch``): a saved run forked at step K.

The property: with no change, a branch trained on to the end is the original run, bit for
bit; with a change, its history equals the original's up to K and differs after."""

import numpy as np
import pytest

from core import __version__
from core.engine.optimizers import OPTIMIZERS
from core.engine.schedules import SCHEDULES
from core.sessions.branch import branch_trainer, parse_assignment, parse_changes, replay_start
from core.sessions.format import SessionError, load_session
from core.sessions.trainer_io import save_trainer
from core.spec import SpecError, parse_experiment
from core.training import Trainer
from tests.core.sessions.test_session import assert_same_run, resumable_spec


def trained_session(tmp_path, spec: dict, name: str = "run.gwb"):
    trainer = Trainer(parse_experiment(spec))
    trainer.fit()
    path = tmp_path / name
    save_trainer(path, trainer)
    return trainer, load_session(path)


@pytest.mark.parametrize("schedule", SCHEDULES.names())
@pytest.mark.parametrize("optimizer", OPTIMIZERS.names())
def test_a_branch_without_changes_trained_to_the_end_is_the_original_run(tmp_path, optimizer, schedule):
    original, session = trained_session(tmp_path, resumable_spec(optimizer, schedule, epochs=3))
    k = original.step // 2 + 1      # mid-epoch (7 batches an epoch): the data order and masks must replay
    branch = branch_trainer(session, k)
    assert branch.step == k and 0 < branch.batch_index < branch.steps_per_epoch
    branch.fit()
    assert_same_run(original, branch)


def test_a_branch_at_an_epoch_boundary_and_at_zero(tmp_path):
    original, session = trained_session(tmp_path, resumable_spec(epochs=3))
    for k in (0, original.steps_per_epoch, original.step):
        branch = branch_trainer(session, k)
        assert branch.step == k
        branch.fit()
        assert_same_run(original, branch)


def test_a_change_keeps_the_history_up_to_the_step_and_changes_it_after(tmp_path):
    original, session = trained_session(tmp_path, resumable_spec("momentum", "constant", epochs=3))
    k = 10
    branch = branch_trainer(session, k, [("optimizer.learning_rate", 0.1)])
    assert branch.experiment.learning_rate == 0.1
    assert branch.events[-1]["kind"] == "branch" and branch.events[-1]["step"] == k
    branch.fit()
    steps = original.recorder.steps
    upto = int(np.searchsorted(steps, k, side="right"))
    for q in ("loss", "grad_norm", "learning_rate"):
        assert np.array_equal(original.recorder[q][:upto], branch.recorder[q][:upto]), q
    assert not np.array_equal(original.recorder["loss"][upto:], branch.recorder["loss"][upto:])
    assert np.all(branch.recorder["learning_rate"][upto:] == np.float32(0.1))
    # the weights at K were the original's: one step of the two runs starts from them
    assert branch.recorder.steps[upto] == original.recorder.steps[upto]


def test_renaming_the_optimizer_starts_its_slots_fresh(tmp_path):
    original, session = trained_session(tmp_path, resumable_spec("adam", "constant", epochs=2))
    branch = branch_trainer(session, 9, [("optimizer.name", "momentum")])
    assert branch.experiment.optimizer.name == "momentum"
    # Adam's beta_1 etc. went with the rename; momentum keeps its own default
    assert "beta_1" not in branch.experiment.to_dict()["optimizer"]
    state = branch.optimizer.state_dict()
    assert int(state["iterations"]) == 0
    assert all(not np.any(a) for a in state["slots"].values())
    branch.fit()
    assert branch.step == original.step


def test_a_longer_run_replans_the_schedule(tmp_path):
    original, session = trained_session(tmp_path, resumable_spec("sgd", "one_cycle", epochs=2))
    branch = branch_trainer(session, 5, [("training.epochs", 4)])
    assert branch.schedule.total_steps == 4 * branch.steps_per_epoch
    branch.fit()
    assert branch.epoch == 4


@pytest.mark.parametrize("change, message", [
    (("seed", 4), "seed"),
    (("data.validation_split", 0.3), "data"),
    (("training.batch_size", 4), "batch_size"),
    (("model.layers[0].units", 3), "shape"),
])
def test_changes_that_cannot_keep_the_run_are_refused(tmp_path, change, message):
    _, session = trained_session(tmp_path, resumable_spec(epochs=1))
    with pytest.raises(SessionError, match=message):
        branch_trainer(session, 3, [change])


def test_an_invalid_change_names_the_field(tmp_path):
    _, session = trained_session(tmp_path, resumable_spec(epochs=1))
    with pytest.raises(SpecError, match=r"^optimizer.learning_rate: "):
        branch_trainer(session, 3, [("optimizer.learning_rate", -1)])
    with pytest.raises(SpecError, match=r"optimizer.nope does not exist"):
        branch_trainer(session, 3, [("optimizer.nope.x", 1)])


def test_a_step_outside_the_run_is_refused(tmp_path):
    original, session = trained_session(tmp_path, resumable_spec(epochs=1))
    for k in (-1, original.step + 1):
        with pytest.raises(SessionError, match=f"from 0 to {original.step}"):
            branch_trainer(session, k)


def test_a_run_that_does_not_replay_is_refused_where_it_differs(tmp_path):
    """A run edited while it trained (here: its recorded losses changed after step 6) has no
    state at a later step that replaying can rebuild."""
    original, _ = trained_session(tmp_path, resumable_spec("sgd", "constant", epochs=2))
    original.recorder["loss"][original.recorder.steps > 6] += 1.0
    save_trainer(tmp_path / "edited.gwb", original)
    session = load_session(tmp_path / "edited.gwb")
    branch_trainer(session, 6)                      # up to 6 it replays
    with pytest.raises(SessionError, match="different loss at step 7") as refused:
        branch_trainer(session, 7)
    # one message that names the step it can still be branched at and why replays differ
    assert "cannot be branched after step 6" in str(refused.value)
    assert f"this file: {__version__}; this is {__version__}" in str(refused.value)
    assert "live edit" in str(refused.value) and "BLAS" in str(refused.value)


def test_assignments_are_json_or_plain_words():
    assert parse_assignment("optimizer.learning_rate=0.001") == ("optimizer.learning_rate", 0.001)
    assert parse_assignment("model.layers[1].activation=elu") == ("model.layers[1].activation", "elu")
    assert parse_assignment('schedule={"name": "power", "steps": 5}') == ("schedule", {"name": "power", "steps": 5})
    assert parse_assignment("regularization.max_norm=null") == ("regularization.max_norm", None)
    for bad in ("no-equals", "=1", "a..b=1", "x[=1"):
        with pytest.raises(ValueError):
            parse_changes([bad])


# ----------------------------------------------------------------------------- from checkpoints


def checkpointed(spec: dict, every: int = 4, keep: int = 3) -> dict:
    spec["training"]["checkpoints"] = {"every": every, "keep": keep}
    return spec


@pytest.mark.parametrize("schedule", SCHEDULES.names())
@pytest.mark.parametrize("optimizer", OPTIMIZERS.names())
def test_a_branch_from_a_checkpoint_is_the_branch_by_full_replay(tmp_path, optimizer, schedule):
    """21 steps with a copy every 4, at most 3: the session keeps steps 8 and 16, and a branch
    at 11 (mid-epoch, dropout and batch norm on) replays 3 steps from 8 instead of 11 from 0."""
    original, session = trained_session(tmp_path, checkpointed(resumable_spec(optimizer, schedule, epochs=3)))
    assert [s["step"] for s in session.state["checkpoints"]["states"]] == [8, 16]
    k = original.step // 2 + 1
    assert replay_start(session, k) == 8 and replay_start(session, 7) == 0 and replay_start(session, 16) == 16
    quick = branch_trainer(session, k)
    slow = branch_trainer(session, k, from_checkpoint=False)
    assert quick.step == slow.step == k and 0 < quick.batch_index < quick.steps_per_epoch
    assert_same_run(slow, quick, checkpoints=False)
    assert quick.checkpoints.steps == [8] and slow.checkpoints.steps == [4, 8]
    quick.fit()
    slow.fit()
    assert_same_run(original, quick)     # the checkpoints included
    assert_same_run(original, slow)


def test_branches_from_checkpoints_at_every_step_resume_to_the_original(tmp_path):
    original, session = trained_session(tmp_path, checkpointed(resumable_spec("adam", "exponential", epochs=3),
                                                               every=2, keep=4))
    for k in range(original.step + 1):
        branch = branch_trainer(session, k)
        assert branch.step == k
        branch.fit()
        assert_same_run(original, branch)


def test_a_change_from_a_checkpoint_is_the_change_by_full_replay(tmp_path):
    original, session = trained_session(tmp_path, checkpointed(resumable_spec("momentum", "constant", epochs=3)))
    change = [("optimizer.learning_rate", 0.1)]
    quick = branch_trainer(session, 10, change)
    slow = branch_trainer(session, 10, change, from_checkpoint=False)
    assert len(quick.checkpoints) == 0          # the copies were states of the original experiment
    assert_same_run(slow, quick)
    quick.fit()
    slow.fit()
    assert_same_run(slow, quick)
    assert quick.checkpoints.steps and quick.checkpoints.steps[0] > 10
    assert not np.array_equal(original.recorder["loss"], quick.recorder["loss"])


def test_the_replay_from_a_checkpoint_is_checked_from_the_checkpoint_on(tmp_path):
    """Rows before the checkpoint are the file's own (a full replay would refuse the edit at
    step 3, which shows the replay started at the checkpoint); a row after it that the replay
    does not reproduce is refused as before."""
    original, _ = trained_session(tmp_path, checkpointed(resumable_spec("sgd", "constant", epochs=3)))
    steps = original.recorder.steps
    original.recorder["loss"][steps == 3] += 1.0
    save_trainer(tmp_path / "early.gwb", original)
    early = load_session(tmp_path / "early.gwb")
    branch_trainer(early, 11)
    with pytest.raises(SessionError, match="different loss at step 3"):
        branch_trainer(early, 11, from_checkpoint=False)
    original.recorder["loss"][steps == 10] += 1.0
    save_trainer(tmp_path / "late.gwb", original)
    with pytest.raises(SessionError, match="different loss at step 10"):
        branch_trainer(load_session(tmp_path / "late.gwb"), 11)


def test_a_run_trained_on_two_threads_replays_on_one(tmp_path, monkeypatch):
    """OpenBLAS's own two threads round a 128 × 784 by 784 × 300 product differently from one
    thread: a wide run trained while the machine was idle (two threads) was refused when it was
    branched on a busy machine or from the window (one thread). The engine splits its products
    itself, so the thread count changes no number."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((600, 784)).astype(np.float32)
    np.savez(tmp_path / "wide.npz", X=X, y=(X[:, 0] > 0).astype(np.int64))
    spec = {"seed": 1, "data": {"source": "npz", "path": str(tmp_path / "wide.npz"), "validation_split": 0.1},
            "model": {"layers": [{"units": 300, "init": "he_normal"}, {"units": 100, "init": "he_normal"}]},
            "optimizer": {"name": "momentum", "learning_rate": 0.01},
            "training": {"epochs": 3, "batch_size": 128, "checkpoints": {"every": 4, "keep": 3}}}
    monkeypatch.setattr("core.training.choose_blas_threads", lambda widths, batch, reserved=0: 2)
    original, session = trained_session(tmp_path, spec)
    assert original.blas_threads == 2
    monkeypatch.setattr("core.training.choose_blas_threads", lambda widths, batch, reserved=0: 1)
    for k, from_checkpoint in ((original.step - 1, False), (original.step - 1, True), (5, True)):
        branch = branch_trainer(session, k, from_checkpoint=from_checkpoint)
        assert branch.blas_threads == 1
        branch.fit()
        assert_same_run(original, branch)
