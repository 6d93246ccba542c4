"""Retries with exponential backoff, and dead letters for the tasks that keep failing.

Run the workers, then push and watch (from this directory)::

    sergeant supervise --worker-module retries --worker-class Flaky --concurrent-workers 2
    python retries.py

Each task calls a service that fails its first ``fails`` calls. ``on_failure``
retries it as a delayed task, 0.2 s later, then 0.4 s, 0.8 s... Three retries are
allowed (``max_retries=3``): a task that still fails then goes to the queue's
dead-letter queue, where ``sergeant dlq list flaky`` shows it with its reason.
"""

from __future__ import annotations

import sys
import time

from example_broker import connector, wait_for

from sergeant import Task, Worker, config

BACKOFF_SECONDS = 0.2
TASKS = [{'id': n, 'fails': {3: 1, 6: 2, 9: 99}.get(n, 0)} for n in range(10)]  # task 9 never succeeds


class ServiceUnavailable(Exception):
    pass


class Flaky(Worker):
    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(
            name='flaky', connector=connector(), max_retries=3, tasks_per_transaction=10
        )

    def work(self, task: Task) -> None:
        if task.run_count < task.kwargs['fails']:  # the service is down for this call
            raise ServiceUnavailable(f'attempt {task.run_count + 1} of task {task.kwargs["id"]}')
        self.set_key(f'flaky:done:{task.kwargs["id"]}', task.run_count + 1)

    def on_failure(self, task: Task, exception: Exception) -> None:
        if isinstance(exception, ServiceUnavailable):
            # run_count is 0 on the first run: wait 0.2 s, 0.4 s, 0.8 s before the next attempts
            self.retry(task, consumable_from=time.time() + BACKOFF_SECONDS * 2**task.run_count)
        # any other exception is a bug: logged, the task is not retried

    def on_max_retries(self, task: Task) -> None:
        self.logger.warning('giving up on task %s: dead-lettered', task.kwargs['id'])


def main() -> int:
    producer = Flaky()
    producer.init_worker()
    producer.purge_tasks()
    producer.purge_dead_letter_tasks()
    for task in TASKS:
        producer.delete_key(f'flaky:done:{task["id"]}')
    producer.push_tasks(TASKS)
    print(f'pushed {len(TASKS)} tasks to queue "flaky"; the workers retry the failing ones')

    expected_done = [task['id'] for task in TASKS if task['fails'] <= 3]

    def settled() -> bool:
        done = all(producer.get_key(f'flaky:done:{n}') is not None for n in expected_done)
        return done and producer.number_of_dead_letter_tasks() == len(TASKS) - len(expected_done)

    if not wait_for(settled, timeout=60):
        print('the tasks did not settle within 60 s: are the workers running?')
        return 1
    for n in expected_done:
        print(f'task {n} succeeded after {producer.get_key(f"flaky:done:{n}")} attempt(s)')
    for dead in producer.dead_letter_tasks():
        task_id = dead.task.kwargs['id'] if dead.task else '?'
        print(f'task {task_id} dead-lettered: {dead.reason}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
