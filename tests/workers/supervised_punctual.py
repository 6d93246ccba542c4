"""Scenario: tasks that record when they ran, for checking delayed tasks against their due time.

Besides ``"<pid> <id>"`` in ``TEST_OUTPUT``, each run appends ``"<id> <unix time>"`` to
``TEST_OUTPUT`` + ``.times``.
"""

from __future__ import annotations

import os
import time

from sergeant import Task
from tests.workers.supervised_common import RecordingWorker


class PunctualWorker(RecordingWorker):
    def initialize(self) -> None:
        super().initialize()
        self.times = os.open(os.environ['TEST_OUTPUT'] + '.times', os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def record(self, task: Task) -> None:
        os.write(self.times, f'{task.kwargs["id"]} {time.time():.3f}\n'.encode())
        super().record(task)
