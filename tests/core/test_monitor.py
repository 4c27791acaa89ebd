"""core.monitor: the snapshot every watcher of a run reads (contents against the trainer, copies,
coalescing, pacing), and the Qt-free helpers the window uses (live edits, the planned learning
rate, the decision boundary)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from core.engine.diagnostics import EPOCH_METRICS, LAYER_QUANTITIES, STEP_QUANTITIES
from core.engine.instruments import INSTRUMENT_KEYS
from core.monitor import (
    HEALTH_INTERVAL,
    TWO_D_DATASETS,
    SnapshotSource,
    TrainingSnapshot,
    applies_live,
    boundary_probabilities,
    hyperparameter_only_change,
    planned_learning_rate,
    planned_stability_threshold,
    two_d_points,
)
from core.spec import parse_experiment, parse_path, set_path
from core.training import Trainer


def tiny_spec(epochs: int = 4, layers: int = 3, **sections: Any) -> dict[str, Any]:
    """Moons with a few small layers: steps take well under a millisecond."""
    spec = {
        "name": "tiny moons", "seed": 7,
        "data": {"source": "moons", "params": {"n_samples": 200}, "validation_split": 0.2, "test_split": 0.0},
        "model": {"layers": [{"units": 16, "init": "he_normal", "activation": "elu"} for _ in range(layers)]},
        "optimizer": {"name": "adam", "learning_rate": 0.01},
        "training": {"epochs": epochs, "batch_size": 32},
    }
    for section, values in sections.items():
        spec[section] = {**spec.get(section, {}), **values}
    return spec


def tiny_trainer(**kwargs: Any) -> Trainer:
    return Trainer(parse_experiment(tiny_spec(**kwargs)))


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Reader:
    """A minimal reader applying snapshots as the window's buffers do (rows from ``start`` replace
    and extend what it holds), written independently of them."""

    def __init__(self) -> None:
        self.rows: dict[str, np.ndarray] = {}
        self.epochs: dict[str, list[float]] = {}
        self.snap: TrainingSnapshot | None = None

    def apply(self, snap: TrainingSnapshot) -> None:
        if snap.reset:
            self.rows, self.epochs = {}, {k: [] for k in EPOCH_METRICS}
        for q, a in snap.rows.columns.items():
            self.rows[q] = np.concatenate([self.rows[q][:snap.rows.start], a]) if q in self.rows else a
        for k in EPOCH_METRICS:
            self.epochs[k] = self.epochs[k][:snap.epochs.start] + [float(v) for v in snap.epochs[k]]
        self.snap = snap


def assert_holds_the_record(reader: Reader, trainer: Trainer) -> None:
    rec = trainer.recorder
    np.testing.assert_array_equal(reader.rows["step"], rec.steps)
    for q in (*LAYER_QUANTITIES, *STEP_QUANTITIES):
        np.testing.assert_array_equal(reader.rows[q], rec[q], err_msg=q)
    assert reader.epochs == {k: [float(v) for v in trainer.history[k]] for k in EPOCH_METRICS}


# ----------------------------------------------------------------------------- contents


def test_a_snapshot_holds_the_trainers_state_and_only_the_new_rows() -> None:
    trainer = tiny_trainer(epochs=3)
    source = SnapshotSource(trainer)
    first = source.take()
    assert first.reset and first.run is not None
    assert first.run.layer_names == tuple(trainer.network.layer_names)
    assert first.run.steps_per_epoch == trainer.steps_per_epoch and first.run.epochs == 3
    assert first.run.classification and first.run.class_names == tuple(str(c) for c in trainer.dataset.class_names)
    assert len(first.rows) == 0 and len(first.epochs) == 0
    assert first.progress.step == 0 and math.isnan(first.progress.loss) and not first.progress.finished

    trainer.fit(epochs=1)
    for _ in range(3):
        trainer.train_batch()
    second = source.take()
    assert not second.reset and second.run is None
    rec = trainer.recorder
    assert second.rows.start == 0 and second.rows.end == rec.size == trainer.step
    np.testing.assert_array_equal(second.rows["step"], rec.steps)
    for q in (*LAYER_QUANTITIES, *STEP_QUANTITIES):
        np.testing.assert_array_equal(second.rows[q], rec[q], err_msg=q)
    assert second.epochs.start == 0 and len(second.epochs) == 1
    for k in EPOCH_METRICS:
        np.testing.assert_array_equal(second.epochs[k], np.asarray(trainer.history[k], dtype=np.float64), err_msg=k)
    p = second.progress
    spe = trainer.steps_per_epoch
    assert (p.step, p.epoch, p.epochs, p.batch, p.batches) == (spe + 3, 1, 3, 3, spe)
    assert (p.done, p.total) == (spe + 3, 3 * spe)
    assert p.loss == pytest.approx(float(rec["loss"][-1])) and not p.paused
    assert second.health == tuple(trainer.health())
    assert second.events == tuple(trainer.events)
    assert second.frozen_layers == (False,) * len(trainer.network.layer_names)
    assert second.confusion is None and second.boundary is None

    for _ in range(2):
        trainer.train_batch()
    third = source.take()
    assert third.rows.start == spe + 3 and len(third.rows) == 2       # only what is new
    np.testing.assert_array_equal(third.rows["step"], [spe + 4, spe + 5])
    assert third.epochs.start == 1 and len(third.epochs) == 0


def test_the_extras_are_the_trainers_confusion_matrix_and_boundary() -> None:
    trainer = tiny_trainer(epochs=1)
    trainer.fit()
    snap = SnapshotSource(trainer).take(extras=True)
    np.testing.assert_array_equal(snap.confusion, trainer.confusion_matrix("val"))
    assert snap.run is not None and snap.run.points is not None
    np.testing.assert_array_equal(snap.boundary, boundary_probabilities(trainer, snap.run.points.bounds))


def test_a_snapshot_keeps_its_copies_when_the_trainer_goes_on() -> None:
    trainer = tiny_trainer(epochs=2)
    source = SnapshotSource(trainer)
    trainer.fit(epochs=1)
    snap = source.take(extras=True)
    kept_rows = {q: a.copy() for q, a in snap.rows.columns.items()}
    kept_epochs = {k: a.copy() for k, a in snap.epochs.columns.items()}
    kept_confusion, kept_boundary = snap.confusion.copy(), snap.boundary.copy()
    kept_events = [dict(e) for e in snap.events]
    rec = trainer.recorder
    for q in (*LAYER_QUANTITIES, *STEP_QUANTITIES):
        assert not np.shares_memory(snap.rows[q], rec.table(q)), q
        rec.table(q)[: rec.size] = 12345.0           # mutate what the trainer holds ...
    rec.table("grad_norm")[:] = -1.0
    trainer.history["loss"][0] = -7.0
    trainer.events.append({"kind": "x", "step": 0, "epoch": 0, "message": "after"})
    trainer.fit(epochs=1)                             # ... and train on (the tables grow)
    for q, a in kept_rows.items():
        np.testing.assert_array_equal(snap.rows[q], a, err_msg=q)
    for k, a in kept_epochs.items():
        np.testing.assert_array_equal(snap.epochs[k], a, err_msg=k)
    np.testing.assert_array_equal(snap.confusion, kept_confusion)
    np.testing.assert_array_equal(snap.boundary, kept_boundary)
    assert [dict(e) for e in snap.events] == kept_events
    with pytest.raises(ValueError):
        snap.rows["grad_norm"][0, 0] = 0.0           # read-only: a reader cannot change another's view
    with pytest.raises(AttributeError):
        snap.progress.step = 0                        # type: ignore[misc]


def test_a_source_from_now_on_starts_at_the_trainers_position() -> None:
    trainer = tiny_trainer(epochs=3)
    trainer.fit(epochs=1)
    source = SnapshotSource(trainer, history=False)
    first = source.take()
    assert not first.reset and first.rows.start == trainer.recorder.size and len(first.rows) == 0
    assert first.epochs.start == 1 and len(first.epochs) == 0
    trainer.fit(epochs=1)
    second = source.take()
    assert second.rows.start == trainer.steps_per_epoch and len(second.rows) == trainer.steps_per_epoch
    assert second.epochs.start == 1 and list(second.epochs["epoch"]) == [2.0]


# ----------------------------------------------------------------------------- coalescing and roll-backs


def test_snapshots_coalesce_into_what_applying_them_in_order_gives() -> None:
    trainer = tiny_trainer(epochs=3)
    source = SnapshotSource(trainer)
    snaps = [source.take()]
    trainer.fit(epochs=1)
    snaps.append(source.take(extras=True))
    for _ in range(4):
        trainer.train_batch()
    snaps.append(source.take())
    trainer.fit(epochs=1)
    snaps.append(source.take())

    one_by_one, coalesced = Reader(), Reader()
    for snap in snaps:
        one_by_one.apply(snap)
    merged = snaps[0]
    for snap in snaps[1:]:
        merged = merged.then(snap)
    coalesced.apply(merged)
    assert merged.reset and merged.run is snaps[0].run
    assert merged.progress is snaps[-1].progress and merged.health is snaps[-1].health
    assert merged.confusion is snaps[1].confusion      # the newest extras any of them carried
    for q in one_by_one.rows:
        np.testing.assert_array_equal(coalesced.rows[q], one_by_one.rows[q], err_msg=q)
    assert coalesced.epochs == one_by_one.epochs
    assert_holds_the_record(coalesced, trainer)
    # a reset supersedes everything before it
    fresh = SnapshotSource(tiny_trainer(epochs=3)).take()
    assert merged.then(fresh) is fresh


def test_rows_rewritten_by_a_roll_back_reach_the_reader_even_between_two_snapshots() -> None:
    trainer = tiny_trainer(epochs=3)
    source = SnapshotSource(trainer)
    reader = Reader()
    trainer.fit(epochs=1)
    reader.apply(source.take())
    arrays, state = trainer.state_dict(history=False)    # what a NaN roll-back returns to
    for _ in range(5):
        trainer.train_batch()
    reader.apply(source.take())
    trainer.load_state_dict(arrays, state)              # rewinds the tables to the epoch's start ...
    for _ in range(7):                                  # ... and trains past where the reader was
        trainer.train_batch()
    snap = source.take()
    assert snap.rows.start == trainer.steps_per_epoch   # from the rewind, not from the reader's end
    reader.apply(snap)
    assert_holds_the_record(reader, trainer)


def test_a_real_nan_roll_back_is_followed_by_the_reader() -> None:
    trainer = Trainer(parse_experiment(tiny_spec(
        epochs=6, optimizer={"name": "sgd", "learning_rate": 1e6},
        training={"epochs": 6, "batch_size": 32, "on_nan": "rollback", "max_rollbacks": 3})))
    source = SnapshotSource(trainer)
    reader = Reader()

    def observe(kind: str, info: dict[str, Any]) -> None:
        if kind in ("step", "epoch"):
            reader.apply(source.take())       # every step: a rewind is always between two snapshots

    trainer.fit(observer=observe)
    reader.apply(source.take())
    assert any(e["kind"] == "rollback" for e in trainer.events)
    assert_holds_the_record(reader, trainer)
    assert [e["kind"] for e in reader.snap.events] == [e["kind"] for e in trainer.events]


# ----------------------------------------------------------------------------- pacing


def test_an_observer_gets_snapshots_paced_whatever_the_step_rate() -> None:
    trainer = tiny_trainer(epochs=2)
    clock = Clock()
    calls: list[str] = []
    source = SnapshotSource(trainer, max_per_second=20, extras_interval=0.5, clock=clock,
                            between=lambda: calls.append("between"))
    first = source.take(extras=True)
    assert first.reset and first.boundary is not None and calls == ["between"] * 3
    calls.clear()
    trainer.train_batch()
    assert source.observe("step") is None                    # 0 s after the last one
    clock.now += 0.049
    assert source.observe("step") is None
    clock.now += 0.002
    snap = source.observe("step")
    assert snap is not None and snap.boundary is None and calls == []   # no epoch ended: no extras
    assert source.observe("epoch") is None                   # an epoch end only makes the extras due
    clock.now += 0.06
    snap = source.observe("step")
    assert snap is not None and snap.boundary is None        # due, but 0.5 s have not passed since the last
    clock.now += 0.5
    snap = source.observe("step")
    assert snap is not None and snap.boundary is not None and snap.confusion is not None
    clock.now += 0.06
    assert source.observe("step").boundary is None           # the extras are taken once per epoch end
    paused = source.observe("paused")                        # at once, with the extras
    assert paused is not None and paused.boundary is not None
    event = source.observe("event")                          # at once, without
    assert event is not None and event.boundary is None
    assert source.observe("end") is None
    assert source.taken == 7


def test_the_health_is_assessed_every_half_second_and_at_once_for_an_event_or_the_extras(monkeypatch) -> None:
    trainer = tiny_trainer(epochs=2)
    clock = Clock()
    assessed: list[float] = []
    findings = iter(range(1000))

    def health() -> list[str]:                 # a new finding at every assessment, to tell them apart
        assessed.append(clock.now)
        return [f"finding {next(findings)}"]

    monkeypatch.setattr(trainer, "health", health)
    source = SnapshotSource(trainer, max_per_second=20, clock=clock)
    first = source.take(extras=True)            # the first extras are due at once: taken here
    assert first.health == ("finding 0",) and len(assessed) == 1
    for _ in range(7):                          # 7 snapshots 0.06 s apart: 0.42 s, under HEALTH_INTERVAL
        trainer.train_batch()
        clock.now += 0.06
        snap = source.observe("step")
        assert snap is not None and snap.health == ("finding 0",)
    assert len(assessed) == 1
    clock.now += HEALTH_INTERVAL - 0.42 + 0.01
    assert source.observe("step").health == ("finding 1",)
    clock.now += 0.06
    trainer.events.append({"kind": "note", "step": trainer.step, "epoch": trainer.epoch, "message": "m"})
    assert source.observe("event").health == ("finding 2",)      # a new event: at once
    clock.now += 0.06
    assert source.take(extras=True).health == ("finding 3",)     # the extras (a pause, the end): at once
    clock.now += 0.06
    assert source.take().health == ("finding 3",)
    assert assessed == sorted(assessed) and len(assessed) == 4


def test_the_rate_and_time_left_are_measured_over_half_a_second() -> None:
    trainer = tiny_trainer(epochs=4)
    clock = Clock()
    source = SnapshotSource(trainer, clock=clock)
    assert source.take().progress.rate == 0 and math.isnan(source.take().progress.eta)
    for _ in range(10):
        trainer.train_batch()
    clock.now += 0.5
    p = source.take().progress
    assert p.rate == pytest.approx(20.0)                     # 10 steps in 0.5 s
    assert p.eta == pytest.approx((p.total - p.done) / 20.0)
    for _ in range(5):
        trainer.train_batch()
    clock.now += 0.25
    assert source.take().progress.rate == pytest.approx(20.0)   # under half a second: not measured again
    clock.now += 0.25
    assert source.take().progress.rate == pytest.approx(0.5 * 20 + 0.5 * 10)   # 5 steps in 0.5 s, smoothed


# ----------------------------------------------------------------------------- helpers for the window


def test_what_a_running_trainer_can_take_between_batches() -> None:
    base = parse_experiment(tiny_spec()).to_dict()

    def changed(**edits: Any) -> Any:
        d = parse_experiment(tiny_spec()).to_dict()
        for path, value in edits.items():
            section, key = path.split("__")
            d[section][key] = value
        return parse_experiment(d)

    old = parse_experiment(base)
    assert hyperparameter_only_change(old, changed(optimizer__learning_rate=0.5))
    assert hyperparameter_only_change(old, changed(schedule__name="exponential"))
    assert not hyperparameter_only_change(old, changed(optimizer__name="sgd"))
    assert not hyperparameter_only_change(old, changed(training__batch_size=8))
    with_transfer = dict(base, model={**base["model"], "transfer": {"from": "base.gwb", "unfreeze_at_epoch": 5}})
    later = dict(base, model={**base["model"], "transfer": {"from": "base.gwb", "unfreeze_at_epoch": 8}})
    a, b = parse_experiment(with_transfer), parse_experiment(later)
    assert hyperparameter_only_change(a, b, epoch=3)
    assert not hyperparameter_only_change(b, a, epoch=6)         # epoch 5 is already behind


def test_the_fields_said_to_apply_live_are_the_ones_a_running_trainer_takes() -> None:
    """What the editor marks as live (``applies_live``) agrees with what the controller applies
    to a running run (``hyperparameter_only_change``), field by field."""
    base = tiny_spec()
    base["schedule"] = {"name": "exponential", "steps": 7}
    base["model"]["transfer"] = {"from": "base.gwb", "unfreeze_at_epoch": 5}
    old = parse_experiment(base)
    edits = {"optimizer.learning_rate": 0.5, "schedule.name": "power", "schedule.steps": 9, "name": "other",
             "model.transfer.unfreeze_at_epoch": 8, "optimizer.name": "sgd", "training.batch_size": 8,
             "training.epochs": 9, "model.layers[0].units": 5, "model.layers[1].use_bias": False,
             "data.validation_split": 0.3, "seed": 3}
    for path, value in edits.items():
        data = old.to_dict()
        set_path(data, parse_path(path), value)
        new = parse_experiment(data)
        assert applies_live(path) == hyperparameter_only_change(old, new, epoch=1), path
    assert applies_live("schedule") and not applies_live("schedules") and not applies_live("optimizer.name")


def test_the_planned_learning_rate_follows_the_schedules_formula() -> None:
    trainer = tiny_trainer(epochs=5, schedule={"name": "exponential", "steps": 7})
    x, lr = planned_learning_rate(trainer)
    spe = trainer.steps_per_epoch
    steps = np.arange(5 * spe)                                    # fewer than the point limit: every step
    np.testing.assert_allclose(x, steps / spe)
    np.testing.assert_allclose(lr, 0.01 * 0.1 ** (steps / 7), rtol=1e-12)   # η0 · 0.1^(t/s)
    trainer.fit(epochs=2)
    x2, lr2 = planned_learning_rate(trainer)                      # the plan, not where the run is
    np.testing.assert_array_equal(lr2, lr)


def test_the_planned_learning_rate_is_thinned_to_at_most_the_point_limit() -> None:
    trainer = tiny_trainer(epochs=500)
    x, lr = planned_learning_rate(trainer)
    assert len(x) <= 2000 and x[0] == 0 and x[-1] == pytest.approx((500 * trainer.steps_per_epoch - 1)
                                                                    / trainer.steps_per_epoch)
    np.testing.assert_allclose(lr, 0.01)                          # the constant schedule


def test_boundary_probabilities_are_the_networks_predictions_on_the_grid() -> None:
    trainer = tiny_trainer(epochs=1)
    trainer.fit()
    points = two_d_points(trainer)
    assert points is not None
    (x0, x1), (y0, y1) = points.bounds
    n = 7
    probs = boundary_probabilities(trainer, points.bounds, n=n)
    assert probs.shape == (n, n, 2) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=2), 1.0, rtol=1e-5)
    # rows run along y, columns along x: compare a few cells with a prediction of that one point
    for i, j in ((0, 0), (0, n - 1), (n - 1, 0), (3, 5)):
        point = np.array([[x0 + (x1 - x0) * j / (n - 1), y0 + (y1 - y0) * i / (n - 1)]])
        expected = trainer.network.predict(trainer.standardize(point.astype(trainer.dtype)))[0]
        np.testing.assert_allclose(probs[i, j], expected, rtol=1e-4, atol=1e-6)


def test_a_sigmoid_output_is_drawn_as_two_class_probabilities() -> None:
    trainer = Trainer(parse_experiment(tiny_spec(
        epochs=1, model={"output": {"loss": "sigmoid_binary_cross_entropy"}})))
    trainer.fit()
    points = two_d_points(trainer)
    probs = boundary_probabilities(trainer, points.bounds, n=5)
    assert probs.shape == (5, 5, 2)
    (x0, _), (y0, _) = points.bounds
    p1 = float(trainer.network.predict(trainer.standardize(np.array([[x0, y0]], dtype=trainer.dtype))).ravel()[0])
    np.testing.assert_allclose(probs[0, 0], [1 - p1, p1], rtol=1e-5)


def test_two_d_points_are_the_split_rows_inside_a_padded_box() -> None:
    trainer = tiny_trainer()
    points = two_d_points(trainer)
    assert points is not None and trainer.experiment.data.source in TWO_D_DATASETS
    X = trainer.dataset.X
    np.testing.assert_array_equal(points.X, X[trainer.split.train])
    np.testing.assert_array_equal(points.y_val, trainer.dataset.y[trainer.split.val])
    (x0, x1), (y0, y1) = points.bounds
    assert x0 < X[:, 0].min() and x1 > X[:, 0].max() and y0 < X[:, 1].min() and y1 > X[:, 1].max()
    assert points.n_classes == 2
    digits = Trainer(parse_experiment(tiny_spec(data={"source": "digits", "params": {}})))
    assert two_d_points(digits) is None


def test_a_snapshot_is_plain_data_that_crosses_a_process_boundary_whole() -> None:
    """What a training process will send: it pickles (arrays, scalars, tuples and dicts only) and
    the copy applies exactly as the original."""
    import pickle

    trainer = tiny_trainer(epochs=2)
    source = SnapshotSource(trainer)
    trainer.fit(epochs=1)
    snap = source.take(extras=True)
    again = pickle.loads(pickle.dumps(snap))
    a, b = Reader(), Reader()
    a.apply(snap)
    b.apply(again)
    for q in a.rows:
        np.testing.assert_array_equal(b.rows[q], a.rows[q], err_msg=q)
    assert b.epochs == a.epochs and again.health == snap.health
    assert repr(again.progress) == repr(snap.progress)           # (NaN time left: NaN != NaN)
    assert again.run.layer_names == snap.run.layer_names and again.run.points.bounds == snap.run.points.bounds
    np.testing.assert_array_equal(again.boundary, snap.boundary)


# ----------------------------------------------------------------------------- the instruments


INSTRUMENTS_ON = {"instruments": {"probe_examples": 32, "sharpness": {"enabled": True, "every": 3, "iterations": 8},
                                  "noise": {"enabled": True, "every": 2},
                                  "effective_learning_rate": {"enabled": True, "every": 1}}}


def test_the_instruments_rows_travel_with_the_diagnostics_and_coalesce() -> None:
    trainer = tiny_trainer(epochs=3, training=INSTRUMENTS_ON)
    source = SnapshotSource(trainer)
    snaps = [source.take()]
    for _ in range(7):
        trainer.train_batch()
        snaps.append(source.take())
    trainer.fit(epochs=1)
    snaps.append(source.take())
    one_by_one = Reader()
    for snap in snaps:
        one_by_one.apply(snap)
    merged = snaps[0]
    for snap in snaps[1:]:
        merged = merged.then(snap)
    coalesced = Reader()
    coalesced.apply(merged)
    history = trainer.history_arrays()
    for reader in (one_by_one, coalesced):
        for key in INSTRUMENT_KEYS:
            np.testing.assert_array_equal(reader.rows[key], history[key], err_msg=key)   # what the session stores
    sharp = coalesced.rows["step_sharpness"]
    assert np.isfinite(sharp[::3]).all() and np.isnan(sharp[1::3]).all()       # every 3rd step only
    assert np.isfinite(coalesced.rows["effective_learning_rate"]).all()
    # a snapshot holds only the rows since the one before, instruments included
    assert len(snaps[3].rows["step_sharpness"]) == 1 and snaps[3].rows.start == 2
    run = snaps[0].run
    assert run is not None and run.batch_size == 32 and run.optimizer == "adam" and run.adaptive
    assert run.instruments["sharpness"] == {"enabled": True, "every": 3, "iterations": 8}


def test_the_planned_stability_threshold_is_the_optimizers_formula_on_the_planned_rate() -> None:
    sgd = tiny_trainer(epochs=2, optimizer={"name": "sgd", "learning_rate": 0.05},
                       schedule={"name": "exponential", "steps": 9})
    x, lr = planned_learning_rate(sgd)
    tx, threshold = planned_stability_threshold(sgd)
    np.testing.assert_array_equal(tx, x)
    np.testing.assert_allclose(threshold, 2.0 / lr, rtol=1e-12)                      # 2/η
    nesterov = tiny_trainer(epochs=2, optimizer={"name": "nesterov", "learning_rate": 0.05, "momentum": 0.8})
    _, lr = planned_learning_rate(nesterov)
    np.testing.assert_allclose(planned_stability_threshold(nesterov)[1], (2 + 2 * 0.8) / lr, rtol=1e-12)
    adam = tiny_trainer(epochs=2)
    _, lr = planned_learning_rate(adam)
    np.testing.assert_allclose(planned_stability_threshold(adam)[1] * lr, 38.0, rtol=1e-12)   # 38/η for β1 = 0.9
    # 1cycle cycles β against η: the threshold uses the schedule's β at each step
    cycle = tiny_trainer(epochs=2, optimizer={"name": "momentum", "learning_rate": 0.05, "momentum": 0.9},
                         schedule={"name": "one_cycle"})
    x, lr = planned_learning_rate(cycle)
    betas = np.array([cycle.schedule.momentum(int(round(e * cycle.steps_per_epoch))) for e in x], dtype=float)
    assert betas.min() < betas.max()
    np.testing.assert_allclose(planned_stability_threshold(cycle)[1], (2 + 2 * betas) / lr, rtol=1e-12)


def test_the_instruments_can_be_switched_while_a_run_goes_on() -> None:
    old = parse_experiment(tiny_spec())
    on = parse_experiment(tiny_spec(training=INSTRUMENTS_ON))
    assert hyperparameter_only_change(old, on) and hyperparameter_only_change(on, old)
    trainer = Trainer(old)
    trainer.fit(epochs=1)
    trainer.set_hyperparameters(on)
    trainer.fit(epochs=1)
    assert np.isfinite(trainer.instruments.table("step_sharpness")).any()
