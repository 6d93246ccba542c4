"""A pop whose answer was lost (the connection broke after the broker ran it) loses no time.

The broker leased the items to this worker, which never saw them. Without recovery
they would wait for their lease to run out; the worker hands them back at its next
good pop instead. The broken connection is injected: a real server cannot be made
to drop exactly one answer on demand.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sergeant import Task, config
from sergeant.connector import CompletedPop, PendingPop
from sergeant.errors import ConnectorError

from .conftest import ConfiguredWorker

Build = Callable[..., Any]
TASKS = 30


class Counting(ConfiguredWorker):
    def work(self, task: Task) -> Any:
        self.calls.append(('work', task.kwargs['n']))


def lose_answers(worker: ConfiguredWorker, how_many: int) -> None:
    """Make the worker's first ``how_many`` pops run at the broker, then report a broken connection."""
    connector = worker.broker.connector
    real_begin_pop = connector.begin_pop
    lost = [how_many]

    def begin_pop(queue: str, count: int, lease_seconds: float | None, ack: Any = ()) -> PendingPop:
        answer = real_begin_pop(queue, count, lease_seconds, ack)
        if lost[0] > 0 and answer.result().payloads:
            lost[0] -= 1
            return CompletedPop(error=ConnectorError('Redis pop failed: Connection reset by peer'))
        return answer

    connector.begin_pop = begin_pop  # type: ignore[method-assign]


def test_items_of_a_pop_whose_answer_was_lost_run_at_once(build_worker: Build) -> None:
    # given a worker with a 60 s lease whose first two pops bring answers that never arrive
    worker = build_worker(
        Counting, tasks_per_transaction=5, delivery=config.Delivery(lease_seconds=60), starvation=None
    )
    worker.push_tasks([{'n': n} for n in range(TASKS)])
    lose_answers(worker, 2)

    # when it works for a few seconds
    loop = threading.Thread(target=worker.work_loop)
    loop.start()
    deadline = time.monotonic() + 20
    while len(worker.calls) < TASKS and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.received_stop_signal = True
    loop.join(30)

    # then every task ran once, none waiting for its lease, and none is left leased
    assert sorted(n for _event, n in worker.calls) == list(range(TASKS))
    assert worker.broker.connector.in_flight('tasks') == 0
    assert worker.number_of_enqueued_tasks() == 0
