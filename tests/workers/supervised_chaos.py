"""Scenario: SIGKILL chaos while tasks run in batches or in threads (tests/reliability).

``TEST_THREADS`` executor threads (1 unless set); every other setting is the
recording worker's (``TEST_TASKS_PER_TRANSACTION``, ``TEST_TASK_SECONDS``, ...).
"""

from __future__ import annotations

import os

from sergeant import config
from tests.workers.supervised_common import RecordingWorker


class ChaosWorker(RecordingWorker):
    def generate_config(self) -> config.WorkerConfig:
        return super().generate_config().replace(number_of_threads=int(os.environ.get('TEST_THREADS', '1')))
