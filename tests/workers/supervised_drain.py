"""Scenario: steady slow tasks with prefetching, for the SIGTERM drain and SIGKILL tests."""

from __future__ import annotations

from tests.workers.supervised_common import RecordingWorker


class DrainWorker(RecordingWorker):
    pass
