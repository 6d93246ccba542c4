"""Scenario: a task with ``stop=True`` makes its worker ask the whole pool to stop."""

from __future__ import annotations

from typing import Any

from sergeant import Task
from tests.workers.supervised_common import RecordingWorker


class StopWorker(RecordingWorker):
    def work(self, task: Task) -> Any:
        self.record(task)
        if task.kwargs.get('stop'):
            self.stop()
