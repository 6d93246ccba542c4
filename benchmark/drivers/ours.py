"""Benchmark driver for this repository's Sergeant (run with the project venv's python).

Builds the no-op worker the shared modes measure. Delivery stays at the default,
at-least-once with leases, which is what users get out of the box.
"""

from __future__ import annotations

from typing import Any

import modes

from sergeant import config
from sergeant.objects import Task
from sergeant.worker import Worker


class NoopWorker(Worker):
    """A worker whose task does nothing but be counted."""

    def __init__(self, worker_config: config.WorkerConfig) -> None:
        self.worker_config = worker_config
        self.processed = 0
        super().__init__()

    def generate_config(self) -> config.WorkerConfig:
        return self.worker_config

    def work(self, task: Task) -> None:
        self.processed += 1


def make_worker(
    params: dict[str, Any], queue: str, tasks_per_transaction: int, max_tasks_per_run: int
) -> NoopWorker:
    worker = NoopWorker(
        config.WorkerConfig(
            name=queue,
            connector=config.Connector(type='redis', params=params),
            tasks_per_transaction=tasks_per_transaction,
            max_tasks_per_run=max_tasks_per_run,
            delivery=config.Delivery(),
        )
    )
    worker.init_worker()
    return worker


if __name__ == '__main__':
    modes.main(make_worker)
