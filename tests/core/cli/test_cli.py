import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.cli.main import run_headless
from core.data.download import CACHE_VARIABLE
from core.presets import PRESETS
from core.sessions.format import load_session
from tests.core.data.book_support import served_book_sets

ROOT = Path(__file__).resolve().parents[3]


def small_spec(tmp_path: Path, **training) -> Path:
    spec = {
        "name": "tiny moons", "seed": 5,
        "data": {"source": "moons", "params": {"n_samples": 200}},
        "model": {"layers": [{"units": 8, "activation": "elu"}] * 2},
        "optimizer": {"name": "adam", "learning_rate": 0.01},
        "training": {"epochs": 2, "batch_size": 32, **training},
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def test_train_writes_a_session_and_info_describes_it(tmp_path, capsys):
    out = tmp_path / "run.gwb"
    assert run_headless(["train", str(small_spec(tmp_path)), "--out", str(out), "--epochs", "3"]) == 0
    err = capsys.readouterr().err
    assert "epoch 3/3" in err and f"wrote {out}" in err
    session = load_session(out)
    assert session.experiment.training.epochs == 3
    assert list(session.history["epoch"]) == [1, 2, 3]
    assert session.weights["layers.0.kernel"].shape == (2, 8)
    assert run_headless(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "dense_0 (elu, 8)" in text and "output (softmax, 2)" in text
    # 2·8+8, 8·8+8, 8·2+2 trainable parameters
    assert "24 parameters" in text and "72 parameters" in text and "114 parameters" in text
    assert "gradient norms at step" in text and "best val_accuracy" in text


def test_resume_continues_the_run(tmp_path, capsys):
    first = tmp_path / "a.gwb"
    run_headless(["train", str(small_spec(tmp_path)), "--out", str(first), "--quiet"])
    second = tmp_path / "b.gwb"
    assert run_headless(["resume", str(first), "--epochs", "2", "--out", str(second), "--quiet"]) == 0
    s = load_session(second)
    assert list(s.history["epoch"]) == [1, 2, 3, 4]
    assert s.state["step"] == 2 * load_session(first).state["step"]


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "missing.json", "--out", "x.gwb"], "no such experiment file"),
    (["train", "{spec}", "--out", "x.txt"], "--out: a session file must end in .gwb"),
    (["train", "{spec}", "--out", "x.gwb", "--epochs", "0"], "--epochs: must be a positive integer, got '0'"),
    (["train", "{spec}"], "the following arguments are required: --out"),
    (["train", "{bad}", "--out", "x.gwb"], "model.layers[0].units: must be a positive integer, got -5"),
    (["info", "missing.gwb"], "no such session file"),
    (["info", "{spec}"], "not a Gradient Workbench session"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    spec = small_spec(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": {"layers": [{"units": -5}]}}))
    argv = [a.format(spec=spec, bad=bad) for a in argv]
    assert run_headless(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert not list(tmp_path.glob("*.gwb")) and not list(tmp_path.glob(".*.tmp"))


def test_console_script_runs_headless_without_qt(tmp_path):
    """The installed entry point, in a fresh process with PySide6 made unimportable."""
    out = tmp_path / "run.gwb"
    code = ("import sys; sys.modules['PySide6'] = None; sys.modules['pyqtgraph'] = None; "
            "from workbench.cli import main; "
            f"sys.exit(main(['train', {str(small_spec(tmp_path))!r}, '--out', {str(out)!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.exists()
    proc = subprocess.run([sys.executable, "-m", "workbench", "info", str(tmp_path / "nope.gwb")],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and "no such session file" in proc.stderr


@pytest.mark.parametrize("key", list(PRESETS))
def test_every_example_trains_from_the_command_line(tmp_path, key, capsys, monkeypatch):
    example = ROOT / "resources" / "examples" / f"{key}.json"
    out = tmp_path / f"{key}.gwb"
    # The book's data sets (fashion_mnist, cifar10 …) come as small generated files in their real
    # formats from a server on 127.0.0.1 (never the network), into this test's own cache: the
    # download is replaced, the parsing and the training are not.
    monkeypatch.setenv(CACHE_VARIABLE, str(tmp_path / "cache"))
    with served_book_sets(monkeypatch):
        assert run_headless(["train", str(example), "--out", str(out), "--epochs", "1", "--quiet"]) == 0
    s = load_session(out)
    assert s.history["grad_norm"].shape[1] == len(s.experiment.model.layers) + 1
    assert np.isfinite(s.history["loss"]).all() or key == "dying_relu"
    assert run_headless(["info", str(out)]) == 0


def _no_training(*args, **kwargs):
    raise AssertionError("the run started before --out was checked")


@pytest.mark.parametrize("command", ["train", "resume", "branch"])
def test_an_out_inside_a_file_is_refused_before_any_work(tmp_path, capsys, monkeypatch, command):
    """`--out spec.json/x.gwb` used to train the whole run and fail only when it saved."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("core.training.Trainer", _no_training)
    spec = small_spec(tmp_path)
    source = {"train": [str(spec)], "resume": ["run.gwb"], "branch": ["run.gwb", "--at-step", "1"]}[command]
    assert run_headless([command, *source, "--out", "spec.json/x.gwb"]) == 2
    err = capsys.readouterr().err
    assert err == ("error: --out: 'spec.json' is a file, not a folder, so 'spec.json/x.gwb' cannot be written; "
                   "give a file name in an existing folder\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.json"]


def test_an_out_in_a_folder_that_takes_no_file_is_refused_before_training(tmp_path, capsys, monkeypatch):
    """Root writes anywhere, so the refusal of the file system is simulated here (the next test
    makes a real read-only folder where the tests do not run as root)."""
    import core.cli.args

    folder = tmp_path / "locked"
    folder.mkdir()

    real = core.cli.args.tempfile.TemporaryFile

    def refuse(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == folder:
            raise PermissionError(13, "Permission denied", str(dir))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(core.cli.args.tempfile, "TemporaryFile", refuse)
    monkeypatch.setattr("core.training.Trainer", _no_training)
    assert run_headless(["train", str(small_spec(tmp_path)), "--out", str(folder / "x.gwb")]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: --out: cannot write in folder {str(folder)!r} (Permission denied); "
                   "give a file name in a folder you can write to\n")
    assert not list(folder.iterdir())


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write in a read-only folder")
def test_an_out_in_a_read_only_folder_is_refused_before_training(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    monkeypatch.setattr("core.training.Trainer", _no_training)
    try:
        assert run_headless(["train", str(small_spec(tmp_path)), "--out", str(folder / "x.gwb")]) == 2
    finally:
        folder.chmod(0o755)
    assert f"--out: cannot write in folder {str(folder)!r}" in capsys.readouterr().err
    assert not list(folder.iterdir())


def test_resume_of_a_finished_one_epoch_run_says_epoch_once(tmp_path, capsys):
    run = tmp_path / "run.gwb"
    assert run_headless(["train", str(small_spec(tmp_path, epochs=1)), "--out", str(run), "--quiet"]) == 0
    assert run_headless(["resume", str(run), "--out", str(run), "--quiet"]) == 2
    assert capsys.readouterr().err == (f"error: {run} has completed its 1 planned epoch; give --epochs N to "
                                       "train further\n")
