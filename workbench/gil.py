"""Worker threads hand the GIL to a waiting GUI thread.

A worker that trains a small network spends its time in short NumPy calls, each of which lets
go of the GIL and takes it straight back. CPython forces a hand-over only when no switch has
happened for a whole switch interval, and these quick release-and-retake cycles keep resetting
that clock, so a GUI thread woken by its event loop (a timer, a paint) can lose the race for
60-180 ms. A real sleep, however short, lets the waiting thread take the GIL. ``GilYield()``
is called between a worker's steps and sleeps ``YIELD_SLEEP`` at most once every
``YIELD_EVERY`` seconds: about 2 % of a tiny network's training time, nothing for a large one.
"""

from __future__ import annotations

import time

YIELD_EVERY = 0.005
YIELD_SLEEP = 0.0001


class GilYield:
    """Call between steps on a worker thread; see the module docstring."""

    def __init__(self, every: float = YIELD_EVERY, sleep: float = YIELD_SLEEP) -> None:
        self.every = every
        self.sleep = sleep
        self._last = 0.0

    def __call__(self) -> None:
        now = time.perf_counter()
        if now - self._last >= self.every:
            time.sleep(self.sleep)
            self._last = time.perf_counter()
