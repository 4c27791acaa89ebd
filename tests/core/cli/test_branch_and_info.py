"""``gradient-workbench branch`` and ``info --json``: the contracts scripts rely on."""

import json

import numpy as np
import pytest

from core.cli.main import run_headless
from core.sessions.branch import branch_trainer
from core.sessions.format import SessionError, load_session

LOGISTIC = {"units": 20, "activation": "logistic", "init": {"name": "random_normal", "stddev": 0.05}}
VANISHING = {"name": "vanishing", "seed": 1, "data": {"source": "moons", "params": {"n_samples": 200}},
             "model": {"layers": [LOGISTIC] * 6}, "optimizer": {"name": "sgd", "learning_rate": 0.01},
             "training": {"epochs": 1, "batch_size": 16}}
SMALL = {"name": "small", "seed": 3, "data": {"source": "moons", "params": {"n_samples": 120}},
         "model": {"input_dropout": 0.1, "layers": [{"units": 8, "batch_norm": "before_activation", "dropout": 0.2}]},
         "optimizer": {"name": "nadam", "learning_rate": 0.01}, "schedule": {"name": "one_cycle"},
         "training": {"epochs": 3, "batch_size": 16}}


def train(tmp_path, spec: dict, name: str) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(spec))
    out = tmp_path / f"{name}.gwb"
    assert run_headless(["train", str(path), "--out", str(out), "--quiet", "--no-autosave"]) == 0
    return str(out)


def test_info_json_is_the_summary_with_the_detectors_findings(tmp_path, capsys):
    run = train(tmp_path, VANISHING, "vanishing")
    capsys.readouterr()
    assert run_headless(["info", run, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    session = load_session(run)
    assert summary["epochs"] == 1 and summary["steps"] == session.state["step"] == 10
    assert summary["parameters"] == sum(int(a.size) for k, a in session.weights.items()
                                        if not k.endswith(("moving_mean", "moving_variance")))
    assert [row["name"] for row in summary["architecture"]] == list(session.history["layer_names"])
    last = summary["last_grad_norm"]
    assert last["step"] == int(session.history["step"][-1])
    assert [layer["grad_norm"] for layer in last["layers"]] == pytest.approx(session.history["grad_norm"][-1])
    assert summary["health"], "six logistic layers at N(0, 0.05) must be flagged"
    finding = summary["health"][0]
    assert set(finding) == {"kind", "layer", "layer_name", "step", "message", "remedies"}
    assert finding["kind"] == "vanishing" and finding["layer"] == 0
    assert finding["layer_name"] == summary["architecture"][0]["name"]
    assert "init" in finding["remedies"]
    # the text says the same
    assert run_headless(["info", run]) == 0
    text = capsys.readouterr().out
    assert "health" in text and finding["message"] in text


def test_info_json_of_a_healthy_run_has_an_empty_health_list(tmp_path, capsys):
    run = train(tmp_path, SMALL, "small")
    capsys.readouterr()
    assert run_headless(["info", run, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["health"] == [] and summary["optimizer"]["name"] == "nadam"
    assert summary["best"]["val_accuracy"]["epoch"] in (0, 1, 2)


def test_branch_with_no_change_resumed_to_the_end_equals_the_original(tmp_path, capsys):
    run = train(tmp_path, SMALL, "small")
    fork = str(tmp_path / "fork.gwb")
    assert run_headless(["branch", run, "--at-step", "7", "--out", fork]) == 0
    assert load_session(fork).state["step"] == 7
    assert load_session(fork).state["branch"] == {"from": run, "at_step": 7, "set": {}}
    assert run_headless(["resume", fork, "--out", fork, "--quiet", "--no-autosave"]) == 0
    a, b = load_session(run), load_session(fork)
    for key, value in a.weights.items():
        assert np.array_equal(value, b.weights[key]), key
    for key, value in a.history.items():
        if key != "seconds":
            assert np.array_equal(value, b.history[key], equal_nan=value.dtype.kind == "f"), key
    # resumed, it is still that branch: where it came from is kept (in its state and in info --json)
    assert b.state["branch"] == {"from": run, "at_step": 7, "set": {}}
    capsys.readouterr()
    assert run_headless(["info", fork, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["branch"] == {"from": run, "at_step": 7, "set": {}}


def test_branch_replays_from_the_nearest_checkpoint_and_says_so(tmp_path, capsys):
    """SMALL trains 18 steps; with a checkpoint every 3 (at most 3) the file keeps 6, 12 and 18."""
    spec = {**SMALL, "training": {**SMALL["training"], "checkpoints": {"every": 3, "keep": 3}}}
    run = train(tmp_path, spec, "small")
    assert [s["step"] for s in load_session(run).state["checkpoints"]["states"]] == [6, 12, 18]
    fork = str(tmp_path / "fork.gwb")
    capsys.readouterr()
    assert run_headless(["branch", run, "--at-step", "8", "--out", fork]) == 0
    assert "replayed from its checkpoint at step 6" in capsys.readouterr().err
    assert [s["step"] for s in load_session(fork).state["checkpoints"]["states"]] == [6]
    assert run_headless(["resume", fork, "--out", fork, "--quiet", "--no-autosave"]) == 0
    a, b = load_session(run), load_session(fork)
    for key, value in a.weights.items():
        assert np.array_equal(value, b.weights[key]), key
    assert sorted(a.checkpoints) == sorted(b.checkpoints)
    for key, value in a.checkpoints.items():
        assert np.array_equal(value, b.checkpoints[key]), key
    assert run_headless(["branch", run, "--at-step", "5", "--out", fork]) == 0
    assert "replayed from its start" in capsys.readouterr().err


def test_branch_with_a_change_differs_after_the_step_only(tmp_path):
    run = train(tmp_path, SMALL, "small")
    fork = str(tmp_path / "fork.gwb")
    assert run_headless(["branch", run, "--at-step", "7", "--out", fork,
                         "--set", "optimizer.learning_rate=0.05", "--set", "regularization.l2=0.001"]) == 0
    assert load_session(fork).experiment.learning_rate == 0.05
    assert run_headless(["resume", fork, "--out", fork, "--quiet", "--no-autosave"]) == 0
    a, b = load_session(run).history, load_session(fork).history
    upto = int(np.searchsorted(a["step"], 7, side="right"))
    assert np.array_equal(a["step_loss"][:upto], b["step_loss"][:upto])
    assert not np.array_equal(a["step_loss"][upto:], b["step_loss"][upto:])


@pytest.mark.parametrize("extra, message", [
    (["--at-step", "-1"], "--at-step: must be a whole number"),
    (["--at-step", "999"], "from 0 to"),
    (["--at-step", "3", "--set", "learning_rate"], "must be PATH=VALUE"),
    (["--at-step", "3", "--set", "optimizer.learning_rate=-2"], "optimizer.learning_rate:"),
    (["--at-step", "3", "--set", "model.layers[0].units=3"], "shape"),
    (["--at-step", "3", "--set", "model.layers[5].units=3"], "model.layers[5] does not exist"),
])
def test_bad_branch_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, extra, message):
    run = train(tmp_path, SMALL, "small")
    capsys.readouterr()
    fork = tmp_path / "fork.gwb"
    assert run_headless(["branch", run, "--out", str(fork), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not fork.exists()


def test_info_on_an_experiment_file_says_to_train_it(tmp_path, capsys):
    from pathlib import Path

    example = Path(__file__).resolve().parents[3] / "resources" / "examples" / "default.json"
    assert run_headless(["info", str(example)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "not a Gradient Workbench session but an experiment" in err and f"gradient-workbench train {example}" in err
    assert "truncated" not in err and "zip" not in err
    broken = tmp_path / "broken.gwb"                    # a damaged session is still reported as one
    broken.write_bytes(b"PK\x03\x04 not really")
    assert run_headless(["info", str(broken)]) == 2
    assert "not a readable zip" in capsys.readouterr().err


def test_branch_refuses_to_write_over_the_session_it_branches(tmp_path, capsys, monkeypatch):
    """`--out` naming the source (as written, spelled otherwise, or through a link) would replace
    the whole run with its fork: refused before any replay, the file untouched."""
    run = train(tmp_path, SMALL, "small")
    before = (tmp_path / "small.gwb").read_bytes()
    (tmp_path / "link.gwb").symlink_to(tmp_path / "small.gwb")
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    for source, out in [(run, run), ("small.gwb", "./small.gwb"), ("link.gwb", "small.gwb")]:
        assert run_headless(["branch", source, "--at-step", "5", "--out", out]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"--out: {out!r} is the session being branched" in err
        assert "another file" in err
    assert (tmp_path / "small.gwb").read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))


def test_branch_past_the_end_of_a_changed_plan_is_refused(tmp_path, capsys):
    """SMALL trains 3 epochs of 6 steps; with training.epochs=1 its plan ends at step 6, so a
    branch at step 10 would be a finished run whose schedule ran out."""
    run = train(tmp_path, SMALL, "small")
    capsys.readouterr()
    fork = tmp_path / "fork.gwb"
    assert run_headless(["branch", run, "--at-step", "10", "--out", str(fork), "--set", "training.epochs=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and not fork.exists()
    assert "--at-step: step 10 is past the end of the changed run's plan" in err
    assert "ends at step 6" in err and "from 0 to 6" in err and "training.epochs to at least 2" in err
    # the end of the new plan itself is allowed
    assert run_headless(["branch", run, "--at-step", "6", "--out", str(fork), "--set", "training.epochs=1"]) == 0
    assert load_session(fork).state["step"] == 6
    # without the file's record of its plan (an older file) the replayed run's own count decides
    session = load_session(run)
    del session.state["schedule_plan"]
    with pytest.raises(SessionError, match="ends at step 6"):
        branch_trainer(session, 10, [("training.epochs", 1)])
