"""A finished task is acknowledged soon, also when the worker goes idle (given / when / then).

Acknowledgements ride along with the next pop while work keeps coming; a worker
whose queue ran dry sends no more pops, so the lease keeper sends what is left
on its own. Otherwise finished tasks would look in flight to probes and the
operator (a pool that never scales to zero) and run again if the idle worker died.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sergeant import Task, config

from .conftest import ConfiguredWorker

TASKS = 400


class Quick(ConfiguredWorker):
    def work(self, task: Task) -> Any:
        return None


@pytest.fixture(params=['local', 'redis'])
def connector(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[config.Connector]:
    if request.param == 'local':
        yield config.Connector(type='local', params={'file_path': str(tmp_path / 'broker.sqlite3')})
        return
    from tests.servers.redis import running_redis

    with running_redis(tmp_path) as server:
        yield config.Connector(type='redis', params={'url': server.url})


@pytest.mark.parametrize('threads', [1, 4])
def test_an_idle_worker_leaves_no_finished_task_in_flight(connector: config.Connector, threads: int) -> None:
    class Worker(Quick):
        settings = config.WorkerConfig(
            name='idle-acks',
            connector=connector,
            number_of_threads=threads,
            tasks_per_transaction=7,
            delivery=config.Delivery(lease_seconds=600.0),  # the keeper's lease upkeep never runs here
            logging=config.Logging(log_to_stdout=False),
            starvation=None,
        )

    worker = Worker()
    worker.init_worker()
    worker.push_tasks([{'n': n} for n in range(TASKS)])
    loop = threading.Thread(target=worker.work_loop)
    loop.start()
    try:
        deadline = time.monotonic() + 60
        while worker.outcomes['success'] < TASKS and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker.outcomes['success'] == TASKS

        # generous bound: acks are due within ~0.1 s; this only catches acks that never go
        deadline = time.monotonic() + 2
        while worker.broker.connector.in_flight('idle-acks') and time.monotonic() < deadline:
            time.sleep(0.01)

        assert worker.broker.connector.in_flight('idle-acks') == 0
        assert loop.is_alive()  # still idle and running: the acks were not sent by the loop's end
    finally:
        worker.received_stop_signal = True
        loop.join(timeout=30)


def test_tasks_done_before_a_long_one_are_acknowledged_while_it_runs(connector: config.Connector) -> None:
    long_task_started = threading.Event()

    class Worker(Quick):
        settings = config.WorkerConfig(
            name='acks-during-long-task',
            connector=connector,
            tasks_per_transaction=10,
            max_tasks_per_run=10,
            delivery=config.Delivery(lease_seconds=600.0),
            logging=config.Logging(log_to_stdout=False),
            starvation=None,
        )

        def work(self, task: Task) -> Any:
            if task.kwargs['n'] == 9:
                long_task_started.set()
                time.sleep(4)

    worker = Worker()
    worker.init_worker()
    worker.push_tasks([{'n': n} for n in range(10)])
    loop = threading.Thread(target=worker.work_loop)
    loop.start()
    try:
        assert long_task_started.wait(30)
        deadline = time.monotonic() + 2  # well inside the long task's 4 s
        while worker.broker.connector.in_flight('acks-during-long-task') > 1 and time.monotonic() < deadline:
            time.sleep(0.01)

        assert worker.broker.connector.in_flight('acks-during-long-task') == 1, 'only the running task'
    finally:
        loop.join(timeout=30)
