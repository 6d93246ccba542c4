"""A worker process killed in the middle of a task (the serial executor's hard time limit), on Redis.

A child process runs a worker with ``Timeouts(timeout=0.5, grace_period=0.5)`` whose
task ignores the soft limit, so the killer process kills the worker; a second task waits
in the queue behind it. Observed: how the child ended, which hooks ran before, and what
the queue holds afterwards (its length, a pop, the Redis keys named after it,
``purge_tasks()``).
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any, ClassVar

from _observe import append_line, emit, queue, read_lines, redis_keys_named_after, typed, workdir
from _recorder import Recorder, Task

import sergeant.config

CALLS_FILE = 'calls.txt'


class Crashing(Recorder):
    config_overrides: ClassVar[dict[str, Any]] = {
        'timeouts': sergeant.config.Timeouts(timeout=0.5, grace_period=0.5),
    }

    def pre_work(self, task: Task) -> None:
        append_line(workdir() / CALLS_FILE, 'pre_work')

    def work(self, task: Task) -> Any:
        append_line(workdir() / CALLS_FILE, 'work')
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                time.sleep(0.02)
            except BaseException as error:  # the soft limit: ignored, so the hard one kills the process
                append_line(workdir() / CALLS_FILE, f'work saw {type(error).__name__}')

    def on_timeout(self, task: Task) -> None:
        append_line(workdir() / CALLS_FILE, 'on_timeout')


def child() -> None:
    worker = Crashing()
    worker.init_worker()
    worker.work_loop()
    append_line(workdir() / CALLS_FILE, 'work_loop returned')


def main() -> None:
    producer = Crashing()
    producer.init_worker()
    producer.push_tasks(kwargs_list=[{'id': 'hangs'}, {'id': 'waits'}])
    started = time.monotonic()
    process = subprocess.run([sys.executable, __file__, 'child'], timeout=30, check=False)
    observed = {
        'child.killed_by_a_signal': typed(process.returncode < 0),
        'child.ended_within_10s': typed(time.monotonic() - started < 10),
        'child.calls': typed(read_lines(workdir() / CALLS_FILE)),
        'length': typed(producer.number_of_enqueued_tasks()),
        'length_including_delayed': typed(producer.number_of_enqueued_tasks(include_delayed=True)),
        'pop': typed([task.kwargs['id'] for task in producer.get_next_tasks(number_of_tasks=10)]),
        'redis_keys': typed(redis_keys_named_after(queue())),
        'purge': typed(producer.purge_tasks()),
        'redis_keys_after_purge': typed(redis_keys_named_after(queue())),
    }
    emit(observed)


if __name__ == '__main__':
    child() if sys.argv[1:] == ['child'] else main()
