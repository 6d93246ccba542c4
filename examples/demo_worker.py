"""The worker of the demo: a little simulated work, some flaky tasks that retry."""

from __future__ import annotations

import json
import os
import random
import time

from sergeant import Task, Worker, config


class DemoWorker(Worker):
    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(
            name='demo',
            connector=config.Connector(type='local', params={'file_path': os.environ['DEMO_BROKER_FILE']}),
            tasks_per_transaction=20,
            max_retries=3,
            starvation=config.Starvation(time_with_no_tasks=1),
        )

    def work(self, task: Task) -> int:
        time.sleep(random.uniform(0.0, 0.002))
        if task.kwargs['flaky'] and task.run_count == 0:
            raise ConnectionError('simulated flaky dependency')
        return int(task.kwargs['number']) ** 2

    def on_failure(self, task: Task, exception: Exception) -> None:
        self.retry(task)

    def on_starvation(self, time_with_no_tasks: int) -> None:
        self.stop()  # the queue is drained: the supervisor stops the whole pool

    def finalize(self) -> None:
        report = os.path.join(os.environ['DEMO_RESULTS_DIR'], f'{os.getpid()}.json')
        with open(report, 'w') as output:
            json.dump(dict(self.outcomes), output)
