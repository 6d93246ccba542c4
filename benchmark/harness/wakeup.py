"""The wake-up section of ``make bench``: how soon an idle worker starts a task, and what idling costs.

For each broker (Redis: the benchmark's server; ``local``: a SQLite file in a
temporary directory; ``mongo``: a FerretDB server, when ``make tools`` built one)
one worker process (``drivers/wakeup_worker.py``) runs on a fresh queue:

1. a first task shows it is up; then it idles ``settle`` seconds, so any backoff
   reaches its longest, and for ``idle_seconds`` more the harness reads what the
   idle worker costs: its CPU (all threads, schedstat), the commands Redis ran
   (``INFO commandstats`` deltas, commands run by Lua scripts included, the
   harness's own INFO calls excluded) or the FerretDB process's CPU (FerretDB
   keeps no command counters);
2. ``samples`` times, after a random pause (the worker idle), one task is pushed:
   its latency is from just before the push to the start of ``work``;
3. ``delayed_samples`` times, one task is pushed for a random moment 0.1 to 1 s
   ahead and nothing else is pushed: its latency is from that moment to the start
   of ``work`` (negative would mean it ran early);
4. SIGTERM, and how long the worker took to exit.

The targets (:data:`TARGETS`) are checked here, in the report, never in tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import psutil

from .envs import BENCHMARK_DIR
from .server import RedisServer

DRIVERS = BENCHMARK_DIR / 'drivers'
REPO_ROOT = BENCHMARK_DIR.parent
SETTLE_SECONDS = 3.0
START_TIMEOUT = 30.0
BROKERS = ('redis', 'local', 'mongo')


class Target(NamedTuple):
    broker: str
    figure: str  # a key path into the broker's results, 'ready.p50_ms'
    limit: float  # the figure must be at most this
    label: str


TARGETS = [
    Target('redis', 'ready.p50_ms', 5.0, 'Redis: pushed task starts, p50 <= 5 ms'),
    Target('redis', 'ready.p99_ms', 25.0, 'Redis: pushed task starts, p99 <= 25 ms'),
    Target('redis', 'delayed.p50_ms', 5.0, 'Redis: delayed task starts after its due time, p50 <= 5 ms'),
    Target('redis', 'delayed.p99_ms', 25.0, 'Redis: delayed task starts after its due time, p99 <= 25 ms'),
    Target('redis', 'idle_commands_per_s', 2.0, 'Redis: an idle worker costs <= 2 commands/s'),
    Target('local', 'ready.p50_ms', 50.0, 'local: pushed task starts, p50 <= 50 ms'),
    Target('local', 'idle_cpu_percent', 1.0, 'local: an idle worker uses <= 1 % of a core'),
]


def run_section(
    server: RedisServer, ours: Path, samples: int, delayed_samples: int, idle_seconds: float
) -> dict[str, Any]:
    """Every broker's figures (a broker that cannot run says why) and the verdicts."""
    results: dict[str, Any] = {}
    for broker in BROKERS:
        try:
            with _broker(broker, server) as (params, probe):
                results[broker] = _measure(
                    broker, params, probe, ours, samples, delayed_samples, idle_seconds
                )
        except Exception as error:  # one broker's failure leaves the others' figures
            results[broker] = {'error': f'{type(error).__name__}: {error}'}
    return {'brokers': results, 'verdicts': _verdicts(results)}


class _Probe:
    """What an idle worker costs the server: Redis commands, or the server process's CPU."""

    def __init__(self, server: RedisServer | None = None, process: psutil.Process | None = None) -> None:
        self._server, self._process = server, process

    def read(self) -> dict[str, float]:
        if self._server is not None:
            with self._server.client() as client:
                stats = client.info('commandstats')
            calls = sum(int(entry['calls']) for name, entry in stats.items() if name != 'cmdstat_info')
            return {'commands': calls}
        if self._process is not None:
            return {'server_cpu_seconds': cpu_seconds(self._process.pid)}
        return {}


@contextlib.contextmanager
def _broker(kind: str, server: RedisServer) -> Iterator[tuple[dict[str, Any], _Probe]]:
    if kind == 'redis':
        yield {'url': server.url}, _Probe(server=server)
        return
    with tempfile.TemporaryDirectory(prefix=f'wakeup-{kind}-') as directory:
        if kind == 'local':
            yield {'file_path': str(Path(directory) / 'broker.sqlite3')}, _Probe()
            return
        sys.path.insert(0, str(REPO_ROOT))
        from tests.servers.ferretdb import running_ferretdb

        with running_ferretdb(Path(directory)) as ferret:
            yield {'url': ferret.url, 'database': 'wakeup'}, _Probe(process=_listener(ferret.port))


def _listener(port: int) -> psutil.Process | None:
    """The process listening on a loopback ``port``."""
    for connection in psutil.net_connections('tcp'):
        if connection.laddr and connection.laddr.port == port and connection.status == 'LISTEN':
            return psutil.Process(connection.pid) if connection.pid else None
    return None


def _measure(
    kind: str,
    params: dict[str, Any],
    probe: _Probe,
    ours: Path,
    samples: int,
    delayed_samples: int,
    idle_seconds: float,
) -> dict[str, Any]:
    sys.path.insert(0, str(DRIVERS))
    from wakeup_worker import Producer

    producer = Producer(kind, params)
    producer.purge_tasks()
    with tempfile.TemporaryDirectory(prefix='wakeup-out-') as directory:
        out = Path(directory) / 'starts'
        out.touch()
        env = dict(
            os.environ,
            WAKEUP_TYPE=kind,
            WAKEUP_PARAMS=json.dumps(params),
            WAKEUP_OUT=str(out),
            PYTHONPATH=os.pathsep.join([str(DRIVERS), str(REPO_ROOT)]),
        )
        result: dict[str, Any] = {'broker': kind, 'params': params}
        worker = subprocess.Popen([str(ours), str(DRIVERS / 'wakeup_worker.py')], env=env)
        try:
            producer.push_task({'since': time.time()})
            _wait_for_line(out, 1, START_TIMEOUT)
            time.sleep(SETTLE_SECONDS)
            result.update(_idle_cost(worker.pid, probe, idle_seconds))
            seen, ready = 1, []
            for _ in range(samples):
                time.sleep(random.uniform(0.02, 0.5))
                producer.push_task({'since': time.time()})
                seen += 1
                ready.append(_wait_for_line(out, seen, 10.0))
            delayed = []
            for _ in range(delayed_samples):
                time.sleep(random.uniform(0.02, 0.2))
                due = time.time() + random.uniform(0.1, 1.0)
                producer.push_task({'since': due}, consumable_from=due)
                seen += 1
                delayed.append(_wait_for_line(out, seen, 10.0))
            result['ready'] = percentiles(ready)
            if delayed:
                result['delayed'] = percentiles(delayed)
        finally:
            stop_started = time.monotonic()
            worker.terminate()
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            result['stop_after_sigterm_s'] = round(time.monotonic() - stop_started, 3)
            result['exit_code'] = worker.returncode
    return result


def _idle_cost(pid: int, probe: _Probe, seconds: float) -> dict[str, Any]:
    cpu, server, started = cpu_seconds(pid), probe.read(), time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    cost: dict[str, Any] = {
        'idle_seconds': round(elapsed, 2),
        'idle_cpu_percent': round(100 * (cpu_seconds(pid) - cpu) / elapsed, 3),
    }
    for name, before in server.items():
        after = probe.read()[name]
        key = 'idle_commands_per_s' if name == 'commands' else 'idle_server_cpu_percent'
        cost[key] = round((after - before) / elapsed * (1 if name == 'commands' else 100), 3)
    return cost


def cpu_seconds(pid: int) -> float:
    """User + system time of every thread, from schedstat (nanoseconds)."""
    total = 0
    for thread in os.listdir(f'/proc/{pid}/task'):
        with open(f'/proc/{pid}/task/{thread}/schedstat') as schedstat:
            total += int(schedstat.read().split()[0])
    return total / 1e9


def _wait_for_line(path: Path, line: int, timeout: float) -> float:
    """The latency the worker wrote on ``line`` (1-based), once it is there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        written = path.read_text().splitlines()
        if len(written) >= line:
            return float(written[line - 1])
        time.sleep(0.001)
    raise TimeoutError(f'the worker did not start task {line} within {timeout} s')


def percentiles(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    cuts = statistics.quantiles(ordered, n=100, method='inclusive') if len(ordered) > 1 else ordered * 99
    return {
        'samples': len(ordered),
        'p50_ms': round(cuts[49] * 1000, 2),
        'p90_ms': round(cuts[89] * 1000, 2),
        'p99_ms': round(cuts[98] * 1000, 2),
        'max_ms': round(ordered[-1] * 1000, 2),
        'min_ms': round(ordered[0] * 1000, 2),
    }


def _figure(results: dict[str, Any], target: Target) -> float | None:
    value: Any = results.get(target.broker, {})
    for part in target.figure.split('.'):
        value = value.get(part) if isinstance(value, dict) else None
    return float(value) if isinstance(value, int | float) else None


def _verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    verdicts = []
    for target in TARGETS:
        figure = _figure(results, target)
        passed = None if figure is None else figure <= target.limit
        verdicts.append({'target': target.label, 'figure': figure, 'passed': passed})
    return verdicts


def markdown_lines(section: dict[str, Any]) -> list[str]:
    lines = [
        '## Wake-up of an idle worker',
        '',
        'One worker process idles on an empty queue; tasks are pushed at random moments (latency from the '
        'push to the start of `work`), then delayed tasks due 0.1 to 1 s ahead (latency from the due time). '
        'Idle cost over the idle window, after the worker idled a few seconds.',
        '',
        '| broker | ready p50 / p90 / p99 / max ms | delayed p50 / p90 / p99 / max ms | idle worker CPU % '
        '| idle server cost | stop after SIGTERM |',
        '| --- | ---: | ---: | ---: | ---: | ---: |',
    ]
    for broker, figures in section['brokers'].items():
        if 'error' in figures:
            lines.append(f'| {broker} | {figures["error"]} | | | | |')
            continue
        server = (
            f'{figures["idle_commands_per_s"]:.2f} commands/s'
            if 'idle_commands_per_s' in figures
            else f'{figures["idle_server_cpu_percent"]:.2f} % CPU'
            if 'idle_server_cpu_percent' in figures
            else '-'
        )
        lines.append(
            f'| {broker} | {_spread(figures.get("ready"))} | {_spread(figures.get("delayed"))} '
            f'| {figures["idle_cpu_percent"]:.2f} | {server} | {figures["stop_after_sigterm_s"]:.2f} s |'
        )
    lines += ['', '| target | measured | result |', '| --- | ---: | --- |']
    for verdict in section['verdicts']:
        result = {True: '**pass**', False: '**FAIL**', None: 'n/a'}[verdict['passed']]
        figure = '-' if verdict['figure'] is None else f'{verdict["figure"]:g}'
        lines.append(f'| {verdict["target"]} | {figure} | {result} |')
    return [*lines, '']


def _spread(figures: dict[str, Any] | None) -> str:
    if not figures:
        return '-'
    return ' / '.join(f'{figures[key]:.1f}' for key in ('p50_ms', 'p90_ms', 'p99_ms', 'max_ms'))
