"""The optimizer race runs core's optimizers, unchanged, on 2-D surfaces."""

import math

import numpy as np
import pytest

from core.engine.optimizers import OPTIMIZERS
from core.labs.optimizer_race import (
    SURFACES,
    RaceEntry,
    book_rating,
    format_table,
    learning_rate_grid,
    measured_table,
    momentum_parameter,
    race,
    run_optimizer,
    tune_learning_rate,
)


@pytest.mark.parametrize("name", SURFACES.names())
def test_gradient_matches_finite_differences(name):
    surface = SURFACES.get(name)()
    rng = np.random.default_rng(0)
    points = np.column_stack([rng.uniform(*surface.x_range, 20), rng.uniform(*surface.y_range, 20)])
    h = 1e-6
    for x, y in points:
        gx, gy = surface.gradient(x, y)
        fx = (surface.value(x + h, y) - surface.value(x - h, y)) / (2 * h)
        fy = (surface.value(x, y + h) - surface.value(x, y - h)) / (2 * h)
        scale = max(1.0, abs(fx), abs(fy))
        assert gx == pytest.approx(fx, abs=1e-5 * scale) and gy == pytest.approx(fy, abs=1e-5 * scale)


@pytest.mark.parametrize("name", SURFACES.names())
def test_minima_are_stationary_and_lowest_and_the_start_is_in_range(name):
    surface = SURFACES.get(name)()
    for mx, my in surface.minima:
        assert np.hypot(*surface.gradient(mx, my)) < 1e-12
    xs, ys, f = surface.grid(101)
    assert f.shape == (101, 101) and f.min() >= surface.minimum_value() - 1e-12
    assert surface.x_range[0] < surface.start[0] < surface.x_range[1]
    assert surface.y_range[0] < surface.start[1] < surface.y_range[1]
    assert surface.distance(np.array(surface.start)) > 0.5
    assert surface.summary and surface.title


def test_momentum_and_nesterov_beat_sgd_at_the_same_learning_rate_on_the_bowl():
    bowl = SURFACES.get("bowl")()
    runs = {t.optimizer: t for t in race(bowl, [RaceEntry(o, 0.01) for o in ("sgd", "momentum", "nesterov")],
                                         steps=1500)}
    sgd, momentum, nesterov = (runs[o].steps_to_tolerance for o in ("sgd", "momentum", "nesterov"))
    assert None not in (sgd, momentum, nesterov)
    # Along the shallow axis SGD shrinks the error by (1 − η) = 0.99 a step, momentum by √β ≈ 0.95.
    assert momentum < sgd / 3 and nesterov < sgd / 3


def test_adagrad_steps_shrink_over_time():
    t = run_optimizer(SURFACES.get("bowl")(), "adagrad", 0.5, 200)
    # The effective rate η/√(s + ε) per coordinate only ever decreases (s accumulates g²) ...
    effective = np.abs(t.steps) / np.abs(t.gradients)
    assert np.all(np.diff(effective, axis=0) <= 1e-15)
    assert np.all(effective[-1] < effective[0]) and effective[-1, 0] < 0.5 * effective[0, 0]
    # ... and so do the steps themselves.
    norms = np.hypot(*t.steps.T)
    assert norms[100] < norms[10] < norms[1] < norms[0]


def _rosenbrock_gradient(x: float, y: float) -> np.ndarray:
    """Written out again here, independently of the surface class."""
    return np.array([-2.0 * (1.0 - x) - 400.0 * x * (y - x * x), 200.0 * (y - x * x)])


@pytest.mark.parametrize("optimizer", OPTIMIZERS.names())
def test_trajectory_equals_core_optimizer_fed_the_same_gradients(optimizer):
    surface = SURFACES.get("rosenbrock")()
    key = momentum_parameter(optimizer)
    hyper = {key: 0.8} if key else {}
    t = run_optimizer(surface, optimizer, 1e-3, 60, hyperparameters=hyper)
    opt = OPTIMIZERS.get(optimizer)(learning_rate=1e-3, **hyper)
    opt.fused_updates = False   # as the race steps: NumPy's arithmetic, the same on every machine
    theta = np.array(surface.start, dtype=np.float64)
    opt.build({"w": theta})
    expected = [theta.copy()]
    for _ in range(60):
        opt.apply({"w": theta}, {"w": _rosenbrock_gradient(*theta)}, 1e-3)
        expected.append(theta.copy())
    np.testing.assert_array_equal(t.points, np.array(expected))
    assert t.hyperparameters == hyper and not t.diverged


def test_momentum_parameter_follows_the_registry():
    assert momentum_parameter("momentum") == "momentum" and momentum_parameter("nesterov") == "momentum"
    assert momentum_parameter("adam") == "beta_1" and momentum_parameter("rmsprop") == "rho"
    assert momentum_parameter("sgd") is None and momentum_parameter("adagrad") is None


def test_divergence_is_cut_short_and_reported():
    t = run_optimizer(SURFACES.get("bowl")(), "sgd", 0.5, 500)   # η > 2/20: every step overshoots more
    assert t.diverged and t.n_steps < 500 and t.steps_to_tolerance is None
    assert math.isinf(t.final_distance)


def test_arrival_means_staying_within_the_tolerance():
    # The arrival step is the first after which the run never leaves the tolerance ball again.
    t = run_optimizer(SURFACES.get("saddle")(), "sgd", 0.1, 400, tolerance=1e-3)
    assert t.steps_to_tolerance is not None
    assert np.all(t.distances[t.steps_to_tolerance:] < 1e-3)
    assert t.distances[t.steps_to_tolerance - 1] >= 1e-3


def test_tuning_picks_the_best_rate_of_the_grid():
    bowl = SURFACES.get("bowl")()
    grid = learning_rate_grid(1e-3, 0.1, per_decade=2)
    np.testing.assert_allclose(grid, [1e-3, 10**-2.5, 1e-2, 10**-1.5, 1e-1])
    best = tune_learning_rate(bowl, "sgd", 400, grid=grid)
    others = [run_optimizer(bowl, "sgd", float(lr), 400).steps_to_tolerance for lr in grid]
    assert best.steps_to_tolerance == min(s for s in others if s is not None)


def test_measured_table_covers_every_registered_optimizer():
    rows = measured_table(["bowl", "saddle"], steps=200, grid=learning_rate_grid(1e-2, 1.0, per_decade=2))
    assert [r.optimizer for r in rows] == OPTIMIZERS.names()
    for r in rows:
        assert set(r.steps_to_tolerance) == {"bowl", "saddle"}
        assert r.speed in ("*", "**", "***") and r.quality in ("*", "**", "***")
    assert book_rating("sgd") == ("*", "***") and book_rating("adagrad") == ("***", "*")
    text = format_table(rows)
    assert text.count("\n") == len(rows) + 1 and "| sgd |" in text
