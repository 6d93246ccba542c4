"""The soak's ``redis-server``: persistent (AOF), restartable on the same port and data directory.

Unlike the benchmark's throwaway server (``server.py``), this one keeps what it
acknowledged across restarts: ``--appendonly yes`` with ``--appendfsync``
``always`` (each write is on disk before its reply leaves) or ``everysec`` (up
to a second of acknowledged writes lives only in memory). Two ways to stop it:

- ``graceful``: the ``SHUTDOWN`` command. Redis stops taking commands, flushes
  and fsyncs the AOF and exits 0; nothing acknowledged is lost whatever the
  fsync policy.
- ``kill``: SIGKILL, a crash. Only with ``appendfsync always`` does the AOF hold
  every acknowledged write; with ``everysec`` a kill may drop the last second,
  which would show up as lost tasks that are Redis's doing, not Sergeant's. So
  :meth:`SoakRedis.restart` refuses that combination.

Clients see refused connections while it is down; it comes back on the same
port and replays the AOF before it answers PING.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .server import free_port

StopMode = Literal['graceful', 'kill']
Fsync = Literal['always', 'everysec']
START_TIMEOUT = 60.0  # replaying a large AOF takes a while
STOP_TIMEOUT = 60.0


@dataclasses.dataclass
class SoakRedis:
    """One persistent server; :meth:`start` and :meth:`stop` may be called again and again."""

    workdir: Path
    port: int
    appendfsync: Fsync
    version: str = ''
    popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f'redis://127.0.0.1:{self.port}/0'

    def client(self) -> redis.Redis:
        """A client for housekeeping that fails at once while the server is down (no retries)."""
        return redis.Redis(
            host='127.0.0.1',
            port=self.port,
            socket_timeout=30,
            socket_connect_timeout=5,
            retry=Retry(NoBackoff(), 0),
        )

    def _command(self) -> list[str]:
        return [
            shutil.which('redis-server') or 'redis-server',
            '--bind', '127.0.0.1',
            '--port', str(self.port),
            '--save', '',  # no RDB snapshots: the AOF alone persists
            '--appendonly', 'yes',
            '--appendfsync', self.appendfsync,
            '--dir', str(self.workdir),
            '--logfile', 'redis.log',
            '--daemonize', 'no',
        ]  # fmt: skip

    def start(self) -> float:
        """Start (again) and wait until it answers PING (the AOF replayed); returns the seconds that took."""
        started = time.monotonic()
        self.popen = subprocess.Popen(
            self._command(), cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        with self.client() as client:
            while True:
                if self.popen.poll() is not None:
                    raise RuntimeError(f'redis-server exited with {self.popen.returncode}: {self.log_tail()}')
                try:
                    client.ping()  # INFO answers while the AOF is replayed; PING only once it is loaded
                    self.version = str(client.info('server')['redis_version'])
                    break
                except (redis.ConnectionError, redis.BusyLoadingError):
                    if time.monotonic() - started > START_TIMEOUT:
                        raise
                    time.sleep(0.02)
        return time.monotonic() - started

    def stop(self, mode: StopMode) -> int:
        """Stop the server, gracefully or with SIGKILL; returns its exit code."""
        process = self.popen
        if process is None or process.poll() is not None:
            raise RuntimeError('redis-server is not running')
        if mode == 'kill':
            process.kill()
        else:
            with self.client() as client, contextlib.suppress(redis.ConnectionError):
                client.shutdown()  # redis-py treats the closed connection as the expected answer
        try:
            return process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()
        finally:
            self.popen = None

    def restart(self, mode: StopMode, pause: float) -> dict[str, float | int | str]:
        """Stop, stay down ``pause`` seconds, start again: what happened, for the report."""
        if mode == 'kill' and self.appendfsync != 'always':
            raise ValueError('a kill restart needs appendfsync always: everysec may drop a second of writes')
        began = time.monotonic()
        exit_code = self.stop(mode)
        stop_seconds = time.monotonic() - began
        time.sleep(pause)
        start_seconds = self.start()
        return {
            'mode': mode,
            'exit_code': exit_code,
            'stop_seconds': stop_seconds,
            'down_seconds': time.monotonic() - began,
            'start_seconds': start_seconds,
        }

    def log_tail(self) -> str:
        try:
            return (self.workdir / 'redis.log').read_text(errors='replace')[-2000:]
        except OSError as error:
            return f'(no log: {error})'


@contextlib.contextmanager
def soak_redis(appendfsync: Fsync) -> Iterator[SoakRedis]:
    """A started server in a fresh temporary directory; stopped and removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix='sergeant-soak-redis-'))
    server = SoakRedis(workdir, free_port(), appendfsync)
    try:
        server.start()
        yield server
    finally:
        if server.popen is not None and server.popen.poll() is None:
            server.stop('kill')
        shutil.rmtree(workdir, ignore_errors=True)
