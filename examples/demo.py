"""`make run`: push tasks to the embedded SQLite broker and process them under the supervisor.

A supervisor runs 2 worker processes; the demo shows a live progress bar and ends
with a summary. Needs no server.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent
sys.path.insert(0, str(EXAMPLES))

from demo_worker import DemoWorker  # noqa: E402

TASKS = 3000
WORKER_PROCESSES = 2


def show_progress(done: int, total: int, elapsed: float) -> None:
    width = 40
    filled = width * done // total
    rate = done / elapsed if elapsed else 0.0
    bar = '#' * filled + '.' * (width - filled)
    print(f'\r[{bar}] {done}/{total} tasks  {rate:8.0f} tasks/s', end='', flush=True)


def supervise(directory: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        '-m',
        'sergeant.supervisor',
        '--worker-module',
        'demo_worker',
        '--worker-class',
        'DemoWorker',
        '--concurrent-workers',
        str(WORKER_PROCESSES),
    ]
    environment = dict(os.environ, PYTHONPATH=str(EXAMPLES))
    log = open(os.path.join(directory, 'supervisor.log'), 'wb')  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix='sergeant-demo-') as directory:
        os.environ['DEMO_BROKER_FILE'] = os.path.join(directory, 'broker.sqlite3')
        os.environ['DEMO_RESULTS_DIR'] = directory
        # the producer here and the workers (which inherit the environment) sign every payload
        os.environ.setdefault('SERGEANT_SIGNING_KEY', secrets.token_hex(16))
        producer = DemoWorker()
        producer.init_worker()
        producer.push_tasks([{'number': n, 'flaky': n % 20 == 0} for n in range(TASKS)])
        print(f'pushed {TASKS} tasks to the local SQLite broker; supervising {WORKER_PROCESSES} workers')

        started = time.perf_counter()
        elapsed = 0.0
        supervisor = supervise(directory)
        while supervisor.poll() is None:
            remaining = producer.number_of_enqueued_tasks() + producer.broker.connector.in_flight('demo')
            if not elapsed:
                if remaining == 0:
                    elapsed = time.perf_counter() - started
                show_progress(TASKS - min(remaining, TASKS), TASKS, time.perf_counter() - started)
            time.sleep(0.1)
        elapsed = elapsed or time.perf_counter() - started
        show_progress(TASKS, TASKS, elapsed)
        print()

        print('supervisor log:')
        for line in Path(directory, 'supervisor.log').read_text().splitlines():
            print(f'  {line}')
        totals: Counter[str] = Counter()
        for report in Path(directory).glob('*.json'):
            totals.update(json.loads(report.read_text()))
        finished = totals['success'] + totals['max_retries']
        print(
            f'summary: processed {finished} tasks in {elapsed:.2f} s ({finished / elapsed:.0f} tasks/s): '
            f'succeeded {totals["success"]}, failed and retried {totals["retry"]}, '
            f'failed for good {totals["failure"] + totals["max_retries"]}'
        )
        return 0 if supervisor.returncode == 0 and totals['success'] == TASKS else 1


if __name__ == '__main__':
    sys.exit(main())
