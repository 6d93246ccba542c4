"""The supervisor's command line with a worker module in a package whose name starts with a digit,
and while another process listens on the metrics port our supervisor uses by default (9808).

0.27 imports ``--worker-module`` with ``importlib`` and serves no metrics, so both runs
must behave alike: the one task runs and stops the pool, the supervisor exits 0. The
program holds the port itself while its second supervisor runs (waiting for it if the
other implementation's run holds it; if a stranger holds it, it is taken all the same).
"""

from __future__ import annotations

import contextlib
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

from _observe import emit, queue, read_lines, redis_params, run_logged, typed, wait_for, workdir
from _supervised import DONE_FILE

import sergeant.config
import sergeant.worker

DEFAULT_METRICS_PORT = 9808


class Producer(sergeant.worker.Worker):
    def generate_config(self) -> sergeant.config.WorkerConfig:
        return sergeant.config.WorkerConfig(
            name=queue('digit'),
            connector=sergeant.config.Connector(type='redis', params=redis_params()),
        )


@contextlib.contextmanager
def listening_on(port: int, wait: float) -> Iterator[None]:
    """Listen on ``0.0.0.0:port`` while inside, waiting up to ``wait`` seconds for it to be free."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)

    def bound() -> bool:
        try:
            listener.bind(('0.0.0.0', port))
        except OSError:
            return False
        return True

    try:
        if wait_for(bound, timeout=wait, interval=0.2):
            listener.listen()
        yield
    finally:
        listener.close()


def supervise_one_task(task_id: str, log_name: str) -> dict[str, Any]:
    producer = Producer()
    producer.init_worker()
    producer.push_task(kwargs={'id': task_id})
    started = time.monotonic()
    returncode, _output = run_logged(
        [
            sys.executable,
            '-m',
            'sergeant.supervisor',
            '--worker-module',
            '9_workers.stopping',
            '--worker-class',
            'Stopping',
            '--concurrent-workers',
            '1',
        ],
        timeout=30,
        log_name=log_name,
    )
    return {
        'exit_code': typed(returncode),
        'ended_within_15s': typed(time.monotonic() - started < 15),
        'done': typed([line.rsplit(' ', 1)[0] for line in read_lines(workdir() / DONE_FILE)]),
        'left': typed(producer.number_of_enqueued_tasks(include_delayed=True)),
    }


def main() -> None:
    observed = {'digit_module': supervise_one_task('first', 'supervisor-digit.log')}
    with listening_on(DEFAULT_METRICS_PORT, wait=30):
        observed['metrics_port_taken'] = supervise_one_task('second', 'supervisor-port-taken.log')
    emit(observed)


if __name__ == '__main__':
    main()
