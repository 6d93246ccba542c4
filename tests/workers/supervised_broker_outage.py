"""Scenario: the broker is SIGKILLed and restarted, or absent at first, while workers consume.

The recording worker (``TEST_TASKS_PER_TRANSACTION``, ``TEST_TASK_SECONDS``,
``TEST_LEASE_SECONDS``) logging warnings and errors to stdout, so its fetch
errors during the outage reach the supervisor's log.
"""

from __future__ import annotations

import logging

from sergeant import config
from tests.workers.supervised_common import RecordingWorker


class OutageWorker(RecordingWorker):
    def generate_config(self) -> config.WorkerConfig:
        return (
            super()
            .generate_config()
            .replace(logging=config.Logging(level=logging.WARNING, log_to_stdout=True))
        )
