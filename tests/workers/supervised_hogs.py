"""Scenario: a task that holds the GIL, or hogs memory, every time it runs, among good tasks.

A task with ``hog`` in its kwargs appends ``"<pid> <run_count>"`` to TEST_HOGS
when it starts, then, for ``hog='gil'``, runs a C loop that never releases the
GIL nor checks for signals (only the killer process's hard limit stops it), or,
for ``hog='memory'``, holds TEST_HOG_BYTES until it is killed. The other tasks
are recorded after TEST_TASK_SECONDS. ``TEST_THREADS``, ``TEST_MAX_RETRIES``,
``TEST_TIMEOUT`` and ``TEST_GRACE_PERIOD`` (no time limit unless set) configure the worker.
"""

from __future__ import annotations

import os
import time
from typing import Any

from sergeant import Task, config
from tests.workers.supervised_common import RecordingWorker, env_float


class HogWorker(RecordingWorker):
    def generate_config(self) -> config.WorkerConfig:
        return (
            super()
            .generate_config()
            .replace(
                number_of_threads=int(os.environ.get('TEST_THREADS', '1')),
                max_retries=int(os.environ['TEST_MAX_RETRIES']),
                timeouts=config.Timeouts(
                    timeout=env_float('TEST_TIMEOUT', 0), grace_period=env_float('TEST_GRACE_PERIOD', 1)
                ),
            )
        )

    def work(self, task: Task) -> Any:
        hog = task.kwargs.get('hog')
        if hog is None:
            super().work(task)
            return
        with open(os.environ['TEST_HOGS'], 'a') as hogs:
            hogs.write(f'{os.getpid()} {task.run_count}\n')
        if hog == 'gil':
            sum(range(10**15))
        else:
            hoard = b'x' * int(os.environ['TEST_HOG_BYTES'])  # every page written, so resident
            time.sleep(3600)
            del hoard
