"""The scale section of ``make bench``: more processes, more threads, many idle consumers, cost.

All on the benchmark's Redis, unpinned (the point is to use every CPU):

* **processes**: 1, 2, 4 and 8 worker processes (``drivers/scale_worker.py``,
  serial executor, no-op tasks, ``tasks_per_transaction`` 100) start on an empty
  queue; once every one waits on it, ``tasks`` tasks are pushed in bulk and the
  clock runs until the queue is empty and nothing is in flight. Reported: tasks/s,
  the workers' and Redis's CPU per task, and Redis's CPU per 1,000 tasks/s;
* **threads**: one worker process with 1 to 16 threads (1 is the serial executor)
  on tasks that sleep ``SLEEP_MS`` (standing for I/O): tasks/s against the ideal
  ``threads * 1000 / SLEEP_MS``;
* **idle**: ``idle_consumers`` consumers (``drivers/idle_consumers.py``: threads
  of one process, each with its own connection, doing what an idle task stream
  does) wait on one queue: Redis's commands/s and CPU while they idle, then the
  latency from a push to a consumer receiving it, with all of them waiting;
* **cost**: core-seconds (workers plus Redis) per million no-op tasks at the best
  process count, and what that costs at :data:`CORE_HOUR_USD` per core-hour.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sergeant.connector import create_connector

from .envs import BENCHMARK_DIR
from .server import RedisServer
from .wakeup import cpu_seconds, percentiles

DRIVERS = BENCHMARK_DIR / 'drivers'
REPO_ROOT = BENCHMARK_DIR.parent
QUEUE = 'scale'  # the queue of drivers/scale_worker.py
PROCESSES = (1, 2, 4, 8)
THREADS = (1, 2, 4, 8, 16)
SLEEP_MS = 5.0
PROCESS_BATCH = 100
CORE_HOUR_USD = 0.04  # an assumption: a typical on-demand price of one vCPU-hour in 2026
START_TIMEOUT = 60.0
IDLE_SETTLE = 6.0  # longer than an idle consumer's blocking wait, so the figures are steady
IDLE_WINDOW = 10.0


def run_section(
    server: RedisServer, ours: Path, tasks: int, idle_consumers: int, wakeup_samples: int
) -> dict[str, Any]:
    sys.path.insert(0, str(DRIVERS))
    from scale_worker import Producer

    producer = Producer({'url': server.url})
    processes = [_throughput(server, ours, producer, count, 1, tasks, 0.0) for count in PROCESSES]
    threads = [
        _throughput(server, ours, producer, 1, count, int(count * 1000 / SLEEP_MS), SLEEP_MS)
        for count in THREADS
    ]
    idle = _idle(server, ours, idle_consumers, wakeup_samples)
    return {'processes': processes, 'threads': threads, 'idle': idle, 'cost': _cost(processes)}


def _env(server: RedisServer, **settings: str) -> dict[str, str]:
    return dict(
        os.environ,
        SCALE_PARAMS=json.dumps({'url': server.url}),
        PYTHONPATH=os.pathsep.join([str(DRIVERS), str(REPO_ROOT)]),
        **settings,
    )


def _throughput(
    server: RedisServer, ours: Path, producer: Any, processes: int, threads: int, tasks: int, sleep_ms: float
) -> dict[str, Any]:
    producer.purge_tasks()
    batch = PROCESS_BATCH if threads == 1 else threads
    env = _env(server, SCALE_THREADS=str(threads), SCALE_BATCH=str(batch), SCALE_SLEEP_MS=str(sleep_ms))
    workers = [
        subprocess.Popen([str(ours), str(DRIVERS / 'scale_worker.py')], env=env) for _ in range(processes)
    ]
    connector = producer.broker.connector
    try:
        _wait_for_blocked_clients(server, processes)
        before = [cpu_seconds(worker.pid) for worker in workers], cpu_seconds(server.pid)
        started = time.perf_counter()
        for start in range(0, tasks, 1000):
            producer.push_tasks([{'i': i} for i in range(start, min(tasks, start + 1000))])
        while connector.length(QUEUE) or connector.in_flight(QUEUE):
            time.sleep(0.002)
        seconds = time.perf_counter() - started
        workers_cpu = sum(cpu_seconds(w.pid) for w in workers) - sum(before[0])
        redis_cpu = cpu_seconds(server.pid) - before[1]
    finally:
        _stop(workers)
    rate = tasks / seconds
    return {
        'processes': processes,
        'threads': threads,
        'tasks': tasks,
        'sleep_ms': sleep_ms,
        'seconds': round(seconds, 3),
        'tasks_per_s': round(rate),
        'workers_cpu_us_per_task': round(workers_cpu / tasks * 1e6, 2),
        'redis_cpu_us_per_task': round(redis_cpu / tasks * 1e6, 2),
        # cores of Redis needed per 1,000 tasks/s
        'redis_cores_per_1k_tasks_s': round(redis_cpu / seconds / (rate / 1000), 4),
    }


def _idle(server: RedisServer, ours: Path, count: int, samples: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix='scale-idle-') as directory:
        out = Path(directory) / 'received'
        out.touch()
        command = [str(ours), str(DRIVERS / 'idle_consumers.py'), json.dumps({'url': server.url}), QUEUE]
        consumers = subprocess.Popen(
            [*command, str(count), str(out)], env=_env(server), stdout=subprocess.PIPE, text=True
        )
        try:
            assert consumers.stdout is not None
            if consumers.stdout.readline().strip() != 'ready':
                raise RuntimeError('the idle consumers did not start')
            time.sleep(IDLE_SETTLE)
            with server.client() as client:
                clients = int(client.info('clients')['connected_clients'])
                commands, redis_cpu, started = _commands(client), cpu_seconds(server.pid), time.monotonic()
                consumer_cpu = cpu_seconds(consumers.pid)
                time.sleep(IDLE_WINDOW)
                elapsed = time.monotonic() - started
                result: dict[str, Any] = {
                    'consumers': count,
                    'connected_clients': clients,
                    'commands_per_s': round((_commands(client) - commands) / elapsed, 1),
                    'redis_cpu_percent': round(100 * (cpu_seconds(server.pid) - redis_cpu) / elapsed, 2),
                    'consumers_cpu_percent': round(
                        100 * (cpu_seconds(consumers.pid) - consumer_cpu) / elapsed, 2
                    ),
                }
            result['wakeup'] = percentiles(_wakeups(server, out, samples))
        finally:
            _stop([consumers])
    return result


def _wakeups(server: RedisServer, out: Path, samples: int) -> list[float]:
    connector = create_connector('redis', {'url': server.url})
    latencies = []
    for line in range(1, samples + 1):
        time.sleep(random.uniform(0.02, 0.2))
        pushed = time.time()
        connector.push(QUEUE, [b'wake'])
        deadline = time.monotonic() + 10
        while len(lines := out.read_text().splitlines()) < line:
            if time.monotonic() > deadline:
                raise TimeoutError(f'no consumer received push {line} within 10 s')
            time.sleep(0.0005)
        latencies.append(float(lines[line - 1]) - pushed)
    connector.close()
    return latencies


def _cost(processes: list[dict[str, Any]]) -> dict[str, Any]:
    best = max(processes, key=lambda row: row['tasks_per_s'])
    core_seconds = best['workers_cpu_us_per_task'] + best['redis_cpu_us_per_task']  # per million tasks
    return {
        'processes': best['processes'],
        'core_seconds_per_million': round(core_seconds, 1),
        'usd_per_billion': round(core_seconds * 1000 / 3600 * CORE_HOUR_USD, 3),
        'core_hour_usd': CORE_HOUR_USD,
    }


def _commands(client: Any) -> int:
    stats = client.info('commandstats')
    return sum(int(entry['calls']) for name, entry in stats.items() if name != 'cmdstat_info')


def _wait_for_blocked_clients(server: RedisServer, count: int) -> None:
    """Until ``count`` clients block on a wake list: every worker is up and idle."""
    deadline = time.monotonic() + START_TIMEOUT
    with server.client() as client:
        while int(client.info('clients')['blocked_clients']) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f'{count} workers did not start within {START_TIMEOUT} s')
            time.sleep(0.05)


def _stop(processes: list[subprocess.Popen[Any]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def markdown_lines(section: dict[str, Any]) -> list[str]:
    lines = [
        '## Scale (ours, Redis, unpinned)',
        '',
        f'Worker processes (serial, no-op tasks, `tasks_per_transaction` {PROCESS_BATCH}), '
        f'{section["processes"][0]["tasks"]:,} tasks pushed in bulk to idle workers:',
        '',
        '| processes | tasks/s | workers CPU µs/task | Redis CPU µs/task | Redis cores per 1k tasks/s |',
        '| ---: | ---: | ---: | ---: | ---: |',
    ]
    for row in section['processes']:
        lines.append(
            f'| {row["processes"]} | {row["tasks_per_s"]:,} | {row["workers_cpu_us_per_task"]} '
            f'| {row["redis_cpu_us_per_task"]} | {row["redis_cores_per_1k_tasks_s"]} |'
        )
    lines += [
        '',
        f'One process, threaded executor, tasks sleeping {SLEEP_MS:g} ms (1 thread: the serial executor):',
        '',
        '| threads | tasks/s | ideal | of ideal | workers CPU µs/task |',
        '| ---: | ---: | ---: | ---: | ---: |',
    ]
    for row in section['threads']:
        ideal = row['threads'] * 1000 / SLEEP_MS
        lines.append(
            f'| {row["threads"]} | {row["tasks_per_s"]:,} | {ideal:,.0f} | {row["tasks_per_s"] / ideal:.0%} '
            f'| {row["workers_cpu_us_per_task"]} |'
        )
    idle, cost = section['idle'], section['cost']
    wake = idle['wakeup']
    lines += [
        '',
        f'{idle["consumers"]:,} idle consumers on one queue '
        f'({idle["connected_clients"]:,} clients connected): Redis ran {idle["commands_per_s"]:,} commands/s '
        f'({idle["commands_per_s"] / idle["consumers"]:.2f} per consumer) '
        f'using {idle["redis_cpu_percent"]} % of a core; '
        f'the consumers used {idle["consumers_cpu_percent"]} %. '
        'A push reached one of them after '
        f'p50 {wake["p50_ms"]} ms, p90 {wake["p90_ms"]} ms, p99 {wake["p99_ms"]} ms, max {wake["max_ms"]} ms '
        f'({wake["samples"]} pushes).',
        '',
        f'Cost: {cost["core_seconds_per_million"]} core-seconds (workers plus Redis) per million no-op tasks '
        f'with {cost["processes"]} processes: ${cost["usd_per_billion"]} per billion tasks at '
        f'${cost["core_hour_usd"]} per core-hour (an assumed on-demand price). '
        'Real tasks cost their own CPU on top.',
        '',
    ]
    return lines
