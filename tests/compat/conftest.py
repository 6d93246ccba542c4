"""Fixtures of the compat suite: one Redis, both interpreters, and every selected program started at once.

``interpreters`` builds Sergeant 0.27's virtual environment on first use (outside the
clone, shared with the benchmark: ``benchmark/harness/envs.py``). ``compat_runs`` starts
the programs of every selected test as soon as the first test asks for one, so they run
in parallel (see ``runner.Scheduler``); each test then waits for its own.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.redis import RedisServer, running_redis

from .runner import OURS, THEIRS, Redis, Scheduler, program_names


@pytest.fixture(scope='session')
def compat_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp('compat-redis')) as server:
        yield server


@pytest.fixture(scope='session')
def interpreters() -> dict[str, Path]:
    from benchmark.harness import envs

    return {THEIRS: envs.sergeant027_python(), OURS: Path(sys.executable)}


def _selected_programs(session: pytest.Session) -> list[str]:
    known = set(program_names())
    selected = []
    for item in session.items:
        callspec = getattr(item, 'callspec', None)
        program = callspec.params.get('program') if callspec is not None else None
        if program in known and program not in selected:
            selected.append(program)
    return selected


@pytest.fixture(scope='session')
def compat_runs(
    request: pytest.FixtureRequest,
    compat_redis: RedisServer,
    interpreters: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Scheduler]:
    scheduler = Scheduler(
        _selected_programs(request.session),
        interpreters,
        Redis(compat_redis.host, compat_redis.port),
        tmp_path_factory.mktemp('compat-runs'),
    )
    try:
        yield scheduler
    finally:
        scheduler.close()
