"""A Worker subclass for the compat programs that records every hook and handler call.

Calls are kept per task id (``task.kwargs['id']``), each as a list of typed parts: the
hook's name and its arguments. Subclasses set ``queue_suffix`` (a queue of their own)
and ``config_overrides`` (WorkerConfig fields), and implement ``work``. Records made in
other threads (the threaded executor) are safe: a list append is atomic.

Each subclass also gets a :class:`~_observe.LogRecords` of its own, ``log_records``,
added to the handlers of its logging config (``log_details`` says whether it keeps the
details of each record); the log level is DEBUG unless the config says otherwise.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from typing import Any, ClassVar

from _observe import LogRecords, queue, redis_params, sleep_in_python, typed

import sergeant.config
import sergeant.objects
import sergeant.worker

Task = sergeant.objects.Task


class Recorder(sergeant.worker.Worker):
    queue_suffix: ClassVar[str] = ''
    config_overrides: ClassVar[dict[str, Any]] = {}
    log_details: ClassVar[bool] = False
    log_records: ClassVar[LogRecords] = LogRecords()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.log_records = LogRecords(details=cls.log_details)

    def generate_config(self) -> sergeant.config.WorkerConfig:
        overrides = dict(self.config_overrides)
        logging_config = overrides.pop('logging', sergeant.config.Logging(level=logging.DEBUG))
        logging_config = dataclasses.replace(
            logging_config, handlers=[*logging_config.handlers, self.log_records]
        )
        return sergeant.config.WorkerConfig(
            name=queue(self.queue_suffix),
            connector=sergeant.config.Connector(type='redis', params=redis_params()),
            logging=logging_config,
            **overrides,
        )

    def initialize(self) -> None:
        self.calls: collections.defaultdict[str, list[Any]] = collections.defaultdict(list)
        self.order: list[str] = []
        self.requeued: set[str] = set()

    def record(self, task: Task, *call: Any) -> None:
        self.calls[str(task.kwargs['id'])].append([typed(part) for part in call])

    def sleep_recording_interruption(self, task: Task, seconds: float, finished: str) -> None:
        """Sleep ``seconds`` in ``work``; record what interrupted it, or ``finished`` if nothing did."""
        try:
            sleep_in_python(seconds)
        except BaseException as error:
            self.record(task, 'work saw', error)
            raise
        self.record(task, finished)

    def pre_work(self, task: Task) -> None:
        self.record(task, 'pre_work', task.run_count)

    def post_work(self, task: Task, success: bool, exception: BaseException | None) -> None:
        self.record(task, 'post_work', success, exception)

    def on_success(self, task: Task, returned_value: Any) -> None:
        self.record(task, 'on_success', task.run_count, returned_value)

    def on_failure(self, task: Task, exception: Exception) -> None:
        self.record(task, 'on_failure', task.run_count, exception, str(exception))

    def on_timeout(self, task: Task) -> None:
        self.record(task, 'on_timeout', task.run_count)

    def on_retry(self, task: Task) -> None:
        self.record(task, 'on_retry', task.run_count)

    def on_max_retries(self, task: Task) -> None:
        self.record(task, 'on_max_retries', task.run_count)

    def on_requeue(self, task: Task) -> None:
        self.record(task, 'on_requeue', task.run_count)

    def on_stop(self, task: Task) -> None:
        self.record(task, 'on_stop', task.run_count)
