"""Scenario: the worker asks to be respawned after every task."""

from __future__ import annotations

from typing import Any

from sergeant import Task
from tests.workers.supervised_common import RecordingWorker


class RespawnWorker(RecordingWorker):
    def work(self, task: Task) -> Any:
        self.record(task)
        self.respawn()
