"""``python -m sergeant.supervisor``, ``sergeant supervise`` and the SERGEANT_* variables."""

from __future__ import annotations

import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from tests.supervisor.conftest import Supervise, broker_for, push_ids, wait_until


def sergeant_script() -> list[str]:
    """The installed ``sergeant`` console script, next to the interpreter running the tests."""
    script = Path(sys.executable).with_name('sergeant')
    if script.exists():
        return [str(script)]
    found = shutil.which('sergeant')
    return [found] if found else [sys.executable, '-m', 'sergeant.cli']


def test_environment_variables_alone_configure_the_supervisor(
    supervise: Supervise, local_settings: dict[str, Any]
) -> None:
    # given tasks and every option in SERGEANT_* variables, no flags
    push_ids(broker_for(local_settings), range(10))
    environment = {
        'SERGEANT_WORKER_MODULE': 'tests.workers.supervised_max_tasks',
        'SERGEANT_WORKER_CLASS': 'MaxTasksWorker',
        'SERGEANT_CONCURRENT_WORKERS': '2',
        'SERGEANT_MAX_WORKER_MEMORY_USAGE': '1Gi',
        'SERGEANT_DRAIN_TIMEOUT': '7',
        'SERGEANT_LOG_LEVEL': 'debug',
        'TEST_MAX_TASKS_PER_RUN': '2',
    }

    # when ``python -m sergeant.supervisor`` runs without flags
    run = supervise(None, None, env=environment)

    # then it runs as configured
    wait_until(lambda: len(run.records()) == 10, 60, '10 processed tasks')
    run.wait_for_log(
        r'supervising 2 worker\(s\) of tests.workers.supervised_max_tasks.MaxTasksWorker '
        r'\(memory limit 1073741824, drain timeout 7 s'
    )
    assert len(run.worker_pids()) >= 5
    run.send(signal.SIGTERM)
    assert run.wait() == 0


def test_flags_win_over_environment_variables(supervise: Supervise, local_settings: dict[str, Any]) -> None:
    # given a wrong class in the environment and the right one as a flag
    push_ids(broker_for(local_settings), range(3))

    # when the supervisor starts
    run = supervise(
        'supervised_max_tasks',
        'MaxTasksWorker',
        '--concurrent-workers',
        '1',
        env={'SERGEANT_WORKER_CLASS': 'NoSuchClass', 'SERGEANT_CONCURRENT_WORKERS': '5'},
    )

    # then the flags are used
    wait_until(lambda: len(run.records()) == 3, 60, '3 processed tasks')
    assert 'supervising 1 worker(s) of tests.workers.supervised_max_tasks.MaxTasksWorker' in run.log()
    run.send(signal.SIGTERM)
    assert run.wait() == 0


def test_sergeant_supervise_runs_the_supervisor(supervise: Supervise, local_settings: dict[str, Any]) -> None:
    # given tasks
    push_ids(broker_for(local_settings), range(6))

    # when ``sergeant supervise`` runs with every flag
    run = supervise(
        'supervised_max_tasks',
        'MaxTasksWorker',
        '--concurrent-workers',
        '2',
        '--max-worker-memory-usage',
        '536870912',
        '--drain-timeout',
        '9',
        '--log-level',
        'DEBUG',
        command=[*sergeant_script(), 'supervise'],
    )

    # then the tasks are processed and SIGTERM drains it
    wait_until(lambda: len(run.records()) == 6, 60, '6 processed tasks')
    assert 'supervising 2 worker(s) of tests.workers.supervised_max_tasks.MaxTasksWorker' in run.log()
    assert '(memory limit 536870912, drain timeout 9 s' in run.log()
    run.send(signal.SIGTERM)
    assert run.wait() == 0


def test_bad_flag_exits_2_naming_it(supervise: Supervise) -> None:
    # when the supervisor gets a bad value
    run = supervise('supervised_max_tasks', 'MaxTasksWorker', '--concurrent-workers', 'several')

    # then it exits with a usage error naming the flag, starting no worker
    assert run.wait() == 2
    assert "--concurrent-workers: must be an integer, got 'several'" in run.log()
    assert 'started in slot' not in run.log()


def test_bad_environment_variable_exits_2_naming_it(supervise: Supervise) -> None:
    run = supervise(
        'supervised_max_tasks',
        'MaxTasksWorker',
        env={'SERGEANT_DRAIN_TIMEOUT': 'later'},
        command=[*sergeant_script(), 'supervise'],
    )

    assert run.wait() == 2
    assert "SERGEANT_DRAIN_TIMEOUT: must be a number of seconds, got 'later'" in run.log()
