"""Tasks that kill their own worker: only tasks that had started are charged for the death.

A worker that dies leaves its leases behind. Its replacement hands them back at
once from the dead worker's start journal: the started tasks count a delivery,
the prefetched ones go back uncounted. In a threaded worker the tasks running
beside the killer are charged too, but run alone once before they could be
dead-lettered for deaths they only shared (see ``sergeant.loop.isolation``).

Leases here last 60 s: every redelivery seen within the test comes from the hand-back.
"""

from __future__ import annotations

import collections
import signal
import time
from pathlib import Path
from typing import Any

from sergeant.objects import Task
from tests.reliability.conftest import Record, dead_letters, queue_is_empty, record_tally, since, tally
from tests.supervisor.conftest import QUEUE, Supervise, broker_for, wait_until

MAX_RETRIES = 2
GOOD = 40
KILLER = 1000


def run_killer_among_good_tasks(
    supervise: Supervise, settings: dict[str, Any], kill_after: float, env: dict[str, str], record: Record
) -> tuple[collections.Counter[int], list[Any]]:
    """Push the killer, then the good tasks; record the figures; return the runs per id and the dead letters.

    ``runs_alone`` counts the ids run more than max_retries + 1 times: such a run is only granted alone.
    """
    broker = broker_for(settings)
    broker.push_tasks(QUEUE, [Task(kwargs={'id': KILLER, 'kill': kill_after})])
    broker.push_tasks(QUEUE, [Task(kwargs={'id': number}) for number in range(GOOD)])
    record('tasks', GOOD)
    started = time.monotonic()
    run = supervise(
        'supervised_killer',
        'KillerWorker',
        settings=settings,
        env={'TEST_MAX_RETRIES': str(MAX_RETRIES), 'TEST_LEASE_SECONDS': '60', **env},
    )

    def settled() -> bool:
        return set(range(GOOD)) <= set(run.processed_ids()) and len(dead_letters(broker)) == 1

    try:
        wait_until(settled, 120, 'every good task run and the killer dead-lettered', interval=0.2)
        record('wall_s', since(started))
        wait_until(lambda: queue_is_empty(broker), 30, 'nothing left in the queue')
    except AssertionError as error:
        runs = collections.Counter(run.processed_ids())
        raise AssertionError(f'{error}; runs {runs}\n{run.log()}') from None
    runs = collections.Counter(run.processed_ids())
    record('kills', run.log().count('crashed, signal SIGKILL'))
    record('killer_runs', runs[KILLER])
    record('runs_alone', sum(1 for count in runs.values() if count > MAX_RETRIES + 1))
    record('dead_letters', len(dead_letters(broker)))
    record_tally(record, tally([number for number in run.processed_ids() if number != KILLER], range(GOOD)))
    run.send(signal.SIGTERM)
    assert run.wait(60) == 0
    return collections.Counter(run.processed_ids()), dead_letters(broker)


def test_a_killer_is_dead_lettered_and_its_unstarted_batch_mates_are_not_charged(
    supervise: Supervise, broker_settings: dict[str, Any], record_property: Record
) -> None:
    # given a serial worker taking 8 tasks at a time, the first of them a task that kills it at once
    # when it runs
    runs, letters = run_killer_among_good_tasks(
        supervise,
        broker_settings,
        kill_after=0,
        env={'TEST_TASKS_PER_TRANSACTION': '8'},
        record=record_property,
    )
    record_property('duplicate_bound', 0)

    # then the killer ran max_retries + 1 times and is the only dead letter
    assert runs[KILLER] == MAX_RETRIES + 1
    assert [letter.task.kwargs['id'] for letter in letters if letter.task] == [KILLER]
    assert 'died' in letters[0].reason
    # and every good task ran exactly once: none had started when the worker died
    assert {number: runs[number] for number in range(GOOD)} == dict.fromkeys(range(GOOD), 1)


def test_tasks_dying_beside_a_killer_run_alone_before_they_could_be_dead_lettered(
    supervise: Supervise, broker_settings: dict[str, Any], record_property: Record
) -> None:
    # given a worker of 4 threads whose tasks take 0.5 s, and a task that kills it 0.3 s after it
    # started, while three good tasks run beside it
    runs, letters = run_killer_among_good_tasks(
        supervise,
        broker_settings,
        kill_after=0.3,
        env={'TEST_THREADS': '4', 'TEST_TASK_SECONDS': '0.5'},
        record=record_property,
    )

    # then the killer ran max_retries + 1 times beside others, then once alone, and is the only dead
    # letter, marked as having killed its worker when alone
    assert runs[KILLER] == MAX_RETRIES + 2
    assert [letter.task.kwargs['id'] for letter in letters if letter.task] == [KILLER]
    assert 'alone' in letters[0].reason
    # and every good task ran; the ones beside the killer ran again, alone the last time
    assert set(runs) - {KILLER} == set(range(GOOD))
    beside = [number for number in range(GOOD) if runs[number] > 1]
    record_property('beside', len(beside))
    assert len(beside) == 3
    assert all(runs[number] == MAX_RETRIES + 2 for number in beside)


DELAYED = 24
LATENESS_BOUND = 2.5  # seconds after its due time a delayed task starts, even across a kill


def test_delayed_tasks_run_on_time_and_once_across_a_worker_kill(
    supervise: Supervise, broker_settings: dict[str, Any], record_property: Record
) -> None:
    # given a worker and 24 delayed tasks of 0.1 s coming due 2 to 9.5 s after they were pushed
    broker = broker_for(broker_settings)
    run = supervise(
        'supervised_punctual',
        'PunctualWorker',
        settings=broker_settings,
        env={'TEST_LEASE_SECONDS': '60', 'TEST_TASK_SECONDS': '0.1'},
    )
    run.wait_for_log('worker \\d+ started')
    pushed_at = time.time()
    due = {number: pushed_at + 2 + number * 7.5 / (DELAYED - 1) for number in range(DELAYED)}
    for number, due_at in due.items():
        broker.push_tasks(QUEUE, [Task(kwargs={'id': number})], consumable_from=due_at)
    record_property('tasks', DELAYED)
    started = time.monotonic()

    # when the worker is SIGKILLed 4 s after the push
    time.sleep(max(0.0, pushed_at + 4 - time.time()))
    [victim] = run.workers()
    victim.send_signal(signal.SIGKILL)
    killed_at = time.time()
    record_property('kills', 1)
    wait_until(lambda: set(run.processed_ids()) == set(due), 60, 'every delayed task run', interval=0.2)
    record_property('wall_s', since(started))
    wait_until(lambda: queue_is_empty(broker), 30, 'nothing left in the queue')

    # then each ran once, unless it had started on the killed worker, and none was late by more
    # than the bound
    runs: dict[int, list[float]] = collections.defaultdict(list)
    for line in Path(str(run.output) + '.times').read_text().splitlines():
        number, at = line.split()
        runs[int(number)].append(float(at))
    twice = {number: at for number, at in runs.items() if len(at) > 1}
    late = {number: round(at[0] - due[number], 2) for number, at in runs.items()}
    record_tally(record_property, tally(run.processed_ids(), range(DELAYED)))
    record_property('max_late_s', max(late.values()))
    record_property('late_bound_s', LATENESS_BOUND)
    assert all(len(at) == 2 and at[0] <= killed_at for at in twice.values()), f'ran again: {twice}'
    assert all(-0.05 <= lateness <= LATENESS_BOUND for lateness in late.values()), f'lateness: {late}'
    run.send(signal.SIGTERM)
    assert run.wait(60) == 0
