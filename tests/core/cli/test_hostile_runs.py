"""Runs and files that used to end in a lie: a session that loads but can never be saved, an
autosave that fails without a word, a diverged run that exits 0 and says "completed", a
permission problem reported as a truncated file."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import core.sessions.format as session_format
from core.cli.args import EXIT_DIVERGED
from core.cli.main import run_headless
from core.sessions.format import SessionError, load_session
from core.sessions.recovery import Autosaver
from core.sessions.trainer_io import Snapshot, save_trainer, take_snapshot
from core.spec import parse_experiment
from core.training import Trainer


def small_spec(**changes) -> dict:
    spec = {"name": "small", "seed": 3, "data": {"source": "moons", "params": {"n_samples": 60}},
            "model": {"layers": [{"units": 6}, {"units": 5}]},
            "optimizer": {"name": "nadam", "learning_rate": 0.01}, "training": {"epochs": 2, "batch_size": 8}}
    spec.update(changes)
    return spec


@pytest.fixture(scope="module")
def trained() -> Trainer:
    trainer = Trainer(parse_experiment(small_spec()))
    trainer.fit()
    return trainer


def with_history(path: Path, tmp_path: Path, **arrays) -> Path:
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    with np.load(io.BytesIO(members["history.npz"])) as h:
        history = {k: h[k] for k in h.files}
    history.update(arrays)
    buf = io.BytesIO()
    np.savez(buf, **history)
    members["history.npz"] = buf.getvalue()
    manifest = json.loads(members["manifest.json"])
    manifest["sha256"]["history.npz"] = hashlib.sha256(members["history.npz"]).hexdigest()
    members["manifest.json"] = json.dumps(manifest).encode()
    out = tmp_path / "edited.gwb"
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out


def test_a_nan_epoch_number_is_refused_on_load_not_on_every_later_save(trained, tmp_path):
    path = tmp_path / "run.gwb"
    save_trainer(path, trained)
    epochs = trained.history_arrays()["epoch"].astype(np.float64)
    epochs[0] = np.nan
    edited = with_history(path, tmp_path, epoch=epochs)
    with pytest.raises(SessionError, match=r"history.npz\[epoch\] must hold non-negative whole numbers"):
        load_session(edited)
    assert run_headless(["resume", str(edited), "--epochs", "1", "--out", str(tmp_path / "o.gwb")]) == 2
    assert not (tmp_path / "o.gwb").exists()
    whole = with_history(path, tmp_path, epoch=np.arange(1.0, len(epochs) + 1))  # floats, but whole: fine
    load_session(whole)


def test_an_autosave_that_cannot_be_written_is_reported_not_raised_or_lost(trained, tmp_path):
    autosaver = Autosaver(tmp_path / ".run.gwb.recovery")
    arrays, state = trained.state_dict()
    unwritable = Snapshot(trained.experiment, arrays, {**state, "note": object()})  # not JSON
    assert autosaver.write(unwritable) is False
    assert isinstance(autosaver.last_error, TypeError) and autosaver.saves == 0
    assert autosaver.write(take_snapshot(trained)) is True and autosaver.last_error is None


def test_permission_denied_is_not_reported_as_a_truncated_file(tmp_path, monkeypatch):
    path = tmp_path / "locked.gwb"
    path.write_bytes(b"PK")

    def denied(where):
        raise PermissionError(13, "Permission denied", str(where))

    monkeypatch.setattr(session_format, "open_regular", denied)
    with pytest.raises(SessionError) as info:
        load_session(path)
    assert str(info.value) == f"{path}: cannot be read: permission denied"


def test_a_diverged_run_exits_non_zero_and_says_why(tmp_path, capsys):
    """tanh at a learning rate of 1e30: the loss stays finite (tanh saturates) but the weights'
    norms overflow; that is a divergence, not a completed run."""
    spec = small_spec(optimizer={"name": "sgd", "learning_rate": 1e30},
                      model={"layers": [{"units": 16, "activation": "tanh"}, {"units": 16, "activation": "tanh"}]})
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    out = tmp_path / "run.gwb"
    assert run_headless(["train", str(path), "--out", str(out), "--no-autosave"]) == EXIT_DIVERGED
    err = capsys.readouterr().err
    assert "error: the run diverged: the weight norm of dense_0 (tanh, 16) overflowed float32" in err
    assert "completed" not in err
    session = load_session(out)  # the last state is saved for inspection, and its weights are finite
    assert all(np.isfinite(a).all() for a in session.weights.values())
