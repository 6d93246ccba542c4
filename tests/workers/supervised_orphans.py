"""Scenario: a task leaves a short-lived grandchild behind and the worker respawns.

The grandchild (its pid appended to TEST_ORPHANS) outlives its parent; the
supervisor adopts it and must reap it when it ends, leaving no zombie.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from sergeant import Task
from tests.workers.supervised_common import RecordingWorker


class OrphansWorker(RecordingWorker):
    def work(self, task: Task) -> Any:
        grandchild = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(1)'])
        with open(os.environ['TEST_ORPHANS'], 'a') as orphans:
            orphans.write(f'{grandchild.pid}\n')
        self.record(task)
        self.respawn()  # exits without waiting for the grandchild
