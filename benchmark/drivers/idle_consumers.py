"""Many idle consumers in one process, for the scale section (``harness/scale.py``).

``python idle_consumers.py PARAMS_JSON QUEUE COUNT OUT`` starts ``COUNT`` threads,
each with its own Redis connector, doing what an idle worker's task stream does:
``pop`` one task (acknowledging the last one in the same call) and, when the queue
is empty, ``wait_for_work`` (a blocking wait on the queue's wake tokens). For each
task it receives, a thread appends the receiving time (epoch seconds) to ``OUT``.
Prints ``ready`` once every thread has made its first pop; runs until SIGTERM.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sergeant.connector import Connector, create_connector

LEASE_SECONDS = 60.0
POLL_INTERVAL = 1.0  # unused by a single Redis node, which blocks on wake tokens instead


def consume(
    connector: Connector, queue: str, out: Path, stop: threading.Event, ready: threading.Barrier
) -> None:
    pending: list[bytes] = []
    first = True
    while not stop.is_set():
        messages = connector.pop(queue, 1, lease_seconds=LEASE_SECONDS, ack=pending)
        pending = []
        if first:
            first = False
            ready.wait()
        if messages:
            received = time.time()
            with out.open('a') as file:
                file.write(f'{received:.6f}\n')
            pending = [message.receipt for message in messages]
            continue
        connector.wait_for_work(queue, POLL_INTERVAL, stop.is_set)


def main() -> None:
    params: dict[str, Any] = json.loads(sys.argv[1])
    queue, count, out = sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ready = threading.Barrier(count + 1)
    connectors = [create_connector('redis', params) for _ in range(count)]
    threads = [
        threading.Thread(target=consume, args=(connector, queue, out, stop, ready), daemon=True)
        for connector in connectors
    ]
    for thread in threads:
        thread.start()
    ready.wait()
    print('ready', flush=True)
    while not stop.wait(0.5):
        pass
    # blocked waits end within their timeout; the process need not wait for them
    for connector in connectors:
        connector.close()


if __name__ == '__main__':
    main()
