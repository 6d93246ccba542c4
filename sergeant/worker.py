"""The Worker base class users subclass: configuration, hooks, handlers and the work loop.

The public surface is Sergeant 0.27's, so existing workers run unchanged:
override ``generate_config`` and ``work``, optionally the ``on_*`` handlers and
``initialize``/``finalize``/``pre_work``/``post_work``; call ``push_task``,
``retry``, ``requeue``, ``lock`` and friends from inside them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import logging
import os
import signal
import sys
import threading
import time
import types
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from . import config as sergeant_config
from .codec import DeadTask, TaskCodec
from .connector import Lock, Priority, create_connector
from .encoder import Encoder
from .errors import ConfigError
from .executor import create_executor
from .interrupts import (
    WorkerException,
    WorkerInterrupt,
    WorkerMaxRetries,
    WorkerRequeue,
    WorkerRespawn,
    WorkerRetry,
    WorkerStop,
    WorkerTimedout,
)
from .logging.json_lines import JsonLinesFormatter
from .loop.consume import consume
from .loop.journal import StartJournal
from .loop.retries import may_run
from .loop.summary import LoopEnd, loop_end, process_usage
from .loop.thread_guard import unkillable_threads
from .metrics import WorkerMetrics
from .objects import Task

__all__ = [
    'Worker',
    'WorkerException',
    'WorkerInterrupt',
    'WorkerMaxRetries',
    'WorkerRequeue',
    'WorkerRespawn',
    'WorkerRetry',
    'WorkerStop',
    'WorkerTimedout',
]

# event -> (log level, message) used when config.logging.events enables the event
_EVENT_LOG: dict[str, tuple[int, str]] = {
    'on_success': (logging.INFO, 'task succeeded'),
    'on_failure': (logging.ERROR, 'task failed'),
    'on_timeout': (logging.ERROR, 'task timed out'),
    'on_retry': (logging.INFO, 'task retried'),
    'on_max_retries': (logging.ERROR, 'task reached max retries'),
    'on_requeue': (logging.INFO, 'task requeued'),
    'on_starvation': (logging.WARNING, 'worker is starving'),
    'on_stop': (logging.WARNING, 'worker stopped while running a task'),
}


_library_logger = logging.getLogger('sergeant.worker')


class Worker:
    """Subclass and override :meth:`generate_config` and :meth:`work`."""

    _task_metrics: WorkerMetrics | None = None
    start_journal: StartJournal | None = None
    """Where the work loop notes each task it starts, for the worker after it should it die.

    Set by the supervisor's worker processes (:mod:`sergeant.loop.journal`); None otherwise.
    """

    def __init__(self) -> None:
        self.config = self.generate_config()
        self.logger = logging.getLogger(self.config.name)
        # Sergeant 0.27's state before init_worker: the configured level, silent, not propagating
        self.logger.setLevel(self.config.logging.level)
        self.logger.propagate = False
        self._replace_log_handlers([logging.NullHandler()])
        self._task_of_thread = threading.local()
        self.received_stop_signal = False
        self.outcomes: Counter[str] = Counter()
        self._outcomes_guard = threading.Lock()
        self._warned_priorities: set[str] = set()
        self.broker: TaskCodec
        # No signal handler here: a process that only builds a Worker to push tasks keeps its own
        # SIGTERM behaviour. The work loop installs its handler while it runs (_stop_on_sigterm).

    def generate_config(self) -> sergeant_config.WorkerConfig:
        return sergeant_config.WorkerConfig(name='worker')

    @property
    def current_task(self) -> Task | None:
        """The task the calling thread is running, if any."""
        task: Task | None = getattr(self._task_of_thread, 'task', None)
        return task

    @current_task.setter
    def current_task(self, task: Task | None) -> None:
        self._task_of_thread.task = task

    def stop_signal_handler(self, signal_number: int, frame: types.FrameType | None) -> None:
        """On SIGTERM stop fetching; the running task finishes, prefetched ones go back."""
        self.logger.info('stop signal received')
        self.received_stop_signal = True

    # -- initialisation ------------------------------------------------------------

    def init_worker(self) -> None:
        self.init_logger()
        self.init_broker()

    def init_logger(self) -> None:
        settings = self.config.logging
        self.logger.setLevel(settings.level)
        handlers: list[logging.Handler] = []
        if settings.log_to_stdout:
            stream_handler = logging.StreamHandler(sys.stdout)
            stream_handler.setFormatter(self._stdout_formatter())
            handlers.append(stream_handler)
        handlers.extend(settings.handlers)
        self._replace_log_handlers(handlers or [logging.NullHandler()])

    def _replace_log_handlers(self, handlers: list[logging.Handler]) -> None:
        for handler in list(self.logger.handlers):
            self.logger.removeHandler(handler)
        for handler in handlers:
            self.logger.addHandler(handler)

    def _stdout_formatter(self) -> logging.Formatter:
        log_format = self.config.logging.format or os.environ.get('SERGEANT_LOG_FORMAT', '').strip().lower()
        if log_format == 'json':
            return JsonLinesFormatter(self.config.name, self.get_trace_id)
        return logging.Formatter('%(asctime)s %(name)s %(process)d %(levelname)s %(message)s')

    def init_broker(self) -> None:
        connector = create_connector(self.config.connector.type, self.config.connector.params)
        self.broker = TaskCodec(connector, Encoder(self._encoder_settings()))

    def _encoder_settings(self) -> sergeant_config.Encoder:
        """The configured encoder; without a signing key, the one in ``SERGEANT_SIGNING_KEY`` if set.

        The variable lets a deployment sign every producer's and worker's payloads
        (e.g. from a Kubernetes Secret) without a code change.
        """
        settings = self.config.encoder
        key = os.environ.get(sergeant_config.SIGNING_KEY_VARIABLE, '').strip()
        if settings.signing_key is not None or not key:
            return settings
        try:
            return dataclasses.replace(settings, signing_key=key)
        except ConfigError as error:
            raise ConfigError(sergeant_config.SIGNING_KEY_VARIABLE, error.problem) from None

    def _warn_if_unsigned_pickle(self) -> None:
        # on the library's logger, not the worker's: the records a 0.27 worker logs stay the same
        encoder = self.broker.encoder.settings
        if encoder.serializer == 'pickle' and encoder.signing_key is None:
            _library_logger.warning(
                'unpickling unsigned payloads: anyone who can write to queue %r can run code in this '
                'worker; set Encoder(signing_key=...) or %s on producers and workers',
                self.config.name,
                sergeant_config.SIGNING_KEY_VARIABLE,
            )

    # -- producing and inspecting ---------------------------------------------------

    def push_task(
        self,
        kwargs: dict[str, Any],
        task_name: str | None = None,
        priority: str = 'NORMAL',
        consumable_from: float | None = None,
        trace_id: str | None = None,
    ) -> bool:
        return self.push_tasks([kwargs], task_name, priority, consumable_from, trace_id)

    def push_tasks(
        self,
        kwargs_list: Iterable[dict[str, Any]],
        task_name: str | None = None,
        priority: str = 'NORMAL',
        consumable_from: float | None = None,
        trace_id: str | None = None,
    ) -> bool:
        trace_id = trace_id if trace_id is not None else self.get_trace_id()
        tasks = [Task(kwargs=kwargs, trace_id=trace_id) for kwargs in kwargs_list]
        queue = task_name or self.config.name
        self.broker.push_tasks(queue, tasks, self._priority(priority), consumable_from)
        return True  # as in Sergeant 0.27, also for an empty list; a failed push raises

    def get_next_tasks(self, number_of_tasks: int, task_name: str | None = None) -> list[Task]:
        """Take tasks off the queue for good; the caller now owns them."""
        popped = self.broker.pop_tasks(task_name or self.config.name, number_of_tasks, lease_seconds=None)
        return popped.tasks

    def number_of_enqueued_tasks(self, task_name: str | None = None, include_delayed: bool = False) -> int:
        return self.broker.connector.length(task_name or self.config.name, include_delayed)

    def purge_tasks(self, task_name: str | None = None) -> bool:
        """Remove ready, delayed and in-flight tasks of the queue."""
        return self.broker.connector.delete(task_name or self.config.name)

    def dead_letter_tasks(self, task_name: str | None = None, count: int = 100) -> list[DeadTask]:
        return self.broker.dead_tasks(task_name or self.config.name, count)

    def number_of_dead_letter_tasks(self, task_name: str | None = None) -> int:
        return self.broker.connector.dead_letter_length(task_name or self.config.name)

    def requeue_dead_letter_tasks(self, task_name: str | None = None, count: int | None = None) -> int:
        return self.broker.connector.requeue_dead_letters(task_name or self.config.name, count)

    def purge_dead_letter_tasks(self, task_name: str | None = None) -> int:
        return self.broker.connector.purge_dead_letters(task_name or self.config.name)

    def lock(self, name: str) -> Lock:
        return self.broker.lock(name)

    def get_key(self, key: str) -> Any:
        return self.broker.get_key(key)

    def set_key(self, key: str, value: Any) -> bool:
        return self.broker.set_key(key, value)

    def delete_key(self, key: str) -> bool:
        return self.broker.delete_key(key)

    def _priority(self, priority: str) -> Priority:
        """Sergeant 0.27's rule: ``'HIGH'`` goes first, any other value is a normal priority."""
        if priority == 'HIGH':
            return 'HIGH'
        if priority != 'NORMAL' and priority not in self._warned_priorities:
            self._warned_priorities.add(priority)
            self.logger.warning('priority %r is not HIGH or NORMAL: pushing with NORMAL priority', priority)
        return 'NORMAL'

    def get_trace_id(self) -> str | None:
        return self.current_task.trace_id if self.current_task is not None else None

    # -- control signals, for use inside work and handlers -----------------------------

    def retry(self, task: Task, priority: str = 'NORMAL', consumable_from: float | None = None) -> None:
        """Push the task again with ``run_count + 1``; past ``max_retries`` it is dead-lettered."""
        if not may_run(task.run_count + 1, self.config.max_retries):
            raise WorkerMaxRetries()
        self.broker.retry(self.config.name, task, self._priority(priority), consumable_from)
        raise WorkerRetry()

    def requeue(self, task: Task, priority: str = 'NORMAL', consumable_from: float | None = None) -> None:
        """Push the task again unchanged."""
        self.broker.push_tasks(self.config.name, [task], self._priority(priority), consumable_from)
        raise WorkerRequeue()

    def stop(self) -> None:
        raise WorkerStop()

    def respawn(self) -> None:
        raise WorkerRespawn()

    def handle_event(self, event: str, **arguments: Any) -> None:
        """Log ``event`` if enabled in ``config.logging.events``, then call its handler."""
        if getattr(self.config.logging.events, event):
            level, message = _EVENT_LOG[event]
            task = arguments.get('task')
            extra = arguments if task is None else {'task': task, 'trace_id': task.trace_id}
            self.logger.log(level, message, extra=extra, exc_info=arguments.get('exception'))
        getattr(self, event)(**arguments)

    # -- the loop ----------------------------------------------------------------------

    def work_loop(self) -> dict[str, Any]:
        """Run tasks until ``max_tasks_per_run``, ``stop``/``respawn`` or a stop signal.

        Returns a summary: times, exceptions, CPU use, outcome counts, and ``reason``
        (a :class:`~sergeant.loop.summary.LoopEnd`) and ``process`` (CPU seconds and peak RSS
        of the worker process, :func:`~sergeant.loop.summary.process_usage`).
        """
        summary: dict[str, Any] = {
            'start_time': _utc_now(),
            'stop': False,
            'respawn': False,
            'executor_exception': None,
            'initialize_exception': None,
            'finalize_exception': None,
            'executor': {},
            'tasks': self.outcomes,
        }
        self._warn_if_unsigned_pickle()
        with self._stop_on_sigterm():
            # as in Sergeant 0.27: no finalize() and no executor times when initialize() did not finish
            if self._run_phase(self.initialize, summary, 'initialize_exception'):
                started, started_cpu = time.perf_counter(), time.process_time()
                self._run_phase(self._execute_tasks, summary, 'executor_exception')
                self._run_phase(self.finalize, summary, 'finalize_exception')
                wall, cpu = time.perf_counter() - started, time.process_time() - started_cpu
                summary['executor'] = {
                    'total_wall_time': wall,
                    'total_cpu_time': cpu,
                    'cpu_utilization': cpu / wall if wall else 0.0,
                }
        for handler in self.logger.handlers:
            handler.flush()
        summary['end_time'] = _utc_now()
        summary['reason'] = loop_end(summary, self.received_stop_signal)
        if summary['reason'] is LoopEnd.SIGNAL:
            summary['stop'] = True  # as in Sergeant 0.27, a loop ended by SIGTERM says it was stopped
        summary['process'] = process_usage()
        unkillable = unkillable_threads(self)
        if unkillable:
            summary['unkillable_threads'] = unkillable
        return summary

    @contextlib.contextmanager
    def _stop_on_sigterm(self) -> Iterator[None]:
        """While the loop runs, SIGTERM stops it gracefully; the previous handler comes back after.

        Signal handlers belong to the main thread: a loop run in another thread leaves them alone.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGTERM, self.stop_signal_handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)

    def _run_phase(self, phase: Any, summary: dict[str, Any], error_key: str) -> bool:
        """Run one phase; False when the loop must not go on."""
        try:
            phase()
        except WorkerRespawn:
            summary['respawn'] = True
            return False
        except WorkerStop:
            summary['stop'] = True
            return False
        except Exception as error:
            self.logger.error('%s failed: %s', error_key.replace('_exception', ''), error, exc_info=True)
            summary[error_key] = error
            return False
        return True

    def enable_task_metrics(self) -> WorkerMetrics:
        """Count task metrics from now on, for the supervisor's ``/metrics``; returns the counters.

        The supervisor's worker processes call it when metrics are served; a
        worker that never calls it pays nothing for metrics.
        """
        self._task_metrics = WorkerMetrics(self.config.name, self.outcomes)
        return self._task_metrics

    def _execute_tasks(self) -> None:
        consume(
            self,
            Worker,
            self.broker,
            functools.partial(create_executor, self.config),
            outcomes=self.outcomes,
            task_of_thread=self._task_of_thread,
            outcomes_guard=self._outcomes_guard,
            journal=self.start_journal,
            metrics=self._task_metrics,
            stop_flag=self,
        )

    # -- hooks for subclasses -----------------------------------------------------------

    def initialize(self) -> None:
        """Runs once in the worker process before the first task."""

    def finalize(self) -> None:
        """Runs once after the last task, even after a failure; not when ``initialize`` did not finish."""

    def pre_work(self, task: Task) -> None:
        """Runs before each task."""

    def post_work(self, task: Task, success: bool, exception: BaseException | None) -> None:
        """Runs after each task."""

    def work(self, task: Task) -> Any:
        """Do the task's job; override this."""

    def on_success(self, task: Task, returned_value: Any) -> None:
        pass

    def on_failure(self, task: Task, exception: Exception) -> None:
        pass

    def on_timeout(self, task: Task) -> None:
        pass

    def on_retry(self, task: Task) -> None:
        pass

    def on_max_retries(self, task: Task) -> None:
        pass

    def on_requeue(self, task: Task) -> None:
        pass

    def on_starvation(self, time_with_no_tasks: int) -> None:
        pass

    def on_stop(self, task: Task) -> None:
        """A task called :meth:`stop` while the threaded executor ran it (as in Sergeant 0.27)."""


def _utc_now() -> datetime.datetime:
    """The time in UTC without a timezone, as Sergeant 0.27's summaries give it."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
