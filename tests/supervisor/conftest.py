"""Fixtures for supervisor tests: a broker per test and supervisors run as real processes.

Every process a test starts carries a unique marker in its environment; the
teardown SIGKILLs each process (by pid) that still carries it, so a failing test
leaves neither a supervisor nor an orphaned worker behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from sergeant.codec import TaskCodec
from sergeant.connector import create_connector
from sergeant.encoder import Encoder
from sergeant.objects import Task

REPO = Path(__file__).resolve().parents[2]
QUEUE = 'supervised'
MARKER = 'SERGEANT_TEST_RUN'
CHILD_MODULE = 'sergeant.supervisor.child'


def redis_available() -> bool:
    try:
        import sergeant.connector.redis  # noqa: F401
        import tests.servers.redis  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture
def local_settings(tmp_path: Path) -> dict[str, Any]:
    return {'type': 'local', 'params': {'file_path': str(tmp_path / 'broker.sqlite3')}}


@pytest.fixture(params=['local', 'redis'])
def any_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The local broker, and Redis once its test server and connector exist."""
    if request.param == 'local':
        yield {'type': 'local', 'params': {'file_path': str(tmp_path / 'broker.sqlite3')}}
        return
    if not redis_available():
        pytest.skip('tests/servers/redis.py or sergeant.connector.redis is not there yet')
    from tests.servers.redis import running_redis

    workdir = tmp_path / 'redis'
    workdir.mkdir()
    with running_redis(workdir) as server:
        yield {'type': 'redis', 'params': {'url': server.url}}


def broker_for(settings: dict[str, Any]) -> TaskCodec:
    return TaskCodec(create_connector(settings['type'], settings['params']), Encoder())


def push_ids(broker: TaskCodec, ids: range, **kwargs: Any) -> None:
    broker.push_tasks(QUEUE, [Task(kwargs={'id': i, **kwargs}) for i in ids])


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out after {timeout} s waiting for {what}')
        time.sleep(interval)


class SupervisorRun:
    """A supervisor started as a process, with its log and the ids its workers processed."""

    def __init__(self, popen: subprocess.Popen[bytes], log_path: Path, output: Path) -> None:
        self.popen = popen
        self.log_path = log_path
        self.output = output

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors='replace')

    def wait_for_log(self, pattern: str, timeout: float = 60, count: int = 1) -> None:
        def found() -> bool:
            return len(re.findall(pattern, self.log())) >= count

        try:
            wait_until(found, timeout, f'{count} x {pattern!r} in the supervisor log')
        except AssertionError as error:
            raise AssertionError(f'{error}\n--- log ---\n{self.log()}') from None

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f'supervisor still running after {timeout} s\n{self.log()}') from None

    def send(self, signal_number: int) -> None:
        self.popen.send_signal(signal_number)

    def workers(self) -> list[psutil.Process]:
        """The live worker processes (the supervisor's children running the child module)."""
        found = []
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(self.pid).children():
                with contextlib.suppress(psutil.Error):
                    if child.status() != psutil.STATUS_ZOMBIE and CHILD_MODULE in child.cmdline():
                        found.append(child)
        return found

    def records(self) -> list[tuple[int, int]]:
        """``(worker pid, task id)`` of every processed task, in order."""
        if not self.output.exists():
            return []
        lines = self.output.read_text().splitlines()
        return [(int(pid), int(task_id)) for pid, task_id in (line.split() for line in lines if line)]

    def processed_ids(self) -> list[int]:
        return [task_id for _pid, task_id in self.records()]

    def worker_pids(self) -> set[int]:
        return {pid for pid, _task_id in self.records()}


Supervise = Callable[..., SupervisorRun]


def _kill_marked(marker: str) -> None:
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.environ().get(MARKER) == marker:
                process.send_signal(signal.SIGKILL)


@pytest.fixture
def supervise(tmp_path: Path, local_settings: dict[str, Any]) -> Iterator[Supervise]:
    """supervise(module, class, *flags, settings=..., env=..., command=..., cwd=...) -> a running supervisor.

    ``module`` is a ``tests.workers.supervised_*`` module; ``command`` replaces
    ``python -m sergeant.supervisor`` (e.g. the ``sergeant supervise`` script);
    ``cwd`` replaces the repository as the working directory.
    Metrics are off (``SERGEANT_METRICS_PORT=0``) unless a flag or ``env`` turns them on,
    so supervisors running side by side do not compete for the default port.
    """
    marker = uuid.uuid4().hex
    started: list[subprocess.Popen[bytes]] = []

    def start(
        module: str | None,
        worker_class: str | None,
        *flags: str,
        settings: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        command: list[str] | None = None,
        cwd: Path | None = None,
    ) -> SupervisorRun:
        index = len(started)
        log_path, output = tmp_path / f'supervisor-{index}.log', tmp_path / f'processed-{index}.txt'
        arguments = list(command or [sys.executable, '-m', 'sergeant.supervisor'])
        if module is not None:
            arguments += ['--worker-module', f'tests.workers.{module}']
        if worker_class is not None:
            arguments += ['--worker-class', worker_class]
        environment = {key: value for key, value in os.environ.items() if not key.startswith('SERGEANT_')} | {
            MARKER: marker,
            'TEST_CONNECTOR': json.dumps(settings or local_settings),
            'TEST_QUEUE': QUEUE,
            'TEST_OUTPUT': str(output),
            'PYTHONUNBUFFERED': '1',
            'SERGEANT_METRICS_PORT': '0',
        }
        environment.update(env or {})
        with log_path.open('wb') as log:
            popen = subprocess.Popen(
                [*arguments, *flags], cwd=cwd or REPO, env=environment, stdout=log, stderr=subprocess.STDOUT
            )
        started.append(popen)
        return SupervisorRun(popen, log_path, output)

    yield start

    for popen in started:
        with contextlib.suppress(ProcessLookupError):
            popen.send_signal(signal.SIGKILL)
        popen.wait(30)
    _kill_marked(marker)  # workers and grandchildren left behind
