"""Broker servers a fault test can SIGKILL and start again on the same port, with their data kept.

:class:`DurableRedis` runs ``redis-server`` with an append-only file fsynced at
every write (``appendfsync always``): whatever Redis acknowledged survives a
SIGKILL. :class:`DurableFerretDB` runs FerretDB on its SQLite directory, which
keeps every committed write across a SIGKILL of the server. Both can also be
created without being started, for tests of a broker that is absent at first.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymongo
import pymongo.errors
import redis

from tests.servers.ferretdb import FERRETDB_BINARY
from tests.servers.ports import free_port

START_TIMEOUT = 30.0


class DurableServer:
    """One server process at a time on a fixed port; ``kill`` (SIGKILL) and ``start`` at will."""

    name = 'server'

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = '127.0.0.1'
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        raise NotImplementedError

    @property
    def log_path(self) -> Path:
        return self.workdir / f'{self.name}.log'

    def command(self) -> list[str]:
        raise NotImplementedError

    def answers(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        """Start the server and wait until it answers."""
        assert self._process is None, 'already running'
        with self.log_path.open('ab') as log:
            self._process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not self.answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f'{self.name} did not start:\n{self.log_path.read_text(errors="replace")}')
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the server: no shutdown, no last save."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait(10)


class DurableRedis(DurableServer):
    name = 'redis'

    @property
    def url(self) -> str:
        return f'redis://{self.host}:{self.port}/0'

    def command(self) -> list[str]:
        binary = shutil.which('redis-server')
        if binary is None:
            raise RuntimeError('redis-server is not on PATH: run `make test` (scripts/ensure-redis.sh)')
        return [
            binary,
            '--bind', self.host,
            '--port', str(self.port),
            '--save', '',
            '--appendonly', 'yes',
            '--appendfsync', 'always',
            '--dir', str(self.workdir),
            '--daemonize', 'no',
        ]  # fmt: skip

    def answers(self) -> bool:
        client = redis.Redis(self.host, self.port, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()


class DurableFerretDB(DurableServer):
    name = 'ferretdb'

    @property
    def url(self) -> str:
        return f'mongodb://{self.host}:{self.port}/'

    def command(self) -> list[str]:
        if not FERRETDB_BINARY.exists():
            raise RuntimeError(f'{FERRETDB_BINARY} is missing: run `make tools` (scripts/build-tools.sh)')
        data = self.workdir / 'sqlite'
        data.mkdir(exist_ok=True)
        return [str(FERRETDB_BINARY), f'--listen-addr={self.host}:{self.port}', f'--sqlite-url=file:{data}/']

    def answers(self) -> bool:
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            self.url, serverSelectionTimeoutMS=500, connectTimeoutMS=500
        )
        try:
            client.admin.command('ping')
            return True
        except pymongo.errors.PyMongoError:
            return False
        finally:
            client.close()


SERVERS: dict[str, Callable[[Path], DurableServer]] = {'redis': DurableRedis, 'mongo': DurableFerretDB}


@contextlib.contextmanager
def durable_server(kind: str, workdir: Path, started: bool = True) -> Iterator[DurableServer]:
    """A durable ``redis`` or ``mongo`` (FerretDB) server in ``workdir``, SIGKILLed on exit."""
    server = SERVERS[kind](workdir)
    if started:
        server.start()
    try:
        yield server
    finally:
        server.kill()


def settings_of(kind: str, server: DurableServer) -> dict[str, Any]:
    """Connector settings for the test workers (the ``supervise`` fixture's ``settings``)."""
    if kind == 'mongo':
        return {'type': 'mongo', 'params': {'url': server.url, 'database': 'fault'}}
    return {'type': kind, 'params': {'url': server.url}}
