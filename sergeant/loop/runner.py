"""Runs one task through the user's hooks and turns what happened into an Outcome.

``work`` may return (success), raise an exception (failure), or raise one of the
control signals of :mod:`sergeant.interrupts`. Handlers ``on_failure`` and
``on_timeout`` may in turn call ``retry``/``requeue``; those signals lead to the
``on_retry``/``on_requeue``/``on_max_retries`` handlers. A handler that raises an
ordinary exception is logged and does not change the outcome.

:class:`TaskRunner` is what the work loop uses: built once per loop, it skips
the hooks a worker does not override (a no-op hook called thousands of times a
second is measurable), counts outcomes and, when given a histogram, times tasks
(per batch on the fast path: see :mod:`sergeant.metrics.durations`). Unless
``config.stop_task_threads`` is off, it also ends the threads each task left
running (:mod:`sergeant.loop.thread_guard`).
"""

from __future__ import annotations

import dataclasses
import gc
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from ..interrupts import (
    WorkerInterrupt,
    WorkerMaxRetries,
    WorkerRequeue,
    WorkerRetry,
    WorkerStop,
    WorkerTimedout,
)
from ..metrics.durations import BatchClock, DurationHistogram
from ..objects import Task
from .hooks import Hooks
from .stream import Outcome
from .thread_guard import guard_threads_of

_SIGNAL_OUTCOMES: tuple[tuple[type[BaseException], Outcome, str], ...] = (
    (WorkerRetry, Outcome.RETRY, 'on_retry'),
    (WorkerMaxRetries, Outcome.MAX_RETRIES, 'on_max_retries'),
    (WorkerRequeue, Outcome.REQUEUE, 'on_requeue'),
)
_SUCCESS = Outcome.SUCCESS
_HANDLER_LOG_EXTRAS = ('task', 'time_with_no_tasks')  # what a failed handler's log record carries
_clock = time.perf_counter
_NO_THREADS: dict[int, list[threading.Thread]] = {}  # what a runner without a thread guard checks


@dataclasses.dataclass(frozen=True, slots=True)
class PlainWork:
    """What it takes to run tasks of a worker with no hooks around ``work``, in one thread.

    A serial executor runs such tasks in its own loop (see
    :meth:`sergeant.executor.SerialExecutor`), which is the runner's fast path unrolled:
    set ``task_of_thread.task``, call ``work``; count a success in ``outcomes`` (and,
    while ``clock.per_task``, call ``clock.task_done()``), or hand the exception to
    ``failed``, which runs the handlers and counts the outcome, and lets signals that
    end the loop go on; call ``task_over(outcome)`` when ``threads_started`` is not
    empty. Never with a time limit: those runs take :attr:`TaskRunner.run`.
    """

    work: Callable[[Task], object]
    task_of_thread: threading.local
    outcomes: Counter[str]
    failed: Callable[[Task, BaseException], Outcome]
    threads_started: dict[int, list[threading.Thread]]
    task_over: Callable[[Outcome], None]
    clock: BatchClock | None


class TaskRunner:
    """Runs tasks of one work loop on ``worker`` and counts their outcomes in ``outcomes``.

    ``base`` is the class whose hooks are no-ops (``Worker``): a hook the worker's
    class does not override, and that is not set on the instance, is not called.
    ``on_success`` is only dispatched when overridden, when ``handle_event`` is
    overridden, or when ``logging.events.on_success`` asks for the event to be
    logged. Give a ``guard`` when several threads run tasks.

    Threads a task started are ended once it is over (see :mod:`sergeant.loop.thread_guard`);
    if some would not end, ``run`` raises :class:`~sergeant.loop.thread_guard.UnkillableThreads`
    after counting the task's outcome.

    With ``durations``, every task's duration is observed. On the fast path the
    runner's :attr:`batch_clock` does it and must hear from the task stream when
    a batch arrives and when the stream waits again.
    """

    def __init__(
        self,
        worker: Hooks,
        base: type,
        task_of_thread: threading.local,
        outcomes: Counter[str],
        guard: threading.Lock | None,
        durations: DurationHistogram | None = None,
    ) -> None:
        def overridden(hook: str) -> bool:
            return hook in vars(worker) or getattr(type(worker), hook) is not getattr(base, hook)

        self._worker = worker
        self._work = worker.work
        self._task_of_thread = task_of_thread
        self._outcomes = outcomes
        self._guard = guard
        self._pre_work = overridden('pre_work')
        self._post_work = overridden('post_work')
        self._announce_success = (
            overridden('on_success')
            or overridden('handle_event')
            or bool(worker.config.logging.events.on_success)
        )
        self._after_success = self._post_work or self._announce_success
        self._durations = durations
        self.batch_clock: BatchClock | None = None
        self._threads_started = _NO_THREADS
        self._task_over: Callable[[Outcome], None] = _nothing_to_end
        self._task_interrupted: Callable[[], None] = _nothing_left
        if worker.config.stop_task_threads:
            threads = guard_threads_of(worker, task_of_thread)
            self._threads_started = threads.started
            self._task_over, self._task_interrupted = threads.task_over, threads.task_interrupted

        self.run: Callable[[Task, AbstractContextManager[object] | None], Outcome] = self._run_and_count
        """``run(task, time_limit)``: execute ``task`` and count its outcome; control signals
        that end the worker propagate. ``time_limit`` is entered around ``work`` alone:
        an executor's watchdog may raise WorkerTimedout only inside it, never in a hook
        or handler."""
        self.plain: PlainWork | None = None
        """Set when tasks may run on the fast path, unrolled by the caller (see :class:`PlainWork`)."""
        plain = not (self._pre_work or self._after_success or guard)
        if plain and durations is None:
            self.run = self._plain_run()
        elif plain and durations is not None and not worker.config.timeouts.timeout:
            # with a time limit every call takes the general path, which times each task itself
            self.batch_clock = BatchClock(durations, lambda: sum(dict(outcomes).values()))
            self.run = self._plain_timed_run(self.batch_clock)
        if plain and (durations is None or self.batch_clock is not None):
            self.plain = PlainWork(
                self._work,
                task_of_thread,
                outcomes,
                self._failed,
                self._threads_started,
                self._task_over,
                self.batch_clock,
            )

    def _run_and_count(self, task: Task, time_limit: AbstractContextManager[object] | None = None) -> Outcome:
        durations = self._durations
        task_of_thread = self._task_of_thread
        task_of_thread.task = task
        started = _clock() if durations is not None else 0.0
        try:
            outcome = self._run(task, time_limit)
        except BaseException:
            if self._threads_started:
                self._task_interrupted()
            raise
        finally:
            task_of_thread.task = None
        elapsed = _clock() - started if durations is not None else 0.0
        if self._guard is None:
            self._outcomes[outcome._value_] += 1
            if durations is not None:
                durations.observe(elapsed)
        else:
            with self._guard:
                self._outcomes[outcome._value_] += 1
                if durations is not None:
                    durations.observe(elapsed)
        if self._threads_started:
            self._task_over(outcome)
        return outcome

    def _failed(self, task: Task, error: BaseException) -> Outcome:
        """``work`` raised ``error`` on a fast path: handle and count it; signals that end the loop go on."""
        try:
            outcome = _after_failure(self._worker, task, error)
        except BaseException:
            if self._threads_started:
                self._task_interrupted()
            raise
        self._outcomes[outcome._value_] += 1
        return outcome

    def _plain_run(self) -> Callable[[Task, AbstractContextManager[object] | None], Outcome]:
        """``run`` for a worker with no hooks around ``work`` and one thread: the hot path."""
        work, task_of_thread, outcomes = self._work, self._task_of_thread, self._outcomes
        failed, threads_started, task_over = self._failed, self._threads_started, self._task_over
        general = self._run_and_count

        def run(task: Task, time_limit: AbstractContextManager[object] | None = None) -> Outcome:
            if time_limit is not None:
                return general(task, time_limit)
            task_of_thread.task = task
            try:
                work(task)
            except BaseException as error:
                outcome = failed(task, error)
            else:
                outcomes['success'] += 1
                outcome = _SUCCESS
            finally:
                task_of_thread.task = None
            if threads_started:
                task_over(outcome)
            return outcome

        return run

    def _plain_timed_run(
        self, clock: BatchClock
    ) -> Callable[[Task, AbstractContextManager[object] | None], Outcome]:
        """The hot path of :meth:`_plain_run`, timed by ``clock``: per task only while tasks are slow.

        Used only without a configured timeout, so ``time_limit`` is always None.
        """
        work, task_of_thread, outcomes = self._work, self._task_of_thread, self._outcomes
        failed, threads_started, task_over = self._failed, self._threads_started, self._task_over

        def run(task: Task, time_limit: AbstractContextManager[object] | None = None) -> Outcome:
            task_of_thread.task = task
            try:
                work(task)
            except BaseException as error:
                outcome = failed(task, error)
            else:
                outcomes['success'] += 1
                outcome = _SUCCESS
            finally:
                task_of_thread.task = None
            if clock.per_task:
                clock.task_done()
            if threads_started:
                task_over(outcome)
            return outcome

        return run

    def _run(self, task: Task, time_limit: AbstractContextManager[object] | None) -> Outcome:
        if self._pre_work:
            _guarded(self._worker, self._worker.pre_work, 'pre_work', task=task)
        try:
            if time_limit is None:
                returned_value = self._work(task)
            else:
                with time_limit:
                    returned_value = self._work(task)
        except BaseException as error:
            return _after_failure(self._worker, task, error)
        return self._succeeded(task, returned_value)

    def _succeeded(self, task: Task, returned_value: Any) -> Outcome:
        if self._post_work:
            _guarded(
                self._worker, self._worker.post_work, 'post_work', task=task, success=True, exception=None
            )
        if self._announce_success:
            return _handle(self._worker, _SUCCESS, 'on_success', task=task, returned_value=returned_value)
        return _SUCCESS


def _nothing_to_end(outcome: Outcome) -> None:
    """``task_over`` of a runner without a thread guard."""


def _nothing_left() -> None:
    """``task_interrupted`` of a runner without a thread guard."""


@contextmanager
def young_collections_at_most_every(allocations: int) -> Iterator[None]:
    """Raise the garbage collector's first threshold to ``allocations`` for a while.

    Never lowers it, and restores the thresholds found on entry.
    """
    thresholds = gc.get_threshold()
    if thresholds[0] and thresholds[0] < allocations:
        gc.set_threshold(allocations, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def _after_failure(worker: Hooks, task: Task, error: BaseException) -> Outcome:
    """``work`` raised ``error``: run ``post_work`` and the matching handler."""
    if isinstance(error, WorkerTimedout):
        _guarded(worker, worker.post_work, 'post_work', task=task, success=False, exception=error)
        return _handle(worker, Outcome.TIMEOUT, 'on_timeout', task=task)
    if isinstance(error, WorkerInterrupt):
        _guarded(worker, worker.post_work, 'post_work', task=task, success=False, exception=error)
        # Sergeant 0.27's rule, kept so its programs see the same calls: on_stop is for stop(),
        # not respawn(), and only the threaded executor calls it
        if isinstance(error, WorkerStop) and worker.config.number_of_threads > 1:
            _handle(worker, Outcome.STOPPED, 'on_stop', task=task)
        raise error
    if isinstance(error, (WorkerRetry, WorkerMaxRetries, WorkerRequeue)):
        _guarded(worker, worker.post_work, 'post_work', task=task, success=False, exception=error)
        return _signalled(worker, error, task)
    if isinstance(error, Exception):
        _guarded(worker, worker.post_work, 'post_work', task=task, success=False, exception=error)
        return _handle(worker, Outcome.FAILURE, 'on_failure', task=task, exception=error)
    raise error  # KeyboardInterrupt, SystemExit and the like


def _handle(worker: Hooks, outcome: Outcome, event: str, **arguments: Any) -> Outcome:
    try:
        worker.handle_event(event, **arguments)
    except (WorkerRetry, WorkerMaxRetries, WorkerRequeue) as signal:
        return _signalled(worker, signal, arguments['task'])
    except WorkerInterrupt:
        raise
    except Exception as error:
        extra = {key: arguments[key] for key in _HANDLER_LOG_EXTRAS if key in arguments}
        worker.logger.error('%s handler failed: %s', event, error, exc_info=True, extra=extra)
    return outcome


def _signalled(worker: Hooks, signal: BaseException, task: Task) -> Outcome:
    for kind, outcome, event in _SIGNAL_OUTCOMES:
        if isinstance(signal, kind):
            return _handle(worker, outcome, event, task=task)
    raise AssertionError(f'unexpected signal {signal!r}')


def _guarded(worker: Hooks, hook: Callable[..., None], name: str, **arguments: Any) -> None:
    try:
        hook(**arguments)
    except WorkerInterrupt:
        raise
    except Exception as error:
        # the hook's arguments as record attributes, as Sergeant 0.27 logs them
        worker.logger.error('%s failed: %s', name, error, exc_info=True, extra=arguments)
