"""Field driver for Sergeant: this repository's in the project venv, 0.27.0 in its own.

Both share the worker API, so one driver serves them: the producer is a worker
that only pushes (``push_task``; bulk: ``push_tasks`` per chunk), the consumer
``work_loop()`` of a no-op worker with ``tasks_per_transaction`` 1 (single) or
1,000 (batch), ``max_tasks_per_run=0`` (runs until killed). Every other setting is
the library's default: ours at-least-once with leases and prefetch, 0.27 popping
with delete.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import field_common

from sergeant import config
from sergeant.objects import Task
from sergeant.worker import Worker


class NoopWorker(Worker):
    """Counts each task in the shared counter and does nothing else."""

    def __init__(self, url: str, queue: str, tasks_per_transaction: int) -> None:
        address = urlsplit(url)
        node = {'host': address.hostname, 'port': address.port, 'password': None, 'database': 0}
        self.worker_config = config.WorkerConfig(
            name=queue,
            connector=config.Connector(type='redis', params={'nodes': [node]}),
            tasks_per_transaction=tasks_per_transaction,
        )
        super().__init__()

    def generate_config(self) -> config.WorkerConfig:
        return self.worker_config

    def work(self, task: Task) -> Any:
        field_common.tick()


class Producer:
    def __init__(self, url: str, queue: str) -> None:
        self.worker = NoopWorker(url, queue, 1)
        self.worker.init_broker()

    def single(self, ids: Sequence[int]) -> None:
        for task_id in ids:
            self.worker.push_task(kwargs={'task_id': task_id})

    def bulk(self, ids: Sequence[int]) -> None:
        self.worker.push_tasks(kwargs_list=[{'task_id': task_id} for task_id in ids])

    def waiting(self) -> int:
        return int(self.worker.number_of_enqueued_tasks())

    def close(self) -> None:
        pass


def work(url: str, queue: str, batch: bool) -> None:
    worker = NoopWorker(url, queue, field_common.CHUNK if batch else 1)
    worker.init_worker()
    worker.work_loop()


if __name__ == '__main__':
    field_common.main(
        field_common.Driver(
            library='sergeant',
            producer=Producer,
            work=work,
            settings={
                'produce_bulk': 'push_tasks, 1,000 per call',
                'consume_single': 'tasks_per_transaction=1',
                'consume_batch': 'tasks_per_transaction=1000',
                'wakeup': 'tasks_per_transaction=1',
            },
        )
    )
