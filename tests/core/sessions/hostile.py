"""Generators of hostile files for the tests: zip archives written byte by byte (so a member can
claim any size and hold any deflate stream), gigabyte zip bombs that are a megabyte on disk,
and a child process whose address space is capped, so a loader that allocates without bound
fails there with a MemoryError instead of taking the test machine down."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[3]
MiB = 2**20


@dataclass(frozen=True)
class Entry:
    """One member of a hand-written zip: ``payload`` as stored, ``size`` and ``crc`` as claimed."""

    name: str
    payload: bytes
    size: int
    crc: int
    method: int = 8  # deflate
    version: int = 20  # version needed to extract (2.0)
    flags: int = 0


def deflated(data: bytes, name: str) -> Entry:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return Entry(name, c.compress(data) + c.flush(), len(data), zlib.crc32(data))


def stored(data: bytes, name: str) -> Entry:
    return Entry(name, data, len(data), zlib.crc32(data), method=0)


def zeros_bomb(name: str, n_mib: int, prefix: bytes = b"") -> Entry:
    """``prefix`` then ``n_mib`` MiB of zeros, deflated to about 1 KB per MiB: the 1 MiB block is
    compressed once after a full flush (which makes it byte-aligned and independent of what came
    before), so the stream is that block repeated, built in milliseconds."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH) if prefix else b""
    block = c.compress(bytes(MiB)) + c.flush(zlib.Z_FULL_FLUSH)
    tail = c.flush()
    crc = zlib.crc32(prefix)
    zero = bytes(MiB)
    for _ in range(n_mib):
        crc = zlib.crc32(zero, crc)
    return Entry(name, head + block * n_mib + tail, len(prefix) + n_mib * MiB, crc)


def zip_bytes(entries: list[Entry]) -> bytes:
    """A zip archive (local headers, data, central directory, end record) of ``entries``."""
    out = io.BytesIO()
    central = []
    for e in entries:
        name = e.name.encode()
        offset = out.tell()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, e.version, e.flags, e.method, 0, 0x21, e.crc,
                              len(e.payload), e.size, len(name), 0))
        out.write(name + e.payload)
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, e.version, e.flags, e.method, 0, 0x21,
                                   e.crc, len(e.payload), e.size, len(name), 0, 0, 0, 0, 0, offset) + name)
    start = out.tell()
    for record in central:
        out.write(record)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), out.tell() - start, start, 0))
    return out.getvalue()


def npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def session_with(members: dict[str, bytes], replace: dict[str, Entry]) -> bytes:
    """A session archive of ``members`` (deflated) with some replaced by hand-made entries; the
    manifest claims a checksum for every member (the replaced ones' are wrong: a loader must
    never get as far as comparing them)."""
    manifest = json.loads(members["manifest.json"])
    manifest["sha256"].update({name: "0" * 64 for name in replace})
    entries = [deflated(json.dumps(manifest).encode(), "manifest.json")]
    for name, data in members.items():
        if name != "manifest.json":
            entries.append(replace[name] if name in replace else deflated(data, name))
    return zip_bytes(entries)


CHILD = """
import json, resource, sys, time
limit = int(sys.argv[1]) * 2**20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from core.cli.main import run_headless
start = time.perf_counter()
rc = run_headless(sys.argv[2:])
seconds = time.perf_counter() - start
try:  # this process's own peak (ru_maxrss would include the forking parent's size on Linux)
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
sys.stdout.write(json.dumps({"rc": rc, "seconds": seconds, "peak_mb": peak}))
"""


@dataclass
class Outcome:
    rc: int           # exit status of the command (the child's own if it crashed)
    stderr: str
    seconds: float
    peak_mb: float    # resident-set peak of the child (0 if it crashed)

    @property
    def error_line(self) -> str:
        """The single ``error: ...`` line a refusal prints (fails if there is anything else)."""
        lines = self.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), self.stderr[-2000:]
        return lines[0]


def run_cli(*argv: str, memory_mb: int = 700, timeout: float = 30.0) -> Outcome:
    """``gradient-workbench *argv`` in a child limited to ``memory_mb`` of address space; a
    hang fails the test after ``timeout`` seconds (the child is killed)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    try:
        proc = subprocess.run([sys.executable, "-c", CHILD, str(memory_mb), *argv], capture_output=True,
                              text=True, timeout=timeout, env=env, cwd=REPO)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"gradient-workbench {' '.join(argv)} still running after {timeout} s") from None
    if proc.returncode != 0 or not proc.stdout:
        return Outcome(proc.returncode, proc.stderr, float("nan"), 0.0)
    result = json.loads(proc.stdout.splitlines()[-1])
    return Outcome(result["rc"], proc.stderr, result["seconds"], result["peak_mb"])
