"""Scenario: poison payloads of every shape among good tasks (tests/reliability/test_poison.py).

Tasks are msgpack, signed with ``TEST_SIGNING_KEY``, taken ``TEST_TASKS_PER_TRANSACTION``
at a time; the worker logs errors (each dead-lettered payload) to stdout, which
the supervisor's log collects. Good tasks are recorded as usual.
"""

from __future__ import annotations

import os

from sergeant import config
from tests.workers.supervised_common import RecordingWorker


class PoisonWorker(RecordingWorker):
    def generate_config(self) -> config.WorkerConfig:
        return (
            super()
            .generate_config()
            .replace(
                encoder=config.Encoder(serializer='msgpack', signing_key=os.environ['TEST_SIGNING_KEY']),
                logging=config.Logging(log_to_stdout=True),
            )
        )
