"""Field driver for RQ, in RQ's own virtual environment.

Jobs keep no result (``result_ttl=0``). Single pushes are ``Queue.enqueue``; bulk
is ``Queue.enqueue_many`` (one pipeline per call). Single consumption is RQ's
default ``Worker``, which forks a work horse for every job; batch is its
``SimpleWorker``, which runs jobs in the worker process. RQ has no prefetch: a
worker pops one job at a time (blocking ``BLMOVE``/``BLPOP`` when idle).
"""

from __future__ import annotations

from collections.abc import Sequence

import field_common
from redis import Redis
from rq import Queue, SimpleWorker, Worker


def noop(task_id: int) -> None:
    field_common.tick()


# RQ refuses functions of ``__main__``: name this module's, which the worker imports
NOOP = 'field_rq.noop'


class Producer:
    def __init__(self, url: str, queue: str) -> None:
        self.connection = Redis.from_url(url)
        self.queue = Queue(queue, connection=self.connection)

    def single(self, ids: Sequence[int]) -> None:
        for task_id in ids:
            self.queue.enqueue(NOOP, task_id, result_ttl=0)

    def bulk(self, ids: Sequence[int]) -> None:
        self.queue.enqueue_many([Queue.prepare_data(NOOP, (task_id,), result_ttl=0) for task_id in ids])

    def waiting(self) -> int:
        return int(self.queue.count)

    def close(self) -> None:
        self.connection.close()


def work(url: str, queue: str, batch: bool) -> None:
    connection = Redis.from_url(url)
    kind = SimpleWorker if batch else Worker
    kind([Queue(queue, connection=connection)], connection=connection).work(logging_level='WARNING')


if __name__ == '__main__':
    field_common.main(
        field_common.Driver(
            library='rq',
            producer=Producer,
            work=work,
            settings={
                'produce_single': 'enqueue()',
                'produce_bulk': 'enqueue_many(), one pipeline per 1,000',
                'consume_single': 'Worker (forks a horse per job)',
                'consume_batch': 'SimpleWorker (no fork; no prefetch exists)',
                'wakeup': 'Worker (forks a horse per job)',
            },
        )
    )
