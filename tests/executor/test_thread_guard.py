"""Threads a task leaves running are ended after it, in both executors (given / when / then).

The threads of these tests loop until the test releases them: a killable one
returns on SystemExit, an unkillable one catches it and goes on. Every thread a
test starts is released and joined when the test ends.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from sergeant import Task
from sergeant.loop.summary import LoopEnd
from sergeant.loop.thread_guard import unkillable_threads
from sergeant.supervisor.child import Reporter, run_loop

from .conftest import REPO, Build, ConfiguredWorker, wait_until


class Leftovers:
    """Threads started by tests, all ended by :meth:`release`."""

    def __init__(self) -> None:
        self._released = threading.Event()
        self._children_started = threading.Semaphore(0)
        self.threads: dict[str, threading.Thread] = {}
        self.caught: list[str] = []  # names of the threads that caught SystemExit

    def start(self, kind: str, name: str) -> threading.Thread:
        """Start a thread: 'killable', 'unkillable' or 'parent' (killable, starts '<name>-child')."""
        targets: dict[str, Callable[[str], None]] = {
            'killable': self._killable,
            'unkillable': self._unkillable,
            'parent': self._parent,
        }
        thread = threading.Thread(target=targets[kind], args=(name,), name=name)
        self.threads[name] = thread
        thread.start()
        if kind == 'parent':
            # SystemExit landing in the parent while it starts its child would spoil the test
            self._children_started.acquire()
        return thread

    def _killable(self, name: str) -> None:
        try:
            while not self._released.is_set():
                time.sleep(0.02)
        except SystemExit:
            self.caught.append(name)

    def _unkillable(self, name: str) -> None:
        while True:
            # the inner loop keeps every point where SystemExit can land inside the try
            try:
                while not self._released.is_set():
                    time.sleep(0.02)
                return
            except SystemExit:
                self.caught.append(name)

    def _parent(self, name: str) -> None:
        self.start('killable', f'{name}-child')
        self._children_started.release()
        self._killable(name)

    def alive(self) -> set[str]:
        return {name for name, thread in self.threads.items() if thread.is_alive()}

    def release(self) -> None:
        self._released.set()
        for thread in self.threads.values():
            thread.join(10)


@pytest.fixture
def leftovers() -> Iterator[Leftovers]:
    threads = Leftovers()
    yield threads
    threads.release()


class Spawner(ConfiguredWorker):
    """Starts the threads listed in a task's ``start`` ((kind, name) pairs), then ends as ``then`` says."""

    leftovers: Leftovers

    def work(self, task: Task) -> Any:
        for kind, name in task.kwargs.get('start', []):
            self.leftovers.start(kind, name)
        self.calls.append(('work', task.kwargs['n']))
        then = task.kwargs.get('then')
        if then == 'fail':
            raise ValueError('failed on purpose')
        if then == 'respawn':
            self.respawn()
        if then == 'stop':
            self.stop()
        return task.kwargs['n']


def spawner(build_worker: Build, leftovers: Leftovers, **fields: Any) -> Spawner:
    worker: Spawner = build_worker(Spawner, **fields)
    worker.leftovers = leftovers
    return worker


@pytest.fixture
def reporter() -> Iterator[Reporter]:
    read_fd, write_fd = os.pipe()
    yield Reporter(write_fd)
    os.close(read_fd)
    os.close(write_fd)


@pytest.mark.parametrize('threads', [1, 2])
def test_unkillable_thread_ends_the_loop_with_a_respawn_naming_it(
    build_worker: Build, leftovers: Leftovers, reporter: Reporter, threads: int
) -> None:
    # given a task that starts a killable and an unkillable thread, and two more tasks
    worker = spawner(build_worker, leftovers, number_of_threads=threads)
    worker.push_tasks(
        [{'n': 0, 'start': [('killable', 'KillableThread'), ('unkillable', 'UnKillableThread')]}]
    )
    worker.push_tasks([{'n': 1}, {'n': 2}])

    # when the worker runs, as a supervised worker does
    summary = run_loop(worker, reporter, report_metrics=False)

    # then SystemExit reached both threads, the killable one ended and the other is reported by name
    assert sorted(leftovers.caught) == ['KillableThread', 'UnKillableThread']
    assert leftovers.alive() == {'UnKillableThread'}
    assert summary['unkillable_threads'] == ['UnKillableThread']
    assert unkillable_threads(worker) == ['UnKillableThread']
    # the loop ended as a respawn: the task that left the threads counts as the success it was,
    # and the tasks not run were handed back rather than lost
    assert summary['reason'] is LoopEnd.RESPAWN
    assert summary['respawn'] is True
    assert 0 in worker.events('work')
    ran = summary['tasks']['success']
    assert ran == len(worker.events('work'))
    assert ran + worker.number_of_enqueued_tasks() == 3
    if threads == 1:
        assert ran == 1  # one thread: nothing ran after that task
    assert worker.broker.connector.in_flight('tasks') == 0


@pytest.mark.parametrize('metered', [False, True], ids=['bare', 'metered'])
@pytest.mark.parametrize('threads', [1, 2])
@pytest.mark.parametrize('then', ['succeed', 'fail', 'respawn', 'stop'])
def test_threads_are_ended_whatever_the_outcome(
    build_worker: Build, leftovers: Leftovers, threads: int, then: str, metered: bool
) -> None:
    # given a task that starts a thread, which starts one of its own, and then ends as `then` says
    # (metered: queue waits are timed, which takes the serial executor's general loop)
    worker = spawner(build_worker, leftovers, number_of_threads=threads, max_tasks_per_run=1)
    if metered:
        worker.enable_task_metrics()
    worker.push_task({'n': 0, 'start': [('parent', 'Parent')], 'then': then})

    # when the worker runs it
    summary = worker.work_loop()

    # then both threads were ended, and the loop ended as the task asked (no respawn of the guard's)
    assert sorted(leftovers.caught) == ['Parent', 'Parent-child']
    assert leftovers.alive() == set()
    assert unkillable_threads(worker) == []
    ends = {'succeed': LoopEnd.MAX_TASKS_PER_RUN, 'fail': LoopEnd.MAX_TASKS_PER_RUN}
    assert summary['reason'] is ends.get(then, LoopEnd.RESPAWN if then == 'respawn' else LoopEnd.STOP)


@pytest.mark.parametrize('threads', [1, 2])
def test_threads_started_in_initialize_are_left_alone(
    build_worker: Build, leftovers: Leftovers, threads: int
) -> None:
    # given a worker whose initialize starts a thread, and a task that starts one too
    class Initializing(Spawner):
        def initialize(self) -> None:
            self.leftovers.start('killable', 'FromInitialize')

    worker: Initializing = build_worker(Initializing, number_of_threads=threads, max_tasks_per_run=2)
    worker.leftovers = leftovers
    worker.push_tasks([{'n': 0, 'start': [('killable', 'FromTask')]}, {'n': 1}])

    # when the worker runs its tasks
    summary = worker.work_loop()

    # then only the task's thread was ended
    assert leftovers.caught == ['FromTask']
    assert leftovers.alive() == {'FromInitialize'}
    assert summary['reason'] is LoopEnd.MAX_TASKS_PER_RUN


def test_the_end_of_a_task_leaves_the_threads_of_a_task_still_running_alone(
    build_worker: Build, leftovers: Leftovers
) -> None:
    # given two threads: a long task that starts a thread, and a short one that starts its own
    class Siblings(Spawner):
        def work(self, task: Task) -> Any:
            super().work(task)
            if task.kwargs['n'] == 'long':
                # still running once the short task's thread was ended: is the long task's one alive?
                short_ended = wait_until(lambda: 'Short' in self.leftovers.caught, 30)
                self.calls.append(('seen', (short_ended, self.leftovers.threads['Long'].is_alive())))

    worker: Siblings = build_worker(Siblings, number_of_threads=2, max_tasks_per_run=2)
    worker.leftovers = leftovers
    worker.push_tasks(
        [{'n': 'long', 'start': [('killable', 'Long')]}, {'n': 'short', 'start': [('killable', 'Short')]}]
    )

    # when both run side by side
    summary = worker.work_loop()

    # then the short task's end ended its thread only; the long task's thread ended with that task
    assert worker.events('seen') == [(True, True)]
    assert sorted(leftovers.caught) == ['Long', 'Short']
    assert leftovers.alive() == set()
    assert summary['reason'] is LoopEnd.MAX_TASKS_PER_RUN


@pytest.mark.parametrize('threads', [1, 2])
def test_guard_switched_off_leaves_threads_running(
    build_worker: Build, leftovers: Leftovers, threads: int
) -> None:
    # given a worker with stop_task_threads off and a task that leaves two threads running
    worker = spawner(
        build_worker, leftovers, number_of_threads=threads, max_tasks_per_run=2, stop_task_threads=False
    )
    worker.push_tasks(
        [{'n': 0, 'start': [('killable', 'KillableThread'), ('unkillable', 'UnKillableThread')]}, {'n': 1}]
    )

    # when the worker runs its tasks
    summary = worker.work_loop()

    # then nothing was raised in the threads, and the loop went on to its end
    assert leftovers.caught == []
    assert leftovers.alive() == {'KillableThread', 'UnKillableThread'}
    assert summary['reason'] is LoopEnd.MAX_TASKS_PER_RUN
    assert summary['tasks']['success'] == 2
    assert unkillable_threads(worker) == []


@pytest.mark.parametrize('threads', [1, 2])
def test_threads_of_a_shared_thread_pool_are_left_alone(build_worker: Build, threads: int) -> None:
    # given a thread pool made before the tasks, whose threads the tasks start as they use it
    class Pooled(ConfiguredWorker):
        def initialize(self) -> None:
            self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix='shared')

        def work(self, task: Task) -> Any:
            return self.pool.submit(lambda: task.kwargs['n']).result(timeout=10)

    worker: Pooled = build_worker(Pooled, number_of_threads=threads, max_tasks_per_run=3)
    worker.push_tasks([{'n': n} for n in range(3)])

    try:
        # when the worker runs its tasks
        summary = worker.work_loop()

        # then the pool's threads still serve it afterwards
        assert summary['reason'] is LoopEnd.MAX_TASKS_PER_RUN
        assert summary['tasks']['success'] == 3
        assert worker.pool.submit(lambda: 'still working').result(timeout=10) == 'still working'
    finally:
        worker.pool.shutdown()


@pytest.mark.parametrize('threads', [1, 2])
def test_the_feeder_thread_of_a_shared_multiprocessing_queue_is_left_alone(
    tmp_path: Path, threads: int
) -> None:
    # given a worker process whose tasks put into a multiprocessing queue made before them
    broker = str(tmp_path / 'broker.sqlite3')
    command = [sys.executable, '-m', 'tests.workers.shared_queue', broker, str(threads)]

    # when it runs them, then puts once more (a broken queue would hang it: the timeout fails the test)
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)

    # then the loop went to its end and the queue carried every item
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {'reason': 'max_tasks_per_run', 'items': [0, 1, 2]}


@pytest.mark.parametrize('threads', [1, 2])
def test_a_task_with_unkillable_threads_is_settled_with_its_own_outcome(
    build_worker: Build, leftovers: Leftovers, threads: int
) -> None:
    # given a task that leaves an unkillable thread and then asks for a retry it has no more of
    class Retrying(Spawner):
        def work(self, task: Task) -> Any:
            super().work(task)
            self.retry(task)

    worker: Retrying = build_worker(Retrying, number_of_threads=threads, max_retries=1)
    worker.leftovers = leftovers
    worker.broker.push_tasks('tasks', [Task(kwargs={'n': 0, 'start': [('unkillable', 'U')]}, run_count=1)])

    # when the worker runs it
    summary = worker.work_loop()

    # then the worker is to be replaced, and the task was dead-lettered as its max_retries outcome says
    assert summary['reason'] is LoopEnd.RESPAWN
    assert unkillable_threads(worker) == ['U']
    assert summary['tasks']['max_retries'] == 1
    assert worker.number_of_dead_letter_tasks() == 1
    assert worker.number_of_enqueued_tasks(include_delayed=True) == 0
