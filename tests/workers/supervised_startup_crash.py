"""Scenario: building the worker fails every time (its config cannot be generated)."""

from __future__ import annotations

from sergeant import config
from sergeant.worker import Worker


class StartupCrashWorker(Worker):
    def generate_config(self) -> config.WorkerConfig:
        raise RuntimeError('the configuration service is down')
