"""Autosave and crash recovery: a run killed by a crash or a power cut loses at most one
autosave interval of work.

While training, an ``Autosaver`` writes a *recovery copy* of the session (the same format as
any session, written just as atomically) every epoch and at least every ``interval``
seconds. The copy of a saved session ``RUN.gwb`` sits next to it, as ``.RUN.gwb.recovery``;
the copy of a session never saved lives in the user-data folder
(``recovery_dir()``). A clean finish (the session saved, or the run discarded) deletes the
copy, so a copy that is still there at the next start means the run did not end cleanly:
``list_recoverable()`` finds them all (copies next to sessions are found through small
index files in ``recovery_dir()/index``) and ``discard()`` deletes one. Each window instance
writes its own copy and records itself as its owner; it holds an OS file lock for as long as
it runs (the kernel drops it when the process dies, however it dies), so only copies whose
owner is gone are offered: another running instance's live copy never is.

The platform's user-data folder: ``$XDG_DATA_HOME`` (default ``~/.local/share``) on Linux,
``~/Library/Application Support`` on macOS, ``%LOCALAPPDATA%`` on Windows; the environment
variable ``GRADIENT_WORKBENCH_DATA`` replaces it (tests, portable installs).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt

from core.engine.validation import read_regular

from .format import SessionError, atomic_write, peek_session
from .trainer_io import Snapshot, take_snapshot, write_snapshot

DATA_ENV = "GRADIENT_WORKBENCH_DATA"
RECOVERY_SUFFIX = ".recovery"
DEFAULT_INTERVAL = 60.0
DEFAULT_EPOCH_GAP = 10.0  # seconds: epoch ends closer than this to the last copy are not copied


# ----------------------------------------------------------------------------- where


def user_data_dir(environ: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    """The folder for the app's own files (not created here)."""
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if env.get(DATA_ENV):
        return Path(env[DATA_ENV]).expanduser()
    home = Path(env.get("HOME") or Path.home())
    if platform.startswith("win"):
        base = Path(env["LOCALAPPDATA"]) if env.get("LOCALAPPDATA") else home / "AppData" / "Local"
        return base / "Gradient Workbench"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "Gradient Workbench"
    xdg = env.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".local" / "share"  # XDG: ignore relative
    return base / "gradient-workbench"


def recovery_dir(environ: Mapping[str, str] | None = None) -> Path:
    return user_data_dir(environ) / "recovery"


def new_untitled_id() -> str:
    """A name for the recovery copy of a session that has no file yet (unique per run)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"untitled-{stamp}-{os.getpid()}-{secrets.token_hex(2)}"


def recovery_path_for(session_path: str | Path | None, untitled_id: str | None = None,
                      instance: str | None = None) -> Path:
    """``.RUN.gwb.recovery`` next to a saved session (``.RUN.gwb.<instance>.recovery`` for the
    copy of one instance of the window, so two windows on the same file never share one);
    ``recovery_dir()/<id>.gwb`` for an unsaved one."""
    if session_path is not None:
        path = Path(session_path)
        return path.with_name(f".{path.name}{'.' + instance if instance else ''}{RECOVERY_SUFFIX}")
    return recovery_dir() / f"{untitled_id or new_untitled_id()}.gwb"


# ----------------------------------------------------------------------------- who owns a copy

# Each running instance holds an OS lock on its own lock file for as long as it lives; the
# kernel releases it when the process ends, however it ends. A recovery copy records its
# owner, and is offered as "left by a crash" only when its owner's lock can be taken.
_instance: tuple[str, Any] | None = None


def _lock_file(owner: str) -> Path:
    return recovery_dir() / "locks" / f"{owner}.lock"


def _try_lock(fh: Any) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:  # Windows
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def instance_id() -> str:
    """This process's name as the owner of recovery copies; the first call takes its lock."""
    global _instance
    if _instance is None:
        owner = f"{os.getpid()}-{secrets.token_hex(3)}"
        path = _lock_file(owner)
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "a+b")  # kept open (and locked) until the process ends
        _try_lock(fh)
        _instance = (owner, fh)
    return _instance[0]


def owner_alive(owner: Any) -> bool:
    """True while the instance that owns a copy runs (its lock is held). Copies without an
    owner (written by the command line, or by an older version) count as left behind."""
    if not isinstance(owner, str) or not owner or "/" in owner or "\\" in owner:
        return False
    if _instance is not None and owner == _instance[0]:
        return True
    path = _lock_file(owner)
    try:
        fh = open(path, "a+b")
    except OSError:
        return False
    with fh:
        if not _try_lock(fh):
            return True
    with contextlib.suppress(OSError):
        path.unlink()  # its owner is gone; the lock file is not needed any more
    return False


def _index_file(recovery_path: Path) -> Path:
    key = hashlib.sha256(str(recovery_path.resolve()).encode()).hexdigest()[:24]
    return recovery_dir() / "index" / f"{key}.json"


# ----------------------------------------------------------------------------- what is there


@dataclass(frozen=True)
class Recoverable:
    """A recovery copy found on disk: what the "restore?" question needs to say."""

    path: Path                      # the recovery copy (a session file)
    session_path: Path | None       # the saved session it belongs to; None if never saved
    name: str                       # the experiment's name
    epoch: int                      # epochs complete in the copy
    step: int
    saved: float                    # when the copy was written (seconds since the epoch)
    session_saved: float | None     # when the session file was last saved, if it exists

    @property
    def newer_than_session(self) -> bool:
        """True unless the session was saved after the copy (then the copy holds nothing new)."""
        return self.session_saved is None or self.saved > self.session_saved


def describe_copy(path: Path, session_path: Path | None) -> Recoverable | None:
    """What a recovery copy holds, or ``None`` when it cannot be read (half-written by a crash)."""
    try:
        _, experiment, state = peek_session(path)
        saved = path.stat().st_mtime
    except (SessionError, OSError):
        return None  # half a file or not ours: nothing to offer
    try:
        session_saved = session_path.stat().st_mtime if session_path is not None else None
    except OSError:
        session_saved = None
    step, epoch = state.get("step", 0), state.get("epoch", 0)
    return Recoverable(path=path, session_path=session_path, name=str(experiment.get("name", "?")),
                       epoch=epoch if isinstance(epoch, int) else 0, step=step if isinstance(step, int) else 0,
                       saved=saved, session_saved=session_saved)


def register(recovery_path: str | Path, session_path: str | Path | None, owner: str | None = None) -> None:
    """Note a recovery copy that lives outside ``recovery_dir()`` so the next start finds it,
    and (any copy) the instance that owns it."""
    recovery_path = Path(recovery_path)
    if recovery_path.resolve().parent == recovery_dir().resolve() and owner is None:
        return
    index = _index_file(recovery_path)
    index.parent.mkdir(parents=True, exist_ok=True)
    entry = {"recovery": str(recovery_path.resolve()),
             "session": None if session_path is None else str(Path(session_path).resolve()), "owner": owner}
    atomic_write(index, lambda fh: fh.write(json.dumps(entry).encode("utf-8")))


def list_recoverable() -> list[Recoverable]:
    """Every recovery copy that a run which did not end cleanly left, newest first. Reads only;
    copies that cannot be read (half-written by a crash) are left out."""
    found: dict[Path, Recoverable] = {}
    live: set[Path] = set()  # copies whose owner still runs: being written, not left behind
    folder = recovery_dir()
    for index in sorted((folder / "index").glob("*.json")) if (folder / "index").is_dir() else []:
        try:
            entry = json.loads(read_regular(index, 64 * 1024))  # small files of ours; a pipe is skipped
            path = Path(entry["recovery"])
            session = None if entry.get("session") is None else Path(entry["session"])
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            continue
        if owner_alive(entry.get("owner")):
            live.add(path.resolve())
            continue
        item = describe_copy(path, session) if path.is_file() and path.resolve().parent != folder.resolve() else None
        if item is not None:
            found[path.resolve()] = item
    for path in sorted(folder.glob("*.gwb")) if folder.is_dir() else []:
        item = describe_copy(path, None) if path.resolve() not in live else None
        if item is not None:
            found[path.resolve()] = item
    return sorted(found.values(), key=lambda r: r.saved, reverse=True)


def discard(item: Recoverable | str | Path) -> None:
    """Delete a recovery copy and its index entry (missing files are fine)."""
    path = Path(item.path if isinstance(item, Recoverable) else item)
    for file in (path, _index_file(path)):
        try:
            file.unlink()
        except FileNotFoundError:
            pass


# ----------------------------------------------------------------------------- when


class Autosaver:
    """Decides when to write the recovery copy and writes it.

    ``due(kind, step, epoch)`` answers for a trainer event (``"step"`` or ``"epoch"``): at the
    end of an epoch (``every_epoch``) once ``epoch_gap`` seconds (default: 10 s, or the interval if
    shorter) have passed since the last copy,
    and whenever ``interval`` seconds of ``clock`` have passed, never twice for the same moment.
    The gap matters for short epochs: the default experiment ends an epoch every 25 ms, and each
    copy stops training for the state to be taken (in the window: sent through the pipe by the
    training process) and then compresses the whole session: 17 ms of CPU for the default
    experiment, whose epoch trains in 28 ms (measured), so copying at every epoch end cost more
    than half again the training's CPU time.
    ``maybe_save(trainer, kind)`` is ``due``, ``mark`` and a synchronous write, for the CLI; a GUI calls ``due`` and
    ``mark``, takes a snapshot on the training thread and passes it to ``write`` on another.
    A failed write (a full disk) does not stop training: it is kept in ``last_error`` and
    retried at the next chance.
    """

    def __init__(self, path: str | Path, *, every_epoch: bool = True, interval: float = DEFAULT_INTERVAL,
                 epoch_gap: float | None = None, clock: Callable[[], float] = time.monotonic,
                 session_path: str | Path | None = None, register_copy: bool = False,
                 owner: str | None = None) -> None:
        if not (isinstance(interval, (int, float)) and interval > 0):
            raise ValueError(f"interval: must be a positive number of seconds, got {interval!r}")
        if epoch_gap is None:
            epoch_gap = min(DEFAULT_EPOCH_GAP, interval)
        if not (isinstance(epoch_gap, (int, float)) and 0 <= epoch_gap <= interval):
            raise ValueError(f"epoch_gap: must be between 0 and the interval ({interval:g} s), got {epoch_gap!r}")
        self.path = Path(path)
        self.every_epoch = bool(every_epoch)
        self.interval = float(interval)
        self.epoch_gap = float(epoch_gap)
        self.clock = clock
        self.session_path = None if session_path is None else Path(session_path)
        self.register_copy = register_copy
        self.owner = owner  # the instance writing the copy (``instance_id()``), recorded in its index entry
        self.last_saved = clock()
        self.saved_at: tuple[int, int] | None = None  # (step, epoch) of the last copy
        self.saves = 0
        self.last_error: Exception | None = None

    def due(self, kind: str, step: int, epoch: int) -> bool:
        if (step, epoch) == self.saved_at:
            return False
        since = self.clock() - self.last_saved
        late = since >= self.interval
        if kind == "step":
            return late
        return kind == "epoch" and (late or (self.every_epoch and since >= self.epoch_gap))

    def mark(self, step: int, epoch: int) -> None:
        """A copy of this moment is being taken: restart the interval."""
        self.last_saved = self.clock()  # also if the write fails: retry after the interval, not every step
        self.saved_at = (step, epoch)

    def write(self, snapshot: Snapshot) -> bool:
        """Write the copy (any thread); True if it was written."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)  # the user-data folder may be new
            if self.register_copy:
                register(self.path, self.session_path, self.owner)
            write_snapshot(self.path, snapshot)
        except (OSError, ValueError, TypeError) as exc:  # a full disk, or a state that cannot be written
            self.last_error = exc
            return False
        self.last_error = None
        self.saves += 1
        return True

    def maybe_save(self, trainer: Any, kind: str, extra_state: Mapping[str, Any] | None = None) -> bool:
        if not self.due(kind, trainer.step, trainer.epoch):
            return False
        self.mark(trainer.step, trainer.epoch)
        return self.write(take_snapshot(trainer, extra_state))

    def finish(self) -> None:
        """The run ended cleanly (its session is saved): the copy is not needed any more."""
        discard(self.path)
