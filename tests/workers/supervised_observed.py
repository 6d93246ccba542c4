"""Scenario: each task ends the way its ``action`` says, so metrics can be checked against it.

``succeed``; ``fail`` (raises); ``retry`` (retried once, then max_retries with
TEST_MAX_RETRIES=1, the default); ``requeue`` (requeued once, then succeeds);
``sleep`` for ``seconds`` (a timeout with TEST_TIMEOUT). Every run is recorded
before it acts.
"""

from __future__ import annotations

import os
import time
from typing import Any

from sergeant import Task, config
from tests.workers.supervised_common import RecordingWorker, env_float


class ObservedWorker(RecordingWorker):
    def generate_config(self) -> config.WorkerConfig:
        return (
            super()
            .generate_config()
            .replace(
                max_retries=int(os.environ.get('TEST_MAX_RETRIES', '1')),
                timeouts=config.Timeouts(timeout=env_float('TEST_TIMEOUT', 0), grace_period=30),
            )
        )

    def work(self, task: Task) -> Any:
        self.record(task)
        time.sleep(self.task_seconds)
        action = task.kwargs.get('action', 'succeed')
        if action == 'fail':
            raise ValueError('failed on purpose')
        if action == 'retry':
            self.retry(task)
        if action == 'requeue':
            task.kwargs['action'] = 'succeed'
            self.requeue(task)
        if action == 'sleep':
            time.sleep(task.kwargs['seconds'])
