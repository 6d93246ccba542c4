"""Scenario: the first delivery of a task crashes the worker process.

``TEST_CRASH=exit`` ends it with ``os._exit(3)``; ``TEST_CRASH=signal`` kills it
with SIGSEGV. The redelivered task (``run_count`` > 0, after its lease expires) succeeds.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from sergeant import Task
from tests.workers.supervised_common import RecordingWorker


class CrashWorker(RecordingWorker):
    def work(self, task: Task) -> Any:
        self.record(task)
        if task.run_count == 0:
            if os.environ.get('TEST_CRASH') == 'signal':
                os.kill(os.getpid(), signal.SIGSEGV)
            os._exit(3)
