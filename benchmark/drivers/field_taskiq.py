"""Field driver for taskiq with taskiq-redis's ``ListQueueBroker``, in taskiq's own virtual environment.

No result backend. Single pushes are ``kiq``; taskiq has no bulk kick, so bulk is
``kiq`` in a loop. The worker is taskiq's receiver (what ``taskiq worker`` runs in
each process), started with ``run_receiver_task``: one task at a time and no
prefetch for single; up to 1,000 concurrent tasks and a prefetch of 1,000 for
batch. The broker pops with a blocking ``BRPOP`` (at most once).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import field_common
from taskiq.api import run_receiver_task
from taskiq_redis import ListQueueBroker


def declare(url: str, queue: str) -> tuple[ListQueueBroker, Any]:
    broker = ListQueueBroker(url, queue_name=queue)

    @broker.task(task_name='noop')
    async def noop(task_id: int) -> None:
        field_common.tick()

    return broker, noop


class Producer:
    def __init__(self, url: str, queue: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.queue = queue
        self.broker, self.noop = declare(url, queue)
        self.loop.run_until_complete(self.broker.startup())

    async def _kick(self, ids: Sequence[int]) -> None:
        for task_id in ids:
            await self.noop.kiq(task_id)

    def single(self, ids: Sequence[int]) -> None:
        self.loop.run_until_complete(self._kick(ids))

    def bulk(self, ids: Sequence[int]) -> None:
        self.loop.run_until_complete(self._kick(ids))

    def waiting(self) -> int:
        from redis.asyncio import Redis

        async def length() -> int:
            async with Redis(connection_pool=self.broker.connection_pool) as client:
                return int(await client.llen(self.queue))

        return self.loop.run_until_complete(length())

    def close(self) -> None:
        self.loop.run_until_complete(self.broker.shutdown())
        self.loop.close()


async def _receive(url: str, queue: str, batch: bool) -> None:
    broker, _ = declare(url, queue)
    await broker.startup()
    size = field_common.CHUNK if batch else 1
    await run_receiver_task(broker, max_async_tasks=size, max_prefetch=size if batch else 0)


def work(url: str, queue: str, batch: bool) -> None:
    asyncio.run(_receive(url, queue, batch))


if __name__ == '__main__':
    field_common.main(
        field_common.Driver(
            library='taskiq',
            producer=Producer,
            work=work,
            settings={
                'produce_single': 'kiq()',
                'produce_bulk': 'no bulk API: kiq() in a loop',
                'consume_single': 'receiver, max_async_tasks=1, max_prefetch=0',
                'consume_batch': 'receiver, max_async_tasks=1000, max_prefetch=1000',
                'wakeup': 'receiver, max_async_tasks=1, max_prefetch=0',
            },
        )
    )
