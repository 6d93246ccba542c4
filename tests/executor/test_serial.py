"""The serial executor's soft timeout, in process (given / when / then).

The hard limit, which kills the process, is tested on worker processes in
``test_hard_limit.py``; here it is far away (``SAFE_GRACE_PERIOD``).
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

from sergeant import Task, config

from .conftest import Build, ConfiguredWorker, child_pids, soft_timeout, wait_until


def nap(seconds: float) -> None:
    """Sleep in small steps: an exception from a killer thread lands only between bytecodes."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.02)


class Sleeper(ConfiguredWorker):
    """Sleeps ``seconds`` (in one call if ``blocking``; on the first run only if ``first_run_only``)."""

    def work(self, task: Task) -> Any:
        self.calls.append(('work', (task.kwargs['n'], task.run_count)))
        self.calls.append(('children', frozenset(child_pids())))
        if task.kwargs.get('blocking'):
            time.sleep(task.kwargs['seconds'])
        elif task.run_count == 0 or not task.kwargs.get('first_run_only'):
            nap(task.kwargs.get('seconds', 0))
        return task.kwargs['n']

    def post_work(self, task: Task, success: bool, exception: BaseException | None) -> None:
        nap(task.kwargs.get('post_work_seconds', 0))

    def on_success(self, task: Task, returned_value: Any) -> None:
        self.calls.append(('on_success', returned_value))

    def on_timeout(self, task: Task) -> None:
        self.calls.append(('on_timeout', task.kwargs['n']))
        if task.kwargs.get('retry'):
            self.retry(task)

    def on_retry(self, task: Task) -> None:
        self.calls.append(('on_retry', task.kwargs['n']))


def test_sleeping_task_times_out_and_the_next_tasks_run(build_worker: Build) -> None:
    # given a task that would sleep in one call for a minute, then two quick ones
    worker = build_worker(Sleeper, max_tasks_per_run=3, timeouts=soft_timeout(0.5))
    worker.push_tasks([{'n': 1, 'seconds': 60, 'blocking': True}, {'n': 2}, {'n': 3}])

    # when the worker runs them
    started = time.monotonic()
    summary = worker.work_loop()

    # then the first timed out after about half a second and the others succeeded
    assert time.monotonic() - started < 10
    assert worker.events('on_timeout') == [1]
    assert worker.events('on_success') == [2, 3]
    assert summary['tasks']['timeout'] == 1
    assert summary['executor_exception'] is None


def test_on_timeout_can_retry_the_task(build_worker: Build) -> None:
    # given a task that hangs on its first run only, and whose on_timeout retries it
    worker = build_worker(Sleeper, max_tasks_per_run=2, timeouts=soft_timeout(0.5))
    worker.push_task({'n': 1, 'seconds': 60, 'first_run_only': True, 'retry': True})

    # when the worker runs it twice
    worker.work_loop()

    # then the retry ran with run_count 1 and succeeded
    assert worker.events('work') == [(1, 0), (1, 1)]
    assert worker.events('on_timeout') == [1]
    assert worker.events('on_retry') == [1]
    assert worker.events('on_success') == [1]


def test_timeout_is_not_raised_outside_work(build_worker: Build) -> None:
    # given a quick work() whose post_work runs past the timeout
    worker = build_worker(Sleeper, max_tasks_per_run=2, timeouts=soft_timeout(0.3))
    worker.push_tasks([{'n': 1, 'post_work_seconds': 1.0}, {'n': 2}])
    handler_before = signal.getsignal(signal.SIGUSR1)

    # when the worker runs it
    summary = worker.work_loop()

    # then the task succeeded: the signal that came during post_work was ignored
    assert worker.events('on_success') == [1, 2]
    assert summary['tasks']['timeout'] == 0
    # and the worker's SIGUSR1 handler is back to what it was
    assert signal.getsignal(signal.SIGUSR1) == handler_before


def test_one_killer_process_per_worker_and_none_left_after(build_worker: Build) -> None:
    # given a worker with a timeout and three tasks
    children_before = child_pids()
    worker = build_worker(Sleeper, max_tasks_per_run=3, timeouts=soft_timeout(5))
    worker.push_tasks([{'n': 1}, {'n': 2}, {'n': 3}])

    # when it runs them
    worker.work_loop()

    # then one killer process watched all three tasks, and it has ended with the loop
    [killers] = set(worker.events('children'))
    assert len(killers - children_before) == 1
    assert wait_until(lambda: child_pids() == children_before, timeout=1)


def test_no_timeout_means_no_killer_process(build_worker: Build) -> None:
    # given a worker without a timeout
    children_before = child_pids()
    worker = build_worker(Sleeper, max_tasks_per_run=1, timeouts=config.Timeouts(timeout=0))
    worker.push_task({'n': 1})

    # when it runs a task
    worker.work_loop()

    # then no process watched it
    assert worker.events('children') == [frozenset(children_before)]


def test_outside_the_main_thread_a_killer_thread_raises_the_timeout(build_worker: Build) -> None:
    # given a serial worker whose loop runs in a thread, where signal handlers cannot run
    worker = build_worker(Sleeper, max_tasks_per_run=2, timeouts=soft_timeout(0.5))
    worker.push_tasks([{'n': 1, 'seconds': 60}, {'n': 2}])

    # when the loop runs there
    summaries: list[dict[str, Any]] = []
    loop = threading.Thread(target=lambda: summaries.append(worker.work_loop()))
    loop.start()
    loop.join(timeout=30)

    # then the first task timed out and the second succeeded
    assert not loop.is_alive()
    assert worker.events('on_timeout') == [1]
    assert worker.events('on_success') == [2]
