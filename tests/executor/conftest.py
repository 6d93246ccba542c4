"""Fixtures for executor tests: in-process workers on a local broker, and worker processes.

In-process workers run under a real killer process whose hard limit would kill
the test process itself, so their grace periods are far longer than any test.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from sergeant import Task, config
from sergeant.codec import TaskCodec
from sergeant.connector import create_connector
from sergeant.encoder import Encoder
from sergeant.worker import Worker

REPO = Path(__file__).resolve().parents[2]
SAFE_GRACE_PERIOD = 120.0

W = TypeVar('W', bound='ConfiguredWorker')
Build = Callable[..., Any]


class ConfiguredWorker(Worker):
    """A worker whose config comes from the test; records (event, value) pairs."""

    settings: config.WorkerConfig

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        super().__init__()

    def generate_config(self) -> config.WorkerConfig:
        return self.settings

    def events(self, name: str) -> list[Any]:
        return [value for event, value in self.calls if event == name]


@pytest.fixture
def build_worker(tmp_path: Path) -> Build:
    """build_worker(WorkerClass, **config fields) -> an initialised worker on the test's broker."""

    def build(worker_class: type[W], **fields: Any) -> W:
        fields.setdefault('name', 'tasks')
        fields.setdefault('connector', local_connector(tmp_path))
        fields.setdefault('delivery', config.Delivery(lease_seconds=1.0))
        subclass: type[W] = type(
            worker_class.__name__, (worker_class,), {'settings': config.WorkerConfig(**fields)}
        )
        worker = subclass()
        worker.init_worker()
        return worker

    return build


def local_connector(tmp_path: Path) -> config.Connector:
    return config.Connector(type='local', params={'file_path': str(tmp_path / 'broker.sqlite3')})


def soft_timeout(seconds: float) -> config.Timeouts:
    return config.Timeouts(timeout=seconds, grace_period=SAFE_GRACE_PERIOD)


def child_pids() -> set[int]:
    return {child.pid for child in psutil.Process().children(recursive=True)}


def is_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@dataclasses.dataclass(frozen=True)
class Event:
    name: str
    task_id: str
    run_count: int
    at: float


class HogWorkers:
    """Starts ``tests/workers/timeout_hog.py`` processes on one local broker; reads what they did."""

    queue = 'limits'

    def __init__(self, tmp_path: Path) -> None:
        params = {'file_path': str(tmp_path / 'broker.sqlite3')}
        self.connector = {'type': 'local', 'params': params}
        self.broker = TaskCodec(create_connector('local', params), Encoder())
        self.output = tmp_path / 'events.txt'
        self.stderr = tmp_path / 'stderr.txt'
        self.processes: list[subprocess.Popen[bytes]] = []

    def push(self, *kinds: tuple[str, str]) -> None:
        """Push one task per (id, kind)."""
        tasks = [Task(kwargs={'id': task_id, 'kind': kind}) for task_id, kind in kinds]
        self.broker.push_tasks(self.queue, tasks)

    def start(
        self, threads: int, timeout: float, grace_period: float, max_retries: int = 0
    ) -> subprocess.Popen[bytes]:
        environment = dict(
            os.environ,
            TEST_CONNECTOR=json.dumps(self.connector),
            TEST_QUEUE=self.queue,
            TEST_OUTPUT=str(self.output),
            TEST_THREADS=str(threads),
            TEST_TIMEOUT=str(timeout),
            TEST_GRACE_PERIOD=str(grace_period),
            TEST_MAX_RETRIES=str(max_retries),
        )
        with self.stderr.open('ab') as stderr:
            process = subprocess.Popen(
                [sys.executable, '-m', 'tests.workers.timeout_hog'], cwd=REPO, env=environment, stderr=stderr
            )
        self.processes.append(process)
        return process

    def events(self, name: str, task_id: str | None = None) -> list[Event]:
        found = []
        for line in self._lines():
            fields = line.split()
            if fields[0] == name and (task_id is None or fields[1] == task_id):
                found.append(Event(fields[0], fields[1], int(fields[2]), float(fields[3])))
        return found

    def killer_pids(self) -> set[int]:
        """Child processes the worker had when tasks started."""
        return self._pids('killer')

    def started_children(self) -> set[int]:
        """Child processes started by tasks."""
        return self._pids('child')

    def _pids(self, event: str) -> set[int]:
        return {int(pid) for line in self._lines() if line.split()[0] == event for pid in line.split()[1:]}

    def _lines(self) -> list[str]:
        return self.output.read_text().splitlines() if self.output.exists() else []

    def kill_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait()


@pytest.fixture
def hog_workers(tmp_path: Path) -> Iterator[HogWorkers]:
    workers = HogWorkers(tmp_path)
    yield workers
    workers.kill_all()
