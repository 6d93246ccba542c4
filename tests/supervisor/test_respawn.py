"""Every reason a worker process ends makes the supervisor start a new one (real processes)."""

from __future__ import annotations

import signal
from typing import Any

import psutil
import pytest

from tests.supervisor.conftest import Supervise, broker_for, push_ids, wait_until


def test_worker_reaching_max_tasks_per_run_is_respawned(
    supervise: Supervise, local_settings: dict[str, Any]
) -> None:
    # given 12 tasks and workers that end after 4 tasks each
    push_ids(broker_for(local_settings), range(12))

    # when one worker slot is supervised
    run = supervise('supervised_max_tasks', 'MaxTasksWorker', env={'TEST_MAX_TASKS_PER_RUN': '4'})

    # then three successive worker processes run 4 tasks each, each summary is logged
    wait_until(lambda: len(run.records()) == 12, 60, '12 processed tasks')
    assert sorted(run.processed_ids()) == list(range(12))
    assert len(run.worker_pids()) == 3
    run.wait_for_log(
        r'ended after .*: finished \(max_tasks_per_run reached.*loop ended by max_tasks_per_run; '
        r'.*process cpu user \d+\.\d\d s system \d+\.\d\d s, peak rss \d+ MiB; tasks: success=4',
        count=3,
    )
    assert 'backing off' not in run.log()
    run.send(signal.SIGTERM)
    assert run.wait() == 0


def test_worker_asking_to_respawn_is_respawned(supervise: Supervise, local_settings: dict[str, Any]) -> None:
    # given 3 tasks, each making its worker ask to be respawned
    push_ids(broker_for(local_settings), range(3))

    # when one worker slot is supervised
    run = supervise('supervised_respawn', 'RespawnWorker')

    # then each task is run by a new worker process, at once (no backoff)
    wait_until(lambda: len(run.records()) == 3, 60, '3 processed tasks')
    assert len(run.worker_pids()) == 3
    run.wait_for_log(r'ended after .*: respawn asked, exit code 10; loop ended by respawn;', count=3)
    assert 'backing off' not in run.log()
    run.send(signal.SIGTERM)
    assert run.wait() == 0


@pytest.mark.parametrize(('crash', 'logged'), [('exit', 'exit code 3'), ('signal', 'signal SIGSEGV')])
def test_crashed_worker_is_respawned_and_its_task_redelivered(
    supervise: Supervise, local_settings: dict[str, Any], crash: str, logged: str
) -> None:
    # given 2 tasks whose first delivery crashes the worker process
    broker = broker_for(local_settings)
    push_ids(broker, range(2))

    # when one worker slot is supervised, with 1 s leases and no prefetch (a prefetched
    # task would come back with the crashed one, both redelivered as retries)
    run = supervise(
        'supervised_crash',
        'CrashWorker',
        env={'TEST_CRASH': crash, 'TEST_LEASE_SECONDS': '1', 'TEST_PREFETCH': '0'},
    )

    # then each crash is logged and replaced, and each task comes back and succeeds
    run.wait_for_log(rf'ended after .*: crashed, {logged}', count=2)
    wait_until(lambda: len(run.records()) == 4, 90, 'both tasks run twice')
    assert sorted(run.processed_ids()) == [0, 0, 1, 1]
    assert len(run.worker_pids()) >= 3
    wait_until(lambda: broker.connector.in_flight('supervised') == 0, 30, 'no task in flight')
    assert broker.connector.length('supervised', include_delayed=True) == 0
    run.send(signal.SIGTERM)
    assert run.wait() == 0


@pytest.mark.parametrize('hog_in', ['worker', 'child'])
def test_worker_above_memory_limit_is_killed_and_replaced(
    supervise: Supervise, local_settings: dict[str, Any], hog_in: str
) -> None:
    # given a task that makes the worker (or a child of the worker) hold 400 MB
    broker = broker_for(local_settings)
    push_ids(broker, range(1))

    # when the worker's memory, with its children's, is limited to 200 MB
    run = supervise(
        'supervised_memory_hog',
        'MemoryHogWorker',
        '--max-worker-memory-usage',
        '200M',
        env={'TEST_HOG_BYTES': str(400 * 10**6), 'TEST_HOG_IN': hog_in, 'TEST_LEASE_SECONDS': '1'},
    )
    wait_until(lambda: len(run.records()) == 1, 60, 'the hog task to start')
    hog_worker = run.records()[0][0]

    # then the worker is killed with its children and replaced, and the task comes back
    run.wait_for_log(r'worker \d+ uses \d+ bytes with its children, above the limit of 200000000')
    run.wait_for_log(r'ended after .*: memory limit exceeded, signal SIGKILL')
    wait_until(lambda: len(run.records()) == 2, 60, 'the task to be redelivered to a new worker')
    assert run.records()[1][0] != hog_worker
    assert not psutil.pid_exists(hog_worker)
    hogs = [p for p in psutil.process_iter(['cmdline']) if 'hog = b"x"' in ' '.join(p.info['cmdline'] or [])]
    assert [p.pid for p in hogs if p.ppid() in (run.pid, hog_worker)] == []
    run.send(signal.SIGTERM)
    assert run.wait() == 0
