"""SIGTERM/SIGINT drain: running tasks finish, prefetched ones go back, nothing is lost (real processes)."""

from __future__ import annotations

import signal
import time
from typing import Any

import psutil
import pytest

from tests.supervisor.conftest import QUEUE, Supervise, broker_for, push_ids, wait_until

TASKS = 2000


@pytest.mark.parametrize('stop_signal', [signal.SIGTERM, signal.SIGINT], ids=['SIGTERM', 'SIGINT'])
def test_sigterm_drains_workers_and_loses_no_task(
    supervise: Supervise, any_settings: dict[str, Any], stop_signal: signal.Signals
) -> None:
    # given 2000 tasks consumed by two workers that prefetch 20 at a time
    broker = broker_for(any_settings)
    push_ids(broker, range(TASKS))
    run = supervise(
        'supervised_drain',
        'DrainWorker',
        '--concurrent-workers',
        '2',
        settings=any_settings,
        env={'TEST_TASK_SECONDS': '0.005', 'TEST_TASKS_PER_TRANSACTION': '20', 'TEST_LEASE_SECONDS': '30'},
    )
    wait_until(lambda: len(run.records()) >= 300, 120, '300 processed tasks')

    # when the supervisor is told to stop mid-way
    stopped_at = time.monotonic()
    run.send(stop_signal)

    # then it exits 0 well within the drain timeout, with every task processed or back in the queue
    assert run.wait(60) == 0
    drain_seconds = time.monotonic() - stopped_at
    assert drain_seconds < 20, f'drain took {drain_seconds:.1f} s'
    processed = run.processed_ids()
    assert len(processed) == len(set(processed)), 'no task ran twice'
    assert broker.connector.in_flight(QUEUE) == 0, 'no task is left leased'
    queued = [task.kwargs['id'] for task in broker.pop_tasks(QUEUE, TASKS, None).tasks]
    assert set(processed).isdisjoint(queued)
    assert sorted(processed + queued) == list(range(TASKS))
    assert 0 < len(queued) < TASKS - 300
    assert run.log().count('finished (max_tasks_per_run reached or stop signal)') == 2
    assert run.log().count('loop ended by signal;') >= len(run.worker_pids()) >= 1, 'each summary says why'
    assert not run.workers()


def test_drain_timeout_kills_workers_and_their_tasks_come_back(
    supervise: Supervise, local_settings: dict[str, Any]
) -> None:
    # given a worker in the middle of a task that takes a minute
    broker = broker_for(local_settings)
    push_ids(broker, range(1))
    run = supervise(
        'supervised_drain',
        'DrainWorker',
        '--drain-timeout',
        '2',
        env={'TEST_TASK_SECONDS': '60', 'TEST_LEASE_SECONDS': '1'},
    )
    wait_until(lambda: broker.connector.in_flight(QUEUE) == 1, 60, 'the task to start')
    worker = run.workers()[0]

    # when the supervisor gets SIGTERM
    stopped_at = time.monotonic()
    run.send(signal.SIGTERM)

    # then it kills the worker after the 2 s drain timeout and exits 0
    assert run.wait(30) == 0
    assert 2 <= time.monotonic() - stopped_at < 15
    assert 'drain timeout (2 s) reached: killing 1 worker(s)' in run.log()
    assert 'killed by the supervisor, signal SIGKILL' in run.log()
    assert not psutil.pid_exists(worker.pid)
    # and the unfinished task is delivered again once its lease expires
    wait_until(lambda: broker.connector.length(QUEUE) == 1, 30, 'the task back in the queue')


def test_second_signal_kills_workers_at_once(supervise: Supervise, local_settings: dict[str, Any]) -> None:
    # given a worker in the middle of a long task and a long drain timeout
    broker = broker_for(local_settings)
    push_ids(broker, range(1))
    run = supervise(
        'supervised_drain', 'DrainWorker', '--drain-timeout', '120', env={'TEST_TASK_SECONDS': '60'}
    )
    wait_until(lambda: broker.connector.in_flight(QUEUE) == 1, 60, 'the task to start')
    worker = run.workers()[0]
    run.send(signal.SIGTERM)
    run.wait_for_log('SIGTERM received: stopping 1 worker')

    # when a second signal arrives
    stopped_at = time.monotonic()
    run.send(signal.SIGINT)

    # then the worker is killed now and the supervisor says it was forced
    assert run.wait(30) == 4
    assert time.monotonic() - stopped_at < 10
    assert 'SIGINT received again: killing every worker now' in run.log()
    assert not psutil.pid_exists(worker.pid)
