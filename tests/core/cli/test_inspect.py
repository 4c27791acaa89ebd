"""``gradient-workbench inspect``: its numbers against computations made here from the session's
weights with the network's own float64 passes, explicit Hessians and numpy.linalg."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from core.cli.args import UsageError
from core.cli.inspection import describe_inspection, inspect_session
from core.cli.main import run_headless
from core.engine.network import Network
from core.sessions.format import load_session
from core.sessions.trainer_io import restore_trainer

ROOT = Path(__file__).resolve().parents[3]
L2 = 0.002


def trained(tmp_path: Path, optimizer: dict, name: str = "run") -> Path:
    spec = {"seed": 4, "data": {"source": "moons", "params": {"n_samples": 120}},
            "model": {"layers": [{"units": 6, "activation": "elu"}, {"units": 5, "activation": "tanh"}]},
            "optimizer": optimizer, "regularization": {"l2": L2},
            "training": {"epochs": 2, "batch_size": 16}}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(spec))
    out = tmp_path / f"{name}.gwb"
    assert run_headless(["train", str(path), "--out", str(out), "--quiet", "--no-autosave"]) == 0
    return out


def inspect_json(path: Path, capsys, *flags: str) -> dict:
    assert run_headless(["inspect", str(path), "--json", *flags]) == 0
    return json.loads(capsys.readouterr().out)


class Reference:
    """The session's loss on the first n training examples as a function of one parameter vector,
    through a float64 copy of its network (no dropout or batch norm in these runs)."""

    def __init__(self, session_path: Path, n: int) -> None:
        trainer = restore_trainer(load_session(session_path))
        self.trainer = trainer
        self.net = Network(trainer.experiment.model, trainer.network.n_inputs, trainer.network.n_outputs,
                           trainer.loss, np.random.default_rng(0), np.float64)
        self.net.load_state(trainer.network.state())
        self.X = trainer.X_train[:n].astype(np.float64)
        self.y = trainer.y_train[:n]
        self.paths = list(self.net.parameters())
        self.theta = np.concatenate([a.ravel() for a in self.net.parameters().values()])

    def _set(self, theta: np.ndarray) -> None:
        i = 0
        for a in self.net.parameters().values():
            a[...] = theta[i:i + a.size].reshape(a.shape)
            i += a.size

    def _flat(self, arrays: dict) -> np.ndarray:
        return np.concatenate([arrays[p].ravel() for p in self.paths])

    def gradient(self, theta: np.ndarray, X=None, y=None) -> np.ndarray:
        """∇(data loss + l2·ΣW²) at θ."""
        self._set(theta)
        X = self.X if X is None else X
        logits = self.net.forward(X, training=True)
        self.net.backward(self.net.loss.gradient(logits, self.y if y is None else y))
        grads = {p: g.copy() for p, g in self.net.gradients().items()}
        for p, w in self.net.parameters().items():
            if p.endswith(".kernel"):
                grads[p] += 2 * L2 * w
        self._set(self.theta)
        return self._flat(grads)

    def hessian(self, h: float = 1e-5) -> np.ndarray:
        H = np.zeros((self.theta.size, self.theta.size))
        for i in range(self.theta.size):
            e = np.zeros_like(self.theta)
            e[i] = h
            H[:, i] = (self.gradient(self.theta + e) - self.gradient(self.theta - e)) / (2 * h)
        return 0.5 * (H + H.T)

    def entries(self, keep) -> np.ndarray:
        """A mask over θ of the parameters whose path passes ``keep``."""
        return np.concatenate([np.full(a.size, keep(p)) for p, a in self.net.parameters().items()])

    def layer_masks(self) -> list[np.ndarray]:
        keys = [f"layers.{j}" for j in range(len(self.net.layers))] + ["output"]
        return [self.entries(lambda p, key=key: p.rsplit(".", 1)[0] == key) for key in keys]


def test_inspect_matches_independent_computations(tmp_path, capsys):
    path = trained(tmp_path, {"name": "adam", "learning_rate": 0.01})
    r = inspect_json(path, capsys, "--examples", "40")
    assert {"grad_norm", "sharpness", "preconditioned_sharpness", "noise_scale", "snr",
            "stability_threshold"} <= set(r)
    assert r["examples"] == 40 and r["optimizer"] == "adam"
    ref = Reference(path, 40)
    layers = ref.layer_masks()

    g = ref.gradient(ref.theta)
    kernels = ref.entries(lambda p: p.endswith(".kernel"))
    for j, mask in enumerate(layers):
        assert r["grad_norm"][j] == pytest.approx(np.linalg.norm(g[mask & kernels]), rel=1e-9)

    H = ref.hessian()
    assert r["sharpness"] == pytest.approx(np.linalg.eigvalsh(H)[-1], rel=1e-5)

    opt = ref.trainer.optimizer
    slots, t = opt.state_dict()["slots"], opt.iterations
    correction = 1 - 0.999**t
    P = np.concatenate([np.sqrt(slots[f"{p}/v"].ravel() / correction) + 1e-7 / math.sqrt(correction)
                        for p in ref.paths])
    assert r["preconditioned_sharpness"] == pytest.approx(np.max(np.linalg.eigvals(H / P[:, None]).real), rel=1e-5)
    assert r["stability_threshold"] == pytest.approx(38 / 0.01)

    rows = np.array([ref.gradient(ref.theta, ref.X[i:i + 1], ref.y[i:i + 1]) for i in range(40)])
    G = rows.mean(axis=0)
    assert r["noise_scale"] == pytest.approx(np.mean(np.sum((rows - G) ** 2, axis=1)) / (G @ G), rel=1e-9)
    for j, mask in enumerate(layers):
        snr = (G[mask] @ G[mask]) / np.mean(np.sum((rows[:, mask] - G[mask]) ** 2, axis=1))
        assert r["snr"][j] == pytest.approx(snr, rel=1e-9)


def test_sgd_has_no_preconditioned_sharpness_and_the_table_reads(tmp_path, capsys):
    path = trained(tmp_path, {"name": "sgd", "learning_rate": 0.05})
    r = inspect_json(path, capsys)
    n_train = len(restore_trainer(load_session(path)).split.train)
    assert r["examples"] == n_train                 # all by default
    assert r["preconditioned_sharpness"] is None
    assert r["stability_threshold"] == pytest.approx(2 / 0.05)
    assert r["threshold_applies_to"] == "sharpness"
    assert run_headless(["inspect", str(path), "--examples", "all"]) == 0
    text = capsys.readouterr().out
    assert "stability threshold   40" in text and "noise scale" in text and "dense_1 (tanh, 5)" in text
    assert "\npreconditioned" not in text


def test_inspect_reads_sessions_written_before_the_instruments(capsys):
    r = inspect_json(ROOT / "resources" / "zoo" / "digits_0-4.gwb", capsys, "--examples", "64")
    assert r["sharpness"] > 0 and r["noise_scale"] > 0 and len(r["snr"]) == len(r["layer_names"])


@pytest.mark.parametrize(("flags", "message"), [
    (["--examples", "0"], "--examples: must be 'all' or a whole number of at least 2 (the noise scale and SNR "
                          "measure the spread between examples' gradients), got '0'"),
    (["--examples", "some"], "--examples: must be 'all' or a whole number of at least 2"),
    # one example has no spread: its noise scale and SNR would print rounding noise
    (["--examples", "1"], "--examples: must be 'all' or a whole number of at least 2"),
    (["--examples", "100000"], "--examples: {path} has 96 training examples, got 100000"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, flags, message):
    path = trained(tmp_path, {"name": "sgd", "learning_rate": 0.05})
    capsys.readouterr()
    assert run_headless(["inspect", str(path), *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.format(path=path) in err


def test_a_missing_or_broken_file_exits_2(tmp_path, capsys):
    assert run_headless(["inspect", str(tmp_path / "none.gwb")]) == 2
    broken = tmp_path / "broken.gwb"
    broken.write_bytes(b"not a zip")
    assert run_headless(["inspect", str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and all(line.startswith("error: ") for line in err.splitlines())


def test_a_diverged_session_reads_as_nulls(tmp_path, capsys):
    session = load_session(trained(tmp_path, {"name": "sgd", "learning_rate": 0.05}))
    session.weights["layers.0.kernel"][0, 0] = np.nan
    r = inspect_session(session, 30)
    assert r["sharpness"] is None and r["noise_scale"] is None and r["loss"] is None
    assert all(g is None for g in r["grad_norm"]) and r["stability_threshold"] == pytest.approx(40.0)
    json.dumps(r, allow_nan=False)  # still valid JSON
    assert "sharpness             n/a" in describe_inspection(r)


def test_one_example_is_refused_by_the_function_too(tmp_path):
    session = load_session(trained(tmp_path, {"name": "sgd", "learning_rate": 0.05}))
    with pytest.raises(UsageError, match="at least 2 .*got 1"):
        inspect_session(session, 1)
    assert inspect_session(session, 2)["noise_scale"] is not None
