"""A real Redis server for tests, started from Debian's ``redis-server`` binary.

``make test`` installs the binary (scripts/ensure-redis.sh). Each server listens on
a free loopback port and on a unix socket, keeps nothing on disk, and writes its
log inside the given work directory. Tests of readiness probes can ``stop()`` a
server and ``start()`` it again on the same port and socket.
"""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

import redis

from .ports import free_port

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux; stay clear of the limit


@dataclasses.dataclass
class _Process:
    """The mutable part of a frozen RedisServer: the running process, if any."""

    popen: subprocess.Popen[bytes] | None = None


@dataclasses.dataclass(frozen=True)
class RedisServer:
    host: str
    port: int
    unix_socket: str
    workdir: pathlib.Path
    extra_args: tuple[str, ...] = ()  # more redis-server options (a cluster node's, say)
    _process: _Process = dataclasses.field(default_factory=_Process, repr=False, compare=False)

    @property
    def url(self) -> str:
        return f'redis://{self.host}:{self.port}/0'

    @property
    def unix_url(self) -> str:
        return f'unix://{self.unix_socket}?db=0'

    @property
    def log_path(self) -> pathlib.Path:
        return self.workdir / 'redis.log'

    @property
    def running(self) -> bool:
        return self._process.popen is not None and self._process.popen.poll() is None

    def start(self) -> None:
        """Start the server (again) on the same port and socket; wait until it answers PING."""
        if self.running:
            return
        command = [
            _redis_binary(),
            '--bind', self.host,
            '--port', str(self.port),
            '--unixsocket', self.unix_socket,
            '--unixsocketperm', '700',
            '--save', '',
            '--appendonly', 'no',
            '--dir', str(self.workdir),
            '--daemonize', 'no',
            *self.extra_args,
        ]  # fmt: skip
        with open(self.log_path, 'ab') as log:
            self._process.popen = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            self._wait_until_ready(self._process.popen)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server; a no-op when it is not running."""
        process, self._process.popen = self._process.popen, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """SIGKILL the server (a crash: nothing is flushed, no client is told); a no-op when stopped."""
        process, self._process.popen = self._process.popen, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def _wait_until_ready(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        client = redis.Redis(self.host, self.port, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise RuntimeError(f'redis-server exited with code {process.returncode}:\n{self._log()}')
                with contextlib.suppress(redis.RedisError):
                    if client.ping():
                        return
                time.sleep(0.05)
        finally:
            client.close()
        raise RuntimeError(f'redis-server did not answer PING within {START_TIMEOUT} s:\n{self._log()}')

    def _log(self) -> str:
        try:
            return self.log_path.read_text(errors='replace')[-4000:]
        except OSError as error:
            return f'(no log: {error})'


@contextlib.contextmanager
def running_redis(workdir: pathlib.Path, extra_args: tuple[str, ...] = ()) -> Iterator[RedisServer]:
    """Start redis-server in ``workdir``, wait until it answers PING, stop it on exit."""
    _redis_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    with _socket_directory(workdir) as socket_dir:
        server = RedisServer('127.0.0.1', free_port(), str(socket_dir / 'redis.sock'), workdir, extra_args)
        server.start()
        try:
            yield server
        finally:
            server.stop()


def _redis_binary() -> str:
    binary = shutil.which('redis-server')
    if binary is None:
        raise RuntimeError('redis-server is not on PATH: run `make test` (it runs scripts/ensure-redis.sh)')
    return binary


@contextlib.contextmanager
def _socket_directory(workdir: pathlib.Path) -> Iterator[pathlib.Path]:
    """``workdir``, unless its path is too long for a unix socket: then a short temporary one."""
    if len(str(workdir / 'redis.sock')) <= _MAX_SOCKET_PATH:
        yield workdir
        return
    with tempfile.TemporaryDirectory(prefix='redis-') as short:
        yield pathlib.Path(short)
