"""Field driver for Dramatiq with its ``RedisBroker``, in Dramatiq's own virtual environment.

Default middleware (age and time limits, retries, ...); the actor allows no
retries. Single pushes are ``send``; Dramatiq has no bulk enqueue, so bulk is a
``group`` of messages run at once (``group.run()`` enqueues them one by one). The
worker is Dramatiq's ``Worker`` on one thread in this process (what ``dramatiq
--processes 1 --threads 1`` runs per process) with its default prefetch for one
thread (2) for single and a prefetch of 1,000 for batch; an idle consumer polls
with a backoff up to ``worker_timeout`` (1 s, the default).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import dramatiq
import field_common
from dramatiq.brokers.redis import RedisBroker


def declare(url: str, queue: str) -> tuple[RedisBroker, Any]:
    broker = RedisBroker(url=url)
    dramatiq.set_broker(broker)

    @dramatiq.actor(actor_name='noop', queue_name=queue, max_retries=0)
    def noop(task_id: int) -> None:
        field_common.tick()

    return broker, noop


class Producer:
    def __init__(self, url: str, queue: str) -> None:
        self.broker, self.noop = declare(url, queue)
        self.queue = queue

    def single(self, ids: Sequence[int]) -> None:
        for task_id in ids:
            self.noop.send(task_id)

    def bulk(self, ids: Sequence[int]) -> None:
        dramatiq.group(self.noop.message(task_id) for task_id in ids).run()

    def waiting(self) -> int:
        # the count its own Broker.join waits on
        return int(self.broker.do_qsize(self.queue))

    def close(self) -> None:
        self.broker.close()


def work(url: str, queue: str, batch: bool) -> None:
    broker, _ = declare(url, queue)
    worker = dramatiq.Worker(broker, worker_threads=1)
    if batch:
        worker.queue_prefetch = field_common.CHUNK
    worker.start()
    threading.Event().wait()  # the worker's threads run until this process is killed


if __name__ == '__main__':
    field_common.main(
        field_common.Driver(
            library='dramatiq',
            producer=Producer,
            work=work,
            settings={
                'produce_single': 'send()',
                'produce_bulk': 'no bulk API: group(messages).run()',
                'consume_single': 'Worker, 1 thread, prefetch 2 (default)',
                'consume_batch': 'Worker, 1 thread, prefetch 1000',
                'wakeup': 'Worker, 1 thread, worker_timeout 1 s (default)',
            },
        )
    )
