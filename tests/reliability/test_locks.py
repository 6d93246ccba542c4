"""Locks across worker kills, on every broker.

A worker holding a lock with a ttl is SIGKILLed: the lock outlives its holder
until the ttl runs out (nobody else gets it meanwhile, and a lock object whose
own hold had expired cannot release it), then it is free again: the task,
delivered again to the replacement worker, takes it, and after its release
another holder does.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

from sergeant import Task
from tests.reliability.conftest import Record, dead_letters, queue_is_empty, since
from tests.supervisor.conftest import QUEUE, Supervise, broker_for, wait_until

TTL = 4
LOCK = 'fault-suite-lock'


def acquisitions(path: Path) -> list[tuple[int, int, float]]:
    """``(pid, run_count, time.time())`` of every time a task took the lock."""
    if not path.exists():
        return []
    return [
        (int(pid), int(run_count), float(at))
        for pid, run_count, at in (line.split() for line in path.read_text().splitlines())
    ]


def test_a_lock_of_a_killed_worker_is_held_until_its_ttl_then_free_for_another_holder(
    supervise: Supervise, broker_settings: dict[str, Any], tmp_path: Path, record_property: Record
) -> None:
    broker = broker_for(broker_settings)
    # given a lock object whose hold of the lock expired (it took the lock for 1 s, long ago)
    stale = broker.lock(LOCK)
    assert stale.acquire(timeout=0, ttl=1)
    wait_until(lambda: not broker.lock(LOCK).is_locked(), 10, 'the stale hold to expire')

    # and a worker running a task that took the lock for 4 s
    locks = tmp_path / 'locks.txt'
    broker.push_tasks(QUEUE, [Task(kwargs={'id': 1, 'lock': LOCK, 'ttl': TTL})])
    run = supervise(
        'supervised_locks', 'LockWorker', settings=broker_settings, env={'TEST_LOCKS': str(locks)}
    )
    wait_until(lambda: len(acquisitions(locks)) == 1, 60, 'the task to take the lock')
    [(holder, _, taken_at)] = acquisitions(locks)

    # when the worker holding it is SIGKILLed
    [worker] = run.workers()
    assert worker.pid == holder
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    record_property('kills', 1)

    # then the lock is still held, nobody else can take it, and the stale object cannot release it
    other = broker.lock(LOCK)
    assert other.is_locked()
    assert not other.acquire(timeout=0)
    assert not stale.release(), 'released by an object that no longer held it'
    assert other.is_locked()
    # and once its ttl ran out the task, delivered again to the replacement worker, took it
    wait_until(lambda: len(acquisitions(locks)) == 2, 60, 'the task to take the lock again')
    [_, (again_by, run_count, again_at)] = acquisitions(locks)
    record_property('lock_wait_s', round(again_at - taken_at, 2))
    record_property('ttl_s', TTL)
    assert again_by != holder and run_count == 1
    assert again_at >= taken_at + TTL - 0.05, f'taken again {again_at - taken_at:.2f} s after, ttl {TTL} s'
    # and after the task released it, another holder gets it
    wait_until(lambda: run.processed_ids() == [1], 30, 'the task to end')
    acquiring = time.monotonic()
    acquired = other.acquire(timeout=10, check_interval=0.05, ttl=TTL)
    record_property('acquire_s', since(acquiring))
    assert acquired
    assert other.release() and not broker.lock(LOCK).is_locked()
    wait_until(lambda: queue_is_empty(broker), 30, 'no task left ready or in flight')
    letters = dead_letters(broker)
    record_property('dead_letters', len(letters))
    assert letters == []
    run.send(signal.SIGTERM)
    assert run.wait(60) == 0
