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

import contextlib
import datetime as _dt
import hashlib
import io
import json
import math
import os
import secrets
import stat
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from core import __version__
from core.checkpoints import interval_problem, split_arrays
from core.data.dataset import MAX_VALUES
from core.engine.diagnostics import EPOCH_METRICS, LAYER_QUANTITIES, STEP_QUANTITIES, check_history
from core.engine.distributions import KINDS as DISTRIBUTION_KINDS
from core.engine.distributions import check_distributions, kind_columns, row_capacity
from core.engine.instruments import LAYER_INSTRUMENTS, STEP_INSTRUMENTS
from core.engine.network import parameter_shapes
from core.engine.optimizers import OPTIMIZERS
from core.engine.validation import NotARegularFile, open_regular, quote
from core.spec import MAX_PARAMETERS, Experiment, SpecError, parse_experiment

FORMAT = "gradient-workbench.session"
VERSION = 3
MEMBERS = ("manifest.json", "experiment.json", "weights.npz", "best_weights.npz", "optimizer.npz",
           "state.json", "history.npz", "checkpoints.npz")
#: The format that added each member not in every format.
MEMBER_SINCE = {"checkpoints.npz": 3}
REQUIRED = ("manifest.json", "experiment.json", "weights.npz", "history.npz")
MAX_MEMBER_BYTES = 2 * 1024**3      # a member claiming more than 2 GiB is refused unread
MAX_JSON_BYTES = 16 * 1024**2
READ_CHUNK = 2**20                  # members are inflated and checksummed this many bytes at a time
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
    #: ``<step>/<trainer key>`` arrays of the checkpoints ``state["checkpoints"]`` lists (format 3)
    checkpoints: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def lineage(self) -> list[dict[str, Any]]:
        """Where each reused layer came from (``model.transfer``); empty if none was."""
        lineage = self.state.get("lineage", [])
        return lineage if isinstance(lineage, list) else []


# ----------------------------------------------------------------------------- migrations

# A session read as plain data: "manifest", "experiment", "state" (JSON values) and "weights",
# "best_weights", "optimizer", "history" (dicts of arrays; absent members are missing keys).
Members = dict[str, Any]

def _one_cycle_kept_its_momentum(members: Members) -> Members:
    """Format 1 → 2. Since format 2, 1cycle also cycles the momentum β of the ``momentum`` and
    ``nesterov`` optimizers (0.95 → 0.85 → 0.95, schedule parameters ``max_momentum`` and
    ``min_momentum``); a format-1 run trained with a constant β. Its schedule is given
    ``max_momentum: null`` (β left alone), so it resumes and branches exactly as it trained."""
    schedule = members["experiment"].get("schedule") if isinstance(members["experiment"], dict) else None
    if isinstance(schedule, dict) and schedule.get("name") == "one_cycle" and "max_momentum" not in schedule:
        schedule["max_momentum"] = None
    return members


def _no_checkpoints(members: Members) -> Members:
    """Format 2 → 3. Format 3 adds checkpoints (``checkpoints.npz`` and ``state.json``'s
    ``checkpoints``); a format-2 run has none, so a branch of it replays from its start, and
    it takes its first checkpoint when it trains on. A ``checkpoints`` value in a format-2
    ``state.json`` was never written by a save and is dropped."""
    if isinstance(members["state"], dict):
        members["state"].pop("checkpoints", None)
    return members


#: ``MIGRATIONS[v]`` turns the members of a format-``v`` file into format ``v + 1``. Loading
#: applies them in turn up to ``VERSION``, so a file of every released format keeps loading
#: (tests/data keeps one of each: tests/data/make_fixtures.py writes the current one).
MIGRATIONS: dict[int, Callable[[Members], Members]] = {1: _one_cycle_kept_its_momentum, 2: _no_checkpoints}


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
    checkpoints = group("checkpoints/")
    if checkpoints:
        members["checkpoints.npz"] = _npz_bytes(checkpoints)
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


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: Path, limit: int,
                 sha256: str | None = None) -> bytearray:
    """A member's bytes, streamed a chunk at a time: never more than ``limit`` bytes, nor more
    than its header claims (``zipfile`` stops there; data past it fails the CRC), are
    inflated, and the checksum is computed while reading, so a damaged or oversized member is
    refused before anything parses it."""
    name = _quoted_name(info.filename)
    if info.file_size > limit:
        why = "" if name.endswith(".json") else " (what this experiment's arrays can need, with room to spare)"
        raise SessionError(f"{where}: member {name} claims {info.file_size:,} bytes, more than the {limit:,} "
                           f"allowed; refused unread{why}")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise SessionError(f"{where}: member {name} uses zip compression method {info.compress_type}; "
                           "sessions are stored or deflated only")
    data = bytearray(info.file_size)
    view = memoryview(data)
    digest = hashlib.sha256()
    done = 0
    try:
        with zf.open(info) as fh:
            while done < info.file_size:
                got = fh.readinto(view[done:done + READ_CHUNK])
                if not got:
                    break
                digest.update(view[done:done + got])
                done += got
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error, NotImplementedError,
            RuntimeError) as exc:  # zlib errors, a bad CRC, an unsupported zip version
        raise SessionError(f"{where}: member {name} is damaged ({quote(str(exc))})") from None
    if done != info.file_size:
        raise SessionError(f"{where}: member {name} ends after {done:,} of the {info.file_size:,} bytes "
                           "its header claims; the file is damaged")
    if sha256 is not None and digest.hexdigest() != sha256:
        raise SessionError(f"{where}: checksum mismatch in {name}: the file is damaged")
    return data


def _quoted_name(name: str) -> str:
    """A member name as messages show it: bare when it is one of ours, quoted otherwise."""
    return name if name in MEMBERS else quote(name)


def _load_npz(data: bytes | bytearray, name: str, where: Path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` member, read from each ``.npy`` header (never unpickled): an
    array's size is checked against the bytes its entry holds before anything is allocated."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise SessionError(f"{where}: {name} is not a readable .npz archive ({quote(str(exc))})") from None
    out: dict[str, np.ndarray] = {}
    with archive:
        infos = archive.infolist()
        # np.savez stores its arrays uncompressed, so together they hold about as many bytes as
        # the member itself: an entry claiming more is a bomb, refused before it is inflated.
        claimed = sum(info.file_size for info in infos)
        if claimed > len(data) + 2**20:
            raise SessionError(f"{where}: {name} claims to unpack to {claimed:,} bytes from {len(data):,}; "
                               "a session's arrays are stored uncompressed, so it is refused unread")
        for info in infos:
            key = info.filename[:-4] if info.filename.endswith(".npy") else None
            if not key or key in out:
                problem = "a second" if key in out else "a member that is not an .npy array:"
                raise SessionError(f"{where}: {name} holds {problem} {quote(info.filename)}")
            out[key] = _read_npy(archive, info, f"{name}[{quote(key)}]", where)
    return out


def _read_npy(archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str, where: Path) -> np.ndarray:
    """One array: its header parsed by ``numpy.lib.format`` (never unpickled), its size checked
    against the entry's before the buffer is allocated, then its bytes read into that buffer."""
    try:
        with archive.open(info) as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported")
            if dtype.hasobject:
                raise SessionError(f"{where}: {label.split('[')[0]} holds an object array, which is never loaded "
                                   f"(unpickling it could run code): {label}")
            if dtype.kind not in ALLOWED_KINDS + "U":
                raise SessionError(f"{where}: {label} has dtype {quote(str(dtype))}, which sessions never hold")
            nbytes = math.prod(shape) * dtype.itemsize
            if fh.tell() + nbytes != info.file_size:
                raise SessionError(f"{where}: {label} has shape {quote(tuple(shape))} of {dtype} "
                                   f"({nbytes:,} bytes), but its entry holds {info.file_size - fh.tell():,} bytes")
            raw = np.empty(nbytes, dtype=np.uint8)
            view = memoryview(raw)
            done = 0
            while done < nbytes:
                got = fh.readinto(view[done:done + READ_CHUNK])
                if not got:
                    raise EOFError(f"the array ends {nbytes - done:,} bytes early")
                done += got
            return raw.view(dtype).reshape(shape, order="F" if fortran_order else "C")
    except SessionError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, SyntaxError, zlib.error, NotImplementedError,
            RuntimeError, TypeError, OverflowError) as exc:
        raise SessionError(f"{where}: {label} is not a readable .npy array ({quote(str(exc))})") from None


def _load_json(data: bytes | bytearray, name: str, where: Path) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SessionError(f"{where}: {name} is not valid JSON ({exc})") from None
    except RecursionError:
        raise SessionError(f"{where}: {name} is nested too deeply to be a session's JSON") from None
    except ValueError as exc:  # an integer with more digits than Python converts
        raise SessionError(f"{where}: {name} is not valid JSON ({quote(str(exc))})") from None


@contextlib.contextmanager
def _open(where: Path) -> Iterator[zipfile.ZipFile]:
    try:
        fh = open_regular(where)
    except FileNotFoundError:
        raise SessionError(f"{where}: no such session file") from None
    except IsADirectoryError:
        raise SessionError(f"{where}: is a folder, not a session file") from None
    except NotARegularFile as exc:
        raise SessionError(f"{where}: is {exc.kind}, not a session file; only regular files are read") from None
    except PermissionError:
        raise SessionError(f"{where}: cannot be read: permission denied") from None
    except OSError as exc:
        raise SessionError(f"{where}: cannot be read ({quote(exc.strerror or str(exc))})") from None
    with fh:
        try:
            zf = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as exc:
            raise SessionError(f"{where}: not a Gradient Workbench session (not a readable zip archive: "
                               f"{quote(str(exc))}); it may be truncated") from None
        except OSError as exc:
            raise SessionError(f"{where}: cannot be read ({quote(exc.strerror or str(exc))})") from None
        with zf:
            yield zf


def _array_budgets(where: Path, manifest: dict[str, Any], raw: Mapping[str, bytes | bytearray]) -> dict[str, int]:
    """How many bytes each ``.npz`` member may hold: what the experiment's architecture (and the
    input and output widths and recorded steps in ``state.json``) can need, with room to
    spare, never more than ``MAX_MEMBER_BYTES``. A member claiming more is refused unread, so a
    small file cannot make the loader inflate gigabytes of zeros."""
    generic = dict.fromkeys(("weights.npz", "best_weights.npz", "optimizer.npz", "history.npz", "checkpoints.npz"),
                            MAX_MEMBER_BYTES)
    if manifest["version"] != VERSION or "experiment.json" not in raw:  # older files: migrated later
        return generic
    try:
        experiment = parse_experiment(_load_json(raw["experiment.json"], "experiment.json", where))
    except SpecError as exc:
        raise SessionError(f"{where}: experiment.json is not a valid experiment: {exc}") from None
    state = _load_json(raw["state.json"], "state.json", where) if "state.json" in raw else {}
    if not isinstance(state, dict):
        raise SessionError(f"{where}: state.json must hold a JSON object")
    counts = {key: _state_count(state, key, where) for key in ("n_inputs", "n_outputs", "recorded_steps",
                                                                "epochs_recorded")}
    itemsize = 8  # float64 at most (float32 sessions need half)
    n_layers = len(experiment.model.layers) + 1
    per_array = 1024  # an .npy header plus its zip entries
    budgets = dict(generic)
    if counts["n_inputs"] is not None and counts["n_outputs"] is not None:
        shapes = parameter_shapes(experiment.model, counts["n_inputs"], counts["n_outputs"])
        n_values = sum(math.prod(s) for s in shapes.values())
        if n_values > MAX_PARAMETERS:
            raise SessionError(f"{where}: state.json says the model takes {counts['n_inputs']:,} inputs and "
                               f"{counts['n_outputs']:,} outputs, which with this experiment's layers makes "
                               f"{n_values:,} parameters; at most {MAX_PARAMETERS:,} are allowed")
        weights = n_values * itemsize + per_array * len(shapes)
        n_slots = len(OPTIMIZERS.get(experiment.optimizer.name).slot_names)
        # slots, plus a roll-back copy of weights, best weights and slots; row indices of the data
        rows = _rows_bound(experiment, state, counts["n_inputs"])
        optimizer = (2 * n_slots + 2) * weights + 4 * rows * 8 + 64 * per_array
        # each checkpoint: what optimizer.npz holds plus its own weights and best weights
        checkpoint = optimizer + 2 * weights
        budgets.update({"weights.npz": weights, "best_weights.npz": weights, "optimizer.npz": optimizer,
                        "checkpoints.npz": experiment.training.checkpoints.keep * checkpoint})
    if counts["recorded_steps"] is not None and counts["epochs_recorded"] is not None:
        # every per-step table: the diagnostics, the instruments' and the step counter itself
        per_step = ((len(LAYER_QUANTITIES) + len(LAYER_INSTRUMENTS)) * n_layers
                    + len(STEP_QUANTITIES) + len(STEP_INSTRUMENTS) + 1) * itemsize
        # the distributions over time: a bounded table of their own (core.engine.distributions)
        distributions = row_capacity(n_layers) * n_layers * sum(kind_columns(k) for k in DISTRIBUTION_KINDS) * 4 \
            + (row_capacity(n_layers) + 1) * 8 + 4 * 128 * itemsize + 10 * per_array
        history = (counts["recorded_steps"] * per_step + counts["epochs_recorded"] * len(EPOCH_METRICS) * itemsize
                   + n_layers * 4 * 1024 + 32 * per_array + distributions)
        budgets["history.npz"] = history
    # Room to spare (2x and 1 MiB), but never past the absolute cap.
    return {name: min(2 * size + 2**20, MAX_MEMBER_BYTES) for name, size in budgets.items()}


def _rows_bound(experiment: Experiment, state: Mapping[str, Any], n_inputs: int) -> int:
    """How many data rows the session's index arrays (split, permutation) can cover: the
    training rows its schedule was planned for (steps per epoch × batch size) over the share
    of the data kept for training; without a plan, all that ``MAX_VALUES`` allows."""
    most = MAX_VALUES // max(n_inputs, 1)
    plan = state.get("schedule_plan")
    steps = plan.get("steps_per_epoch") if isinstance(plan, dict) else None
    kept = 1.0 - experiment.data.validation_split - experiment.data.test_split
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1 or kept <= 0:
        return most
    return min(most, int(steps * experiment.training.batch_size / kept) + 1)


def _state_count(state: Mapping[str, Any], key: str, where: Path) -> int | None:
    """A count from ``state.json`` (None when absent); anything but a non-negative integer is refused."""
    if key not in state:
        return None
    value = state[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SessionError(f"{where}: state.json[{key}] must be a non-negative integer, got {quote(value)}")
    return value


def _read_verified(where: Path, names: tuple[str, ...] | None = None) -> tuple[dict[str, Any], dict[str, bytes]]:
    """(manifest, raw member bytes) after the archive-level checks; ``names`` limits which
    members are read (all by default). Every member is checked against its manifest checksum
    while it is read; the JSON members are read first, so the arrays' size limits can follow
    from the experiment they describe."""
    with _open(where) as zf:
        infos: dict[str, zipfile.ZipInfo] = {}
        for info in zf.infolist():
            _check_name(info.filename, where)
            if info.filename in infos:
                raise SessionError(f"{where}: member {_quoted_name(info.filename)} appears twice; "
                                   "which one is meant is unclear")
            if info.flag_bits & 0x1:
                raise SessionError(f"{where}: member {_quoted_name(info.filename)} is encrypted; sessions never are")
            infos[info.filename] = info
        if "manifest.json" not in infos:
            raise SessionError(f"{where}: missing member manifest.json; the file is incomplete "
                               "or not a Gradient Workbench session")
        manifest = _load_json(_read_member(zf, infos["manifest.json"], where, MAX_JSON_BYTES),
                              "manifest.json", where)
        version = _check_manifest(manifest, where)
        allowed = [m for m in MEMBERS if MEMBER_SINCE.get(m, 1) <= version]
        for name in infos:
            if name not in allowed:
                raise SessionError(f"{where}: unexpected member {quote(name)}; a format-{version} session holds "
                                   f"only {', '.join(allowed)}")
        missing = [m for m in REQUIRED if m not in infos]
        if missing:
            raise SessionError(f"{where}: missing member {missing[0]}; the file is incomplete")
        sums = manifest.get("sha256")
        if not isinstance(sums, dict):
            raise SessionError(f"{where}: manifest.json has no checksums (sha256)")
        wanted = [n for n in infos if n != "manifest.json" and (names is None or n in names)]
        for name in wanted:
            if not isinstance(sums.get(name), str):
                raise SessionError(f"{where}: manifest.json has no checksum for {name}")
        raw: dict[str, Any] = {}
        for name in wanted:
            if name.endswith(".json"):
                raw[name] = _read_member(zf, infos[name], where, MAX_JSON_BYTES, sums[name])
        budgets = _array_budgets(where, manifest, raw) if any(n.endswith(".npz") for n in wanted) else {}
        for name in wanted:
            if name.endswith(".npz"):
                raw[name] = _read_member(zf, infos[name], where, budgets[name], sums[name])
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
    for key in ("weights", "best_weights", "optimizer", "history", "checkpoints"):
        if f"{key}.npz" in raw:
            members[key] = _load_npz(raw[f"{key}.npz"], f"{key}.npz", where)
    members = migrate(members, manifest["version"], where)
    try:
        experiment = parse_experiment(members["experiment"])
    except SpecError as exc:
        raise SessionError(f"{where}: experiment.json is not a valid experiment: {exc}") from None
    state = members["state"]
    check_state(state, where)
    session = Session(experiment=experiment, weights=members["weights"], history=members["history"], state=state,
                      optimizer=members.get("optimizer", {}), best_weights=members.get("best_weights"),
                      manifest=manifest, path=where, checkpoints=members.get("checkpoints", {}))
    check_arrays(session)
    return session


def peek_session(path: str | Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(manifest, experiment JSON, state) of a session, verified but without its arrays: a
    cheap look for lists such as the recovery dialog's."""
    where = Path(path)
    manifest, raw = _read_verified(where, ("experiment.json", "state.json"))
    experiment = _load_json(raw["experiment.json"], "experiment.json", where)
    state = _load_json(raw["state.json"], "state.json", where) if "state.json" in raw else {}
    if not isinstance(experiment, dict):
        raise SessionError(f"{where}: experiment.json must hold a JSON object")
    check_state(state, where)
    return manifest, experiment, state


#: Counts in ``state.json``: each, when present, a non-negative integer.
STATE_COUNTS = ("step", "epoch", "batch_index", "rollbacks", "recorded_steps", "epochs_recorded",
                "optimizer_iterations", "n_inputs", "n_outputs")


def check_state(state: Any, where: Path) -> None:
    """The values of ``state.json`` that readers use (counts, flags, events, lineage) have the
    types a save writes: a file that loads can be shown, resumed and saved again."""
    if not isinstance(state, dict):
        raise SessionError(f"{where}: state.json must hold a JSON object")
    for key in STATE_COUNTS:
        _state_count(state, key, where)
    if "finished" in state and not isinstance(state["finished"], bool):
        raise SessionError(f"{where}: state.json[finished] must be true or false, got {quote(state['finished'])}")
    for key in ("lr_scale", "epoch_seconds"):
        value = state.get(key, 1.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value < 0:
            raise SessionError(f"{where}: state.json[{key}] must be a finite non-negative number, got {quote(value)}")
    for key in ("events", "lineage"):
        entries = state.get(key, [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise SessionError(f"{where}: state.json[{key}] must be a list of JSON objects, got {quote(entries)}")
    for i, event in enumerate(state.get("events", [])):
        step, message = event.get("step"), event.get("message")
        if isinstance(step, bool) or not isinstance(step, int) or not isinstance(message, str):
            raise SessionError(f"{where}: state.json[events][{i}] must have an integer step and a text message, "
                               f"got {quote(event)}")
    for i, entry in enumerate(state.get("lineage", [])):
        layer = entry.get("layer")
        if isinstance(layer, bool) or not isinstance(layer, int) or layer < 0:
            raise SessionError(f"{where}: state.json[lineage][{i}][layer] must be a hidden-layer index, "
                               f"got {quote(layer)}")


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
    stored = _state_count(session.state, what, where)
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
    _check_optimizer(exp, session.optimizer, shapes, "optimizer.npz", where)
    _check_history(session, where)
    _check_checkpoints(session, shapes, where)


def _check_optimizer(exp: Experiment, arrays: Mapping[str, np.ndarray], shapes: Mapping[str, tuple[int, ...]],
                     name: str, where: Path, required: bool = False) -> None:
    """The optimizer slots (``slots/<param>/<slot>``) and the loop's arrays of ``name``; every
    slot must be there if any array is, or if ``required``."""
    cls = OPTIMIZERS.get(exp.optimizer.name)
    dtype = np.dtype(exp.training.dtype)
    trainable = {k: s for k, s in shapes.items() if not k.endswith(("moving_mean", "moving_variance"))}
    expected = {f"slots/{p}/{slot}": (s, dtype) for p, s in trainable.items() for slot in cls.slot_names}
    expected.update({f"slots/{name}": ((), np.dtype(np.float64)) for name in cls.scalar_state_names})
    for key, a in arrays.items():
        group = key.split("/", 1)[0]
        if group == "slots":
            if key not in expected:
                raise SessionError(f"{where}: {name} holds an unexpected slot {key[6:]!r} for a "
                                   f"{exp.optimizer.name} optimizer of this model")
            shape, want = expected[key]
            if a.shape != shape or a.dtype != want:
                raise SessionError(f"{where}: {name}[{key}] is {a.dtype} {a.shape}, the experiment needs "
                                   f"{want} {shape}")
        elif group in ("loop", "split"):
            if a.ndim != 1 or (group == "split" and a.dtype.kind not in "iu"):
                raise SessionError(f"{where}: {name}[{key}] must be a 1-D array"
                                   + (" of row indices" if group == "split" else ""))
        elif group != "rollback":
            raise SessionError(f"{where}: {name} holds an unexpected array {key!r}")
    if arrays or required:
        for key in expected:
            if key not in arrays:
                raise SessionError(f"{where}: {name} has no slot {key[6:]!r}, which a "
                                   f"{exp.optimizer.name} optimizer of this model needs")


def _check_checkpoints(session: Session, shapes: Mapping[str, tuple[int, ...]], where: Path) -> None:
    """``state.json``'s ``checkpoints`` (an interval and the state of each) and
    ``checkpoints.npz`` (``<step>/<group>/...``: the weights, optimizer slots, best weights,
    data order and roll-back point of each) agree with each other and with the experiment's
    ``training.checkpoints``; every checkpoint's weights and slots have the shapes of the
    current ones. (Restoring one checks its state against the trainer, like the run's own.)"""
    exp, log, arrays = session.experiment, session.state.get("checkpoints"), session.checkpoints
    if log is None:
        if arrays:
            raise SessionError(f"{where}: checkpoints.npz holds arrays, but state.json lists no checkpoints")
        return
    if not isinstance(log, dict) or set(log) != {"interval", "states"} or not isinstance(log["states"], list) \
            or not all(isinstance(s, dict) for s in log["states"]):
        raise SessionError(f"{where}: state.json[checkpoints] must be an object with an interval and a list of "
                           f"states, got {quote(log)}")
    steps = [s.get("step") for s in log["states"]]
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in steps):
        raise SessionError(f"{where}: state.json[checkpoints]: every state needs an integer step, got {quote(steps)}")
    problem = interval_problem(exp.training.checkpoints, log["interval"], steps)
    if problem:
        raise SessionError(f"{where}: state.json[checkpoints] {problem}")
    last = session.state.get("step")
    if steps and isinstance(last, int) and steps[-1] > last:
        raise SessionError(f"{where}: state.json[checkpoints] has a checkpoint at step {steps[-1]}, after the "
                           f"run's step {last}")
    try:
        grouped = split_arrays({f"checkpoints/{k}": a for k, a in arrays.items()})
    except ValueError as exc:
        raise SessionError(f"{where}: checkpoints.npz holds an unexpected array "
                           f"{quote(str(exc).split(':')[0][len('checkpoints/'):])}") from None
    unlisted = sorted(set(grouped) - set(steps))
    if unlisted:
        raise SessionError(f"{where}: checkpoints.npz holds arrays of step {unlisted[0]}, which "
                           f"state.json[checkpoints] does not list (it lists {steps})")
    for step in steps:
        own = grouped.get(step, {})
        label = f"checkpoints.npz[{step}]"

        def group(prefix: str, own: dict[str, np.ndarray] = own) -> dict[str, np.ndarray]:
            return {k[len(prefix):]: a for k, a in own.items() if k.startswith(prefix)}

        _check_weights(exp, group("weights/"), f"{label} weights", shapes, where)
        best = group("best/")
        if best:
            _check_weights(exp, best, f"{label} best weights", shapes, where)
        slots = {**{f"slots/{k}": a for k, a in group("optimizer/").items()},
                 **{k: a for k, a in own.items() if k.startswith(("loop/", "rollback/"))}}
        _check_optimizer(exp, slots, shapes, label, where, required=True)


def _check_history(session: Session, where: Path) -> None:
    try:
        check_history(session.history, len(session.experiment.model.layers) + 1, "history.npz")
        check_distributions(session.history, len(session.experiment.model.layers) + 1, "history.npz")
    except ValueError as exc:
        raise SessionError(f"{where}: {exc}") from None
