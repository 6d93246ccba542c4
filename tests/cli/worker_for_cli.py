"""A worker the command tests name with --worker-module/--worker-class: its config gives the broker.

The SQLite file and the signing key come from the environment the test sets.
"""

from __future__ import annotations

import os

from sergeant import config
from sergeant.worker import Worker


class SignedWorker(Worker):
    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(
            name='signed',
            connector=config.Connector(type='local', params={'file_path': os.environ['CLI_TEST_BROKER']}),
            encoder=config.Encoder(
                serializer='msgpack', compressor='zlib', signing_key=os.environ['CLI_TEST_KEY']
            ),
        )

    def work(self, task: object) -> None:
        pass
