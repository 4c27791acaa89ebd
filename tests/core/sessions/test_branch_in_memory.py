"""Branching a run that is in memory (the window's): ``session_of`` turns a trainer's state into
the session a file of it would load as, and ``branch_reusing_weights`` starts a structurally
changed branch from the fork's weights where their shapes fit."""

import numpy as np
import pytest

from core.sessions.branch import branch_reusing_weights, branch_trainer
from core.sessions.format import SessionError, load_session
from core.sessions.trainer_io import restore_trainer, save_trainer, session_of, trainer_arrays
from core.spec import SpecError, parse_experiment
from core.training import Trainer
from tests.core.sessions.test_session import assert_same_run, resumable_spec


def half_trained(spec: dict) -> Trainer:
    trainer = Trainer(parse_experiment(spec))
    half = trainer.steps_per_epoch * trainer.experiment.training.epochs // 2 + 1
    trainer.fit(epochs=None, should_stop=lambda: trainer.step >= half)
    return trainer


def test_session_of_is_what_a_saved_file_loads_as(tmp_path):
    # with checkpoints (every 4 steps), as a window's run past step 200 has them
    trainer = half_trained(resumable_spec(epochs=4, checkpoints={"every": 4, "keep": 3}))
    arrays, state = trainer.state_dict()
    save_trainer(tmp_path / "run.gwb", trainer)
    from_file = load_session(tmp_path / "run.gwb")
    in_memory = session_of(trainer.experiment, arrays, state)
    assert in_memory.path is None and in_memory.experiment == from_file.experiment
    assert from_file.checkpoints and state["checkpoints"]["states"]
    for part in ("weights", "history", "optimizer", "checkpoints"):
        mine, theirs = getattr(in_memory, part), getattr(from_file, part)
        assert sorted(mine) == sorted(theirs), part
        for key in theirs:
            assert np.array_equal(mine[key], theirs[key], equal_nan=theirs[key].dtype.kind == "f"), (part, key)
    assert sorted(in_memory.best_weights or {}) == sorted(from_file.best_weights or {})
    assert sorted(trainer_arrays(in_memory)) == sorted(arrays)
    # restored from memory and trained on, it is the run trained on
    restored = restore_trainer(in_memory)
    trainer.fit()
    restored.fit()
    assert_same_run(trainer, restored)


def test_a_branch_of_an_in_memory_run_keeps_its_history_to_the_fork():
    trainer = half_trained(resumable_spec("momentum", "constant", epochs=4, checkpoints={"every": 4, "keep": 3}))
    session = session_of(trainer.experiment, *trainer.state_dict())
    k = 5                                          # replayed from the checkpoint at step 4
    branch = branch_trainer(session, k, [("optimizer.learning_rate", 0.05)])
    branch.fit()
    upto = int(np.searchsorted(branch.recorder.steps, k, side="right"))
    assert np.array_equal(branch.recorder["loss"][:upto], trainer.recorder["loss"][:upto])
    assert not np.array_equal(branch.recorder["loss"][upto:trainer.recorder.size],
                              trainer.recorder["loss"][upto:])


def test_a_structural_branch_reuses_every_array_whose_shape_still_fits():
    spec = resumable_spec("adam", "constant", epochs=4)
    trainer = half_trained(spec)
    session = session_of(trainer.experiment, *trainer.state_dict())
    k = 6
    at_fork = branch_trainer(session, k).network.state()          # the run's weights at step k, replayed
    branch, copied, fresh = branch_reusing_weights(session, k, [("model.layers[1].units", 9)])
    assert branch.experiment.model.layers[1].units == 9
    assert branch.step == 0 and branch.recorder.size == 0          # a new run: its own history and optimizer
    assert "weights of step 6" in branch.events[-1]["message"]
    new_shapes = {key: a.shape for key, a in branch.network.state().items()}
    # layer 0 keeps its shape; layer 1 (5 → 9 units) and the output's kernel (5 → 9 inputs) do not
    assert "layers.0.kernel" in copied and "layers.0.gamma" in copied and "output.bias" in copied
    assert {"layers.1.kernel", "layers.1.bias", "output.kernel"} <= set(fresh)
    assert sorted(copied + fresh) == sorted(new_shapes)
    state = branch.network.state()
    for key in copied:
        assert np.array_equal(state[key], at_fork[key]), key
    fresh_init = Trainer(branch.experiment).network.state()        # what the changed experiment draws
    for key in fresh:
        assert at_fork.get(key) is None or at_fork[key].shape != new_shapes[key]
        assert np.array_equal(state[key], fresh_init[key]), key
    branch.fit()
    assert branch.step == branch.steps_per_epoch * 4


def test_a_structural_branch_refuses_a_bad_field_and_a_run_that_does_not_replay():
    trainer = half_trained(resumable_spec(epochs=4))
    session = session_of(trainer.experiment, *trainer.state_dict())
    with pytest.raises(SpecError, match=r"model.layers\[7\]"):
        branch_reusing_weights(session, 3, [("model.layers[7].units", 4)])
    with pytest.raises(SessionError, match="must be a step of the run"):
        branch_reusing_weights(session, trainer.step + 1, [("model.layers[1].units", 4)])
