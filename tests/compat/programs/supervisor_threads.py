"""Threads a task leaves behind in a supervised worker (``python -m sergeant.supervisor``).

The worker (``max_tasks_per_run=1``) runs a task that starts two non-daemon threads and
returns: one that a ``SystemExit`` raised in it ends, one stuck in a 30 s ``time.sleep``
that nothing can end. After the loop the worker process must get rid of both: the first
gets ``SystemExit``, the second is reported to the supervisor by name and the process is
replaced; the next worker runs the ``stop`` task. Observed: what the threads and workers
did, whether the supervisor's log names the stuck thread, and how the supervisor ended.
"""

from __future__ import annotations

import sys
import time

from _observe import emit, run_logged, typed
from _supervised import LeavesThreads, done_lines


def main() -> None:
    producer = LeavesThreads()
    producer.init_worker()
    producer.push_tasks(kwargs_list=[{'id': 'leave'}, {'id': 'stop'}])
    started = time.monotonic()
    returncode, output = run_logged(
        [
            sys.executable,
            '-m',
            'sergeant.supervisor',
            '--worker-module',
            '_supervised',
            '--worker-class',
            'LeavesThreads',
            '--concurrent-workers',
            '1',
        ],
        timeout=60,
        log_name='supervisor.log',
    )
    done = done_lines()
    pids = {what: pid for what, pid in done}
    emit(
        {
            'exit_code': typed(returncode),
            'ended_within_20s': typed(time.monotonic() - started < 20),
            'done': typed([what for what, _pid in done]),
            'stop_ran_in_another_process': typed(pids.get('leave') != pids.get('stop')),
            'log_names_the_unkillable_thread': typed('compat-unkillable' in output),
            'log_names_the_killable_thread': typed('compat-killable' in output),
            'left': typed(producer.number_of_enqueued_tasks(include_delayed=True)),
        }
    )


if __name__ == '__main__':
    main()
