"""Sweeps: the spec (paths, axes, validation), running on a local pool and on a Dask
LocalCluster (same sessions as the runs one by one), restart after a kill, failing and
diverging runs, the results table and the commands."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core.cli.main import run_headless
from core.sessions.format import load_session
from core.spec import parse_experiment
from core.sweeps.report import format_table, results_table, sort_configurations
from core.sweeps.runner import execute_run, run_sweep
from core.sweeps.spec import SweepError, load_sweep, parse_path, parse_sweep, run_id, set_path
from core.training import Trainer

ROOT = Path(__file__).resolve().parents[3]
BUNDLED = sorted((ROOT / "resources" / "examples" / "sweeps").glob("*.json"))

BASE = {"name": "tiny", "seed": 3,
        "data": {"source": "moons", "params": {"n_samples": 200}},
        "model": {"layers": [{"units": 8, "activation": "elu"}, {"units": 8, "activation": "elu"}]},
        "optimizer": {"name": "sgd", "learning_rate": 0.05},
        "training": {"epochs": 2, "batch_size": 32}}


def tiny_sweep(**changes) -> dict:
    spec = {"format": "gradient-workbench.sweep", "version": 1, "name": "tiny", "base": BASE,
            "axes": [{"path": "model.layers[*].activation", "values": ["elu", "tanh"]},
                     {"path": "optimizer.learning_rate", "values": [0.05, 0.2]}],
            "seeds": [0, 1], "target": {"metric": "val_accuracy", "value": 0.8}}
    spec.update(changes)
    return spec


# ----------------------------------------------------------------------------- the spec


def test_paths_parse_and_set_every_element():
    assert parse_path("model.layers[*].activation") == ("model", "layers", "*", "activation")
    assert parse_path("model.layers[2].init.stddev") == ("model", "layers", 2, "init", "stddev")
    obj = {"model": {"layers": [{"a": 1}, {"a": 2}]}}
    assert set_path(obj, parse_path("model.layers[*].a"), 5) == [("model", "layers", 0, "a"),
                                                                   ("model", "layers", 1, "a")]
    assert obj == {"model": {"layers": [{"a": 5}, {"a": 5}]}}
    for bad in ("", "model..layers", "model.layers[*", "[0]", "model.", "a b"):
        with pytest.raises(ValueError):
            parse_path(bad)


def test_grid_expands_with_canonical_validated_experiments():
    sweep = parse_sweep(tiny_sweep(axes=[{"path": "model.layers[*].activation",
                                          "values": ["elu", "leaky_relu", "relu", "tanh", "logistic"]},
                                         {"path": "optimizer.learning_rate", "log_range": [1e-4, 1e-1], "num": 4}]))
    assert len(sweep.configurations) == 20 and len(sweep.runs()) == 40
    assert [a.values for a in sweep.axes][1] == (0.0001, 0.001, 0.01, 0.1)
    leaky = next(c for c in sweep.configurations if c.labels["activation"] == "leaky_relu")
    # A changed activation starts from its own defaults: ELU's alpha 1.0 does not leak into leaky ReLU.
    assert all(row["alpha"] == 0.2 for row in leaky.experiment["model"]["layers"])
    for c in sweep.configurations:
        assert parse_experiment(c.experiment).to_dict() == c.experiment
    ids = [r.run_id for r in sweep.runs()]
    assert len(set(ids)) == len(ids)


def test_run_ids_are_stable_and_ignore_the_name():
    a, b = parse_sweep(tiny_sweep()), parse_sweep(tiny_sweep(name="renamed"))
    assert [r.run_id for r in a.runs()] == [r.run_id for r in b.runs()]
    exp = a.runs()[0].experiment
    assert run_id(exp) == run_id({**exp, "name": "other"}) != run_id({**exp, "seed": 99})


def test_seeds_repeats_and_random_mode():
    spec = tiny_sweep()
    del spec["seeds"]
    assert parse_sweep(spec).seeds == (3,)  # the base's seed
    assert parse_sweep({**spec, "repeats": 3}).seeds == (3, 4, 5)
    spec = tiny_sweep(mode="random", samples=6, seed=7,
                      axes=[{"path": "optimizer.learning_rate", "log_range": [1e-4, 1e-1]},
                            {"path": "model.layers[*].units", "values": [4, 8, 16]}])
    one, two = parse_sweep(spec), parse_sweep(spec)
    assert [c.assignments for c in one.configurations] == [c.assignments for c in two.configurations]
    assert all(1e-4 <= c.assignments["learning_rate"] <= 1e-1 for c in one.configurations)
    assert len(one.configurations) <= 6


def test_optimizer_rename_resets_its_parameters_but_keeps_the_learning_rate():
    base = {**BASE, "optimizer": {"name": "momentum", "learning_rate": 0.02, "momentum": 0.8}}
    sweep = parse_sweep(tiny_sweep(base=base, axes=[{"path": "optimizer.name", "values": ["momentum", "adam"]}]))
    assert [c.experiment["optimizer"] for c in sweep.configurations] == [
        {"name": "momentum", "learning_rate": 0.02, "momentum": 0.8}, {"name": "adam", "learning_rate": 0.02}]


@pytest.mark.parametrize("change, message", [
    ({"axes": [{"path": "model.layers[5].units", "values": [4]}]}, "axes[0].path: model.layers[5] does not exist"),
    ({"axes": [{"path": "model.layers[*].units", "values": [-5]}]},
     "model.layers[0].units: must be a positive integer, got -5; in configuration 0 (units=-5)"),
    ({"axes": [{"path": "model.layers[*].activation", "values": ["elu", "sigmoid"]}]},
     "model.layers[0].activation: must be one of"),
    ({"axes": [{"path": "optimizer.learning_rate", "log_range": [1e-4, 1e-1]}]}, "axes[0].num: is needed in grid"),
    ({"axes": [{"path": "optimizer.learning_rate", "log_range": [0, 1e-1], "num": 3}]},
     "axes[0].log_range[0]: must be a positive number"),
    ({"axes": [{"path": "model.layers[*.units", "values": [1]}]}, "axes[0].path: cannot read"),
    ({"axes": [{"path": "seed", "values": [1, 2]}]}, "axes[0].path: 'seed' cannot be swept"),
    ({"axes": [{"path": "training.epochs", "values": [1, 1]}]}, "axes[0].values[1]: repeats value 1"),
    ({"axes": [{"path": "training.epochs", "values": [1], "range": [0, 1]}]}, "axes[0]: must have exactly one of"),
    ({"mode": "random"}, "samples: must be an integer"),
    ({"mode": "sometimes"}, "mode: must be one of grid, random"),
    ({"repeats": 2}, "repeats: give either seeds"),
    ({"seeds": [1, -1]}, "seeds[1]: must be a non-negative integer"),
    ({"target": {"metric": "f1", "value": 1}}, "target.metric: must be one of"),
    ({"base": {"model": {"layers": [{"units": 0}]}}}, "base.model.layers[0].units: must be a positive integer"),
    ({"base": {"path": "missing.json"}}, "base.path:"),
    ({"colour": "red"}, "colour: unknown field"),
    ({"format": "gradient-workbench.experiment"}, "format: must be 'gradient-workbench.sweep'"),
    ({"version": 2}, "version: must be an integer from 1 to 1"),
    ({"axes": [{"path": "training.epochs", "values": list(range(1, 200))},
               {"path": "training.batch_size", "values": list(range(1, 200))}]}, "would plan"),
])
def test_bad_sweeps_name_the_field(change, message, tmp_path):
    with pytest.raises(SweepError) as info:
        parse_sweep(tiny_sweep(**change), tmp_path)
    assert message in str(info.value)


def test_a_key_given_twice_in_a_sweep_or_its_base_file_is_refused_naming_it(tmp_path):
    text = json.dumps(tiny_sweep(name="first"))
    (tmp_path / "s.json").write_text(text[:-1] + ', "name": "second"}')           # "name" twice
    with pytest.raises(SweepError) as info:
        load_sweep(tmp_path / "s.json")
    assert info.value.path == "name" and "given twice" in str(info.value) and "'first'" in str(info.value)
    base = json.dumps(BASE)
    (tmp_path / "base.json").write_text(base.replace('"seed": 3', '"seed": 3, "seed": 4'))
    (tmp_path / "t.json").write_text(json.dumps(tiny_sweep(base={"path": "base.json"})))
    with pytest.raises(SweepError) as info:
        load_sweep(tmp_path / "t.json")
    assert "base.path" in str(info.value) and "seed: given twice" in str(info.value)


def test_base_from_a_file_resolves_against_the_sweep(tmp_path):
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "base.json").write_text(json.dumps(BASE))
    (tmp_path / "s.json").write_text(json.dumps(tiny_sweep(base={"path": "exp/base.json"})))
    sweep = load_sweep(tmp_path / "s.json")
    assert sweep.base_dir == str((tmp_path / "exp").resolve())
    assert sweep.base["seed"] == 3
    # The canonical form (written to the results folder) reads back as the same sweep.
    again = parse_sweep(json.loads(json.dumps(sweep.to_dict())))
    assert [r.run_id for r in again.runs()] == [r.run_id for r in sweep.runs()]


# ----------------------------------------------------------------------------- running


def _one_by_one(run, base_dir=None):
    trainer = Trainer(parse_experiment(run.experiment), base_dir)
    return trainer, trainer.fit()


def _assert_same_as_one_by_one(sweep, folder):
    for run in sweep.runs():
        session = load_session(folder / run.file_name)
        trainer, reason = _one_by_one(run)
        assert session.state["sweep"]["reason"] == reason
        state = trainer.network.state()
        assert session.weights.keys() == state.keys()
        for k, a in state.items():
            assert np.array_equal(session.weights[k], a), k  # bit for bit
        history = trainer.history_arrays()
        for k, a in history.items():
            if k != "seconds":  # timing is the one thing that differs
                np.testing.assert_array_equal(session.history[k], a, err_msg=k)


def test_local_pool_of_two_gives_the_sessions_of_runs_one_by_one(tmp_path):
    sweep = parse_sweep(tiny_sweep())
    outcome = run_sweep(sweep, tmp_path, workers=2)
    assert (outcome.total, outcome.completed, outcome.failed, outcome.skipped) == (8, 8, 0, 0)
    _assert_same_as_one_by_one(sweep, tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results["runs"]) == 8 and len(results["configurations"]) == 4
    assert results["machine"]["cpus"] == os.cpu_count()
    assert (tmp_path / "runs.csv").read_text().count("\n") == 9
    # Started again: every run is found finished, nothing is trained.
    again = run_sweep(sweep, tmp_path, workers=2)
    assert (again.completed, again.skipped) == (0, 8)


def test_dask_local_cluster_gives_the_same_sessions(tmp_path):
    from dask import distributed  # in the 'test' extra, like the 'cluster' extra
    sweep = parse_sweep(tiny_sweep(seeds=[5]))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) \
            as cluster:
        outcome = run_sweep(sweep, tmp_path, scheduler=cluster.scheduler_address)
    assert (outcome.completed, outcome.failed) == (4, 0)
    assert "Dask cluster" in outcome.results["backend"]
    _assert_same_as_one_by_one(sweep, tmp_path)


def test_a_stopped_sweep_finishes_on_restart_without_redoing_runs(tmp_path):
    # The stop is asked between batches of finished runs, and the main process writes each
    # run's session: runs of a tenth of a second could all finish while it wrote the third (a
    # loaded machine, all 8 done before the question). Runs of about 0.35 s each make the pool
    # slower than the writing, so the sweep is still running when the third session lands.
    base = json.loads(json.dumps(BASE))
    base["training"]["epochs"] = 40
    base["data"]["params"]["n_samples"] = 1000
    sweep = parse_sweep(tiny_sweep(base=base))
    stop_after = 3
    outcome = run_sweep(sweep, tmp_path, workers=1,
                        should_stop=lambda: len(list(tmp_path.glob("run-*.gwb"))) >= stop_after)
    assert outcome.stopped and stop_after <= outcome.completed < 8
    finished = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("run-*.gwb")}
    table = results_table(tmp_path)
    assert sum(r["status"] == "pending" for r in table["runs"]) == 8 - len(finished)
    again = run_sweep(sweep, tmp_path, workers=2)
    assert again.skipped == len(finished) and again.completed == 8 - len(finished)
    for name, mtime in finished.items():
        assert (tmp_path / name).stat().st_mtime_ns == mtime  # not rewritten
    _assert_same_as_one_by_one(sweep, tmp_path)


def test_a_killed_sweep_process_finishes_on_restart(tmp_path):
    spec = tmp_path / "sweep.json"
    slower = {**BASE, "training": {"epochs": 4, "batch_size": 8}}
    spec.write_text(json.dumps(tiny_sweep(base=slower, seeds=[0, 1, 2])))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "workbench", "sweep", str(spec), "--out", str(out), "--workers", "1"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(list(out.glob("run-*.gwb"))) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its worker, at once
        proc.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in out.glob("run-*.gwb")}
    assert 2 <= len(finished) < 12
    outcome = run_sweep(load_sweep(spec), out, workers=2)
    assert outcome.skipped == len(finished) and outcome.completed == 12 - len(finished)
    assert {n: (out / n).stat().st_mtime_ns for n in finished} == finished


def test_diverging_and_failing_runs_are_recorded_and_the_rest_complete(tmp_path):
    (tmp_path / "data.csv").write_text("a,b,label\n" + "".join(f"{i % 7},{i % 5},{i % 2}\n" for i in range(60)))
    base = {**BASE, "data": {"source": "csv", "path": "data.csv", "target": "label"}}
    spec = tiny_sweep(base=base, seeds=[0], axes=[
        {"path": "optimizer.learning_rate", "values": [0.05, 1e6]},
        {"path": "data.path", "values": ["data.csv", "missing.csv"]}])
    sweep = parse_sweep(spec, tmp_path)
    with pytest.raises(SweepError, match="missing.csv"):  # checked before anything runs...
        run_sweep(sweep, tmp_path / "out", workers=2)
    outcome = run_sweep(sweep, tmp_path / "out", workers=2, check=False)  # ...or recorded per run
    assert (outcome.completed, outcome.failed) == (2, 2)
    rows = {(r["axis:learning_rate"], r["axis:path"]): r for r in outcome.results["runs"]}
    assert rows[("0.05", "data.csv")]["status"] == "completed"
    assert rows[("1e+06", "data.csv")]["status"] == "diverged"
    assert "became" in rows[("1e+06", "data.csv")]["reason"]
    assert rows[("0.05", "missing.csv")]["status"] == "failed"
    assert "missing.csv" in rows[("0.05", "missing.csv")]["reason"]
    assert len(list((tmp_path / "out").glob("*.failed.json"))) == 2
    table = results_table(tmp_path / "out")
    diverged = next(c for c in table["configurations"] if c["label"] == "learning_rate=1e+06, path=data.csv")
    assert diverged["diverged"] == 1.0 and diverged["done"] == 1
    assert "never" in format_table(table) or "—" in format_table(table)


def test_execute_run_reports_an_exception_instead_of_raising():
    result = execute_run({"run_id": "x", "experiment": {"model": {"layers": "three"}}, "base_dir": None})
    assert result["status"] == "failed" and "model.layers" in result["reason"]


# ----------------------------------------------------------------------------- results and commands


def test_table_sorts_and_aggregates_over_seeds(tmp_path):
    sweep = parse_sweep(tiny_sweep())
    run_sweep(sweep, tmp_path, workers=2)
    table = results_table(tmp_path)
    configs = table["configurations"]
    accuracies = [c["val_accuracy_mean"] for c in configs]
    assert accuracies == sorted(accuracies, reverse=True)
    for c in configs:
        runs = [r for r in table["runs"] if r["configuration"] == c["configuration"]]
        values = [r["best_val_accuracy"] for r in runs]
        assert c["val_accuracy_mean"] == pytest.approx(np.mean(values))
        assert c["val_accuracy_std"] == pytest.approx(np.std(values, ddof=1))
    by_loss = sort_configurations(configs, "val_loss")
    assert [c["val_loss_mean"] for c in by_loss] == sorted(c["val_loss_mean"] for c in configs)
    by_axis = sort_configurations(configs, "activation")
    assert [c["axis:activation"] for c in by_axis] == ["elu", "elu", "tanh", "tanh"]
    with pytest.raises(SweepError, match="sort: must be one of"):
        sort_configurations(configs, "colour")
    text = format_table(table, "markdown")
    assert text.splitlines()[0].startswith("| # | activation | learning_rate | runs | best val accuracy")
    assert json.loads(format_table(table, "json"))["sweep"] == "tiny"


def test_sweep_commands(tmp_path, capsys):
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps(tiny_sweep(seeds=[0])))
    out = tmp_path / "out"
    assert run_headless(["sweep", str(spec), "--out", str(out), "--workers", "2"]) == 0
    captured = capsys.readouterr()
    assert "[4/4] done 4, running 0, failed 0" in captured.err
    assert "best val accuracy" in captured.out
    assert run_headless(["sweep-report", str(out), "--sort", "learning_rate", "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("configuration,label,axis:activation,axis:learning_rate")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(tiny_sweep(axes=[{"path": "model.layers[*].units", "values": [0]}])))
    assert run_headless(["sweep", str(bad), "--out", str(out)]) == 2
    assert "model.layers[0].units: must be a positive integer" in capsys.readouterr().err
    assert run_headless(["sweep-report", str(tmp_path)]) == 2
    assert "holds no sweep.json" in capsys.readouterr().err
    assert run_headless(["sweep", str(spec), "--out", str(out), "--workers", "0"]) == 2


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_bundled_sweeps_parse_and_their_first_run_trains(path):
    sweep = load_sweep(path)
    assert sweep.target is not None and len(sweep.seeds) >= 2 and len(sweep.runs()) <= 60
    experiment = sweep.runs()[0].experiment
    trainer = Trainer(parse_experiment({**experiment, "training": {**experiment["training"], "epochs": 1}}),
                      sweep.base_dir)
    assert trainer.fit() == "completed"


def test_the_docs_hold_a_measured_table_for_every_bundled_sweep():
    text = (ROOT / "docs" / "sweeps.md").read_text()
    tables = text.split("<!-- sweep-tables:begin -->", 1)[1].split("<!-- sweep-tables:end -->", 1)[0]
    assert "`nproc`" in tables
    for path in BUNDLED:
        section = tables.split(f"### `resources/examples/sweeps/{path.name}`", 1)[1]
        assert section.split("###", 1)[0].count("\n|") >= len(load_sweep(path).configurations) + 1, path.name
