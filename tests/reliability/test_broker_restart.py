"""The broker SIGKILLed and restarted with its data while a supervisor's workers consume.

Redis keeps an append-only file fsynced at every write, FerretDB its SQLite
files: what the broker acknowledged survives the kill, the leases included.
Workers ride out the outage (their fetches and acknowledgements fail and are
retried) and go on once the broker is back. No task is lost; a task runs twice
only if it was leased at the kill (its acknowledgement may have been lost, or its
lease may have expired during the outage), so duplicates stay within the tasks in
flight at the kill, counted while the workers were paused.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.reliability.conftest import Record, dead_letters, queue_is_empty, record_tally, tally
from tests.reliability.servers import durable_server, settings_of
from tests.supervisor.conftest import QUEUE, Supervise, SupervisorRun, broker_for, push_ids, wait_until

TASKS = {'redis': 1500, 'mongo': 300}
TASK_SECONDS = {'redis': 0.01, 'mongo': 0.03}
# Longer than the 2 s leases, so held leases expire while the broker is down, and for
# MongoDB longer than the driver's 5 s server selection timeout, so the workers' calls
# fail instead of waiting the outage out inside pymongo.
OUTAGE_SECONDS = {'redis': 3.0, 'mongo': 7.0}


@contextlib.contextmanager
def paused(processes: list[psutil.Process]) -> Iterator[None]:
    """SIGSTOP the processes for the duration of the block, then SIGCONT them."""
    for process in processes:
        process.suspend()
    try:
        yield
    finally:
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.resume()


def processed_count(run: SupervisorRun) -> int:
    return len(set(run.processed_ids()))


@pytest.mark.parametrize('kind', ['redis', 'mongo'])
def test_broker_killed_and_restarted_loses_no_task(
    supervise: Supervise, tmp_path: Path, kind: str, record_property: Record
) -> None:
    with durable_server(kind, tmp_path / kind) as server:
        # given tasks consumed by two workers in batches of 10, with 2 s leases, from a durable broker
        tasks = TASKS[kind]
        settings = settings_of(kind, server)
        broker = broker_for(settings)
        push_ids(broker, range(tasks))
        record_property('tasks', tasks)
        started = time.monotonic()
        run = supervise(
            'supervised_broker_outage',
            'OutageWorker',
            '--concurrent-workers',
            '2',
            settings=settings,
            env={'TEST_TASKS_PER_TRANSACTION': '10', 'TEST_TASK_SECONDS': str(TASK_SECONDS[kind])},
        )
        wait_until(lambda: processed_count(run) >= tasks // 4, 120, 'a quarter of the tasks processed')

        # when the broker is SIGKILLed mid-stream (the tasks in flight counted while the workers are
        # paused), stays down (3 s; 7 s for MongoDB) while the workers run on, and restarts on its data
        with paused(run.workers()):
            time.sleep(0.3)  # commands already sent are answered
            in_flight_at_kill = broker.connector.in_flight(QUEUE)
            done_at_kill = processed_count(run)
            server.kill()
            killed_at = time.monotonic()
        broker.connector.close()
        time.sleep(OUTAGE_SECONDS[kind])
        server.start()
        up_at = time.monotonic()
        broker = broker_for(settings)
        record_property('done_at_kill', done_at_kill)
        record_property('down_s', round(up_at - killed_at, 2))

        # then every task is processed, none lost, and only tasks in flight at the kill ran twice
        try:
            wait_until(lambda: processed_count(run) == tasks, 180, 'every task processed', interval=0.5)
        except AssertionError as timeout:
            missing = sorted(set(range(tasks)) - set(run.processed_ids()))
            in_flight = broker.connector.in_flight(QUEUE)
            state = f'{len(missing)} missing (first {missing[:20]}), in flight {in_flight}'
            raise AssertionError(f'{timeout}: {state}; supervisor log ends:\n{run.log()[-4000:]}') from None
        done_at = time.monotonic()
        record_property('recover_s', round(done_at - up_at, 2))
        record_property('wall_s', round(done_at - started, 2))
        wait_until(lambda: queue_is_empty(broker), 60, 'no task left ready or in flight')
        counts = tally(run.processed_ids(), range(tasks))
        record_tally(record_property, counts, in_flight_at_kill)
        assert done_at_kill < tasks, 'the kill landed while tasks were left'
        assert counts.lost == [] and counts.strangers == [], counts
        assert counts.duplicates <= in_flight_at_kill, counts
        letters = dead_letters(broker)
        record_property('dead_letters', len(letters))
        assert letters == []
        # and the workers rode out the outage: they saw it, and none of them ended or was replaced
        log = run.log()
        assert 'could not' in log, 'the workers never noticed the outage'
        assert log.count('started in slot') == 2 and 'ended after' not in log, log[-3000:]
        run.send(signal.SIGTERM)
        assert run.wait(60) == 0
