"""Scenario: a task takes a lock and its worker is SIGKILLed while holding it (tests/reliability).

A task ``{'id', 'lock', 'ttl'}`` acquires the lock ``lock`` with ``ttl`` seconds
(waiting up to 60 s), appends ``"<pid> <run_count> <time.time()>"`` to TEST_LOCKS,
then on its first delivery holds it until the worker dies; on a later delivery
it is recorded and releases the lock.
"""

from __future__ import annotations

import os
import time
from typing import Any

from sergeant import Task
from tests.workers.supervised_common import RecordingWorker


class LockWorker(RecordingWorker):
    def work(self, task: Task) -> Any:
        lock = self.lock(task.kwargs['lock'])
        if not lock.acquire(timeout=60, check_interval=0.05, ttl=task.kwargs['ttl']):
            raise RuntimeError(f'lock {task.kwargs["lock"]!r} not acquired within 60 s')
        with open(os.environ['TEST_LOCKS'], 'a') as locks:
            locks.write(f'{os.getpid()} {task.run_count} {time.time()}\n')
        if task.run_count == 0:
            time.sleep(3600)  # held until the test kills this worker
        self.record(task)
        lock.release()
