"""Scenario: some tasks kill their own worker process; the others are good.

A task with ``kill`` in its kwargs records itself and SIGKILLs the worker after
``kill`` seconds; the others record themselves, then take ``TEST_TASK_SECONDS``. ``TEST_MAX_RETRIES`` and
``TEST_THREADS`` set ``max_retries`` and ``number_of_threads``.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from typing import Any

from sergeant import Task, config
from tests.workers.supervised_common import RecordingWorker


class KillerWorker(RecordingWorker):
    def generate_config(self) -> config.WorkerConfig:
        return dataclasses.replace(
            super().generate_config(),
            max_retries=int(os.environ.get('TEST_MAX_RETRIES', '2')),
            number_of_threads=int(os.environ.get('TEST_THREADS', '1')),
        )

    def work(self, task: Task) -> Any:
        self.record(task)
        if 'kill' in task.kwargs:
            time.sleep(task.kwargs['kill'])
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(self.task_seconds)
