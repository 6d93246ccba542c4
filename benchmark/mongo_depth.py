"""The MongoDB connector at depth (issue 16) and a 100,000-letter dead-letter requeue (issue 17), on FerretDB.

Starts a private FerretDB (``.tools/bin/ferretdb``, built by ``make tools``; SQLite
backend). For each depth, in a fresh database: fill a queue with that many tasks
(bulk pushes of at most 1,000: a tenth HIGH, a tenth delayed an hour, so claims step
over both; one row fills 10,000 by single pushes instead), then consume up to
``--consume`` tasks as one worker does with batches of 10 (``pop(..., ack=<the
previous batch>)``) and report tasks per second. Then store 100,000 dead letters and
time ``sergeant dlq requeue Q --all`` in a subprocess.

Targets (pass/fail lines): the rate at every depth at least half the rate at 200;
the dead-letter requeue finishes (and moves every letter once).

    .venv/bin/python benchmark/mongo_depth.py
    .venv/bin/python benchmark/mongo_depth.py --depths 200 10000 --consume 500 --dead-letters 10000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / 'benchmark')]

import cli_requeue  # noqa: E402

from sergeant.connector import Connector, create_connector  # noqa: E402
from tests.servers.ferretdb import running_ferretdb  # noqa: E402

PUSH_BATCH = 1000
PAYLOAD = b'x' * 100
QUEUE = 'depth'
TARGET_RATIO = 0.5


def fill(connector: Connector, depth: int, single: bool) -> float:
    """Push ``depth`` tasks (10 % HIGH, 10 % delayed an hour, the rest NORMAL); return seconds taken."""
    started = time.perf_counter()
    later = time.time() + 3600
    kinds: list[tuple[Any, float | None]] = [('NORMAL', None)] * 8 + [('HIGH', None), ('NORMAL', later)]
    pushed = 0
    turn = 0
    while pushed < depth:
        priority, consumable_from = kinds[turn % len(kinds)]
        size = 1 if single else min(PUSH_BATCH, depth - pushed, max(1, depth // 10))
        connector.push(QUEUE, [PAYLOAD] * size, priority, consumable_from)
        pushed += size
        turn += 1
    return time.perf_counter() - started


def consume(connector: Connector, tasks: int, batch: int) -> float:
    """Pop and acknowledge ``tasks`` tasks in batches; return tasks per second."""
    done = 0
    receipts: list[bytes] = []
    started = time.perf_counter()
    while done < tasks:
        messages = connector.pop(QUEUE, min(batch, tasks - done), 60.0, ack=receipts)
        if not messages:
            raise RuntimeError(f'queue ran dry after {done} tasks')
        receipts = [message.receipt for message in messages]
        done += len(messages)
    connector.ack(QUEUE, receipts)
    return tasks / (time.perf_counter() - started)


def measure_depths(url: str, depths: list[int], consume_count: int, batch: int) -> list[dict[str, Any]]:
    rows = []
    cases = [(depth, False) for depth in depths] + [(10_000, True)]
    for depth, single in cases:
        connector = create_connector('mongo', {'url': url, 'database': f'depth_{uuid.uuid4().hex[:8]}'})
        try:
            seconds = fill(connector, depth, single)
            tasks = min(consume_count, depth * 8 // 10)
            rate = consume(connector, tasks, batch)
            left = connector.length(QUEUE, include_delayed=True)
        finally:
            connector.close()
        if left != depth - tasks:
            raise RuntimeError(f'depth {depth}: {left} tasks left, expected {depth - tasks}')
        label = f'{depth:,}' + (' (single pushes)' if single else '')
        rows.append({'depth': label, 'fill_seconds': seconds, 'tasks': tasks, 'rate': rate})
        print(f'depth {label}: filled in {seconds:.1f} s, {tasks} tasks at {rate:.1f} tasks/s', flush=True)
    return rows


def markdown_lines(rows: list[dict[str, Any]], requeue: dict[str, float] | None, letters: int) -> list[str]:
    base = rows[0]['rate']
    lines = [
        '## MongoDB at depth (FerretDB 1.24, SQLite)',
        '',
        'One worker, batches of 10, a queue with a tenth HIGH and a tenth delayed tasks.',
        '',
        '| depth | fill (s) | tasks consumed | tasks/s | vs first | verdict |',
        '| --- | ---: | ---: | ---: | ---: | --- |',
    ]
    for row in rows:
        ratio = row['rate'] / base
        verdict = 'PASS' if ratio >= TARGET_RATIO else 'FAIL'
        lines.append(
            f'| {row["depth"]} | {row["fill_seconds"]:.1f} | {row["tasks"]} | {row["rate"]:.1f} '
            f'| {ratio:.2f} | {verdict} (>= {TARGET_RATIO}) |'
        )
    if requeue is not None:
        lines += ['', f'`sergeant dlq requeue --all` of {letters:,} dead letters on FerretDB:', '']
        if 'error' in requeue:
            lines.append(f'FAIL: {requeue["error"]}')
        else:
            seconds = requeue['requeue']
            lines.append(
                f'PASS: {seconds:.1f} s ({letters / seconds:,.0f} letters/s), '
                f'filled in {requeue["fill"]:.1f} s, every letter moved once'
            )
    return lines


def measure_requeue(url: str, letters: int) -> dict[str, float]:
    database = f'{url}dlq_{uuid.uuid4().hex[:8]}'
    connector = create_connector('mongo', {'url': database})
    try:
        figures = {'fill': cli_requeue.fill(connector, letters)}
        figures['requeue'] = cli_requeue.timed_command(database, 'dlq', 'requeue', cli_requeue.QUEUE, '--all')
        if connector.dead_letter_length(cli_requeue.QUEUE) != 0:
            raise RuntimeError('dead letters left after requeue --all')
        if connector.length(cli_requeue.QUEUE) != letters:
            raise RuntimeError(f'{connector.length(cli_requeue.QUEUE)} tasks queued, expected {letters}')
    finally:
        connector.close()
    return figures


def run_section(depths: list[int], consume_count: int, batch: int, letters: int) -> list[str]:
    """Run everything on a private FerretDB; return the report's Markdown lines."""
    with (
        tempfile.TemporaryDirectory(prefix='mongo-depth-') as workdir,
        running_ferretdb(Path(workdir)) as server,
    ):
        rows = measure_depths(server.url, depths, consume_count, batch)
        requeue: dict[str, Any] | None = None
        if letters > 0:
            try:
                requeue = measure_requeue(server.url, letters)
            except Exception as error:  # reported as a FAIL line, the run goes on
                requeue = {'error': repr(error)}
    return markdown_lines(rows, requeue, letters)


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument('--depths', type=int, nargs='+', default=[200, 10_000, 100_000])
    parser.add_argument('--consume', type=int, default=1000, help='tasks per depth (default 1000)')
    parser.add_argument('--batch', type=int, default=10)
    parser.add_argument('--dead-letters', type=int, default=100_000, help='0 skips the requeue figure')
    arguments = parser.parse_args()
    lines = run_section(arguments.depths, arguments.consume, arguments.batch, arguments.dead_letters)
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
