"""The supervisor as a class: ``sergeant.supervisor.Supervisor(...).start()``, a memory limit and a logger.

The program itself supervises one worker process with ``max_worker_memory_usage`` of
150 MB and its own logger. The only task grows the worker to about 200 MB and waits: the
supervisor must replace that worker. Once the next worker has started, the program sends
itself SIGTERM, which stops the supervisor. Observed: how ``start()`` ended, which
process did what, the records the given logger received, and what is left in the queue.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

from _observe import LogRecords, emit, typed, wait_for
from _supervised import Bloating, done_lines

import sergeant.supervisor

MEMORY_LIMIT = 150 * 1024 * 1024
TIMEOUT = 40.0


def started_workers() -> int:
    return sum(1 for what, _pid in done_lines() if what == 'started')


def terminate_once_replaced() -> None:
    """SIGTERM this process once a second worker has started (or after TIMEOUT, to end anyway)."""
    wait_for(lambda: started_workers() >= 2, timeout=TIMEOUT)
    time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)


def main() -> None:
    producer = Bloating()
    producer.init_worker()
    producer.push_task(kwargs={'id': 'bloat'})
    records = LogRecords()
    logger = logging.getLogger('compat-supervisor')
    logger.addHandler(records)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    supervisor = sergeant.supervisor.Supervisor(
        worker_module_name='_supervised',
        worker_class_name='Bloating',
        concurrent_workers=1,
        max_worker_memory_usage=MEMORY_LIMIT,
        logger=logger,
    )
    threading.Thread(target=terminate_once_replaced, daemon=True).start()
    started = time.monotonic()
    ended: dict[str, Any]
    try:
        supervisor.start()
        ended = {'returned': True}
    except SystemExit as exit:
        ended = {'raised': 'SystemExit', 'code': typed(exit.code)}
    done = done_lines()
    pids = [pid for what, pid in done if what == 'started']
    bloated = [pid for what, pid in done if what == 'bloat']
    emit(
        {
            'start': ended,
            'start_ended_within_20s': typed(time.monotonic() - started < 20),
            'done': typed([what for what, _pid in done]),
            'replaced_the_bloated_worker': typed(len(pids) == 2 and bloated == pids[:1]),
            'left': typed(producer.number_of_enqueued_tasks(include_delayed=True)),
            'logger_received_records': typed(bool(records.lines)),
            'log': sorted({line['message'] for line in records.take()}),
        }
    )


if __name__ == '__main__':
    main()
