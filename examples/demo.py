"""`make run`: push tasks to the embedded SQLite broker and process them with 2 worker processes.

Shows a live progress bar and ends with a summary. Needs no server.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from demo_worker import DemoWorker

TASKS = 3000
WORKER_PROCESSES = 2


def run_worker(results: multiprocessing.Queue[dict[str, Any]]) -> None:
    worker = DemoWorker()
    worker.init_worker()
    summary = worker.work_loop()
    results.put({'pid': os.getpid(), 'tasks': dict(summary['tasks'])})


def show_progress(done: int, total: int, elapsed: float) -> None:
    width = 40
    filled = width * done // total
    rate = done / elapsed if elapsed else 0.0
    bar = '#' * filled + '.' * (width - filled)
    print(f'\r[{bar}] {done}/{total} tasks  {rate:8.0f} tasks/s', end='', flush=True)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix='sergeant-demo-') as directory:
        os.environ['DEMO_BROKER_FILE'] = os.path.join(directory, 'broker.sqlite3')
        producer = DemoWorker()
        producer.init_worker()
        producer.push_tasks([{'number': n, 'flaky': n % 20 == 0} for n in range(TASKS)])
        print(
            f'pushed {TASKS} tasks to the local SQLite broker; starting {WORKER_PROCESSES} worker processes'
        )

        context = multiprocessing.get_context('spawn')
        results: multiprocessing.Queue[dict[str, Any]] = context.Queue()
        processes = [context.Process(target=run_worker, args=(results,)) for _ in range(WORKER_PROCESSES)]
        started = time.perf_counter()
        elapsed = 0.0
        for process in processes:
            process.start()
        while any(process.is_alive() for process in processes):
            remaining = producer.number_of_enqueued_tasks() + producer.broker.connector.in_flight('demo')
            if not elapsed:
                if remaining == 0:
                    elapsed = time.perf_counter() - started
                show_progress(TASKS - min(remaining, TASKS), TASKS, time.perf_counter() - started)
            time.sleep(0.1)
        elapsed = elapsed or time.perf_counter() - started
        show_progress(TASKS, TASKS, elapsed)
        print()

        totals: Counter[str] = Counter()
        for _ in processes:
            report = results.get(timeout=10)
            totals.update(report['tasks'])
            print(f'  worker pid {report["pid"]}: {report["tasks"]}')
        finished = totals['success'] + totals['max_retries']
        print(
            f'summary: processed {finished} tasks in {elapsed:.2f} s ({finished / elapsed:.0f} tasks/s): '
            f'succeeded {totals["success"]}, failed and retried {totals["retry"]}, '
            f'failed for good {totals["failure"] + totals["max_retries"]}'
        )
        failed_exit = any(process.exitcode != 0 for process in processes) or totals['success'] != TASKS
        return 1 if failed_exit else 0


if __name__ == '__main__':
    sys.exit(main())
