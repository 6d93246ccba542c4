"""The field section of ``make bench``: ours against Sergeant 0.27, Celery, Dramatiq, RQ, Huey, arq, taskiq.

Every contender but ours runs in its own virtual environment, built on first use
from its pinned ``benchmark/requirements-<name>.txt`` and cached outside the clone
(``envs.ensure_venv``; the builds run side by side). Each measurement is one
``drivers/field_<library>.py`` process (``drivers/field_common.py`` does the
timing) on the benchmark's Redis over TCP, emptied before it starts, pinned to the
placement's client CPUs (the library's worker, a child of the driver, too). Rounds
are interleaved: round 1 of every mode and contender, then round 2; the best round
counts. The wake-up latency is measured once per contender, after the rounds.

Slow cells get fewer tasks and the fastest more (:data:`TASKS`, ``Entrant.counts``);
every figure is a rate per task, so counts do not change what is compared.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import envs
from .placement import Placement
from .server import RedisServer

DRIVERS = envs.BENCHMARK_DIR / 'drivers'
MODES = ('produce_single', 'produce_bulk', 'consume_single', 'consume_batch')
TASKS = {'produce_single': 20_000, 'produce_bulk': 20_000, 'consume_single': 10_000, 'consume_batch': 20_000}
WAKEUP_SAMPLES = 50
MINIMUM_TASKS = 50
DRIVER_TIMEOUT = 300


@dataclasses.dataclass(frozen=True)
class Entrant:
    """One library: its label, its driver and the requirements of its environment (None: ours)."""

    key: str
    label: str
    driver: str
    requirements: str | None
    counts: dict[str, int] = dataclasses.field(default_factory=dict)  # mode -> tasks, where not TASKS

    def tasks(self, mode: str, scale: float) -> int:
        return max(MINIMUM_TASKS, round(self.counts.get(mode, TASKS[mode]) * scale))


# fast cells get more: a consume rate leaves out the first fetch, which must be a small share of the run
_FAST = {'produce_bulk': 100_000, 'consume_single': 20_000, 'consume_batch': 100_000}
_SLOW_PRODUCER = {'produce_single': 5_000, 'produce_bulk': 5_000}
ENTRANTS = [
    Entrant('ours', 'Sergeant (ours)', 'field_sergeant.py', None, _FAST),
    Entrant('sergeant027', 'Sergeant 0.27', 'field_sergeant.py', 'requirements-sergeant027.txt', _FAST),
    Entrant(
        'celery', 'Celery', 'field_celery.py', 'requirements-celery.txt',
        {**_SLOW_PRODUCER, 'consume_single': 3_000, 'consume_batch': 5_000},
    ),
    Entrant(
        'dramatiq', 'Dramatiq', 'field_dramatiq.py', 'requirements-dramatiq.txt', {'consume_single': 1_000}
    ),
    Entrant(
        'rq', 'RQ', 'field_rq.py', 'requirements-rq.txt',
        {**_SLOW_PRODUCER, 'consume_single': 300, 'consume_batch': 2_000},
    ),
    Entrant('huey', 'Huey', 'field_huey.py', 'requirements-huey.txt'),
    Entrant(
        'arq', 'arq', 'field_arq.py', 'requirements-arq.txt',
        {**_SLOW_PRODUCER, 'consume_single': 1_000, 'consume_batch': 5_000},
    ),
    Entrant('taskiq', 'taskiq', 'field_taskiq.py', 'requirements-taskiq.txt', _SLOW_PRODUCER),
]  # fmt: skip
ENTRANTS_BY_KEY = {entrant.key: entrant for entrant in ENTRANTS}


def interpreters(entrants: list[Entrant]) -> dict[str, Path | str]:
    """Each contender's python, its environment built when needed; a build failure as its message."""

    def build(entrant: Entrant) -> Path:
        if entrant.requirements is None:
            return envs.ours_python()
        name = entrant.requirements.removeprefix('requirements-').removesuffix('.txt')
        return envs.ensure_venv(name, envs.BENCHMARK_DIR / entrant.requirements) / 'bin' / 'python'

    found: dict[str, Path | str] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        futures = {entrant.key: pool.submit(build, entrant) for entrant in entrants}
        for key, future in futures.items():
            try:
                found[key] = future.result()
            except Exception as error:  # one broken environment leaves the others' figures
                found[key] = f'environment not built: {type(error).__name__}: {error}'
    return found


def run_driver(
    python: Path, entrant: Entrant, mode: str, tasks: int, server: RedisServer, where: Placement
) -> dict[str, Any]:
    """One measurement; ``{'error': ...}`` instead of raising when the driver fails."""
    with server.client() as client:
        client.flushall()
    command = [
        str(python), '-E', '-s', str(DRIVERS / entrant.driver),
        '--mode', mode, '--tasks', str(tasks), '--redis-url', server.url,
    ]  # fmt: skip
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=DRIVER_TIMEOUT, preexec_fn=where.pin_client()
        )
    except subprocess.TimeoutExpired:
        return {'error': f'killed after {DRIVER_TIMEOUT} s'}
    if completed.returncode != 0:
        lines = completed.stderr.strip().splitlines() or ['(no output)']
        return {'error': lines[-1][:300], 'stderr': completed.stderr[-4000:]}
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def run_section(
    server: RedisServer, where: Placement, repeats: int, scale: float, wakeup_samples: int
) -> dict[str, Any]:
    """``{'runs': {mode: {contender: [result per round]}}, 'environments': ..., ...}``."""
    pythons = interpreters(ENTRANTS)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        mode: {entrant.key: [] for entrant in ENTRANTS} for mode in (*MODES, 'wakeup')
    }
    for round_number in range(1, repeats + 1):
        for mode in MODES:
            for entrant in ENTRANTS:
                result = _run(pythons[entrant.key], entrant, mode, entrant.tasks(mode, scale), server, where)
                runs[mode][entrant.key].append(result)
                _progress(f'[field {round_number}/{repeats}]', mode, entrant, result)
    for entrant in ENTRANTS:
        result = _run(pythons[entrant.key], entrant, 'wakeup', wakeup_samples, server, where)
        runs['wakeup'][entrant.key].append(result)
        _progress('[field wake-up]', 'wakeup', entrant, result)
    return {
        'runs': runs,
        'environments': {key: str(value) for key, value in pythons.items()},
        'placement': where.describe(),
        'repeats': repeats,
        'scale': scale,
    }


def _run(
    python: Path | str, entrant: Entrant, mode: str, tasks: int, server: RedisServer, where: Placement
) -> dict[str, Any]:
    if isinstance(python, str):
        return {'error': python}
    return run_driver(python, entrant, mode, tasks, server, where)


def _progress(where: str, mode: str, entrant: Entrant, result: dict[str, Any]) -> None:
    if 'error' in result:
        shown = f'error: {result["error"]}'
    elif mode == 'wakeup':
        shown = f'p50 {result["p50_ms"]:.1f} ms, p99 {result["p99_ms"]:.1f} ms'
    else:
        shown = f'{result["tasks_per_second"]:,.0f} tasks/s'
    print(f'{where} {mode:<15} {entrant.label:<16} {shown}', file=sys.stderr, flush=True)
