"""Scenario: one task holds the GIL in C for hours; the others are short.

Serial executor with ``TEST_TIMEOUT`` and ``TEST_GRACE_PERIOD`` and
``TEST_MAX_RETRIES``; no prefetching, so the only task a hog's worker holds is
the hog. Each task appends ``"<event> <pid> <id> <run_count> <time.monotonic()>"``
to TEST_EVENTS: ``hog-start`` when a hog starts (it never ends by itself),
``done`` when a short task ends after TEST_TASK_SECONDS.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

from sergeant import Task, config
from tests.workers.supervised_common import RecordingWorker, env_float


class GilHogWorker(RecordingWorker):
    def generate_config(self) -> config.WorkerConfig:
        return dataclasses.replace(
            super().generate_config(),
            max_retries=int(os.environ['TEST_MAX_RETRIES']),
            timeouts=config.Timeouts(
                timeout=env_float('TEST_TIMEOUT', 1), grace_period=env_float('TEST_GRACE_PERIOD', 1)
            ),
        )

    def initialize(self) -> None:
        super().initialize()
        self.events = os.open(os.environ['TEST_EVENTS'], os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def note(self, event: str, task: Task) -> None:
        line = f'{event} {os.getpid()} {task.kwargs["id"]} {task.run_count} {time.monotonic()}\n'
        os.write(self.events, line.encode())

    def work(self, task: Task) -> Any:
        if task.kwargs.get('hog'):
            self.note('hog-start', task)
            # a C loop that never releases the GIL nor checks for signals: neither the soft
            # timeout (a signal) nor any thread of this process can stop it, only the killer process
            sum(range(10**15))
        time.sleep(self.task_seconds)
        self.note('done', task)
