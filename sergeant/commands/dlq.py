"""``sergeant dlq``: look into a queue's dead letters, put them back, or delete them.

``list`` and ``show`` decode a letter's task only where :class:`~.broker.Reader`
allows it. ``requeue`` and ``purge`` work in batches (``--batch-size``), each one
atomic in the connector (a Lua script, a SQLite transaction, MongoDB's claim
ledger): a SIGINT or SIGTERM stops them between two batches, every letter then
either moved or still a dead letter, and running the command again goes on.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import orjson

from ..connector import DeadLetter
from .broker import Broker, Reader, add_broker_arguments, add_unpickle_argument, open_broker
from .console import Batches, CommandError, CommandExit, command, confirm, print_table, timestamp

DEFAULT_BATCH = 1000
HEADERS = ('ID', 'FAILED AT', 'ATTEMPTS', 'TRACE ID', 'SIZE', 'REASON')


def add_dlq_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dlq = subparsers.add_parser(
        'dlq',
        help="look into a queue's dead letters, requeue or purge them",
        description='The dead letters of a queue: tasks that used up their retries or could not be decoded.',
    )
    actions = dlq.add_subparsers(dest='action', metavar='ACTION', required=True)

    listing = actions.add_parser('list', help='list dead letters, oldest first')
    listing.add_argument('queue', metavar='QUEUE')
    listing.add_argument('--limit', type=int, default=100, metavar='N', help='show at most N (default 100)')
    listing.add_argument('--json', action='store_true', help='JSON instead of a table')
    add_unpickle_argument(listing)
    add_broker_arguments(listing)
    listing.set_defaults(handler=command(run_list), command_parser=listing)

    show = actions.add_parser('show', help='one dead letter, with its task when it can be decoded safely')
    show.add_argument('queue', metavar='QUEUE')
    show.add_argument('id', metavar='ID', help='as dlq list shows it')
    show.add_argument('--json', action='store_true', help='JSON instead of text')
    add_unpickle_argument(show)
    add_broker_arguments(show)
    show.set_defaults(handler=command(run_show), command_parser=show)

    requeue = actions.add_parser('requeue', help='move dead letters back to the queue')
    requeue.add_argument('queue', metavar='QUEUE')
    requeue.add_argument('ids', nargs='*', metavar='ID', help='the dead letters to move (or --all)')
    requeue.add_argument('--all', action='store_true', help='move every dead letter of the queue')
    requeue.add_argument(
        '--reset-retries',
        action='store_true',
        help='start their retry count again from 0 (decodes and re-encodes the tasks; '
        'letters that cannot be decoded are moved as they are)',
    )
    _add_batch_argument(requeue)
    add_unpickle_argument(requeue)
    add_broker_arguments(requeue)
    requeue.set_defaults(handler=command(run_requeue), command_parser=requeue)

    purge = actions.add_parser('purge', help='delete every dead letter of the queue')
    purge.add_argument('queue', metavar='QUEUE')
    purge.add_argument('--yes', action='store_true', help='do not ask for confirmation')
    _add_batch_argument(purge)
    add_broker_arguments(purge)
    purge.set_defaults(handler=command(run_purge), command_parser=purge)


def _add_batch_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--batch-size',
        type=int,
        default=DEFAULT_BATCH,
        metavar='N',
        help=f'letters per atomic step; an interruption stops between two (default {DEFAULT_BATCH})',
    )


def _letter_fields(letter: DeadLetter, reader: Reader) -> dict[str, Any]:
    decoded = reader.read(letter.payload)
    task = decoded.task
    return {
        'id': letter.id,
        'failed_at': letter.failed_at,
        'reason': letter.reason,
        'size': len(letter.payload),
        'decoded': task is not None,
        'not_decoded_because': decoded.problem or None,
        'attempts': None if task is None else task.run_count + 1,
        'trace_id': None if task is None else task.trace_id,
        'created_at': None if task is None else task.date,
        'kwargs': None if task is None else task.kwargs,
    }


def run_list(arguments: argparse.Namespace) -> int:
    if arguments.limit < 0:
        raise CommandError('--limit: must be >= 0', CommandExit.USAGE)
    broker = open_broker(arguments)
    try:
        reader = Reader(broker, arguments.unsafe_unpickle)
        total = broker.connector.dead_letter_length(arguments.queue)
        letters = broker.connector.dead_letters(arguments.queue, arguments.limit)
    finally:
        broker.close()
    fields = [_letter_fields(letter, reader) for letter in letters]
    failed = [letter.failed_at for letter in letters]
    first, last = (min(failed), max(failed)) if failed else (None, None)
    if arguments.json:
        for entry in fields:
            del entry['kwargs'], entry['created_at']
        summary = {'queue': arguments.queue, 'dead_letters': total, 'shown': len(fields)}
        summary |= {'first_failure': first, 'last_failure': last, 'letters': fields}
        print(orjson.dumps(summary, default=repr).decode())
        return CommandExit.OK
    shown = f' (the oldest {len(fields)} shown)' if len(fields) < total else ''
    print(f'{total} dead letters in {arguments.queue}{shown}')
    if fields:
        print(f'failures from {timestamp(first)} to {timestamp(last)}')
        rows = [
            (
                entry['id'],
                timestamp(entry['failed_at']),
                '?' if entry['attempts'] is None else entry['attempts'],
                entry['trace_id'] or '-',
                entry['size'],
                entry['reason'],
            )
            for entry in fields
        ]
        print_table(HEADERS, rows)
    if fields and reader.refused:
        print(f'attempts and trace ids not shown: {reader.refusal}', file=sys.stderr)
    return CommandExit.OK


def run_show(arguments: argparse.Namespace) -> int:
    broker = open_broker(arguments)
    try:
        reader = Reader(broker, arguments.unsafe_unpickle)
        found = broker.connector.find_dead_letters(arguments.queue, [arguments.id])
    finally:
        broker.close()
    if not found:
        raise CommandError(
            f'no dead letter {arguments.id!r} in queue {arguments.queue!r}', CommandExit.NOT_FOUND
        )
    fields = _letter_fields(found[0], reader)
    fields['signature'] = _signature(reader, fields)
    if arguments.json:
        print(orjson.dumps({'queue': arguments.queue, **fields}, default=repr).decode())
        return CommandExit.OK
    lines = [
        ('id', fields['id']),
        ('queue', arguments.queue),
        ('failed at', timestamp(fields['failed_at'])),
        ('reason', fields['reason']),
        ('size', f'{fields["size"]} bytes'),
        ('signature', fields['signature']),
    ]
    if fields['decoded']:
        lines += [
            ('attempts', fields['attempts']),
            ('trace id', fields['trace_id'] or '-'),
            ('created at', timestamp(fields['created_at'])),
        ]
    for label, value in lines:
        print(f'{label + ":":<11} {value}')
    if fields['decoded']:
        kwargs = orjson.dumps(
            fields['kwargs'], default=repr, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
        )
        print('kwargs:')
        print(kwargs.decode())
    else:
        print(f'kwargs:     not shown ({fields["not_decoded_because"]})')
        if reader.refused:
            print(reader.refusal, file=sys.stderr)
    return CommandExit.OK


def _signature(reader: Reader, fields: dict[str, Any]) -> str:
    if not reader.signed:
        return 'none (no signing key)'
    if fields['decoded']:
        return 'verified'
    problem: str = fields['not_decoded_because']
    return 'refused' if problem.startswith('signature refused') else 'verified (not a task)'


def run_requeue(arguments: argparse.Namespace) -> int:
    if arguments.all == bool(arguments.ids):
        raise CommandError('give the IDs of the dead letters to requeue, or --all', CommandExit.USAGE)
    _check_batch_size(arguments)
    broker = open_broker(arguments)
    try:
        reader = Reader(broker, arguments.unsafe_unpickle)
        if arguments.reset_retries and reader.refused:
            raise CommandError(
                f'--reset-retries has to decode the tasks, and {reader.refusal}', CommandExit.USAGE
            )
        if arguments.all:
            return _requeue_all(broker, reader, arguments)
        return _requeue_ids(broker, reader, arguments)
    finally:
        broker.close()


def _requeue_all(broker: Broker, reader: Reader, arguments: argparse.Namespace) -> int:
    queue, connector = arguments.queue, broker.connector
    total = connector.dead_letter_length(queue)
    batches = Batches(f'requeueing {queue}', total, arguments.batch_size)
    moved = unchanged = 0

    def step(size: int) -> int:
        nonlocal moved, unchanged
        if not arguments.reset_retries:
            done = connector.requeue_dead_letters(queue, size)
            moved += done
            return done
        letters = connector.dead_letters(queue, size)
        payloads, undecodable = _reset(reader, letters)
        done = connector.requeue_dead_letters_by_id(queue, [letter.id for letter in letters], payloads)
        moved += done
        unchanged += undecodable
        # none of them moved: another requeue is moving them; stop rather than spin
        return len(letters) if done else 0

    batches.run(step)
    return _report(batches, moved, total, queue, unchanged)


def _requeue_ids(broker: Broker, reader: Reader, arguments: argparse.Namespace) -> int:
    queue, connector = arguments.queue, broker.connector
    ids = list(dict.fromkeys(arguments.ids))
    letters = connector.find_dead_letters(queue, ids)
    missing = [letter_id for letter_id in ids if letter_id not in {letter.id for letter in letters}]
    batches = Batches(f'requeueing {queue}', len(letters), arguments.batch_size)
    moved = unchanged = 0
    position = 0

    def step(size: int) -> int:
        nonlocal moved, unchanged, position
        part = letters[position : position + size]
        position += len(part)
        payloads: dict[str, bytes] = {}
        if arguments.reset_retries:
            payloads, undecodable = _reset(reader, part)
            unchanged += undecodable
        moved += connector.requeue_dead_letters_by_id(queue, [letter.id for letter in part], payloads)
        return len(part)

    batches.run(step)
    code = _report(batches, moved, len(letters), queue, unchanged)
    if missing and code == CommandExit.OK:
        raise CommandError(
            f'not found in the dead letters of {queue!r}: {", ".join(missing)}', CommandExit.NOT_FOUND
        )
    return code


def _reset(reader: Reader, letters: Sequence[DeadLetter]) -> tuple[dict[str, bytes], int]:
    """New payloads for the letters, their retry count back at 0; and how many could not be decoded."""
    payloads: dict[str, bytes] = {}
    for letter in letters:
        task = reader.read(letter.payload).task
        if task is not None:
            task.run_count = 0
            payloads[letter.id] = reader.encode(task)
    return payloads, len(letters) - len(payloads)


def _report(batches: Batches, moved: int, total: int, queue: str, unchanged: int) -> int:
    if unchanged:
        print(f'{unchanged} letters could not be decoded: requeued as they were', file=sys.stderr)
    if batches.stopped_by is not None:
        print(
            f'interrupted: {moved} of {total} dead letters of {queue} requeued, the others are still dead '
            'letters; run the command again to go on',
            file=sys.stderr,
        )
        return CommandExit.INTERRUPTED
    print(f'requeued {moved} dead letters of {queue}')
    return CommandExit.OK


def run_purge(arguments: argparse.Namespace) -> int:
    _check_batch_size(arguments)
    queue = arguments.queue
    broker = open_broker(arguments)
    try:
        connector = broker.connector
        total = connector.dead_letter_length(queue)
        if total == 0:
            print(f'no dead letters in {queue}')
            return CommandExit.OK
        confirm(f'Delete the {total} dead letters of {queue} on {broker.where}?', arguments.yes)
        batches = Batches(f'purging dead letters of {queue}', total, arguments.batch_size)
        deleted = batches.run(lambda size: connector.purge_dead_letters(queue, size))
    finally:
        broker.close()
    if batches.stopped_by is not None:
        print(f'interrupted: {deleted} of {total} dead letters of {queue} deleted', file=sys.stderr)
        return CommandExit.INTERRUPTED
    print(f'deleted {deleted} dead letters of {queue}')
    return CommandExit.OK


def _check_batch_size(arguments: argparse.Namespace) -> None:
    if arguments.batch_size < 1:
        raise CommandError('--batch-size: must be >= 1', CommandExit.USAGE)
