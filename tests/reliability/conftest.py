"""Fixtures of the fault suite: every broker on a real server, supervisors run as real processes.

``broker_settings`` is parametrized over the three brokers (``local`` SQLite,
``redis``, ``mongo`` on FerretDB); a test gets connector settings in the form the
``supervise`` fixture and the ``tests.workers.supervised_*`` modules take. Redis is
started per test (it starts in milliseconds); FerretDB once per session, each
test on a database of its own.

The counting helpers say what every fault test asserts: no task lost, duplicates
within the bound the delivery model allows, dead letters exactly the bad ones.
Each test also records its figures with pytest's ``record_property`` (``Record``
here); ``python -m tests.reliability.figures`` prints them from a JUnit XML.
"""

from __future__ import annotations

import collections
import dataclasses
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sergeant.codec import DeadTask, TaskCodec
from tests.servers.ferretdb import FerretDBServer, running_ferretdb
from tests.supervisor.conftest import (
    QUEUE,
    local_settings,  # noqa: F401 - a fixture used here
    supervise,  # noqa: F401 - a fixture used here
)

BROKERS = ['local', 'redis', 'mongo']


@pytest.fixture(scope='session')
def ferretdb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FerretDBServer]:
    with running_ferretdb(tmp_path_factory.mktemp('ferretdb')) as server:
        yield server


def settings_for(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Connector settings of a fresh broker of ``kind``, valid while the generator is suspended."""
    if kind == 'local':
        yield {'type': 'local', 'params': {'file_path': str(tmp_path / 'broker.sqlite3')}}
    elif kind == 'redis':
        from tests.servers.redis import running_redis

        with running_redis(tmp_path / 'redis') as server:
            yield {'type': 'redis', 'params': {'url': server.url}}
    elif kind == 'mongo':
        server = request.getfixturevalue('ferretdb_server')
        yield {'type': 'mongo', 'params': {'url': server.url, 'database': f'fault_{uuid.uuid4().hex[:12]}'}}
    else:
        raise AssertionError(kind)


@pytest.fixture(params=BROKERS)
def broker_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Settings of a fresh broker: local SQLite, Redis, then MongoDB (FerretDB)."""
    yield from settings_for(request.param, request, tmp_path)


@dataclasses.dataclass(frozen=True)
class Tally:
    """How the processed task ids compare with the ids pushed."""

    lost: list[int]  # pushed, never processed
    duplicates: int  # runs beyond the first of each id
    strangers: list[int]  # processed, never pushed

    def __str__(self) -> str:
        lost, strangers = self.lost[:10], self.strangers[:10]
        return f'lost {len(self.lost)} {lost}, duplicates {self.duplicates}, strangers {strangers}'


def tally(processed: Iterable[int], pushed: Iterable[int]) -> Tally:
    counts = collections.Counter(processed)
    expected = set(pushed)
    return Tally(
        lost=sorted(expected - counts.keys()),
        duplicates=sum(count - 1 for count in counts.values()),
        strangers=sorted(counts.keys() - expected),
    )


Record = Callable[[str, object], None]
"""pytest's ``record_property``: ``record(name, value)`` adds a figure of the test to its report."""


def record_tally(record: Record, counts: Tally, duplicate_bound: int | None = None) -> None:
    """Record ``lost``, ``duplicates`` (and ``strangers`` if any) and the bound the test holds them to."""
    record('lost', len(counts.lost))
    record('duplicates', counts.duplicates)
    if duplicate_bound is not None:
        record('duplicate_bound', duplicate_bound)
    if counts.strangers:
        record('strangers', len(counts.strangers))


def since(start: float) -> float:
    """Seconds from ``start`` (a ``time.monotonic()``) until now, to 0.01 s."""
    return round(time.monotonic() - start, 2)


def dead_letters(broker: TaskCodec, count: int = 1000) -> list[DeadTask]:
    return broker.dead_tasks(QUEUE, count)


def queue_is_empty(broker: TaskCodec) -> bool:
    """Nothing ready, delayed or leased is left in the test queue."""
    connector = broker.connector
    return connector.length(QUEUE, include_delayed=True) == 0 and connector.in_flight(QUEUE) == 0
