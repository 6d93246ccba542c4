"""Scenario: the worker leaves a non-daemon thread running, which would keep its process alive."""

from __future__ import annotations

import threading

from tests.workers.supervised_common import RecordingWorker


class LingeringWorker(RecordingWorker):
    def initialize(self) -> None:
        super().initialize()
        threading.Thread(target=threading.Event().wait, name='forgotten', daemon=False).start()
