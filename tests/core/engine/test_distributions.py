"""Distributions over time (core.engine.distributions): the rows against numpy.histogram on the
tensors the trainer recorded, saturation and dead ReLUs as the rows show them, the bounded table,
resuming, the session round trip, older sessions and the loader's shape checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.engine import distributions as dist
from core.engine.distributions import (
    KINDS,
    DistributionRecorder,
    check_distributions,
    edges_key,
    kind_columns,
    kind_edges,
    table_key,
)
from core.monitor import SnapshotSource
from core.sessions.format import SessionError, load_session, session_members, write_session
from core.sessions.trainer_io import restore_trainer, save_trainer
from core.spec import SpecError, parse_experiment
from core.training import Trainer

ROOT = Path(__file__).resolve().parents[3]


def spec(layers: list[dict[str, Any]] | None = None, every: int = 1, enabled: bool = True, **training: Any) -> dict:
    return {"seed": 5, "data": {"source": "moons", "params": {"n_samples": 200}},
            "model": {"layers": layers or [{"units": 12, "activation": "relu"}, {"units": 8, "activation": "tanh"}]},
            "optimizer": {"name": "adam", "learning_rate": 0.01},
            "regularization": {"l2": 0.001},
            "training": {"epochs": 3, "batch_size": 16, **training,
                         "instruments": {"distributions": {"enabled": enabled, "every": every}}}}


# ----------------------------------------------------------------------------- one row, by numpy.histogram


def numpy_log_row(values: np.ndarray) -> np.ndarray:
    """[zeros, below, bins…, above] of |values| from numpy.histogram on log10 |x|, worked out apart."""
    mag = np.abs(np.asarray(values, dtype=np.float64).ravel())
    lo, hi = dist.LOG_EXPONENTS
    logs = np.log10(mag[mag > 0])
    counts, _ = np.histogram(logs, bins=dist.LOG_BINS, range=(lo, hi))
    # numpy closes the last bin; the recorder's last bin is half-open like the others
    at_top = np.count_nonzero(logs == hi)
    counts[-1] -= at_top
    row = [np.count_nonzero(mag == 0), np.count_nonzero(logs < lo), *counts, np.count_nonzero(logs >= hi)]
    return np.array(row, dtype=np.float64) / mag.size


def numpy_value_row(values: np.ndarray, low: float, high: float, bins: int) -> np.ndarray:
    flat = np.asarray(values, dtype=np.float64).ravel()
    nonzero = flat[flat != 0]
    counts, _ = np.histogram(nonzero, bins=bins, range=(low, high))
    row = [np.count_nonzero(flat == 0), np.count_nonzero(nonzero < low), *counts, np.count_nonzero(nonzero > high)]
    return np.array(row, dtype=np.float64) / flat.size


def numpy_row(kind: str, values: np.ndarray) -> np.ndarray:
    if kind in dist.LOG_KINDS:
        return numpy_log_row(values)
    low, high = dist.PRE_ACTIVATION_RANGE if kind == "pre_activations" else dist.ACTIVATION_RANGE
    bins = dist.PRE_ACTIVATION_BINS if kind == "pre_activations" else dist.ACTIVATION_BINS
    return numpy_value_row(values, low, high, bins)


@pytest.mark.parametrize("kind", KINDS)
def test_a_row_is_numpy_histogram_with_zeros_and_the_outside_apart(kind: str) -> None:
    rng = np.random.default_rng(1)
    scale = 10.0 ** rng.uniform(-12, 3, size=4000) if kind in dist.LOG_KINDS else rng.uniform(0.1, 6, 4000)
    values = rng.standard_normal(4000) * scale
    values[::17] = 0.0
    values[5] = -2.0 if kind == "activations" else values[5]            # exactly on an edge
    row = dist.kind_row(kind, values.astype(np.float32))
    np.testing.assert_allclose(row, numpy_row(kind, values.astype(np.float32)), atol=1e-12)
    assert row.sum() == pytest.approx(1.0)
    assert row[0] == pytest.approx(np.count_nonzero(values == 0) / values.size)
    assert len(row) == kind_columns(kind) == len(kind_edges(kind)) - 1 + 3


@pytest.mark.parametrize("kind", ["weights", "activations"])
def test_a_large_tensor_is_binned_from_a_fixed_strided_sample(kind: str) -> None:
    rng = np.random.default_rng(2)
    big = (rng.standard_normal((784, 300)) * 0.05).astype(np.float32)
    stride = -(-big.size // dist.HISTOGRAM_SAMPLE)
    assert stride == 15
    np.testing.assert_allclose(dist.kind_row(kind, big), numpy_row(kind, big.ravel()[::stride]), atol=1e-12)
    # and the sample's fractions are close to the whole kernel's
    np.testing.assert_allclose(dist.kind_row(kind, big), numpy_row(kind, big), atol=0.01)
    small = big[:50]                                       # 15,000 values: all of them
    np.testing.assert_allclose(dist.kind_row(kind, small), numpy_row(kind, small), atol=1e-12)


def test_the_value_edges_fall_on_minus_one_zero_and_one() -> None:
    for kind in ("pre_activations", "activations"):
        edges = kind_edges(kind)
        for v in (-1.0, 0.0, 1.0):
            assert np.min(np.abs(edges - v)) < 1e-12, (kind, v)


# ----------------------------------------------------------------------------- what the trainer records


def test_the_trainer_records_the_histograms_of_the_tensors_of_its_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    t = Trainer(parse_experiment(spec(every=3)))
    seen: list[tuple[int, dict[str, list[np.ndarray]], dict[str, np.ndarray]]] = []
    record = DistributionRecorder.record

    def spy(self: DistributionRecorder, step: int, network: Any, logits: np.ndarray) -> bool:
        tensors = {k: [np.array(a, copy=True) for a in v] for k, v in dist.layer_tensors(network, logits).items()}
        seen.append((step, tensors, {k: a.copy() for k, a in network.parameters().items()}))
        return record(self, step, network, logits)

    monkeypatch.setattr(DistributionRecorder, "record", spy)
    before = {k: a.copy() for k, a in t.network.parameters().items()}
    t.train_batch()
    assert seen and seen[0][0] == 1
    # the weights binned are those before the step; the gradient is that of the step's batch
    np.testing.assert_array_equal(seen[0][1]["weights"][0], before["layers.0.kernel"])
    for _ in range(11):
        t.train_batch()
    rec = t.distributions
    assert list(rec.steps) == [1, 4, 7, 10] == [s for s, _, _ in seen]
    for row, (_, tensors, _) in enumerate(seen):
        for kind in KINDS:
            for layer, values in enumerate(tensors[kind]):
                np.testing.assert_allclose(rec.table(kind)[row, layer], numpy_row(kind, values), atol=1e-6)
    # the output layer's activations are the predicted probabilities: all in [0, 1]
    out = rec.table("activations")[:, -1]
    edges = kind_edges("activations")
    inside = np.concatenate([[True, False], (edges[:-1] >= 0) & (edges[:-1] < 1.0 + 1e-9), [False]])
    np.testing.assert_allclose(out[:, inside].sum(axis=1), 1.0, atol=1e-6)


def test_saturated_tanh_units_pile_their_mass_at_plus_and_minus_one() -> None:
    """The chapter's exploding example: ten tanh layers with N(0, 1) weights saturate."""
    layers = [{"units": 100, "activation": "tanh", "init": {"name": "random_normal", "stddev": 1.0}}] * 6
    t = Trainer(parse_experiment(spec(layers)))
    t.train_batch()
    edges = kind_edges("activations")
    lower = edges[:-1]
    near_one = np.concatenate([[False, False], (np.abs(np.abs(lower + 0.0625) - 1.0) < 0.07), [False]])
    act = t.distributions.table("activations")[0]
    for layer in range(1, 6):
        assert act[layer, near_one].sum() > 0.5, layer           # most of the mass at ±1
        assert act[layer, near_one].sum() == pytest.approx(
            np.mean(np.abs(t.network.layers[layer].activation_output) > 0.875), abs=1e-6)
    # a Glorot-initialized tanh stack does not
    healthy = Trainer(parse_experiment(spec([{"units": 100, "activation": "tanh", "init": "glorot_normal"}] * 6)))
    healthy.train_batch()
    assert healthy.distributions.table("activations")[0][1:6, near_one].sum(axis=1).max() < 0.2


def test_dead_relu_units_show_as_mass_at_exactly_zero() -> None:
    relu = spec([{"units": 16, "activation": "relu"}] * 3)
    relu["regularization"] = {"l2": 0.0}        # ℓ2's 2·l2·w would make every gradient non-zero
    t = Trainer(parse_experiment(relu))
    t.network.layers[1].dense.bias[:8] = -1e3           # half of layer 1's units can never fire
    t.train_batch()
    act = t.distributions.table("activations")[0]
    assert act[1, 0] >= 0.5                               # ≥ half of the outputs exactly 0
    assert act[1, 0] == pytest.approx(np.mean(t.network.layers[1].activation_output == 0))
    grads = t.distributions.table("gradients")[0]
    # the dead units' incoming weights get exactly-zero gradients (8 of 16 columns), as do the
    # next layer's weights from them (8 of 16 rows)
    assert grads[1, 0] >= 0.5 and grads[2, 0] >= 0.5
    assert t.distributions.table("weights")[0][1, 0] == 0.0


# ----------------------------------------------------------------------------- the bounded table


def test_a_full_table_keeps_every_second_row_and_doubles_the_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dist, "MAX_DISTRIBUTION_ROWS", 16)
    t = Trainer(parse_experiment(spec(every=2, epochs=10)))
    assert t.distributions.capacity == 16
    for _ in range(100):
        t.train_batch()
    rec = t.distributions
    assert rec.size <= 16 and rec.thinned == 2 and rec.interval == 8
    np.testing.assert_array_equal(np.diff(rec.steps), 8)
    assert rec.steps[0] == 1
    # the same run cut in two and resumed from its state records the same rows
    u = Trainer(parse_experiment(spec(every=2, epochs=10)))
    for _ in range(37):
        u.train_batch()
    arrays, state = u.state_dict()
    v = Trainer(parse_experiment(spec(every=2, epochs=10)))
    v.load_state_dict(arrays, state)
    for _ in range(63):
        v.train_batch()
    assert v.distributions.thinned == rec.thinned
    np.testing.assert_array_equal(v.distributions.steps, rec.steps)
    for kind in KINDS:
        np.testing.assert_array_equal(v.distributions.table(kind), rec.table(kind))


def test_the_table_of_a_deep_network_is_smaller() -> None:
    assert dist.row_capacity(6) == dist.MAX_DISTRIBUTION_ROWS
    deep = dist.row_capacity(1000)
    assert 16 <= deep < dist.MAX_DISTRIBUTION_ROWS
    assert deep * 1000 * sum(kind_columns(k) for k in KINDS) <= max(dist.MAX_DISTRIBUTION_VALUES,
                                                                    16 * 1000 * sum(kind_columns(k) for k in KINDS))


def test_off_records_nothing_and_the_spec_checks_the_setting() -> None:
    t = Trainer(parse_experiment(spec(enabled=False)))
    t.fit(epochs=1)
    assert t.distributions.size == 0
    with pytest.raises(SpecError, match=r"^training\.instruments\.distributions\.every: must be a positive integer"):
        parse_experiment(spec(every=0))


# ----------------------------------------------------------------------------- snapshots


def test_snapshots_carry_only_the_new_rows() -> None:
    t = Trainer(parse_experiment(spec(every=2)))
    source = SnapshotSource(t)
    for _ in range(5):
        t.train_batch()
    first = source.take()
    assert first.distributions is not None and first.distributions.start == 0 and len(first.distributions) == 3
    for _ in range(4):
        t.train_batch()
    second = source.take()
    assert second.distributions.start == 3 and list(second.distributions["step"]) == [7, 9]
    assert source.take().distributions is None                    # nothing new
    np.testing.assert_array_equal(first.then(second).distributions["activations"], t.distributions.table("activations"))


# ----------------------------------------------------------------------------- sessions


def test_the_tables_survive_a_session_and_resume_exactly(tmp_path: Path) -> None:
    t = Trainer(parse_experiment(spec(every=2)))
    t.fit(epochs=2)
    path = tmp_path / "run.gwb"
    save_trainer(path, t)
    session = load_session(path)
    for kind in KINDS:
        np.testing.assert_array_equal(session.history[table_key(kind)], t.distributions.table(kind))
        np.testing.assert_array_equal(session.history[edges_key(kind)], kind_edges(kind))
    back = restore_trainer(session)
    back.fit(epochs=1)
    t.fit(epochs=1)
    np.testing.assert_array_equal(back.distributions.steps, t.distributions.steps)
    for kind in KINDS:
        np.testing.assert_array_equal(back.distributions.table(kind), t.distributions.table(kind))


@pytest.mark.parametrize("name", ["session_v1.gwb", "session_v2.gwb"])
def test_older_sessions_load_with_empty_tables_and_record_on(name: str) -> None:
    session = load_session(ROOT / "tests" / "data" / name)
    assert not any(k.startswith("distribution_") for k in session.history)
    trainer = restore_trainer(session)
    assert trainer.distributions.size == 0
    every = trainer.distributions.interval
    for _ in range(every + 1):
        trainer.train_batch()
    assert trainer.distributions.size >= 1


def bad(history: dict[str, np.ndarray], key: str, value: Any) -> dict[str, np.ndarray]:
    out = dict(history)
    if value is None:
        del out[key]
    else:
        out[key] = value
    return out


def test_the_loader_checks_every_distribution_array(tmp_path: Path) -> None:
    t = Trainer(parse_experiment(spec(every=2)))
    t.fit(epochs=1)
    good = t.history_arrays()
    n_layers = len(t.network.layer_names)
    check_distributions(good, n_layers)
    rows = len(good["distribution_step"])
    cases = [
        (table_key("weights"), good[table_key("weights")][:, :2], r"distribution_weights\] must be floats of shape"),
        (table_key("gradients"), good[table_key("gradients")] * 3 + 2, "must hold fractions from 0 to 1"),
        ("distribution_step", good["distribution_step"][::-1].copy(), "non-decreasing"),
        ("distribution_step", good["distribution_step"].astype(np.float64), "integers"),
        (edges_key("activations"), kind_edges("activations") * 2, "fixed bin edges of activations"),
        ("distribution_thinned", np.array([1, 2]), "one integer"),
        (table_key("pre_activations"), None, r"distribution_pre_activations\] is missing"),
    ]
    assert rows > 2
    for key, value, message in cases:
        with pytest.raises(ValueError, match=message):
            check_distributions(bad(good, key, value), n_layers, "history.npz")
    # and a session holding such an array is refused by the loader, naming it
    arrays, state = t.state_dict()
    arrays["history/distribution_weights"] = arrays["history/distribution_weights"][:, :2]
    t.load_state_dict(*t.state_dict())          # the trainer's own state still loads
    with pytest.raises(ValueError, match=r"history\[distribution_weights\]"):
        t.load_state_dict(arrays, state)
    path = tmp_path / "bad.gwb"
    write_session(path, session_members(t.experiment, arrays, state))
    with pytest.raises(SessionError, match=r"history\.npz\[distribution_weights\] must be floats of shape"):
        load_session(path)


# ----------------------------------------------------------------------------- summaries of a row, against numpy


def value_bin_width(kind: str) -> float:
    low, high = dist.PRE_ACTIVATION_RANGE if kind == "pre_activations" else dist.ACTIVATION_RANGE
    bins = dist.PRE_ACTIVATION_BINS if kind == "pre_activations" else dist.ACTIVATION_BINS
    return (high - low) / bins


def layers_table(kind: str, tensors: list[np.ndarray]) -> np.ndarray:
    """A one-row table of several layers, as the recorder stores it (float32)."""
    return np.stack([dist.kind_row(kind, t) for t in tensors])[None].astype(np.float32)


@pytest.mark.parametrize("kind", KINDS)
def test_the_median_magnitude_and_zero_share_match_numpy_within_a_bin(kind: str) -> None:
    rng = np.random.default_rng(11)
    scales = [3e-6, 2e-3, 0.05, 0.4, 1.3] if kind in dist.LOG_KINDS else [0.02, 0.3, 0.9, 1.6]
    tensors = []
    for i, scale in enumerate(scales):
        x = (rng.standard_normal(3001 + 500 * i) * scale).astype(np.float32)
        x[rng.random(x.size) < 0.1 * i] = 0.0              # 0 %, 10 %, 20 %, ... exact zeros
        tensors.append(x)
    table = layers_table(kind, tensors)
    median, zeros = dist.median_magnitude(kind, table)[0], dist.zero_fraction(table)[0]
    assert median.shape == zeros.shape == (len(scales),)
    for j, x in enumerate(tensors):
        true = float(np.median(np.abs(x.astype(np.float64))))
        assert zeros[j] == pytest.approx(np.mean(x == 0), abs=1e-6)
        if kind in dist.LOG_KINDS:        # a quarter decade: one log bin
            bin_width = (dist.LOG_EXPONENTS[1] - dist.LOG_EXPONENTS[0]) / dist.LOG_BINS
            assert abs(np.log10(median[j]) - np.log10(true)) <= bin_width + 1e-9, (j, median[j], true)
        else:
            assert abs(median[j] - true) <= value_bin_width(kind) + 1e-9, (j, median[j], true)


@pytest.mark.parametrize("kind", KINDS)
def test_the_median_is_interpolated_inside_its_bin(kind: str) -> None:
    """Values spread evenly (in log10 |x| for the log kinds, in x for the others): the interpolation
    is exact up to the spacing, where the bin's midpoint or edge would be off by 0.3 of a bin
    or more."""
    if kind in dist.LOG_KINDS:
        x = 10 ** np.linspace(-3.1, -1.0, 20_001)           # median 10^−2.05, in the bin [−2.25, −2)
        true = np.median(x)
        got = dist.median_magnitude(kind, layers_table(kind, [x.astype(np.float32)]))[0, 0]
        assert abs(np.log10(got) - np.log10(true)) < 0.005
    else:
        x = np.linspace(-1.3, 1.3, 10_001)                   # median |x| 0.65, in the bin [0.625, 0.75)
        true = np.median(np.abs(x))
        got = dist.median_magnitude(kind, layers_table(kind, [x.astype(np.float32)]))[0, 0]
        assert abs(got - true) < 0.005


def test_the_median_magnitude_at_the_ends_of_the_range() -> None:
    mostly_zero = np.zeros(100, dtype=np.float32)
    mostly_zero[:40] = 1.0
    tiny = np.full(100, 1e-13, dtype=np.float32)
    huge = np.full(100, 5e3, dtype=np.float32)
    median = dist.median_magnitude("gradients", layers_table("gradients", [mostly_zero, tiny, huge]))[0]
    assert median[0] == 0.0                                      # more than half exactly 0
    assert median[1] == pytest.approx(10 ** dist.LOG_EXPONENTS[0])  # below the range: its upper end (a bound)
    assert median[2] == pytest.approx(10 ** dist.LOG_EXPONENTS[1])  # above: the range's end (a bound)
    wide = np.concatenate([np.full(60, -7.0), np.full(40, 0.5)]).astype(np.float32)
    assert dist.median_magnitude("activations", layers_table("activations", [wide]))[0, 0] == pytest.approx(2.0)
    # nothing binned (every value NaN): no median
    assert np.isnan(dist.median_magnitude("weights", np.zeros((1, 1, kind_columns("weights")))))[0, 0]


def test_the_saturated_share_is_the_share_in_the_bins_at_the_asymptotes() -> None:
    rng = np.random.default_rng(12)
    z = rng.standard_normal(5000) * 2.5
    tanh = np.tanh(z).astype(np.float32)
    logistic = (1 / (1 + np.exp(-z))).astype(np.float32)
    relu = np.maximum(z, 0).astype(np.float32)
    table = layers_table("activations", [tanh, logistic, relu])
    saturated = dist.saturated_fraction(table, [(-1.0, 1.0), (0.0, 1.0), None])[0]
    w = value_bin_width("activations")
    a = tanh.astype(np.float64)
    assert saturated[0] == pytest.approx(np.mean(np.abs(a) >= 1 - w), abs=1e-6)
    s = logistic.astype(np.float64)
    assert saturated[1] == pytest.approx(np.mean((s < w) | (s >= 1 - w)), abs=1e-6)
    assert 0.2 < saturated[0] < 0.9 and 0.2 < saturated[1] < 0.9       # the test means something
    assert np.isnan(saturated[2])                                       # ReLU does not saturate
    summary = dist.summarise("activations", table, [(-1.0, 1.0), (0.0, 1.0), None])
    assert list(summary) == ["zero_fraction", "saturated_fraction", "median_magnitude"]
    assert list(dist.summarise("gradients", table)) == ["zero_fraction", "median_magnitude"]
    with pytest.raises(ValueError, match="activations table of shape"):
        dist.saturated_fraction(table, [None])
