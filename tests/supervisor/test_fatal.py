"""Worker classes that cannot be loaded are fatal; workers failing at start-up are backed off."""

from __future__ import annotations

import re
import signal

import pytest

from tests.supervisor.conftest import Supervise

WORKER_NOT_LOADABLE = 3


@pytest.mark.parametrize(
    ('module', 'worker_class', 'message'),
    [
        (
            'supervised_import_error',
            'Anything',
            "cannot import worker module 'tests.workers.supervised_import_error' (class 'Anything'): "
            "ModuleNotFoundError: No module named 'sergeant_module_that_does_not_exist'",
        ),
        (
            'supervised_no_such_module',
            'Anything',
            "cannot import worker module 'tests.workers.supervised_no_such_module' (class 'Anything')",
        ),
        (
            'supervised_not_a_worker',
            'Missing',
            "worker module 'tests.workers.supervised_not_a_worker' has no class 'Missing'",
        ),
        (
            'supervised_not_a_worker',
            'NotAWorker',
            'tests.workers.supervised_not_a_worker.NotAWorker is not a subclass of sergeant.worker.Worker',
        ),
    ],
    ids=['import-error', 'missing-module', 'missing-class', 'not-a-worker'],
)
def test_unloadable_worker_is_fatal_without_respawn_loop(
    supervise: Supervise, module: str, worker_class: str, message: str
) -> None:
    # given a worker module or class that cannot be loaded
    # when it is supervised with three workers
    run = supervise(module, worker_class, '--concurrent-workers', '3')

    # then the supervisor exits non-zero, naming module and class, without respawning anything
    assert run.wait(60) == WORKER_NOT_LOADABLE
    log = run.log()
    assert message in log
    assert log.count('started in slot') <= 3
    assert 'backing off' not in log
    assert 'supervisor exiting: WORKER_NOT_LOADABLE (3)' in log


def test_workers_failing_at_start_up_are_respawned_with_backoff(supervise: Supervise) -> None:
    # given a worker whose construction always fails
    # when it is supervised
    run = supervise('supervised_startup_crash', 'StartupCrashWorker')

    # then each failure is logged with its cause, and respawns back off exponentially
    run.wait_for_log(r'backing off 2\.0 s', timeout=90)
    log = run.log()
    assert 'the configuration service is down' in log
    assert re.findall(r'backing off ([\d.]+) s', log)[:3] == ['0.5', '1.0', '2.0']
    assert 'start-up failed, exit code 13' in log
    assert run.popen.poll() is None, 'a start-up failure is not fatal'
    # and a stop request during the backoff ends the supervisor at once
    run.send(signal.SIGTERM)
    assert run.wait(30) == 0
