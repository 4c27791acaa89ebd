"""BLAS threads per run (``core.engine.threads``)."""

import threading
import time
from collections.abc import Callable

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import core.engine.threads as threads_module
from core.engine.threads import (
    BLAS_BACKOFF,
    BLAS_GAIN,
    BLAS_WATCH,
    CUT_STEP,
    KIND_BACKOFF,
    LOST_SHARE,
    PARALLEL_WORK,
    PART_WORK,
    SLOW_STRETCHES,
    BlasRecord,
    SplitProducts,
    _cut_product,
    busy_elsewhere,
    choose_blas_threads,
    largest_product,
    limit_blas_threads,
    split_cores,
)
from core.spec import parse_experiment
from core.training import Trainer


def blas_threads() -> int:
    return max(info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas")


@pytest.fixture
def exact_checks(monkeypatch):
    """The checks of a kind of product (its split, BLAS's threads) draw small-integer operands,
    whose products every BLAS computes exactly in any order of additions: the checks pass on any
    OpenBLAS kernel. For the tests of what happens once a kind has passed them: with random normal
    operands, the Haswell kernels (AMD Zen's) fail them and nothing is split or threaded (see
    ``test_a_kind_whose_parts_round_otherwise_is_not_split``). The tests' own operands are small
    integers too, so their results are exact whatever the kernel."""
    def integers_like(shape, layout, dtype, rng):
        values = small_integers(shape if layout == "C" else shape[::-1], rng).astype(dtype)
        return values if layout == "C" else values.T

    monkeypatch.setattr(threads_module, "_random_like", integers_like)


def small_integers(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """float32 integers in [-3, 3]: a product of 784 terms sums to at most 7,056, exact in float32."""
    return rng.integers(-3, 4, size=shape).astype(np.float32)


def test_largest_product_counts_batch_times_fan_in_times_fan_out():
    assert largest_product([784, 300, 100, 10], 32) == 32 * 784 * 300
    assert largest_product([2, 2048, 2048, 10], 128) == 128 * 2048 * 2048
    assert largest_product([5], 32) == 0


@pytest.mark.parametrize("widths, batch, cores, busy, reserved, want", [
    ([64, 100, 100, 10], 32, 2, 0, 0, 1),          # small products: one thread whatever the cores
    ([784, 300, 100, 10], 32, 2, 0, 0, 1),         # 7.5 M multiply-adds: not worth a second thread
    ([784, 300, 100, 10], 128, 2, 0, 0, 2),        # 30 M: both cores when idle
    ([784, 300, 100, 10], 128, 2, 1, 0, 1),        # ... one when another task runs
    ([784, 300, 100, 10], 128, 2, 0, 1, 1),        # ... one when the window keeps a core
    ([784, 300, 100, 10], 128, 8, 2, 1, 5),
    ([784, 300, 100, 10], 128, 2, 5, 0, 1),        # never fewer than one
])
def test_the_choice_follows_size_and_free_cores(widths, batch, cores, busy, reserved, want):
    assert choose_blas_threads(widths, batch, cores=cores, busy=busy, reserved=reserved) == want


def test_the_threshold_sits_between_the_reference_networks():
    assert largest_product([784, 300, 100, 10], 32) < PARALLEL_WORK <= largest_product([784, 300, 100, 10], 128)
    assert largest_product([64, 100, 100, 100, 10], 32) < PARALLEL_WORK


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

    assert busy_elsewhere(str(path), sample=0.05, sleep=sleep, own_cpu=lambda: 0.0) == round(130 / 200 * 2) == 1
    assert slept == [0.05]
    # Of the 130 busy jiffies, this process's other threads used 100 (its CPU time went up by
    # 100 jiffies' worth of seconds): the others kept 30 / 200 × 2 = 0.3 cores busy.
    path.write_text(before)
    own = iter([5.0, 5.0 + 100 / threads_module._TICKS_PER_SECOND])
    assert busy_elsewhere(str(path), sleep=sleep, own_cpu=lambda: next(own)) == round(30 / 200 * 2) == 0
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


def test_the_blas_controller_is_made_again_only_after_an_import(monkeypatch):
    """Scanning the loaded libraries took 0.9 ms a fit (a benchmark's every epoch); a library
    comes with an import, so the controller is made again when the modules changed."""
    import sys
    import types

    first = threads_module.blas_controller()
    assert threads_module.blas_controller() is first
    monkeypatch.setitem(sys.modules, "gradient_workbench_test_import", types.ModuleType("imported"))
    again = threads_module.blas_controller()
    assert again is not first and threads_module.blas_controller() is again


def test_fit_runs_with_the_trainers_choice():
    trainer = Trainer(parse_experiment({"data": {"source": "xor", "params": {"n_samples": 64}},
                                        "model": {"layers": [{"units": 4}]}, "training": {"epochs": 1}}))
    assert trainer.blas_threads == 1
    seen = []
    trainer.fit(observer=lambda kind, info: seen.append(blas_threads()) if kind == "epoch" else None)
    assert seen == [1]
    a = np.ones((4, 4), np.float32)
    assert np.array_equal(a @ a, np.full((4, 4), 4, np.float32))


# ------------------------------------------------------- the count changes the speed, not the numbers

def tiny(**training) -> dict:
    return {"data": {"source": "xor", "params": {"n_samples": 64}}, "model": {"layers": [{"units": 4}]},
            "training": {"epochs": 1, **training}}


def test_the_experiment_fixes_the_count_and_the_window_cannot_change_it(monkeypatch):
    trainer = Trainer(parse_experiment(tiny(blas_threads=3)))
    assert trainer.blas_threads == 3 and trainer.blas_threads_fixed
    trainer.leave_cores(1)
    assert trainer.blas_threads == 3
    auto = Trainer(parse_experiment(tiny()))
    monkeypatch.setattr("core.training.choose_blas_threads", lambda widths, batch, reserved=0: 7 - reserved)
    auto.leave_cores(2)
    assert auto.blas_threads == 5 and not auto.blas_threads_fixed


def test_the_automatic_choice_is_made_once_when_first_needed(monkeypatch):
    """Choosing can watch the machine for 50 ms: a trainer built to be inspected makes no choice,
    and the training process, which chooses with the window's core left out, makes one."""
    calls: list[int] = []

    def choose(widths, batch, reserved=0):
        calls.append(reserved)
        return 2 - reserved

    monkeypatch.setattr("core.training.choose_blas_threads", choose)
    trainer = Trainer(parse_experiment(tiny()))
    assert calls == []
    trainer.leave_cores(1)
    assert trainer.blas_threads == 1 and trainer.blas_threads == 1 and calls == [1]
    headless = Trainer(parse_experiment(tiny()))
    assert headless.blas_threads == 2 and headless.blas_threads == 2 and calls == [1, 0]
    headless.blas_threads = None                 # a caller's own setting is kept
    assert headless.blas_threads is None and calls == [1, 0]


def engine_products(batch: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """The products of a 784-300-100 layer stack's step, in the layouts the engine uses: the
    forward X @ W with W a view of one flat parameter array, the kernel gradient Xᵀ @ dZ into a
    view of the flat gradient array, and the input gradient dZ @ Wᵀ."""
    flat = rng.standard_normal(784 * 300 + 300 * 100).astype(np.float32)
    w1, w2 = flat[:784 * 300].reshape(784, 300), flat[784 * 300:].reshape(300, 100)
    grads = np.zeros_like(flat)
    g1, g2 = grads[:784 * 300].reshape(784, 300), grads[784 * 300:].reshape(300, 100)
    x = rng.standard_normal((batch, 784)).astype(np.float32)
    h = rng.standard_normal((batch, 300)).astype(np.float32)
    dz1 = rng.standard_normal((batch, 300)).astype(np.float32)
    dz2 = rng.standard_normal((batch, 100)).astype(np.float32)
    z1 = np.empty((batch, 300), np.float32, order="F")      # a result stored column by column
    return [(x, w1, None), (h, w2, None), (x.T, dz1, g1), (h.T, dz2, g2), (dz2, w2.T, None), (dz1, w1.T, None),
            (x, w1, z1)]


def test_a_cut_product_adds_the_two_halves_of_the_inner_sum():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((32, 784)).astype(np.float32)
    b = rng.standard_normal((784, 300)).astype(np.float32)
    with limit_blas_threads(1):
        expected = np.matmul(a[:, :400], b[:400]) + np.matmul(a[:, 400:], b[400:])
        out = np.empty((32, 300), np.float32)
        assert _cut_product(a, b, 400, out=out) is out and np.array_equal(out, expected)
        assert np.array_equal(_cut_product(a, b, 0), np.matmul(a, b))
    exact = a.astype(np.float64) @ b.astype(np.float64)
    assert np.abs(out - exact).max() < 1e-4 * np.abs(exact).max()


@pytest.mark.parametrize(("threads", "blas_work"), [(2, None), (3, None), (4, None), (2, 0)])
@pytest.mark.parametrize("batch", [32, 64, 128, 257, 512, 600])
def test_split_products_equal_the_one_thread_product_bit_for_bit(threads, batch, blas_work, monkeypatch):
    monkeypatch.setattr(threads_module, "usable_cores", lambda: 2)   # as CI's machine: 2 cores
    products = SplitProducts(threads, min_work=0, blas_work=blas_work, record=BlasRecord())
    try:
        for a, b, out in engine_products(batch, np.random.default_rng(batch)):
            with limit_blas_threads(1):
                whole = np.matmul(a, b, out=None if out is None else np.empty_like(out))
                split = products.matmul(a, b, out=None if out is None else np.zeros_like(out))
                if out is not None:          # written into the given array, a view of a flat one
                    assert products.matmul(a, b, out=out) is out
                    assert np.array_equal(out, whole)
            assert split.dtype == whole.dtype == np.float32
            assert np.array_equal(split, whole), (a.shape, b.shape)
        # Split, or on BLAS's threads, exactly where this machine's BLAS passed the check (the
        # SkylakeX kernels pass every one here; the Haswell kernels none; either way the
        # numbers above are one thread's). What a kind that passed goes on to do is tested with
        # exact operands below, on any kernel.
        record = products.record
        split = products.parts_by_caller + products.parts_by_workers
        if blas_work is None:
            assert record.splits and (split > 0) == any(record.splits.values())
            assert products.products_on_blas_threads == 0
        else:   # every product checked
            assert len(record.forms) == 7 and sum(kind[-1] == "F" for kind in record.forms) == 1
            assert (products.products_on_blas_threads >= 2) == any(f is not None for f in record.forms.values())
    finally:
        products.close()


class FakeBLAS:
    """A BLAS whose thread count the products set, and whose products on more than one thread
    round otherwise unless cut where ``good_cuts`` (inner dimension → cut, 0 whole, ``None``
    nowhere) says: as OpenBLAS does for a 784-term sum, which it gives whole on one thread as
    two blocks, 400 terms and 384."""

    def __init__(self, good_cuts: dict[int, int | None]) -> None:
        self.threads, self.good_cuts, self.calls = 1, good_cuts, []

    def get_num_threads(self) -> int:
        return self.threads

    def set_num_threads(self, threads: int) -> None:
        self.threads = threads

    def cut_product(self, a, b, cut, out=None):
        self.calls.append((a.shape, b.shape, cut, self.threads))
        result = np.matmul(a, b, out=out)
        if self.threads > 1 and cut != self.good_cuts[a.shape[1]]:
            result += np.float32(1e-3)
        return result


def test_a_product_goes_to_blas_threads_in_the_form_that_gives_one_threads_numbers(monkeypatch, exact_checks):
    blas = FakeBLAS({100: 0, 300: 200, 160: None})
    monkeypatch.setattr(threads_module, "_cut_product", blas.cut_product)
    monkeypatch.setattr(threads_module, "usable_cores", lambda: 2)
    more_than_cores = SplitProducts(3, blas_work=1_000_000)
    assert more_than_cores.blas_work is None                            # more threads than cores: never
    more_than_cores.close()
    products = SplitProducts(2, min_work=0, blas_work=1_000_000, record=BlasRecord())
    products._blas = [blas]
    rng = np.random.default_rng(0)

    def pair(rows: int, inner: int, columns: int) -> tuple[np.ndarray, np.ndarray]:
        return small_integers((rows, inner), rng), small_integers((inner, columns), rng)
    try:
        x, w = pair(64, 100, 300)
        assert np.array_equal(products.matmul(x, w), np.matmul(x, w))    # 1.9 M: whole, on 2 threads
        assert products.products_on_blas_threads == 1 and blas.calls[-1] == ((64, 100), (100, 300), 0, 2)
        assert blas.threads == 1                                          # back to one after it
        products.matmul(x, w)                                             # checked once per kind
        assert products.products_on_blas_threads == 2 and len(products.record.forms) == 1
        h, v = pair(64, 300, 100)
        assert np.array_equal(products.matmul(h, v), np.matmul(h, v))    # cut at 200, on 2 threads
        assert products.record.forms[(2, (64, 300), (300, 100), "C", "C", "<f4", "<f4", "C")] == 200
        assert products.products_on_blas_threads == 3 and blas.calls[-1] == ((64, 300), (300, 100), 200, 2)
        g, u = pair(64, 160, 200)
        calls = len(blas.calls)
        assert np.array_equal(products.matmul(g, u), np.matmul(g, u))    # no form: one thread's numbers
        assert products.record.forms[(2, (64, 160), (160, 200), "C", "C", "<f4", "<f4", "C")] is None
        tried = [(a, b, cut) for a, b, cut, threads in blas.calls[calls:] if threads == 2]
        cuts = [((64, 160), (160, 200), cut) for cut in [0, *range(CUT_STEP, 160, CUT_STEP)]]
        # then blocks of the longer side first, largest first, down to BLOCK_SHARE of it
        blocks = ([((64, 160), (160, size), 0) for size in (192, 180, 168, 156)]
                  + [((size, 160), (160, 200), 0) for size in (60, 48)])
        assert tried == cuts + blocks and products.products_on_blas_threads == 3
        small, _ = pair(8, 100, 1)
        calls = len(blas.calls)
        products.matmul(small, w)                                         # 0.24 M: below blas_work
        assert len(products.record.forms) == 3 and blas.calls[calls:] == []
        # A cut is searched on the first rows (4 M multiply-adds), then checked on the whole.
        blas.good_cuts[1000] = 496
        big, v = pair(200, 1000, 100)
        calls = len(blas.calls)
        assert np.array_equal(products.matmul(big, v), np.matmul(big, v))
        tries = [(shape, cut) for shape, _, cut, threads in blas.calls[calls:] if threads == 2]
        assert tries[0] == ((200, 1000), 0)                                   # whole first
        assert tries[1:-2] == [((40, 1000), cut) for cut in range(CUT_STEP, 497, CUT_STEP)]
        assert tries[-2:] == [((200, 1000), 496)] * 2                         # the check, the product
        # No search where the tries would cost more than CUT_SEARCH_WORK: one thread's numbers.
        monkeypatch.setattr(threads_module, "CUT_SEARCH_WORK", 10**6)
        big, v = pair(200, 1000, 120)
        calls = len(blas.calls)
        assert np.array_equal(products.matmul(big, v), np.matmul(big, v))
        assert [cut for *_, cut, threads in blas.calls[calls:] if threads == 2] == [0]
        assert products.record.forms[(2, (200, 1000), (1000, 120), "C", "C", "<f4", "<f4", "C")] is None
    finally:
        products.close()


def test_where_no_cut_does_a_block_of_rows_goes_to_blas_threads_and_the_rest_to_one(monkeypatch, exact_checks):
    """As OpenBLAS's Haswell kernels do for the kernel gradient Xᵀ·∂L/∂Z of a 784-wide layer: on
    two threads they give one thread's numbers for a block of rows whose half falls on their
    tiles (here: a multiple of 48 rows), never for the whole product or a cut of its sum."""
    class BlockBLAS(FakeBLAS):
        def cut_product(self, a, b, cut, out=None):
            self.calls.append((a.shape, b.shape, cut, self.threads))
            result = np.matmul(a, b, out=out)
            if self.threads > 1 and (cut != 0 or a.shape[0] % 48):
                result += np.float32(1e-3)
            return result

    blas = BlockBLAS({})
    monkeypatch.setattr(threads_module, "_cut_product", blas.cut_product)
    monkeypatch.setattr(threads_module, "usable_cores", lambda: 2)
    products = SplitProducts(2, min_work=0, blas_work=1_000_000, record=BlasRecord())
    products._blas = [blas]
    rng = np.random.default_rng(1)
    a, b = small_integers((200, 64), rng), small_integers((64, 100), rng)
    out = np.zeros((200, 100), np.float32)
    try:
        assert products.matmul(a, b, out=out) is out and np.array_equal(out, np.matmul(a, b))
        kind = (2, (200, 64), (64, 100), "C", "C", "<f4", "<f4", "C")
        assert products.record.forms[kind] == threads_module.Block(by_rows=True, size=192)
        # checked with 204 → 192 rows (the largest multiples of BLOCK_STEP below 200), then the
        # product: 192 rows on two threads, the last 8 on one
        assert blas.calls[-2:] == [((192, 64), (64, 100), 0, 2), ((8, 64), (64, 100), 0, 1)]
        assert products.products_on_blas_threads == 1 and blas.threads == 1
        # A kind with no such block (40 rows; its column blocks keep all 40): one thread's numbers.
        a, b = small_integers((40, 300), rng), small_integers((300, 100), rng)
        assert np.array_equal(products.matmul(a, b), np.matmul(a, b))
        assert products.record.forms[(2, (40, 300), (300, 100), "C", "C", "<f4", "<f4", "C")] is None
        assert products.products_on_blas_threads == 1
    finally:
        products.close()


def test_blas_gets_its_thread_count_back_when_a_product_fails(monkeypatch):
    blas = FakeBLAS({100: 0})
    monkeypatch.setattr(threads_module, "_cut_product", blas.cut_product)
    monkeypatch.setattr(threads_module, "usable_cores", lambda: 2)
    products = SplitProducts(2, min_work=10**12, blas_work=1_000_000, record=BlasRecord())
    products._blas = [blas]
    x, w = np.ones((64, 100), np.float32), np.ones((100, 300), np.float32)
    try:
        products.matmul(x, w)                             # checked: whole, on 2 threads
        monkeypatch.setattr(threads_module, "_cut_product", lambda *args: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            products.matmul(x, w)
        assert blas.threads == 1
    finally:
        products.close()


def test_products_keep_to_one_thread_for_a_while_after_blas_threads_stall(monkeypatch):
    blas = FakeBLAS({100: 0})
    now = [0.0]
    slow = [0.0]     # how long a product on BLAS's threads takes now (one thread: 1 ms)

    def timed_cut_product(a, b, cut, out=None):
        now[0] += 0.001 if blas.threads == 1 else slow[0] or 0.0006
        return blas.cut_product(a, b, cut, out)

    monkeypatch.setattr(threads_module, "_cut_product", timed_cut_product)
    monkeypatch.setattr(threads_module, "usable_cores", lambda: 2)
    record = BlasRecord()

    def products_() -> SplitProducts:
        products = SplitProducts(2, min_work=10**12, blas_work=1_000_000, record=record)
        products._blas, products.clock = [blas], lambda: now[0]
        return products

    def until_rest(products: SplitProducts) -> int:
        for count in range(1, (SLOW_STRETCHES + 1) * BLAS_WATCH):
            products.matmul(x, w)
            if record.resting_until > now[0]:
                return count
        return -1

    x = np.ones((64, 100), np.float32)
    w = np.ones((100, 300), np.float32)
    products = products_()
    try:
        for _ in range(5):
            products.matmul(x, w)
        kind = (2, (64, 100), (100, 300), "C", "C", "<f4", "<f4", "C")
        assert record.one_thread[kind] == pytest.approx(0.001) and record.forms[kind] == 0
        assert products.products_on_blas_threads == 5 and products.blas_stalls == 0
        slow[0] = 0.010                                   # another program takes a core
        assert BLAS_WATCH < until_rest(products) <= SLOW_STRETCHES * BLAS_WATCH   # two slow stretches
        assert record.resting_until == pytest.approx(now[0] + BLAS_BACKOFF)
        assert record.kind_resting_until == {}            # a stall, not a kind without gain
        on_blas, calls = products.products_on_blas_threads, len(blas.calls)
        assert np.array_equal(products.matmul(x, w), np.full((64, 300), 100, np.float32))
        next_run = products_()
        next_run.matmul(x, w)                             # the process's next run rests too
        next_run.close()
        assert len(blas.calls) == calls and products.products_on_blas_threads == on_blas   # one thread
        now[0] += BLAS_BACKOFF                            # a while later: BLAS's threads again
        slow[0] = 0.0
        products.matmul(x, w)
        assert products.products_on_blas_threads == on_blas + 1 and blas.calls[-1][-1] == 2
        stalls = products.blas_stalls
        for k in range(6 * BLAS_WATCH):   # one product in 32 at 1.5 ms, one stretch in two slow: no rest
            slow[0] = 0.0015 if k % 32 == 0 else 0.010 if k // BLAS_WATCH % 2 else 0.0
            products.matmul(x, w)
        assert products.products_on_blas_threads == on_blas + 1 + 6 * BLAS_WATCH
        assert products.blas_stalls > stalls + 6 and record.resting_until < now[0]
    finally:
        products.close()
    # The next run of the process starts next to the busy program: the yardstick is the record's.
    later = products_()
    try:
        slow[0] = 0.010
        calls = len(blas.calls)
        # The stretches are the process's: the last run's slow last stretch counts, so one more.
        assert record.slow_stretches == 1 and 0 < until_rest(later) <= BLAS_WATCH
        assert all(threads == 2 for *_, threads in blas.calls[calls:])   # no check again
    finally:
        later.close()


def watched_products(monkeypatch, blas: FakeBLAS,
                     threaded: Callable[[np.ndarray], float]) -> tuple[SplitProducts, list[float]]:
    """A two-thread splitter on ``blas`` and a fake clock (returned too): a product takes 1 ms
    on one thread and ``threaded(a)`` seconds on BLAS's threads."""
    now = [0.0]

    def timed_cut_product(a, b, cut, out=None):
        now[0] += 0.001 if blas.threads == 1 else threaded(a)
        return blas.cut_product(a, b, cut, out)

    monkeypatch.setattr(threads_module, "_cut_product", timed_cut_product)
    monkeypatch.setattr(threads_module, "usable_cores", lambda: 2)
    products = SplitProducts(2, min_work=10**12, blas_work=1_000_000, record=BlasRecord())
    products._blas, products.clock = [blas], lambda: now[0]
    return products, now


def four_stretches_with_one_in_paused(monkeypatch, every: int) -> SplitProducts:
    """A two-thread splitter (closed) after four stretches of BLAS_WATCH products of one kind on
    BLAS's threads, each 0.5 ms but one in ``every`` that the host paused (5 ms); one thread
    takes 1 ms."""
    calls = [0]

    def threaded(a: np.ndarray) -> float:
        calls[0] += 1
        return 0.005 if calls[0] % every == 0 else 0.0005

    products, _ = watched_products(monkeypatch, FakeBLAS({100: 0}), threaded)
    x, w = np.ones((64, 100), np.float32), np.ones((100, 300), np.float32)
    try:
        for _ in range(4 * BLAS_WATCH):
            products.matmul(x, w)
    finally:
        products.close()
    return products


def test_stretches_are_judged_by_their_total_so_rare_long_products_do_not_rest_a_faster_run(monkeypatch):
    products = four_stretches_with_one_in_paused(monkeypatch, 16)   # 12.5 ms where one thread takes 16
    assert products.record.resting_until == 0.0 and products.record.kind_resting_until == {}
    assert products.products_on_blas_threads == 4 * BLAS_WATCH
    assert products.blas_stalls == 4 * BLAS_WATCH // 16


def test_a_kind_of_product_that_blas_threads_do_not_speed_up_keeps_to_one_thread_for_a_while(monkeypatch):
    blas = FakeBLAS({100: 0, 300: 0})
    seconds = {100: 0.0006, 300: 0.0006}   # on BLAS's threads, by inner length; one thread: 1 ms
    products, now = watched_products(monkeypatch, blas, lambda a: seconds[a.shape[1]])
    record = products.record
    x, w = np.ones((64, 100), np.float32), np.ones((100, 300), np.float32)
    h, v = np.ones((64, 300), np.float32), np.ones((300, 100), np.float32)
    try:
        seconds[100] = 0.95 * 0.001           # a gain of 5 %: less than BLAS_GAIN asks
        assert BLAS_GAIN < 0.95
        for _ in range(SLOW_STRETCHES * BLAS_WATCH):    # stretches in a row that gained too little
            products.matmul(x, w)
            products.matmul(h, v)
        assert products.products_on_blas_threads == 2 * SLOW_STRETCHES * BLAS_WATCH
        calls = len(blas.calls)
        for _ in range(10):
            assert np.array_equal(products.matmul(x, w), np.full((64, 300), 100, np.float32))
            products.matmul(h, v)              # the other kind gains: still on BLAS's threads
        assert products.products_on_blas_threads == 2 * SLOW_STRETCHES * BLAS_WATCH + 10
        assert [shape for shape, _, _, threads in blas.calls[calls:]] == [(64, 300)] * 10
        assert record.resting_until == 0.0     # not a stall: only that kind rests
        now[0] += KIND_BACKOFF                 # a while later it is tried again
        seconds[100] = 0.0005
        products.matmul(x, w)
        assert blas.calls[-1] == ((64, 100), (100, 300), 0, 2)
    finally:
        products.close()


def test_one_stretch_that_gained_too_little_between_ones_that_gained_does_not_rest_a_kind(monkeypatch):
    """A blip of the host as long as one stretch (0.1 s of a run at batch 128) is not a kind that
    gains nothing on BLAS's threads: the kind rests only after SLOW_STRETCHES such stretches in a
    row, and a stretch that gains starts the count again."""
    blas = FakeBLAS({100: 0})
    seconds = [0.0005]                     # on BLAS's threads; one thread: 1 ms
    products, _ = watched_products(monkeypatch, blas, lambda a: seconds[0])
    x, w = np.ones((64, 100), np.float32), np.ones((100, 300), np.float32)
    assert SLOW_STRETCHES >= 2
    try:
        for gained in [False] * (SLOW_STRETCHES - 1) + [True] + [False] * (SLOW_STRETCHES - 1):
            seconds[0] = 0.0005 if gained else 0.95 * 0.001
            for _ in range(BLAS_WATCH):
                products.matmul(x, w)
        assert products.record.kind_resting_until == {}
        assert products.products_on_blas_threads == (2 * SLOW_STRETCHES - 1) * BLAS_WATCH
        for _ in range(BLAS_WATCH):        # one more in a row: now it rests
            products.matmul(x, w)
        before = products.products_on_blas_threads
        calls = len(blas.calls)
        products.matmul(x, w)              # on one thread, straight to NumPy
        assert products.products_on_blas_threads == before and blas.calls[calls:] == []
        assert len(products.record.kind_resting_until) == 1
    finally:
        products.close()


def test_small_products_are_not_split_and_a_closed_splitter_computes_alone(exact_checks):
    products = SplitProducts(2, blas_work=None, record=BlasRecord())   # min_work: PARALLEL_WORK; only the split
    a, b = np.ones((32, 64), np.float32), np.ones((64, 100), np.float32)
    assert np.array_equal(products.matmul(a, b), np.full((32, 100), 64, np.float32))
    assert products.parts_by_caller == products.parts_by_workers == 0
    assert np.array_equal(products.matmul(np.ones((32, 784), np.float32), np.ones((784, 300), np.float32)),
                          np.full((32, 300), 784, np.float32))          # 7.5 M: below PARALLEL_WORK
    assert products.parts_by_caller == products.parts_by_workers == 0
    big_a, big_b = np.ones((128, 784), np.float32), np.ones((784, 300), np.float32)
    assert np.array_equal(products.matmul(big_a, big_b), np.full((128, 300), 784, np.float32))
    parts = min(2 * 2, 128 * 784 * 300 // PART_WORK)                      # two a thread, none too small
    assert parts == 4 and products.parts_by_caller + products.parts_by_workers == parts
    # 5 M: two parts of 2.5 M, not eight of 0.6 M
    small_parts = SplitProducts(4, min_work=0, blas_work=None, record=BlasRecord())
    assert np.array_equal(small_parts.matmul(np.ones((100, 500), np.float32), np.ones((500, 100), np.float32)),
                          np.full((100, 100), 500, np.float32))
    assert small_parts.parts_by_caller + small_parts.parts_by_workers == 2
    small_parts.close()
    products.close()
    products.close()                             # idempotent
    assert np.array_equal(products.matmul(big_a, big_b), np.full((128, 300), 784, np.float32))
    assert products.parts_by_caller + products.parts_by_workers == parts  # closed: not split
    with pytest.raises(ValueError, match="at least 2"):
        SplitProducts(1)


def test_a_kind_whose_parts_round_otherwise_is_not_split(monkeypatch):
    """As OpenBLAS's Haswell kernels (AMD Zen's) do for the engine's shapes: a block of rows or
    columns on one thread does not give those entries of the whole product. The check then
    keeps the kind whole, so the thread count never changes the numbers."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((128, 784)).astype(np.float32)
    w = rng.standard_normal((784, 300)).astype(np.float32)

    def rounds_parts_otherwise(a, b, out=None):
        result = np.matmul(a, b, out=out)
        if a.shape[0] < x.shape[0] or b.shape[1] < w.shape[1]:   # a part: its sums blocked another way
            result += np.float32(1e-3)
        return result

    monkeypatch.setattr(threads_module, "_part_product", rounds_parts_otherwise)
    products = SplitProducts(2, min_work=0, blas_work=None, record=BlasRecord())
    try:
        assert np.array_equal(products.matmul(x, w), np.matmul(x, w))
        assert products.parts_by_caller + products.parts_by_workers == 0
        assert list(products.record.splits.values()) == [False]       # checked once, and refused
        products.matmul(x, w)
        assert products.parts_by_caller + products.parts_by_workers == 0 and len(products.record.splits) == 1
    finally:
        products.close()
    monkeypatch.setattr(threads_module, "_part_product", lambda a, b, out=None: np.matmul(a, b, out=out))
    exact = SplitProducts(2, min_work=0, blas_work=None, record=BlasRecord())
    try:   # parts that give the whole product's entries: split, with the same numbers
        assert np.array_equal(exact.matmul(x, w), np.matmul(x, w))
        split = exact.parts_by_caller + exact.parts_by_workers > 0
        assert split == list(exact.record.splits.values())[0]         # as this machine's BLAS does
    finally:
        exact.close()


def test_a_kind_refused_by_every_form_skips_the_checks_after_its_first_product(monkeypatch):
    """Where BLAS's threads give another rounding and the parts too (OpenBLAS's Haswell kernels,
    for the engine's shapes), every product stayed whole after 10–30 µs of checks' bookkeeping:
    a kind refused by both checks is known to stay whole, and its later products go straight
    to one thread. A kind whose BLAS form exists keeps going to BLAS's threads."""
    looked: list[str] = []
    real_form, real_splits = SplitProducts._blas_form, SplitProducts._splits_exactly

    def form(self, a, b, out=None):
        looked.append("form")
        return real_form(self, a, b, out)

    def splits(self, *args):
        looked.append("split")
        return real_splits(self, *args)

    monkeypatch.setattr(SplitProducts, "_blas_form", form)
    monkeypatch.setattr(SplitProducts, "_splits_exactly", splits)
    monkeypatch.setattr(threads_module, "usable_cores", lambda: 2)
    rng = np.random.default_rng(3)
    x, w = small_integers((128, 784), rng), small_integers((784, 300), rng)
    for found_cut, expected in ((None, ["form", "split"]), (0, ["form"] * 4)):
        monkeypatch.setattr(SplitProducts, "_find_cut", staticmethod(lambda a, b, one, cut=found_cut: cut))
        monkeypatch.setattr(SplitProducts, "_find_block", lambda self, a, b, one: None)
        monkeypatch.setattr(threads_module, "_part_product",    # parts that round otherwise: refused
                            lambda a, b, out=None: np.matmul(a, b, out=out) + np.float32(0.5))
        products = SplitProducts(2, min_work=0, blas_work=1_000_000, record=BlasRecord())
        try:
            with limit_blas_threads(1):
                for _ in range(4):
                    assert np.array_equal(products.matmul(x, w), np.matmul(x, w))
            assert looked == expected
            assert products.products_on_blas_threads == (0 if found_cut is None else 4)
            assert products.parts_by_caller + products.parts_by_workers == 0
        finally:
            products.close()
        looked.clear()


def test_a_kind_is_checked_once_and_its_later_products_draw_no_random_operands(monkeypatch):
    """Drawing a 128 × 784 and a 784 × 300 random operand costs more than the product: once per
    kind, not per product (a refactoring that drew them every time made a two-thread step 5.6x
    slower)."""
    drawn = []
    real = threads_module._random_like

    def counted(*args, **kwargs):
        drawn.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(threads_module, "_random_like", counted)
    monkeypatch.setattr(threads_module, "usable_cores", lambda: 2)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((128, 784)).astype(np.float32)
    w = rng.standard_normal((784, 300)).astype(np.float32)
    for blas_work in (None, 1_000_000):       # the split's check, then BLAS's threads'
        products = SplitProducts(2, min_work=0, blas_work=blas_work, record=BlasRecord())
        try:
            with limit_blas_threads(1):   # as a trainer's products run: its BLAS on one thread
                products.matmul(x, w)
                first = len(drawn)
                assert first >= 2
                for _ in range(3):
                    assert np.array_equal(products.matmul(x, w), np.matmul(x, w))
            assert len(drawn) == first
        finally:
            products.close()
        drawn.clear()


class HeldUp:
    """Stands in the worker's queue in front of a product: a worker busy elsewhere."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def work(self) -> int:
        self.release.wait(10)
        return 0


def test_parts_no_worker_took_are_done_by_the_caller(exact_checks):
    products = SplitProducts(2, blas_work=None, record=BlasRecord())
    held = HeldUp()
    products._inbox.put(held)
    try:
        a = np.arange(128 * 784, dtype=np.float32).reshape(128, 784) % 7
        b = np.ones((784, 300), np.float32)
        with limit_blas_threads(1):
            assert np.array_equal(products.matmul(a, b), a @ b)
        assert (products.parts_by_caller, products.parts_by_workers) == (4, 0)
    finally:
        held.release.set()
        products.close()


class InWorkers(np.ndarray):
    """An operand whose products first run ``in_worker()`` on any thread but the test's (a worker
    the system paused, a worker that fails). The test's thread is slowed on its first part, so
    that a worker has woken and taken a part by the time it is done."""

    in_worker: Callable[[], None]
    first_part_done: bool

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if threading.current_thread() is threading.main_thread():
            if not InWorkers.first_part_done:
                InWorkers.first_part_done = True
                time.sleep(0.05)
        else:
            InWorkers.in_worker()
        inputs = tuple(np.asarray(x) for x in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(np.asarray(x) for x in kwargs["out"])
        return getattr(ufunc, method)(*inputs, **kwargs)


def operands(shape: tuple[int, int, int], in_worker: Callable[[], None]) -> tuple[np.ndarray, ...]:
    """(a, b, a @ b on one BLAS thread, a and b as ``InWorkers`` running ``in_worker``)."""
    rows, inner, columns = shape
    rng = np.random.default_rng(3)
    a, b = small_integers((rows, inner), rng), small_integers((inner, columns), rng)
    with limit_blas_threads(1):
        whole = a @ b
    InWorkers.in_worker, InWorkers.first_part_done = staticmethod(in_worker), False
    return a, b, whole, a.view(InWorkers), b.view(InWorkers)


@pytest.mark.parametrize("shape", [(128, 784, 300), (784, 128, 300)], ids=["by columns", "by rows"])
def test_a_part_a_paused_worker_holds_is_computed_by_the_caller_and_never_written_later(shape, exact_checks):
    resume = threading.Event()
    _, _, whole, paused_a, paused_b = operands(shape, lambda: resume.wait(20))
    products = SplitProducts(2, blas_work=None, record=BlasRecord())
    try:
        with limit_blas_threads(1):
            start = time.perf_counter()
            result = np.zeros(whole.shape, np.float32)
            products.matmul(paused_a, paused_b, out=result)
            waited = time.perf_counter() - start
        assert np.array_equal(result, whole)
        assert products.parts_taken_over >= 1 and waited < 10       # the worker is still paused
        result += 1.0                                  # the caller goes on with the result (z += b)
        resume.set()
    finally:
        resume.set()
        products.close()                               # the worker has finished its part and ended
    assert products.parts_by_workers == 0              # its copy came second and was dropped
    assert np.array_equal(result, whole + 1.0)


def wide(threads: int, tmp_path) -> dict:
    rng = np.random.default_rng(5)
    X = rng.standard_normal((400, 784)).astype(np.float32)
    np.savez(tmp_path / "wide.npz", X=X, y=(X[:, 0] > 0).astype(np.int64))
    return {"seed": 1, "data": {"source": "npz", "path": str(tmp_path / "wide.npz"), "validation_split": 0.2},
            "model": {"layers": [{"units": 300, "init": "he_normal", "batch_norm": "before_activation",
                                  "dropout": 0.1},
                                 {"units": 100, "init": "he_normal"}]},
            "optimizer": {"name": "adam", "learning_rate": 0.001},
            "training": {"epochs": 2, "batch_size": 128, "blas_threads": threads}}


def test_the_thread_count_changes_the_speed_not_the_numbers(tmp_path):
    runs = []
    for threads in (1, 2, 3):
        trainer = Trainer(parse_experiment(wide(threads, tmp_path)))
        assert largest_product(trainer._widths, trainer.batch_size) >= PARALLEL_WORK   # the products split
        seen: list[list[bool]] = []

        def split_now(kind, info, t=trainer, seen=seen):
            if kind == "epoch":
                seen.append([d.products is not None
                             for d in (*(layer.dense for layer in t.network.layers), t.network.output)])

        trainer.fit(observer=split_now)
        assert seen and all(all(flags) == (threads > 1) for flags in seen)
        assert threads == 1 or trainer.network.layers[0].dense.products is None   # closed after fit
        assert all(d.products is None for d in (*(layer.dense for layer in trainer.network.layers),
                                                 trainer.network.output))    # only while it trains
        runs.append(trainer.state_dict())
    (arrays, state), *others = runs
    for other_arrays, other_state in others:
        assert other_state["step"] == state["step"] and other_state["events"] == state["events"]
        assert sorted(other_arrays) == sorted(arrays)
        for key, value in arrays.items():
            if key != "history/seconds":
                assert np.array_equal(value, other_arrays[key], equal_nan=value.dtype.kind == "f"), key


def test_a_part_that_fails_in_a_worker_is_computed_by_the_caller_where_its_errors_are_raised(exact_checks):
    def fail() -> None:
        raise FloatingPointError("overflow in a worker's part")

    _, _, whole, a, b = operands((128, 784, 300), fail)
    products = SplitProducts(2, blas_work=None, record=BlasRecord())
    try:
        with limit_blas_threads(1):
            assert np.array_equal(products.matmul(a, b), whole)      # the caller did the failed part
        assert products.parts_by_workers == 0 and products.parts_taken_over >= 1
        # The caller's own error is raised to the caller, and its error handling applies in the
        # workers: a worker that meets the overflow raises too, and the caller meets it again.
        big = np.full((128, 784), 3e38, np.float32).view(InWorkers)
        InWorkers.first_part_done = False
        InWorkers.in_worker = staticmethod(lambda: np.float32(3e38) * np.float32(10))
        with np.errstate(over="raise"), pytest.raises(FloatingPointError):
            products.matmul(big, b)
        seen: list[str] = []
        InWorkers.first_part_done = False
        InWorkers.in_worker = staticmethod(lambda: seen.append(np.geterr()["over"]))
        with np.errstate(over="raise"), limit_blas_threads(1):
            assert np.array_equal(products.matmul(a, b), whole)
        assert seen and set(seen) == {"raise"}
    finally:
        products.close()


@pytest.mark.parametrize(("usable", "reserved", "want"), [
    ({0, 1}, 1, ({1}, {0})),
    (range(8), 1, ({7}, set(range(7)))),
    ({2, 5, 9}, 1, ({9}, {2, 5})),
    (range(8), 2, ({6, 7}, set(range(6)))),
    ({0}, 1, None),            # training would have no core
    ({0, 1}, 0, None),         # the window keeps none
    ((), 1, None),             # the system does not say
])
def test_the_window_keeps_the_last_cores_and_training_gets_the_others(usable, reserved, want):
    split = split_cores(usable, reserved)
    assert split == (None if want is None else (frozenset(want[0]), frozenset(want[1])))


def test_a_kind_is_judged_by_its_median_so_a_few_paused_products_do_not_rest_a_kind_that_gains(monkeypatch):
    products = four_stretches_with_one_in_paused(monkeypatch, 8)
    # The mean, 1.06 ms, is above BLAS_GAIN × 1 ms and below a stall's; the median is 0.5 ms.
    assert BLAS_GAIN * 0.001 < (7 * 0.0005 + 0.005) / 8 <= (1 + LOST_SHARE) * 0.001
    assert products.record.kind_resting_until == {} and products.record.resting_until == 0.0
    assert products.products_on_blas_threads == 4 * BLAS_WATCH
