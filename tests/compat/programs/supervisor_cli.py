"""The supervisor's command line: ``python -m sergeant.supervisor --worker-module M --concurrent-workers 2``.

Ten tasks and a ``stop`` task are queued for workers that end after three tasks each
(``max_tasks_per_run=3``), so the supervisor replaces them; the ``stop`` task stops the
pool once the ten are done. Observed: how the supervisor ended, which tasks ran and how
often, how many worker processes there were, what is left in the queue, whether the
supervisor process listened on a TCP port, and its log.
"""

from __future__ import annotations

import os
import socket
import sys

from _observe import emit, listening_ports, log_lines, run_logged, typed
from _supervised import COUNTED_TASKS, Counting, done_lines


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port: int = probe.getsockname()[1]
        return port


def main() -> None:
    producer = Counting()
    producer.init_worker()
    producer.push_tasks(kwargs_list=[{'id': number} for number in range(COUNTED_TASKS)])
    producer.push_task(kwargs={'id': 'stop'})
    ports: set[int] = set()
    # ours serves /metrics on a port of its own here (0.27 reads no such variable): the default
    # port may be held by anything else on the host, and then ours would rightly serve nothing
    os.environ['SERGEANT_METRICS_PORT'] = str(free_port())
    command = [sys.executable, '-m', 'sergeant.supervisor', '--worker-module', '_supervised']
    returncode, output = run_logged(
        [*command, '--worker-class', 'Counting', '--concurrent-workers', '2'],
        timeout=60,
        log_name='supervisor.log',
        while_running=lambda pid: ports.update(listening_ports(pid)),
    )
    done = done_lines()
    emit(
        {
            'exit_code': typed(returncode),
            'done_sorted': typed(sorted(what for what, _pid in done)),
            'worker_processes>=4': typed(len({pid for _what, pid in done}) >= 4),
            'left': typed(producer.number_of_enqueued_tasks(include_delayed=True)),
            'supervisor_listened': typed(bool(ports)),
            'log': log_lines(output),
        }
    )


if __name__ == '__main__':
    main()
