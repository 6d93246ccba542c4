"""Runs one task through the user's hooks and turns what happened into an Outcome.

``work`` may return (success), raise an exception (failure), or raise one of the
control signals of :mod:`sergeant.interrupts`. Handlers ``on_failure`` and
``on_timeout`` may in turn call ``retry``/``requeue``; those signals lead to the
``on_retry``/``on_requeue``/``on_max_retries`` handlers. A handler that raises an
ordinary exception is logged and does not change the outcome.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from .interrupts import WorkerInterrupt, WorkerMaxRetries, WorkerRequeue, WorkerRetry, WorkerTimedout
from .objects import Task
from .task_stream import Outcome

if TYPE_CHECKING:
    from .worker import Worker

_SIGNAL_OUTCOMES: tuple[tuple[type[BaseException], Outcome, str], ...] = (
    (WorkerRetry, Outcome.RETRY, 'on_retry'),
    (WorkerMaxRetries, Outcome.MAX_RETRIES, 'on_max_retries'),
    (WorkerRequeue, Outcome.REQUEUE, 'on_requeue'),
)


def run_task(worker: Worker, task: Task, time_limit: AbstractContextManager[object] | None = None) -> Outcome:
    """Execute ``task`` on ``worker``; control signals that end the worker propagate.

    ``time_limit`` is entered around ``work`` alone: an executor's watchdog may
    raise WorkerTimedout only inside it, never in a hook or handler.
    """
    worker.current_task = task
    try:
        return _run(worker, task, time_limit or nullcontext())
    finally:
        worker.current_task = None


def _run(worker: Worker, task: Task, time_limit: AbstractContextManager[object]) -> Outcome:
    _guarded(worker, 'pre_work', task=task)
    try:
        with time_limit:
            returned_value = worker.work(task)
    except WorkerTimedout as timeout:
        _guarded(worker, 'post_work', task=task, success=False, exception=timeout)
        return _handle(worker, Outcome.TIMEOUT, 'on_timeout', task=task)
    except WorkerInterrupt as interrupt:
        _guarded(worker, 'post_work', task=task, success=False, exception=interrupt)
        _handle(worker, Outcome.STOPPED, 'on_stop', task=task)
        raise
    except (WorkerRetry, WorkerMaxRetries, WorkerRequeue) as signal:
        _guarded(worker, 'post_work', task=task, success=False, exception=signal)
        return _signalled(worker, signal, task)
    except Exception as error:
        _guarded(worker, 'post_work', task=task, success=False, exception=error)
        return _handle(worker, Outcome.FAILURE, 'on_failure', task=task, exception=error)
    _guarded(worker, 'post_work', task=task, success=True, exception=None)
    return _handle(worker, Outcome.SUCCESS, 'on_success', task=task, returned_value=returned_value)


def _handle(worker: Worker, outcome: Outcome, event: str, **arguments: Any) -> Outcome:
    try:
        worker.handle_event(event, **arguments)
    except (WorkerRetry, WorkerMaxRetries, WorkerRequeue) as signal:
        return _signalled(worker, signal, arguments['task'])
    except WorkerInterrupt:
        raise
    except Exception as error:
        worker.logger.error('%s handler failed: %s', event, error, exc_info=True)
    return outcome


def _signalled(worker: Worker, signal: BaseException, task: Task) -> Outcome:
    for kind, outcome, event in _SIGNAL_OUTCOMES:
        if isinstance(signal, kind):
            return _handle(worker, outcome, event, task=task)
    raise AssertionError(f'unexpected signal {signal!r}')


def _guarded(worker: Worker, hook: str, **arguments: Any) -> None:
    try:
        getattr(worker, hook)(**arguments)
    except WorkerInterrupt:
        raise
    except Exception as error:
        worker.logger.error('%s failed: %s', hook, error, exc_info=True)
