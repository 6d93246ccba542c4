"""The no-op worker both supervisors run in the supervised benchmark, and the queue filler.

Importable in either library's interpreter: it uses only the worker API that
Sergeant 0.27 and this repository share, with their defaults (ours: at-least-once
delivery with prefetch; 0.27: pop with delete). ``harness/supervised.py`` starts
``python -m sergeant.supervisor --worker-module counted_worker --worker-class
CountedWorker`` with this directory on ``PYTHONPATH`` and configures it through
``BENCH_*`` variables:

- ``BENCH_CONNECTOR_PARAMS``: JSON of ``Connector(type='redis', params=...)``;
- ``BENCH_QUEUE``, ``BENCH_TASKS_PER_TRANSACTION``;
- ``BENCH_COUNTS_DIR``: each worker process counts its tasks in ``<pid>.count``
  there, an 8-byte integer in a shared memory map: one memory store per task, no
  system call and no Redis command, read by the harness as often as it likes.

``python counted_worker.py --fill N`` pushes N tasks in chunks of 1,000 (the
payloads of ``modes.py``) and checks they arrived; payloads differ between the
two libraries, so each fills its queue with its own interpreter.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
from pathlib import Path

import modes

from sergeant import config
from sergeant.objects import Task
from sergeant.worker import Worker

_COUNTER_BYTES = 8


class CountedWorker(Worker):
    """Counts its tasks in a memory-mapped file and does nothing else."""

    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(
            name=os.environ['BENCH_QUEUE'],
            connector=config.Connector(type='redis', params=json.loads(os.environ['BENCH_CONNECTOR_PARAMS'])),
            tasks_per_transaction=int(os.environ['BENCH_TASKS_PER_TRANSACTION']),
        )

    def initialize(self) -> None:
        path = Path(os.environ['BENCH_COUNTS_DIR']) / f'{os.getpid()}.count'
        with path.open('wb') as created:
            created.write(bytes(_COUNTER_BYTES))
        with path.open('r+b') as mapped:
            self._memory = mmap.mmap(mapped.fileno(), _COUNTER_BYTES)
        self.counter = memoryview(self._memory).cast('q')

    def work(self, task: Task) -> None:
        self.counter[0] += 1


def fill(tasks: int) -> None:
    worker = CountedWorker()
    worker.init_worker()
    for chunk in modes.chunks(tasks):
        worker.push_tasks(kwargs_list=chunk)
    modes.expect(worker.number_of_enqueued_tasks(), tasks, 'queued before the supervisor starts')


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description='push N no-op tasks to BENCH_QUEUE')
    parser.add_argument('--fill', type=int, required=True, metavar='N')
    fill(parser.parse_args().fill)
