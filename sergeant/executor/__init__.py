"""Executors: run the tasks of a stream, one at a time or in threads.

An executor knows nothing of the Worker class: it receives a ``run`` callable
that executes one task and reports its :class:`~sergeant.loop.stream.Outcome`,
and settles each task on the stream: a task whose ``run`` raised is settled as
stopped, unless the exception carries the outcome of a task that was over
(:class:`~sergeant.loop.thread_guard.UnkillableThreads`). Time limits are enforced
here, with the killers of :mod:`sergeant.killer`:

* :class:`SerialExecutor` (``number_of_threads == 1``): a killer process sends
  the soft timeout as a signal and kills the worker at the hard limit;
* :class:`ThreadedExecutor` (``number_of_threads > 1``): a killer thread raises
  the soft timeout in the task's thread; the killer process keeps the hard limit.

With ``timeouts.timeout == 0`` neither starts a killer.
"""

from __future__ import annotations

from ..config import WorkerConfig
from ..loop.consume import Executor, RunTask
from ..loop.runner import TaskRunner
from .serial import SerialExecutor
from .threaded import ThreadedExecutor

__all__ = ['Executor', 'RunTask', 'SerialExecutor', 'ThreadedExecutor', 'create_executor']


def create_executor(config: WorkerConfig, runner: TaskRunner) -> Executor:
    """The executor for ``config.number_of_threads`` and ``config.timeouts``; ``runner`` runs the tasks."""
    if config.number_of_threads == 1:
        return SerialExecutor(runner.run, config.timeouts, runner.plain)
    return ThreadedExecutor(runner.run, config.number_of_threads, config.timeouts)
