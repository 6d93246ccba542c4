"""The thread guard's switch, its log lines and its cost for tasks that start no thread."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from sergeant import ConfigError, Task, config
from sergeant.loop.summary import LoopEnd

from .conftest import ConfiguredWorker


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_stop_task_threads_is_on_unless_switched_off() -> None:
    assert config.WorkerConfig(name='w').stop_task_threads is True
    assert config.WorkerConfig(name='w', stop_task_threads=False).stop_task_threads is False


@pytest.mark.parametrize('value', ['no', 1, None])
def test_stop_task_threads_must_be_a_bool(value: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        config.WorkerConfig(name='w', stop_task_threads=value)

    assert caught.value.field == 'stop_task_threads'


class NoOp(ConfiguredWorker):
    def work(self, task: Task) -> Any:
        return None


@pytest.mark.parametrize('threads', [1, 2])
def test_tasks_that_start_no_thread_never_make_the_guard_look_at_threads(
    build_worker: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    # given no-op tasks, and a process where listing threads fails
    worker = build_worker(NoOp, number_of_threads=threads, max_tasks_per_run=200, tasks_per_transaction=50)
    worker.push_tasks([{'n': n} for n in range(200)])

    def no_listing() -> list[threading.Thread]:
        raise AssertionError('threads were listed')

    monkeypatch.setattr(threading, 'enumerate', no_listing)

    # when the worker runs them with the guard on
    summary = worker.work_loop()

    # then they all ran
    assert summary['reason'] is LoopEnd.MAX_TASKS_PER_RUN
    assert summary['tasks']['success'] == 200


def test_the_worker_logs_the_threads_it_ended_and_those_that_would_not_end(
    build_worker: Callable[..., Any],
) -> None:
    # given a task that leaves a killable and an unkillable thread running
    released = threading.Event()

    def killable() -> None:
        try:
            while not released.is_set():
                time.sleep(0.02)
        except SystemExit:
            return

    def unkillable() -> None:
        while not released.is_set():
            # the inner loop keeps every point where SystemExit can land inside the try
            try:
                while not released.is_set():
                    time.sleep(0.02)
            except SystemExit:
                pass

    started: list[threading.Thread] = []

    class Leaving(ConfiguredWorker):
        def work(self, task: Task) -> Any:
            for target, name in ((killable, 'KillableThread'), (unkillable, 'UnKillableThread')):
                started.append(threading.Thread(target=target, name=name))
                started[-1].start()

    handler = ListHandler()
    worker = build_worker(Leaving, logging=config.Logging(level=logging.WARNING, handlers=[handler]))
    worker.push_task({'n': 0})

    try:
        # when it runs
        summary = worker.work_loop()
    finally:
        released.set()
        for thread in started:
            thread.join(10)

    # then the worker said which thread it ended, and which would not end and make it stop
    assert summary['reason'] is LoopEnd.RESPAWN
    logged = [(record.levelno, record.getMessage()) for record in handler.records]
    assert (logging.WARNING, "ended 1 thread(s) the task left running: ['KillableThread']") in logged
    [error] = [message for level, message in logged if level == logging.ERROR]
    assert "would not end within 2 s of SystemExit: ['UnKillableThread']" in error
