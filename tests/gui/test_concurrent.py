"""The one worker idiom of the GUI (workbench.concurrent.JobRunner): newest job wins, cancel by
flag, progress coalesced to a fixed rate, errors as messages, signals on the GUI thread, and a
clean shutdown with a job still running. Every runner a test makes is checked to have ended."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QObject, QThread

from workbench.concurrent import MAX_PROGRESS_PER_SECOND, JobRunner, ProgressGate, shutdown_all

from .monitor_support import make_window_fixture  # noqa: F401 (fixture)


@pytest.fixture
def make_runner(qapp: Any) -> Iterator[Callable[..., JobRunner]]:
    """``make_runner(**kwargs)`` → a JobRunner; afterwards each is shut down and its thread ended."""
    runners: list[JobRunner] = []

    def make(**kwargs: Any) -> JobRunner:
        runner = JobRunner(name=f"test-{len(runners)}", **kwargs)
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.shutdown()
        assert runner.thread.isFinished()


def record(runner: JobRunner) -> dict[str, list[Any]]:
    """Everything the runner emits, with the thread each signal arrived on."""
    seen: dict[str, list[Any]] = {"progress": [], "finished": [], "failed": [], "busy": [], "threads": []}

    def keep(name: str) -> Callable[[Any], None]:
        def slot(value: Any) -> None:
            seen[name].append(value)
            seen["threads"].append(QThread.currentThread())
        return slot

    runner.progress.connect(keep("progress"))
    runner.finished.connect(keep("finished"))
    runner.failed.connect(keep("failed"))
    runner.busy_changed.connect(keep("busy"))
    return seen


def held_job(name: str, ran: list[str], gate: threading.Event) -> Callable[[Any, Any], str]:
    """A job that notes it started, reports progress, then waits for ``gate`` before returning."""
    def job(progress: Any, should_stop: Any) -> str:
        ran.append(name)
        progress(f"{name} started")
        assert gate.wait(10)
        progress(f"{name} ending")
        return name
    return job


def test_newest_job_wins_and_the_overtaken_outcome_is_dropped(make_runner: Any, qtbot: Any) -> None:
    runner = make_runner()
    seen = record(runner)
    ran: list[str] = []
    gate_a, gate_b, gate_c = threading.Event(), threading.Event(), threading.Event()
    runner.submit(held_job("a", ran, gate_a))
    qtbot.waitUntil(lambda: ran == ["a"] and seen["progress"] == ["a started"], timeout=5_000)
    runner.submit(held_job("b", ran, gate_b))       # waits behind a …
    runner.submit(held_job("c", ran, gate_c))       # … and is replaced by c before it ever runs
    assert runner.busy
    gate_c.set()
    with qtbot.waitSignal(runner.finished, timeout=5_000) as blocker:
        gate_a.set()                                # a ends: overtaken, so c runs next
    assert blocker.args == ["c"]
    assert ran == ["a", "c"]                        # b was never run
    assert seen["finished"] == ["c"]                # a's result was dropped …
    assert "a ending" not in seen["progress"]       # … and so was its last progress
    assert seen["progress"][-2:] == ["c started", "c ending"]
    assert seen["busy"] == [True, False] and not runner.busy
    gate_b.set()


def test_a_job_submitted_while_idle_runs_at_once_each_time(make_runner: Any, qtbot: Any) -> None:
    runner = make_runner()
    for value in range(3):
        with qtbot.waitSignal(runner.finished, timeout=5_000) as blocker:
            runner.submit(lambda progress, should_stop, v=value: v * v)
        assert blocker.args == [value * value]


def test_start_refuses_a_second_job(make_runner: Any, qtbot: Any) -> None:
    runner = make_runner()
    gate = threading.Event()
    ran: list[str] = []
    runner.start(held_job("sweep", ran, gate))
    with pytest.raises(RuntimeError, match="already running"):
        runner.start(held_job("other", ran, gate))
    with qtbot.waitSignal(runner.finished, timeout=5_000) as blocker:
        gate.set()
    assert blocker.args == ["sweep"] and ran == ["sweep"]


def test_cancel_is_a_flag_the_job_reads_and_its_result_still_arrives(make_runner: Any, qtbot: Any) -> None:
    runner = make_runner()
    seen = record(runner)
    checks = [0]

    def until_stopped(progress: Any, should_stop: Any) -> tuple[str, int]:
        while not should_stop():
            checks[0] += 1
            time.sleep(0.001)
        return "stopped", checks[0]

    ran: list[str] = []
    runner.submit(until_stopped)
    runner.submit(held_job("waiting", ran, threading.Event()))   # dropped by request_stop
    qtbot.waitUntil(lambda: checks[0] > 20, timeout=5_000)
    with qtbot.waitSignal(runner.finished, timeout=5_000) as blocker:
        runner.request_stop()
    reason, n = blocker.args[0]
    assert reason == "stopped" and n >= 20
    qtbot.wait(50)
    assert ran == [] and not runner.busy and seen["finished"] == [blocker.args[0]]
    # The flag is cleared for the next job.
    with qtbot.waitSignal(runner.finished, timeout=5_000) as blocker:
        runner.submit(lambda progress, should_stop: should_stop())
    assert blocker.args == [False]


def test_progress_gate_sends_at_most_rate_values_a_second_and_never_loses_the_last() -> None:
    now = [0.0]
    sent: list[tuple[float, int]] = []
    gate = ProgressGate(lambda info: sent.append((now[0], info)), rate=10, clock=lambda: now[0])
    for i in range(100):                         # one value every 10 ms for a second
        gate.offer(i)
        now[0] += 0.01
        gate.poll()
    gate.flush()
    times = [t for t, _ in sent]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert 10 <= len(sent) <= 12
    assert all(gap >= 0.1 - 1e-9 for gap in gaps[:-1])   # the flush at the end may come sooner
    values = [v for _, v in sent]
    assert values[0] == 0 and values[-1] == 99 and values == sorted(values)


def test_a_held_value_goes_out_at_the_next_check_once_the_interval_passed() -> None:
    now = [0.0]
    sent: list[int] = []
    gate = ProgressGate(sent.append, rate=10, clock=lambda: now[0])
    gate.offer(1)
    gate.offer(2)                                # held: 0 s after the first
    gate.poll()
    assert sent == [1]
    now[0] = 0.1
    gate.poll()                                  # should_stop() calls poll(): the held value goes
    assert sent == [1, 2]
    gate.flush()                                 # nothing held: nothing more
    assert sent == [1, 2]


def test_a_job_reporting_fast_reaches_the_gui_at_the_fixed_rate(make_runner: Any, qtbot: Any) -> None:
    runner = make_runner()
    seen = record(runner)
    duration = 0.5

    def chatty(progress: Any, should_stop: Any) -> int:
        t0, i = time.monotonic(), 0
        while time.monotonic() - t0 < duration:
            i += 1
            progress(i)
            time.sleep(0.0005)
        return i

    with qtbot.waitSignal(runner.finished, timeout=10_000) as blocker:
        runner.submit(chatty)
    sent = blocker.args[0]
    received = seen["progress"]
    assert MAX_PROGRESS_PER_SECOND <= 30          # no more often than the plots redraw
    assert sent > 200                                              # the job really was chatty
    assert len(received) <= duration * MAX_PROGRESS_PER_SECOND + 2   # … and the GUI heard a few
    assert len(received) >= 3
    assert received[-1] == sent and received == sorted(received)   # the last value always arrives


def test_a_held_value_reaches_the_gui_while_the_job_only_checks_should_stop(make_runner: Any,
                                                                             qtbot: Any) -> None:
    runner = make_runner()
    seen = record(runner)
    release = threading.Event()

    def quiet_after_two(progress: Any, should_stop: Any) -> str:
        progress(1)
        progress(2)                              # held back: too soon after 1
        while not release.is_set():
            should_stop()
            time.sleep(0.001)
        return "done"

    runner.submit(quiet_after_two)
    try:
        qtbot.waitUntil(lambda: seen["progress"] == [1, 2], timeout=5_000)   # before the job ends
    finally:
        release.set()
    with qtbot.waitSignal(runner.finished, timeout=5_000):
        pass
    assert seen["progress"] == [1, 2]


def test_signals_arrive_on_the_gui_thread_and_jobs_run_off_it(make_runner: Any, qtbot: Any) -> None:
    runner = make_runner()
    seen = record(runner)
    job_threads: list[Any] = []

    def job(progress: Any, should_stop: Any) -> None:
        job_threads.append(QThread.currentThread())
        progress(1)

    with qtbot.waitSignal(runner.finished, timeout=5_000):
        runner.submit(job)
    gui = QCoreApplication.instance().thread()
    assert job_threads == [runner.thread] and runner.thread != gui
    assert seen["threads"] and all(t == gui for t in seen["threads"])


def test_an_error_becomes_a_message_and_the_thread_keeps_serving(make_runner: Any, qtbot: Any) -> None:
    runner = make_runner()

    def broken(progress: Any, should_stop: Any) -> None:
        raise ValueError("bad value 42")

    with qtbot.waitSignal(runner.failed, timeout=5_000) as blocker:
        runner.submit(broken)
    message = blocker.args[0]
    assert message.startswith("ValueError: bad value 42") and "Traceback" in message and "broken" in message
    assert not runner.busy
    with qtbot.waitSignal(runner.finished, timeout=5_000) as blocker:
        runner.submit(lambda progress, should_stop: "still here")
    assert blocker.args == ["still here"]


def test_plain_errors_are_reported_by_their_message_alone(make_runner: Any, qtbot: Any) -> None:
    runner = make_runner(plain_errors=(FileNotFoundError,))

    def missing(progress: Any, should_stop: Any) -> None:
        raise FileNotFoundError("no such file: data.csv")

    def bug(progress: Any, should_stop: Any) -> None:
        raise KeyError("x")

    with qtbot.waitSignal(runner.failed, timeout=5_000) as blocker:
        runner.submit(missing)
    assert blocker.args == ["no such file: data.csv"]
    with qtbot.waitSignal(runner.failed, timeout=5_000) as blocker:
        runner.submit(bug)
    assert blocker.args[0].startswith("KeyError") and "Traceback" in blocker.args[0]


def test_shutdown_stops_a_running_job_ends_the_thread_and_silences_the_runner(make_runner: Any,
                                                                               qtbot: Any) -> None:
    runner = make_runner()
    seen = record(runner)
    started, ended = threading.Event(), threading.Event()

    def forever(progress: Any, should_stop: Any) -> str:
        started.set()
        while not should_stop():
            progress("working")
            time.sleep(0.001)
        ended.set()
        return "stopped"

    runner.submit(forever)
    assert started.wait(5)
    runner.shutdown()                               # returns only once the thread has ended
    assert ended.is_set() and runner.thread.isFinished()
    assert runner.closed and not runner.busy and runner.wait(0)
    before = {k: len(v) for k, v in seen.items()}
    qtbot.wait(50)                                  # queued signals from the job are delivered now …
    ran: list[str] = []
    runner.submit(held_job("late", ran, threading.Event()))
    qtbot.wait(50)
    assert {k: len(v) for k, v in seen.items()} == before   # … and dropped: nothing emitted after shutdown
    assert ran == [] and not runner.busy


def test_wait_returns_when_the_running_job_has_ended(make_runner: Any) -> None:
    runner = make_runner()
    gate = threading.Event()
    runner.submit(held_job("a", [], gate))
    assert not runner.wait(50)
    gate.set()
    assert runner.wait(5_000)


def test_shutdown_all_ends_every_runner_an_owner_holds(qapp: Any) -> None:
    owner = QObject()
    child = QObject(owner)
    runners = [JobRunner(owner, "one"), JobRunner(child, "two")]
    started = threading.Event()

    def until_stopped(progress: Any, should_stop: Any) -> None:
        started.set()
        while not should_stop():
            time.sleep(0.001)

    runners[1].submit(until_stopped)
    assert started.wait(5)
    shutdown_all(owner)
    assert all(r.closed and r.thread.isFinished() for r in runners)


def test_closing_the_main_window_ends_every_runner_it_owns(make_window: Any, qtbot: Any) -> None:
    """The window's runners (the data preview's, the Runs loader's) end with its close: a thread
    still running when Qt deletes the window would abort the process."""
    from workbench.editor.dataset_info import DataInfo
    from workbench.runs.loader import RunsLoader

    window = make_window()
    preview = window.findChild(DataInfo)
    qtbot.waitUntil(lambda: preview.facts.exact, timeout=10_000)      # the preview has loaded on its runner
    runners = window.findChildren(JobRunner)
    owners = {type(r.parent()) for r in runners}
    assert {DataInfo, RunsLoader} <= owners
    assert all(r.thread.isRunning() for r in runners)
    window.close()
    assert all(r.closed and r.thread.isFinished() for r in runners)
