"""One JSON object per log line, for container log pipelines (Loki, Fluent Bit, CloudWatch, ...).

Every line has the same keys, ``null`` when they do not apply::

    {"timestamp": "2025-01-02T03:04:05.678Z", "level": "ERROR", "logger": "crawl",
     "worker": "crawl", "pid": 12, "event": "task failed", "trace_id": "7f3a...",
     "exception": "Traceback (most recent call last): ..."}

``event`` is the formatted message and ``exception`` the formatted traceback.
``worker`` and ``trace_id`` come from the record when it carries them (``extra=``),
else from the formatter: the worker's name, and the trace id of the task the
logging thread is running.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable

import orjson

__all__ = ['JsonLinesFormatter']


class JsonLinesFormatter(logging.Formatter):
    """Formats a record as one line of JSON (see the module docstring for its keys)."""

    def __init__(self, worker: str | None = None, trace_id: Callable[[], str | None] | None = None) -> None:
        super().__init__()
        self._worker = worker
        self._trace_id = trace_id

    def format(self, record: logging.LogRecord) -> str:
        trace_id = getattr(record, 'trace_id', None)
        if trace_id is None and self._trace_id is not None:
            trace_id = self._trace_id()
        exception = None
        if record.exc_info:
            exception = self.formatException(record.exc_info)
        elif record.exc_text:
            exception = record.exc_text
        entry = {
            'timestamp': _timestamp(record.created),
            'level': record.levelname,
            'logger': record.name,
            'worker': getattr(record, 'worker', self._worker),
            'pid': record.process,
            'event': record.getMessage(),
            'trace_id': trace_id,
            'exception': exception,
        }
        # orjson never writes a raw newline: the entry stays on one line whatever the message holds
        return orjson.dumps(entry, default=repr).decode()


def _timestamp(created: float) -> str:
    moment = datetime.datetime.fromtimestamp(created, datetime.timezone.utc)
    return moment.isoformat(timespec='milliseconds').replace('+00:00', 'Z')
