"""How many BLAS threads a run's matrix products deserve.

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

``limit_blas_threads`` applies a choice for a block of code through ``threadpoolctl`` and
restores the previous setting after it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence

from threadpoolctl import threadpool_limits

# Multiply-adds of one product above which a second thread paid on an idle 2-core machine
# (benchmarks/bench_threads.py measures the crossing; the 784-300-100-10 network at batch 32 has
# 7.5 M in its first product, the default 64-100-...-10 one 0.2 M).
PARALLEL_WORK = 4_000_000
SAMPLE_SECONDS = 0.05     # how long ``busy_elsewhere`` watches the machine


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


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
                   sleep: Callable[[float], None] = time.sleep) -> int:
    """Cores kept busy by other work now, rounded: the machine's non-idle CPU time over a short
    sample while this thread sleeps (0 where the system does not say).

    An average over ``sample`` seconds, not the instantaneous count of runnable tasks: that count
    is 1 or more on an idle machine half the time (a kernel worker, the shell), and choosing by it
    kept the wide networks on one thread on an idle 2-core machine, 0.67–0.85× the speed of two
    (``benchmarks/bench_threads.py``)."""
    first = _cpu_times(stat_path)
    if first is None:
        return 0
    sleep(sample)
    second = _cpu_times(stat_path)
    if second is None or second[1] <= first[1]:
        return 0
    busy_share = (second[0] - first[0]) / (second[1] - first[1])
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


@contextlib.contextmanager
def limit_blas_threads(threads: int | None) -> Iterator[None]:
    """Run the block with at most ``threads`` BLAS threads (``None``: leave them as they are)."""
    if threads is None:
        yield
        return
    with threadpool_limits(limits=int(threads), user_api="blas"):
        yield
