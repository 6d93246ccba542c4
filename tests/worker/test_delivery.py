"""Delivery guarantees seen from a worker: leases, redelivery, dead letters, signing."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from sergeant import Task, config
from sergeant.codec import TaskCodec
from sergeant.encoder import Encoder
from sergeant.errors import ConfigError

from .conftest import ConfiguredWorker
from .test_work_loop import Recorder

Build = Callable[..., Any]
SIGNED = config.Encoder(signing_key='a-secret-key-of-32-characters-ok')


def test_undecodable_payload_is_dead_lettered_and_the_loop_goes_on(build_worker: Build) -> None:
    worker = build_worker(Recorder, max_tasks_per_run=1)
    worker.broker.connector.push('tasks', [b'\x00not a pickle'])
    worker.push_task({'n': 1})

    summary = worker.work_loop()

    assert worker.events('on_success') == [1]
    assert summary['tasks']['dead_letter'] == 1
    [dead] = worker.dead_letter_tasks()
    assert dead.task is None
    assert dead.payload == b'\x00not a pickle'
    assert 'undecodable' in dead.reason
    assert worker.broker.connector.in_flight('tasks') == 0


@pytest.mark.parametrize(
    ('wire_form', 'field'),
    [
        ([{'n': 'bad'}, None, 1.0, '1'], 'run_count'),
        ([{'n': 'bad'}, None, 1.0, -1], 'run_count'),
        ([{'n': 'bad'}, None, 1.0, True], 'run_count'),
        ([{'n': 'bad'}, None, 'yesterday', 0], 'date'),
        ([{'n': 'bad'}, 7, 1.0, 0], 'trace_id'),
        ([['n', 'bad'], None, 1.0, 0], 'kwargs'),
    ],
)
def test_task_with_a_wrong_typed_field_is_dead_lettered_naming_it(
    build_worker: Build, wire_form: list[Any], field: str
) -> None:
    worker = build_worker(Recorder, max_tasks_per_run=2, encoder=config.Encoder(serializer='json'))
    worker.push_task({'n': 1})
    worker.broker.connector.push('tasks', [worker.broker.encoder.encode(wire_form)])
    worker.push_task({'n': 2})

    summary = worker.work_loop()

    assert worker.events('on_success') == [1, 2]
    assert summary['reason'] == 'max_tasks_per_run'
    [dead] = worker.dead_letter_tasks()
    assert f'task field {field} ' in dead.reason
    assert worker.broker.connector.in_flight('tasks') == 0


def test_payload_signed_with_another_key_is_dead_lettered_unread(build_worker: Build) -> None:
    worker = build_worker(Recorder, max_tasks_per_run=1, encoder=SIGNED)
    forger = TaskCodec(
        worker.broker.connector, Encoder(config.Encoder(signing_key='not-the-key-but-long-enough'))
    )
    forger.push_tasks('tasks', [Task(kwargs={'n': 'forged'})])
    worker.push_task({'n': 'genuine'})

    worker.work_loop()

    assert worker.events('on_success') == ['genuine']
    [dead] = worker.dead_letter_tasks()
    assert 'signature' in dead.reason


def test_tampered_payload_is_dead_lettered(build_worker: Build) -> None:
    worker = build_worker(Recorder, max_tasks_per_run=1, encoder=SIGNED)
    payload = bytearray(worker.broker.encode_task(Task(kwargs={'n': 'original'})))
    payload[-3] ^= 0xFF
    worker.broker.connector.push('tasks', [bytes(payload)])
    worker.push_task({'n': 'intact'})

    worker.work_loop()

    assert worker.events('on_success') == ['intact']
    assert 'signature' in worker.dead_letter_tasks()[0].reason


def test_unsigned_payload_is_refused_when_signing_is_on(build_worker: Build) -> None:
    worker = build_worker(Recorder, max_tasks_per_run=1, encoder=SIGNED)
    unsigned = TaskCodec(worker.broker.connector, Encoder(config.Encoder()))
    unsigned.push_tasks('tasks', [Task(kwargs={'n': 'unsigned'})])
    worker.push_task({'n': 'signed'})

    worker.work_loop()

    assert worker.events('on_success') == ['signed']
    assert worker.number_of_dead_letter_tasks() == 1


def test_task_of_a_worker_that_vanished_is_redelivered_as_a_retry(build_worker: Build) -> None:
    worker = build_worker(Recorder, max_tasks_per_run=1)
    worker.push_task({'n': 1})
    [_taken] = worker.broker.connector.pop('tasks', 1, lease_seconds=0.5)  # a worker took it, then died

    worker.work_loop()

    assert worker.events('work') == [(1, 1)], 'redelivered once the lease expired, counted as a retry'


def test_task_that_keeps_killing_its_worker_ends_in_the_dead_letter_queue(build_worker: Build) -> None:
    worker = build_worker(Recorder, max_retries=2, starvation=config.Starvation(time_with_no_tasks=1))
    worker.push_task({'n': 'poison'})
    for _ in range(3):  # three workers died running it
        assert worker.broker.connector.pop('tasks', 1, lease_seconds=0.3)
        time.sleep(0.4)

    worker.work_loop()

    assert worker.events('work') == []
    assert worker.events('on_max_retries') == [3]
    [dead] = worker.dead_letter_tasks()
    assert 'redelivered' in dead.reason
    assert worker.broker.connector.in_flight('tasks') == 0


def test_long_task_keeps_its_lease(build_worker: Build) -> None:
    started = threading.Event()

    class Slow(ConfiguredWorker):
        def work(self, task: Task) -> Any:
            started.set()
            time.sleep(2.5)

    worker = build_worker(Slow, max_tasks_per_run=1, delivery=config.Delivery(lease_seconds=0.6))
    worker.push_task({'n': 1})
    stolen: list[object] = []
    loop = threading.Thread(target=worker.work_loop)
    loop.start()
    assert started.wait(timeout=10)
    other = worker.broker.connector
    while loop.is_alive():
        stolen.extend(other.pop('tasks', 1, lease_seconds=10))
        time.sleep(0.1)
    loop.join()

    assert stolen == [], 'a running task must not be delivered to another worker'
    assert other.in_flight('tasks') == 0


def test_dead_letters_can_be_requeued_and_processed(build_worker: Build) -> None:
    worker = build_worker(Recorder, max_tasks_per_run=2, max_retries=1)
    worker.push_task({'n': 1, 'action': 'fail', 'retry': True})
    worker.work_loop()
    assert worker.number_of_dead_letter_tasks() == 1

    assert worker.requeue_dead_letter_tasks() == 1

    assert worker.number_of_dead_letter_tasks() == 0
    assert worker.get_next_tasks(1)[0].kwargs['n'] == 1


def test_at_most_once_pops_without_leases(build_worker: Build) -> None:
    class Observer(Recorder):
        def work(self, task: Task) -> Any:
            self.calls.append(('in_flight', self.broker.connector.in_flight('tasks')))
            return super().work(task)

    worker = build_worker(
        Observer,
        max_tasks_per_run=3,
        tasks_per_transaction=3,
        delivery=config.Delivery(guarantee='at_most_once'),
    )
    worker.push_tasks([{'n': n} for n in range(3)])

    worker.work_loop()

    assert worker.events('in_flight') == [0, 0, 0]
    assert worker.events('on_success') == [0, 1, 2]


def test_at_most_once_stop_pushes_unstarted_tasks_back(build_worker: Build) -> None:
    worker = build_worker(
        Recorder, tasks_per_transaction=5, delivery=config.Delivery(guarantee='at_most_once')
    )
    worker.push_tasks([{'n': n, 'action': 'stop' if n == 1 else 'succeed'} for n in range(5)])

    worker.work_loop()

    assert sorted(task.kwargs['n'] for task in worker.get_next_tasks(10)) == [2, 3, 4]


def test_the_signing_key_may_come_from_the_environment(
    build_worker: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv('SERGEANT_SIGNING_KEY', 'a-key-from-a-kubernetes-secret')
    worker = build_worker(Recorder, max_tasks_per_run=1)
    unsigned = TaskCodec(worker.broker.connector, Encoder(config.Encoder()))
    unsigned.push_tasks('tasks', [Task(kwargs={'n': 'unsigned'})])
    worker.push_task({'n': 'signed'})

    worker.work_loop()

    assert worker.events('on_success') == ['signed']
    [dead] = worker.dead_letter_tasks()
    assert 'signature' in dead.reason


def test_a_short_signing_key_in_the_environment_is_refused_naming_the_variable(
    build_worker: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv('SERGEANT_SIGNING_KEY', 'short')

    with pytest.raises(ConfigError) as caught:
        build_worker(Recorder)

    assert caught.value.field == 'SERGEANT_SIGNING_KEY'


@pytest.mark.parametrize(
    ('encoder', 'warned'),
    [(config.Encoder(), True), (SIGNED, False), (config.Encoder(serializer='msgpack'), False)],
)
def test_a_worker_that_unpickles_unsigned_payloads_warns_once_at_start(
    build_worker: Build, caplog: pytest.LogCaptureFixture, encoder: config.Encoder, warned: bool
) -> None:
    worker = build_worker(Recorder, max_tasks_per_run=2, encoder=encoder)
    worker.push_tasks([{'n': 1}, {'n': 2}])

    with caplog.at_level(logging.WARNING, logger='sergeant.worker'):
        worker.work_loop()

    warnings = [record for record in caplog.records if 'unsigned payloads' in record.getMessage()]
    assert len(warnings) == (1 if warned else 0)
