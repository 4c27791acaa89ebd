"""Downsampling of the long per-step curves: about two points a pixel, so that a frame costs the
same at step 1,000 and at step 1,000,000 and a spike still shows. ``BlockReducer`` keeps the
min / max / mean of each block of steps incrementally (a frame reduces only the new rows);
``visible_slice`` is what a zoomed plot shows, drawn in detail instead."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg


class BlockReducer:
    """Per-block min, max and mean of a growing (rows, n) history, kept incrementally.

    Block sizes are powers of two, so the blocks already reduced stay valid while the history
    grows (until it doubles) and a frame reduces only the new rows. NaN-aware without warnings:
    a block holding a NaN has NaN min / max (a gap with ``connect="finite"``) and the mean of
    its finite values."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.block = 0
        self.count = 0                                   # complete blocks reduced
        self.lo = self.hi = self.mean = np.zeros((0, 0))
        self.x0 = self.x1 = np.zeros(0)

    def update(self, x: np.ndarray, rows: np.ndarray, blocks: int, power_of_two: bool = True) -> int:
        """Reduce what is new for about ``blocks`` blocks over all of ``x``; returns the block size."""
        n = x.shape[0]
        want = max(n / max(int(blocks), 1), 1.0)
        b = 1 << max(math.ceil(math.log2(want)), 0) if power_of_two else math.ceil(want)
        m = n // b
        if b != self.block or m < self.count or self.lo.shape[0] != rows.shape[0]:
            self.clear()
            self.block = b
            self.lo = self.hi = self.mean = np.zeros((rows.shape[0], 0))
        if m > self.count:
            head = rows[:, self.count * b: m * b].reshape(rows.shape[0], m - self.count, b)
            finite = np.isfinite(head)
            counts = finite.sum(axis=2)
            sums = np.where(finite, head, 0.0).sum(axis=2)
            mean = np.full(sums.shape, np.nan)
            np.divide(sums, counts, out=mean, where=counts > 0)
            gaps = counts < b
            lo, hi = np.fmin.reduce(head, axis=2), np.fmax.reduce(head, axis=2)
            lo[gaps] = np.nan
            hi[gaps] = np.nan
            xb = x[self.count * b: m * b].reshape(m - self.count, b)
            self.lo = np.concatenate([self.lo, lo], axis=1)
            self.hi = np.concatenate([self.hi, hi], axis=1)
            self.mean = np.concatenate([self.mean, mean], axis=1)
            self.x0 = np.concatenate([self.x0, xb[:, 0]])
            self.x1 = np.concatenate([self.x1, xb[:, -1]])
            self.count = m
        return b

    def envelope(self, x: np.ndarray, rows: np.ndarray, blocks: int,
                 power_of_two: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Min and max of each block, interleaved, then the rows past the last whole block: what
        the curves look like at ``blocks`` pixels, from about 2 × blocks points."""
        n = x.shape[0]
        if n <= 2 * max(int(blocks), 16):
            self.clear()
            return x, rows
        b = self.update(x, rows, blocks, power_of_two)
        m = self.count
        xs = np.empty(2 * m + (n - m * b), dtype=np.float64)
        ys = np.empty((rows.shape[0], xs.shape[0]), dtype=np.float64)
        xs[0: 2 * m: 2], xs[1: 2 * m: 2] = self.x0, self.x1
        ys[:, 0: 2 * m: 2], ys[:, 1: 2 * m: 2] = self.lo, self.hi
        xs[2 * m:] = x[m * b:]
        ys[:, 2 * m:] = rows[:, m * b:]
        return xs, ys


def envelope(x: np.ndarray, rows: np.ndarray, blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """``BlockReducer.envelope`` of a slice, once (a zoomed view)."""
    return BlockReducer().envelope(x, rows, blocks, power_of_two=False)


def visible_slice(plot: pg.PlotItem, x: np.ndarray) -> slice:
    """Indices of the (sorted) x values inside the plot's current x range, one point of margin."""
    if x.shape[0] == 0 or plot.vb.autoRangeEnabled()[0]:
        return slice(0, x.shape[0])
    x0, x1 = plot.vb.viewRange()[0]
    i0 = max(int(np.searchsorted(x, x0)) - 1, 0)
    i1 = min(int(np.searchsorted(x, x1)) + 1, x.shape[0])
    return slice(i0, i1)

