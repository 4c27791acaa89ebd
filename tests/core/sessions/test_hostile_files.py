"""Hostile or unusual files never hang, exhaust memory or end in a traceback: each is refused
with one line (``SessionError`` / ``SpecError``; the CLI exits 2), fast and in little memory.

The dangerous cases run the real command in a child process whose address space is capped
(``RLIMIT_AS``): before these fixes they ended there in a MemoryError (or a hang, caught by a
timeout) instead of using gigabytes of the test machine. Every bomb is generated, compressed,
by the test (``hostile.py``); none is stored in the repository."""

from __future__ import annotations

import io
import json
import os
import random
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.cli.main import describe_session, run_headless
from core.engine.validation import quote
from core.sessions.format import SessionError, load_session, peek_session
from core.sessions.trainer_io import restore_trainer, save_trainer
from core.spec import SpecError, load_experiment, parse_experiment
from core.training import Trainer
from tests.core.sessions.test_session_loading import members_of

from .hostile import MiB, deflated, npy_header, run_cli, session_with, stored, zeros_bomb, zip_bytes

BOMB_MIB = 1024  # each bomb inflates to 1 GiB; the child may use 700 MB in all


def small_spec() -> dict:
    return {"name": "small", "seed": 3, "data": {"source": "moons", "params": {"n_samples": 60}},
            "model": {"layers": [{"units": 6}, {"units": 5}]},
            "optimizer": {"name": "nadam", "learning_rate": 0.01},
            "training": {"epochs": 2, "batch_size": 8}}


@pytest.fixture(scope="module")
def good_file(tmp_path_factory) -> Path:
    trainer = Trainer(parse_experiment(small_spec()))
    trainer.fit(epochs=2)
    path = tmp_path_factory.mktemp("good") / "good.gwb"
    save_trainer(path, trainer)
    return path



def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def spec_file(folder: Path, **model) -> Path:
    spec = small_spec()
    spec["model"].update(model)
    path = folder / "spec.json"
    path.write_text(json.dumps(spec))
    return path


# ----------------------------------------------------------------------------- not regular files


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_is_refused_at_once_not_waited_on(tmp_path):
    fifo = tmp_path / "f.gwb"
    os.mkfifo(fifo)
    for argv in (["info", str(fifo)], ["resume", str(fifo), "--out", str(tmp_path / "out.gwb")]):
        outcome = run_cli(*argv, timeout=20)
        assert outcome.rc == 2 and "named pipe" in outcome.error_line, outcome.stderr
    with pytest.raises(SessionError, match="is a named pipe"):
        peek_session(fifo)
    spec_fifo = tmp_path / "spec.json"
    os.mkfifo(spec_fifo)
    outcome = run_cli("train", str(spec_fifo), "--out", str(tmp_path / "x.gwb"), timeout=20)
    assert outcome.rc == 2 and "named pipe" in outcome.error_line


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_link_to_an_endless_device_is_refused_unread(tmp_path):
    link = tmp_path / "z.gwb"
    link.symlink_to("/dev/zero")
    outcome = run_cli("info", str(link))
    assert outcome.rc == 2 and "is a character device, not a session file" in outcome.error_line
    assert outcome.peak_mb < 300 and outcome.seconds < 10, outcome  # (a loaded machine is slow)
    # the same file as a transfer source, and as a spec
    spec = spec_file(tmp_path, transfer={"from": "z.gwb"})
    outcome = run_cli("train", str(spec), "--out", str(tmp_path / "t.gwb"), "--no-autosave")
    assert outcome.rc == 2 and outcome.error_line.startswith("error: model.transfer.from: cannot reuse layers")
    assert "character device" in outcome.error_line
    zero_spec = tmp_path / "zero.json"
    zero_spec.symlink_to("/dev/zero")
    outcome = run_cli("train", str(zero_spec), "--out", str(tmp_path / "t.gwb"))
    assert outcome.rc == 2 and "character device" in outcome.error_line


def test_an_unreadable_file_says_permission_denied_not_truncated(good_file, tmp_path):
    path = write(tmp_path / "locked.gwb", good_file.read_bytes())
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as a user who can read anything")
        with pytest.raises(SessionError, match="cannot be read: permission denied") as info:
            load_session(path)
        assert "truncated" not in str(info.value)
    finally:
        path.chmod(0o644)


# ----------------------------------------------------------------------------- zip bombs


@pytest.mark.parametrize("members", [("weights.npz", "optimizer.npz", "history.npz"), ("optimizer.npz",),
                                     ("history.npz",)])
def test_members_claiming_gigabytes_are_refused_by_what_the_architecture_needs(good_file, tmp_path, members):
    """Honest 1 GiB members (zeros, 1 MB each on disk): refused from their headers alone,
    because this small model's arrays (and its 60 rows of data) need kilobytes."""
    bombs = {name: zeros_bomb(name, BOMB_MIB) for name in members}
    path = write(tmp_path / "bomb.gwb", session_with(members_of(good_file), bombs))
    assert path.stat().st_size < 4 * MiB
    outcome = run_cli("info", str(path))
    line = outcome.error_line
    assert outcome.rc == 2 and "claims 1,073,741,824 bytes, more than the" in line and "refused unread" in line
    assert "object array" not in line
    assert outcome.peak_mb < 300 and outcome.seconds < 10, outcome  # (a loaded machine is slow)


def test_a_member_inflating_past_its_claimed_size_is_cut_there(good_file, tmp_path):
    """A header that claims 4 KiB over a stream of 1 GiB: reading stops at the claim."""
    members = members_of(good_file)
    bomb = zeros_bomb("weights.npz", BOMB_MIB)
    liar = type(bomb)(bomb.name, bomb.payload, 4096, 0x1234)
    path = write(tmp_path / "liar.gwb", session_with(members, {"weights.npz": liar}))
    outcome = run_cli("info", str(path))
    assert outcome.rc == 2 and "weights.npz is damaged" in outcome.error_line
    assert outcome.peak_mb < 300 and outcome.seconds < 10, outcome  # (a loaded machine is slow)


def test_a_bomb_inside_an_npz_member_is_refused_unread(good_file, tmp_path):
    """The .npz inside the session is a zip too: an array entry deflated from 1 GiB of zeros."""
    members = members_of(good_file)
    with zipfile.ZipFile(io.BytesIO(members["weights.npz"])) as inner:
        entries = [stored(inner.read(n), n) for n in inner.namelist() if n != "layers.0.kernel.npy"]
    # 512 MiB, so the member itself (half a megabyte) stays within what the model justifies
    entries.append(zeros_bomb("layers.0.kernel.npy", 512, prefix=npy_header((512 * MiB // 8,))))
    weights = zip_bytes(entries)
    members["weights.npz"] = weights
    manifest = json.loads(members["manifest.json"])
    manifest["sha256"]["weights.npz"] = __import__("hashlib").sha256(weights).hexdigest()
    members["manifest.json"] = json.dumps(manifest).encode()
    path = write(tmp_path / "inner.gwb", session_with(members, {}))
    outcome = run_cli("info", str(path), memory_mb=500)
    assert outcome.rc == 2 and "weights.npz claims to unpack to 536,87" in outcome.error_line
    assert outcome.peak_mb < 300 and outcome.seconds < 10, outcome  # (a loaded machine is slow)


# ----------------------------------------------------------------------------- tracebacks


def rewritten(good_file: Path, tmp_path: Path, name: str, **changes) -> Path:
    """The good session with member ``name`` replaced (checksums fixed, so the check under test is reached)."""
    members = members_of(good_file)
    members.update(changes)
    manifest = json.loads(members["manifest.json"])
    manifest["sha256"] = {n: __import__("hashlib").sha256(d).hexdigest() for n, d in members.items()
                          if n != "manifest.json"}
    members["manifest.json"] = json.dumps(manifest).encode()
    return write(tmp_path / name, zip_bytes([deflated(d, n) for n, d in members.items()]))


def npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@pytest.mark.parametrize("member", ["experiment.json", "state.json"])
def test_deeply_nested_json_is_refused_in_one_line(good_file, tmp_path, member):
    path = rewritten(good_file, tmp_path, "deep.gwb", **{member: b"[" * 200_000 + b"]" * 200_000})
    with pytest.raises(SessionError, match=f"{member} is nested too deeply"):
        load_session(path)
    spec = write(tmp_path / "deep.json", b'{"model": ' + b"[" * 200_000 + b"]" * 200_000 + b"}")
    with pytest.raises(SpecError, match="nested too deeply"):
        load_experiment(spec)
    huge_int = write(tmp_path / "int.json", b'{"seed": ' + b"9" * 10_000 + b"}")
    with pytest.raises(SpecError, match="not valid JSON"):
        load_experiment(huge_int)


def test_an_unsupported_compression_or_zip_version_is_refused(good_file, tmp_path):
    members = members_of(good_file)
    odd_method = [deflated(d, n) for n, d in members.items()]
    odd_method[1] = type(odd_method[1])(odd_method[1].name, odd_method[1].payload, odd_method[1].size,
                                        odd_method[1].crc, method=99)
    with pytest.raises(SessionError, match="compression method 99"):
        load_session(write(tmp_path / "m99.gwb", zip_bytes(odd_method)))
    new_version = [type(e)(e.name, e.payload, e.size, e.crc, version=90) for e in
                   (deflated(d, n) for n, d in members.items())]
    with pytest.raises(SessionError, match="zip"):
        load_session(write(tmp_path / "v9.gwb", zip_bytes(new_version)))


def test_arrays_with_absurd_headers_or_in_the_wrong_container_are_refused(good_file, tmp_path):
    huge = zip_bytes([stored(npy_header((10**12, 10**6)) + bytes(64), "layers.0.kernel.npy")])
    with pytest.raises(SessionError, match=r"weights.npz\['layers.0.kernel'\] has shape"):
        load_session(rewritten(good_file, tmp_path, "shape.gwb", **{"weights.npz": huge}))
    buf = io.BytesIO()
    np.save(buf, np.zeros(3))
    with pytest.raises(SessionError, match="weights.npz is not a readable .npz archive"):
        load_session(rewritten(good_file, tmp_path, "npy.gwb", **{"weights.npz": buf.getvalue()}))


def test_a_bad_rng_state_is_refused_when_resuming(good_file, tmp_path):
    state = json.loads(members_of(good_file)["state.json"])
    state["rng"]["state"]["state"] = 2**200
    path = rewritten(good_file, tmp_path, "rng.gwb", **{"state.json": json.dumps(state).encode()})
    with pytest.raises(SessionError, match="state rng: not a PCG64 bit-generator state"):
        restore_trainer(load_session(path))
    assert run_headless(["resume", str(path), "--out", str(tmp_path / "o.gwb"), "--epochs", "1"]) == 2


def crafted_states(state: dict) -> list[tuple[str, dict]]:
    return [("step", {**state, "step": "many"}),
            ("events", {**state, "events": [{"step": 3}]}),
            ("events", {**state, "events": "none"}),
            ("lineage", {**state, "lineage": ["layer 0"]}),
            ("lineage", {**state, "lineage": [{"layer": "0"}]}),
            ("n_inputs", {**state, "n_inputs": "2"}),
            ("lr_scale", {**state, "lr_scale": "half"})]


def test_info_never_trusts_state_or_history(good_file, tmp_path, capsys):
    """Seven crafted files that crashed ``info``: each is refused in one line, naming the field."""
    state = json.loads(members_of(good_file)["state.json"])
    for i, (field, crafted) in enumerate(crafted_states(state)):
        path = rewritten(good_file, tmp_path, f"s{i}.gwb", **{"state.json": json.dumps(crafted).encode()})
        assert run_headless(["info", str(path)]) == 2, field
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"state.json[{field}]" in err, err


def test_a_string_input_width_is_named_as_such(good_file, tmp_path):
    state = json.loads(members_of(good_file)["state.json"])
    path = rewritten(good_file, tmp_path, "w.gwb", **{"state.json": json.dumps({**state, "n_inputs": "2"}).encode()})
    with pytest.raises(SessionError, match=r"state.json\[n_inputs\] must be a non-negative integer, got '2'"):
        load_session(path)


# ----------------------------------------------------------------------------- fuzzing


def fuzz_cases(data: bytes, n: int, seed: int) -> list[tuple[str, bytes]]:
    """``n`` damaged copies of ``data``: one to eight random bytes flipped, or a truncation."""
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        if i % 4 == 3:
            cut = rng.randrange(len(data))
            cases.append((f"truncated at {cut}", data[:cut]))
        else:
            damaged = bytearray(data)
            spots = [rng.randrange(len(data)) for _ in range(rng.randint(1, 8))]
            for at in spots:
                damaged[at] ^= rng.randint(1, 255)
            cases.append((f"flipped {spots}", bytes(damaged)))
    return cases


def test_fuzzed_sessions_are_refused_cleanly_or_load_correctly(good_file, tmp_path):
    """200 seeded byte flips and truncations: every one ends in a SessionError or in a session
    that ``info`` can show and ``restore_trainer`` can rebuild (or refuse with a SessionError)."""
    original = good_file.read_bytes()
    outcomes = {"refused": 0, "loaded": 0}
    path = tmp_path / "fuzz.gwb"
    for what, data in fuzz_cases(original, 200, seed=18):
        path.write_bytes(data)
        try:
            session = load_session(path)
        except SessionError as exc:
            assert "\n" not in str(exc), what
            outcomes["refused"] += 1
            continue
        outcomes["loaded"] += 1
        describe_session(session)
        try:
            restore_trainer(session)
        except SessionError:
            pass
    assert outcomes["refused"] >= 150, outcomes  # most damage is found; the rest loads whole


# ----------------------------------------------------------------------------- echoed values


def test_echoed_values_are_quoted_cut_and_escaped():
    assert quote("abc") == "'abc'"
    long = quote("x" * 10_000_000)
    assert long.startswith("'xxxx") and long.endswith("… (10,000,000 characters)") and len(long) < 120
    assert "\n" not in quote("a\nb\x1b[31m") and "\\n" in quote("a\nb\x1b[31m") and "\\x1b" in quote("\x1b")
    assert quote({"k\n": 1}) == "{'k\\n': 1}"
    assert quote(list(range(10**6))).endswith("… (list of 1,000,000 items)")
    nested: list = []
    for _ in range(100_000):
        nested = [nested]
    assert "too large or deeply nested" in quote(nested)


@pytest.mark.parametrize("field", ["name", "activation", "key"])
def test_a_huge_or_forged_value_gives_a_short_single_line_error(tmp_path, field, capsys):
    evil = "\x1b[2K\rerror: all good\n" + "x" * 10_000_000
    spec = small_spec()
    if field == "name":
        spec["name"] = evil
    elif field == "activation":
        spec["model"]["layers"][0]["activation"] = evil
    else:
        spec["training"][evil] = 1
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(spec))
    assert run_headless(["train", str(path), "--out", str(tmp_path / "o.gwb")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 400 and "\x1b" not in err and "\r" not in err, err[:400]
    assert "10,000,0" in err  # the original length is given


def test_a_huge_class_list_is_cut_in_the_message():
    spec = small_spec()
    spec["data"] = {"source": "digits", "params": {"classes": list(range(10)) * 100_000}}
    with pytest.raises(SpecError) as info:
        Trainer(parse_experiment(spec))
    assert len(str(info.value)) < 400 and "(list of 1,000,000 items)" in str(info.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_sweep_files_that_are_pipes_are_refused_not_waited_on(tmp_path):
    sweep_fifo = tmp_path / "sweep.json"
    os.mkfifo(sweep_fifo)
    outcome = run_cli("sweep", str(sweep_fifo), "--out", str(tmp_path / "out"), timeout=20)
    assert outcome.rc == 2 and "named pipe" in outcome.error_line
    results = tmp_path / "results"
    results.mkdir()
    os.mkfifo(results / "sweep.json")
    outcome = run_cli("sweep-report", str(results), timeout=20)
    assert outcome.rc == 2 and "named pipe" in outcome.error_line
