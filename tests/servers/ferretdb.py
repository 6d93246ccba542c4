"""A real FerretDB server (MongoDB wire protocol on SQLite) for tests.

The binary is built by ``make tools`` (scripts/tools/ferretdb.sh) into
``.tools/bin/ferretdb``. Each server listens on a free loopback port and keeps its
SQLite files and its log inside the given work directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
import subprocess
import time
from collections.abc import Iterator

import pymongo
import pymongo.errors

from .ports import free_port

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
FERRETDB_BINARY = REPO_ROOT / '.tools' / 'bin' / 'ferretdb'
START_TIMEOUT = 15.0


@dataclasses.dataclass(frozen=True)
class FerretDBServer:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f'mongodb://{self.host}:{self.port}/'


@contextlib.contextmanager
def running_ferretdb(workdir: pathlib.Path) -> Iterator[FerretDBServer]:
    """Start FerretDB in ``workdir``, wait until it answers a ping, stop it on exit."""
    if not FERRETDB_BINARY.exists():
        raise RuntimeError(f'{FERRETDB_BINARY} is missing: run `make tools` (scripts/build-tools.sh) first')
    data = workdir / 'sqlite'
    data.mkdir(parents=True, exist_ok=True)
    log_path = workdir / 'ferretdb.log'
    server = FerretDBServer('127.0.0.1', free_port())
    command = [
        str(FERRETDB_BINARY),
        f'--listen-addr={server.host}:{server.port}',
        f'--sqlite-url=file:{data}/',
    ]
    with open(log_path, 'wb') as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        _wait_until_ready(server, process, log_path)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_ready(
    server: FerretDBServer, process: subprocess.Popen[bytes], log_path: pathlib.Path
) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        server.url, serverSelectionTimeoutMS=500, connectTimeoutMS=500
    )
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f'FerretDB exited with code {process.returncode}:\n{_tail(log_path)}')
            try:
                client.admin.command('ping')
                return
            except pymongo.errors.PyMongoError:
                time.sleep(0.1)
    finally:
        client.close()
    raise RuntimeError(f'FerretDB did not answer a ping within {START_TIMEOUT:.0f} s:\n{_tail(log_path)}')


def _tail(log_path: pathlib.Path, lines: int = 40) -> str:
    try:
        return '\n'.join(log_path.read_text(errors='replace').splitlines()[-lines:])
    except OSError as error:
        return f'(no log: {error})'
