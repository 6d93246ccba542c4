"""The timing shared by every driver of the field section: one measurement per process, JSON out.

Each ``field_<library>.py`` driver runs in its library's own virtual environment
(``harness/field.py`` builds them) and hands :func:`main` a :class:`Driver`: how
to push tasks (:class:`Producer`) and how to run the library's real worker on a
no-op task. This module, standard library only, does the rest, the same way for
every library:

* **produce single / bulk**: task ids are prepared, the clock runs around
  ``Producer.single`` (one push per task) or ``Producer.bulk`` per chunk of
  :data:`CHUNK`; afterwards the library's own count of waiting tasks must be N.
* **consume single / batch**: N tasks are pushed untimed, then the library's
  worker is started in a child process (``--role worker``). Its task calls
  :func:`tick`, which counts in an 8-byte-aligned memory-mapped file shared with
  this process (no Redis command, no system call) and notes the time of the
  first and of the latest task start. The figures are the start-up (spawn to the
  first task) and the rate from the first to the N-th task.
* **wake-up**: the worker idles; after random pauses one task is pushed and the
  latency is from just before the push to the task's start as :func:`tick` saw it.

Every figure is from ``time.time()`` on one machine, so the two processes agree.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import faulthandler
import json
import mmap
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

CHUNK = 1000
LAYOUT = struct.Struct('<qdd')  # tasks started, time of the first start, time of the latest start
POLL_SECONDS = 0.002
START_TIMEOUT = 60.0
SETTLE_SECONDS = 1.5  # an idle worker backs off to its slowest poll by then (dramatiq: 1 s, arq: 0.5 s)
MODES = ('produce_single', 'produce_bulk', 'consume_single', 'consume_batch', 'wakeup')


class Producer(Protocol):
    """Pushes no-op tasks carrying one integer argument, through the library's client API."""

    def single(self, ids: Sequence[int]) -> None:
        """One plain push per id (``delay``, ``enqueue``, ``kiq``, ...)."""

    def bulk(self, ids: Sequence[int]) -> None:
        """All ``ids`` through the library's bulk API, or its best substitute."""

    def waiting(self) -> int:
        """How many tasks wait in the queue, as the library counts them."""

    def close(self) -> None:
        """Release connections."""


@dataclasses.dataclass(frozen=True)
class Driver:
    """One library: its producer, its worker (runs until killed) and how both are set up."""

    library: str  # distribution name, for its version
    producer: Callable[[str, str], Producer]  # (redis URL, queue) -> producer
    work: Callable[[str, str, bool], None]  # (redis URL, queue, batch) -> run the worker for ever
    settings: dict[str, str]  # mode -> how that mode runs, for the report


class _Counter:
    """The shared record of task starts: written by the worker's task, read by the driver."""

    def __init__(self, path: Path) -> None:
        with path.open('r+b') as file:
            self._map = mmap.mmap(file.fileno(), LAYOUT.size)

    @staticmethod
    def create(path: Path) -> _Counter:
        path.write_bytes(bytes(LAYOUT.size))
        return _Counter(path)

    def read(self) -> tuple[int, float, float]:
        count, first, latest = LAYOUT.unpack_from(self._map)
        return int(count), float(first), float(latest)

    def tick(self) -> None:
        # read from the map, not a variable: rq's default worker runs each task in a fresh fork
        count, first, _ = self.read()
        now = time.time()
        LAYOUT.pack_into(self._map, 0, count + 1, first or now, now)


_counter: _Counter | None = None


def tick() -> None:
    """Called by each library's no-op task: count it and note when it started."""
    if _counter is not None:
        _counter.tick()


def _wait(counter: _Counter, count: int, worker: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while counter.read()[0] < count:
        if worker.poll() is not None:
            raise RuntimeError(f'the worker exited with code {worker.returncode}')
        if time.monotonic() > deadline:
            raise TimeoutError(f'{counter.read()[0]} of {count} tasks started within {timeout} s')
        time.sleep(POLL_SECONDS)


@contextlib.contextmanager
def _worker(arguments: argparse.Namespace, batch: bool) -> Iterator[tuple[_Counter, subprocess.Popen[bytes]]]:
    """The library's worker in a child process, with a fresh counter; killed on the way out."""
    with tempfile.TemporaryDirectory(prefix='field-') as directory:
        path = Path(directory) / 'counter'
        counter = _Counter.create(path)
        command = [
            sys.executable, '-E', '-s', sys.argv[0],
            '--role', 'worker', '--mode', arguments.mode, '--tasks', '0',
            '--redis-url', arguments.redis_url, '--queue', arguments.queue, '--counter', str(path),
        ]  # fmt: skip
        if batch:
            command.append('--batch')
        worker = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        try:
            yield counter, worker
        finally:
            worker.kill()
            worker.wait()


def produce(producer: Producer, tasks: int, bulk: bool) -> dict[str, Any]:
    ids = list(range(tasks))
    chunks = [ids[start : start + CHUNK] for start in range(0, tasks, CHUNK)]
    started = time.perf_counter(), time.process_time()
    if bulk:
        for chunk in chunks:
            producer.bulk(chunk)
    else:
        producer.single(ids)
    seconds, cpu = time.perf_counter() - started[0], time.process_time() - started[1]
    _expect(producer.waiting(), tasks, 'waiting after the pushes')
    return {'seconds': seconds, 'cpu_seconds': cpu, 'tasks_per_second': tasks / seconds}


def consume(producer: Producer, arguments: argparse.Namespace, batch: bool) -> dict[str, Any]:
    tasks = arguments.tasks
    for start in range(0, tasks, CHUNK):
        producer.bulk(range(start, min(start + CHUNK, tasks)))
    _expect(producer.waiting(), tasks, 'waiting before consuming')
    spawned = time.time()
    with _worker(arguments, batch) as (counter, worker):
        _wait(counter, tasks, worker, arguments.timeout)
        time.sleep(0.2)  # no task may run twice, and none may be left
        count, first, latest = counter.read()
    _expect(count, tasks, 'tasks run')
    _expect(producer.waiting(), 0, 'waiting after consuming')
    steady = latest - first
    return {
        'seconds': steady,
        'startup_seconds': first - spawned,
        'total_seconds': latest - spawned,
        'tasks_per_second': (tasks - 1) / steady if steady > 0 else float('inf'),
    }


def wakeup(producer: Producer, arguments: argparse.Namespace) -> dict[str, Any]:
    latencies = []
    with _worker(arguments, batch=False) as (counter, worker):
        producer.single([0])
        _wait(counter, 1, worker, START_TIMEOUT)
        time.sleep(SETTLE_SECONDS)
        for sample in range(1, arguments.tasks + 1):
            time.sleep(random.uniform(0.02, 0.3))
            pushed = time.time()
            producer.single([sample])
            _wait(counter, sample + 1, worker, 10.0)
            latencies.append(counter.read()[2] - pushed)
    return {'samples': len(latencies), **percentiles(latencies)}


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50 / p90 / p99 / max in milliseconds."""
    cuts = statistics.quantiles(samples, n=100, method='inclusive') if len(samples) > 1 else samples * 99
    return {
        'p50_ms': cuts[49] * 1000,
        'p90_ms': cuts[89] * 1000,
        'p99_ms': cuts[98] * 1000,
        'max_ms': max(samples) * 1000,
    }


def _expect(actual: int, wanted: int, what: str) -> None:
    if actual != wanted:
        raise RuntimeError(f'{what}: {actual}, expected {wanted}')


def _version(library: str) -> str:
    import importlib.metadata

    return importlib.metadata.version(library)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--mode', choices=MODES, required=True)
    parser.add_argument('--tasks', type=int, required=True, help='tasks to push or consume; wake-up samples')
    parser.add_argument('--redis-url', required=True)
    parser.add_argument('--queue', default=f'field-{uuid.uuid4().hex[:8]}', help='a fresh one by default')
    parser.add_argument('--timeout', type=float, default=120.0, help='give up consuming after this long')
    parser.add_argument('--role', choices=('driver', 'worker'), default='driver')
    parser.add_argument('--batch', action='store_true', help='worker role: the batch settings')
    parser.add_argument('--counter', help='worker role: the shared counter file')
    return parser.parse_args()


def main(driver: Driver) -> None:
    """Run one measurement (or, with ``--role worker``, the library's worker) as the command line asks."""
    global _counter
    arguments = parse_arguments()
    if arguments.role == 'worker':
        _counter = _Counter(Path(arguments.counter))
        driver.work(arguments.redis_url, arguments.queue, arguments.batch)
        return
    faulthandler.dump_traceback_later(arguments.timeout + 60, exit=True)
    producer = driver.producer(arguments.redis_url, arguments.queue)
    try:
        if arguments.mode.startswith('produce'):
            result = produce(producer, arguments.tasks, bulk=arguments.mode == 'produce_bulk')
        elif arguments.mode == 'wakeup':
            result = wakeup(producer, arguments)
        else:
            result = consume(producer, arguments, batch=arguments.mode == 'consume_batch')
    finally:
        producer.close()
    result.update(
        mode=arguments.mode,
        tasks=arguments.tasks,
        library=driver.library,
        version=_version(driver.library),
        python=sys.version.split()[0],
        settings=driver.settings.get(arguments.mode, ''),
    )
    json.dump(result, sys.stdout)
    print()
