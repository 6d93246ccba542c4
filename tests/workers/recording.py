"""A worker process for crash tests: appends each processed task id to a file.

Configured through environment variables so a test can start it as a process:
``TEST_CONNECTOR`` (JSON ``{"type": ..., "params": ...}``), ``TEST_QUEUE``,
``TEST_OUTPUT`` (file to append ids to), ``TEST_TASK_SECONDS`` and
``TEST_TASKS_PER_TRANSACTION``. It stops after 2 s without tasks.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from sergeant import Task, config
from sergeant.worker import Worker


class RecordingWorker(Worker):
    def generate_config(self) -> config.WorkerConfig:
        connector = json.loads(os.environ['TEST_CONNECTOR'])
        return config.WorkerConfig(
            name=os.environ['TEST_QUEUE'],
            connector=config.Connector(type=connector['type'], params=connector['params']),
            tasks_per_transaction=int(os.environ.get('TEST_TASKS_PER_TRANSACTION', '1')),
            max_retries=int(os.environ.get('TEST_MAX_RETRIES', '0')),
            delivery=config.Delivery(lease_seconds=float(os.environ.get('TEST_LEASE_SECONDS', '1'))),
            starvation=config.Starvation(time_with_no_tasks=2),
        )

    def initialize(self) -> None:
        self.output = os.open(os.environ['TEST_OUTPUT'], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        self.task_seconds = float(os.environ.get('TEST_TASK_SECONDS', '0'))

    def work(self, task: Task) -> Any:
        time.sleep(self.task_seconds)
        os.write(self.output, f'{task.kwargs["id"]}\n'.encode())

    def on_starvation(self, time_with_no_tasks: int) -> None:
        self.stop()


if __name__ == '__main__':
    worker = RecordingWorker()
    worker.init_worker()
    summary = worker.work_loop()
    sys.exit(0 if summary['executor_exception'] is None else 1)
