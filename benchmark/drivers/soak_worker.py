"""The worker the soak (``benchmark/soak.py``) runs under the real supervisor.

Each task is ``{'id': n}`` and does nothing but append ``n`` to a record file of
its own process, ``<SOAK_RECORDS_DIR>/<pid>.ids``: one ``os.write`` of a 4-byte
little-endian integer to a file opened with ``O_APPEND``, inside :meth:`work`.
A task is acknowledged only after ``work`` returns, so every acknowledged task
already has its record, and the record is in the kernel's page cache the moment
``write`` returns: a SIGKILL cannot take it back. What a kill can cost is the
other way round, a record without an acknowledgement (the task ran, the ack
was not sent), which the broker redelivers: a duplicate, never a loss.

Configured through ``SOAK_*`` variables, read by :func:`soak_config`, which the
soak also uses to build its producer (the same queue, broker and encoder).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from sergeant import config
from sergeant.objects import Task
from sergeant.worker import Worker

RECORD_BYTES = 4
RECORD_SUFFIX = '.ids'


def soak_config(environ: Mapping[str, str]) -> config.WorkerConfig:
    """The worker's configuration from ``SOAK_*`` variables."""
    return config.WorkerConfig(
        name=environ['SOAK_QUEUE'],
        connector=config.Connector(type='redis', params={'url': environ['SOAK_REDIS_URL']}),
        tasks_per_transaction=int(environ['SOAK_TASKS_PER_TRANSACTION']),
        number_of_threads=int(environ.get('SOAK_THREADS', '1')),
        max_tasks_per_run=int(environ.get('SOAK_MAX_TASKS_PER_RUN', '0')),
        # msgpack: the ids need nothing more, and unsigned pickle would warn at every start
        encoder=config.Encoder(serializer='msgpack'),
        delivery=config.Delivery(lease_seconds=float(environ['SOAK_LEASE_SECONDS'])),
        logging=config.Logging(
            level=logging.WARNING, log_to_stdout=True
        ),  # warnings and errors reach the log
    )


class SoakWorker(Worker):
    """Appends each task's id to its process's record file; nothing else."""

    _records = -1

    def generate_config(self) -> config.WorkerConfig:
        return soak_config(os.environ)

    def initialize(self) -> None:
        path = Path(os.environ['SOAK_RECORDS_DIR']) / f'{os.getpid()}{RECORD_SUFFIX}'
        self._records = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def work(self, task: Task) -> None:
        os.write(self._records, task.kwargs['id'].to_bytes(RECORD_BYTES, 'little'))

    def finalize(self) -> None:
        if self._records >= 0:
            os.close(self._records)
            self._records = -1
