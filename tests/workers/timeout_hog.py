"""A worker process for time-limit tests: some of its tasks never end on their own.

Configured through environment variables so a test can start it as a process:
``TEST_CONNECTOR`` (JSON ``{"type": ..., "params": ...}``), ``TEST_QUEUE``,
``TEST_OUTPUT`` (file to append events to), ``TEST_THREADS``, ``TEST_TIMEOUT``,
``TEST_GRACE_PERIOD`` and ``TEST_MAX_RETRIES``. It stops after 1 s without tasks.

A task's ``kind`` says what ``work`` does:

* ``gil`` — a loop in C that holds the GIL and never checks for signals;
* ``gil-with-child`` — the same, after starting a child process (``sleep``);
* ``regex`` — a catastrophic regular expression (it holds the GIL, but the
  regex engine checks for signals now and then);
* ``sleep`` — sleeps for an hour;
* ``quick`` — returns at once.

Each line of the output is ``<event> <id> <run_count> <time.monotonic()>`` with
the events ``start``, ``done`` and ``timeout``; ``killer <pid>...`` lists the
child processes seen when a task starts, ``child <pid>`` the one it started.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from typing import Any

import psutil

from sergeant import Task, config
from sergeant.worker import Worker


class TimeoutHogWorker(Worker):
    def generate_config(self) -> config.WorkerConfig:
        connector = json.loads(os.environ['TEST_CONNECTOR'])
        return config.WorkerConfig(
            name=os.environ['TEST_QUEUE'],
            connector=config.Connector(type=connector['type'], params=connector['params']),
            number_of_threads=int(os.environ.get('TEST_THREADS', '1')),
            max_retries=int(os.environ.get('TEST_MAX_RETRIES', '0')),
            timeouts=config.Timeouts(
                timeout=float(os.environ['TEST_TIMEOUT']),
                grace_period=float(os.environ['TEST_GRACE_PERIOD']),
            ),
            # no prefetching: tasks queued behind a hog would die with its worker
            delivery=config.Delivery(lease_seconds=1.0, prefetch=0),
            starvation=config.Starvation(time_with_no_tasks=1),
        )

    def initialize(self) -> None:
        self.output = os.open(os.environ['TEST_OUTPUT'], os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def record(self, event: str, task: Task) -> None:
        line = f'{event} {task.kwargs["id"]} {task.run_count} {time.monotonic()}\n'
        os.write(self.output, line.encode())

    def work(self, task: Task) -> Any:
        children = ' '.join(str(child.pid) for child in psutil.Process().children())
        os.write(self.output, f'killer {children}\n'.encode())
        self.record('start', task)
        kind = task.kwargs['kind']
        if kind == 'gil-with-child':
            child = subprocess.Popen(['sleep', '3600'])
            os.write(self.output, f'child {child.pid}\n'.encode())
        if kind.startswith('gil'):
            sum(range(10**15))
        elif kind == 'regex':
            re.match(r'(a+)+$', 'a' * 64 + 'b')
        elif kind == 'sleep':
            time.sleep(3600)
        self.record('done', task)

    def on_timeout(self, task: Task) -> None:
        self.record('timeout', task)

    def on_starvation(self, time_with_no_tasks: int) -> None:
        self.stop()


if __name__ == '__main__':
    worker = TimeoutHogWorker()
    worker.init_worker()
    summary = worker.work_loop()
    sys.exit(0 if summary['executor_exception'] is None else 1)
