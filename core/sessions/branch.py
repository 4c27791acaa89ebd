"""What-if branches: a saved run forked at an optimizer step, optionally with changed settings.

A run is deterministic given its experiment (the seed fixes the initial weights, the split,
every epoch's data order and every dropout mask), so its state at any step can be rebuilt by
training again up to that step from any earlier state of it: from the nearest checkpoint at
or before the step that the session holds (``training.checkpoints``, ``core.checkpoints``), or
from the start when there is none. ``branch_trainer`` does that replay and then checks it:
every diagnostics row the saved run recorded from the checkpoint up to the step must come out
equal, bit for bit. A run that was changed while it trained (a live edit in the window) does
not replay, and is refused rather than branched from a state it never had.

Changes are given as field paths of the experiment JSON (``optimizer.learning_rate``,
``schedule.name``, ``regularization.l2``, ``model.layers[2].activation``, ...). They apply
from the branch step on, to the replayed weights; what depends on a changed component
starts fresh there:

* a renamed optimizer starts with empty slots (its step count at 0);
* a schedule of another kind, or whose state no longer fits, starts from its own beginning
  (it is still a function of the run's step, so a 1cycle continues where the step is);
* ``training.epochs`` re-plans the schedule for the new length.

Changes that would alter the data (``seed``, ``data.*``), the number of steps per epoch
(``training.batch_size``) or any parameter's shape cannot keep the run's state and are
refused with the reason; start a new experiment with ``model.transfer`` for those.

With no changes the branch is the saved run at that step, so trained on to the end it equals
the original run bit for bit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core import __version__
from core.engine.diagnostics import DiagnosticsRecorder
from core.spec import (
    Experiment,
    FieldPathError,
    SpecError,
    apply_changes,
    format_path,
    parse_experiment,
    parse_path,
)
from core.training import Trainer

from .format import Session, SessionError
from .trainer_io import restore_trainer, session_base_dir

Change = tuple[str, Any]   # (field path as written, new value)

# Diagnostics compared between the saved run and its replay: what the trainer computed, never
# what a clock measured.
REPLAYED_QUANTITIES = ("loss", "learning_rate", "grad_norm", "update_ratio", "weight_norm")


def parse_assignment(text: str) -> Change:
    """``"optimizer.learning_rate=0.001"`` → ``("optimizer.learning_rate", 0.001)``.

    The value is read as JSON (numbers, ``true``, ``null``, ``"text"``, lists, objects); a
    value that is not JSON is taken as a plain string, so ``activation=elu`` works."""
    path, sep, raw = text.partition("=")
    path = path.strip()
    if not sep or not path:
        raise ValueError(f"must be PATH=VALUE such as optimizer.learning_rate=0.001, got {text!r}")
    parse_path(path)   # a malformed path is refused here, with where it went wrong
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return path, value


def replay_start(session: Session, at_step: int) -> int:
    """The step a branch at ``at_step`` replays from: the session's latest checkpoint at or
    before it, else 0 (the start)."""
    log = session.state.get("checkpoints")
    steps = [s["step"] for s in log["states"]] if isinstance(log, dict) else []
    return max((s for s in steps if s <= at_step), default=0)


def _replay_to(session: Session, at_step: int, base_dir: str | Path | None, from_checkpoint: bool) -> Trainer:
    """The saved run's trainer rebuilt at its nearest checkpoint (or its start) and trained on
    to step ``at_step``."""
    where = session.path or "session"
    start = replay_start(session, at_step) if from_checkpoint else 0
    if start > 0:
        trainer = restore_trainer(session, base_dir)
        checkpoint = trainer.checkpoints.at_or_before(at_step)
        assert checkpoint is not None and checkpoint.step == start
        try:
            trainer.restore_checkpoint(checkpoint)
        except ValueError as exc:
            raise SessionError(f"{where}: the checkpoint at step {start} does not fit the run's experiment (was it "
                               f"changed while it trained?): {exc}") from None
    else:
        try:
            trainer = Trainer(session.experiment, base_dir)
        except SpecError as exc:
            raise SessionError(f"{where}: cannot rebuild the run to replay it: {exc}") from None
    reason = trainer.fit(epochs=None, should_stop=lambda: trainer.step >= at_step) if at_step > 0 else ""
    if trainer.step != at_step:
        raise SessionError(f"{where}: replaying the run ended at step {trainer.step} ({reason}) before step "
                           f"{at_step}; it was trained differently from its experiment and cannot be branched")
    _check_replay(session, trainer, at_step)
    return trainer


def _check_replay(session: Session, trainer: Trainer, at_step: int) -> None:
    """Every row the saved run recorded up to ``at_step`` must equal the replay's, bit for bit."""
    where = session.path or "session"
    if "step" not in session.history or "layer_names" not in session.history:
        return   # nothing recorded to compare (a run saved before its first step)
    saved = DiagnosticsRecorder.from_arrays(session.history)
    replayed = trainer.recorder
    n = int(np.searchsorted(saved.steps, at_step, side="right"))
    if n == 0:
        return
    if replayed.size < n or not np.array_equal(replayed.steps[:n], saved.steps[:n]):
        raise SessionError(f"{where}: replaying the run does not record the same steps as the saved run up to "
                           f"step {at_step}; it cannot be branched")
    for quantity in REPLAYED_QUANTITIES:
        mine, theirs = replayed[quantity][:n], saved[quantity][:n]
        same = (mine == theirs) | (np.isnan(mine) & np.isnan(theirs))
        rows = same.reshape(n, -1).all(axis=1)
        if not rows.all():
            step = int(saved.steps[int(np.argmin(rows))])
            raise SessionError(
                f"{where}: replaying the run from its start gives a different {quantity} at step {step} than "
                f"the saved run recorded; it cannot be branched after step {step - 1}. A replay differs where "
                "the run was changed while it trained (a live edit in the window), or where it was trained by "
                f"another version of Gradient Workbench (this file: {session.manifest.get('app_version', '?')}; "
                f"this is {__version__}) or on a machine whose BLAS rounds the last bits otherwise")


def _refuse_data_changes(old: Experiment, new: Experiment) -> None:
    if old.seed != new.seed:
        raise SessionError("seed: a branch keeps the run's weights, data split and data order; a new seed "
                           "starts a new run instead")
    if old.data != new.data:
        raise SessionError("data: a branch keeps the run's data split and order; changing the data starts a "
                           "new run instead (reuse the weights with model.transfer)")
    if old.training.batch_size != new.training.batch_size:
        raise SessionError("training.batch_size: a branch continues the run's epoch where it is, so the "
                           "number of steps per epoch cannot change")


def _check_within_plan(at_step: int, steps_per_epoch: int, experiment: Experiment, run_steps: int) -> None:
    """A changed plan (``training.epochs``) must still reach the branch step: a branch past the
    end of its own plan is a finished run whose schedule ran out, which ``resume`` cannot continue."""
    epochs = experiment.training.epochs
    last = steps_per_epoch * epochs
    if at_step <= last:
        return
    needed = -(-at_step // steps_per_epoch)   # the epochs whose steps reach at_step
    raise SessionError(f"--at-step: step {at_step} is past the end of the changed run's plan (training.epochs "
                       f"{epochs} × {steps_per_epoch} steps an epoch ends at step {last}); with these changes "
                       f"branch at a step from 0 to {min(last, run_steps)}, or set training.epochs to at least "
                       f"{needed}")


def branch_trainer(session: Session, at_step: int, changes: Sequence[Change] = (),
                   base_dir: str | Path | None = None, *, from_checkpoint: bool = True) -> Trainer:
    """The run of ``session`` at optimizer step ``at_step``, with ``changes`` applied from there.

    The state at ``at_step`` is replayed from the session's nearest checkpoint at or before
    it (``replay_start``), or from the start with ``from_checkpoint=False``: the two give the
    same trainer, bit for bit (the checkpoints it holds aside: a branch replayed from a
    checkpoint keeps the session's, thinned as they were at its end). With no changes the
    trainer keeps the run's checkpoints up to ``at_step``; with changes it starts its own.

    Raises ``SessionError`` when the step is out of range, the run does not replay, or a
    change cannot keep the run's state; ``SpecError`` (naming the field) when the changed
    experiment is invalid."""
    where = session.path or "session"
    steps = session.state.get("step")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise SessionError(f"{where}: state.json holds no valid step count")
    if isinstance(at_step, bool) or not isinstance(at_step, int) or not 0 <= at_step <= steps:
        raise SessionError(f"--at-step: must be a step of the run, from 0 to {steps}, got {at_step!r}")
    if base_dir is None:
        recorded = session.state.get("base_dir")
        base_dir = recorded if isinstance(recorded, str) and Path(recorded).is_dir() else (
            session.path.parent if session.path else None)
    experiment = None
    if changes:
        # Checked before the replay, which can take minutes: a bad change is refused at once.
        try:
            edited = apply_changes(session.experiment.to_dict(), [(parse_path(p), v) for p, v in changes])
        except FieldPathError as exc:
            raise SpecError(changes[exc.index][0], str(exc)) from None
        experiment = parse_experiment(edited)
        plan = session.state.get("schedule_plan")
        recorded_steps = plan.get("steps_per_epoch") if isinstance(plan, dict) else None
        if isinstance(recorded_steps, int) and not isinstance(recorded_steps, bool) and recorded_steps > 0:
            _check_within_plan(at_step, recorded_steps, experiment, steps)
    trainer = _replay_to(session, at_step, base_dir, from_checkpoint)
    if experiment is None or experiment == session.experiment:
        return trainer
    # again with the replayed run's own count (the file's record is only a shortcut, it may be absent)
    _check_within_plan(at_step, trainer.steps_per_epoch, experiment, steps)
    branch = continue_as(trainer, experiment, base_dir)
    described = ", ".join(f"{format_path(parse_path(p))}={json.dumps(v)}" for p, v in changes)
    branch.events.append({"kind": "branch", "step": branch.step, "epoch": branch.epoch,
                          "message": f"branched at step {at_step:,}: {described}"})
    return branch


def continue_as(trainer: Trainer, experiment: Experiment, base_dir: str | Path | None = None,
                history: bool = True) -> Trainer:
    """A new trainer for ``experiment`` holding ``trainer``'s state at its current step (the
    running trainer is not changed): what a branch at that step is, and what a trial of a
    remedy continues from. With ``history=False`` the new trainer starts with empty tables, so
    what it records is its own. It starts with no checkpoints (the running trainer's are
    states of another experiment). Changes that cannot keep the state raise ``SessionError``."""
    old, new = trainer.experiment, experiment
    _refuse_data_changes(old, new)
    arrays, state = trainer.state_dict(history=history, checkpoints=False)
    try:
        branch = Trainer(experiment, base_dir, dataset=trainer.dataset, transfer=False)
    except SpecError as exc:
        raise SessionError(f"cannot build the changed experiment: {exc}") from None
    shapes = {k: a.shape for k, a in branch.network.state().items()}
    for key, array in arrays.items():
        if key.startswith("weights/") and shapes.get(key[len("weights/"):]) != array.shape:
            name = key[len("weights/"):]
            raise SessionError(f"the changes alter {name}'s shape ({array.shape} → {shapes.get(name)}); a branch "
                               "keeps the run's weights, so only changes that keep every shape can branch "
                               "(start a new experiment with model.transfer instead)")
    if new.optimizer.name != old.optimizer.name:
        fresh = branch.optimizer.state_dict()
        arrays = {k: a for k, a in arrays.items() if not k.startswith("optimizer/")}
        arrays.update({f"optimizer/{k}": np.array(a, copy=True) for k, a in fresh["slots"].items()})
        state["optimizer_iterations"] = int(fresh["iterations"])
    if new.training.epochs != old.training.epochs:
        state["schedule_plan"] = {"steps_per_epoch": branch.steps_per_epoch,
                                  "total_steps": branch.steps_per_epoch * new.training.epochs}
    if new.schedule.name != old.schedule.name:
        state["schedule"] = branch.schedule.state_dict()
    if (new.regularization.early_stopping != old.regularization.early_stopping
            and state.get("early_stopping") is not None):
        state["early_stopping"] = branch.early_stopping.state_dict() if branch.early_stopping else None
    try:
        try:
            branch.load_state_dict(arrays, state)
        except ValueError:
            if new.schedule == old.schedule:
                raise
            # the same kind of schedule with parameters its saved state no longer fits: start it fresh
            branch.load_state_dict(arrays, {**state, "schedule": branch.schedule.state_dict()})
    except ValueError as exc:
        raise SessionError(f"the changed experiment cannot continue the run's state: {exc}") from None
    return branch


def branch_record(source: Path | None, at_step: int, changes: Sequence[Change]) -> dict[str, Any]:
    """What a branch's ``state.json`` says of where it came from."""
    return {"from": str(source) if source else None, "at_step": at_step,
            "set": {path: value for path, value in changes}}


def parse_changes(assignments: Sequence[str]) -> list[Change]:
    """``--set`` arguments to changes; a malformed one raises ``ValueError`` naming it."""
    out: list[Change] = []
    for text in assignments:
        try:
            out.append(parse_assignment(text))
        except ValueError as exc:
            raise ValueError(f"--set {text!r}: {exc}") from None
    return out



def branch_reusing_weights(session: Session, at_step: int, changes: Sequence[Change],
                           base_dir: str | Path | None = None) -> tuple[Trainer, list[str], list[str]]:
    """A new run of the changed experiment that starts from the branch point's weights wherever
    their shapes still fit: what a structural change (a layer added, a width changed) makes of a
    branch, since ``branch_trainer`` cannot keep a state whose shapes changed.

    As transfer learning reuses the lower layers of a saved model (chapter 11, "Reusing
    Pretrained Layers"), every parameter and batch-norm statistic whose path and shape are the
    same in both networks is copied from the run at ``at_step``; the others keep the changed
    experiment's initialization. The optimizer, schedule and history start from the beginning:
    it is a new run. Returns (trainer, copied paths, freshly initialized paths)."""
    replayed = branch_trainer(session, at_step, (), base_dir)   # the run at the branch point, checked
    try:
        edited = apply_changes(session.experiment.to_dict(), [(parse_path(p), v) for p, v in changes])
    except FieldPathError as exc:
        raise SpecError(changes[exc.index][0], str(exc)) from None
    experiment = parse_experiment(edited)
    if base_dir is None:
        base_dir = session_base_dir(session)
    same_data = experiment.data == session.experiment.data and experiment.seed == session.experiment.seed
    trainer = Trainer(experiment, base_dir, dataset=replayed.dataset if same_data else None, transfer=False)
    source = replayed.network.state()
    own = {**trainer.network.parameters(), **trainer.network.buffers()}
    copied, fresh = [], []
    for key, target in own.items():
        array = source.get(key)
        if array is not None and array.shape == target.shape:
            target[...] = array
            copied.append(key)
        else:
            fresh.append(key)
    described = ", ".join(f"{format_path(parse_path(p))}={json.dumps(v)}" for p, v in changes)
    trainer.events.append({"kind": "branch", "step": 0, "epoch": 0,
                           "message": f"started from the weights of step {at_step:,} that fit ({len(copied)} of "
                                      f"{len(own)} arrays): {described}"})
    return trainer, copied, fresh
