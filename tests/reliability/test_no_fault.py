"""No fault, no duplicate: whatever a worker holds keeps its lease, however slow the broker.

Three workers take one task per transaction with the shortest lease allowed
(0.5 s; 1 s on FerretDB, see LEASE_SECONDS), so tasks wait in a worker's hands
(prefetched, finished and not yet acknowledged) for a good part of a lease, and
on FerretDB, where every pop of a queue of a few hundred tasks takes a noticeable
part of a second, the pop that carries their acknowledgements may take longer
than the lease. Nothing fails, so every task must run exactly once: a task that
waited past its lease would be handed to another worker and run twice (22 of 300
did on FerretDB before leases were kept for everything a worker holds).
"""

from __future__ import annotations

import signal
import time
from typing import Any

from tests.reliability.conftest import Record, dead_letters, queue_is_empty, record_tally, since, tally
from tests.supervisor.conftest import Supervise, broker_for, push_ids, wait_until

TASKS = {'local': 600, 'redis': 600, 'mongo': 300}
# On a loaded 2-core machine FerretDB (the worker's pops, the keeper's extensions and the other
# workers' claims share its CPU) answered late enough for 0.5 s leases to lapse in hand: 9 to 25
# duplicates of 300 with two busy processes beside it, before and after the batch-path changes
# alike; with 1 s leases, none
LEASE_SECONDS = {'local': '0.5', 'redis': '0.5', 'mongo': '1.0'}


def test_without_faults_every_task_runs_exactly_once_under_short_leases(
    supervise: Supervise, broker_settings: dict[str, Any], record_property: Record
) -> None:
    # given a queue of no-op tasks
    tasks = TASKS[broker_settings['type']]
    broker = broker_for(broker_settings)
    push_ids(broker, range(tasks))
    record_property('tasks', tasks)
    started = time.monotonic()

    # when three workers consume them one at a time with short leases
    run = supervise(
        'supervised_common',
        'RecordingWorker',
        '--concurrent-workers',
        '3',
        settings=broker_settings,
        env={
            'TEST_TASK_SECONDS': '0',
            'TEST_TASKS_PER_TRANSACTION': '1',
            'TEST_LEASE_SECONDS': LEASE_SECONDS[broker_settings['type']],
        },
    )

    # then every task runs exactly once, and nothing is left
    wait_until(lambda: len(set(run.processed_ids())) >= tasks, 240, 'every task processed', interval=0.2)
    wait_until(lambda: queue_is_empty(broker), 30, 'no task left ready or in flight')
    record_property('wall_s', since(started))
    counts = tally(run.processed_ids(), range(tasks))
    record_tally(record_property, counts, duplicate_bound=0)
    assert counts.lost == [] and counts.strangers == [] and counts.duplicates == 0, counts
    letters = dead_letters(broker)
    record_property('dead_letters', len(letters))
    assert letters == []
    run.send(signal.SIGTERM)
    assert run.wait(60) == 0
