"""Shared base of the ``supervised_*`` worker modules run under the supervisor in tests.

Configured by environment variables (the supervisor passes its environment on):
``TEST_CONNECTOR`` (JSON ``{"type": ..., "params": ...}``), ``TEST_QUEUE``,
``TEST_OUTPUT`` (a file each processed task appends ``"<pid> <id>"`` to),
``TEST_TASK_SECONDS``, ``TEST_TASKS_PER_TRANSACTION``, ``TEST_MAX_TASKS_PER_RUN``
``TEST_LEASE_SECONDS`` and ``TEST_PREFETCH`` (unset: the library's default).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from sergeant import Task, config
from sergeant.worker import Worker


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


class RecordingWorker(Worker):
    """Appends ``"<pid> <id>"`` to TEST_OUTPUT for every task, after TEST_TASK_SECONDS of work."""

    def generate_config(self) -> config.WorkerConfig:
        connector = json.loads(os.environ['TEST_CONNECTOR'])
        return config.WorkerConfig(
            name=os.environ.get('TEST_QUEUE', 'supervised'),
            connector=config.Connector(type=connector['type'], params=connector['params']),
            tasks_per_transaction=int(os.environ.get('TEST_TASKS_PER_TRANSACTION', '1')),
            max_tasks_per_run=int(os.environ.get('TEST_MAX_TASKS_PER_RUN', '0')),
            delivery=config.Delivery(
                lease_seconds=env_float('TEST_LEASE_SECONDS', 2),
                prefetch=int(os.environ['TEST_PREFETCH']) if 'TEST_PREFETCH' in os.environ else None,
            ),
        )

    def initialize(self) -> None:
        self.output = os.open(os.environ['TEST_OUTPUT'], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        self.task_seconds = env_float('TEST_TASK_SECONDS', 0)

    def record(self, task: Task) -> None:
        os.write(self.output, f'{os.getpid()} {task.kwargs["id"]}\n'.encode())

    def work(self, task: Task) -> Any:
        time.sleep(self.task_seconds)
        self.record(task)
