"""A task that holds the GIL is stopped by its hard limit while the pool keeps working (real Redis)."""

from __future__ import annotations

import dataclasses
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.supervisor.conftest import QUEUE, Supervise, SupervisorRun, broker_for, push_ids, wait_until

TIMEOUT = 1.0
GRACE_PERIOD = 1.0
MAX_RETRIES = 1
SHORT_TASKS = 400
HOG_ID = -1


@pytest.fixture
def redis_settings(tmp_path: Path) -> Iterator[dict[str, Any]]:
    from tests.servers.redis import running_redis

    with running_redis(tmp_path / 'redis') as server:
        yield {'type': 'redis', 'params': {'url': server.url}}


@dataclasses.dataclass(frozen=True)
class Event:
    name: str
    pid: int
    task_id: int
    run_count: int
    at: float  # time.monotonic(), the same clock in every process of the host


def read_events(path: Path) -> list[Event]:
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        name, pid, task_id, run_count, at = line.split()
        events.append(Event(name, int(pid), int(task_id), int(run_count), float(at)))
    return events


def hog_starts(path: Path) -> list[Event]:
    return [event for event in read_events(path) if event.name == 'hog-start']


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def seen_gone_at(pid: int, timeout: float) -> float:
    """Poll until ``pid`` has ended; the monotonic time it was seen gone (an upper bound of its end)."""
    deadline = time.monotonic() + timeout
    while not gone(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f'worker {pid} still alive after {timeout} s')
        time.sleep(0.01)
    return time.monotonic()


def replaced_after_kill(run: SupervisorRun, pid: int) -> bool:
    """The supervisor logged ``pid`` as killed by SIGKILL, then started a new worker in its slot."""
    log = run.log()
    ended = re.search(rf'worker {pid} \(slot (\d+)\) ended after .*: crashed, signal SIGKILL', log)
    if ended is None:
        return False
    return (
        re.search(rf'worker (?!{pid}\b)\d+ started in slot {ended.group(1)}\b', log[ended.end() :])
        is not None
    )


def test_gil_holding_task_is_killed_in_time_while_the_other_worker_goes_on(
    supervise: Supervise, redis_settings: dict[str, Any], tmp_path: Path
) -> None:
    # given a task that holds the GIL for hours, queued ahead of 400 short tasks, one retry allowed
    broker = broker_for(redis_settings)
    push_ids(broker, range(HOG_ID, HOG_ID + 1), hog=True)
    push_ids(broker, range(SHORT_TASKS))
    events = tmp_path / 'events.txt'

    # when two serial workers with a 1 s timeout and a 1 s grace period consume the queue
    # (5 s leases: the hog's lease, not extended while it holds the GIL, outlives its worker)
    run = supervise(
        'supervised_gil_hog',
        'GilHogWorker',
        '--concurrent-workers',
        '2',
        settings=redis_settings,
        env={
            'TEST_EVENTS': str(events),
            'TEST_TIMEOUT': str(TIMEOUT),
            'TEST_GRACE_PERIOD': str(GRACE_PERIOD),
            'TEST_MAX_RETRIES': str(MAX_RETRIES),
            'TEST_TASK_SECONDS': '0.01',
            'TEST_LEASE_SECONDS': '5',
            'TEST_PREFETCH': '0',
        },
    )
    wait_until(lambda: bool(hog_starts(events)), 60, 'the hog to start')
    [hog] = hog_starts(events)
    hog_gone_at = seen_gone_at(hog.pid, timeout=60)

    # then the hog's worker process is killed within timeout + grace period + 1 s of the hog's start
    assert hog_gone_at - hog.at <= TIMEOUT + GRACE_PERIOD + 1.0
    # and meanwhile the other worker kept completing tasks
    during = [
        event
        for event in read_events(events)
        if event.name == 'done' and event.pid != hog.pid and hog.at < event.at < hog_gone_at
    ]
    assert during, 'no task completed while the hog ran'
    # and the supervisor replaced the killed worker
    wait_until(lambda: replaced_after_kill(run, hog.pid), 30, f'a new worker in the slot of {hog.pid}')

    # then the hog comes back as a retry in another process, is killed again, and ends as a dead letter
    wait_until(lambda: broker.connector.dead_letter_length(QUEUE) == 1, 120, 'the hog to be dead-lettered')
    starts = hog_starts(events)
    assert [start.run_count for start in starts] == [0, 1]
    assert starts[1].pid != hog.pid
    [dead] = broker.dead_tasks(QUEUE, 10)
    assert dead.task is not None and dead.task.kwargs['id'] == HOG_ID
    assert 'redelivered' in dead.reason
    # and every short task was done, none of them killed with the hog
    wait_until(
        lambda: (
            {event.task_id for event in read_events(events) if event.name == 'done'}
            >= set(range(SHORT_TASKS))
        ),
        120,
        'every short task done',
    )
    assert all(event.run_count == 0 for event in read_events(events) if event.name == 'done')
    assert run.log().count('crashed, signal SIGKILL') == 2
    run.send(signal.SIGTERM)
    assert run.wait(60) == 0
