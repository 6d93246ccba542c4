"""Scenario: long tasks, to see them spread over the idle workers (tests/reliability).

Each task sleeps TEST_TASK_SECONDS, then appends ``"<pid> <id> <start> <end>"``
(``time.monotonic()``, one clock for every process of the host) to TEST_SPANS,
and is recorded as usual.
"""

from __future__ import annotations

import os
import time
from typing import Any

from sergeant import Task
from tests.workers.supervised_common import RecordingWorker


class LongTaskWorker(RecordingWorker):
    def work(self, task: Task) -> Any:
        started = time.monotonic()
        time.sleep(self.task_seconds)
        with open(os.environ['TEST_SPANS'], 'a') as spans:
            spans.write(f'{os.getpid()} {task.kwargs["id"]} {started} {time.monotonic()}\n')
        self.record(task)
