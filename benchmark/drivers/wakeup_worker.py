"""The worker of the wake-up benchmark (``harness/wakeup.py``), and its producer.

Run as ``python wakeup_worker.py`` with ``WAKEUP_TYPE`` (connector type),
``WAKEUP_PARAMS`` (JSON connector params) and ``WAKEUP_OUT`` (a file) set: it runs
``work_loop`` until SIGTERM and, for each task, appends one line to ``WAKEUP_OUT``:
how many seconds after ``task.kwargs['since']`` (a push, or a delayed task's due
time, in epoch seconds) ``work`` started. The harness imports :class:`Producer` to
push, with the same encoder settings.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from sergeant import config
from sergeant.objects import Task
from sergeant.worker import Worker

QUEUE = 'wakeup'


def worker_config(kind: str, params: dict[str, Any]) -> config.WorkerConfig:
    return config.WorkerConfig(
        name=QUEUE,
        connector=config.Connector(type=kind, params=params),
        encoder=config.Encoder(serializer='msgpack'),
        logging=config.Logging(log_to_stdout=False),
        starvation=None,
    )


class WakeupWorker(Worker):
    """Notes how late each task started."""

    def generate_config(self) -> config.WorkerConfig:
        return worker_config(os.environ['WAKEUP_TYPE'], json.loads(os.environ['WAKEUP_PARAMS']))

    def work(self, task: Task) -> None:
        late = time.time() - task.kwargs['since']
        with Path(os.environ['WAKEUP_OUT']).open('a') as out:
            out.write(f'{late:.6f}\n')


class Producer(Worker):
    """Pushes the benchmark's tasks (never runs a loop)."""

    def __init__(self, kind: str, params: dict[str, Any]) -> None:
        self._settings = worker_config(kind, params)
        super().__init__()
        self.init_broker()

    def generate_config(self) -> config.WorkerConfig:
        return self._settings


if __name__ == '__main__':
    worker = WakeupWorker()
    worker.init_worker()
    worker.work_loop()
