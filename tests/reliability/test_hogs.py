"""Tasks that hold the GIL or hog memory, among good tasks, on every broker.

tests/supervisor/test_time_limit.py covers a GIL-holding task under a serial
worker on Redis, tests/executor/test_hard_limit.py threaded workers without a
supervisor, and tests/supervisor/test_respawn.py a memory hog on its own. Here the
hogs run among a few hundred good tasks under a real supervisor: a GIL-holding
task in a worker of four threads (the soft timeout cannot reach it, so the killer
process kills the worker at the hard limit) and a memory hog above
``--max-worker-memory-usage`` (the supervisor kills and replaces the worker). Each
time the hog comes back, as a retry, it is killed again, until it ends in the
dead-letter queue as the only dead letter; every good task runs, and only tasks
held by the killed workers may run twice.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

from sergeant import config
from tests.reliability.conftest import Record, dead_letters, queue_is_empty, record_tally, since, tally
from tests.supervisor.conftest import Supervise, SupervisorRun, broker_for, push_ids, wait_until

GOOD = 200
MAX_RETRIES = 1
HOG_ID = -1


def hog_starts(path: Path) -> list[tuple[int, int]]:
    """``(pid, run_count)`` of every start of the hog."""
    if not path.exists():
        return []
    return [
        (int(pid), int(run_count))
        for pid, run_count in (line.split() for line in path.read_text().splitlines())
    ]


def settle(
    run: SupervisorRun, settings: dict[str, Any], hogs: Path, killed_as: str, started: float, record: Record
) -> None:
    """Wait until the good tasks ran and the hog was dead-lettered, then record and check the counts."""
    broker = broker_for(settings)
    wait_until(
        lambda: set(run.processed_ids()) >= set(range(GOOD)) and len(dead_letters(broker)) >= 1,
        180,
        'every good task run and the hog dead-lettered',
        interval=0.2,
    )
    record('wall_s', since(started))
    wait_until(lambda: queue_is_empty(broker), 60, 'no task left ready or in flight')
    starts = hog_starts(hogs)
    log = run.log()
    letters = dead_letters(broker)
    counts = tally(run.processed_ids(), range(GOOD))
    held = 1 + config.Delivery().prefetch_tasks(1) + 4
    record('hog_runs', len(starts))
    record('kills', log.count(killed_as))
    record('dead_letters', len(letters))
    record_tally(record, counts, len(starts) * held)
    # the hog ran, and was killed with its worker, at least max_retries + 1 times, a new worker each time
    # (once more, alone, when the deaths it caused were shared with tasks running beside it)
    assert len(starts) >= MAX_RETRIES + 1, starts
    assert [run_count for _pid, run_count in starts] == list(range(len(starts)))
    assert len({pid for pid, _run_count in starts}) == len(starts)
    assert log.count(killed_as) == len(starts), log[-3000:]
    # and it is the only dead letter, its reason saying it died with (or killed) its worker
    [letter] = letters
    assert letter.task is not None and letter.task.kwargs['id'] == HOG_ID
    assert 'died' in letter.reason or 'killed its worker' in letter.reason, letter.reason
    # and every good task ran; only tasks the killed workers held can have run twice
    assert counts.lost == [] and counts.strangers == [], counts
    assert counts.duplicates <= len(starts) * held, counts
    run.send(signal.SIGTERM)
    assert run.wait(60) == 0


def test_a_gil_holding_task_in_a_threaded_worker_is_killed_at_its_hard_limit_until_dead_lettered(
    supervise: Supervise, broker_settings: dict[str, Any], tmp_path: Path, record_property: Record
) -> None:
    # given a task that holds the GIL for hours, queued ahead of 200 good tasks, one retry allowed
    broker = broker_for(broker_settings)
    push_ids(broker, range(HOG_ID, HOG_ID + 1), hog='gil')
    push_ids(broker, range(GOOD))
    record_property('tasks', GOOD)
    hogs = tmp_path / 'hogs.txt'

    # when two workers of 4 threads each, with a 1 s timeout and a 1 s grace period, consume them
    # (5 s leases: the hog's, not extended while it holds the GIL, outlives its worker)
    started = time.monotonic()
    run = supervise(
        'supervised_hogs',
        'HogWorker',
        '--concurrent-workers',
        '2',
        settings=broker_settings,
        env={
            'TEST_HOGS': str(hogs),
            'TEST_THREADS': '4',
            'TEST_MAX_RETRIES': str(MAX_RETRIES),
            'TEST_TIMEOUT': '1',
            'TEST_GRACE_PERIOD': '1',
            'TEST_TASK_SECONDS': '0.02',
            'TEST_LEASE_SECONDS': '5',
        },
    )

    # then the killer process kills the hog's worker each time, and the rest is as it should be
    settle(run, broker_settings, hogs, 'crashed, signal SIGKILL', started, record_property)


def test_a_memory_hog_is_killed_by_the_supervisor_until_dead_lettered(
    supervise: Supervise, broker_settings: dict[str, Any], tmp_path: Path, record_property: Record
) -> None:
    # given a task that holds 400 MB each time it runs, queued ahead of 200 good tasks, one retry allowed
    broker = broker_for(broker_settings)
    push_ids(broker, range(HOG_ID, HOG_ID + 1), hog='memory')
    push_ids(broker, range(GOOD))
    record_property('tasks', GOOD)
    hogs = tmp_path / 'hogs.txt'

    # when two serial workers limited to 200 MB each consume them
    started = time.monotonic()
    run = supervise(
        'supervised_hogs',
        'HogWorker',
        '--concurrent-workers',
        '2',
        '--max-worker-memory-usage',
        '200M',
        settings=broker_settings,
        env={
            'TEST_HOGS': str(hogs),
            'TEST_HOG_BYTES': str(400 * 10**6),
            'TEST_MAX_RETRIES': str(MAX_RETRIES),
            'TEST_TASK_SECONDS': '0.02',
        },
    )

    # then the supervisor kills the hog's worker each time, and the rest is as it should be
    settle(run, broker_settings, hogs, 'memory limit exceeded, signal SIGKILL', started, record_property)
