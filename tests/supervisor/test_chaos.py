"""Workers SIGKILLed at random while thousands of tasks run: every task is still processed."""

from __future__ import annotations

import random
import signal
import time
from typing import Any

import psutil

from tests.supervisor.conftest import QUEUE, Supervise, broker_for, push_ids, wait_until

TASKS = 1800
KILLS = 5
# victims must have lived this long, so the supervisor respawns them at once (no start-up backoff)
MIN_VICTIM_AGE = 3.5


def test_every_task_is_processed_despite_random_sigkills(
    supervise: Supervise, any_settings: dict[str, Any]
) -> None:
    # given 1800 tasks consumed by two workers with 1 s leases
    broker = broker_for(any_settings)
    push_ids(broker, range(TASKS))
    run = supervise(
        'supervised_drain',
        'DrainWorker',
        '--concurrent-workers',
        '2',
        settings=any_settings,
        env={'TEST_TASK_SECONDS': '0.015', 'TEST_TASKS_PER_TRANSACTION': '10', 'TEST_LEASE_SECONDS': '1'},
    )

    # when random workers are SIGKILLed again and again while tasks run
    chooser = random.Random(20)
    killed: list[int] = []
    deadline = time.monotonic() + 240
    while len(killed) < KILLS and len(set(run.processed_ids())) < TASKS and time.monotonic() < deadline:
        time.sleep(chooser.uniform(0.3, 1.0))
        now = time.time()
        victims = [worker for worker in run.workers() if now - worker.create_time() >= MIN_VICTIM_AGE]
        if victims:
            victim = chooser.choice(victims)
            victim.send_signal(signal.SIGKILL)
            killed.append(victim.pid)

    # then the killed workers are replaced and every task id is processed at least once
    wait_until(lambda: len(set(run.processed_ids())) == TASKS, 240, 'every task processed', interval=0.5)
    assert set(run.processed_ids()) == set(range(TASKS))
    assert len(killed) >= KILLS - 2, f'only {len(killed)} kills landed before the queue was empty'
    assert run.log().count('crashed, signal SIGKILL') == len(killed)
    assert not any(psutil.pid_exists(pid) for pid in killed)
    wait_until(lambda: broker.connector.in_flight(QUEUE) == 0, 30, 'no task in flight')
    assert broker.connector.length(QUEUE, include_delayed=True) == 0
    run.send(signal.SIGTERM)
    assert run.wait(60) == 0
