"""Field driver for arq (asyncio, Redis only), in arq's own virtual environment.

The function keeps no result (``keep_result=0``). Single pushes are
``ArqRedis.enqueue_job``; arq has no bulk enqueue, so bulk is the same call in a
loop. The worker is arq's ``Worker`` as ``arq`` runs it: its default ``max_jobs=10``
for single (with ``max_jobs=1`` it starts about one job per poll, 2 per second),
``max_jobs=1000`` (jobs run concurrently on the event loop, read 5,000 at a time)
for batch; an idle worker polls every ``poll_delay`` (0.5 s, the default).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import field_common
from arq import Worker, create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.worker import func


async def noop(ctx: dict[str, Any], task_id: int) -> None:
    field_common.tick()


class Producer:
    def __init__(self, url: str, queue: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.queue = queue
        self.pool: ArqRedis = self.loop.run_until_complete(
            create_pool(RedisSettings.from_dsn(url), default_queue_name=queue)
        )

    async def _enqueue(self, ids: Sequence[int]) -> None:
        for task_id in ids:
            await self.pool.enqueue_job('noop', task_id)

    def single(self, ids: Sequence[int]) -> None:
        self.loop.run_until_complete(self._enqueue(ids))

    def bulk(self, ids: Sequence[int]) -> None:
        self.loop.run_until_complete(self._enqueue(ids))

    def waiting(self) -> int:
        return int(self.loop.run_until_complete(self.pool.zcard(self.queue)))

    def close(self) -> None:
        self.loop.run_until_complete(self.pool.aclose())
        self.loop.close()


def work(url: str, queue: str, batch: bool) -> None:
    Worker(
        functions=[func(noop, name='noop')],
        redis_settings=RedisSettings.from_dsn(url),
        queue_name=queue,
        max_jobs=field_common.CHUNK if batch else 10,
        keep_result=0,
        max_tries=1,
    ).run()


if __name__ == '__main__':
    field_common.main(
        field_common.Driver(
            library='arq',
            producer=Producer,
            work=work,
            settings={
                'produce_single': 'enqueue_job()',
                'produce_bulk': 'no bulk API: enqueue_job() in a loop',
                'consume_single': 'Worker, max_jobs=10 (default)',
                'consume_batch': 'Worker, max_jobs=1000',
                'wakeup': 'Worker, max_jobs=10, poll_delay 0.5 s (defaults)',
            },
        )
    )
