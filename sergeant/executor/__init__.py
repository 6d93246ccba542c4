"""Executors: run the tasks of a stream, one at a time or in threads.

An executor knows nothing of the Worker class: it receives a ``run`` callable
that executes one task and reports its :class:`~sergeant.task_stream.Outcome`,
and settles each task on the stream. Time limits are enforced here.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from ..config import WorkerConfig
from ..objects import Task
from ..task_stream import Outcome, TaskStream
from .serial import SerialExecutor

__all__ = ['Executor', 'SerialExecutor', 'create_executor']


class Executor(Protocol):
    def execute(self, stream: TaskStream) -> None:
        """Run every task of the stream and settle each one; return when the stream ends."""


# run(task, time_limit) executes one task; time_limit is entered around the user's work() only
RunTask = Callable[[Task, AbstractContextManager[object] | None], Outcome]


def create_executor(config: WorkerConfig, run: RunTask) -> Executor:
    """The executor for ``config.number_of_threads``, enforcing ``config.timeouts``."""
    return SerialExecutor(run)
