"""What a worker process tells its supervisor: exit codes and one-line JSON messages.

Shared by both ends (:mod:`.child` writes, :mod:`.process` reads), so it imports
nothing heavy: the supervisor must never load the user's worker code or the
broker drivers just to understand its children.

Each message is one JSON object on one line, written to a pipe whose write end
the supervisor passed to the child:

- ``{"event": "ready"}`` once the worker is built and its broker initialised; when the
  supervisor serves metrics it also carries ``worker`` (the worker's name), ``queue`` and
  ``connector`` (``{"type": ..., "params": {...}}``), so the supervisor can probe the
  broker itself (:class:`sergeant.observability.pool.BrokerTarget`);
- ``{"event": "metrics", ...}`` every second or so while the supervisor serves metrics,
  with the worker's cumulative task counts (:class:`sergeant.metrics.TaskSnapshot`);
- ``{"event": "load_failed", "error": ...}`` when the module or class cannot be loaded;
- ``{"event": "start_failed", "error": ...}`` when building the worker raised;
- ``{"event": "summary", "summary": {...}}`` with the work loop's summary at the end;
  ``unkillable_threads`` in it lists the names of threads tasks left running that
  would not end (:mod:`sergeant.loop.thread_guard`), when there are some.
"""

from __future__ import annotations

import datetime
import enum
import json
from collections.abc import Iterator, Mapping
from typing import Any

CHILD_MODULE = 'sergeant.supervisor.child'

# a traceback in a message is cut to this size so a message always fits in a pipe buffer
MAX_ERROR_CHARS = 8000


class ChildExit(enum.IntEnum):
    """Exit codes of a worker process; 1 and 2 keep their usual Python meanings."""

    FINISHED = 0  # the work loop ended normally: max_tasks_per_run reached or stop signal
    CRASHED = 1  # an exception escaped (Python's own code for that)
    USAGE = 2  # bad command line (argparse's code)
    RESPAWN = 10  # the worker asked to be replaced (Worker.respawn)
    STOP = 11  # the worker asked the whole pool to stop (Worker.stop)
    LOAD_FAILED = 12  # the worker module or class could not be loaded: fatal for the pool
    START_FAILED = 13  # building or initialising the worker raised
    LOOP_FAILED = 14  # the executor raised: the loop ended on an error


class Event(str, enum.Enum):
    READY = 'ready'
    LOAD_FAILED = 'load_failed'
    START_FAILED = 'start_failed'
    SUMMARY = 'summary'
    METRICS = 'metrics'


def _to_json(value: object) -> object:
    """Serialise what a work loop summary holds besides JSON types."""
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, BaseException):
        return f'{type(value).__name__}: {value}'
    return repr(value)


def encode_message(event: Event, **fields: Any) -> bytes:
    """One message as a JSON line."""
    return json.dumps({'event': event.value, **fields}, default=_to_json).encode() + b'\n'


class MessageReader:
    """Splits the bytes read from one child's pipe into messages.

    A line that is not a JSON object (a child cannot corrupt the supervisor) is
    returned as ``{"event": "garbled", "line": ...}``.
    """

    def __init__(self) -> None:
        self._pending = b''

    def feed(self, data: bytes) -> Iterator[Mapping[str, Any]]:
        self._pending += data
        *lines, self._pending = self._pending.split(b'\n')
        for line in lines:
            if line.strip():
                yield _decode(line)


def _decode(line: bytes) -> Mapping[str, Any]:
    try:
        message = json.loads(line)
    except ValueError:
        message = None
    if not isinstance(message, dict) or not isinstance(message.get('event'), str):
        return {'event': 'garbled', 'line': line[:200].decode(errors='replace')}
    return message
