"""A worker asking to stop stops the whole pool and the supervisor exits 0 (real processes)."""

from __future__ import annotations

from typing import Any

import psutil

from tests.supervisor.conftest import Supervise, broker_for, push_ids, wait_until


def test_worker_asking_to_stop_stops_every_worker(
    supervise: Supervise, local_settings: dict[str, Any]
) -> None:
    # given two supervised workers, both up
    run = supervise('supervised_stop', 'StopWorker', '--concurrent-workers', '2')
    wait_until(lambda: len(run.workers()) == 2, 60, 'two workers')
    run.wait_for_log(r'started in slot', count=2)
    workers = run.workers()

    # when a task makes its worker ask to stop
    push_ids(broker_for(local_settings), range(1), stop=True)

    # then the other worker is stopped too, nothing is respawned and the supervisor exits 0
    assert run.wait(60) == 0
    assert run.processed_ids() == [0]
    assert 'asked to stop: stopping every worker' in run.log()
    assert 'stop asked, exit code 11; loop ended by stop;' in run.log()
    assert run.log().count('started in slot') == 2
    assert not any(psutil.pid_exists(worker.pid) for worker in workers)
