"""A worker with task metrics on counts what its loop did, on the embedded broker (no mocks)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sergeant import Task, config
from sergeant.metrics import MetricsFlusher, TaskSnapshot
from sergeant.worker import Worker
from tests.supervisor.conftest import wait_until


class CountedWorker(Worker):
    """Succeeds, fails or waits for a signal, as each task's ``action`` says."""

    def __init__(self, broker_file: Path, threads: int = 1, timeout: float = 0.0) -> None:
        self.broker_file = broker_file
        self.threads = threads
        self.timeout = timeout
        self.started = threading.Event()
        self.release = threading.Event()
        super().__init__()

    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(
            name='counted',
            connector=config.Connector(type='local', params={'file_path': str(self.broker_file)}),
            tasks_per_transaction=10,
            number_of_threads=self.threads,
            timeouts=config.Timeouts(timeout=self.timeout),
            starvation=config.Starvation(time_with_no_tasks=1),
        )

    def work(self, task: Task) -> Any:
        if task.kwargs['action'] == 'fail':
            raise ValueError('failed on purpose')
        if task.kwargs['action'] == 'block':
            self.started.set()
            self.release.wait(30)

    def on_starvation(self, time_with_no_tasks: int) -> None:
        self.stop()


def fill(worker: CountedWorker, actions: list[str]) -> None:
    worker.init_worker()
    worker.push_tasks([{'action': action} for action in actions])


def test_outcomes_and_durations_count_the_tasks_that_ran(tmp_path: Path) -> None:
    # given 30 succeeding and 7 failing tasks, and an undecodable payload
    worker = CountedWorker(tmp_path / 'broker.sqlite3')
    fill(worker, ['succeed'] * 30 + ['fail'] * 7)
    worker.broker.connector.push('counted', [b'not a task'])

    # when the worker runs with task metrics on
    metrics = worker.enable_task_metrics()
    worker.work_loop()

    # then outcomes are counted, and every task that ran (not the payload) has a duration
    snapshot = metrics.snapshot()
    assert snapshot.outcomes == {'success': 30, 'failure': 7, 'dead_letter': 1}
    assert sum(snapshot.duration_counts) == 37
    assert snapshot.duration_sum > 0
    assert snapshot.in_flight == 0


def test_every_path_of_the_runner_times_each_task(tmp_path: Path) -> None:
    # given workers with threads and with a time limit (the general paths)
    for number, (threads, timeout) in enumerate([(3, 0.0), (1, 30.0)]):
        worker = CountedWorker(tmp_path / f'broker-{number}.sqlite3', threads, timeout)
        fill(worker, ['succeed'] * 20 + ['fail'] * 3)

        # when each runs with task metrics on
        metrics = worker.enable_task_metrics()
        worker.work_loop()

        # then each task was timed once
        assert sum(metrics.snapshot().duration_counts) == 23


def test_the_running_task_is_in_flight_and_the_flusher_sends_the_end(tmp_path: Path) -> None:
    # given a worker whose first task blocks, sending snapshots to a list
    worker = CountedWorker(tmp_path / 'broker.sqlite3')
    fill(worker, ['block', 'succeed', 'succeed'])
    sent: list[TaskSnapshot] = []
    metrics = worker.enable_task_metrics()
    flusher = MetricsFlusher(metrics, sent.append, interval=0.05)
    loop = threading.Thread(target=lambda: _run(worker, flusher))
    loop.start()

    # when the blocking task runs, then a snapshot says one task is in flight
    assert worker.started.wait(30)
    wait_until(lambda: bool(sent) and sent[-1].in_flight == 1, 30, 'a snapshot with a task in flight')

    # and when the loop ends, the last snapshot holds every task and none in flight
    worker.release.set()
    loop.join(60)
    assert sent[-1].outcomes == {'success': 3}
    assert sum(sent[-1].duration_counts) == 3
    assert sent[-1].in_flight == 0


def _run(worker: CountedWorker, flusher: MetricsFlusher) -> None:
    with flusher:
        worker.work_loop()
