"""A worker process killed with SIGKILL mid-batch loses no task (real processes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sergeant.codec import TaskCodec
from sergeant.connector import create_connector
from sergeant.encoder import Encoder
from sergeant.objects import Task

REPO = Path(__file__).resolve().parents[2]
TASKS = 300


@pytest.fixture(params=['local', 'redis'])
def connector_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    if request.param == 'local':
        yield {'type': 'local', 'params': {'file_path': str(tmp_path / 'broker.sqlite3')}}
        return
    from tests.servers.redis import running_redis

    workdir = tmp_path / 'redis'
    workdir.mkdir()
    with running_redis(workdir) as server:
        yield {'type': 'redis', 'params': {'url': server.url}}


def start_worker(settings: dict[str, Any], output: Path) -> subprocess.Popen[bytes]:
    environment = dict(
        os.environ,
        TEST_CONNECTOR=json.dumps(settings),
        TEST_QUEUE='crash',
        TEST_OUTPUT=str(output),
        TEST_TASK_SECONDS='0.01',
        TEST_TASKS_PER_TRANSACTION='50',
        TEST_LEASE_SECONDS='1',
    )
    return subprocess.Popen([sys.executable, '-m', 'tests.workers.recording'], cwd=REPO, env=environment)


def processed(output: Path) -> list[int]:
    if not output.exists():
        return []
    return [int(line) for line in output.read_text().split()]


def test_sigkill_mid_batch_loses_no_task(connector_settings: dict[str, Any], tmp_path: Path) -> None:
    broker = TaskCodec(create_connector(connector_settings['type'], connector_settings['params']), Encoder())
    broker.push_tasks('crash', [Task(kwargs={'id': i}) for i in range(TASKS)])
    output = tmp_path / 'processed.txt'

    victim = start_worker(connector_settings, output)
    deadline = time.monotonic() + 30
    while len(processed(output)) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    done_before_kill = set(processed(output))
    in_flight_at_kill = broker.connector.in_flight('crash')

    survivor = start_worker(connector_settings, output)
    assert survivor.wait(timeout=120) == 0

    assert 20 <= len(done_before_kill) < 50, 'the kill landed inside the first batch'
    assert in_flight_at_kill > 0, 'the killed worker held leased tasks'
    assert set(processed(output)) == set(range(TASKS))
    assert broker.connector.in_flight('crash') == 0
    assert broker.connector.length('crash', include_delayed=True) == 0
