"""Checkpoints: copies of a trainer's whole state at regular steps, so a run can be continued
from any recorded step by replaying only from the nearest copy at or before it.

A run is deterministic given its experiment, so its state at step K is whatever training from
a state at step C ≤ K, K − C steps on, gives: the start (C = 0) always works, a checkpoint at C
makes the replay K − C steps instead of K. The trainer (``core.training.Trainer``) takes one
after every ``interval``-th optimizer step: weights, optimizer slots, best weights, the epoch's
data order and running sums, and the JSON state (step, schedule, early stopping, RNG, events,
the roll-back point). What a checkpoint leaves out is what never changes (the data split) or
is kept once for the whole run (the recorded history, truncated when a checkpoint is restored).

**The thinning rule** bounds the memory: with ``keep`` = M, the interval starts at ``every``
= N, and whenever an (M + 1)-th copy is taken the interval doubles and the copies off the new
grid are dropped. So the copies are always the multiples of the current interval I = N · 2^k,
the smallest such that a run of S steps needs at most M of them (⌊S / I⌋ ≤ M): at most M copies,
at least ⌊M / 2⌋ once the run is longer than N · M steps, and a branch replays fewer than I
steps. The set at step S is a function of S alone, so a resumed or branched run keeps the very
checkpoints the uninterrupted one has.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.spec import CheckpointsSpec

#: What ``Trainer.state_dict`` puts under this prefix: ``checkpoints/<step>/<trainer key>``.
PREFIX = "checkpoints/"
#: The groups of trainer arrays a checkpoint holds (``split/`` and ``history/`` are the run's).
GROUPS = ("weights", "optimizer", "best", "loop", "rollback")


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """The trainer's state after optimizer step ``step``: ``Trainer.state_dict``'s arrays (read-only,
    never written after they are taken) without the split and history, and its JSON values."""

    step: int
    arrays: Mapping[str, np.ndarray]
    state: Mapping[str, Any]

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values())


def read_only(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays flagged read-only (a checkpoint is shared, never copied, when it is saved)."""
    out = {}
    for key, a in arrays.items():
        a = np.asarray(a)
        a.flags.writeable = False
        out[key] = a
    return out


def interval_problem(spec: CheckpointsSpec, interval: Any, steps: list[int]) -> str | None:
    """Why a log of checkpoints at ``steps`` with this ``interval`` cannot come from ``spec``'s
    rule (None if it can): the interval is ``every`` · 2^k, the steps are increasing positive
    multiples of it, and there are at most ``keep``."""
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < spec.every \
            or interval % spec.every or (interval // spec.every) & (interval // spec.every - 1):
        return (f"interval must be training.checkpoints.every ({spec.every}) times a power of two, "
                f"got {interval!r}")
    if len(steps) > spec.keep:
        return f"holds {len(steps)} checkpoints, training.checkpoints.keep allows {spec.keep}"
    for before, step in zip([0, *steps], steps, strict=False):
        if step <= before or step % interval:
            return (f"checkpoint steps must be increasing multiples of the interval {interval}, got "
                    f"{step} after {before}")
    return None


@dataclass
class CheckpointLog:
    """The checkpoints a trainer holds, oldest first, thinned by the rule of the module docstring."""

    every: int
    keep: int
    interval: int = 0
    entries: list[Checkpoint] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.interval = self.interval or self.every

    @classmethod
    def from_spec(cls, spec: CheckpointsSpec) -> CheckpointLog:
        return cls(spec.every, spec.keep)

    def due(self, step: int) -> bool:
        """Whether the state after optimizer step ``step`` is kept."""
        return (self.keep > 0 and step > 0 and step % self.interval == 0
                and (not self.entries or self.entries[-1].step < step))

    def add(self, checkpoint: Checkpoint) -> None:
        """Keep ``checkpoint`` (the newest); past ``keep``, double the interval and drop the
        copies that are off its grid."""
        self.entries.append(checkpoint)
        while len(self.entries) > self.keep:
            self.interval *= 2
            self.entries = [c for c in self.entries if c.step % self.interval == 0]

    def drop_after(self, step: int) -> None:
        """Forget the copies of steps after ``step`` (a roll-back or a rewind went back to it)."""
        self.entries = [c for c in self.entries if c.step <= step]

    def at_or_before(self, step: int) -> Checkpoint | None:
        """The latest copy at or before ``step`` (None if every copy is later, or there is none)."""
        found = None
        for c in self.entries:
            if c.step > step:
                break
            found = c
        return found

    @property
    def steps(self) -> list[int]:
        return [c.step for c in self.entries]

    @property
    def nbytes(self) -> int:
        """Bytes the copies' arrays take (the JSON values are a few kilobytes more)."""
        return sum(c.nbytes for c in self.entries)

    def __iter__(self) -> Iterator[Checkpoint]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    # ------------------------------------------------------------------ as Trainer.state_dict holds it

    def to_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(``checkpoints/<step>/<key>`` arrays, ``{"interval", "states"}``), sharing the arrays
        (read-only) rather than copying them."""
        arrays = {f"{PREFIX}{c.step}/{k}": a for c in self.entries for k, a in c.arrays.items()}
        return arrays, {"interval": self.interval, "states": [dict(c.state) for c in self.entries]}


def split_arrays(arrays: Mapping[str, np.ndarray]) -> dict[int, dict[str, np.ndarray]]:
    """``checkpoints/<step>/<key>`` arrays grouped by step (with ``<key>`` as the key); a key
    that is not of that form raises ``ValueError`` naming it."""
    out: dict[int, dict[str, np.ndarray]] = {}
    for key, a in arrays.items():
        if not key.startswith(PREFIX):
            continue
        step, _, rest = key[len(PREFIX):].partition("/")
        if not step.isdigit() or step != str(int(step)) or rest.split("/", 1)[0] not in GROUPS:
            raise ValueError(f"{key}: not a checkpoint array (checkpoints/<step>/<{'|'.join(GROUPS)}>/...)")
        out.setdefault(int(step), {})[rest] = a
    return out
