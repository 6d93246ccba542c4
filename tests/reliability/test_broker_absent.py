"""A supervisor started before its broker exists: it keeps trying, then processes everything.

Workers cannot reach the broker at first: they either start and fail their
fetches (logged, retried with a growing pause) or fail at start-up and are
respawned with backoff; either way the supervisor stays up, and once the broker
comes up every task pushed to it is processed exactly once. Meanwhile
``/readyz`` says the pool is not ready because of the broker, and turns ready
once the broker answers.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.observability.conftest import get
from tests.reliability.conftest import Record, dead_letters, queue_is_empty, record_tally, since, tally
from tests.reliability.servers import durable_server, settings_of
from tests.servers.ports import free_port
from tests.supervisor.conftest import Supervise, broker_for, push_ids, wait_until

TASKS = 200
ABSENT_SECONDS = 5.0


@pytest.mark.parametrize('kind', ['redis', 'mongo'])
def test_supervisor_started_before_the_broker_processes_everything_once_it_is_up(
    supervise: Supervise, tmp_path: Path, kind: str, record_property: Record
) -> None:
    with durable_server(kind, tmp_path / kind, started=False) as server:
        # given a supervisor of two workers whose broker does not exist yet
        settings = settings_of(kind, server)
        port = free_port()
        started = time.monotonic()
        run = supervise(
            'supervised_broker_outage',
            'OutageWorker',
            '--concurrent-workers',
            '2',
            '--metrics-port',
            str(port),
            settings=settings,
            env={'TEST_TASKS_PER_TRANSACTION': '10'},
        )

        # when the broker is still absent 5 s later
        time.sleep(ABSENT_SECONDS)

        # then the supervisor is up, live, and not ready because of the broker
        assert run.popen.poll() is None, f'the supervisor gave up:\n{run.log()}'
        assert get(port, '/healthz')[0] == 200
        status, reason = get(port, '/readyz')
        assert status == 503 and 'broker' in reason, (status, reason)

        # and then comes up and gets tasks
        server.start()
        up_at = time.monotonic()
        record_property('tasks', TASKS)
        record_property('absent_s', round(up_at - started, 2))
        broker = broker_for(settings)
        push_ids(broker, range(TASKS))

        # then every task is processed exactly once, nothing is left in the queue, and the pool is ready
        wait_until(lambda: len(run.processed_ids()) >= TASKS, 120, 'every task processed', interval=0.2)
        record_property('recover_s', since(up_at))
        wait_until(lambda: queue_is_empty(broker), 60, 'no task left ready or in flight')
        wait_until(lambda: get(port, '/readyz')[0] == 200, 60, '/readyz to answer 200')
        record_property('ready_s', since(up_at))
        counts = tally(run.processed_ids(), range(TASKS))
        record_tally(record_property, counts, 0)
        assert counts.lost == [] and counts.strangers == [] and counts.duplicates == 0, counts
        letters = dead_letters(broker)
        record_property('dead_letters', len(letters))
        assert letters == []
        run.send(signal.SIGTERM)
        assert run.wait(60) == 0
