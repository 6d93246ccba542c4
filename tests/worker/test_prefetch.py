"""Prefetching: the next tasks are leased while the current ones run, bounded, and handed back on stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sergeant import Task, config

from .conftest import ConfiguredWorker
from .test_work_loop import Recorder

Build = Callable[..., Any]


class InFlightObserver(Recorder):
    """Records how many tasks are leased (running, prefetched or being fetched) as each task runs."""

    def work(self, task: Task) -> Any:
        self.calls.append(('in_flight', self.broker.connector.in_flight('tasks')))
        return super().work(task)


@pytest.fixture(params=['local', 'redis'])
def connector(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[config.Connector]:
    if request.param == 'local':
        yield config.Connector(type='local', params={'file_path': str(tmp_path / 'broker.sqlite3')})
        return
    from tests.servers.redis import running_redis

    with running_redis(tmp_path / 'redis') as server:
        yield config.Connector(type='redis', params={'url': server.url})


def test_stop_hands_prefetched_tasks_back(build_worker: Build, connector: config.Connector) -> None:
    worker = build_worker(
        Recorder, connector=connector, delivery=config.Delivery(lease_seconds=30, prefetch=8)
    )
    worker.push_tasks([{'n': n, 'action': 'stop' if n == 1 else 'succeed'} for n in range(10)])

    summary = worker.work_loop()

    assert summary['stop'] is True
    assert worker.events('work') == [(0, 0), (1, 0)]
    assert worker.broker.connector.in_flight('tasks') == 0, 'nothing stays leased'
    handed_back = worker.get_next_tasks(20)
    assert [task.kwargs['n'] for task in handed_back] == list(range(2, 10)), 'in order, at the head'
    assert all(task.run_count == 0 for task in handed_back), 'a hand-back is not a delivery'


@pytest.mark.parametrize(
    ('tasks_per_transaction', 'prefetch', 'most_leased'),
    [(1, 0, 1), (3, 0, 3), (1, 4, 1 + 4 + 1), (2, 2, 2 + 2 + 1)],
)
def test_prefetch_bounds_the_leased_tasks(
    build_worker: Build,
    connector: config.Connector,
    tasks_per_transaction: int,
    prefetch: int,
    most_leased: int,
) -> None:
    worker = build_worker(
        InFlightObserver,
        connector=connector,
        max_tasks_per_run=20,
        tasks_per_transaction=tasks_per_transaction,
        delivery=config.Delivery(lease_seconds=30, prefetch=prefetch),
    )
    worker.push_tasks([{'n': n} for n in range(30)])

    worker.work_loop()

    leased = worker.events('in_flight')
    assert worker.events('on_success') == list(range(20))
    # waiting tasks (received or asked for) stay within tasks_per_transaction + prefetch;
    # the running one comes on top
    assert max(leased) <= most_leased
    if prefetch:
        assert max(leased) > tasks_per_transaction, 'tasks were fetched ahead'
    assert worker.broker.connector.in_flight('tasks') == 0
    assert worker.number_of_enqueued_tasks() == 10, 'max_tasks_per_run bounds what is taken'


def test_a_pop_goes_ahead_as_soon_as_the_received_tasks_leave_room_for_it(
    build_worker: Build, connector: config.Connector
) -> None:
    # given transactions of 4 and 8 tasks of prefetch: once the pace is known (after the
    # first transaction) up to 12 are held, and a pop goes ahead when it can ask for 6 or more
    worker = build_worker(
        InFlightObserver,
        connector=connector,
        max_tasks_per_run=30,
        tasks_per_transaction=4,
        delivery=config.Delivery(lease_seconds=30, prefetch=8),
    )
    worker.push_tasks([{'n': n} for n in range(40)])

    # when it runs 30 of them
    worker.work_loop()

    # then the leased tasks (done ones count until their acknowledgement rides on the next pop) are:
    # 0-3 the first transaction; 4-9 those, the second one and 8 asked ahead as it arrived;
    # 10-15 after 8 and 9 left room: 6 acknowledged, a whole transaction asked for (4 of 6);
    # 16-27 the same 8 ahead; 28-29 the 2 that max_tasks_per_run leaves, asked for only once
    # 20-27 were used up (it never leaves room for 6)
    assert worker.events('in_flight') == [4] * 4 + [12] * 6 + [10] * 6 + [12] * 12 + [2] * 2
    assert worker.number_of_enqueued_tasks() == 10


def test_at_most_once_takes_one_transaction_at_a_time(
    build_worker: Build, connector: config.Connector
) -> None:
    class QueueObserver(Recorder):
        def work(self, task: Task) -> Any:
            self.calls.append(('queued', self.number_of_enqueued_tasks()))
            return super().work(task)

    worker = build_worker(
        QueueObserver,
        connector=connector,
        max_tasks_per_run=4,
        delivery=config.Delivery(guarantee='at_most_once'),
    )
    worker.push_tasks([{'n': n} for n in range(4)])

    worker.work_loop()

    assert worker.events('queued') == [3, 2, 1, 0]


def test_a_pop_in_flight_behind_a_long_task_is_never_delivered_twice(
    build_worker: Build, connector: config.Connector
) -> None:
    started = threading.Event()

    class SlowSecond(ConfiguredWorker):
        def work(self, task: Task) -> Any:
            self.calls.append(('work', task.kwargs['n']))
            if task.kwargs['n'] == 1:
                started.set()
                time.sleep(2.5)

    # room for two waiting tasks: while task 1 runs, the pop of task 2 is in flight; leases shorter
    # than the long task
    worker = build_worker(
        SlowSecond, connector=connector, delivery=config.Delivery(lease_seconds=0.6, prefetch=1)
    )
    worker.push_tasks([{'n': n} for n in range(3)])
    loop = threading.Thread(target=worker.work_loop)
    loop.start()
    assert started.wait(timeout=10)
    other = worker.broker.connector.__class__.from_params(connector.params)  # type: ignore[attr-defined]
    taken: list[int] = []
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        for message in other.pop('tasks', 1, lease_seconds=10):
            taken.append(worker.broker.decode_task(message.payload).kwargs['n'])
            other.ack('tasks', [message.receipt])
        time.sleep(0.05)
    worker.received_stop_signal = True
    loop.join(30)

    # then the task waiting behind the long one went to the other consumer (handed back, not expired)
    # and no task was delivered twice
    ran = [n for _event, n in worker.calls]
    assert sorted(ran + taken) == [0, 1, 2], f'worker ran {ran}, the other consumer took {taken}'
    assert taken == [2]
    assert worker.broker.connector.in_flight('tasks') == 0
    assert worker.number_of_enqueued_tasks() == 0


def run_until_all_succeeded(
    workers: list[ConfiguredWorker], tasks: int, after_first: threading.Event | None = None
) -> None:
    """Run each worker's loop in a thread until ``tasks`` succeeded among them, then stop them.

    With ``after_first``, the other workers start only once it is set by the first one.
    """
    loops = [threading.Thread(target=worker.work_loop) for worker in workers]
    loops[0].start()
    if after_first is not None:
        assert after_first.wait(30)
    for loop in loops[1:]:
        loop.start()
    deadline = time.monotonic() + 30
    while sum(worker.outcomes['success'] for worker in workers) < tasks and time.monotonic() < deadline:
        time.sleep(0.05)
    for worker in workers:
        worker.received_stop_signal = True
    for loop in loops:
        loop.join(timeout=60)


def worked_on(worker: ConfiguredWorker) -> list[Any]:
    return [n for event, n in worker.calls if event == 'work']


def test_long_tasks_are_not_held_ahead_while_another_worker_idles(connector: config.Connector) -> None:
    class Slow(ConfiguredWorker):
        settings = config.WorkerConfig(
            name='long-tasks',
            connector=connector,
            logging=config.Logging(log_to_stdout=False),
            starvation=None,
        )  # default delivery: prefetching on, one task per transaction

        def work(self, task: Task) -> Any:
            self.calls.append(('work', task.kwargs['n']))
            time.sleep(0.6)

    workers = [Slow(), Slow()]
    for worker in workers:
        worker.init_worker()
    workers[0].push_tasks([{'n': n} for n in range(4)])

    run_until_all_succeeded(workers, 4)

    ran = [worked_on(worker) for worker in workers]
    assert sorted(ran[0] + ran[1]) == [0, 1, 2, 3]
    assert [len(tasks) for tasks in ran] == [2, 2], 'each worker ran two: none held the others hostage'


def test_tasks_waiting_behind_a_task_that_runs_long_go_to_an_idle_worker(connector: config.Connector) -> None:
    long_task_started = threading.Event()

    class Mixed(ConfiguredWorker):
        settings = config.WorkerConfig(
            name='mixed-tasks',
            connector=connector,
            logging=config.Logging(log_to_stdout=False),
            starvation=None,
        )  # default delivery: prefetching on, one task per transaction

        def work(self, task: Task) -> Any:
            self.calls.append(('work', task.kwargs['n']))
            if task.kwargs['n'] == 'long':
                long_task_started.set()
                time.sleep(3)

    busy, idle = Mixed(), Mixed()
    for worker in (busy, idle):
        worker.init_worker()
    tasks: list[Any] = [*range(10), 'long', *range(10, 35)]
    busy.push_tasks([{'n': n} for n in tasks])

    run_until_all_succeeded([busy, idle], len(tasks), after_first=long_task_started)

    ran = {'busy': worked_on(busy), 'idle': worked_on(idle)}
    assert sorted(map(str, ran['busy'] + ran['idle'])) == sorted(map(str, tasks)), 'each task ran once'
    # without handing back, the busy worker keeps the 16 it holds (room for 17, the long one included)
    # and the tasks of the pop it sent ahead; with it, everything behind the long task goes to the idle one
    after_long = [n for n in ran['idle'] if isinstance(n, int) and n >= 10]
    assert len(after_long) == 25, f'the idle worker took the tasks waiting behind the long one: {ran}'
