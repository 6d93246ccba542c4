"""Runs the drivers: every mode for every contender, repeated, interleaved, on one server.

Each measurement is one driver subprocess, pinned to the placement's client CPUs,
on an emptied Redis (``FLUSHALL`` before it starts), so neither library inherits
the other's keys or connections. Repetitions are interleaved (round 1 of every
mode and contender, then round 2, ...) so a slow moment of a shared machine hits
all contenders alike.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from .envs import BENCHMARK_DIR
from .placement import Placement
from .server import RedisServer

DRIVERS_DIR = BENCHMARK_DIR / 'drivers'
DRIVER_TIMEOUT = 180  # the driver dumps its threads and exits after 120 s itself


@dataclasses.dataclass(frozen=True)
class Contender:
    """One library over one transport: the interpreter, its driver and its connector params."""

    key: str
    label: str
    python: Path
    driver: str
    params: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Mode:
    """One measured mode, its task count and the ratio ours must reach against 0.27."""

    key: str
    label: str
    tasks: int
    target: float


def nodes_params(server: RedisServer) -> dict[str, Any]:
    """0.27's connector params: a list of nodes (ours accepts the same)."""
    return {'nodes': [{'host': server.host, 'port': server.port, 'password': None, 'database': 0}]}


def contenders(server: RedisServer, ours: Path, sergeant027: Path) -> list[Contender]:
    return [
        Contender(
            'sergeant027_tcp', 'Sergeant 0.27 (TCP)', sergeant027, 'sergeant027.py', nodes_params(server)
        ),
        Contender('ours_tcp', 'ours (TCP)', ours, 'ours.py', nodes_params(server)),
        Contender('ours_unix', 'ours (unix socket)', ours, 'ours.py', {'url': server.unix_url}),
    ]


def run_driver(
    contender: Contender,
    mode: Mode,
    server: RedisServer,
    placement: Placement,
    tasks: int,
    profile: Path | None = None,
) -> dict[str, Any]:
    """One measurement; ``{'error': ...}`` instead of raising when the driver fails."""
    with server.client() as client:
        client.flushall()
    command = [
        str(contender.python), '-E', '-s',
        str(DRIVERS_DIR / contender.driver),
        '--mode', mode.key,
        '--tasks', str(tasks),
        '--connector-params', json.dumps(contender.params),
        '--stats-url', server.url,
    ]  # fmt: skip
    if profile is not None:
        command += ['--profile', str(profile)]
    try:
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=DRIVER_TIMEOUT,
            preexec_fn=placement.pin_client(),
        )
    except subprocess.TimeoutExpired:
        return {'error': f'killed after {DRIVER_TIMEOUT} s'}
    if completed.returncode != 0:
        return _failure(completed.stderr)
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def _failure(stderr: str) -> dict[str, Any]:
    """The last line of a failed driver's stderr as the error, or 'hung' when faulthandler fired."""
    lines = stderr.strip().splitlines() or ['(no output)']
    error = 'hung: see stderr in latest.json' if 'Timeout (' in stderr else lines[-1]
    return {'error': error, 'stderr': stderr[-8000:]}


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_all(
    entrants: list[Contender],
    modes: list[Mode],
    server: RedisServer,
    placement: Placement,
    repeats: int,
    scale: float,
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``{mode key: {contender key: [result per repetition]}}``."""
    results: dict[str, dict[str, list[dict[str, Any]]]] = {
        mode.key: {contender.key: [] for contender in entrants} for mode in modes
    }
    for round_number in range(1, repeats + 1):
        for mode in modes:
            for contender in entrants:
                result = run_driver(contender, mode, server, placement, scaled(mode, scale))
                results[mode.key][contender.key].append(result)
                shown = result.get('error') or f'{result["tasks_per_second"]:,.0f} tasks/s'
                where = f'{placement.key} {round_number}/{repeats}'
                _progress(f'[{where}] {mode.label:<15} {contender.label:<19} {shown}')
    return results


def profile_all(
    entrants: list[Contender],
    modes: list[Mode],
    server: RedisServer,
    placement: Placement,
    scale: float,
    directory: Path,
) -> dict[str, dict[str, dict[str, Any]]]:
    """One extra, profiled run per mode and contender; stats files land in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    profiles: dict[str, dict[str, dict[str, Any]]] = {mode.key: {} for mode in modes}
    for mode in modes:
        for contender in entrants:
            path = directory / f'{contender.key}-{mode.key}.prof'
            result = run_driver(contender, mode, server, placement, scaled(mode, scale), profile=path)
            result['profile'] = str(path.relative_to(BENCHMARK_DIR))
            profiles[mode.key][contender.key] = result
            _progress(f'[profile] {mode.label:<16} {contender.label:<20} -> {path.name}')
    return profiles


def scaled(mode: Mode, scale: float) -> int:
    """The task count for a run, a multiple of the 1,000-task chunk."""
    return max(1000, round(mode.tasks * scale / 1000) * 1000)
