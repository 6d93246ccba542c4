"""SIGKILL chaos during batch and threaded consumption, on the local, Redis and MongoDB brokers.

tests/supervisor/test_chaos.py kills serial one-task-at-a-time workers on the
local broker and Redis; here the same chaos hits workers that lease whole
batches (``tasks_per_transaction=20``) or run four tasks at once in threads,
on every broker, FerretDB included. A killed worker's leased tasks are handed
back by its replacement (or come back when their leases run out), so each kill
may repeat at most the tasks that worker held: its transaction, what it
prefetched and what its threads were running. On FerretDB a kill may also land
inside a claim, between its ledger entry and its lease: that item is claimed
again once the entry counts as abandoned (10 s).
"""

from __future__ import annotations

import dataclasses
import random
import signal
import time
from collections.abc import Callable
from typing import Any

import psutil
import pytest

from sergeant import config
from tests.reliability.conftest import Record, dead_letters, queue_is_empty, record_tally, since, tally
from tests.supervisor.conftest import Supervise, SupervisorRun, broker_for, push_ids, wait_until

# pops on FerretDB scan the whole queue (its SQLite backend pushes little down), so they slow down
# as the queue grows: fewer, longer tasks there keep the chaos as long
TASKS = {'local': 2000, 'redis': 2000, 'mongo': 400}
KILLS = 4
# victims must have lived past the supervisor's start-up window (3 s), so it respawns them at once
MIN_VICTIM_AGE = 3.5


@dataclasses.dataclass(frozen=True)
class Mode:
    tasks_per_transaction: int
    threads: int
    task_seconds: float
    mongo_task_seconds: float
    seed: int  # of the random choice of victims and pauses

    def held_per_worker(self) -> int:
        """The most tasks one worker holds leased: waiting ones (transaction + prefetch) and running ones."""
        prefetch = config.Delivery().prefetch_tasks(self.tasks_per_transaction)
        return self.tasks_per_transaction + prefetch + self.threads


MODES = {
    'batch': Mode(tasks_per_transaction=20, threads=1, task_seconds=0.01, mongo_task_seconds=0.04, seed=20),
    'threaded': Mode(tasks_per_transaction=1, threads=4, task_seconds=0.04, mongo_task_seconds=0.1, seed=21),
}


def kill_workers_at_random(
    run: SupervisorRun, kills: int, finished: Callable[[], bool], seed: int
) -> list[int]:
    """SIGKILL a random worker old enough every 0.3-1 s until ``kills`` landed or ``finished()``."""
    chooser = random.Random(seed)
    killed: list[int] = []
    deadline = time.monotonic() + 120
    while len(killed) < kills and not finished() and time.monotonic() < deadline:
        time.sleep(chooser.uniform(0.3, 1.0))
        now = time.time()
        victims = [worker for worker in run.workers() if now - worker.create_time() >= MIN_VICTIM_AGE]
        if victims:
            victim = chooser.choice(victims)
            victim.send_signal(signal.SIGKILL)
            killed.append(victim.pid)
    return killed


@pytest.mark.parametrize('mode', list(MODES), ids=list(MODES))
def test_sigkill_chaos_loses_no_task_and_repeats_only_what_the_victims_held(
    supervise: Supervise, broker_settings: dict[str, Any], mode: str, record_property: Record
) -> None:
    # given 2000 tasks (400 on MongoDB) for two workers consuming in batches of 20, or in 4 threads each
    settings = MODES[mode]
    kind = broker_settings['type']
    tasks = TASKS[kind]
    task_seconds = settings.mongo_task_seconds if kind == 'mongo' else settings.task_seconds
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
        env={
            'TEST_TASKS_PER_TRANSACTION': str(settings.tasks_per_transaction),
            'TEST_THREADS': str(settings.threads),
            'TEST_TASK_SECONDS': str(task_seconds),
        },
    )

    # when random workers are SIGKILLed again and again while the tasks run
    killed = kill_workers_at_random(
        run, KILLS, lambda: len(set(run.processed_ids())) == tasks, seed=settings.seed
    )
    record_property('kills', len(killed))

    # then every task is processed, none lost, and only the victims' leased tasks ran twice
    wait_until(lambda: len(set(run.processed_ids())) == tasks, 180, 'every task processed', interval=0.5)
    record_property('wall_s', since(started))
    assert len(killed) >= KILLS - 1, f'only {len(killed)} kills landed before the queue was empty'
    wait_until(lambda: queue_is_empty(broker), 60, 'no task left ready or in flight')
    counts = tally(run.processed_ids(), range(tasks))
    bound = len(killed) * settings.held_per_worker()
    record_tally(record_property, counts, bound)
    assert counts.lost == [] and counts.strangers == [], counts
    assert counts.duplicates <= bound, counts
    # and nothing was dead-lettered: a redelivery after a crash is no failure of the task
    letters = dead_letters(broker)
    record_property('dead_letters', len(letters))
    assert letters == []
    # and each kill was seen by the supervisor, which replaced the worker
    run.wait_for_log('crashed, signal SIGKILL', timeout=30, count=len(killed))
    assert run.log().count('crashed, signal SIGKILL') == len(killed)
    assert not any(psutil.pid_exists(pid) for pid in killed)
    wait_until(lambda: len(run.workers()) == 2, 30, 'both slots filled again')
    run.send(signal.SIGTERM)
    assert run.wait(60) == 0
