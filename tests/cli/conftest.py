"""Fixtures of the ``sergeant`` command tests: one broker of each kind, real servers.

``broker`` is parametrized over SQLite, Redis and FerretDB (MongoDB's wire protocol):
each test gets the URL the command takes (``--broker``), a connector on the same
broker to set the scene and check the outcome, and a queue name of its own.
``sergeant`` runs as a subprocess (``python -m sergeant``), without a terminal.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from sergeant.connector import Connector, create_connector

REPO_ROOT = Path(__file__).resolve().parents[2]
BROKERS = ['sqlite', 'redis', 'mongo']


@dataclasses.dataclass
class Broker:
    kind: str
    url: str
    connector: Connector
    queue: str


@pytest.fixture(scope='session')
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from tests.servers.redis import running_redis

    with running_redis(tmp_path_factory.mktemp('cli-redis')) as server:
        yield server


@pytest.fixture(scope='session')
def ferretdb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from tests.servers.ferretdb import running_ferretdb

    with running_ferretdb(tmp_path_factory.mktemp('cli-ferretdb')) as server:
        yield server


def open_broker(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Connector]:
    if kind == 'sqlite':
        path = tmp_path / 'broker.sqlite3'
        return f'sqlite://{path}', create_connector('local', {'file_path': str(path)})
    if kind == 'redis':
        url = request.getfixturevalue('redis_server').url
        return url, create_connector('redis', {'url': url})
    server = request.getfixturevalue('ferretdb_server')
    url = f'{server.url}cli_{uuid.uuid4().hex[:12]}'
    return url, create_connector('mongo', {'url': url})


@pytest.fixture(params=BROKERS)
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    url, connector = open_broker(request.param, request, tmp_path)
    yield Broker(request.param, url, connector, f'q-{uuid.uuid4().hex[:12]}')
    connector.close()


def sergeant_command(*arguments: str) -> list[str]:
    return [sys.executable, '-m', 'sergeant', *arguments]


def run_sergeant(
    *arguments: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m sergeant ARGUMENTS`` in the repository root, stdin and output not terminals."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith('SERGEANT_')}
    environment.update(env or {})
    return subprocess.run(
        sergeant_command(*arguments),
        cwd=REPO_ROOT,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
