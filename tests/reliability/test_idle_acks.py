"""Idle acknowledgement: a worker whose queue ran dry leaves no finished task in flight.

tests/worker/test_idle_acks.py checks it in-process on the local broker and
Redis; here supervised worker processes do it on every broker, FerretDB
included, serial and with threads. Leases last 10 minutes, so neither an expired
lease nor the lease upkeep can account for the drop: only the acknowledgements
the workers send on their own, with no pop left to carry them.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest

from tests.reliability.conftest import Record, dead_letters, record_tally, since, tally
from tests.supervisor.conftest import QUEUE, Supervise, broker_for, push_ids, wait_until

TASKS = {'local': 300, 'redis': 300, 'mongo': 100}
# acknowledgements are due within ~0.1 s of a task's end; this bound only catches ones that never go
ACK_BOUND = 10.0


@pytest.mark.parametrize('threads', [1, 4], ids=['serial', 'threaded'])
def test_finished_tasks_are_acknowledged_while_the_workers_idle(
    supervise: Supervise, broker_settings: dict[str, Any], threads: int, record_property: Record
) -> None:
    # given tasks consumed 7 at a time by two workers, with 10-minute leases
    tasks = TASKS[broker_settings['type']]
    broker = broker_for(broker_settings)
    push_ids(broker, range(tasks))
    record_property('tasks', tasks)
    started = time.monotonic()
    run = supervise(
        'supervised_chaos',
        'ChaosWorker',
        '--concurrent-workers',
        '2',
        settings=broker_settings,
        env={'TEST_THREADS': str(threads), 'TEST_TASKS_PER_TRANSACTION': '7', 'TEST_LEASE_SECONDS': '600'},
    )

    # when every task has run and no new work comes
    wait_until(lambda: len(run.processed_ids()) >= tasks, 120, 'every task processed', interval=0.1)
    processed_at = time.monotonic()
    record_property('wall_s', round(processed_at - started, 2))

    # then nothing is left in flight soon after, while both workers still run, idle
    wait_until(lambda: broker.connector.in_flight(QUEUE) == 0, ACK_BOUND, 'no task in flight')
    record_property('ack_s', since(processed_at))
    record_property('ack_bound_s', ACK_BOUND)
    assert len(run.workers()) == 2 and run.log().count('started in slot') == 2
    assert broker.connector.length(QUEUE, include_delayed=True) == 0
    counts = tally(run.processed_ids(), range(tasks))
    record_tally(record_property, counts, 0)
    assert counts.lost == [] and counts.strangers == [] and counts.duplicates == 0, counts
    letters = dead_letters(broker)
    record_property('dead_letters', len(letters))
    assert letters == []
    run.send(signal.SIGTERM)
    assert run.wait(60) == 0
