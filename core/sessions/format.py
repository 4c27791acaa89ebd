"""Session files (``*.gwb``): the stable on-disk contract of DESIGN.md.

A zip archive of JSON and ``.npz`` members, written atomically (temporary file in the same
folder, flush, fsync, ``os.replace``) and read without ever executing anything from it (no
pickle: ``allow_pickle=False``; member names, sizes, checksums, dtypes and shapes checked
before anything touches a model).

This module knows the file, not the trainer: ``session_members`` + ``write_session`` write
member bytes, ``load_session`` reads them back checked. Saving and restoring a ``Trainer``
is ``core.sessions.trainer_io``.

Reading checks, in this order, and stops at the first problem with one message that says
which and why: the archive itself (truncated, not a zip), every member name (no paths, no
duplicates), every claimed size, the manifest (format, version: newer is refused, older is
migrated through ``MIGRATIONS``), the members present, every checksum, the JSON and ``.npz``
contents (no object arrays), the experiment (``parse_experiment``), and finally the dtype
and shape of every array against the shapes the experiment implies.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import secrets
import stat
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from core import __version__
from core.engine.diagnostics import check_history
from core.engine.network import parameter_shapes
from core.engine.optimizers import OPTIMIZERS
from core.spec import Experiment, SpecError, parse_experiment

FORMAT = "gradient-workbench.session"
VERSION = 1
MEMBERS = ("manifest.json", "experiment.json", "weights.npz", "best_weights.npz", "optimizer.npz",
           "state.json", "history.npz")
REQUIRED = ("manifest.json", "experiment.json", "weights.npz", "history.npz")
MAX_MEMBER_BYTES = 2 * 1024**3      # a member claiming more than 2 GiB is refused unread
MAX_JSON_BYTES = 16 * 1024**2
STALE_TEMPORARY_SECONDS = 600       # a save's temporary file older than this was left by a crash
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

    @property
    def lineage(self) -> list[dict[str, Any]]:
        """Where each reused layer came from (``model.transfer``); empty if none was."""
        lineage = self.state.get("lineage", [])
        return lineage if isinstance(lineage, list) else []


# ----------------------------------------------------------------------------- migrations

# A session read as plain data: "manifest", "experiment", "state" (JSON values) and "weights",
# "best_weights", "optimizer", "history" (dicts of arrays; absent members are missing keys).
Members = dict[str, Any]

#: ``MIGRATIONS[v]`` turns the members of a format-``v`` file into format ``v + 1``. Loading
#: applies them in turn up to ``VERSION``, so a file of every released format keeps loading
#: (tests/data keeps one of each). Format 1 is the first and current one, so the chain is
#: empty; the next format change adds ``MIGRATIONS[1]`` and bumps ``VERSION``.
MIGRATIONS: dict[int, Callable[[Members], Members]] = {}


def migrate(members: Members, version: int, where: Path) -> Members:
    while version < VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise SessionError(f"{where}: session format {version} cannot be converted to format {VERSION} "
                               "(no migration for it)")
        members = step(members)
        version += 1
    return members


# ----------------------------------------------------------------------------- writing


def _npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    plain = {k: np.asarray(a) for k, a in arrays.items()}
    for k, a in plain.items():
        if a.dtype.kind not in ALLOWED_KINDS + "U":  # an object array would be pickled
            raise TypeError(f"{k}: sessions hold only numbers and text, got dtype {a.dtype}")
    buf = io.BytesIO()
    np.savez(buf, **plain)
    return buf.getvalue()


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode("utf-8")


def _temporaries(target: Path) -> list[Path]:
    folder = target.parent if str(target.parent) else Path(".")
    return sorted(folder.glob(f".{target.name}.*.tmp"))


def remove_stale_temporaries(target: str | Path, older_than: float = STALE_TEMPORARY_SECONDS) -> list[Path]:
    """Delete temporary files that a save of ``target`` killed half-way left behind (only
    those untouched for ``older_than`` seconds, so a save still running elsewhere is spared)."""
    removed = []
    now = time.time()
    for tmp in _temporaries(Path(target)):
        try:
            if now - tmp.stat().st_mtime >= older_than:
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            pass
    return removed


def _create_temporary(target: Path) -> tuple[int, str]:
    """A new file next to ``target`` with the permissions a plain ``open`` would give it (the
    umask's, or the replaced file's), not ``mkstemp``'s private 0600."""
    folder = target.parent if str(target.parent) else Path(".")
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except OSError:
        mode = None
    for _ in range(100):
        tmp = str(folder / f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        if mode is not None:
            try:
                os.chmod(tmp, mode)
            except OSError:
                pass
        return fd, tmp
    raise FileExistsError(f"{folder}: cannot create a temporary file for {target.name}")


def atomic_write(path: str | Path, write: Any) -> None:
    """Write a file so that a crash at any moment leaves either the old or the new file whole:
    a temporary file in the same folder (same file system, so the rename is atomic), flushed
    and fsynced, then ``os.replace``; the folder is fsynced so the rename itself is durable.

    On an exception (a full disk, ...) the temporary file is removed and the old file is
    untouched; a process killed half-way leaves its temporary file, which a later save of
    the same target removes once it is stale."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    fd, tmp = _create_temporary(target)
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
        dir_fd = None
    if dir_fd is not None:
        try:
            os.fsync(dir_fd)
        except OSError:
            pass
        finally:
            os.close(dir_fd)
    remove_stale_temporaries(target)


def session_members(experiment: Experiment, arrays: Mapping[str, np.ndarray], state: Mapping[str, Any],
                    extra_state: Mapping[str, Any] | None = None) -> dict[str, bytes]:
    """Serialize a trainer's ``state_dict()`` into the member files (bytes, checksummed later)."""
    def group(prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix):]: a for k, a in arrays.items() if k.startswith(prefix)}

    members = {
        "experiment.json": _json_bytes(experiment.to_dict()),
        "weights.npz": _npz_bytes(group("weights/")),
        "optimizer.npz": _npz_bytes({**{f"slots/{k}": a for k, a in group("optimizer/").items()},
                                     **{f"{g}/{k}": a for g in ("loop", "split", "rollback")
                                        for k, a in group(f"{g}/").items()}}),
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


# ----------------------------------------------------------------------------- reading


def _check_name(name: str, where: Path) -> None:
    """Member names are plain file names: nothing that could point outside a folder."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if (not name or "\x00" in name or name.startswith(("/", "\\")) or ".." in parts or len(parts) != 1
            or (len(name) > 1 and name[1] == ":")):
        raise SessionError(f"{where}: member name {name!r} is refused: a session holds only plain file names, "
                           "never paths (this one points outside the archive's folder)")


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: Path) -> bytes:
    limit = MAX_JSON_BYTES if info.filename.endswith(".json") else MAX_MEMBER_BYTES
    if info.file_size > limit:
        raise SessionError(f"{where}: member {info.filename} claims {info.file_size:,} bytes, "
                           f"more than the {limit:,} allowed; refused unread")
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
                               "(unpickling it could run code)") from None
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


def _open(where: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(where)
    except FileNotFoundError:
        raise SessionError(f"{where}: no such session file") from None
    except IsADirectoryError:
        raise SessionError(f"{where}: is a folder, not a session file") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise SessionError(f"{where}: not a Gradient Workbench session (not a readable zip archive: "
                           f"{exc}); it may be truncated") from None


def _read_verified(where: Path, names: tuple[str, ...] | None = None) -> tuple[dict[str, Any], dict[str, bytes]]:
    """(manifest, raw member bytes) after the archive-level checks; ``names`` limits which
    members are read (all by default)."""
    with _open(where) as zf:
        infos: dict[str, zipfile.ZipInfo] = {}
        for info in zf.infolist():
            _check_name(info.filename, where)
            if info.filename in infos:
                raise SessionError(f"{where}: member {info.filename} appears twice; which one is meant is unclear")
            if info.flag_bits & 0x1:
                raise SessionError(f"{where}: member {info.filename} is encrypted; sessions never are")
            infos[info.filename] = info
        if "manifest.json" not in infos:
            raise SessionError(f"{where}: missing member manifest.json; the file is incomplete "
                               "or not a Gradient Workbench session")
        manifest = _load_json(_read_member(zf, infos["manifest.json"], where), "manifest.json", where)
        version = _check_manifest(manifest, where)
        for name in infos:
            if name not in MEMBERS:
                raise SessionError(f"{where}: unexpected member {name!r}; a format-{version} session holds only "
                                   f"{', '.join(MEMBERS)}")
        missing = [m for m in REQUIRED if m not in infos]
        if missing:
            raise SessionError(f"{where}: missing member {missing[0]}; the file is incomplete")
        wanted = [n for n in infos if n != "manifest.json" and (names is None or n in names)]
        raw = {name: _read_member(zf, infos[name], where) for name in wanted}
    sums = manifest.get("sha256", {})
    for name, data in raw.items():
        expected = sums.get(name) if isinstance(sums, dict) else None
        if expected is None:
            raise SessionError(f"{where}: manifest.json has no checksum for {name}")
        if hashlib.sha256(data).hexdigest() != expected:
            raise SessionError(f"{where}: checksum mismatch in {name}: the file is damaged")
    return manifest, raw


def _check_manifest(manifest: Any, where: Path) -> int:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise SessionError(f"{where}: manifest.json does not describe a {FORMAT} file")
    version = manifest.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise SessionError(f"{where}: manifest.json has no valid format version ({version!r})")
    if version > VERSION:
        raise SessionError(f"{where}: written by a newer Gradient Workbench (session format {version}, "
                           f"app {manifest.get('app_version', '?')}); this version reads formats up to {VERSION}")
    return version


def load_session(path: str | Path) -> Session:
    """Read and verify a session file; raises ``SessionError`` with one clear reason.

    Nothing is executed, nothing is written, and no model is built: the result is plain data
    whose every array has been checked against the experiment."""
    where = Path(path)
    manifest, raw = _read_verified(where)
    members: Members = {"manifest": manifest,
                        "experiment": _load_json(raw["experiment.json"], "experiment.json", where)}
    members["state"] = _load_json(raw["state.json"], "state.json", where) if "state.json" in raw else {}
    for key in ("weights", "best_weights", "optimizer", "history"):
        if f"{key}.npz" in raw:
            members[key] = _load_npz(raw[f"{key}.npz"], f"{key}.npz", where)
    members = migrate(members, manifest["version"], where)
    try:
        experiment = parse_experiment(members["experiment"])
    except SpecError as exc:
        raise SessionError(f"{where}: experiment.json is not a valid experiment: {exc}") from None
    state = members["state"]
    if not isinstance(state, dict):
        raise SessionError(f"{where}: state.json must hold a JSON object")
    session = Session(experiment=experiment, weights=members["weights"], history=members["history"], state=state,
                      optimizer=members.get("optimizer", {}), best_weights=members.get("best_weights"),
                      manifest=manifest, path=where)
    check_arrays(session)
    return session


def peek_session(path: str | Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(manifest, experiment JSON, state) of a session, verified but without its arrays: a
    cheap look for lists such as the recovery dialog's."""
    where = Path(path)
    manifest, raw = _read_verified(where, ("experiment.json", "state.json"))
    experiment = _load_json(raw["experiment.json"], "experiment.json", where)
    state = _load_json(raw["state.json"], "state.json", where) if "state.json" in raw else {}
    if not isinstance(experiment, dict) or not isinstance(state, dict):
        raise SessionError(f"{where}: experiment.json and state.json must hold JSON objects")
    return manifest, experiment, state


# ----------------------------------------------------------------------------- array checks


def _shape_hint(experiment: Experiment, key: str) -> str:
    layer, _, part = key.rpartition(".")
    if layer.startswith("layers."):
        i = int(layer.split(".")[1])
        row = experiment.model.layers[i]
        if part == "kernel":
            return f" (model.layers[{i}].units is {row.units})"
        if part == "bias":
            return f" (model.layers[{i}].use_bias is {str(row.use_bias).lower()})"
        return f" (model.layers[{i}].batch_norm is {row.batch_norm!r})"
    return ""


def _check_weights(experiment: Experiment, arrays: Mapping[str, np.ndarray], name: str,
                   shapes: Mapping[str, tuple[int, ...]], where: Path) -> None:
    dtype = np.dtype(experiment.training.dtype)
    n_hidden = len(experiment.model.layers)
    for key, a in arrays.items():
        if key not in shapes:
            raise SessionError(f"{where}: {name} holds an unexpected array {key!r}: the experiment has {n_hidden} "
                               f"hidden layers (layers.0 to layers.{n_hidden - 1}) and an output layer, "
                               f"and these arrays: {', '.join(shapes)}")
        if a.dtype != dtype:
            raise SessionError(f"{where}: {name}[{key}] is {a.dtype}, but the experiment trains in {dtype} "
                               "(training.dtype)")
        if a.shape != shapes[key]:
            raise SessionError(f"{where}: {name}[{key}] has shape {a.shape}, the experiment needs "
                               f"{shapes[key]}{_shape_hint(experiment, key)}")
    for key in shapes:
        if key not in arrays:
            raise SessionError(f"{where}: {name} has no array {key!r}, which the experiment needs"
                               f"{_shape_hint(experiment, key)}")


def _width(session: Session, key: str, axis: int, what: str, where: Path) -> int:
    a = session.weights.get(key)
    if a is None or a.ndim != 2:
        raise SessionError(f"{where}: weights.npz has no 2-D array {key!r} ({what})")
    width = int(a.shape[axis])
    stored = session.state.get(what)
    if stored is not None and stored != width:
        raise SessionError(f"{where}: state.json says the model has {stored} {what[2:]}, but weights.npz[{key}] "
                           f"has {width}")
    return width


def check_arrays(session: Session) -> None:
    """Check every array's dtype and shape against the experiment (``SessionError`` if any
    does not fit): the shapes follow from the spec plus the input and output widths."""
    exp, where = session.experiment, session.path or Path("session")
    n_inputs = _width(session, "layers.0.kernel", 0, "n_inputs", where)
    n_outputs = _width(session, "output.kernel", 1, "n_outputs", where)
    shapes = parameter_shapes(exp.model, n_inputs, n_outputs)
    _check_weights(exp, session.weights, "weights.npz", shapes, where)
    if session.best_weights is not None:
        _check_weights(exp, session.best_weights, "best_weights.npz", shapes, where)
    _check_optimizer(session, shapes, where)
    _check_history(session, where)


def _check_optimizer(session: Session, shapes: Mapping[str, tuple[int, ...]], where: Path) -> None:
    exp = session.experiment
    cls = OPTIMIZERS.get(exp.optimizer.name)
    dtype = np.dtype(exp.training.dtype)
    trainable = {k: s for k, s in shapes.items() if not k.endswith(("moving_mean", "moving_variance"))}
    expected = {f"slots/{p}/{slot}": (s, dtype) for p, s in trainable.items() for slot in cls.slot_names}
    expected.update({f"slots/{name}": ((), np.dtype(np.float64)) for name in cls.scalar_state_names})
    for key, a in session.optimizer.items():
        group = key.split("/", 1)[0]
        if group == "slots":
            if key not in expected:
                raise SessionError(f"{where}: optimizer.npz holds an unexpected slot {key[6:]!r} for a "
                                   f"{exp.optimizer.name} optimizer of this model")
            shape, want = expected[key]
            if a.shape != shape or a.dtype != want:
                raise SessionError(f"{where}: optimizer.npz[{key}] is {a.dtype} {a.shape}, the experiment needs "
                                   f"{want} {shape}")
        elif group in ("loop", "split"):
            if a.ndim != 1 or (group == "split" and a.dtype.kind not in "iu"):
                raise SessionError(f"{where}: optimizer.npz[{key}] must be a 1-D array"
                                   + (" of row indices" if group == "split" else ""))
        elif group != "rollback":
            raise SessionError(f"{where}: optimizer.npz holds an unexpected array {key!r}")
    if session.optimizer:
        for key in expected:
            if key not in session.optimizer:
                raise SessionError(f"{where}: optimizer.npz has no slot {key[6:]!r}, which a "
                                   f"{exp.optimizer.name} optimizer of this model needs")


def _check_history(session: Session, where: Path) -> None:
    try:
        check_history(session.history, len(session.experiment.model.layers) + 1, "history.npz")
    except ValueError as exc:
        raise SessionError(f"{where}: {exc}") from None
