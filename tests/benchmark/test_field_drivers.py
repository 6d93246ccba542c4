"""Every driver of the field section runs every mode at a tiny scale, so none rots unnoticed.

Each library's driver (``benchmark/drivers/field_*.py``) runs in its own pinned
environment, built on first use and cached outside the clone
(``benchmark/harness/envs.py``; about a minute for all of them when the cache is
cold). The five modes of one library run side by side, each on a fresh queue of one
test Redis. Only that each run finishes and reports sane figures is checked: speed
belongs to ``make bench``, never to tests.
"""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmark.harness import field
from tests.servers.redis import RedisServer, running_redis

TASKS = 50
WAKEUP_SAMPLES = 3


@pytest.fixture(scope='module')
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp('field-redis')) as server:
        yield server


@pytest.fixture(scope='module')
def pythons() -> dict[str, Path | str]:
    return field.interpreters(field.ENTRANTS)


def run(python: Path, entrant: field.Entrant, mode: str, url: str) -> dict[str, Any]:
    tasks = WAKEUP_SAMPLES if mode == 'wakeup' else TASKS
    command = [
        str(python), '-E', '-s', str(field.DRIVERS / entrant.driver),
        '--mode', mode, '--tasks', str(tasks), '--redis-url', url, '--timeout', '60',
    ]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, f'{entrant.key} {mode}:\n{completed.stderr[-3000:]}'
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize('entrant', field.ENTRANTS, ids=lambda entrant: entrant.key)
def test_the_driver_runs_every_mode(
    entrant: field.Entrant, pythons: dict[str, Path | str], redis_server: RedisServer
) -> None:
    # given the library's environment
    python = pythons[entrant.key]
    assert isinstance(python, Path), python

    # when every mode runs at a tiny scale, side by side
    modes = [*field.MODES, 'wakeup']
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(modes)) as pool:
        futures = {mode: pool.submit(run, python, entrant, mode, redis_server.url) for mode in modes}
        results = {mode: future.result() for mode, future in futures.items()}

    # then each reports its figures (the driver itself checked the task counts)
    for mode in field.MODES:
        assert results[mode]['tasks'] == TASKS
        assert results[mode]['tasks_per_second'] > 0
    assert results['wakeup']['samples'] == WAKEUP_SAMPLES
    assert 0 < results['wakeup']['p50_ms'] <= results['wakeup']['max_ms']
    assert results['produce_single']['library'] in entrant.driver
