"""Session files (``*.gwb``): the stable on-disk contract of DESIGN.md.

A zip archive of JSON and ``.npz`` members, written atomically (temporary file in the same
folder, flush, fsync, ``os.replace``) and read without ever executing anything from it (no
pickle: ``allow_pickle=False``; member names, sizes, checksums, dtypes and shapes checked
before anything touches a model).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .spec import Experiment, SpecError, parse_experiment

FORMAT = "gradient-workbench.session"
VERSION = 1
MEMBERS = ("manifest.json", "experiment.json", "weights.npz", "best_weights.npz", "optimizer.npz",
           "state.json", "history.npz")
REQUIRED = ("manifest.json", "experiment.json", "weights.npz", "history.npz")
MAX_MEMBER_BYTES = 4 * 1024**3      # a member claiming more than 4 GiB is refused unread
MAX_JSON_BYTES = 64 * 1024**2
ALLOWED_KINDS = "fiub"               # float, signed / unsigned integer, bool; also unicode for names


class SessionError(ValueError):
    """A session file that cannot be read; the message says which file and why."""


@dataclass
class Session:
    """What a session file holds, as plain data (no model is built by loading)."""

    experiment: Experiment
    weights: dict[str, np.ndarray]
    history: dict[str, np.ndarray]
    state: dict[str, Any] = field(default_factory=dict)
    optimizer: dict[str, np.ndarray] = field(default_factory=dict)
    best_weights: dict[str, np.ndarray] | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


# ----------------------------------------------------------------------------- writing


def _npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(a) for k, a in arrays.items()})
    return buf.getvalue()


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode("utf-8")


def atomic_write(path: str | Path, write: Any) -> None:
    """Write a file so that a crash at any moment leaves either the old or the new file whole:
    a temporary file in the same folder (same file system, so the rename is atomic), flushed
    and fsynced, then ``os.replace``; the folder is fsynced so the rename itself is durable."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def session_members(experiment: Experiment, arrays: Mapping[str, np.ndarray], state: Mapping[str, Any],
                    extra_state: Mapping[str, Any] | None = None) -> dict[str, bytes]:
    """Serialize a trainer's ``state_dict()`` into the member files (bytes, checksummed later)."""
    def group(prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix):]: a for k, a in arrays.items() if k.startswith(prefix)}

    members = {
        "experiment.json": _json_bytes(experiment.to_dict()),
        "weights.npz": _npz_bytes(group("weights/")),
        "optimizer.npz": _npz_bytes({**{f"slots/{k}": a for k, a in group("optimizer/").items()},
                                     **{f"loop/{k}": a for k, a in group("loop/").items()},
                                     **{f"split/{k}": a for k, a in group("split/").items()}}),
        "state.json": _json_bytes({**state, **(extra_state or {})}),
        "history.npz": _npz_bytes(group("history/")),
    }
    best = group("best/")
    if best:
        members["best_weights.npz"] = _npz_bytes(best)
    return members


def write_session(path: str | Path, members: Mapping[str, bytes]) -> None:
    """Write member bytes plus a manifest with the SHA-256 of each, atomically."""
    manifest = {
        "format": FORMAT, "version": VERSION, "app_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in members.items()},
    }

    def write(fh: Any) -> None:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            zf.writestr("manifest.json", _json_bytes(manifest))
            for name, data in members.items():
                zf.writestr(name, data)

    atomic_write(path, write)


def save_trainer(path: str | Path, trainer: Any, extra_state: Mapping[str, Any] | None = None) -> None:
    """Save a ``core.training.Trainer`` (everything needed to resume it exactly)."""
    arrays, state = trainer.state_dict()
    write_session(path, session_members(trainer.experiment, arrays, state, extra_state))


# ----------------------------------------------------------------------------- reading


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: Path) -> bytes:
    limit = MAX_JSON_BYTES if info.filename.endswith(".json") else MAX_MEMBER_BYTES
    if info.file_size > limit:
        raise SessionError(f"{where}: member {info.filename} claims {info.file_size:,} bytes, "
                           f"more than the {limit:,} allowed")
    try:
        with zf.open(info) as fh:
            data = fh.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:  # zlib errors are ValueErrors
        raise SessionError(f"{where}: member {info.filename} is damaged ({exc})") from None
    if len(data) > limit:
        raise SessionError(f"{where}: member {info.filename} is larger than the {limit:,} bytes allowed")
    return data


def _load_npz(data: bytes, name: str, where: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            out = {k: npz[k] for k in npz.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            raise SessionError(f"{where}: {name} holds an object array, which is never loaded "
                               "(it could run code)") from None
        raise SessionError(f"{where}: {name} is not a readable .npz archive ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise SessionError(f"{where}: {name} is not a readable .npz archive ({exc})") from None
    for key, a in out.items():
        if a.dtype.kind not in ALLOWED_KINDS + "U":
            raise SessionError(f"{where}: {name}[{key}] has dtype {a.dtype}, which sessions never hold")
    return out


def _load_json(data: bytes, name: str, where: Path) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SessionError(f"{where}: {name} is not valid JSON ({exc})") from None


def load_session(path: str | Path) -> Session:
    """Read and verify a session file; raises ``SessionError`` with one clear reason."""
    where = Path(path)
    try:
        zf = zipfile.ZipFile(where)
    except FileNotFoundError:
        raise SessionError(f"{where}: no such session file") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise SessionError(f"{where}: not a Gradient Workbench session (not a readable zip archive: "
                           f"{exc}); it may be truncated") from None
    with zf:
        infos = {}
        for info in zf.infolist():
            name = info.filename
            if name not in MEMBERS:
                raise SessionError(f"{where}: unexpected member {name!r}; a session holds only "
                                   f"{', '.join(MEMBERS)}")
            infos[name] = info
        missing = [m for m in REQUIRED if m not in infos]
        if missing:
            raise SessionError(f"{where}: missing member {missing[0]}; the file is incomplete")
        raw = {name: _read_member(zf, info, where) for name, info in infos.items()}
    manifest = _load_json(raw.pop("manifest.json"), "manifest.json", where)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise SessionError(f"{where}: manifest.json does not describe a {FORMAT} file")
    version = manifest.get("version")
    if not isinstance(version, int) or version < 1:
        raise SessionError(f"{where}: manifest.json has no valid format version ({version!r})")
    if version > VERSION:
        raise SessionError(f"{where}: written by a newer Gradient Workbench (session format {version}, "
                           f"app {manifest.get('app_version', '?')}); this version reads formats up to {VERSION}")
    sums = manifest.get("sha256", {})
    for name, data in raw.items():
        expected = sums.get(name) if isinstance(sums, dict) else None
        if expected is None:
            raise SessionError(f"{where}: manifest.json has no checksum for {name}")
        if hashlib.sha256(data).hexdigest() != expected:
            raise SessionError(f"{where}: checksum mismatch in {name}: the file is damaged")
    try:
        experiment = parse_experiment(_load_json(raw["experiment.json"], "experiment.json", where))
    except SpecError as exc:
        raise SessionError(f"{where}: experiment.json is not a valid experiment: {exc}") from None
    state = _load_json(raw["state.json"], "state.json", where) if "state.json" in raw else {}
    if not isinstance(state, dict):
        raise SessionError(f"{where}: state.json must hold a JSON object")
    return Session(
        experiment=experiment,
        weights=_load_npz(raw["weights.npz"], "weights.npz", where),
        history=_load_npz(raw["history.npz"], "history.npz", where),
        state=state,
        optimizer=_load_npz(raw["optimizer.npz"], "optimizer.npz", where) if "optimizer.npz" in raw else {},
        best_weights=_load_npz(raw["best_weights.npz"], "best_weights.npz", where)
        if "best_weights.npz" in raw else None,
        manifest=manifest,
        path=where,
    )


def trainer_arrays(session: Session) -> dict[str, np.ndarray]:
    """The inverse of ``session_members``: the flat array dict ``Trainer.load_state_dict`` takes."""
    arrays = {f"weights/{k}": a for k, a in session.weights.items()}
    for k, a in session.optimizer.items():
        group, _, rest = k.partition("/")
        arrays[f"{'optimizer' if group == 'slots' else group}/{rest}"] = a
    arrays.update({f"history/{k}": a for k, a in session.history.items()})
    if session.best_weights:
        arrays.update({f"best/{k}": a for k, a in session.best_weights.items()})
    return arrays


def restore_trainer(session: Session, base_dir: str | Path | None = None) -> Any:
    """Build a ``Trainer`` for the session's experiment and put its saved state back.

    Relative data paths resolve against the folder recorded at save time, else the session's."""
    from .training import Trainer  # local: training imports the heavy parts lazily for `info`

    folder = session.state.get("base_dir")
    if base_dir is None:
        base_dir = folder if folder and Path(folder).is_dir() else (session.path.parent if session.path else None)
    trainer = Trainer(session.experiment, base_dir)
    try:
        trainer.load_state_dict(trainer_arrays(session), session.state)
    except (KeyError, ValueError, TypeError) as exc:
        where = session.path or "session"
        raise SessionError(f"{where}: saved state does not fit the experiment: {exc}") from None
    return trainer
