"""``sergeant queues``: every queue with its counts and the age of its next task.

READY counts what a worker can take now (due delayed tasks and tasks of expired
leases included), DELAYED the tasks not due yet, IN FLIGHT the tasks leased by
workers, DEAD the dead letters. OLDEST is how long the task next in line has waited
since it was pushed (the oldest one, unless HIGH priority tasks went ahead of it);
``-`` when none is ready or the broker cannot tell.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import orjson

from ..connector import Connector
from .broker import add_broker_arguments, open_broker
from .console import CommandError, CommandExit, age, command, print_table, timestamp

HEADERS = ('QUEUE', 'READY', 'DELAYED', 'IN FLIGHT', 'DEAD', 'OLDEST')


def add_queues_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        'queues',
        help='list queues with ready, delayed, in-flight and dead-letter counts',
        description='Every queue of the broker (or the QUEUEs named) with its ready, delayed, in-flight and '
        'dead-letter counts and the age of the task next in line.',
    )
    parser.add_argument('queues', nargs='*', metavar='QUEUE', help='only these queues (default: every queue)')
    parser.add_argument('--json', action='store_true', help='one JSON object per queue, in a list')
    parser.add_argument(
        '--watch',
        nargs='?',
        const=2.0,
        type=float,
        metavar='SECONDS',
        help='refresh every SECONDS (default 2) until Ctrl-C; with --json, one list per line',
    )
    add_broker_arguments(parser)
    parser.set_defaults(handler=command(run_queues), command_parser=parser)


def queue_rows(connector: Connector, names: list[str]) -> list[dict[str, Any]]:
    now = time.time()
    rows = []
    for queue in names or connector.queues():
        ready = connector.length(queue)
        pushed = connector.head_pushed_at(queue)
        rows.append(
            {
                'queue': queue,
                'ready': ready,
                'delayed': connector.length(queue, include_delayed=True) - ready,
                'in_flight': connector.in_flight(queue),
                'dead_letters': connector.dead_letter_length(queue),
                'oldest_age_seconds': None if pushed is None else round(max(0.0, now - pushed), 3),
            }
        )
    return rows


def run_queues(arguments: argparse.Namespace) -> int:
    if arguments.watch is not None and arguments.watch <= 0:
        raise CommandError('--watch: must be a number of seconds > 0', CommandExit.USAGE)
    broker = open_broker(arguments)
    try:
        while True:
            rows = queue_rows(broker.connector, arguments.queues)
            _show(rows, arguments, broker.where)
            if arguments.watch is None:
                return CommandExit.OK
            try:
                time.sleep(arguments.watch)
            except KeyboardInterrupt:
                return CommandExit.OK
    finally:
        broker.close()


def _show(rows: list[dict[str, Any]], arguments: argparse.Namespace, where: str) -> None:
    if arguments.json:
        sys.stdout.write(orjson.dumps(rows).decode() + '\n')
        sys.stdout.flush()
        return
    if arguments.watch is not None and sys.stdout.isatty():
        sys.stdout.write('\x1b[H\x1b[2J')  # home, clear: the table redrawn in place
    if arguments.watch is not None:
        print(f'{where} at {timestamp(time.time())} (every {arguments.watch:g} s, Ctrl-C to stop)')
    if not rows:
        print('no queues')
    else:
        table = [
            (
                row['queue'],
                row['ready'],
                row['delayed'],
                row['in_flight'],
                row['dead_letters'],
                age(row['oldest_age_seconds']),
            )
            for row in rows
        ]
        print_table(HEADERS, table)
    sys.stdout.flush()
