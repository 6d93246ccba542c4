"""A worker whose task leaves a thread that ignores SystemExit is reported and replaced (real processes)."""

from __future__ import annotations

import re
import signal
from typing import Any

import pytest

from sergeant.objects import Task
from sergeant.supervisor.child import EXIT_GRACE
from tests.supervisor.conftest import QUEUE, Supervise, broker_for, wait_until


@pytest.mark.parametrize('threads', [1, 2])
def test_worker_with_an_unkillable_thread_is_reported_and_replaced(
    supervise: Supervise, any_settings: dict[str, Any], threads: int
) -> None:
    # given a task that starts a killable and an unkillable thread, as in 0.27's hanging threads
    # example; a serial executor's task starts non-daemon threads, a threaded one's daemon threads
    broker = broker_for(any_settings)
    broker.push_tasks(QUEUE, [Task(kwargs={'id': 0, 'threads': True})])

    # when one worker slot is supervised
    run = supervise(
        'supervised_hanging_threads',
        'HangingThreadsWorker',
        settings=any_settings,
        env={'TEST_THREADS': str(threads)},
    )

    # then the supervisor warns about the unkillable thread only, naming the worker
    pattern = r"WARNING worker (\d+) had unkillable threads: \['UnKillableThread'\]"
    run.wait_for_log(pattern)
    match = re.search(pattern, run.log())
    assert match is not None
    reported_pid = int(match.group(1))
    assert run.records() == [(reported_pid, 0)]
    # the worker itself said which thread it ended and which would not end, and asked to be replaced
    log = run.log()
    assert "ended 1 thread(s) the task left running: ['KillableThread']" in log
    assert "would not end within 2 s of SystemExit: ['UnKillableThread']" in log
    assert re.search(rf'worker {reported_pid} \(slot 0\) ended after .*: respawn asked, exit code 10', log)

    # and a new worker process takes the next task
    broker.push_tasks(QUEUE, [Task(kwargs={'id': 1})])
    wait_until(lambda: len(run.records()) == 2, EXIT_GRACE + 30, 'the next task processed')
    [(new_pid, task_id)] = run.records()[1:]
    assert task_id == 1
    assert new_pid != reported_pid
    assert len(re.findall('had unkillable threads', run.log())) == 1
    run.send(signal.SIGTERM)
    assert run.wait() == 0
