"""Scenario: the first delivery of a task holds TEST_HOG_BYTES of memory until killed.

``TEST_HOG_IN=worker`` allocates in the worker process; ``TEST_HOG_IN=child`` in a
subprocess of the worker, which the supervisor's limit must count too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

from sergeant import Task
from tests.workers.supervised_common import RecordingWorker

# b'x' * n writes every byte, so all the pages are resident
HOG = 'import sys, time; hog = b"x" * int(sys.argv[1]); time.sleep(60)'


class MemoryHogWorker(RecordingWorker):
    def work(self, task: Task) -> Any:
        self.record(task)
        if task.run_count > 0:
            return
        size = int(os.environ['TEST_HOG_BYTES'])
        if os.environ.get('TEST_HOG_IN') == 'child':
            subprocess.run([sys.executable, '-c', HOG, str(size)], check=False)
        else:
            hog = b'x' * size
            time.sleep(60)
            del hog
