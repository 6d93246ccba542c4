"""The killers' own guarantees, below the executors (given / when / then)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import types

from sergeant.interrupts import WorkerTimedout
from sergeant.killer import ProcessKiller, ThreadKiller, ThreadTimeLimit

from .conftest import HogWorkers, child_pids, is_gone, wait_until


def test_soft_signal_concerns_only_the_mark_it_was_sent_for() -> None:
    # given a killer process that signals after 0.2 s, and a handler that asks the slot
    verdicts: list[bool] = []
    signalled = threading.Event()

    def handler(signal_number: int, frame: types.FrameType | None) -> None:
        verdicts.append(slot.timed_out())
        signalled.set()

    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        with ProcessKiller(1, timeout=0.2, grace_period=600, soft_signal=signal.SIGUSR1) as killer:
            [slot] = killer.slots

            # when a task runs past the timeout
            slot.begin()
            assert signalled.wait(timeout=10)

            # then the slot says the signal is for it; once a new mark runs, it no longer is
            assert verdicts == [True]
            slot.begin()
            assert slot.timed_out() is False
            slot.end()
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_process_killer_ends_with_its_context() -> None:
    # given a running process killer
    children_before = child_pids()
    with ProcessKiller(2, timeout=60, grace_period=60) as killer:
        assert killer.pid in child_pids()

    # when its context ends, then its process has ended (and was reaped)
    assert child_pids() == children_before


def test_thread_killer_raises_in_the_thread_past_its_deadline_only() -> None:
    # given two threads under the same killer; one naps past the timeout, the other does not
    outcomes: dict[str, str] = {}

    def run(name: str, limit: ThreadTimeLimit, seconds: float) -> None:
        try:
            with limit:
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    time.sleep(0.01)
            outcomes[name] = 'finished'
        except WorkerTimedout:
            outcomes[name] = 'timed out'

    # when both run
    with ThreadKiller(timeout=0.3) as killer:
        threads = [
            threading.Thread(target=run, args=('slow', killer.time_limit(), 5.0)),
            threading.Thread(target=run, args=('quick', killer.time_limit(), 0.1)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)

    # then only the slow one timed out
    assert outcomes == {'slow': 'timed out', 'quick': 'finished'}


def test_a_timeout_injected_as_the_limit_is_left_never_lands_after_it() -> None:
    # given a thread about to leave its limit, past its deadline, while the guard is held
    guard = threading.Lock()
    limit = ThreadTimeLimit(guard, timeout=0.01, slot=None)
    inside, leave = threading.Event(), threading.Event()
    outcome: list[str] = []

    def run() -> None:
        try:
            with limit:
                inside.set()
                leave.wait()
        except WorkerTimedout:
            outcome.append('timed out inside the limit')
            return
        try:
            for _ in range(100_000):
                abs(-1)  # plenty of chances for a pending exception to land
            outcome.append('finished')
        except WorkerTimedout:
            outcome.append('timed out after the limit')

    thread = threading.Thread(target=run)
    thread.start()
    assert inside.wait(timeout=10)
    time.sleep(0.05)
    with guard:
        leave.set()
        assert wait_until(lambda: waits_in_exit(thread), timeout=10)

        # when the killer injects the timeout just then
        limit.expire(time.monotonic())

    # then the exception is withdrawn as the thread leaves the limit: the task finished
    thread.join(timeout=10)
    assert outcome == ['finished']


TRACED_TIMEOUTS = textwrap.dedent(
    """
    import sys, threading, time
    from sergeant.interrupts import WorkerTimedout
    from sergeant.killer import ThreadKiller

    def trace(frame, event, arg):
        return trace

    def run(limit, seconds, outcomes):
        try:
            with limit:
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    time.sleep(0.01)
            outcomes.append('finished')
        except WorkerTimedout:
            outcomes.append('timed out')
        outcomes.append(len(threading.enumerate()))  # more function calls after the limit

    sys.settrace(trace)
    threading.settrace(trace)
    outcomes = []
    with ThreadKiller(timeout=0.2) as killer:
        for seconds in (2.0, 0.05, 2.0):
            thread = threading.Thread(target=run, args=(killer.time_limit(), seconds, outcomes))
            thread.start()
            thread.join()
    print([outcome for outcome in outcomes if isinstance(outcome, str)])
    """
)


def test_timeouts_in_traced_threads_leave_the_process_running() -> None:
    # given threads under a trace function (as under coverage or a debugger), some timed out
    # when they go on calling functions after their limits
    result = subprocess.run(
        [sys.executable, '-c', TRACED_TIMEOUTS], capture_output=True, text=True, timeout=60, check=False
    )

    # then the process finishes (a stale "exception pending" signal made the next traced call
    # loop for ever on Python 3.11) with each timeout where it belongs
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['timed out', 'finished', 'timed out']"


def waits_in_exit(thread: threading.Thread) -> bool:
    assert thread.ident is not None
    frame = sys._current_frames().get(thread.ident)
    return frame is not None and frame.f_code is ThreadTimeLimit.__exit__.__code__


def test_hard_limit_kills_the_workers_children_too(hog_workers: HogWorkers) -> None:
    # given a task that starts a child process, then holds the GIL
    hog_workers.push(('parent', 'gil-with-child'))

    # when the worker runs it past its hard limit
    worker = hog_workers.start(threads=1, timeout=0.5, grace_period=0.5)
    assert worker.wait(timeout=60) == -signal.SIGKILL

    # then the task's child process was killed as well
    [child] = hog_workers.started_children()
    assert wait_until(lambda: is_gone(child), timeout=5)


def test_process_killer_stops_at_once_while_a_forked_process_holds_its_pipe() -> None:
    # given a running process killer, and a process forked from the worker meanwhile
    killer = ProcessKiller(1, timeout=60, grace_period=60)
    killer.start()
    forked = os.fork()
    if forked == 0:
        time.sleep(10)
        os._exit(0)
    try:
        # when the worker stops its killer
        started = time.monotonic()
        killer.stop()

        # then the killer exited at once, though its lifeline pipe is still open in the fork
        assert time.monotonic() - started < 2
    finally:
        os.kill(forked, signal.SIGKILL)
        os.waitpid(forked, 0)
