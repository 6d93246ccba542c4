"""``/metrics`` of a real supervisor with two workers on a real Redis adds up every task processed."""

from __future__ import annotations

import itertools
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psutil

from sergeant import Task
from sergeant.metrics import DURATION_BUCKETS, OUTCOMES
from tests.observability.conftest import Scrape, sample, scrape, supervise_observed, try_scrape
from tests.supervisor.conftest import QUEUE, Supervise, SupervisorRun, broker_for, push_ids, wait_until

COUNTERS = ('sergeant_tasks_total', 'sergeant_task_duration_seconds_count', 'sergeant_worker_respawns_total')


def push_actions(settings: dict[str, Any], actions: dict[str, int]) -> None:
    broker = broker_for(settings)
    start = 0
    for action, count in actions.items():
        push_ids(broker, range(start, start + count), action=action)
        start += count


@contextmanager
def watching(port: int) -> Iterator[list[Scrape]]:
    """Scrape ``port`` every 0.1 s in a thread while inside; the scrapes taken are in the list."""
    scrapes: list[Scrape] = []
    stop = threading.Event()

    def keep_scraping() -> None:
        while not stop.wait(0.1):
            found = try_scrape(port)
            if found is not None:
                scrapes.append(found)

    thread = threading.Thread(target=keep_scraping, daemon=True)
    thread.start()
    try:
        yield scrapes
    finally:
        stop.set()
        thread.join(30)


def assert_never_backwards(scrapes: list[Scrape]) -> None:
    for earlier, later in itertools.pairwise(scrapes):
        for (name, labels), value in earlier.samples.items():
            if name in COUNTERS or name.endswith('_bucket') or name.endswith('_total'):
                assert later.samples.get((name, labels), 0.0) >= value, f'{name}{dict(labels)} went backwards'


def start(supervise: Supervise, settings: dict[str, Any], **env: str) -> tuple[SupervisorRun, int]:
    return supervise_observed(supervise, settings, env={'TEST_LEASE_SECONDS': '1', **env})


def test_counts_equal_the_tasks_processed_across_respawns(
    supervise: Supervise, redis_settings: dict[str, Any]
) -> None:
    # given tasks of every outcome, a payload that cannot be decoded, and workers replaced every 7 tasks
    actions = {'succeed': 40, 'fail': 6, 'retry': 5, 'requeue': 4}
    push_actions(redis_settings, actions)
    broker_for(redis_settings).connector.push(QUEUE, [b'not a task'])

    # when a supervisor runs 2 workers and is scraped all along
    run, port = start(supervise, redis_settings, TEST_MAX_TASKS_PER_RUN='7')
    runs = 40 + 6 + 2 * 5 + 2 * 4  # retried and requeued tasks run twice
    with watching(port) as scrapes:
        wait_until(lambda: len(run.records()) == runs, 120, f'{runs} task runs')
        expected = {
            'success': 40 + 4,
            'failure': 6,
            'timeout': 0,
            'retry': 5,
            'max_retries': 5,
            'requeue': 4,
            'dead_letter': 1,
        }

        def counted() -> dict[str, float | None]:
            final = scrape(port)
            return {
                outcome: final.value('sergeant_tasks_total', worker=QUEUE, outcome=outcome)
                for outcome in OUTCOMES
            }

        wait_until(lambda: counted() == expected, 30, f'/metrics to count {expected}')

    # then the counts equal the tasks processed, with a duration for each run
    final = scrape(port)
    assert final.families['sergeant_tasks'] == 'counter'
    assert final.families['sergeant_task_duration_seconds'] == 'histogram'
    assert final.value('sergeant_task_duration_seconds_count', worker=QUEUE) == runs
    assert final.value('sergeant_task_duration_seconds_bucket', worker=QUEUE, le='+Inf') == runs
    assert (
        final.value('sergeant_task_duration_seconds_bucket', worker=QUEUE, le=repr(DURATION_BUCKETS[0]))
        is not None
    )
    assert (final.value('sergeant_task_duration_seconds_sum', worker=QUEUE) or 0) > 0
    # and workers were replaced, counted by reason, and the counters never went backwards
    assert len(run.worker_pids()) > 2
    assert (final.value('sergeant_worker_respawns_total', reason='finished') or 0) >= 1
    assert final.value('sergeant_worker_respawns_total', reason='crashed') == 0
    assert final.value('sergeant_worker_slots') == 2
    assert_never_backwards(scrapes)
    assert len(scrapes) > 5
    run.send(signal.SIGTERM)
    assert run.wait() == 0


def test_a_killed_worker_is_counted_and_counters_do_not_go_backwards(
    supervise: Supervise, redis_settings: dict[str, Any]
) -> None:
    # given slow-ish tasks (redelivered without limit if their worker dies)
    push_actions(redis_settings, {'succeed': 60})
    run, port = start(
        supervise, redis_settings, TEST_TASK_SECONDS='0.05', TEST_MAX_RETRIES='0', TEST_PREFETCH='0'
    )

    with watching(port) as scrapes:
        # when one worker is SIGKILLed after both processed a few tasks
        wait_until(lambda: len(run.worker_pids()) == 2 and len(run.records()) >= 10, 60, 'both workers busy')
        victim = run.records()[-1][0]
        psutil.Process(victim).send_signal(signal.SIGKILL)
        wait_until(lambda: len(set(run.processed_ids())) == 60, 120, 'every task processed')
        survivors = len([pid for pid, _task in run.records() if pid != victim])

        # then the crash is counted, and every task of the other processes arrives
        wait_until(
            lambda: scrape(port).value('sergeant_worker_respawns_total', reason='crashed') == 1,
            30,
            'the crash to be counted',
        )
        wait_until(
            lambda: (
                (scrape(port).value('sergeant_tasks_total', worker=QUEUE, outcome='success') or 0)
                >= survivors
            ),
            30,
            f'at least {survivors} successes',
        )

    # and no counter ever went backwards
    assert_never_backwards(scrapes)
    final = scrape(port)
    assert final.value('sergeant_worker_processes') == 2
    assert (final.value('sergeant_tasks_total', worker=QUEUE, outcome='success') or 0) <= len(run.records())
    run.send(signal.SIGTERM)
    assert run.wait() == 0


def test_timeouts_are_counted(supervise: Supervise, redis_settings: dict[str, Any]) -> None:
    # given a task that runs past the 0.5 s time limit and one that does not
    broker = broker_for(redis_settings)
    push_ids(broker, range(1), action='sleep', seconds=5)
    push_ids(broker, range(1, 2))

    # when a supervisor runs them
    run, port = start(supervise, redis_settings, TEST_TIMEOUT='0.5')

    # then one timeout and one success are counted, each with a duration
    def outcome(name: str) -> float | None:
        return sample(port, 'sergeant_tasks_total', worker=QUEUE, outcome=name)

    wait_until(lambda: outcome('timeout') == 1 and outcome('success') == 1, 60, 'a timeout and a success')
    final = scrape(port)
    assert final.value('sergeant_task_duration_seconds_count', worker=QUEUE) == 2
    assert final.value('sergeant_task_duration_seconds_bucket', worker=QUEUE, le='0.25') == 1
    run.send(signal.SIGTERM)
    assert run.wait() == 0


def test_queue_wait_runs_from_push_or_due_time_to_the_start_of_the_run(
    supervise: Supervise, redis_settings: dict[str, Any]
) -> None:
    # given 10 tasks that wait 2.5 s in the queue before any worker exists, and one delayed by 4 s
    broker = broker_for(redis_settings)
    push_ids(broker, range(10))
    broker.push_tasks(QUEUE, [Task(kwargs={'id': 10})], consumable_from=time.time() + 4)
    time.sleep(2.5)

    # when a supervisor runs them all
    run, port = start(supervise, redis_settings)
    wait_until(lambda: len(set(run.processed_ids())) == 11, 60, 'every task processed')

    # then each run observed its wait: the ten above 2.5 s, the delayed one counted from its due time
    def waits() -> float | None:
        return sample(port, 'sergeant_task_queue_wait_seconds_count', worker=QUEUE)

    wait_until(lambda: waits() == 11, 30, '11 queue waits on /metrics')
    final = scrape(port)
    assert final.families['sergeant_task_queue_wait_seconds'] == 'histogram'
    assert final.value('sergeant_task_queue_wait_seconds_bucket', worker=QUEUE, le='2.5') == 1
    assert final.value('sergeant_task_queue_wait_seconds_bucket', worker=QUEUE, le='+Inf') == 11
    assert (final.value('sergeant_task_queue_wait_seconds_sum', worker=QUEUE) or 0) >= 25
    run.send(signal.SIGTERM)
    assert run.wait() == 0


def test_queue_lengths_and_worker_memory_are_exported(
    supervise: Supervise, redis_settings: dict[str, Any]
) -> None:
    # given delayed tasks, dead letters and a running worker pool with a memory limit
    broker = broker_for(redis_settings)
    push_actions(redis_settings, {'retry': 2})
    broker.connector.push(QUEUE, [b'x', b'y'], consumable_from=2**40)
    run, port = supervise_observed(supervise, redis_settings, '--max-worker-memory-usage', '1Gi')

    # when the retried tasks ended in the dead-letter queue
    def dead_letters() -> float | None:
        return sample(port, 'sergeant_queue_length', queue=QUEUE, state='dead_letter')

    wait_until(lambda: dead_letters() == 2, 60, 'two dead letters in /metrics')

    # then queue lengths, the broker's state and each worker's memory are there
    final = scrape(port)
    assert final.value('sergeant_queue_length', queue=QUEUE, state='delayed') == 2
    assert final.value('sergeant_queue_length', queue=QUEUE, state='ready') == 0
    assert final.value('sergeant_queue_length', queue=QUEUE, state='in_flight') is not None
    assert final.value('sergeant_broker_up') == 1
    assert final.value('sergeant_worker_memory_limit_bytes') == 2**30
    for slot in ('0', '1'):
        assert (final.value('sergeant_worker_resident_memory_bytes', slot=slot) or 0) > 10**6
    assert (final.value('process_resident_memory_bytes') or 0) > 0  # the supervisor's own
    run.send(signal.SIGTERM)
    assert run.wait() == 0
