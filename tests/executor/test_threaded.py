"""The threaded executor, in process (given / when / then).

Its hard limit, which kills the process, is tested on worker processes in
``test_hard_limit.py``; here it is far away (``SAFE_GRACE_PERIOD``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from sergeant import Task

from .conftest import Build, ConfiguredWorker, child_pids, soft_timeout, wait_until


def nap(seconds: float) -> None:
    """Sleep in small steps: an exception from a killer thread lands only between bytecodes."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.02)


class Threads(ConfiguredWorker):
    """Naps ``seconds``, or stops/respawns the worker; records what ran where and when."""

    def __init__(self) -> None:
        super().__init__()
        self.guard = threading.Lock()
        self.running = 0
        self.peak = 0

    def work(self, task: Task) -> Any:
        n = task.kwargs['n']
        with self.guard:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.calls.append(('work', (n, threading.get_ident(), time.monotonic(), self.get_trace_id())))
            self.calls.append(('children', frozenset(child_pids())))
        try:
            nap(task.kwargs.get('seconds', 0))
            if task.kwargs.get('action') == 'stop':
                self.stop()
            if task.kwargs.get('action') == 'respawn':
                self.respawn()
            with self.guard:
                self.calls.append(('trace_id_after_work', (n, self.get_trace_id())))
        finally:
            with self.guard:
                self.running -= 1
                self.calls.append(('work_ended', time.monotonic()))
        return n

    def post_work(self, task: Task, success: bool, exception: BaseException | None) -> None:
        nap(task.kwargs.get('post_work_seconds', 0))

    def on_success(self, task: Task, returned_value: Any) -> None:
        with self.guard:
            self.calls.append(('on_success', returned_value))

    def on_timeout(self, task: Task) -> None:
        with self.guard:
            self.calls.append(('on_timeout', (task.kwargs['n'], threading.get_ident())))


def test_tasks_run_concurrently(build_worker: Build) -> None:
    # given four threads and eight tasks of 0.3 s
    worker = build_worker(Threads, number_of_threads=4, max_tasks_per_run=8)
    worker.push_tasks([{'n': n, 'seconds': 0.3} for n in range(8)])

    # when the worker runs them
    worker.work_loop()

    # then four ran at a time, taking well under the 2.4 s they need one after another
    assert sorted(worker.events('on_success')) == list(range(8))
    assert worker.peak == 4
    first_start = min(started for _, _, started, _ in worker.events('work'))
    assert max(worker.events('work_ended')) - first_start < 1.8
    assert len({thread for _, thread, _, _ in worker.events('work')}) == 4


def test_each_thread_sees_its_own_tasks_trace_id(build_worker: Build) -> None:
    # given tasks with distinct trace ids, run four at a time
    worker = build_worker(Threads, number_of_threads=4, max_tasks_per_run=8)
    for n in range(8):
        worker.push_task({'n': n, 'seconds': 0.2}, trace_id=f'trace-{n}')

    # when the worker runs them
    worker.work_loop()

    # then get_trace_id() inside work returned the task's own trace id, before and after napping
    assert sorted((n, trace_id) for n, _, _, trace_id in worker.events('work')) == [
        (n, f'trace-{n}') for n in range(8)
    ]
    assert sorted(worker.events('trace_id_after_work')) == [(n, f'trace-{n}') for n in range(8)]


def test_timeout_is_raised_in_the_slow_tasks_thread_only(build_worker: Build) -> None:
    # given two threads, a task that would take a minute and quick tasks
    worker = build_worker(Threads, number_of_threads=2, max_tasks_per_run=7, timeouts=soft_timeout(0.5))
    worker.push_tasks([{'n': 'slow', 'seconds': 60}] + [{'n': n, 'seconds': 0.15} for n in range(6)])

    # when the worker runs them
    started = time.monotonic()
    summary = worker.work_loop()

    # then only the slow task timed out, in its own thread, while the others succeeded
    assert time.monotonic() - started < 15
    slow_thread = next(thread for n, thread, _, _ in worker.events('work') if n == 'slow')
    assert worker.events('on_timeout') == [('slow', slow_thread)]
    assert sorted(worker.events('on_success')) == list(range(6))
    assert summary['executor_exception'] is None


def test_timeout_is_not_raised_outside_work(build_worker: Build) -> None:
    # given quick work() calls whose post_work runs past the timeout
    worker = build_worker(Threads, number_of_threads=2, max_tasks_per_run=2, timeouts=soft_timeout(0.3))
    worker.push_tasks([{'n': n, 'post_work_seconds': 1.0} for n in range(2)])

    # when the worker runs them
    summary = worker.work_loop()

    # then they succeeded and nothing escaped the executor
    assert sorted(worker.events('on_success')) == [0, 1]
    assert summary['tasks']['timeout'] == 0
    assert summary['executor_exception'] is None


@pytest.mark.parametrize('action', ['stop', 'respawn'])
def test_stop_or_respawn_from_one_task_ends_the_executor(build_worker: Build, action: str) -> None:
    # given three threads, a task that stops the worker and twenty slower tasks, prefetched five at a time
    worker = build_worker(Threads, number_of_threads=3, tasks_per_transaction=5)
    worker.push_tasks([{'n': 'signal', 'action': action, 'seconds': 0.1}])
    worker.push_tasks([{'n': n, 'seconds': 0.3} for n in range(20)])

    # when the worker runs them
    started = time.monotonic()
    summary = worker.work_loop()

    # then the loop ended soon, saying why, and every task that did not run is back in the queue
    assert time.monotonic() - started < 10
    assert summary[action] is True
    ran = len(worker.events('work'))
    assert ran < 10
    assert worker.number_of_enqueued_tasks() == 21 - ran
    assert worker.broker.connector.in_flight('tasks') == 0


def test_stop_ends_the_executor_while_other_threads_wait_for_tasks(build_worker: Build) -> None:
    # given three threads and one task, which stops the worker after the queue ran dry
    worker = build_worker(Threads, number_of_threads=3)
    worker.push_task({'n': 'signal', 'action': 'stop', 'seconds': 0.5})

    # when the worker runs it
    started = time.monotonic()
    summary = worker.work_loop()

    # then the threads waiting for tasks gave up, and the loop ended
    assert summary['stop'] is True
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(('timeouts', 'killers'), [(soft_timeout(5), 1), (soft_timeout(0), 0)])
def test_one_killer_process_with_a_timeout_and_none_left_after(
    build_worker: Build, timeouts: Any, killers: int
) -> None:
    # given a threaded worker, with or without a timeout
    children_before = child_pids()
    worker = build_worker(Threads, number_of_threads=3, max_tasks_per_run=6, timeouts=timeouts)
    worker.push_tasks([{'n': n, 'seconds': 0.1} for n in range(6)])

    # when it runs its tasks
    worker.work_loop()

    # then one killer process watched all of them (or none without a timeout), and none is left
    [children] = set(worker.events('children'))
    assert len(children - children_before) == killers
    assert wait_until(lambda: child_pids() == children_before, timeout=1)
