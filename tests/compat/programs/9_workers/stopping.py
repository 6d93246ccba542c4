"""A worker in a package whose name starts with a digit: it records its task and stops the pool."""

from __future__ import annotations

from typing import Any

from _supervised import SupervisedWorker, Task, done


class Stopping(SupervisedWorker):
    queue_suffix = 'digit'

    def work(self, task: Task) -> Any:
        done(task.kwargs['id'])
        self.stop()
