"""BLAS threads per run (``core.engine.threads``)."""

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from core.engine.threads import (
    PARALLEL_WORK,
    busy_elsewhere,
    choose_blas_threads,
    largest_product,
    limit_blas_threads,
)
from core.spec import parse_experiment
from core.training import Trainer


def blas_threads() -> int:
    return max(info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas")


def test_largest_product_counts_batch_times_fan_in_times_fan_out():
    assert largest_product([784, 300, 100, 10], 32) == 32 * 784 * 300
    assert largest_product([2, 2048, 2048, 10], 128) == 128 * 2048 * 2048
    assert largest_product([5], 32) == 0


@pytest.mark.parametrize("widths, batch, cores, busy, reserved, want", [
    ([64, 100, 100, 10], 32, 2, 0, 0, 1),          # small products: one thread whatever the cores
    ([784, 300, 100, 10], 32, 2, 0, 0, 2),         # 7.5 M multiply-adds: both cores when idle
    ([784, 300, 100, 10], 32, 2, 1, 0, 1),         # ... one when another task runs
    ([784, 300, 100, 10], 32, 2, 0, 1, 1),         # ... one when the window keeps a core
    ([784, 300, 100, 10], 32, 8, 2, 1, 5),
    ([784, 300, 100, 10], 32, 2, 5, 0, 1),         # never fewer than one
])
def test_the_choice_follows_size_and_free_cores(widths, batch, cores, busy, reserved, want):
    assert choose_blas_threads(widths, batch, cores=cores, busy=busy, reserved=reserved) == want


def test_the_threshold_sits_between_the_reference_networks():
    assert largest_product([64, 100, 100, 100, 10], 32) < PARALLEL_WORK <= largest_product([784, 300, 100, 10], 32)


def test_busy_elsewhere_measures_the_busy_cores_over_a_sample(tmp_path):
    path = tmp_path / "stat"
    # cpu user nice system idle iowait irq softirq steal; two cores
    before = "cpu  1000 0 200 5000 100 0 0 0 0 0\ncpu0 500 0 100 2500 50 0 0 0 0 0\ncpu1 500 0 100 2500 50 0 0 0 0 0\n"
    # 200 jiffies passed on 2 cores: 130 busy (user 100, system 20, steal 10), 70 idle or waiting
    after = "cpu  1100 0 220 5060 110 0 0 10 0 0\ncpu0 550 0 110 2530 55 0 0 5 0 0\ncpu1 550 0 110 2530 55 0 0 5 0 0\n"
    path.write_text(before)
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        path.write_text(after)

    assert busy_elsewhere(str(path), sample=0.05, sleep=sleep) == round(130 / 200 * 2) == 1
    assert slept == [0.05]
    path.write_text(before)
    idle_after = "cpu  1002 0 200 5196 100 0 0 0 0 0\ncpu0 x\ncpu1 x\n"
    assert busy_elsewhere(str(path), sleep=lambda _: path.write_text(idle_after)) == 0
    assert busy_elsewhere(str(tmp_path / "missing")) == 0
    path.write_text("garbage")
    assert busy_elsewhere(str(path), sleep=lambda _: None) == 0


def test_limit_applies_inside_the_block_and_restores_after():
    before = blas_threads()
    with limit_blas_threads(1):
        assert blas_threads() == 1
    assert blas_threads() == before
    with limit_blas_threads(None):
        assert blas_threads() == before


def test_fit_runs_with_the_trainers_choice():
    trainer = Trainer(parse_experiment({"data": {"source": "xor", "params": {"n_samples": 64}},
                                        "model": {"layers": [{"units": 4}]}, "training": {"epochs": 1}}))
    assert trainer.blas_threads == 1
    seen = []
    trainer.fit(observer=lambda kind, info: seen.append(blas_threads()) if kind == "epoch" else None)
    assert seen == [1]
    a = np.ones((4, 4), np.float32)
    assert np.array_equal(a @ a, np.full((4, 4), 4, np.float32))


# ------------------------------------------------------------- the count is part of the run

def tiny(**training) -> dict:
    return {"data": {"source": "xor", "params": {"n_samples": 64}}, "model": {"layers": [{"units": 4}]},
            "training": {"epochs": 1, **training}}


def test_the_experiment_fixes_the_count_and_the_window_cannot_change_it(monkeypatch):
    trainer = Trainer(parse_experiment(tiny(blas_threads=3)))
    assert trainer.blas_threads == 3 and trainer.blas_threads_settled
    trainer.leave_cores(1)
    assert trainer.blas_threads == 3
    auto = Trainer(parse_experiment(tiny()))
    monkeypatch.setattr("core.training.choose_blas_threads", lambda widths, batch, reserved=0: 7 - reserved)
    auto.leave_cores(2)
    assert auto.blas_threads == 5 and not auto.blas_threads_settled


def test_a_restored_run_keeps_the_count_it_recorded(monkeypatch):
    monkeypatch.setattr("core.training.choose_blas_threads", lambda widths, batch, reserved=0: 2)
    original = Trainer(parse_experiment(tiny()))
    original.fit()
    arrays, state = original.state_dict()
    assert state["blas_threads"] == 2
    monkeypatch.setattr("core.training.choose_blas_threads", lambda widths, batch, reserved=0: 1)
    restored = Trainer(parse_experiment(tiny()))
    assert restored.blas_threads == 1
    restored.load_state_dict(arrays, state)
    assert restored.blas_threads == 2 and restored.blas_threads_settled
    restored.leave_cores(1)                      # the window's choice does not replace it
    assert restored.blas_threads == 2
    fixed = Trainer(parse_experiment(tiny(blas_threads=4)))
    fixed.load_state_dict(arrays, state)         # the experiment's own count wins over the record
    assert fixed.blas_threads == 4
    older = dict(state)
    del older["blas_threads"]                    # a session saved before the count was recorded
    fresh = Trainer(parse_experiment(tiny()))
    fresh.load_state_dict(arrays, older)
    assert fresh.blas_threads == 1 and not fresh.blas_threads_settled


@pytest.mark.parametrize("bad", [0, -2, "2", 1.5, True])
def test_a_recorded_count_of_the_wrong_type_is_refused_before_anything_changes(bad):
    original = Trainer(parse_experiment(tiny()))
    original.fit()
    arrays, state = original.state_dict()
    other = Trainer(parse_experiment(tiny()))
    with pytest.raises(ValueError, match=r"state blas_threads: must be a positive integer"):
        other.load_state_dict(arrays, {**state, "blas_threads": bad})
    assert other.step == 0
