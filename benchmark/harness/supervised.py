"""The supervised section: each library's own supervisor running no-op worker processes.

Both supervisors are started the way their users start them, ``python -m
sergeant.supervisor --worker-module counted_worker --worker-class CountedWorker
--concurrent-workers N``, in their own interpreters, on the run's Redis (TCP),
with ``drivers/`` on ``PYTHONPATH``. The worker (``drivers/counted_worker.py``)
counts its tasks in a memory-mapped file per process, so the harness sees
progress without any Redis command or system call in the workers.

- **Throughput**: N tasks are pushed beforehand by the contender's own library
  (untimed). The clock starts right before the supervisor process is started and
  stops at the first poll (every 2 ms) where the counters of all its workers add
  up to N. So it includes starting the supervisor, its workers and their
  connections, which both libraries pay alike; the time to the first counted task
  is kept apart. Workers run with ``max_tasks_per_run=0`` (for ever), so neither
  supervisor respawns anything during the run (0.27 would respawn a worker that
  reached its ``max_tasks_per_run``). After the clock stops, the count must stay
  N (no task ran twice).
- **Idle**: a supervisor with two workers on an empty queue; after the workers
  have started and :data:`IDLE_SETTLE` seconds have passed, the time on a CPU
  (user + system, from schedstat) of the supervisor process alone, and of each
  worker, over ``seconds``, as a percentage of one core; then the RSS of the
  supervisor and of each worker.

No CPU pinning here: the workers and Redis share the machine's CPUs as the
scheduler sees fit (two workers cannot run in parallel on one pinned CPU).
Redis is unpinned for this section.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import mmap
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from .measure import DRIVERS_DIR, nodes_params
from .placement import Placement
from .server import RedisServer, free_port

WORKER_MODULE = 'counted_worker'
WORKER_CLASS = 'CountedWorker'
POLL_INTERVAL = 0.002
RUN_TIMEOUT = 180.0
STOP_TIMEOUT = 15.0
IDLE_SETTLE = 3.0  # ours backs off to a 1 s poll of an empty queue; 0.27 sleeps 1 s per empty poll
IDLE_WORKERS = 2


@dataclasses.dataclass(frozen=True)
class Contender:
    key: str
    label: str
    python: Path


@dataclasses.dataclass(frozen=True)
class Cell:
    """One throughput measurement: tasks per transaction, worker processes, tasks."""

    tasks_per_transaction: int
    workers: int
    tasks: int

    @property
    def key(self) -> str:
        return f'tpt{self.tasks_per_transaction}-workers{self.workers}'


CELLS = [
    Cell(1000, 1, 200_000),
    Cell(1000, 2, 200_000),
    Cell(1, 1, 50_000),
    Cell(1, 2, 50_000),
]


def contenders(ours: Path, sergeant027: Path) -> list[Contender]:
    return [Contender('sergeant027', 'Sergeant 0.27', sergeant027), Contender('ours', 'ours', ours)]


class RunningSupervisor:
    """A supervisor process started for one measurement, and the counters of its workers."""

    def __init__(self, popen: subprocess.Popen[bytes], counts_dir: Path, log_path: Path) -> None:
        self.popen = popen
        self.counts_dir = counts_dir
        self.log_path = log_path
        self._counters: dict[int, memoryview] = {}

    @property
    def process(self) -> psutil.Process:
        return psutil.Process(self.popen.pid)

    def _discover(self) -> None:
        for name in os.listdir(self.counts_dir):
            pid = int(name.removesuffix('.count'))
            path = self.counts_dir / name
            if pid in self._counters or path.stat().st_size < 8:
                continue  # known, or still being created by its worker
            with path.open('rb') as mapped:
                memory = mmap.mmap(mapped.fileno(), 8, access=mmap.ACCESS_READ)
            self._counters[pid] = memoryview(memory).cast('q')

    def counted(self) -> int:
        self._discover()
        return sum(counter[0] for counter in self._counters.values())

    def worker_pids(self) -> list[int]:
        """Workers that started (created their counter) and are still running."""
        self._discover()
        return [pid for pid in self._counters if _is_our_worker(pid)]

    def log_tail(self) -> str:
        return self.log_path.read_text(errors='replace')[-3000:]

    def stop(self) -> None:
        """SIGTERM, as a user would; SIGKILL the session and any worker left after STOP_TIMEOUT."""
        workers = self.worker_pids()
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        deadline = time.monotonic() + STOP_TIMEOUT
        while any(_is_our_worker(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in workers:
            if _is_our_worker(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for counter in self._counters.values():
            counter.release()
        self._counters.clear()


def _is_our_worker(pid: int) -> bool:
    """Alive (not a zombie) and running our worker module: guards against a reused pid."""
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and WORKER_MODULE in ' '.join(process.cmdline())
    except psutil.Error:
        return False


def _environment(
    server: RedisServer, queue: str, tasks_per_transaction: int, counts_dir: Path
) -> dict[str, str]:
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith(('SERGEANT_', 'PYTHON'))
    }
    environment.update(
        PYTHONPATH=str(DRIVERS_DIR),
        BENCH_CONNECTOR_PARAMS=json.dumps(nodes_params(server)),
        BENCH_QUEUE=queue,
        BENCH_TASKS_PER_TRANSACTION=str(tasks_per_transaction),
        BENCH_COUNTS_DIR=str(counts_dir),
        # a free port for a supervisor that serves /metrics by default, so that it never collides
        # with another supervisor on the machine; a version without metrics ignores the variable
        SERGEANT_METRICS_PORT=str(free_port()),
    )
    return environment


def _fill(contender: Contender, environment: dict[str, str], tasks: int) -> None:
    command = [str(contender.python), str(DRIVERS_DIR / f'{WORKER_MODULE}.py'), '--fill', str(tasks)]
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f'filling the queue failed: {completed.stderr.strip()[-500:]}')


@contextlib.contextmanager
def running_supervisor(
    contender: Contender, server: RedisServer, workers: int, tasks_per_transaction: int, tasks: int
) -> Iterator[tuple[RunningSupervisor, float]]:
    """Fill the queue with ``tasks``, start the supervisor; yield it and the monotonic start time."""
    with server.client() as client:
        client.flushall()
    with tempfile.TemporaryDirectory(prefix='sergeant-bench-supervised-') as workdir:
        counts_dir = Path(workdir) / 'counts'
        counts_dir.mkdir()
        queue = f'bench-supervised-{uuid.uuid4().hex[:8]}'
        environment = _environment(server, queue, tasks_per_transaction, counts_dir)
        if tasks:
            _fill(contender, environment, tasks)
        command = [
            str(contender.python), '-m', 'sergeant.supervisor',
            '--worker-module', WORKER_MODULE,
            '--worker-class', WORKER_CLASS,
            '--concurrent-workers', str(workers),
        ]  # fmt: skip
        log_path = Path(workdir) / 'supervisor.log'
        with log_path.open('wb') as log:
            started = time.perf_counter()
            popen = subprocess.Popen(
                command,
                cwd=workdir,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # killpg reaches 0.27's workers (ours start their own sessions)
            )
        running = RunningSupervisor(popen, counts_dir, log_path)
        try:
            yield running, started
        finally:
            running.stop()


def _cpu_seconds(process: psutil.Process) -> float:
    """User + system time of the process, all threads, including ended ones (10 ms ticks)."""
    times = process.cpu_times()
    return float(times.user + times.system)


def _on_cpu_seconds(process: psutil.Process) -> float:
    """Time on a CPU of the process's live threads, to the nanosecond where the kernel keeps
    schedstat (``/proc/<pid>/task/<tid>/schedstat``); an idle process uses less than one 10 ms tick
    per second, too little for :func:`_cpu_seconds` to tell apart."""
    try:
        total = 0
        for thread in os.listdir(f'/proc/{process.pid}/task'):
            with open(f'/proc/{process.pid}/task/{thread}/schedstat') as schedstat:
                total += int(schedstat.read().split()[0])
    except (OSError, ValueError, IndexError):
        return _cpu_seconds(process)
    return total / 1e9


def _redis_cpu_seconds(server: RedisServer) -> float:
    with server.client() as client:
        info = client.info('cpu')
    return float(info['used_cpu_user']) + float(info['used_cpu_sys'])


def _wait_for_count(running: RunningSupervisor, tasks: int, started: float) -> tuple[float, float]:
    """Poll the counters until they reach ``tasks``; seconds to the first task and to the last."""
    first: float | None = None
    while True:
        counted = running.counted()
        now = time.perf_counter()
        if counted and first is None:
            first = now - started
        if counted >= tasks:
            return first or 0.0, now - started
        if running.popen.poll() is not None:
            raise RuntimeError(f'supervisor exited with {running.popen.returncode}: {running.log_tail()}')
        if now - started > RUN_TIMEOUT:
            raise RuntimeError(f'{counted} of {tasks} tasks after {RUN_TIMEOUT:g} s: {running.log_tail()}')
        time.sleep(POLL_INTERVAL)


def measure_throughput(contender: Contender, cell: Cell, server: RedisServer, tasks: int) -> dict[str, Any]:
    """One throughput run; ``{'error': ...}`` instead of raising."""
    try:
        redis_before = _redis_cpu_seconds(server)
        supervising = running_supervisor(contender, server, cell.workers, cell.tasks_per_transaction, tasks)
        with supervising as (running, started):
            first, seconds = _wait_for_count(running, tasks, started)
            redis_cpu = _redis_cpu_seconds(server) - redis_before
            workers = running.worker_pids()
            workers_cpu = sum(_cpu_seconds(psutil.Process(pid)) for pid in workers)
            supervisor_cpu = _cpu_seconds(running.process)
            time.sleep(0.2)
            counted = running.counted()
            if counted != tasks:
                raise RuntimeError(f'{counted} tasks counted, expected {tasks}: some ran twice')
    except (RuntimeError, OSError, psutil.Error) as error:
        return {'error': str(error)[-1500:]}
    return {
        'tasks': tasks,
        'seconds': seconds,
        'first_task_seconds': first,
        'tasks_per_second': tasks / seconds,
        'tasks_per_second_after_first': tasks / (seconds - first) if seconds > first else None,
        'worker_processes': len(workers),
        'supervisor_cpu_seconds': supervisor_cpu,
        'workers_cpu_seconds': workers_cpu,
        'redis_cpu_seconds': redis_cpu,
    }


def measure_idle(contender: Contender, server: RedisServer, seconds: float) -> dict[str, Any]:
    """CPU use and RSS of an idle supervisor and its idle workers; ``{'error': ...}`` instead of raising."""
    try:
        with running_supervisor(contender, server, IDLE_WORKERS, 1, 0) as (running, _started):
            deadline = time.monotonic() + 60
            while len(running.worker_pids()) < IDLE_WORKERS:
                if time.monotonic() > deadline or running.popen.poll() is not None:
                    raise RuntimeError(f'workers did not start: {running.log_tail()}')
                time.sleep(0.05)
            time.sleep(IDLE_SETTLE)
            supervisor = running.process
            workers = [psutil.Process(pid) for pid in running.worker_pids()]
            before = _on_cpu_seconds(supervisor), [_on_cpu_seconds(worker) for worker in workers]
            time.sleep(seconds)
            after = _on_cpu_seconds(supervisor), [_on_cpu_seconds(worker) for worker in workers]
            supervisor_rss = supervisor.memory_info().rss
            workers_rss = [worker.memory_info().rss for worker in workers]
            threads = supervisor.num_threads(), [worker.num_threads() for worker in workers]
            log_head = running.log_path.read_text(errors='replace')[:1000]
    except (RuntimeError, OSError, psutil.Error) as error:
        return {'error': str(error)[-1500:]}
    return {
        'seconds': seconds,
        'supervisor_cpu_percent': (after[0] - before[0]) / seconds * 100,
        'workers_cpu_percent': [
            (end - begin) / seconds * 100 for begin, end in zip(before[1], after[1], strict=True)
        ],
        'supervisor_rss_bytes': supervisor_rss,
        'workers_rss_bytes': workers_rss,
        'supervisor_threads': threads[0],
        'workers_threads': threads[1],
        'supervisor_log_head': log_head,
    }


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def scaled(cell: Cell, scale: float) -> int:
    return max(1000, round(cell.tasks * scale / 1000) * 1000)


def run_section(
    server: RedisServer, ours: Path, sergeant027: Path, repeats: int, scale: float, idle_seconds: float
) -> dict[str, Any]:
    """Every cell for both supervisors, then the idle measurement, interleaved over ``repeats`` rounds."""
    entrants = contenders(ours, sergeant027)
    everywhere = frozenset(os.sched_getaffinity(0))
    Placement('free', 'no pinning', everywhere, everywhere).pin_redis(server.pid)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        cell.key: {contender.key: [] for contender in entrants} for cell in CELLS
    }
    idle: dict[str, list[dict[str, Any]]] = {contender.key: [] for contender in entrants}
    for round_number in range(1, repeats + 1):
        for cell in CELLS:
            for contender in entrants:
                result = measure_throughput(contender, cell, server, scaled(cell, scale))
                runs[cell.key][contender.key].append(result)
                shown = result.get('error') or f'{result["tasks_per_second"]:,.0f} tasks/s'
                _progress(
                    f'[supervised {round_number}/{repeats}] {cell.key:<18} {contender.label:<14} {shown}'
                )
        for contender in entrants:
            result = measure_idle(contender, server, idle_seconds)
            idle[contender.key].append(result)
            shown = result.get('error') or f'supervisor {result["supervisor_cpu_percent"]:.2f}% CPU'
            _progress(f'[supervised {round_number}/{repeats}] idle {contender.label:<14} {shown}')
    return {
        'cells': [dataclasses.asdict(cell) | {'key': cell.key} for cell in CELLS],
        'contenders': {contender.key: contender.label for contender in entrants},
        'idle_workers': IDLE_WORKERS,
        'idle_seconds': idle_seconds,
        'runs': runs,
        'idle': idle,
    }
