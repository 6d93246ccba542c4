"""SIGTERM ends workers blocked waiting for work on an empty queue at once (real processes).

An idle worker no longer sleeps between polls: it blocks until a push wakes it
(``Connector.wait_for_work``). A stop signal must still end that wait promptly.
"""

from __future__ import annotations

import signal
import time
from typing import Any

from tests.supervisor.conftest import Supervise, broker_for, push_ids, wait_until

STOP_BOUND = 4.0  # generous for a loaded machine; a wait deaf to the signal lasts its 5 s idle pop


def test_sigterm_ends_idle_blocked_workers_promptly(
    supervise: Supervise, any_settings: dict[str, Any]
) -> None:
    # given two supervised workers that ran a task and now wait on an empty queue
    run = supervise('supervised_stop', 'StopWorker', '--concurrent-workers', '2', settings=any_settings)
    wait_until(lambda: len(run.workers()) == 2, 60, 'two workers')
    run.wait_for_log(r'started in slot', count=2)
    push_ids(broker_for(any_settings), range(1))
    wait_until(lambda: run.processed_ids() == [0], 30, 'the task')
    time.sleep(1.5)  # both are blocked in their wait by now

    # when the supervisor gets SIGTERM
    started = time.monotonic()
    run.send(signal.SIGTERM)

    # then it and its workers exit 0, promptly
    assert run.wait(30) == 0
    stopped_after = time.monotonic() - started
    assert stopped_after < STOP_BOUND, f'took {stopped_after:.2f} s to stop'
    assert 'loop ended by signal' in run.log() or 'SIGTERM received' in run.log(), run.log()
