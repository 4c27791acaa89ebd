"""Loading and aligning sessions off the GUI thread for the Runs panel.

A session file can hold hundreds of thousands of recorded steps, so reading it and aligning
several histories (``core.sessions.compare.compare_sessions``, never reimplemented here) happens on a
worker thread (``workbench.concurrent``). The loader keeps the sessions it has read (history and
experiment only, no weights) keyed by path and modification time, so ticking a box again costs
only the alignment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from core.engine.distributions import STEP_KEY
from core.engine.instruments import LAYER_INSTRUMENTS
from core.sessions.compare import INDEX_LABELS, INSTRUMENT_STEP_QUANTITIES, Comparison, compare_sessions
from core.sessions.format import Session, SessionError, load_session

from ..concurrent import JobRunner

EPOCH_QUANTITIES = ("loss", "val_loss", "accuracy", "val_accuracy")


@dataclass
class RunsData:
    """What the plots need, computed on the worker. ``present[axis][:, j]`` is True where run
    ``j`` has a record at that index (a NaN it recorded stays a gap; a row it never recorded is
    skipped, so runs logged at different steps still draw as lines). ``distribution`` holds the
    distribution summaries by distribution step (None when no run recorded distributions), and
    ``sessions`` the sessions read (without weights), for the run-vs-run histogram difference."""

    paths: list[Path]
    epoch: Comparison | None = None
    step: Comparison | None = None
    distribution: Comparison | None = None
    sessions: list[Session] = field(default_factory=list)
    present: dict[str, np.ndarray] = field(default_factory=dict)
    n_hidden: list[int] = field(default_factory=list)
    layer_names: list[list[str]] = field(default_factory=list)
    errors: dict[Path, str] = field(default_factory=dict)


def _light(session: Session) -> Session:
    """The session without its weights (the comparison needs history and experiment only)."""
    return Session(experiment=session.experiment, weights={}, history=session.history, state=session.state,
                   manifest=session.manifest, path=session.path)


def _grad_columns(sessions: list[Session]) -> list[str]:
    names: list[str] = []
    for s in sessions:
        if "grad_norm" not in s.history:
            continue
        for j in range(len(s.experiment.model.layers)):
            if f"grad_norm[{j}]" not in names:
                names.append(f"grad_norm[{j}]")
    names.sort(key=lambda n: int(n[10:-1]))
    if any("grad_norm" in s.history for s in sessions):
        names.append("grad_norm[output]")
    return names


def _instrument_columns(sessions: list[Session]) -> list[str]:
    """The instruments' comparison columns (``core.sessions.compare``) any of the sessions holds:
    the per-step ones, then each layer's SNR and effective rate, input to output."""
    names = [q for q in INSTRUMENT_STEP_QUANTITIES if any(f"step_{q}" in s.history for s in sessions)]
    for q in LAYER_INSTRUMENTS:
        have = [s for s in sessions if q in s.history]
        deepest = max((len(s.experiment.model.layers) for s in have), default=-1)
        names += [f"{q}[{j}]" for j in range(deepest)] + ([f"{q}[output]"] if have else [])
    return names


def build_runs_data(paths: list[Path], cache: dict[Path, tuple[float, Session]] | None = None) -> RunsData:
    """Read (or take from ``cache``) each session and align the histories with ``core.sessions.compare``.
    Files that cannot be read are left out and reported in ``errors``."""
    cache = {} if cache is None else cache
    sessions: list[Session] = []
    data = RunsData(paths=[])
    for path in paths:
        try:
            mtime = path.stat().st_mtime
            hit = cache.get(path)
            if hit is None or hit[0] != mtime:
                hit = (mtime, _light(load_session(path)))
                cache[path] = hit
        except (OSError, SessionError) as exc:
            data.errors[path] = str(exc)
            continue
        sessions.append(hit[1])
        data.paths.append(path)
    if not sessions:
        return data
    data.n_hidden = [len(s.experiment.model.layers) for s in sessions]
    data.layer_names = [[str(n) for n in s.history.get("layer_names", [])] for s in sessions]
    have = [q for q in EPOCH_QUANTITIES if any(q in s.history for s in sessions)]
    data.epoch = compare_sessions(sessions, by="epoch", quantities=have)
    columns = _grad_columns(sessions) + _instrument_columns(sessions)
    if columns:
        data.step = compare_sessions(sessions, by="step", quantities=columns)
    if any(len(s.history.get(STEP_KEY, ())) for s in sessions):
        data.distribution = compare_sessions(sessions, by="distribution")
    data.sessions = sessions
    for axis, cmp in (("epoch", data.epoch), ("step", data.step), ("distribution", data.distribution)):
        if cmp is None:
            continue
        own = [np.asarray(s.history.get(INDEX_LABELS[axis], np.zeros(0)), dtype=np.int64) for s in sessions]
        data.present[axis] = np.column_stack([np.isin(cmp.index, o) for o in own])
    return data


def load_or_report(paths: list[Path], cache: dict[Path, tuple[float, Session]]) -> RunsData:
    """``build_runs_data``, with any failure reported in the result instead of raised (the panel
    shows it; the loading thread keeps working)."""
    try:
        return build_runs_data(paths, cache)
    except Exception as exc:  # noqa: BLE001 (reported in the panel)
        return RunsData(paths=[], errors={Path("?"): f"{type(exc).__name__}: {exc}"})


class RunsLoader(QObject):
    """GUI-thread front of the loading thread (a ``workbench.concurrent.JobRunner``).
    ``load(paths)`` submits a request; ``loaded`` fires (on the GUI thread) with the newest
    request's ``RunsData`` only (requests overtaken by a newer one while waiting are never read).
    ``shutdown()`` (the window closes) ends the thread for good: later requests and results
    still queued from the thread are dropped, so nothing starts a thread the window's deletion
    would destroy while running."""

    loaded = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # Sessions read so far, by path and modification time: used by the jobs only, which run
        # one at a time on the loading thread.
        self._cache: dict[Path, tuple[float, Session]] = {}
        self._runner = JobRunner(self, "runs-loader")
        self._runner.finished.connect(self._on_loaded)
        self.pending = False

    def load(self, paths: list[Path]) -> None:
        if self._runner.closed:
            return
        paths, cache = list(paths), self._cache
        self.pending = True
        self._runner.submit(lambda _progress, _should_stop: load_or_report(paths, cache))

    def _on_loaded(self, data: Any) -> None:
        self.pending = False
        self.loaded.emit(data)

    def shutdown(self) -> None:
        self._runner.shutdown()
        self.pending = False
