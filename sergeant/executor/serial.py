"""Runs tasks one after another in the worker's main thread."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from ..objects import Task
from ..task_stream import Outcome, TaskStream


class SerialExecutor:
    """Runs each task of the stream in turn and settles it before taking the next."""

    def __init__(self, run: Callable[[Task, AbstractContextManager[object] | None], Outcome]) -> None:
        self._run = run

    def execute(self, stream: TaskStream) -> None:
        for leased in stream:
            try:
                outcome = self._run(leased.task, None)
            except BaseException:
                # stop/respawn raised while the task ran: the task itself is over
                stream.settle(leased, Outcome.STOPPED)
                raise
            stream.settle(leased, outcome)
