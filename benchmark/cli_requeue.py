"""How fast ``sergeant dlq requeue`` and ``sergeant dlq purge`` move dead letters, per broker.

For each broker (a throwaway Redis, FerretDB from ``make tools``, a SQLite file):
store N dead letters (JSON-encoded tasks), then time, as the operator runs them
(``python -m sergeant`` in a subprocess, no terminal):

* ``dlq requeue Q --all``: letters moved as they are, in batches of 1,000;
* ``dlq requeue Q --all --reset-retries``: each task decoded, its retries reset, re-encoded;
* ``dlq purge Q --yes``.

After each step the counts are checked (every letter moved once, none left).
Prints a Markdown table. Not part of the tests; run it with::

    .venv/bin/python benchmark/cli_requeue.py [--count 100000] [--brokers redis,mongo,sqlite]
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / 'benchmark')]

from harness.server import running_redis  # noqa: E402

from sergeant import config  # noqa: E402
from sergeant.codec import TaskCodec  # noqa: E402
from sergeant.connector import Connector, DeadLetter, create_connector  # noqa: E402
from sergeant.encoder import Encoder  # noqa: E402
from sergeant.objects import Task  # noqa: E402
from tests.servers.ferretdb import running_ferretdb  # noqa: E402

QUEUE = 'bench-dlq'
FILL_BATCH = 10_000


@contextlib.contextmanager
def broker_url(kind: str, workdir: Path) -> Iterator[tuple[str, Connector]]:
    """The URL of a fresh broker of this kind, and a connector on it."""
    if kind == 'redis':
        with running_redis() as server:
            yield server.url, create_connector('redis', {'url': server.url})
    elif kind == 'mongo':
        with running_ferretdb(workdir / 'ferretdb') as server:
            url = f'{server.url}bench'
            yield url, create_connector('mongo', {'url': url})
    else:
        path = workdir / 'broker.sqlite3'
        yield f'sqlite://{path}', create_connector('local', {'file_path': str(path)})


def fill(connector: Connector, count: int) -> float:
    """Store ``count`` dead letters (tasks on their fourth attempt); return the seconds it took."""
    codec = TaskCodec(connector, Encoder(config.Encoder(serializer='json')))
    started = time.perf_counter()
    for start in range(0, count, FILL_BATCH):
        letters = [
            DeadLetter(codec.encode_task(Task(kwargs={'i': i}, run_count=3)), 'max retries exceeded')
            for i in range(start, min(count, start + FILL_BATCH))
        ]
        connector.dead_letter(QUEUE, letters)
    return time.perf_counter() - started


def timed_command(url: str, *arguments: str) -> float:
    command = [sys.executable, '-m', 'sergeant', *arguments, '--serializer', 'json', '--broker', url]
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO_ROOT, check=True, stdin=subprocess.DEVNULL, capture_output=True)
    return time.perf_counter() - started


def measure(kind: str, count: int) -> dict[str, float]:
    with (
        tempfile.TemporaryDirectory(prefix='sergeant-cli-bench-') as workdir,
        broker_url(kind, Path(workdir)) as (
            url,
            connector,
        ),
    ):
        figures = {'fill': fill(connector, count)}
        figures['requeue'] = timed_command(url, 'dlq', 'requeue', QUEUE, '--all')
        assert connector.dead_letter_length(QUEUE) == 0
        assert connector.length(QUEUE) == count, connector.length(QUEUE)
        connector.delete(QUEUE)
        fill(connector, count)
        figures['requeue_reset'] = timed_command(url, 'dlq', 'requeue', QUEUE, '--all', '--reset-retries')
        assert connector.dead_letter_length(QUEUE) == 0
        assert connector.length(QUEUE) == count
        connector.delete(QUEUE)
        fill(connector, count)
        figures['purge'] = timed_command(url, 'dlq', 'purge', QUEUE, '--yes')
        assert connector.dead_letter_length(QUEUE) == 0
        connector.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--count', type=int, default=100_000, help='dead letters per broker (default 100000)')
    parser.add_argument(
        '--brokers', default='redis,sqlite,mongo', help='comma-separated: redis, sqlite, mongo'
    )
    arguments = parser.parse_args()
    print(f'{arguments.count} dead letters per broker; seconds, and letters per second')
    print()
    print('| broker | fill | requeue --all | requeue --all --reset-retries | dlq purge |')
    print('| --- | --- | --- | --- | --- |')
    for kind in arguments.brokers.split(','):
        figures = measure(kind, arguments.count)
        cells = [
            f'{figures[step]:.1f} s ({arguments.count / figures[step]:,.0f}/s)'
            for step in ('fill', 'requeue', 'requeue_reset', 'purge')
        ]
        print(f'| {kind} | ' + ' | '.join(cells) + ' |', flush=True)


if __name__ == '__main__':
    main()
