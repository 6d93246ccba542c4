"""The worker of the scale section (``harness/scale.py``): runs ``work_loop`` until SIGTERM.

Configured by the environment: ``SCALE_PARAMS`` (JSON Redis connector params),
``SCALE_THREADS`` (``number_of_threads``; 1 is the serial executor),
``SCALE_BATCH`` (``tasks_per_transaction``) and ``SCALE_SLEEP_MS`` (how long each
task sleeps: 0 for a no-op, more to stand for I/O). The harness imports
:class:`Producer` to push the same tasks with the same encoder settings.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from sergeant import config
from sergeant.objects import Task
from sergeant.worker import Worker

QUEUE = 'scale'


def worker_config(params: dict[str, Any], threads: int = 1, batch: int = 1) -> config.WorkerConfig:
    return config.WorkerConfig(
        name=QUEUE,
        connector=config.Connector(type='redis', params=params),
        encoder=config.Encoder(serializer='msgpack'),
        logging=config.Logging(log_to_stdout=False),
        number_of_threads=threads,
        tasks_per_transaction=batch,
    )


class ScaleWorker(Worker):
    """A task that does nothing, or sleeps."""

    def __init__(self) -> None:
        self._sleep = float(os.environ.get('SCALE_SLEEP_MS', '0')) / 1000
        super().__init__()

    def generate_config(self) -> config.WorkerConfig:
        return worker_config(
            json.loads(os.environ['SCALE_PARAMS']),
            int(os.environ.get('SCALE_THREADS', '1')),
            int(os.environ.get('SCALE_BATCH', '1')),
        )

    def work(self, task: Task) -> None:
        if self._sleep:
            time.sleep(self._sleep)


class Producer(Worker):
    """Pushes the section's tasks (never runs a loop)."""

    def __init__(self, params: dict[str, Any]) -> None:
        self._settings = worker_config(params)
        super().__init__()
        self.init_broker()

    def generate_config(self) -> config.WorkerConfig:
        return self._settings


if __name__ == '__main__':
    worker = ScaleWorker()
    worker.init_worker()
    worker.work_loop()
