"""Fixtures for observability tests: a real Redis, supervisors serving metrics, and an HTTP scraper.

The supervisor fixtures are those of the supervisor tests; here a supervisor
gets ``--metrics-port`` on a free port and is scraped over HTTP, its answer
parsed with ``prometheus_client.parser``.
"""

from __future__ import annotations

import dataclasses
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.servers.ports import free_port
from tests.servers.redis import RedisServer, running_redis
from tests.supervisor.conftest import (
    Supervise,
    SupervisorRun,
    local_settings,  # noqa: F401 - a fixture used here
    supervise,  # noqa: F401 - a fixture used here
)

Labels = tuple[tuple[str, str], ...]


def supervise_observed(
    start: Supervise, settings: dict[str, Any], *flags: str, env: dict[str, str] | None = None
) -> tuple[SupervisorRun, int]:
    """A supervisor of two ``ObservedWorker`` processes, serving ``/metrics`` on the free port it returns."""
    port = free_port()
    run = start(
        'supervised_observed',
        'ObservedWorker',
        '--concurrent-workers',
        '2',
        '--metrics-port',
        str(port),
        *flags,
        settings=settings,
        env=env,
    )
    return run, port


def get(port: int, path: str) -> tuple[int, str]:
    """Status and body of ``GET path``; a refused connection is status 0."""
    try:
        with urllib.request.urlopen(f'http://127.0.0.1:{port}{path}', timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return 0, ''


@dataclasses.dataclass(frozen=True)
class Scrape:
    """Every sample of one ``/metrics`` answer, parsed by prometheus_client."""

    samples: dict[tuple[str, Labels], float]
    families: dict[str, str]  # family name -> type

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, tuple(sorted(labels.items()))))

    def total(self, name: str, **labels: str) -> float:
        """The sum over the series of ``name`` matching ``labels``."""
        wanted = set(labels.items())
        return sum(
            value
            for (sample, found), value in self.samples.items()
            if sample == name and wanted <= set(found)
        )

    def names(self) -> set[str]:
        return {name for name, _labels in self.samples}


def scrape(port: int) -> Scrape:
    found = try_scrape(port)
    assert found is not None, f'/metrics on port {port} did not answer 200'
    return found


def sample(port: int, name: str, **labels: str) -> float | None:
    """One sample of ``/metrics``; None while it is absent or the supervisor does not answer yet."""
    found = try_scrape(port)
    return found.value(name, **labels) if found is not None else None


def try_scrape(port: int) -> Scrape | None:
    """The parsed ``/metrics``, or None while the supervisor does not answer."""
    status, text = get(port, '/metrics')
    if status != 200:
        return None
    samples: dict[tuple[str, Labels], float] = {}
    families: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return Scrape(samples, families)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    workdir = tmp_path / 'redis'
    with running_redis(workdir) as server:
        yield server


@pytest.fixture
def redis_settings(redis_server: RedisServer) -> dict[str, Any]:
    return {'type': 'redis', 'params': {'url': redis_server.url}}
