"""Saving a ``Trainer`` to a session file and building one back from it.

Saving is two separable steps so a GUI never blocks training for longer than a copy:
``take_snapshot(trainer)`` (copies of the arrays, on the training thread) and
``write_snapshot(path, snapshot)`` (serialization and the atomic write, on any thread).
``restore_trainer`` is the inverse: the checked ``Session`` that ``load_session`` returns,
turned into a trainer that continues exactly where the saved one stopped.

The file format itself (members, checks, migrations) is ``core.sessions.format``; this module
sits above the trainer, which is why the two are apart (the trainer reads session files for
transfer learning, so the format must not import it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.engine.validation import printable
from core.spec import Experiment, SpecError
from core.training import Trainer

from .format import Session, SessionError, session_members, write_session


@dataclass(frozen=True)
class Snapshot:
    """A trainer's whole state at one moment, as private copies: safe to hand to another
    thread, which may write it while training goes on."""

    experiment: Experiment
    arrays: dict[str, np.ndarray]
    state: dict[str, Any]


def take_snapshot(trainer: Trainer, extra_state: Mapping[str, Any] | None = None) -> Snapshot:
    """Copy what a save needs (call it on the training thread, between batches)."""
    arrays, state = trainer.state_dict()
    return Snapshot(trainer.experiment, arrays, {**state, **(extra_state or {})})


def write_snapshot(path: str | Path, snapshot: Snapshot) -> None:
    """Serialize and write a snapshot atomically (any thread)."""
    write_session(path, session_members(snapshot.experiment, snapshot.arrays, snapshot.state))


def save_trainer(path: str | Path, trainer: Trainer, extra_state: Mapping[str, Any] | None = None) -> None:
    """Save a ``core.training.Trainer`` (everything needed to resume it exactly)."""
    write_snapshot(path, take_snapshot(trainer, extra_state))


def trainer_arrays(session: Session) -> dict[str, np.ndarray]:
    """The inverse of ``session_members``: the flat array dict ``Trainer.load_state_dict`` takes."""
    arrays = {f"weights/{k}": a for k, a in session.weights.items()}
    for k, a in session.optimizer.items():
        group, _, rest = k.partition("/")
        arrays[f"{'optimizer' if group == 'slots' else group}/{rest}"] = a
    arrays.update({f"history/{k}": a for k, a in session.history.items()})
    if session.best_weights:
        arrays.update({f"best/{k}": a for k, a in session.best_weights.items()})
    arrays.update({f"checkpoints/{k}": a for k, a in session.checkpoints.items()})
    return arrays


def session_of(experiment: Experiment, arrays: Mapping[str, np.ndarray], state: Mapping[str, Any],
               path: Path | None = None) -> Session:
    """A trainer's ``state_dict()`` as the ``Session`` a file of it would load as (in memory, nothing
    written): the inverse of ``trainer_arrays``. A window branches its live run through this."""
    def group(prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix):]: a for k, a in arrays.items() if k.startswith(prefix)}

    optimizer = {**{f"slots/{k}": a for k, a in group("optimizer/").items()},
                 **{f"{g}/{k}": a for g in ("loop", "split", "rollback") for k, a in group(f"{g}/").items()}}
    return Session(experiment, group("weights/"), group("history/"), dict(state), optimizer,
                   group("best/") or None, path=path, checkpoints=group("checkpoints/"))


def restore_trainer(session: Session, base_dir: str | Path | None = None) -> Trainer:
    """Build a ``Trainer`` for the session's experiment and put its saved state back.

    Relative data paths resolve against the folder recorded at save time, else the session's.
    Layers reused through ``model.transfer`` come from the session itself (the source file
    is not needed again)."""
    return restore_state(session.experiment, trainer_arrays(session), session.state,
                         session_base_dir(session, base_dir), session.path or "session")


def session_base_dir(session: Session, base_dir: str | Path | None = None) -> str | Path | None:
    """Where a session's relative data paths resolve: ``base_dir`` if given, else the folder
    recorded at save time if it still exists, else the session file's folder."""
    if base_dir is not None:
        return base_dir
    folder = session.state.get("base_dir")
    return folder if folder and Path(folder).is_dir() else (session.path.parent if session.path else None)


def restore_state(experiment: Experiment, arrays: Mapping[str, np.ndarray], state: Mapping[str, Any],
                  base_dir: str | Path | None, where: object = "session") -> Trainer:
    """A ``Trainer`` for ``experiment`` with ``Trainer.state_dict``'s ``arrays`` and ``state`` put
    back (what ``restore_trainer`` does once the file is read; a training process does it with
    state sent from the window). ``where`` names the run in the messages."""
    try:
        trainer = Trainer(experiment, base_dir, transfer=False)
    except SpecError as exc:
        raise SessionError(f"{where}: cannot rebuild the experiment: {exc}") from None
    n_inputs = state.get("n_inputs", arrays["weights/layers.0.kernel"].shape[0])
    if trainer.network.n_inputs != n_inputs:
        raise SessionError(f"{where}: the saved model takes {n_inputs} inputs, but the data "
                           f"({trainer.dataset.name}) now has {trainer.network.n_inputs} features "
                           "(has the data file changed?)")
    try:
        trainer.load_state_dict(arrays, state)
    except (KeyError, ValueError, TypeError, OverflowError, IndexError, AttributeError, RecursionError) as exc:
        # (a malformed schedule or early-stopping state is the wrong type; roll-back states nested too deep)
        raise SessionError(f"{where}: saved state does not fit the experiment: {printable(str(exc))}") from None
    return trainer
