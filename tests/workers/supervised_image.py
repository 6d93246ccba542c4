"""Scenario: the worker image's entrypoint run as the container would run it (tests/docker)."""

from __future__ import annotations

from tests.workers.supervised_common import RecordingWorker


class ImageWorker(RecordingWorker):
    pass
