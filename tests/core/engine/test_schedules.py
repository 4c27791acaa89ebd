"""Learning-rate schedules: each formula checked against values computed here by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.engine import schedules
from core.engine.schedules import SCHEDULES, Schedule, get_schedule

NAMES = SCHEDULES.names()
ETA0 = 0.01

# A valid, non-default configuration of every schedule.
CONFIGS = {
    "constant": {"name": "constant"},
    "power": {"name": "power", "steps": 50, "power": 2.0},
    "exponential": {"name": "exponential", "steps": 30},
    "piecewise": {"name": "piecewise", "boundaries": [2, 5], "values": [0.1, 0.01, 0.001]},
    "performance": {"name": "performance", "factor": 0.5, "patience": 3, "monitor": "loss",
                    "min_delta": 0.01, "min_learning_rate": 1e-5},
    "one_cycle": {"name": "one_cycle", "max_learning_rate": 0.05, "final_learning_rate": None,
                  "annihilation_fraction": 0.2, "max_momentum": 0.9, "min_momentum": 0.8},
}


def make(name: str, eta0: float = ETA0, **params) -> Schedule:
    return get_schedule({**CONFIGS[name], **params}, eta0)


# ---------------------------------------------------------------------- registry and config
def test_registry_holds_the_books_schedules():
    assert NAMES == ["constant", "power", "exponential", "piecewise", "performance", "one_cycle"]
    assert set(CONFIGS) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_class_attributes(name):
    cls = SCHEDULES.get(name)
    assert cls.name == name and cls.family == "schedule"
    assert isinstance(cls.summary, str) and cls.summary and "\n" not in cls.summary
    assert "initial_learning_rate" not in cls.parameters()


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip_and_repr(name):
    schedule = make(name)
    config = schedule.get_config()
    assert config == CONFIGS[name]
    config = json.loads(json.dumps(config))
    again = get_schedule(config, ETA0)
    assert again == schedule and again.get_config() == schedule.get_config()
    assert again != get_schedule(config, 2 * ETA0)  # η0 is part of the identity, not of the config
    assert repr(schedule).startswith(f"{type(schedule).__name__}({ETA0!r}")
    assert eval(repr(schedule), vars(schedules)) == schedule


def test_one_cycle_config_keeps_none_as_given():
    schedule = get_schedule({"name": "one_cycle"}, ETA0)
    assert schedule.get_config() == {"name": "one_cycle", "max_learning_rate": None,
                                     "final_learning_rate": None, "annihilation_fraction": 0.1,
                                     "max_momentum": 0.95, "min_momentum": 0.85}


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_is_json_and_round_trips(name):
    schedule = make(name)
    schedule.bind(7, 700)
    schedule.on_epoch_end(0, {"loss": 1.0, "val_loss": 1.0})
    state = json.loads(json.dumps(schedule.state_dict(), allow_nan=False))
    again = make(name)
    again.bind(7, 700)
    again.load_state_dict(state)
    assert again.state_dict() == schedule.state_dict()
    assert [again(t) for t in range(0, 700, 13)] == [schedule(t) for t in range(0, 700, 13)]
    with pytest.raises(ValueError, match="unexpected keys \\['bogus'\\]"):
        again.load_state_dict({**state, "bogus": 1})


@pytest.mark.parametrize("name", [n for n in NAMES if n != "performance"])
def test_only_performance_scheduling_reacts_to_epochs(name):
    schedule = make(name)
    schedule.bind(10, 1000)
    before = [schedule(t) for t in range(0, 1000, 37)]
    for epoch in range(20):
        assert schedule.on_epoch_end(epoch, {"loss": 5.0, "val_loss": 5.0}) is False
    assert [schedule(t) for t in range(0, 1000, 37)] == before


@pytest.mark.parametrize("name", NAMES)
def test_rates_are_python_floats(name):
    schedule = make(name)
    schedule.bind(7, 700)
    assert all(type(schedule(t)) is float for t in (0, 1, 350, 699))


@pytest.mark.parametrize(("config", "message"), [
    ({"name": "power", "steps": 0}, "steps: must be a positive integer, got 0"),
    ({"name": "power", "steps": 10.0}, "steps: must be an integer, got 10.0"),
    ({"name": "power", "power": -1}, "power: must be a positive number, got -1"),
    ({"name": "exponential", "steps": -5}, "steps: must be a positive integer, got -5"),
    ({"name": "piecewise"}, "boundaries: must be a non-empty list"),
    ({"name": "piecewise", "boundaries": [3, 3], "values": [1, 2, 3]},
     "boundaries[1]: must be greater than boundaries[0] = 3 (strictly increasing), got 3"),
    ({"name": "piecewise", "boundaries": [0], "values": [1, 2]},
     "boundaries[0]: must be a positive integer, got 0"),
    ({"name": "piecewise", "boundaries": [2.5], "values": [1, 2]},
     "boundaries[0]: must be an integer, got 2.5"),
    ({"name": "piecewise", "boundaries": [2, 4], "values": [0.1, 0.01]},
     "values: must have one more entry than boundaries (3), got 2"),
    ({"name": "piecewise", "boundaries": [2], "values": [0.1, -0.01]},
     "values[1]: must be a positive number, got -0.01"),
    ({"name": "performance", "factor": 1.0}, "factor: must be < 1, got 1.0"),
    ({"name": "performance", "factor": 0}, "factor: must be > 0, got 0"),
    ({"name": "performance", "patience": -1}, "patience: must be an integer >= 0, got -1"),
    ({"name": "performance", "monitor": "val_acc"},
     "monitor: must be one of 'val_loss', 'loss', 'val_accuracy', 'accuracy', got 'val_acc'"),
    ({"name": "performance", "min_delta": -1}, "min_delta: must be a non-negative number, got -1"),
    ({"name": "performance", "min_learning_rate": -1e-3},
     "min_learning_rate: must be a non-negative number, got -0.001"),
    ({"name": "one_cycle", "max_learning_rate": 0.005},
     "max_learning_rate: must be greater than the initial learning rate 0.01, got 0.005"),
    ({"name": "one_cycle", "max_learning_rate": -1}, "max_learning_rate: must be a positive number, got -1"),
    ({"name": "one_cycle", "final_learning_rate": 0.01},
     "final_learning_rate: must be less than the initial learning rate 0.01, got 0.01"),
    ({"name": "one_cycle", "annihilation_fraction": 1},
     "annihilation_fraction: must be a number in [0, 1), got 1"),
    ({"name": "constant", "steps": 3}, "steps: unknown parameter for schedule 'constant'; allowed: none"),
    ({"name": "cosine"}, "name: must be one of 'constant', 'power'"),
])
def test_bad_parameters_name_the_field(config, message):
    with pytest.raises(ValueError) as info:
        get_schedule(config, ETA0)
    assert str(info.value).startswith(message)


def test_initial_learning_rate_and_bind_are_checked():
    with pytest.raises(ValueError, match="^initial_learning_rate: must be a positive number, got 0"):
        get_schedule({"name": "constant"}, 0)
    schedule = make("one_cycle")
    with pytest.raises(ValueError, match="^steps_per_epoch: must be a positive integer, got 0"):
        schedule.bind(0, 10)
    with pytest.raises(ValueError, match="^total_steps: must be a positive integer, got -1"):
        schedule.bind(10, -1)


@pytest.mark.parametrize("name", ["piecewise", "one_cycle"])
def test_schedules_needing_the_run_length_refuse_to_guess(name):
    with pytest.raises(RuntimeError, match="bind"):
        make(name)(0)


# ---------------------------------------------------------------------- the formulas
def test_constant():
    schedule = get_schedule({"name": "constant"}, 0.3)
    assert [schedule(t) for t in (0, 1, 10**6)] == [0.3, 0.3, 0.3]


def test_power_halves_after_s_steps_and_thirds_after_2s():
    schedule = get_schedule({"name": "power", "steps": 100}, 0.1)
    assert schedule(0) == 0.1
    assert schedule(100) == pytest.approx(0.05, rel=1e-15)
    assert schedule(200) == pytest.approx(0.1 / 3, rel=1e-15)
    squared = get_schedule({"name": "power", "steps": 40, "power": 2.0}, 0.1)
    for t in (0, 7, 40, 123):
        assert squared(t) == pytest.approx(0.1 / (1 + t / 40) ** 2, rel=1e-15)


def test_exponential_divides_by_ten_every_s_steps():
    schedule = get_schedule({"name": "exponential", "steps": 250}, 0.2)
    assert schedule(0) == 0.2
    assert schedule(250) == pytest.approx(0.02, rel=1e-14)
    assert schedule(500) == pytest.approx(0.002, rel=1e-14)
    assert schedule(125) == pytest.approx(0.2 / np.sqrt(10), rel=1e-14)


def test_piecewise_switches_at_epoch_boundaries():
    schedule = get_schedule({"name": "piecewise", "boundaries": [2, 5], "values": [0.1, 0.01, 0.001]}, ETA0)
    schedule.bind(7, 7 * 10)
    expected = {0: 0.1, 6: 0.1, 7: 0.1, 13: 0.1,   # epochs 0 and 1
                14: 0.01, 20: 0.01, 34: 0.01,      # epochs 2..4 (step 34 is the last of epoch 4)
                35: 0.001, 69: 0.001, 500: 0.001}  # epoch 5 onwards
    assert {t: schedule(t) for t in expected} == expected


# ---------------------------------------------------------------------- performance scheduling
def _performance(**params) -> Schedule:
    config = {"name": "performance", "factor": 0.5, "patience": 3, **params}
    schedule = get_schedule(config, ETA0)
    schedule.bind(10, 1000)
    return schedule


def _feed(schedule, values, monitor="val_loss"):
    """Feed one monitored value per epoch; the (changed?, rate after) pairs."""
    return [(schedule.on_epoch_end(e, {monitor: v, "loss": 9.0}), schedule(0)) for e, v in enumerate(values)]


def test_performance_reduces_after_patience_epochs_and_not_before():
    schedule = _performance()
    got = _feed(schedule, [1.0, 0.8, 0.9, 0.85, 0.8])  # best 0.8 at epoch 1, then 3 epochs without beating it
    assert got == [(False, ETA0), (False, ETA0), (False, ETA0), (False, ETA0), (True, ETA0 * 0.5)]
    # the count starts again after a reduction
    got = _feed(schedule, [0.9, 0.9, 0.9])
    assert got == [(False, ETA0 * 0.5), (False, ETA0 * 0.5), (True, ETA0 * 0.25)]
    # an improvement resets the count
    got = _feed(schedule, [0.9, 0.9, 0.7, 0.9, 0.9, 0.9])
    assert [changed for changed, _ in got] == [False, False, False, False, False, True]


def test_performance_respects_min_delta():
    schedule = _performance(min_delta=0.01)
    changed = [c for c, _ in _feed(schedule, [1.0, 0.995, 0.992, 0.991])]  # improvements smaller than 0.01
    assert changed == [False, False, False, True]
    schedule = _performance(min_delta=0.01)
    changed = [c for c, _ in _feed(schedule, [1.0, 0.98, 0.96, 0.94, 0.94])]
    assert changed == [False, False, False, False, False]


def test_performance_maximizes_accuracy():
    schedule = _performance(monitor="val_accuracy", patience=2)
    got = _feed(schedule, [0.5, 0.6, 0.7, 0.65, 0.69], monitor="val_accuracy")
    assert [c for c, _ in got] == [False, False, False, False, True]


def test_performance_never_goes_below_min_learning_rate():
    schedule = _performance(factor=0.1, patience=1, min_learning_rate=0.004)
    got = _feed(schedule, [1.0, 1.0, 1.0, 1.0])
    assert got == [(False, ETA0), (True, 0.004), (False, 0.004), (False, 0.004)]


def test_performance_needs_its_metric_in_the_logs():
    schedule = _performance()
    with pytest.raises(ValueError, match="monitor: 'val_loss' is not in this epoch's logs"):
        schedule.on_epoch_end(0, {"loss": 1.0})


def test_performance_nan_is_never_an_improvement():
    schedule = _performance(patience=2)
    got = _feed(schedule, [float("nan"), float("nan"), 1.0])
    assert got == [(False, ETA0), (True, ETA0 * 0.5), (False, ETA0 * 0.5)]
    assert schedule.state_dict()["best"] == 1.0


def test_performance_state_round_trip_continues_identically():
    values = [1.0, 0.9, 0.95, 0.93, 0.92, 0.91, 0.85, 0.86, 0.87, 0.88, 0.89, 0.9, 0.8]
    a = _performance(patience=2)
    _feed(a, values[:5])
    b = _performance(patience=2)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert _feed(a, values[5:]) == _feed(b, values[5:])
    assert a.state_dict() == b.state_dict()


def test_performance_state_is_validated():
    schedule = _performance()
    with pytest.raises(ValueError, match="missing keys \\['wait'\\]"):
        schedule.load_state_dict({"learning_rate": 0.1, "best": None})
    with pytest.raises(ValueError, match="^learning_rate: must be a positive number"):
        schedule.load_state_dict({"learning_rate": -1, "best": None, "wait": 0})


# ---------------------------------------------------------------------- 1cycle
def _curve(schedule, total):
    return np.array([schedule(t) for t in range(total)])


def test_one_cycle_shape():
    total = 1000
    schedule = get_schedule({"name": "one_cycle"}, ETA0)  # max 10·η0, final η0/1000
    schedule.bind(10, total)
    lr = _curve(schedule, total)
    peak = int(np.argmax(lr))
    cycle = 0.9 * (total - 1)              # the non-annihilation part (fraction 0.1)
    assert lr[0] == ETA0
    assert lr[peak] == pytest.approx(10 * ETA0, rel=1e-12)
    assert abs(peak - cycle / 2) <= 1      # peak in the middle of the cycle
    back = int(np.argmin(np.abs(lr[peak:] - ETA0))) + peak
    assert lr[back] == pytest.approx(ETA0, rel=1e-12) and abs(back - cycle) <= 2
    assert lr[-1] == pytest.approx(ETA0 / 1000, rel=1e-12)  # three orders of magnitude below η0
    assert schedule(total) == schedule(10 * total) == lr[-1]  # stays there if asked beyond the end
    # monotone pieces: up to the peak, then down to the end
    assert np.all(np.diff(lr[: peak + 1]) > 0) and np.all(np.diff(lr[peak:]) < 0)
    # piecewise linear: the second difference vanishes except at the two kinks (peak, back)
    kinks = np.flatnonzero(np.abs(np.diff(lr, 2)) > 1e-12) + 1
    assert set(kinks) <= {peak, back}
    # and the slopes are the ones of straight lines between the corner points
    np.testing.assert_allclose(np.diff(lr[:peak]), (10 * ETA0 - ETA0) / peak, rtol=1e-9)
    np.testing.assert_allclose(np.diff(lr[back:]), (ETA0 / 1000 - ETA0) / (total - 1 - back), rtol=1e-9)


def test_one_cycle_with_explicit_rates():
    schedule = get_schedule({"name": "one_cycle", "max_learning_rate": 0.05, "final_learning_rate": 1e-6,
                             "annihilation_fraction": 0.25}, ETA0)
    schedule.bind(5, 401)
    lr = _curve(schedule, 401)
    assert lr[0] == ETA0 and lr.max() == pytest.approx(0.05) and lr[-1] == pytest.approx(1e-6)
    assert int(np.argmax(lr)) == 150  # (1 − 0.25) · 400 / 2
    assert lr[300] == pytest.approx(ETA0)


def test_one_cycle_tiny_runs_do_not_divide_by_zero():
    for total in (1, 2, 3, 4):
        schedule = get_schedule({"name": "one_cycle"}, ETA0)
        schedule.bind(1, total)
        lr = _curve(schedule, total + 2)
        assert lr[0] == ETA0 and np.all(np.isfinite(lr)) and np.all(lr > 0)


def test_one_cycle_cycles_momentum_against_the_rate():
    """Smith: β falls 0.95 → 0.85 while η rises, climbs back while η falls, stays 0.95 after."""
    schedule = make("one_cycle", annihilation_fraction=0.1, max_momentum=0.95, min_momentum=0.85)
    schedule.bind(10, 201)
    half, end, last = schedule.phases()
    assert (half, end, last) == (90, 180, 200)
    for t, beta in ((0, 0.95), (45, 0.90), (90, 0.85), (135, 0.90), (180, 0.95), (195, 0.95), (500, 0.95)):
        assert schedule.momentum(t) == pytest.approx(beta)
    # β and η move in opposite directions through the cycle
    rates = np.array([schedule(t) for t in range(end + 1)])
    betas = np.array([schedule.momentum(t) for t in range(end + 1)])
    assert np.all(np.sign(np.diff(rates)) == -np.sign(np.diff(betas)))
    assert make("one_cycle", max_momentum=None).momentum(3) is None
    assert make("constant").momentum(3) is None
    with pytest.raises(ValueError, match="max_momentum: must be at least min_momentum 0.8"):
        make("one_cycle", max_momentum=0.7)


def test_a_momentum_optimizer_under_one_cycle_takes_the_cycled_beta():
    from core.spec import parse_experiment
    from core.training import Trainer
    spec = {"seed": 1, "data": {"source": "moons", "params": {"n_samples": 200}},
            "model": {"layers": [{"units": 8}]}, "optimizer": {"name": "momentum", "momentum": 0.5},
            "schedule": {"name": "one_cycle"}, "training": {"epochs": 2, "batch_size": 16}}
    trainer = Trainer(parse_experiment(spec))
    seen = []
    trainer.fit(observer=lambda kind, info: seen.append(trainer.optimizer.momentum) if kind == "step" else None)
    expected = [trainer.schedule.momentum(t) for t in range(trainer.step)]
    assert seen == pytest.approx(expected) and min(seen) == pytest.approx(0.85, abs=0.01)
    # switching to a schedule that does not cycle gives the optimizer its own β back
    spec["schedule"] = {"name": "constant"}
    trainer.set_hyperparameters(parse_experiment(spec))
    assert trainer.optimizer.momentum == 0.5
