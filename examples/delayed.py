"""Delayed tasks: reminders that run when they are due, not before.

Run the workers, then push and watch (from this directory)::

    sergeant supervise --worker-module delayed --worker-class Reminder
    python delayed.py

``push_task(..., consumable_from=t)`` keeps a task in the queue's delayed set until
the time ``t`` (seconds since the epoch); ``sergeant queues`` counts it as delayed
until then. The worker records when each reminder ran.
"""

from __future__ import annotations

import sys
import time

from example_broker import connector, wait_for

from sergeant import Task, Worker, config

DELAYS = (3.0, 1.0, 2.0, 0.5)  # seconds from now


class Reminder(Worker):
    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(name='reminders', connector=connector())

    def work(self, task: Task) -> None:
        ran = time.time()
        self.set_key(f'reminder:{task.kwargs["id"]}', ran)
        self.logger.info('reminder %s: %s', task.kwargs['id'], task.kwargs['text'])


def main() -> int:
    producer = Reminder()
    producer.init_worker()
    producer.purge_tasks()
    now = time.time()
    due = {n: now + delay for n, delay in enumerate(DELAYS)}
    for n, at in due.items():
        producer.delete_key(f'reminder:{n}')
        producer.push_task({'id': n, 'text': f'reminder {n}'}, consumable_from=at)
    print(f'pushed {len(due)} reminders, due in {", ".join(f"{d:g} s" for d in DELAYS)}')
    print(
        f'ready now: {producer.number_of_enqueued_tasks()}, '
        f'with delayed: {producer.number_of_enqueued_tasks(include_delayed=True)}'
    )

    def all_ran() -> bool:
        return all(producer.get_key(f'reminder:{n}') is not None for n in due)

    if not wait_for(all_ran, timeout=max(DELAYS) + 30):
        print('not every reminder ran: are the workers running?')
        return 1
    early = 0
    for n, at in sorted(due.items(), key=lambda item: item[1]):
        late = producer.get_key(f'reminder:{n}') - at
        early += late < 0
        print(f'reminder {n} ran {late:+.2f} s after it was due')
    return 1 if early else 0


if __name__ == '__main__':
    sys.exit(main())
