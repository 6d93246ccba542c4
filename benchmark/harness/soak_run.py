"""One soak run: the supervisor on a persistent Redis, tasks pushed as they are used up, chaos.

A single loop, every :data:`TICK` seconds: read the workers' records
(:class:`~.soak_ledger.Ledger`), top the queue up to ``backlog`` tasks not yet
processed, sample memory every second, SIGKILL a random worker every
``kill_every`` seconds, and restart Redis when progress passes 1/(R+1), 2/(R+1)...
of the tasks. Pushes, kills and restarts never overlap (one thread), so a push
is never cut by a restart: a push that fails was sent on a connection the
restart had closed, never applied, and is simply sent again.

Once every id has run, the chaos stops and the loop waits until the queue holds
nothing ready and nothing in flight (tasks of killed workers come back when
their leases expire), then sends the supervisor SIGTERM, which must drain and
exit 0. Everything is returned as one JSON-ready dict for the report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import redis
from drivers.soak_worker import SoakWorker, soak_config

import sergeant
from sergeant.config import WorkerConfig
from sergeant.connector import Connector
from sergeant.worker import Worker

from .envs import BENCHMARK_DIR
from .server import free_port
from .soak_fleet import Fleet
from .soak_ledger import Ledger
from .soak_redis import Fsync, SoakRedis, StopMode, soak_redis

T = TypeVar('T')
TICK = 0.05
SAMPLE_EVERY = 0.5
PUSH_CHUNK = 10_000
PUSH_PER_TICK = 50_000
RESTART_PAUSE = 1.0
RETRY_FOR = 120.0  # seconds a housekeeping command keeps trying while Redis is away
STOP_TIMEOUT = 60.0
QUEUE = 'soak'
LIBRARY_ROOT = Path(sergeant.__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Settings:
    tasks: int
    workers: int
    threads: int
    kill_every: float
    redis_restarts: int
    restart_mode: Literal['graceful', 'kill', 'alternate']
    appendfsync: Fsync
    tasks_per_transaction: int
    lease_seconds: float
    max_tasks_per_run: int
    backlog: int
    warmup: float
    timeout: float
    seed: int

    def stop_mode(self, restart: int) -> StopMode:
        if self.restart_mode == 'alternate':
            return 'graceful' if restart % 2 == 0 else 'kill'
        return self.restart_mode


def _environment(server: SoakRedis, settings: Settings, records: Path) -> dict[str, str]:
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith(('SERGEANT_', 'PYTHON'))
    }
    environment.update(
        # the workers import the very sergeant this process imported (a work tree, or a checkout)
        PYTHONPATH=os.pathsep.join([str(BENCHMARK_DIR / 'drivers'), str(LIBRARY_ROOT)]),
        SOAK_QUEUE=QUEUE,
        SOAK_REDIS_URL=server.url,
        SOAK_RECORDS_DIR=str(records),
        SOAK_TASKS_PER_TRANSACTION=str(settings.tasks_per_transaction),
        SOAK_THREADS=str(settings.threads),
        SOAK_LEASE_SECONDS=str(settings.lease_seconds),
        SOAK_MAX_TASKS_PER_RUN=str(settings.max_tasks_per_run),
    )
    return environment


def _producer(environment: dict[str, str]) -> Worker:
    """A worker of the same configuration, used only to push and inspect through the public API."""

    class Producer(SoakWorker):
        def generate_config(self) -> WorkerConfig:
            return soak_config(environment)

    producer = Producer()
    producer.init_worker()
    return producer


def _patiently(action: Callable[[], T], errors: list[str]) -> T:
    """Run ``action``, again while Redis is away (up to RETRY_FOR seconds); note each failure."""
    deadline = time.monotonic() + RETRY_FOR
    while True:
        try:
            return action()
        except Exception as error:
            errors.append(f'{type(error).__name__}: {error}'[:300])
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class Soak:
    """The state of one run; :meth:`run` drives it and returns the raw results."""

    def __init__(self, settings: Settings, server: SoakRedis, workdir: Path) -> None:
        self.settings = settings
        self.server = server
        self.workdir = workdir
        records = workdir / 'records'
        records.mkdir()
        self.environment = _environment(server, settings, records)
        self.producer = _producer(self.environment)
        self.connector: Connector = self.producer.broker.connector
        self.ledger = Ledger(records, settings.tasks)
        self.rng = random.Random(settings.seed)
        self.pushed = 0
        self.push_errors: list[str] = []
        self.redis_errors: list[str] = []
        self.samples: list[dict[str, Any]] = []
        self.kills: list[dict[str, Any]] = []
        self.restarts: list[dict[str, Any]] = []
        self.started = 0.0
        self.log_path = workdir / 'supervisor.log'
        self.redis_probe = server.client()
        self.fleet: Fleet  # once the supervisor started

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def push_some(self, limit: int) -> None:
        """Push the next ids while fewer than ``backlog`` pushed tasks are unprocessed."""
        budget = limit
        while self.pushed < self.settings.tasks and budget > 0:
            room = self.settings.backlog - (self.pushed - self.ledger.distinct)
            count = min(PUSH_CHUNK, budget, room, self.settings.tasks - self.pushed)
            if count <= 0:
                return
            first = self.pushed
            chunk = [{'id': task_id} for task_id in range(first, first + count)]
            _patiently(functools.partial(self.producer.push_tasks, chunk), self.push_errors)
            self.pushed += count
            budget -= count

    def sample(self) -> None:
        supervisor, workers = self.fleet.memory()
        redis_rss = None
        with contextlib.suppress(redis.RedisError):
            redis_rss = int(self.redis_probe.info('memory')['used_memory_rss'])
        self.samples.append(
            {
                't': round(self.elapsed(), 3),
                'distinct': self.ledger.distinct,
                'records': self.ledger.records,
                'pushed': self.pushed,
                'supervisor_rss': supervisor,
                'workers_rss': sorted(workers.items()),
                'redis_rss': redis_rss,
            }
        )

    def kill(self) -> None:
        killed = self.fleet.kill_random(self.rng)
        if killed is not None:
            self.kills.append({'t': round(self.elapsed(), 3), 'distinct': self.ledger.distinct, **killed})

    def restart_redis(self) -> None:
        index = len(self.restarts)
        self.sample()  # the moments before and after, so the plot shows the pause where it is
        at, distinct = self.elapsed(), self.ledger.distinct
        done = self.server.restart(self.settings.stop_mode(index), RESTART_PAUSE)
        self.ledger.update()
        self.sample()
        self.restarts.append({'t': round(at, 3), 'distinct': distinct, **done})
        _progress(
            f'[soak {at:7.1f} s] Redis restart {index + 1}: {done["mode"]}, down {done["down_seconds"]:.1f} s'
        )

    def start_supervisor(self) -> subprocess.Popen[bytes]:
        command = [
            sys.executable, '-m', 'sergeant.supervisor',
            '--worker-module', 'soak_worker',
            '--worker-class', 'SoakWorker',
            '--concurrent-workers', str(self.settings.workers),
            '--metrics-port', str(free_port()),
            '--metrics-address', '127.0.0.1',
            '--log-format', 'json',
        ]  # fmt: skip
        with self.log_path.open('wb') as log:
            popen = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=self.environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started = time.monotonic()
        self.fleet = Fleet(popen.pid)
        return popen

    def chaos_phase(self, supervisor: subprocess.Popen[bytes]) -> str:
        """Run until every id ran, the timeout, or the supervisor's end; returns which."""
        settings = self.settings
        next_sample = next_kill = self.started
        if settings.kill_every > 0:
            next_kill += settings.kill_every
        restart_at = [
            settings.tasks * (i + 1) // (settings.redis_restarts + 1) for i in range(settings.redis_restarts)
        ]
        last_report = 0.0
        while True:
            now = time.monotonic()
            self.ledger.update()
            if self.ledger.distinct >= settings.tasks:
                return 'all processed'
            if now - self.started > settings.timeout:
                return 'timeout'
            if supervisor.poll() is not None:
                return f'supervisor exited with {supervisor.returncode}'
            self.push_some(PUSH_PER_TICK)
            if now >= next_sample:
                self.sample()
                next_sample = _next(next_sample, SAMPLE_EVERY, now)
            if settings.kill_every > 0 and now >= next_kill:
                self.kill()
                next_kill = _next(next_kill, settings.kill_every, now)
            if restart_at and self.ledger.distinct >= restart_at[0]:
                restart_at.pop(0)
                self.restart_redis()
            if now - last_report >= 10:
                last_report = now
                distinct = self.ledger.distinct
                shown = f'{distinct:,} processed ({distinct / settings.tasks:.0%}), {len(self.kills)} kills'
                _progress(f'[soak {self.elapsed():7.1f} s] {shown}')
            time.sleep(TICK)

    def settle_phase(self) -> dict[str, int]:
        """Wait until nothing is ready nor in flight (or lease x 2 + 60 s); the counts then."""
        deadline = time.monotonic() + 2 * self.settings.lease_seconds + 60
        next_sample = time.monotonic()
        while True:
            self.ledger.update()
            if time.monotonic() >= next_sample:
                self.sample()
                next_sample = _next(next_sample, SAMPLE_EVERY, time.monotonic())
            left = self.queue_state()
            if (left['ready'] == 0 and left['in_flight'] == 0) or time.monotonic() > deadline:
                return left
            time.sleep(0.25)

    def queue_state(self) -> dict[str, int]:
        connector, errors = self.connector, self.redis_errors
        return {
            'ready': _patiently(lambda: connector.length(QUEUE, include_delayed=True), errors),
            'in_flight': _patiently(lambda: connector.in_flight(QUEUE), errors),
            'dead_letters': _patiently(lambda: connector.dead_letter_length(QUEUE), errors),
        }

    def stop_supervisor(self, supervisor: subprocess.Popen[bytes]) -> dict[str, Any]:
        """SIGTERM, as a user or Kubernetes would; SIGKILL the session if it does not end in time."""
        if supervisor.poll() is not None:
            return {'exit_code': supervisor.returncode, 'seconds': 0.0, 'killed': False}
        began = time.monotonic()
        supervisor.send_signal(signal.SIGTERM)
        try:
            supervisor.wait(STOP_TIMEOUT)
            killed = False
        except subprocess.TimeoutExpired:
            self.kill_everything(supervisor)
            killed = True
        return {'exit_code': supervisor.returncode, 'seconds': time.monotonic() - began, 'killed': killed}

    def kill_everything(self, supervisor: subprocess.Popen[bytes]) -> None:
        """SIGKILL the supervisor's session and its workers (each in a session of its own)."""
        workers = self.fleet.workers()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(supervisor.pid, signal.SIGKILL)
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGKILL)
        supervisor.wait()

    def run(self) -> dict[str, Any]:
        prefill_began = time.monotonic()
        self.push_some(self.settings.backlog)
        prefill_seconds = time.monotonic() - prefill_began
        supervisor = self.start_supervisor()
        try:
            ended = self.chaos_phase(supervisor)
            chaos_seconds = self.elapsed()
            _progress(f'[soak {chaos_seconds:7.1f} s] chaos over: {ended}; waiting for the queue to settle')
            left = self.settle_phase() if ended == 'all processed' else self.queue_state()
            settled_seconds = self.elapsed()
            stopped = self.stop_supervisor(supervisor)
        finally:
            if supervisor.poll() is None:  # interrupted, or a bug of the soak's own
                self.kill_everything(supervisor)
        self.ledger.update()
        final = self.queue_state()
        return {
            'ended': ended,
            'prefill_seconds': prefill_seconds,
            'chaos_seconds': chaos_seconds,
            'settled_seconds': settled_seconds,
            'pushed': self.pushed,
            'left_at_settle': left,
            'left_at_end': final,
            'dead_letter_reasons': sorted(
                {letter.reason for letter in self.connector.dead_letters(QUEUE, 20)}
            ),
            'supervisor': stopped,
            'samples': self.samples,
            'kills': self.kills,
            'restarts': self.restarts,
            'push_errors': self.push_errors,
            'redis_errors': self.redis_errors,
            'redis_version': self.server.version,
            'supervisor_log': self.log_path.read_text(errors='replace'),
        }


def _next(due: float, every: float, now: float) -> float:
    """The next due time; after a stall (a Redis restart blocks the loop) no burst to catch up."""
    due += every
    return due if due > now else now + every


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_soak(settings: Settings) -> tuple[dict[str, Any], Ledger]:
    """Start Redis, run the soak, stop everything; the raw results and the ledger."""
    with (
        soak_redis(settings.appendfsync) as server,
        tempfile.TemporaryDirectory(prefix='sergeant-soak-') as workdir,
    ):
        soak = Soak(settings, server, Path(workdir))
        try:
            return soak.run(), soak.ledger
        finally:
            soak.redis_probe.close()
            soak.connector.close()
