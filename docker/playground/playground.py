"""The compose playground's worker and producer, mounted at /app in the sergeant-worker image.

worker:   sergeant supervise --worker-module playground --worker-class PlaygroundWorker
producer: python -m playground --tasks 50 --every 2     (a batch every 2 s; --rounds 0: for ever)

The broker and queue come from SERGEANT_BROKER_URL and SERGEANT_QUEUE, the variables
the operator gives worker pods. Tasks take a few tens of milliseconds; a few fail
and are retried, and a few fail for good, so every panel of the dashboard moves.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Sequence

from sergeant import Task, Worker, config


class PlaygroundWorker(Worker):
    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(
            name=os.environ.get('SERGEANT_QUEUE', 'playground'),
            connector=config.Connector(type='redis', params={'url': os.environ['SERGEANT_BROKER_URL']}),
            tasks_per_transaction=10,
            max_retries=2,
        )

    def work(self, task: Task) -> None:
        time.sleep(random.uniform(0.005, 0.05) * float(task.kwargs.get('weight', 1)))
        if random.random() < float(task.kwargs.get('failure_rate', 0.05)):
            raise RuntimeError('simulated failure')

    def on_failure(self, task: Task, exception: Exception) -> None:
        self.retry(task)  # past max_retries: the dead-letter queue


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m playground', description='push playground tasks')
    parser.add_argument('--tasks', type=int, default=50, help='tasks per batch (default 50)')
    parser.add_argument('--every', type=float, default=2.0, help='seconds between batches (default 2)')
    parser.add_argument('--rounds', type=int, default=0, help='batches to push; 0: for ever (default)')
    arguments = parser.parse_args(argv)
    producer = PlaygroundWorker()
    producer.init_worker()
    pushed = 0
    while arguments.rounds == 0 or pushed < arguments.rounds:
        producer.push_tasks([{'weight': random.choice((1, 1, 1, 4))} for _ in range(arguments.tasks)])
        pushed += 1
        print(f'pushed batch {pushed} of {arguments.tasks} tasks', flush=True)
        time.sleep(arguments.every)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
