"""Sergeant 0.27's ways of running the supervisor keep working.

Its examples' module paths (folders named ``1_...``), its flag spellings, two
supervisors on one host (the second cannot have the default metrics port), and
the programmatic ``Supervisor(...).start()`` with a logger of the user's own.
"""

from __future__ import annotations

import json
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.ports import free_port
from tests.supervisor.conftest import REPO, Supervise, SupervisorRun, broker_for, push_ids, wait_until

EXAMPLE_MODULE = 'examples.1_single_producer_single_consumer.consumer'

CONSUMER = '''\
"""The consumer of an example laid out as in Sergeant 0.27's repository."""

from tests.workers.supervised_common import RecordingWorker


class Worker(RecordingWorker):
    pass
'''

# python -m sergeant.supervisor with another default metrics port, so that no test depends on 9808
WITH_DEFAULT_PORT = """\
import os
import sys

from sergeant.supervisor import options
from sergeant.supervisor.__main__ import main

options.DEFAULT_METRICS_PORT = int(os.environ['TEST_DEFAULT_METRICS_PORT'])
sys.exit(main())
"""

# Sergeant 0.27's documented use, with a logger collecting records into a list saved at exit
PROGRAMMATIC = """\
import atexit
import json
import logging
import os

import sergeant.supervisor
from sergeant.supervisor import options

options.DEFAULT_METRICS_PORT = int(os.environ['TEST_DEFAULT_METRICS_PORT'])


class Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append([record.name, record.levelname, record.getMessage()])


collect = Collect()
logger = logging.getLogger('application')
logger.setLevel(logging.INFO)
logger.propagate = False
logger.addHandler(collect)


@atexit.register
def save():
    with open(os.environ['TEST_RECORDS'], 'w') as file:
        json.dump(collect.records, file)


supervisor = sergeant.supervisor.Supervisor(
    worker_module_name='tests.workers.supervised_common',
    worker_class_name='RecordingWorker',
    concurrent_workers=2,
    max_worker_memory_usage=None,
    logger=logger,
)
supervisor.start()
print('start() returned')
"""


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port this test listens on, on every interface, as another program would."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(('0.0.0.0', 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.fixture
def redis_settings(tmp_path: Path) -> Iterator[dict[str, Any]]:
    try:
        from tests.servers.redis import running_redis
    except ImportError:
        pytest.skip('the redis client is not installed')
    workdir = tmp_path / 'redis'
    workdir.mkdir()
    with running_redis(workdir) as server:
        yield {'type': 'redis', 'params': {'url': server.url}}


def with_default_port(port: int) -> dict[str, Any]:
    """``supervise`` arguments for a supervisor whose default metrics port is ``port``, not asked for."""
    return {
        'command': [sys.executable, '-c', WITH_DEFAULT_PORT],
        'env': {'TEST_DEFAULT_METRICS_PORT': str(port), 'SERGEANT_METRICS_PORT': ''},
    }


def stop(run: SupervisorRun) -> None:
    run.send(signal.SIGTERM)
    assert run.wait() == 0, run.log()


def test_worker_module_in_a_folder_named_with_a_digit_runs(
    supervise: Supervise, local_settings: dict[str, Any], tmp_path: Path
) -> None:
    # given 0.27's example layout in a project folder, and tasks
    project = tmp_path / 'project'
    package = project / 'examples' / '1_single_producer_single_consumer'
    package.mkdir(parents=True)
    (package / 'consumer.py').write_text(CONSUMER)
    push_ids(broker_for(local_settings), range(5))

    # when 0.27's documented command line runs in the project folder
    run = supervise(
        None,
        None,
        f'--worker-module={EXAMPLE_MODULE}',
        '--worker-class=Worker',
        '--concurrent-worker=1',
        cwd=project,
        env={'PYTHONPATH': str(REPO)},
    )

    # then its worker processes the tasks
    wait_until(lambda: len(run.records()) == 5, 60, '5 processed tasks')
    assert f'supervising 1 worker(s) of {EXAMPLE_MODULE}.Worker' in run.log()
    stop(run)


def test_missing_worker_module_is_one_clear_line_and_a_quick_exit(supervise: Supervise) -> None:
    # given a module that is nowhere to import from
    module = 'sergeant_missing_examples.1_single_producer_single_consumer.consumer'

    # when two workers of it are supervised
    started = time.monotonic()
    run = supervise(
        None, None, f'--worker-module={module}', '--worker-class=Worker', '--concurrent-workers=2'
    )

    # then the supervisor exits at once, non-zero, without respawning
    assert run.wait(30) == 3
    assert time.monotonic() - started < 15
    log = run.log()
    assert log.count('started in slot') <= 2
    assert 'backing off' not in log
    assert 'Traceback' not in log
    # and one line says which module could not be imported, why, and where it was looked for
    lines = [line for line in log.splitlines() if 'ModuleNotFoundError' in line]
    assert len(lines) == 1, log
    assert f"cannot import worker module '{module}' (class 'Worker')" in lines[0]
    assert "No module named 'sergeant_missing_examples'" in lines[0]
    assert f'not {REPO}' in lines[0]


def test_a_taken_default_metrics_port_is_a_warning(
    supervise: Supervise, local_settings: dict[str, Any], taken_port: int
) -> None:
    # given tasks, and the default metrics port taken by another program
    push_ids(broker_for(local_settings), range(4))

    # when a supervisor starts without a metrics port asked for
    run = supervise('supervised_max_tasks', 'MaxTasksWorker', **with_default_port(taken_port))

    # then it says so once, with the way out, and supervises without serving metrics
    wait_until(lambda: len(run.records()) == 4, 60, '4 processed tasks')
    log = run.log()
    warnings = [line for line in log.splitlines() if 'is taken' in line]
    assert len(warnings) == 1, log
    assert f'WARNING default metrics port {taken_port} is taken' in warnings[0]
    assert '--metrics-port' in warnings[0]
    assert 'SERGEANT_METRICS_PORT' in warnings[0]
    assert 'serving /metrics' not in log
    wait_until(lambda: len(run.workers()) == 1, 30, 'the worker process')
    assert '--report-metrics' not in run.workers()[0].cmdline(), 'no one would read its metrics'
    stop(run)


def test_two_supervisors_share_a_host(supervise: Supervise, local_settings: dict[str, Any]) -> None:
    # given a supervisor serving metrics on the default port
    port = free_port()
    first = supervise('supervised_max_tasks', 'MaxTasksWorker', **with_default_port(port))
    first.wait_for_log(f'serving /metrics, /healthz and /readyz on 0.0.0.0:{port}')

    # when a second one starts on the same host, with the same default
    second = supervise('supervised_max_tasks', 'MaxTasksWorker', **with_default_port(port))

    # then it runs on without metrics, and both process tasks
    second.wait_for_log(f'default metrics port {port} is taken')
    push_ids(broker_for(local_settings), range(20))
    wait_until(lambda: len(first.records()) + len(second.records()) == 20, 60, '20 processed tasks')
    assert second.popen.poll() is None
    stop(first)
    stop(second)


@pytest.mark.parametrize('asked', ['flag', 'variable'])
def test_a_taken_metrics_port_asked_for_is_an_error(
    supervise: Supervise, taken_port: int, asked: str
) -> None:
    # when a supervisor is asked for a taken port, by flag or variable, even with that port as its default
    flags = ['--metrics-port', str(taken_port)] if asked == 'flag' else []
    arguments = with_default_port(taken_port)
    if asked == 'variable':
        arguments['env']['SERGEANT_METRICS_PORT'] = str(taken_port)
    run = supervise('supervised_max_tasks', 'MaxTasksWorker', *flags, **arguments)

    # then it does not start, saying why
    assert run.wait() == 1
    log = run.log()
    assert f'cannot serve /metrics on 0.0.0.0:{taken_port}' in log
    assert '--metrics-port' in log
    assert 'started in slot' not in log
    assert 'Traceback' not in log


def test_programmatic_supervisor_logs_to_the_given_logger_and_exits_0(
    supervise: Supervise, redis_settings: dict[str, Any], taken_port: int, tmp_path: Path
) -> None:
    # given tasks in Redis, and 0.27's programmatic use with a logger of its own
    push_ids(broker_for(redis_settings), range(10))
    script = tmp_path / 'supervise.py'
    script.write_text(PROGRAMMATIC)
    records_path = tmp_path / 'records.json'

    # when it starts (with its default metrics port taken) and is later sent SIGTERM
    run = supervise(
        None,
        None,
        command=[sys.executable, str(script)],
        settings=redis_settings,
        env={
            'TEST_DEFAULT_METRICS_PORT': str(taken_port),
            'TEST_RECORDS': str(records_path),
            'SERGEANT_METRICS_PORT': '',
        },
    )
    wait_until(lambda: len(run.records()) == 10, 60, '10 processed tasks')
    wait_until(lambda: len(run.workers()) == 2, 30, 'two workers')
    run.send(signal.SIGTERM)

    # then start() ends the process with 0, not returning
    assert run.wait() == 0, run.log()
    assert 'start() returned' not in run.log()
    # and the logger got the supervisor's records, from whichever of its modules, and stderr none
    records = json.loads(records_path.read_text())
    messages = [message for _name, _level, message in records]
    assert {name for name, _level, _message in records} == {'sergeant.supervisor'}
    expected = [
        f'default metrics port {taken_port} is taken',
        'supervising 2 worker(s) of tests.workers.supervised_common.RecordingWorker',
        'started in slot 0',
        'SIGTERM received: stopping 2 worker(s)',
        'supervisor exiting: OK (0)',
    ]
    for text in expected:
        assert any(text in message for message in messages), (text, messages)
    assert 'supervising' not in run.log()
