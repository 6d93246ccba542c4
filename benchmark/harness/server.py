"""A throwaway ``redis-server`` for one benchmark run: loopback TCP plus a unix socket.

Persistence is off (``--save ""``, ``--appendonly no``) so disk never shows in the
numbers. The server lives in a temporary directory and is stopped, and the
directory removed, when the context manager exits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis

_START_TIMEOUT = 10.0


@dataclasses.dataclass(frozen=True)
class RedisServer:
    """Where the running server listens."""

    host: str
    port: int
    unix_socket: str
    version: str
    pid: int

    @property
    def url(self) -> str:
        return f'redis://{self.host}:{self.port}/0'

    @property
    def unix_url(self) -> str:
        return f'unix://{self.unix_socket}?db=0'

    def client(self) -> redis.Redis:
        """A client for housekeeping (flush, stats), over TCP."""
        return redis.Redis(host=self.host, port=self.port)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(('127.0.0.1', 0))
        port: int = probe.getsockname()[1]
        return port


def _command(port: int, workdir: Path) -> list[str]:
    return [
        shutil.which('redis-server') or 'redis-server',
        '--bind', '127.0.0.1',
        '--port', str(port),
        '--unixsocket', str(workdir / 'redis.sock'),
        '--unixsocketperm', '700',
        '--save', '',
        '--appendonly', 'no',
        '--dir', str(workdir),
        '--logfile', str(workdir / 'redis.log'),
        '--daemonize', 'no',
    ]  # fmt: skip


def _wait_until_ready(client: redis.Redis, process: subprocess.Popen[bytes]) -> str:
    """Ping until the server answers; return its version."""
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f'redis-server exited with code {process.returncode} while starting')
        try:
            info = client.info('server')
            return str(info['redis_version'])
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def running_redis() -> Iterator[RedisServer]:
    """Start a fresh server, yield where it listens, stop it afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix='sergeant-bench-'))
    port = free_port()
    process = subprocess.Popen(_command(port, workdir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(host='127.0.0.1', port=port)
        try:
            version = _wait_until_ready(client, process)
        finally:
            client.close()
        yield RedisServer('127.0.0.1', port, str(workdir / 'redis.sock'), version, process.pid)
    finally:
        _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)
