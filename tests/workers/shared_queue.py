"""A worker whose tasks put into a ``multiprocessing`` queue made before them, run as a process.

``python -m tests.workers.shared_queue BROKER_FILE THREADS``: pushes two tasks to a
local broker in BROKER_FILE, runs them in THREADS executor threads (the first put
starts the queue's feeder thread, inside a task), then puts one more item after
the loop and prints ``{"reason": ..., "items": [...]}`` as JSON. A feeder thread
ended with its task would leave the queue broken, and this process hanging.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
from typing import Any

from sergeant import Task, config
from sergeant.worker import Worker


class Feeding(Worker):
    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(
            name='feeding',
            connector=config.Connector(type='local', params={'file_path': sys.argv[1]}),
            number_of_threads=int(sys.argv[2]),
            max_tasks_per_run=2,
        )

    def initialize(self) -> None:
        self.queue: multiprocessing.Queue[int] = multiprocessing.Queue()

    def work(self, task: Task) -> Any:
        self.queue.put(task.kwargs['n'])


if __name__ == '__main__':
    worker = Feeding()
    worker.init_worker()
    worker.push_tasks([{'n': 0}, {'n': 1}])
    summary = worker.work_loop()
    worker.queue.put(2)
    items = sorted(worker.queue.get(timeout=10) for _ in range(3))
    worker.queue.close()
    worker.queue.join_thread()
    print(json.dumps({'reason': str(summary['reason']), 'items': items}))
