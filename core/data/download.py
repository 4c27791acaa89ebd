"""Files fetched once from the web into the user's cache folder, verified before they are kept.

The book's data sets (Fashion-MNIST, MNIST, CIFAR-10) are downloaded on first use from their
official locations, under their official file names, into the cache folder:

* ``$GRADIENT_WORKBENCH_CACHE`` when set, else the platform's user cache folder
  (``platformdirs.user_cache_dir("gradient-workbench")``, e.g. ``~/.cache/gradient-workbench``
  on Linux), in a ``datasets`` sub-folder;
* ``$GRADIENT_WORKBENCH_MIRROR`` (a base URL) replaces the official location: a file is then
  fetched as ``MIRROR/<official file name>``, for networks that block the default host.

Nothing unverified is ever kept under the final name. A download goes to ``NAME.part`` in the
same folder, continues a partial ``.part`` with an HTTP range request where the server allows
it, is checked against the SHA-256 digest recorded in the code, and only then renamed (an
atomic ``os.replace``). A file already in the cache is checked again before use, so a user
may also put the files there by hand. Every failure (no network, a refused connection, a
server error, a truncated download, a wrong digest, cancelling) is one ``DatasetError`` (or
``LoadCancelled``) that says what to do, never a traceback.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .dataset import DatasetError, LoadCancelled

CACHE_VARIABLE = "GRADIENT_WORKBENCH_CACHE"
MIRROR_VARIABLE = "GRADIENT_WORKBENCH_MIRROR"
BLOCK_BYTES = 1 << 20          # read and hash in 1 MiB blocks: Cancel acts within one block
TIMEOUT_SECONDS = 30.0

ByteProgress = Callable[[int, int], "bool | None"]
"""``progress(done_bytes, total_bytes)`` while a file downloads (``total_bytes`` 0 when the
server does not say); returning ``False`` cancels with ``LoadCancelled``."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a published data set: its official name, where it lives, its size and digest."""

    name: str
    base_url: str          # the official folder; the file is base_url + "/" + name
    size: int
    sha256: str

    def url(self, mirror: str | None = None) -> str:
        base = (mirror if mirror else self.base_url).rstrip("/")
        return f"{base}/{self.name}"


def cache_dir() -> Path:
    """The folder downloaded data sets live in (created when first needed)."""
    override = os.environ.get(CACHE_VARIABLE, "").strip()
    if override:
        return Path(override).expanduser() / "datasets"
    import platformdirs  # only when no override is set: a test or a packaged app need not have it

    return Path(platformdirs.user_cache_dir("gradient-workbench", appauthor=False)) / "datasets"


def mirror() -> str | None:
    value = os.environ.get(MIRROR_VARIABLE, "").strip()
    return value or None


def sha256_of(path: Path, should_stop: Callable[[], bool] | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(BLOCK_BYTES):
            digest.update(block)
            if should_stop is not None and should_stop():
                raise LoadCancelled(f"checking {path.name} was cancelled")
    return digest.hexdigest()


def _by_hand(remote: RemoteFile, folder: Path) -> str:
    return (f"or download {remote.url()} yourself and put it, under that name, into {folder} "
            f"(SHA-256 {remote.sha256}); {MIRROR_VARIABLE} sets another download location")


def _verified(path: Path, remote: RemoteFile) -> bool:
    return path.is_file() and path.stat().st_size == remote.size and sha256_of(path) == remote.sha256


def fetch(remote: RemoteFile, progress: ByteProgress | None = None, *, folder: Path | None = None,
          timeout: float = TIMEOUT_SECONDS) -> Path:
    """The verified local copy of ``remote``, downloaded first if the cache does not hold it."""
    folder = folder if folder is not None else cache_dir()
    target = folder / remote.name
    if target.exists() and not target.is_file():
        raise DatasetError(f"{target} is not a regular file; remove it, {_by_hand(remote, folder)}")
    if target.is_file():
        if _verified(target, remote):
            return target
        # A damaged or foreign file under the official name: set aside, never used, never deleted.
        os.replace(target, target.with_name(target.name + ".bad"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cannot create the cache folder {folder} ({exc.strerror or exc}); set "
                           f"{CACHE_VARIABLE} to a folder you can write") from None
    partial = folder / (remote.name + ".part")
    url = remote.url(mirror())
    _download(url, partial, remote, progress, timeout)
    if partial.stat().st_size != remote.size:
        got = partial.stat().st_size
        if got > remote.size:
            partial.unlink()
        raise DatasetError(f"{remote.name}: the download from {url} has {got:,} bytes, expected "
                           f"{remote.size:,}; try again (a partial file is continued), {_by_hand(remote, folder)}")
    digest = sha256_of(partial)
    if digest != remote.sha256:
        partial.unlink()
        raise DatasetError(f"{remote.name}: the file downloaded from {url} has SHA-256 {digest}, expected "
                           f"{remote.sha256}; it was deleted. Try again, {_by_hand(remote, folder)}")
    os.replace(partial, target)
    return target


def _download(url: str, partial: Path, remote: RemoteFile, progress: ByteProgress | None,
              timeout: float) -> None:
    """Append to ``partial`` until the server has sent the whole file (or raise)."""
    have = partial.stat().st_size if partial.is_file() else 0
    if have >= remote.size:
        return
    request = urllib.request.Request(url, headers={"User-Agent": "gradient-workbench"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    folder = partial.parent
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http(s) URLs of our own)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:   # the range is past the end: start again
            partial.unlink()
            return _download(url, partial, remote, progress, timeout)
        raise DatasetError(f"{remote.name}: the server at {url} answered HTTP {exc.code} ({exc.reason}); "
                           f"{_by_hand(remote, folder)}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DatasetError(f"{remote.name}: cannot reach {url} ({reason}); check the network and try again, "
                           f"{_by_hand(remote, folder)}") from None
    with response:
        if have and response.status != 206:   # the server ignored the range: start from the beginning
            have = 0
        mode = "ab" if have else "wb"
        done = have
        try:
            with open(partial, mode) as fh:
                while block := response.read(BLOCK_BYTES):
                    fh.write(block)
                    done += len(block)
                    if done > remote.size:
                        break
                    if progress is not None and progress(done, remote.size) is False:
                        raise LoadCancelled(f"the download of {remote.name} was cancelled")
        except (urllib.error.URLError, OSError) as exc:
            raise DatasetError(f"{remote.name}: the download from {url} broke off after {done:,} of "
                               f"{remote.size:,} bytes ({exc}); try again to continue it, "
                               f"{_by_hand(remote, folder)}") from None
