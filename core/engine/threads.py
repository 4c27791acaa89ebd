"""How many threads a run's matrix products deserve, and how they share a product.

NumPy's BLAS (OpenBLAS here) splits every matrix product over all the machine's cores. For the
small products of these networks that is a loss: a 32 × 64 by 64 × 100 product is a few
microseconds of arithmetic, and splitting it makes the threads spin-wait for each other; when
anything else wants a core (the window's GUI thread, a browser) each product stalls on that
wait (a ``Dense.forward`` of the default network took about 160 µs with two threads on a
2-core machine with one other busy process, a few µs with one). Only large products gain:
measured on an idle 2-core machine, two threads made the 784- and 2048-wide networks
1.14–1.54× faster and the 100-wide deep one 7 % slower.

So the choice is made per run from two things, once, before training starts:

* the work of the largest product of one step, ``batch × fan_in × fan_out`` multiply-adds
  (forward ``X @ W``; the backward products have the same count): below
  ``PARALLEL_WORK`` one thread;
* the cores that are really free: the cores this process may use, less the cores other work
  kept busy over a short sample (Linux's ``/proc/stat``, only for a run whose products are large
  enough for the answer to matter) and less the cores the caller keeps for itself
  (``reserved``: the window keeps one for painting).

How the threads are used: BLAS stays on one thread (``limit_blas_threads`` applies a limit
for a block of code through ``threadpoolctl`` and restores the previous setting after it), and
``SplitProducts`` gives each product of ``BLAS_THREADED_WORK`` multiply-adds or more to BLAS's own
threads in a form checked to give one thread's numbers (whole, its inner sum cut in two where a
one-thread BLAS blocks it itself, or a block of its rows or columns with the rest on one
thread), else splits a large one by rows over the run's threads (a one-thread BLAS computes a
block of rows exactly as it computes those rows of the whole product). Either way the count
changes how fast a run trains, never its numbers. Products that stall on BLAS's threads
(another program took a core: OpenBLAS's threads spin-wait for each other) send the process's
products back to one thread for a while.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

# Multiply-adds of one product above which a second thread paid on an idle 2-core machine
# (benchmarks/bench_threads.py measures the crossing: the 784-300-100-10 network at batch 128, 30 M
# in its first product, trained 1.07-1.13x faster on two threads; at batch 32, 7.5 M, 0.91-0.98x
# as fast; the default 64-100-...-10 network has 0.2 M).
PARALLEL_WORK = 16_000_000
SAMPLE_SECONDS = 0.05     # how long ``busy_elsewhere`` watches the machine
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100   # /proc/stat's unit
# Multiply-adds of the smallest part ``SplitProducts`` cuts a product into: twice the size up to
# which OpenBLAS takes its small-matrix kernel (whose order of additions differs).
PART_WORK = 2_000_000
# How long the calling thread waits for a part a worker took before computing it itself when
# it has no part of its own timed yet (else 1.25 × its own part's time + TAKEOVER_MARGIN).
TAKEOVER_GRACE = 0.002
TAKEOVER_MARGIN = 0.000_03
# Multiply-adds of a product from which ``SplitProducts`` hands it to BLAS's own threads, when
# they give one thread's numbers for its shapes. Timed alone, smaller products gained too (a
# 32 × 100 by 100 × 300 product, 1 M: 35 µs on one OpenBLAS thread, 21 µs on two), but within a
# training step they cost more than they saved: OpenBLAS's second thread wakes for the product
# and spins on the other core after it, while the step's element-wise work runs. On a 2-vCPU
# AMD Zen 3 host (benchmarks/bench_forms.py, one process, alternating blocks of 20 steps), the
# forms found for every product of 1 M or more made the 784-300-100-10 network's step at batch 32
# 1.05-1.16x slower (its two products of 7.5 M) and at batch 128 0.89x as long; the forms of its
# two products of 30 M alone 0.98-0.99x and 0.89-0.90x.
BLAS_THREADED_WORK = PARALLEL_WORK
# Products on BLAS's threads that take longer than one thread took for their kind (timed when
# the kind was checked) have stalled: another program took a core, and OpenBLAS's threads
# wait for each other (a run on two fell to a third of one thread's speed). When the products
# of SLOW_STRETCHES stretches of BLAS_WATCH in a row each took more than 1 + LOST_SHARE times
# what one thread took for them, ``SplitProducts`` keeps to one thread for BLAS_BACKOFF
# seconds, then tries BLAS's threads again. A stretch is judged by its total, gains against
# losses: on an idle virtual machine a product now and then takes ten times its median (the
# host took the vCPU of a spinning thread), and counting only the losses (a quarter of a
# stretch's time, where the medians were 0.52–0.73 of one thread) rested an idle run that was
# 10 % faster on two threads (1,670 against 1,840 µs a step at batch 128).
BLAS_WATCH = 64
LOST_SHARE = 0.25
SLOW_STRETCHES = 2
BLAS_BACKOFF = 2.0
# Where ``SplitProducts`` tries cutting a product's inner sum in two (every CUT_STEP-th term),
# looking for the cut at which BLAS on several threads gives one thread's numbers (see there).
CUT_STEP = 8
# The search of a cut tries each on a product of at least CUT_SEARCH_ROWS_WORK multiply-adds
# (the first rows), and is not made when all the tries would take more than CUT_SEARCH_WORK
# (about 50 ms on one core; the 784-term forward product at batch 128: 0.4 G).
CUT_SEARCH_ROWS_WORK = 4_000_000
CUT_SEARCH_WORK = 2_000_000_000
# Where no cut does, ``SplitProducts`` looks for a block of a product's first rows (or columns)
# that BLAS's threads compute with one thread's numbers, the rest staying on one thread: blocks
# of every BLOCK_STEP-th size, largest first, BLOCK_TRIES of them per side, none holding less
# than BLOCK_SHARE of the product's work. OpenBLAS's Haswell kernels on two threads give one
# thread's numbers for the first 768 of the 784 rows of the backward product Xᵀ·∂L/∂Z of the
# 784-300-100-10 network (and 288 of the 300 of the next layer's), never for all of them, and
# for no cut of the inner sum.
BLOCK_STEP = 12
BLOCK_TRIES = 8
BLOCK_SHARE = 0.75
# A kind of product whose last BLAS_WATCH products on BLAS's threads took more than BLAS_GAIN
# of one thread's time for it, by their median (but no more than a stall's, which the rest above
# handles), gains nothing there: it keeps to one thread for KIND_BACKOFF seconds, then is tried
# again. On the 2-core machine a 128 × 100 by 100 × 300 product took 58 µs on two OpenBLAS
# threads for minutes, then 94–98 µs for minutes (one thread: 91), in the same process, whatever
# the operands' alignment; a check at the first product could not tell which it would be. The
# median, not the mean: a few products the host paused (3 ms where the median was 0.53 ms) had
# lifted the mean of a stretch of the 784 × 128 by 128 × 300 product that gained 11 % above
# BLAS_GAIN, and the kind rested on one thread for 10 s. SLOW_STRETCHES of its stretches in a
# row, not one: one stretch of 64 products is 0.1 s of a run at batch 128, and a blip of the
# host that long (5 stalls in one epoch of a benchmark) rested a kind that gained 30 % for the
# next 10 s, the rest of the measurement.
BLAS_GAIN = 0.9
KIND_BACKOFF = 10.0


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the system has one)."""
    return len(usable_cores_set()) or os.cpu_count() or 1


def usable_cores_set() -> frozenset[int]:
    """Which cores this process may run on; empty where the system does not say (not Linux)."""
    try:
        return frozenset(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return frozenset()


def split_cores(usable: Iterable[int], reserved: int) -> tuple[frozenset[int], frozenset[int]] | None:
    """(the window's cores, the training processes' cores): the last ``reserved`` of ``usable``
    for the window, the others for training; ``None`` when that leaves training no core.

    Left to the scheduler, the window's painting lands on whichever core woke last, often the
    one the training loop runs on: measured over 8 s next to a shown window, the training
    thread of the 784-300-100-10 network waited 1.8–2.0 s in the run queue while the window's
    process used 0.25 of a core (``benchmarks/bench_window.py``)."""
    cores = sorted(set(usable))
    if reserved < 1 or len(cores) <= reserved:
        return None
    return frozenset(cores[-reserved:]), frozenset(cores[:-reserved])


def run_on(cores: Iterable[int] | None) -> bool:
    """Keep this process's threads (the calling one and those it starts later) on ``cores``,
    where the system lets a process choose (Linux); False where it does not or refuses."""
    if cores is None or not hasattr(os, "sched_setaffinity"):
        return False
    try:
        os.sched_setaffinity(0, set(cores))
    except (OSError, ValueError):
        return False
    return True


def _cpu_times(stat_path: str) -> tuple[int, int, int] | None:
    """(busy jiffies, all jiffies, cores) from ``/proc/stat``; None where the system does not say."""
    try:
        with open(stat_path) as fh:
            lines = fh.read().splitlines()
        fields = [int(x) for x in lines[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    if len(fields) < 4:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)        # idle + waiting for I/O
    total = sum(fields[:8])                                           # guest time is counted in user already
    cores = sum(1 for line in lines[1:] if line.startswith("cpu"))
    return total - idle, total, max(cores, 1)


def busy_elsewhere(stat_path: str = "/proc/stat", sample: float = SAMPLE_SECONDS,
                   sleep: Callable[[float], None] = time.sleep,
                   own_cpu: Callable[[], float] = time.process_time) -> int:
    """Cores kept busy by other work now, rounded: the machine's non-idle CPU time over a short
    sample while this thread sleeps, less what this process's other threads used meanwhile
    (0 where the system does not say).

    An average over ``sample`` seconds, not the instantaneous count of runnable tasks: that count
    is 1 or more on an idle machine half the time (a kernel worker, the shell), and choosing by it
    kept the wide networks on one thread on an idle 2-core machine, 0.67–0.85× the speed of two
    (``benchmarks/bench_threads.py``). Not this process's own threads: BLAS's threads spin for a
    while after a product, and counted as other work they made the next run of a 2-core machine
    choose one thread (0.80× the speed of two)."""
    first, own_before = _cpu_times(stat_path), own_cpu()
    if first is None:
        return 0
    sleep(sample)
    second, own_after = _cpu_times(stat_path), own_cpu()
    if second is None or second[1] <= first[1]:
        return 0
    own = max(0.0, own_after - own_before) * _TICKS_PER_SECOND
    busy_share = max(0.0, second[0] - first[0] - own) / (second[1] - first[1])
    return max(0, round(busy_share * second[2]))


def largest_product(widths: Sequence[int], batch_size: int) -> int:
    """Multiply-adds of the largest ``batch × fan_in × fan_out`` product of a step through
    layers of these widths (input width first, output width last)."""
    return max((batch_size * a * b for a, b in zip(widths[:-1], widths[1:], strict=False)), default=0)


def choose_blas_threads(widths: Sequence[int], batch_size: int, *, reserved: int = 0,
                        cores: int | None = None, busy: int | None = None) -> int:
    """The BLAS threads for a run: 1 unless its products are large enough to gain from more,
    and never more than the cores left free by other work and by ``reserved``."""
    if largest_product(widths, batch_size) < PARALLEL_WORK:
        return 1
    cores = usable_cores() if cores is None else cores
    busy = busy_elsewhere() if busy is None else busy
    return max(1, cores - reserved - busy)


_CONTROLLER: tuple[int, ThreadpoolController] | None = None


def blas_controller() -> ThreadpoolController:
    """threadpoolctl's controller of the BLAS libraries this process has loaded. Made once and
    made again only after more modules were imported (a native library comes with an import:
    SciPy's OpenBLAS with the optimizers' axpy): scanning the loaded libraries took 0.9 ms, and
    a run entered it with every ``fit`` and every Step, a benchmark with every epoch."""
    global _CONTROLLER
    modules = len(sys.modules)
    if _CONTROLLER is None or _CONTROLLER[0] != modules:
        _CONTROLLER = (modules, ThreadpoolController())
    return _CONTROLLER[1]


@contextlib.contextmanager
def limit_blas_threads(threads: int | None) -> Iterator[None]:
    """Run the block with at most ``threads`` BLAS threads (``None``: leave them as they are)."""
    if threads is None:
        yield
        return
    with blas_controller().limit(limits=int(threads), user_api="blas"):
        yield


def _cut_product(a: np.ndarray, b: np.ndarray, cut: int, out: np.ndarray | None = None) -> np.ndarray:
    """``a @ b`` with the inner sum cut at term ``cut`` (0: whole), its two halves added:
    ``A[:, :c]·B[:c, :] + A[:, c:]·B[c:, :]``."""
    if cut == 0:
        return np.matmul(a, b, out=out)
    result = np.matmul(a[:, :cut], b[:cut], out=out)
    result += np.matmul(a[:, cut:], b[cut:])
    return result


@dataclasses.dataclass(frozen=True)
class Block:
    """A form of a product on BLAS's threads: its first ``size`` rows of ``a`` (``by_rows``) or
    columns of ``b`` computed on BLAS's threads, the rest on one thread."""

    by_rows: bool
    size: int

    def parts(self, a: np.ndarray, b: np.ndarray,
              result: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]:
        """(a, b, out) of the block, then of the rest: ``a[:s] @ b`` and ``a[s:] @ b``, or
        ``a @ b[:, :s]`` and ``a @ b[:, s:]``."""
        s = self.size
        if self.by_rows:
            return (a[:s], b, result[:s]), (a[s:], b, result[s:])
        return (a, b[:, :s], result[:, :s]), (a, b[:, s:], result[:, s:])


def _part_product(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a @ b`` on the BLAS threads in force: how the parts of a split product are computed,
    and checked (``SplitProducts._splits_exactly``)."""
    return np.matmul(a, b, out=out)


def _layout(array: np.ndarray) -> str | None:
    """'C' or 'F' for a contiguous array or a transposed one; ``None`` for any other view."""
    return "C" if array.flags.c_contiguous else "F" if array.flags.f_contiguous else None


def _random_like(shape: tuple[int, ...], layout: str, dtype: np.dtype, rng: np.random.Generator) -> np.ndarray:
    values = rng.standard_normal(shape if layout == "C" else shape[::-1]).astype(dtype)
    return values if layout == "C" else values.T


def _kind_of(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> tuple[Any, ...]:
    """A product's kind: shapes, layouts, dtypes, and the layout of the result (``None``: a
    new C-ordered array): what decides the order of a BLAS's sums. (A product written column by
    column, into a column-major ``out``, is another product for the BLAS: it tiles and shares
    among its threads the result's rows where it tiled its columns.)"""
    return (a.shape, b.shape, _layout(a), _layout(b), a.dtype.str, b.dtype.str,
            "C" if out is None else _layout(out))


def _result_like(a: np.ndarray, b: np.ndarray, layout: str) -> np.ndarray:
    """An empty result of ``a @ b`` in ``layout`` ('C' or 'F'): for a check of its kind, or where
    no ``out`` was given."""
    return np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b), order=layout)


def _checked_once(store: dict[tuple[Any, ...], Any], key: tuple[Any, ...], a: np.ndarray, b: np.ndarray,
                  check: Callable[[np.ndarray, np.ndarray], Any], otherwise: Any) -> Any:
    """``store[key]``: the first time, ``check`` on random operands of the kind of ``a @ b``
    (``otherwise`` where none can be made, or for a result that is neither C- nor F-ordered);
    a kind is checked once, its later products only look. ``key`` ends with the kind's result
    layout (``_kind_of``)."""
    if key not in store:
        operands = _random_operands(a, b)
        store[key] = otherwise if operands is None or key[-1] is None else check(*operands)
    return store[key]


def _random_operands(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Random operands of the kind of ``a @ b``, to check a way of computing it on; ``None`` for
    operands that are neither contiguous nor transposed. (Made only when a kind is checked:
    drawing them costs more than the product.)"""
    layouts = (_layout(a), _layout(b))
    if None in layouts:
        return None
    rng = np.random.default_rng(0)
    return _random_like(a.shape, layouts[0], a.dtype, rng), _random_like(b.shape, layouts[1], b.dtype, rng)


class _SharedProduct:
    """The parts of one split product, which the calling thread and the workers take in turn.

    The caller writes the parts it takes straight into the result. A worker computes a part
    into an array of its own and copies it in (``publish``) under the lock, unless the part is
    already there. When the caller has no part left to take, it waits for the parts the workers hold
    about as long as one part takes it, then computes what is still missing itself: a worker
    that the system paused in the middle of a part (another program, the window painting)
    then costs the run one part's time, not the length of the pause. The caller computes such a
    part into an array of its own too, and whichever copy comes second is dropped, so nothing
    writes into the result after ``lead`` has returned (the caller goes on to change it in
    place: ``z += b``, clipping)."""

    __slots__ = ("count", "direct", "apart", "publish", "errors", "next_part", "done", "remaining",
                 "taken_at", "failed", "lock", "finished")

    def __init__(self, count: int, direct: Callable[[int], object], apart: Callable[[int], np.ndarray],
                 publish: Callable[[int, np.ndarray], object]) -> None:
        self.count = count
        self.direct, self.apart, self.publish = direct, apart, publish
        self.errors = np.geterr()       # NumPy's error handling is per thread: the caller's applies
        self.next_part = 0
        self.done = [False] * count
        self.remaining = count
        self.taken_at = [0.0] * count   # when a worker took the part (perf_counter)
        self.failed = [False] * count   # a worker's computation raised: the caller meets it itself
        self.lock = threading.Lock()
        self.finished = threading.Event()

    def _take(self, by_worker: bool) -> int:
        with self.lock:
            k = self.next_part
            if k >= self.count:
                return -1
            self.next_part = k + 1
            if by_worker:
                self.taken_at[k] = time.perf_counter()
            return k

    def _finish(self, k: int) -> bool:
        """Mark part ``k`` done (under the lock); False when it already was."""
        if self.done[k]:
            return False
        self.done[k] = True
        self.remaining -= 1
        if self.remaining == 0:
            self.finished.set()
        return True

    def work(self) -> int:
        """A worker's share: take parts until none is left; returns how many it published."""
        published = 0
        with np.errstate(**self.errors):
            while (k := self._take(by_worker=True)) >= 0:
                try:
                    values = self.apart(k)
                except BaseException:  # noqa: BLE001 — the caller computes the part again and raises
                    with self.lock:
                        self.failed[k] = True
                    continue
                with self.lock:
                    if not self.done[k]:
                        self.publish(k, values)
                        self._finish(k)
                        published += 1
        return published

    def lead(self) -> tuple[int, int]:
        """The calling thread's share: its parts, then those the workers hold too long.
        Returns (parts computed here, of them parts a worker had taken)."""
        own = 0
        part_seconds = None
        while (k := self._take(by_worker=False)) >= 0:
            start = time.perf_counter()
            self.direct(k)
            part_seconds = time.perf_counter() - start
            with self.lock:
                self._finish(k)
            own += 1
        redone = 0
        while not self.finished.is_set():
            with self.lock:
                pending = [k for k in range(self.count) if not self.done[k]]
            if not pending:
                break
            k = min(pending, key=self.taken_at.__getitem__)
            # A worker that runs finishes its part about one part's time after taking it.
            grace = TAKEOVER_GRACE if part_seconds is None else 1.25 * part_seconds + TAKEOVER_MARGIN
            wait = self.taken_at[k] + grace - time.perf_counter()
            if wait > 0 and not self.failed[k]:
                self.finished.wait(wait)
                continue
            # Into an array of its own, copied in under the lock: BLAS uses its output as an
            # accumulator, so a worker's copy landing in the middle of a product written
            # straight into the result would be added to.
            values = self.apart(k)
            with self.lock:
                if not self.done[k]:
                    self.publish(k, values)
                    self._finish(k)
                    own += 1
                    redone += 1
        return own, redone


def _slow_in_a_row(count: int, slow: bool) -> tuple[int, bool]:
    """One more stretch judged, after ``count`` slow ones in a row: the new count, and whether
    it reached SLOW_STRETCHES, when a rest starts and the count starts again from 0. The one
    rule of both rests, the process's (stalls) and a kind's (too little gain)."""
    count = count + 1 if slow else 0
    return (0, True) if count >= SLOW_STRETCHES else (count, False)


@dataclasses.dataclass
class BlasRecord:
    """What a process learned of its BLAS's threads, kept for the runs it trains after: for each
    kind of product (thread count, shapes, layouts, dtypes) the form ``SplitProducts`` found
    (0 whole, a cut, a ``Block``, ``None``) and the time one thread took for it then (the fastest of three,
    the yardstick of a stall), how its products fared on BLAS's threads lately, and how long
    they rest from BLAS's threads."""

    forms: dict[tuple[Any, ...], int | Block | None] = dataclasses.field(default_factory=dict)
    one_thread: dict[tuple[Any, ...], float] = dataclasses.field(default_factory=dict)
    #: The stretch of products being watched (see LOST_SHARE): how many, their seconds, the
    #: seconds one thread took for them, and the slow stretches just before it. The
    #: process's, not a run's: a run of a few dozen steps ends before a stretch does.
    watched: int = 0
    watched_seconds: float = 0.0
    one_thread_seconds: float = 0.0
    slow_stretches: int = 0
    #: Until when (``SplitProducts.clock``) products keep to one thread after stalls: a busy
    #: machine is busy for the process's next run too.
    resting_until: float = 0.0
    #: Per kind: the seconds of its products on BLAS's threads in its current stretch, and until
    #: when the kind keeps to one thread because they did not gain (see BLAS_GAIN).
    kind_watch: dict[tuple[Any, ...], list[float]] = dataclasses.field(default_factory=dict)
    kind_resting_until: dict[tuple[Any, ...], float] = dataclasses.field(default_factory=dict)
    #: Per kind: how many of its stretches in a row gained too little (it rests at SLOW_STRETCHES).
    kind_slow_stretches: dict[tuple[Any, ...], int] = dataclasses.field(default_factory=dict)
    #: Per kind of product and cut: whether its parts, each on one BLAS thread, give the whole
    #: product's numbers (``SplitProducts._splits_exactly``).
    splits: dict[tuple[Any, ...], bool] = dataclasses.field(default_factory=dict)


_PROCESS_RECORD = BlasRecord()


class SplitProducts:
    """The matrix products of a run on ``threads`` threads, with one thread's numbers.

    A product goes to BLAS's own threads when, for its shapes, layouts and dtype, they give the
    numbers one BLAS thread gives: checked once per kind of product, on random operands, the
    first time one comes (the order in which a BLAS adds a product's terms depends on its shapes
    and thread count, never on the values, so one check holds for every product of that kind).
    When the whole product does not, the check looks for a cut of its inner sum in two,

        A·B = A[:, :c]·B[:c, :] + A[:, c:]·B[c:, :]

    at which the two halves on several threads, added, give one thread's whole product: a BLAS
    on one thread sums a long inner dimension in blocks itself (OpenBLAS: a 784-term sum as 400
    terms, then 384 more added to them), and on several threads it blocks it otherwise (79 % of
    a 32 × 784 by 784 × 300 product's entries differ), but not a sum as short as one block.
    Where no cut does, the check looks for a ``Block``: the first rows of ``a`` (or columns of
    ``b``) on several threads and the rest on one, which gives one thread's numbers where the
    threads' shares of the block fall on the tiles one thread computes (OpenBLAS's Haswell
    kernels on two threads: the first 768 of the 784 rows of a 784-wide layer's kernel gradient
    ``Xᵀ·∂L/∂Z``, in 0.55 of one thread's time, and the first 288 of the 300 columns of a
    300-unit layer's pre-activations written unit by unit, as the layers keep them: see
    ``core.engine.layers.unit_major``). The layout of the result is part of a product's kind.
    BLAS's threads are the fastest way to share a product (OpenBLAS's threads wait for work by
    spinning; a Python thread's wake-up took 40–400 µs on a 2-core virtual machine). Products of
    fewer than ``blas_work`` multiply-adds stay on one thread, so do for a while those that
    BLAS's threads lately did not make faster (``BLAS_GAIN``), and BLAS never gets more threads
    than the process has cores. When products on BLAS's threads stall (another program took a
    core), the products keep to one thread for a while (``LOST_SHARE``, ``BLAS_BACKOFF``).

    Otherwise, products split by rows over ``threads`` threads, each part on one BLAS thread.

    Row block by row block, ``C = A @ B`` is the same product: each element of C is the same sum
    of the same K terms, and OpenBLAS's SkylakeX kernels on one thread add them in the same
    order for a block of rows as for the whole matrix. Its Haswell kernels (AMD Zen's too) do
    not for the engine's shapes, so a kind of product is split only after a check, once, on
    random operands, that its parts give the whole product's numbers (``_splits_exactly``);
    otherwise it stays whole on one thread. So a run gives the same numbers bit for bit with
    one thread or several. OpenBLAS's own threads
    do not (a 32 × 784 by 784 × 300 product split by OpenBLAS over two threads rounds
    differently from one thread's), and they spin-wait for each other: next to another busy
    program (a browser, the window painting) a run on OpenBLAS's two threads fell to a tenth of
    its one-thread speed. Here the threads sleep while they wait; a part that no thread has
    started when the calling thread is done with its own is computed by the caller, and so is a
    part a worker started but has not finished about one part's time later (the system paused
    it), so a busy machine slows a run to about one thread's speed, not below it.

    Products of fewer than ``min_work`` multiply-adds (rows × inner × columns) are not split:
    handing a part to another thread costs tens of microseconds. No part has fewer than
    ``PART_WORK``: OpenBLAS computes products of up to a million multiply-adds with another
    kernel (its small-matrix path), which adds in another order (a 128 × 300 by 300 × 100
    product cut into four parts of 960,000 did not give the whole product's numbers)."""

    def __init__(self, threads: int, min_work: int = PARALLEL_WORK, blas_work: int | None = BLAS_THREADED_WORK,
                 record: BlasRecord | None = None) -> None:
        if threads < 2:
            raise ValueError(f"threads: must be at least 2 to split products, got {threads}")
        self.threads = int(threads)
        self.min_work = int(min_work)
        #: ``None``: never BLAS's threads, only the split below. Also when there are more threads
        #: than cores: BLAS's threads spin while they wait for each other, and more of them than
        #: cores stall each other (3 OpenBLAS threads on 2 cores: 1–2 s for what 2 do in 0.03 s).
        self.blas_work = blas_work if self.threads <= usable_cores() else None
        self._blas = ([] if self.blas_work is None
                      else blas_controller().select(user_api="blas").lib_controllers)
        #: The process's record unless given (its answers hold while the BLAS is the same).
        self.record = _PROCESS_RECORD if record is None else record
        self.products_on_blas_threads = 0
        #: Products on BLAS's threads slower than one thread was for their kind (for information).
        self.blas_stalls = 0
        self.clock: Callable[[], float] = time.perf_counter
        #: Kinds of product (``_kind_of``) that stay whole on one thread whatever happens (see
        #: ``_stays_whole``), for products large enough to be checked.
        self._whole: set[tuple[Any, ...]] = set()
        self._inbox: queue.SimpleQueue[_SharedProduct | None] = queue.SimpleQueue()
        self._workers = [threading.Thread(target=self._serve, name=f"split-products-{k}", daemon=True)
                         for k in range(self.threads - 1)]
        for worker in self._workers:
            worker.start()
        #: Parts computed by the calling thread and by the workers (what the benchmarks report);
        #: ``parts_taken_over``: of the caller's, parts a worker had started and not finished in time.
        self.parts_by_caller = 0
        self.parts_by_workers = 0
        self.parts_taken_over = 0

    def _set_blas_threads(self, threads: int) -> list[int]:
        """Give BLAS ``threads`` threads; returns the counts it had, for ``_restore_blas_threads``.
        (Two calls, not a context manager: on the hot path its cost was 2 µs of a 60 µs product.)"""
        before = [library.get_num_threads() for library in self._blas]
        for library in self._blas:
            library.set_num_threads(threads)
        return before

    def _restore_blas_threads(self, before: list[int]) -> None:
        for library, count in zip(self._blas, before, strict=True):
            library.set_num_threads(count)

    @contextlib.contextmanager
    def _blas_threads(self, threads: int) -> Iterator[None]:
        before = self._set_blas_threads(threads)
        try:
            yield
        finally:
            self._restore_blas_threads(before)

    def _blas_form(self, a: np.ndarray, b: np.ndarray,
                   out: np.ndarray | None = None) -> tuple[tuple[Any, ...], int | Block | None]:
        """(this kind of product, how BLAS on ``threads`` threads computes it with one thread's
        numbers: 0 whole, c > 0 cut at inner term c, a ``Block`` of it (see the class), ``None``
        not at all)."""
        key = (self.threads, *_kind_of(a, b, out))

        def form_of(pa: np.ndarray, pb: np.ndarray) -> int | Block | None:
            seconds = []
            one = _result_like(pa, pb, key[-1])
            with self._blas_threads(1):
                for _ in range(3):
                    start = self.clock()
                    _cut_product(pa, pb, 0, out=one)
                    seconds.append(self.clock() - start)
            self.record.one_thread[key] = min(seconds)
            with self._blas_threads(self.threads):
                cut = self._find_cut(pa, pb, one)
            return cut if cut is not None else self._find_block(pa, pb, one)

        return key, _checked_once(self.record.forms, key, a, b, form_of, None)

    def _block_product(self, a: np.ndarray, b: np.ndarray, block: Block,
                       out: np.ndarray | None = None) -> np.ndarray:
        """``a @ b``: ``block``'s part on BLAS's ``threads`` threads, the rest on the threads in
        force (one, while a run trains)."""
        result = _result_like(a, b, "C") if out is None else out
        (pa, pb, part), (ra, rb, rest) = block.parts(a, b, result)
        before = self._set_blas_threads(self.threads)
        try:
            _cut_product(pa, pb, 0, out=part)
        finally:
            self._restore_blas_threads(before)
        _cut_product(ra, rb, 0, out=rest)
        return result

    def _find_block(self, a: np.ndarray, b: np.ndarray, one: np.ndarray) -> Block | None:
        """The largest ``Block`` of rows (tried first when there are more rows than columns) or
        columns whose product ``_block_product`` computes as ``one``, the product on one thread
        (see BLOCK_STEP): a BLAS that tiles a product by the same blocks on one thread and on
        several, but cuts it between its threads where the tiles of one thread do not fall,
        gives one thread's numbers for a block whose share of each thread falls on them."""
        rows, columns = one.shape
        candidates = []
        for by_rows in (True, False) if rows >= columns else (False, True):
            length = rows if by_rows else columns
            sizes = range((length - 1) // BLOCK_STEP * BLOCK_STEP, 0, -BLOCK_STEP)
            candidates += [Block(by_rows, size) for size in sizes[:BLOCK_TRIES] if size >= BLOCK_SHARE * length]
        if len(candidates) * rows * a.shape[1] * columns > CUT_SEARCH_WORK:
            return None
        with self._blas_threads(1):
            return next((block for block in candidates
                         if np.array_equal(self._block_product(a, b, block, np.empty_like(one)), one)), None)

    @staticmethod
    def _find_cut(a: np.ndarray, b: np.ndarray, one: np.ndarray) -> int | None:
        """The form (0 whole, or a cut) in which the BLAS threads in force give ``one``, the
        product on one thread; ``None`` if none does or the search would cost too much.

        The cuts are tried on the first rows only, as few as make a product of at least
        ``CUT_SEARCH_ROWS_WORK`` multiply-adds (the order of a sum depends on its length, not
        on the number of rows; a one-thread BLAS computes a block of rows as in the whole
        product; and below a million OpenBLAS takes another kernel), and the cut found is
        then checked on the whole product."""
        if np.array_equal(_cut_product(a, b, 0, np.empty_like(one)), one):
            return 0
        inner, columns = a.shape[1], b.shape[1]
        rows = min(a.shape[0], max(1, -(-CUT_SEARCH_ROWS_WORK // (inner * columns))))
        cuts = range(CUT_STEP, inner, CUT_STEP)
        if len(cuts) * rows * inner * columns > CUT_SEARCH_WORK:
            return None
        few, few_one = a[:rows], one[:rows]
        for cut in cuts:
            if np.array_equal(_cut_product(few, b, cut, np.empty_like(few_one)), few_one):
                return cut if np.array_equal(_cut_product(a, b, cut, np.empty_like(one)), one) else None
        return None

    def _splits_exactly(self, a: np.ndarray, b: np.ndarray, by_rows: bool, cuts: Sequence[slice],
                        out: np.ndarray | None = None) -> bool:
        """Whether this kind of product cut at ``cuts`` (rows of ``a``, or columns of ``b``) gives
        the whole product's numbers part by part, each part on one BLAS thread: checked once per
        kind on random operands of the same shapes and layouts, as ``_blas_form`` checks BLAS's
        threads (the order in which a BLAS adds a product's terms depends on the shapes, never
        on the values). OpenBLAS's SkylakeX kernels compute a block of rows or columns as in the
        whole product; its Haswell kernels (AMD Zen's too) do not for the engine's shapes, and
        there a split would make a run's numbers depend on its thread count."""
        kind = _kind_of(a, b, out)

        def exact(pa: np.ndarray, pb: np.ndarray) -> bool:
            with self._blas_threads(1):
                whole = _part_product(pa, pb, _result_like(pa, pb, kind[-1]))
                if by_rows:
                    return all(np.array_equal(_part_product(pa[cut], pb, np.empty_like(whole[cut])), whole[cut])
                               for cut in cuts)
                return all(np.array_equal(_part_product(pa, pb[:, cut], np.empty_like(whole[:, cut])),
                                          whole[:, cut]) for cut in cuts)

        return _checked_once(self.record.splits, (by_rows, len(cuts), *kind), a, b, exact, False)

    def _watch(self, kind: tuple[Any, ...], seconds: float) -> None:
        """Add a product on BLAS's threads to the stretch watched; rest BLAS's threads after
        SLOW_STRETCHES stretches in a row that took more than 1 + LOST_SHARE times one thread's
        time, and rest the kind after SLOW_STRETCHES stretches of its own in a row that gained too
        little (BLAS_GAIN)."""
        record = self.record
        one_thread = record.one_thread[kind]
        watch = record.kind_watch.setdefault(kind, [])
        watch.append(seconds)
        if len(watch) >= BLAS_WATCH:
            gained_too_little = BLAS_GAIN * one_thread < statistics.median(watch) <= (1.0 + LOST_SHARE) * one_thread
            record.kind_slow_stretches[kind], rest = _slow_in_a_row(record.kind_slow_stretches.get(kind, 0),
                                                                    gained_too_little)
            if rest:
                record.kind_resting_until[kind] = self.clock() + KIND_BACKOFF
            watch.clear()
        if seconds > one_thread:
            self.blas_stalls += 1
        record.watched_seconds += seconds
        record.one_thread_seconds += one_thread
        record.watched += 1
        if record.watched >= BLAS_WATCH:
            slow = record.watched_seconds > (1.0 + LOST_SHARE) * record.one_thread_seconds
            record.slow_stretches, rest = _slow_in_a_row(record.slow_stretches, slow)
            if rest:
                record.resting_until = self.clock() + BLAS_BACKOFF
            record.watched = 0
            record.watched_seconds = record.one_thread_seconds = 0.0

    def _stays_whole(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None) -> None:
        """Remember that products of this kind stay whole on one thread for good (BLAS's threads
        refused it or are not for it, and so did the split: checks that never change their
        answer): its later products skip the checks' bookkeeping, 10–30 µs a product, on a
        machine whose BLAS kernels refuse every form (OpenBLAS's Haswell ones, for the engine's
        shapes)."""
        self._whole.add(_kind_of(a, b, out))

    def _serve(self) -> None:
        while True:
            job = self._inbox.get()
            if job is None:
                return
            self.parts_by_workers += job.work()

    def matmul(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``a @ b`` (2-D), written into ``out`` when given: on BLAS's threads when they give
        one thread's numbers for it, else in parts shared with the workers.

        The product is cut along its longer side (rows of ``a`` or columns of ``b``) into two
        parts per thread; whoever is free takes the next part, so a worker that wakes late (or
        never, on a busy machine) leaves its parts to the caller instead of holding it up."""
        rows, inner = a.shape
        columns = b.shape[1]
        work = rows * inner * columns
        on_blas = bool(self._workers) and self.blas_work is not None and work >= self.blas_work
        if not on_blas and work < self.min_work:           # too small for either: no check to make
            return np.matmul(a, b, out=out)
        if self._whole and _kind_of(a, b, out) in self._whole:
            return np.matmul(a, b, out=out)
        if on_blas:
            now = self.clock()
            if now < self.record.resting_until:
                return np.matmul(a, b, out=out)
            kind, form = self._blas_form(a, b, out)
            if form is not None and now < self.record.kind_resting_until.get(kind, 0.0):
                return np.matmul(a, b, out=out)
            if form is not None:
                self.products_on_blas_threads += 1
                start = self.clock()
                if isinstance(form, Block):
                    result = self._block_product(a, b, form, out)
                else:
                    before = self._set_blas_threads(self.threads)
                    try:
                        result = _cut_product(a, b, form, out)
                    finally:
                        self._restore_blas_threads(before)
                self._watch(kind, self.clock() - start)
                return result
        by_rows = rows >= columns
        length = rows if by_rows else columns
        parts = min(2 * self.threads, length, work // PART_WORK)
        # BLAS's threads spin on the cores for a while after a product: a split right after one
        # took 1.5x the one-thread time (its workers waited for those cores).
        if not self._workers or self.products_on_blas_threads:
            return np.matmul(a, b, out=out)
        # Here BLAS's threads refused this kind (a kind they take returned above) or are not for it.
        if work < self.min_work or parts < 2:
            self._stays_whole(a, b, out)
            return np.matmul(a, b, out=out)
        cuts = [slice(length * k // parts, length * (k + 1) // parts) for k in range(parts)]
        if not self._splits_exactly(a, b, by_rows, cuts, out):
            self._stays_whole(a, b, out)
            return np.matmul(a, b, out=out)
        result = _result_like(a, b, "C") if out is None else out

        if by_rows:
            def direct(k: int) -> None:
                _part_product(a[cuts[k]], b, out=result[cuts[k]])

            def apart(k: int) -> np.ndarray:
                return _part_product(a[cuts[k]], b)

            def publish(k: int, values: np.ndarray) -> None:
                result[cuts[k]] = values
        else:
            def apart(k: int) -> np.ndarray:
                return _part_product(a, b[:, cuts[k]])

            def publish(k: int, values: np.ndarray) -> None:
                result[:, cuts[k]] = values

            def direct(k: int) -> None:
                publish(k, apart(k))

        job = _SharedProduct(parts, direct, apart, publish)
        for _ in self._workers:
            self._inbox.put(job)
        own, redone = job.lead()
        self.parts_by_caller += own
        self.parts_taken_over += redone
        return result

    def close(self) -> None:
        """End the worker threads (idempotent); later products are not split."""
        workers, self._workers = self._workers, []
        for _ in workers:
            self._inbox.put(None)
        for worker in workers:
            worker.join()
