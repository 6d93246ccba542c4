"""Field driver for Celery, with its Redis transport (kombu), in Celery's own virtual environment.

The task ignores its result (no result backend is configured). Single pushes are
``delay``; Celery has no bulk publish, so bulk is ``apply_async`` in a loop on one
producer connection (``producer_or_acquire``). The worker is Celery's own, started
as ``celery worker`` would start it (``worker_main``), one process: the solo pool
(tasks run in the worker process), gossip, mingle and heartbeat off; prefetch
multiplier 1 for single, 1,000 for batch; acknowledgement at receipt (the default).
"""

from __future__ import annotations

from collections.abc import Sequence

import field_common
from celery import Celery


def application(url: str, queue: str) -> Celery:
    app = Celery('field', broker=url, set_as_current=True)
    app.conf.update(
        task_default_queue=queue,
        task_ignore_result=True,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )

    @app.task(name='noop')
    def noop(task_id: int) -> None:
        field_common.tick()

    return app


class Producer:
    def __init__(self, url: str, queue: str) -> None:
        self.app = application(url, queue)
        self.queue = queue
        self.noop = self.app.tasks['noop']

    def single(self, ids: Sequence[int]) -> None:
        for task_id in ids:
            self.noop.delay(task_id)

    def bulk(self, ids: Sequence[int]) -> None:
        with self.app.producer_or_acquire() as producer:
            for task_id in ids:
                self.noop.apply_async((task_id,), producer=producer)

    def waiting(self) -> int:
        with self.app.connection_for_write() as connection:
            return int(connection.default_channel.client.llen(self.queue))

    def close(self) -> None:
        self.app.close()


def work(url: str, queue: str, batch: bool) -> None:
    app = application(url, queue)
    options = [
        'worker', '--pool=solo', '--concurrency=1', '--loglevel=WARNING',
        '--without-gossip', '--without-mingle', '--without-heartbeat',
        f'--prefetch-multiplier={field_common.CHUNK if batch else 1}',
    ]  # fmt: skip
    app.worker_main(options)


if __name__ == '__main__':
    field_common.main(
        field_common.Driver(
            library='celery',
            producer=Producer,
            work=work,
            settings={
                'produce_single': 'delay()',
                'produce_bulk': 'no bulk API: apply_async() in a loop on one producer',
                'consume_single': 'solo pool, prefetch multiplier 1',
                'consume_batch': 'solo pool, prefetch multiplier 1000',
                'wakeup': 'solo pool, prefetch multiplier 1',
            },
        )
    )
