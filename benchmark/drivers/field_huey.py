"""Field driver for Huey with ``RedisHuey``, in Huey's own virtual environment.

No result store (``results=False``). Single pushes call the task; Huey has no bulk
enqueue, so bulk is ``Task.map`` (one enqueue per task). The worker is Huey's
consumer as ``huey_consumer`` runs it, without the periodic scheduler, one worker
thread. Huey has no prefetch or batch, so batch runs the same settings (four
worker threads in the one process measured no faster). An idle worker blocks on
``BRPOP`` (``blocking=True``, the default).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import field_common
from huey import RedisHuey


def declare(url: str, queue: str) -> tuple[RedisHuey, Any]:
    huey = RedisHuey(queue, url=url, results=False)

    @huey.task(name='noop')
    def noop(task_id: int) -> None:
        field_common.tick()

    return huey, noop


class Producer:
    def __init__(self, url: str, queue: str) -> None:
        self.huey, self.noop = declare(url, queue)

    def single(self, ids: Sequence[int]) -> None:
        for task_id in ids:
            self.noop(task_id)

    def bulk(self, ids: Sequence[int]) -> None:
        self.noop.map([(task_id,) for task_id in ids])

    def waiting(self) -> int:
        return int(self.huey.pending_count())

    def close(self) -> None:
        self.huey.storage.pool.disconnect()


def work(url: str, queue: str, batch: bool) -> None:
    huey, _ = declare(url, queue)
    huey.create_consumer(workers=1, worker_type='thread', periodic=False).run()


if __name__ == '__main__':
    field_common.main(
        field_common.Driver(
            library='huey',
            producer=Producer,
            work=work,
            settings={
                'produce_single': 'calling the task',
                'produce_bulk': 'no bulk API: Task.map() (enqueues one by one)',
                'consume_single': 'consumer, 1 worker thread',
                'consume_batch': 'no batch or prefetch exists: as single',
                'wakeup': 'consumer, 1 worker thread, blocking BRPOP',
            },
        )
    )
