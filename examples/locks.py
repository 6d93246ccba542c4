"""Locks: work that must never run twice at the same time, whoever runs it.

Run the workers, then push and watch (from this directory)::

    sergeant supervise --worker-module locks --worker-class ReportUpdater --concurrent-workers 2
    python locks.py

Every task adds one to a counter kept in the broker: read, work a little, write.
Eight tasks run at a time (two processes of four threads), so without the lock
two of them would read the same value and one update would be lost. With
``self.lock('report')`` around it, the counter ends at exactly the number of tasks.
The lock expires after ``ttl`` seconds, so a worker that dies holding it cannot
block the others for longer; only the holder can release it.
"""

from __future__ import annotations

import sys
import time

from example_broker import connector, wait_for

from sergeant import Task, Worker, config

TASKS = 40
COUNTER = 'report:updates'


class ReportUpdater(Worker):
    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(name='report', connector=connector(), number_of_threads=4)

    def work(self, task: Task) -> None:
        lock = self.lock('report')
        if not lock.acquire(timeout=60, check_interval=0.01, ttl=10):
            self.requeue(task)  # someone holds it for too long: try again later
        try:
            count = self.get_key(COUNTER) or 0
            time.sleep(0.01)  # the update itself: long enough for others to try meanwhile
            self.set_key(COUNTER, count + 1)
        finally:
            lock.release()


def main() -> int:
    producer = ReportUpdater()
    producer.init_worker()
    producer.purge_tasks()
    producer.set_key(COUNTER, 0)
    producer.push_tasks([{'update': n} for n in range(TASKS)])
    print(f'pushed {TASKS} updates of one report')
    if not wait_for(lambda: producer.get_key(COUNTER) == TASKS, timeout=60):
        print(f'the counter is at {producer.get_key(COUNTER)} of {TASKS}: updates were lost or not run')
        return 1
    print(f'the counter is at {TASKS}: no update was lost')
    return 0


if __name__ == '__main__':
    sys.exit(main())
