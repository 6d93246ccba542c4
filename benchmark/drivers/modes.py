"""The four measured modes, shared by both drivers and blind to which library runs them.

A driver (``ours.py``, ``sergeant027.py``) imports its ``sergeant``, defines how to
build an initialised no-op worker, and hands that to :func:`main`. One process
runs one measurement and prints one JSON object on stdout: wall and CPU seconds
of the timed section, and what the Redis server did meanwhile (commands by name,
server CPU), read through ``INFO`` right before and after the timed section.
With ``--profile`` the timed section also runs under cProfile.
"""

from __future__ import annotations

import argparse
import cProfile
import faulthandler
import importlib.metadata
import io
import json
import pstats
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import redis

CHUNK = 1000
IGNORED_COMMANDS = frozenset({'info', 'config|resetstat'})


class BenchWorker(Protocol):
    """The part of the Sergeant worker API the modes use (identical in both libraries)."""

    processed: int

    def push_task(self, kwargs: dict[str, Any]) -> bool: ...

    def push_tasks(self, kwargs_list: list[dict[str, Any]]) -> bool: ...

    def number_of_enqueued_tasks(self) -> int: ...

    def work_loop(self) -> dict[str, Any]: ...


# (connector params, queue name, tasks_per_transaction, max_tasks_per_run) -> initialised worker
WorkerFactory = Callable[[dict[str, Any], str, int, int], BenchWorker]


def task_kwargs(index: int) -> dict[str, Any]:
    """The small payload every task carries."""
    return {'task_id': index, 'action': 'noop'}


class ServerProbe:
    """Reads the server's command counters and CPU time around the timed section."""

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url)

    def snapshot(self) -> tuple[dict[str, int], float]:
        stats = self._client.info('commandstats')
        calls = {name.removeprefix('cmdstat_'): int(entry['calls']) for name, entry in stats.items()}
        cpu = self._client.info('cpu')
        return calls, float(cpu['used_cpu_user']) + float(cpu['used_cpu_sys'])

    @staticmethod
    def difference(
        before: tuple[dict[str, int], float], after: tuple[dict[str, int], float]
    ) -> dict[str, Any]:
        commands = {
            name: count - before[0].get(name, 0)
            for name, count in after[0].items()
            if name not in IGNORED_COMMANDS and count != before[0].get(name, 0)
        }
        return {'commands': commands, 'server_cpu_seconds': after[1] - before[1]}


class Timed:
    """Wall and CPU time of a block, what the server did meanwhile, optionally a cProfile of it.

    The server is probed just outside the clock, so the probe's own round trips
    are not timed.
    """

    def __init__(self, probe: ServerProbe, profile: bool) -> None:
        self.probe = probe
        self.profiler = cProfile.Profile() if profile else None
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.server: dict[str, Any] = {}

    def __enter__(self) -> Timed:
        self._before = self.probe.snapshot()
        self._started = (time.perf_counter(), time.process_time())
        if self.profiler is not None:
            self.profiler.enable()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.profiler is not None:
            self.profiler.disable()
        self.seconds = time.perf_counter() - self._started[0]
        self.cpu_seconds = time.process_time() - self._started[1]
        self.server = ServerProbe.difference(self._before, self.probe.snapshot())


def chunks(tasks: int) -> list[list[dict[str, Any]]]:
    """The kwargs of ``tasks`` tasks in lists of ``CHUNK``."""
    return [
        [task_kwargs(i) for i in range(start, min(start + CHUNK, tasks))] for start in range(0, tasks, CHUNK)
    ]


def fill(worker: BenchWorker, tasks: int) -> None:
    """Push ``tasks`` tasks in chunks, untimed, and check they all arrived."""
    for chunk in chunks(tasks):
        worker.push_tasks(kwargs_list=chunk)
    expect(worker.number_of_enqueued_tasks(), tasks, 'queued before consuming')


def expect(actual: int, wanted: int, what: str) -> None:
    if actual != wanted:
        raise RuntimeError(f'{what}: {actual}, expected {wanted}')


def push_single(make: Callable[[int, int], BenchWorker], tasks: int, timed: Timed) -> None:
    worker = make(1, 0)
    payloads = [task_kwargs(i) for i in range(tasks)]
    with timed:
        for kwargs in payloads:
            worker.push_task(kwargs=kwargs)
    expect(worker.number_of_enqueued_tasks(), tasks, 'queued after single pushes')


def push_bulk(make: Callable[[int, int], BenchWorker], tasks: int, timed: Timed) -> None:
    worker = make(1, 0)
    payloads = chunks(tasks)
    with timed:
        for chunk in payloads:
            worker.push_tasks(kwargs_list=chunk)
    expect(worker.number_of_enqueued_tasks(), tasks, 'queued after bulk pushes')


def consume(
    make: Callable[[int, int], BenchWorker], tasks: int, timed: Timed, tasks_per_transaction: int
) -> None:
    fill(make(1, 0), tasks)
    worker = make(tasks_per_transaction, tasks)
    with timed:
        summary = worker.work_loop()
    failures = {key: repr(value) for key, value in summary.items() if key.endswith('_exception') and value}
    if failures:
        raise RuntimeError(f'work_loop failed: {failures}')
    expect(worker.processed, tasks, 'tasks processed')
    expect(worker.number_of_enqueued_tasks(), 0, 'queued after consuming')


MODES: dict[str, Callable[[Callable[[int, int], BenchWorker], int, Timed], None]] = {
    'push_single': push_single,
    'push_bulk': push_bulk,
    'consume_single': lambda make, tasks, timed: consume(make, tasks, timed, 1),
    'consume_batch': lambda make, tasks, timed: consume(make, tasks, timed, CHUNK),
}


def _area(filename: str, function: str) -> str:
    """Which part of the stack a profiled function belongs to."""
    if filename == '~':  # a builtin: name it by its object or module
        if '_socket' in function:
            return 'socket'
        return 'redis-py' if 'hiredis' in function else 'other'
    parts = filename.split('/')
    if 'redis' in parts:
        return 'redis-py'
    return 'sergeant' if 'sergeant' in parts else 'other'


def profile_summary(profiler: cProfile.Profile, tasks: int) -> dict[str, Any]:
    """Round trips, function calls and own time per task, by area (sergeant, redis-py, socket, other).

    Round trips are redis-py's ``send_packed_command`` calls: one per request or
    pipeline written to the socket. Call counts do not depend on the profiler;
    times are inflated by it and only meaningful as shares.
    """
    areas: dict[str, dict[str, float]] = {}
    trips = 0
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    for (filename, _, function), (_, calls, own, *_) in stats.items():
        if function == 'send_packed_command':
            trips += calls
        area = areas.setdefault(_area(filename, function), {'calls': 0.0, 'own_seconds': 0.0})
        area['calls'] += calls
        area['own_seconds'] += own
    return {
        'round_trips_per_task': trips / tasks,
        'areas': {
            name: {
                'calls_per_task': area['calls'] / tasks,
                'own_us_per_task': area['own_seconds'] / tasks * 1e6,
            }
            for name, area in sorted(areas.items())
        },
    }


def write_profile(profiler: cProfile.Profile, path: str) -> None:
    """The raw stats for snakeviz/pstats and the top of the report as text."""
    profiler.dump_stats(path)
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats('tottime').print_stats(35)
    stats.sort_stats('cumulative').print_stats(35)
    with open(path + '.txt', 'w') as report:
        report.write(text.getvalue())


def environment() -> dict[str, Any]:
    versions = {name: importlib.metadata.version(name) for name in ('sergeant', 'redis', 'hiredis')}
    library = sys.modules.get('sergeant')
    return {
        'python': sys.version.split()[0],
        'versions': versions,
        'sergeant_module': getattr(library, '__file__', None),
    }


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--mode', choices=sorted(MODES), required=True)
    parser.add_argument('--tasks', type=int, required=True)
    parser.add_argument('--connector-params', required=True, help='JSON of Connector(params=...)')
    parser.add_argument('--stats-url', required=True, help='redis:// URL to read server counters from')
    parser.add_argument('--profile', help='write cProfile stats of the timed section to this path')
    parser.add_argument(
        '--hang-timeout', type=float, default=120.0, help='dump every thread and exit after this many seconds'
    )
    return parser.parse_args()


def main(factory: WorkerFactory) -> None:
    """Run one measurement as asked on the command line and print its JSON."""
    arguments = parse_arguments()
    faulthandler.dump_traceback_later(arguments.hang_timeout, exit=True)
    params = json.loads(arguments.connector_params)
    queue = f'bench-{arguments.mode}-{uuid.uuid4().hex[:8]}'
    timed = Timed(ServerProbe(arguments.stats_url), arguments.profile is not None)

    def make(tasks_per_transaction: int, max_tasks_per_run: int) -> BenchWorker:
        return factory(params, queue, tasks_per_transaction, max_tasks_per_run)

    MODES[arguments.mode](make, arguments.tasks, timed)
    result = {
        'mode': arguments.mode,
        'tasks': arguments.tasks,
        'seconds': timed.seconds,
        'cpu_seconds': timed.cpu_seconds,
        'tasks_per_second': arguments.tasks / timed.seconds,
        'server': timed.server,
        **environment(),
    }
    if timed.profiler is not None:
        result['profile_summary'] = profile_summary(timed.profiler, arguments.tasks)
        write_profile(timed.profiler, arguments.profile)
    json.dump(result, sys.stdout)
    print()
