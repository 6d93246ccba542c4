"""Worker classes the supervisor programs name in ``--worker-module _supervised``.

They run in the supervisor's worker processes, which inherit the program's environment
(``COMPAT_*``: Redis, queue, working directory). Each appends what it did to a file in
the working directory as ``<what> <pid>``, so the program can tell which process did it.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from _observe import append_line, queue, read_lines, redis_params, wait_for, workdir

import sergeant.config
import sergeant.objects
import sergeant.worker

Task = sergeant.objects.Task
DONE_FILE = 'done.txt'
COUNTED_TASKS = 10


def done(what: str) -> None:
    append_line(workdir() / DONE_FILE, f'{what} {os.getpid()}')


def done_lines() -> list[tuple[str, int]]:
    """``(what, pid)`` of everything the workers did, in order."""
    lines = [line.rsplit(' ', 1) for line in read_lines(workdir() / DONE_FILE)]
    return [(what, int(pid)) for what, pid in lines]


class SupervisedWorker(sergeant.worker.Worker):
    queue_suffix = 'supervised'
    max_tasks_per_run = 0

    def generate_config(self) -> sergeant.config.WorkerConfig:
        return sergeant.config.WorkerConfig(
            name=queue(self.queue_suffix),
            connector=sergeant.config.Connector(type='redis', params=redis_params()),
            max_tasks_per_run=self.max_tasks_per_run,
        )


class Counting(SupervisedWorker):
    """Three tasks per process; the ``stop`` task stops the pool once every counted task is done."""

    max_tasks_per_run = 3

    def work(self, task: Task) -> Any:
        if task.kwargs['id'] == 'stop':
            wait_for(lambda: len(done_lines()) >= COUNTED_TASKS, timeout=20)
            done('stop')
            self.stop()
        done(str(task.kwargs['id']))


class Bloating(SupervisedWorker):
    """Says when it starts; its task grows the process past the memory limit and waits to be killed."""

    queue_suffix = 'bloating'

    def initialize(self) -> None:
        done('started')

    def work(self, task: Task) -> Any:
        done(task.kwargs['id'])
        self.ballast = b'x' * (200 * 1024 * 1024)  # written, so resident
        time.sleep(20)


def linger_until_told(name: str) -> None:
    try:
        while True:
            time.sleep(0.05)
    except SystemExit:
        done(f'{name} got SystemExit')
        raise


class LeavesThreads(SupervisedWorker):
    """``leave`` starts two threads and returns: one that can be stopped, one stuck in a long C call."""

    queue_suffix = 'threads'
    max_tasks_per_run = 1

    def work(self, task: Task) -> Any:
        done(task.kwargs['id'])
        if task.kwargs['id'] == 'stop':
            self.stop()
        threading.Thread(target=linger_until_told, args=('compat-killable',), name='compat-killable').start()
        threading.Thread(target=time.sleep, args=(30,), name='compat-unkillable').start()
