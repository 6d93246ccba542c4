"""Connector fixtures: every backend, each on a real server started for the session."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymongo
import pytest

from sergeant.connector import Connector, create_connector
from sergeant.connector.mongo import MongoConnector
from tests.servers.ferretdb import FerretDBServer

BACKENDS = ['local', 'redis', 'redis-2-nodes', 'redis-cluster', 'mongo']


@pytest.fixture(scope='session')
def redis_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[object]]:
    from tests.servers.redis import running_redis

    with (
        running_redis(tmp_path_factory.mktemp('redis-a')) as first,
        running_redis(tmp_path_factory.mktemp('redis-b')) as second,
    ):
        yield [first, second]


@pytest.fixture(scope='session')
def ferretdb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from tests.servers.ferretdb import running_ferretdb

    with running_ferretdb(tmp_path_factory.mktemp('ferretdb')) as server:
        yield server


def _factory(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Connector]:
    """A function building fresh connectors that all see the same backend.

    Servers are shared by the session; tests stay independent by using unique
    queue, key and lock names (the ``name`` fixture).
    """
    if backend == 'local':
        path = str(tmp_path / 'broker.sqlite3')
        return lambda: create_connector('local', {'file_path': path})
    if backend == 'redis':
        server = request.getfixturevalue('redis_servers')[0]
        return lambda: create_connector('redis', {'url': server.url})
    if backend == 'redis-2-nodes':
        servers = request.getfixturevalue('redis_servers')
        nodes = [{'host': s.host, 'port': s.port} for s in servers]
        return lambda: create_connector('redis', {'nodes': nodes})
    if backend == 'redis-cluster':
        cluster = request.getfixturevalue('redis_cluster')
        return lambda: create_connector('redis', {'cluster': {'nodes': cluster.startup_nodes}})
    if backend == 'mongo':
        server = request.getfixturevalue('ferretdb_server')
        database = f'test_{uuid.uuid4().hex[:12]}'
        return lambda: create_connector('mongo', {'url': server.url, 'database': database})
    raise AssertionError(backend)


@pytest.fixture(params=BACKENDS)
def connector_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Connector]]:
    built: list[Connector] = []
    make = _factory(request.param, request, tmp_path)

    def build() -> Connector:
        connector = make()
        built.append(connector)
        return connector

    yield build
    for connector in built:
        connector.close()


@pytest.fixture
def connector(connector_factory: Callable[[], Connector]) -> Connector:
    return connector_factory()


@pytest.fixture
def name() -> str:
    """A queue/key/lock name no other test uses."""
    return f'q-{uuid.uuid4().hex[:12]}'


@pytest.fixture
def global_order(request: pytest.FixtureRequest) -> bool:
    """False when queues are spread over several nodes: order then holds per node only."""
    return bool(request.node.callspec.params.get('connector_factory') != 'redis-2-nodes')


Factory = Callable[..., MongoConnector]


@pytest.fixture
def database() -> str:
    return f'test_{uuid.uuid4().hex[:12]}'


@pytest.fixture
def make(ferretdb_server: FerretDBServer, database: str) -> Iterator[Factory]:
    """Build connectors on the shared FerretDB, all on this test's database."""
    built: list[MongoConnector] = []

    def build(**params: Any) -> MongoConnector:
        connector = create_connector('mongo', {'url': ferretdb_server.url, 'database': database, **params})
        assert isinstance(connector, MongoConnector)
        built.append(connector)
        return connector

    yield build
    for connector in built:
        connector.close()


@pytest.fixture
def raw(ferretdb_server: FerretDBServer, database: str) -> Iterator[Any]:
    """Direct access to the test's database, to look at the documents."""
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(ferretdb_server.url)
    yield client[database]
    client.close()
