"""The plots spend at most a share of the GUI's core: a token bucket (``PaintBudget``) that the
monitor's refresh and every panel's paint charge, and that holds unforced redraws back."""

from __future__ import annotations

import time
from typing import Any

import pytest

from workbench.monitor.plots.base import PaintBudget

from ..monitor_support import make_window_fixture, monitor_of, tiny_experiment, wait_idle  # noqa: F401 (fixture)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_budget_refills_at_its_share_and_caps_what_it_saves() -> None:
    clock = FakeClock()
    budget = PaintBudget(share=0.1, burst=0.05, clock=clock)
    assert budget.allows()
    budget.spend(0.065)                      # a 65 ms frame: 15 ms in debt
    assert not budget.allows()
    clock.now += 0.149                       # 14.9 ms earned back: still in debt
    assert not budget.allows()
    clock.now += 0.002
    assert budget.allows()
    clock.now += 1000                        # idle for long: at most ``burst`` saved
    budget.spend(0.05)
    assert not budget.allows() and budget.spent == pytest.approx(0.115)
    with pytest.raises(ValueError, match=r"share: must be in \(0, 1\]"):
        PaintBudget(share=0)


def test_an_exhausted_budget_holds_redraws_back_until_it_refills_and_paints_are_charged(
        make_window: Any, qtbot: Any) -> None:
    window = make_window(tiny_experiment(epochs=3))
    window.controller.train()
    wait_idle(qtbot, window)
    mon = monitor_of(window)
    mon.timer.stop()                         # only this test's refreshes spend the (fake-clocked) budget
    clock = FakeClock()
    mon.budget = budget = PaintBudget(share=0.1, burst=0.05, clock=clock)
    for panel in mon.panels.values():
        panel.set_budget(budget)
    panel = mon.panels["grad_norm"]
    panel.drawn_version = -1                 # something new to draw
    budget.spend(1.0)                        # a second of drawing in debt: 10 s to earn back
    assert mon.refresh() == 0 and budget.spent == pytest.approx(1.0)
    assert mon.refresh(force=True) >= 1      # Fit, an export, a test: always draws
    panel.drawn_version = -1
    qtbot.waitUntil(lambda: panel.wants_redraw(time.perf_counter()), timeout=2_000)  # its own minimum interval
    clock.now += 20.0                        # after the wait: the paints during it were charged too
    assert mon.refresh() == 1
    spent = budget.spent
    panel.graphics.viewport().repaint()      # a paint is charged to the same budget
    assert budget.spent > spent
