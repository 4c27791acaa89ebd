"""The plots spend at most a share of the GUI's core: a token bucket (``PaintBudget``) that the
monitor's refresh and every panel's paint charge, and that holds unforced redraws back."""

from __future__ import annotations

import time
from typing import Any

import pytest

from workbench.monitor import view
from workbench.monitor.plots.base import PaintBudget

from ..monitor_support import (  # noqa: F401 (fixture)
    make_window_fixture,
    monitor_of,
    tiny_experiment,
    train_and_wait,
    wait_idle,
)


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


def test_every_panel_on_screen_is_redrawn_while_the_central_plot_is_due_at_every_tick(
        make_window: Any, qtbot: Any) -> None:
    """On a slower machine ticks came 60 ms or more apart, so the central plot was due at every
    one, took it, and the docks on screen were not redrawn until the run ended (the Loss and
    accuracy dock stayed empty through a 4-second run). A panel that has waited STARVED_AFTER
    goes first."""
    window = make_window(tiny_experiment(epochs=3))
    train_and_wait(qtbot, window)
    mon = monitor_of(window)
    mon.timer.stop()                          # this test's ticks only, each a late one
    mon.budget = PaintBudget(share=1.0, burst=10.0)   # the rule under test, not the budget, decides
    for panel in mon.panels.values():
        panel.set_budget(mon.budget)
    on_screen = [key for key, panel in mon.panels.items() if panel.on_screen]
    assert "grad_norm" in on_screen and len(on_screen) >= 3       # the central plot and two docks
    before = {key: mon.panels[key].redraws for key in on_screen}
    ticks = int(2 * view.STARVED_AFTER / 0.07) + 2
    wanted: set[str] = set()                  # (the decision boundary redraws only for new extras)
    for _ in range(ticks):
        for panel in mon.panels.values():
            panel.drawn_version = -1          # new rows at every tick, as while a run trains
        qtbot.wait(70)                        # past the central plot's 60 ms between redraws
        now = time.perf_counter()
        wanted |= {key for key in on_screen if mon.panels[key].wants_redraw(now)}
        assert mon.refresh() == 1             # one panel a tick, never more
    redrawn = {key: mon.panels[key].redraws - before[key] for key in on_screen}
    assert {"grad_norm", "metrics"} <= wanted and all(redrawn[key] >= 1 for key in wanted), (wanted, redrawn)
    assert redrawn["grad_norm"] >= ticks // 2, redrawn             # still most of the ticks
