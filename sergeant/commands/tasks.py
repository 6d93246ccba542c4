"""``sergeant push`` and ``sergeant purge``: put one task on a queue, or empty a queue.

``push`` encodes the task as a worker's producer would (the broker's encoder,
signed when a key is set). ``purge`` deletes the queue's ready, delayed and
in-flight tasks in one connector call; its dead letters stay (``sergeant dlq purge``).
"""

from __future__ import annotations

import argparse
import time

import orjson

from ..connector.base import PRIORITIES
from ..objects import Task
from .broker import add_broker_arguments, open_broker
from .console import CommandError, CommandExit, command, confirm


def add_task_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    push = subparsers.add_parser(
        'push',
        help='push one task to a queue',
        description='Push one task, its kwargs given as a JSON object, encoded as the workers expect it.',
    )
    push.add_argument('queue', metavar='QUEUE')
    push.add_argument(
        '--kwargs', required=True, metavar='JSON', help='the task\'s kwargs, e.g. \'{"url": "..."}\''
    )
    push.add_argument(
        '--priority', choices=PRIORITIES, default='NORMAL', help='HIGH goes first (default NORMAL)'
    )
    push.add_argument(
        '--delay', type=float, default=0.0, metavar='SECONDS', help='run it no sooner than this'
    )
    push.add_argument('--trace-id', metavar='ID', help='a trace id the worker logs with the task')
    add_broker_arguments(push)
    push.set_defaults(handler=command(run_push), command_parser=push)

    purge = subparsers.add_parser(
        'purge',
        help="delete a queue's tasks (its dead letters stay)",
        description="Delete a queue's ready, delayed and in-flight tasks; asks first on a terminal. "
        'Its dead letters stay: see sergeant dlq purge.',
    )
    purge.add_argument('queue', metavar='QUEUE')
    purge.add_argument('--yes', action='store_true', help='do not ask for confirmation')
    add_broker_arguments(purge)
    purge.set_defaults(handler=command(run_purge), command_parser=purge)


def run_push(arguments: argparse.Namespace) -> int:
    try:
        kwargs = orjson.loads(arguments.kwargs)
    except orjson.JSONDecodeError as error:
        raise CommandError(f'--kwargs: not JSON: {error}', CommandExit.USAGE) from None
    if not isinstance(kwargs, dict):
        raise CommandError(f'--kwargs: must be a JSON object, got {type(kwargs).__name__}', CommandExit.USAGE)
    if not arguments.delay >= 0 or arguments.delay == float('inf'):
        raise CommandError('--delay: must be a number of seconds >= 0', CommandExit.USAGE)
    consumable_from = time.time() + arguments.delay if arguments.delay > 0 else None
    broker = open_broker(arguments)
    try:
        task = Task(kwargs=kwargs, trace_id=arguments.trace_id)
        broker.codec.push_tasks(arguments.queue, [task], arguments.priority, consumable_from)
    finally:
        broker.close()
    delayed = f', due in {arguments.delay:g} s' if consumable_from is not None else ''
    print(f'pushed 1 task to {arguments.queue} ({arguments.priority}{delayed})')
    return CommandExit.OK


def run_purge(arguments: argparse.Namespace) -> int:
    queue = arguments.queue
    broker = open_broker(arguments)
    try:
        connector = broker.connector
        waiting = connector.length(queue, include_delayed=True)
        in_flight = connector.in_flight(queue)
        if waiting + in_flight == 0:
            print(f'no tasks in {queue}')
            return CommandExit.OK
        confirm(
            f'Delete the {waiting} waiting and {in_flight} in-flight tasks of {queue} on {broker.where}?',
            arguments.yes,
        )
        connector.delete(queue)
    finally:
        broker.close()
    print(f'deleted the tasks of {queue} ({waiting} waiting, {in_flight} in flight); its dead letters stay')
    return CommandExit.OK
