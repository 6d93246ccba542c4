"""Scenario: each worker process ends normally after TEST_MAX_TASKS_PER_RUN tasks and is respawned."""

from __future__ import annotations

from tests.workers.supervised_common import RecordingWorker


class MaxTasksWorker(RecordingWorker):
    pass
