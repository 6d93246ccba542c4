"""An idle worker starts a pushed task at once, and a delayed one when it falls due (given / when / then).

An idle worker waits in ``Connector.wait_for_work``: the Redis connector blocks
until a push leaves a wake token, the local one watches the database for commits.
Polling would start a task up to its idle sleep late (up to a second); the bounds
here are generous and only catch a worker that polls. Speed targets live in
``benchmark/harness/wakeup.py`` (``make bench``).
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

QUEUE = 'wakeup'
IDLE_GAP = 0.7  # a polling worker sleeps 0.32 s and then 0.64 s by then: it would start the task ~0.56 s late
START_BOUND = 0.3  # generous: a loaded machine can stall a process that long; polling is ~0.56 s late
DUE_BOUND = 0.3
STOP_BOUND = 0.5


class Recorder(ConfiguredWorker):
    """Records how late each task started after the time its kwargs name."""

    lateness: list[float]

    def work(self, task: Task) -> Any:
        self.lateness.append(time.time() - task.kwargs['since'])


@pytest.fixture(params=['local', 'redis'])
def connector(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[config.Connector]:
    if request.param == 'local':
        yield config.Connector(type='local', params={'file_path': str(tmp_path / 'broker.sqlite3')})
        return
    from tests.servers.redis import running_redis

    with running_redis(tmp_path) as server:
        yield config.Connector(type='redis', params={'url': server.url})


@pytest.fixture
def idle_worker(connector: config.Connector) -> Iterator[Recorder]:
    class Worker(Recorder):
        settings = config.WorkerConfig(
            name=QUEUE, connector=connector, logging=config.Logging(log_to_stdout=False), starvation=None
        )

    worker = Worker()
    worker.lateness = []
    worker.init_worker()
    loop = threading.Thread(target=worker.work_loop)
    loop.start()
    try:
        yield worker
    finally:
        stop_started = time.monotonic()
        worker.received_stop_signal = True
        loop.join(timeout=30)
        stopped_after = time.monotonic() - stop_started
    assert not loop.is_alive()
    assert stopped_after < STOP_BOUND, f'an idle worker took {stopped_after:.2f} s to stop'


def _wait_for_starts(worker: Recorder, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(worker.lateness) < count and time.monotonic() < deadline:
        time.sleep(0.001)
    assert len(worker.lateness) == count


def test_a_task_pushed_to_an_idle_worker_starts_at_once(idle_worker: Recorder) -> None:
    for pushed in range(1, 11):
        # given a worker idle for a while
        time.sleep(IDLE_GAP)

        # when a task is pushed
        idle_worker.push_task({'since': time.time()})

        # then it starts well within what polling would take
        _wait_for_starts(idle_worker, pushed)

    late = [round(seconds, 3) for seconds in idle_worker.lateness if seconds > START_BOUND]
    assert late == [], f'started later than {START_BOUND} s: {late} of {idle_worker.lateness}'


def test_a_delayed_task_starts_when_it_falls_due(idle_worker: Recorder) -> None:
    for pushed in range(1, 4):
        # given an idle worker, and a task pushed for a moment in the future
        due = time.time() + 1.0 + pushed / 10
        idle_worker.push_task({'since': due}, consumable_from=due)

        # when that moment comes
        _wait_for_starts(idle_worker, pushed)

    # then the task started then, not a polling interval later
    assert all(-0.01 <= seconds <= DUE_BOUND for seconds in idle_worker.lateness), idle_worker.lateness
