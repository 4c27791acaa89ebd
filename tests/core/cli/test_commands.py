"""``export`` and ``sweep-report`` (``core.cli.commands``): bad input exits 2 with one line, before any work."""

import json
from pathlib import Path

import pytest

from core.cli.main import run_headless


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("run")
    spec = folder / "spec.json"
    spec.write_text(json.dumps({"seed": 2, "data": {"source": "moons", "params": {"n_samples": 80}},
                                "model": {"layers": [{"units": 4}]}, "training": {"epochs": 1, "batch_size": 32}}))
    out = folder / "run.gwb"
    assert run_headless(["train", str(spec), "--out", str(out), "--quiet", "--no-autosave"]) == 0
    return out


@pytest.mark.parametrize(("with_weights", "folder"), [(False, "net.py"), (True, "net.weights.npz")])
def test_export_over_a_folder_is_refused_before_anything_is_written(run, tmp_path, capsys, with_weights, folder):
    """It said "[Errno 21] Is a directory" after the work, and with --with-weights left the
    weights written without their script when the script's name was a folder."""
    (tmp_path / folder).mkdir()
    out = tmp_path / "net.py"
    flags = ["--with-weights"] if with_weights else []
    assert run_headless(["export", str(run), "--to", "pytorch", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert err == f"error: OUT: {str(tmp_path / folder)!r} is a folder, not a file name\n"
    assert [p.name for p in tmp_path.iterdir()] == [folder]


def test_export_into_a_file_s_folder_says_so(run, tmp_path, capsys):
    (tmp_path / "notes").write_text("")
    assert run_headless(["export", str(run), "--to", "pytorch", str(tmp_path / "notes" / "net.py")]) == 2
    assert f"OUT: {str(tmp_path / 'notes')!r} is a file, not a folder" in capsys.readouterr().err


def test_sweep_report_of_a_file_says_it_is_not_a_sweep_folder(run, capsys):
    assert run_headless(["sweep-report", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such folder" not in err
    assert f"DIR: {str(run)!r} is a file, not a sweep's folder" in err
