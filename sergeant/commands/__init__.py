"""The operating commands of ``sergeant``: queues, dead letters, push and purge.

They work through the library's own connectors, so they behave the same on Redis,
MongoDB (or FerretDB) and the local SQLite broker. One module per command group:
:mod:`.queues` (``sergeant queues``), :mod:`.dlq` (``sergeant dlq list|show|requeue|purge``),
:mod:`.tasks` (``sergeant push``, ``sergeant purge``); :mod:`.broker` names the broker
and decides what may be decoded, :mod:`.console` holds exit codes, tables,
confirmation and interruptible batches. Above the supervisor in the layers,
beside :mod:`sergeant.cli`, which adds these commands to its parser.
"""

from __future__ import annotations

import argparse

from .console import CommandExit
from .dlq import add_dlq_command
from .queues import add_queues_command
from .tasks import add_task_commands

__all__ = ['CommandExit', 'add_commands']


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``queues``, ``dlq``, ``push`` and ``purge`` to the ``sergeant`` parser."""
    add_queues_command(subparsers)
    add_dlq_command(subparsers)
    add_task_commands(subparsers)
