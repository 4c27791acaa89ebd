"""Fixtures for driving the real main window offscreen on tiny experiments."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from core.spec import Experiment, parse_experiment


def tiny_spec(epochs: int = 4, layers: int = 3, units: int = 16, samples: int = 200, **layer: Any) -> dict[str, Any]:
    """Moons with a few small layers: steps take well under a millisecond."""
    row = {"units": units, "init": "he_normal", "activation": "elu", **layer}
    return {
        "name": "tiny moons", "seed": 7,
        "data": {"source": "moons", "params": {"n_samples": samples}, "validation_split": 0.2, "test_split": 0.0},
        "model": {"layers": [dict(row) for _ in range(layers)]},
        "optimizer": {"name": "adam", "learning_rate": 0.01},
        "training": {"epochs": epochs, "batch_size": 32},
    }


def tiny_experiment(**kwargs: Any) -> Experiment:
    return parse_experiment(tiny_spec(**kwargs))


@pytest.fixture(name="make_window")
def make_window_fixture(qapp: Any, tmp_path: Any) -> Iterator[Callable[..., Any]]:
    """``make_window(experiment)`` → a shown MainWindow with settings in a temporary file (its own,
    or the one named ``settings``: windows sharing it are like two starts of the app); on teardown
    the state is marked clean (no save prompt), the window closed and the worker thread checked
    to be finished."""
    from workbench.main_window import MainWindow
    from workbench.state import ExperimentState

    windows: list[Any] = []

    def make(experiment: Experiment | None = None, settings: str | None = None) -> Any:
        state = ExperimentState(experiment or tiny_experiment())
        name = f"{settings}.ini" if settings else f"settings{len(windows)}.ini"
        window = MainWindow(state, QSettings(str(tmp_path / name), QSettings.Format.IniFormat))
        window.show()          # closed below, after the state is marked clean (no save prompt)
        windows.append(window)
        return window

    yield make
    for window in windows:
        for box in window.findChildren(QMessageBox):
            box.close()
        window.state.undo_stack.setClean()
        window.controller.shutdown()    # no "stop and quit?" question for a run a test left going
        window.close()
        assert window.controller.thread.isFinished()
        window.deleteLater()


def monitor_of(window: Any) -> Any:
    from workbench.monitor import Monitor

    return window.findChild(Monitor)


def wait_idle(qtbot: Any, window: Any, timeout: int = 10_000) -> None:
    qtbot.waitUntil(lambda: window.controller.mode == "idle", timeout=timeout)


def train_and_wait(qtbot: Any, window: Any, timeout: int = 20_000) -> None:
    """Training › Train, then wait until the run has started and ended."""
    window.controller.actions["train"].trigger()
    qtbot.waitUntil(lambda: window.controller.mode != "idle", timeout=5_000)
    wait_idle(qtbot, window, timeout=timeout)


def tab_row_with(window: Any, title: str) -> tuple[int, list[str]]:
    """The visible row of dock tabs that holds ``title``: its number of tabs, and the labels of
    those squeezed below the width they ask for (elided)."""
    from PySide6.QtWidgets import QTabBar

    bars = [bar for bar in window.findChildren(QTabBar)
            if bar.isVisible() and title in [bar.tabText(i) for i in range(bar.count())]]
    assert len(bars) == 1, [[b.tabText(i) for i in range(b.count())] for b in bars]
    bar = bars[0]
    squeezed = [bar.tabText(i) for i in range(bar.count()) if bar.tabRect(i).width() < bar.tabSizeHint(i).width()]
    return bar.count(), squeezed


def open_and_wait(qtbot: Any, window: Any, path: Any, timeout: int = 10_000) -> bool:
    """``window.open_file(path)``, then wait until it is read (an experiment file is read on a
    worker, a session restored by the controller): what the test checks next is the opened file."""
    started = window.open_file(path)
    qtbot.waitUntil(lambda: not window.opening_file and window.controller.mode == "idle", timeout=timeout)
    return started
