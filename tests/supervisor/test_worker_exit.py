"""Worker processes never outlive their purpose: not after their summary, not after the supervisor."""

from __future__ import annotations

import signal
from typing import Any

import psutil

from sergeant.supervisor.child import EXIT_GRACE
from tests.supervisor.conftest import Supervise, broker_for, push_ids, wait_until


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_worker_with_a_lingering_thread_still_exits_and_is_respawned(
    supervise: Supervise, local_settings: dict[str, Any]
) -> None:
    # given workers that leave a non-daemon thread running and end after one task
    push_ids(broker_for(local_settings), range(2))

    # when they are supervised
    run = supervise('supervised_lingering', 'LingeringWorker', env={'TEST_MAX_TASKS_PER_RUN': '1'})

    # then each worker exits EXIT_GRACE seconds after its summary, and the next one takes over
    wait_until(lambda: len(run.records()) == 2, EXIT_GRACE + 60, 'both tasks processed')
    assert len(run.worker_pids()) == 2
    run.wait_for_log(r'finished \(max_tasks_per_run reached or stop signal\), exit code 0')
    run.send(signal.SIGTERM)
    assert run.wait(EXIT_GRACE + 30) == 0


def test_workers_stop_by_themselves_when_the_supervisor_dies(supervise: Supervise) -> None:
    # given two idle workers
    run = supervise('supervised_drain', 'DrainWorker', '--concurrent-workers', '2')
    wait_until(lambda: len(run.workers()) == 2, 60, 'two workers')
    run.wait_for_log('started in slot', count=2)
    workers = run.workers()

    # when the supervisor is SIGKILLed (so it cannot stop them)
    run.send(signal.SIGKILL)
    run.wait()

    # then the workers notice their lifeline broke and stop gracefully
    wait_until(lambda: all(gone(worker.pid) for worker in workers), 30, 'the orphaned workers to exit')
