"""Log handlers that ship records to Logstash as JSON over TCP, as in Sergeant 0.27.

Pass one in ``config.Logging(handlers=[LogstashHandler('logstash', 5959)])``.
:class:`LogstashHandler` opens a connection per record; :class:`BufferedLogstashHandler`
keeps records until ``chunk_size`` of them are waiting or ``max_store_time``
seconds passed since it last sent, then sends them over one connection (and on
``flush``/``close``, which the worker calls when its loop ends). Each record is
one JSON document followed by a newline (a Logstash ``tcp`` input with the
``json_lines`` or ``json`` codec reads it)::

    {"@timestamp": "2025-01-02T03:04:05.678000", "message": "task failed", "level": "ERROR",
     "name": "crawl", "emitter": {"hostname", "ipaddress", "pathname", "function", "line"},
     "extra": {"task": {...}, "trace_id": ...}, "exception": {"type", "message", "stacktrace"}}

``@timestamp`` is UTC; ``extra`` holds the attributes given with ``extra=``
(dataclasses such as a Task as dicts); ``exception`` is present when the record
carries one, or when it is logged while an exception is being handled. A failed
send is reported on one line on stderr and the record dropped: logging never
stops a worker.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import logging
import socket
import sys
import time
import traceback
import types
from typing import Any

import orjson

__all__ = ['BaseLogstashHandler', 'BufferedLogstashHandler', 'LogstashHandler']

# attributes every LogRecord has: anything else on a record came from ``extra=``
_BARE_RECORD = logging.LogRecord('', 0, '', 0, None, None, None)
_RECORD_ATTRIBUTES = frozenset(vars(_BARE_RECORD)) | {'asctime', 'message'}

ExcInfo = tuple[type[BaseException], BaseException, types.TracebackType | None]


class BaseLogstashHandler(logging.Handler):
    """Encodes records as Logstash documents and sends them over TCP to ``host:port``."""

    def __init__(self, host: str, port: int, timeout: float | None = 2.0) -> None:
        super().__init__()
        self.host = host
        self.port = port
        self.timeout = timeout
        self.address = (host, port)
        self.hostname = socket.gethostname()
        try:
            self.ipaddress: str | None = socket.gethostbyname(self.hostname)
        except OSError:  # a container's hostname may not resolve
            self.ipaddress = None

    def encode_message(self, record: logging.LogRecord) -> bytes:
        """The record as one JSON document (without the trailing newline)."""
        document: dict[str, Any] = {
            '@timestamp': datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
            .replace(tzinfo=None)
            .isoformat(),
            'message': record.getMessage(),
            'level': record.levelname,
            'name': record.name,
            'emitter': {
                'hostname': self.hostname,
                'ipaddress': self.ipaddress,
                'pathname': record.pathname,
                'function': record.funcName,
                'line': record.lineno,
            },
            'extra': {
                name: _plain(value) for name, value in vars(record).items() if name not in _RECORD_ATTRIBUTES
            },
        }
        exc_info = _exception_of(record)
        if exc_info is not None:
            kind, error, trace = exc_info
            document['exception'] = {
                'type': kind.__name__,
                'message': str(error),
                'stacktrace': ''.join(traceback.format_exception(kind, error, trace)),
            }
        return orjson.dumps(document, default=repr)

    def send(self, documents: list[bytes]) -> bool:
        """Send documents over one connection, each ending with a newline; False when it failed."""
        try:
            with socket.create_connection(self.address, timeout=self.timeout) as connection:
                connection.sendall(b''.join(document + b'\n' for document in documents))
        except OSError as error:
            sys.stderr.write(
                f'sergeant: sending logs to logstash at {self.host}:{self.port} failed: {error}\n'
            )
            return False
        return True


class LogstashHandler(BaseLogstashHandler):
    """Sends each record at once, over a connection of its own."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            document = self.encode_message(record)
        except Exception:
            self.handleError(record)
            return
        self.send([document])


class BufferedLogstashHandler(BaseLogstashHandler):
    """Sends records in chunks: every ``chunk_size`` records, or ``max_store_time`` s after the last send."""

    def __init__(
        self,
        host: str,
        port: int,
        timeout: float | None = 2.0,
        chunk_size: int = 100,
        max_store_time: float = 60.0,
    ) -> None:
        super().__init__(host, port, timeout)
        self.chunk_size = chunk_size
        self.max_store_time = max_store_time
        self.log_queue: collections.deque[bytes] = collections.deque()
        self.last_log_transmission_time = time.time()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.log_queue.append(self.encode_message(record))
        except Exception:
            self.handleError(record)
            return
        waited = record.created - self.last_log_transmission_time
        if len(self.log_queue) >= self.chunk_size or waited >= self.max_store_time:
            self.flush()

    def flush(self) -> None:
        """Send every waiting record; they are dropped if the send fails (as 0.27 did)."""
        self.acquire()  # reentrant: emit holds it already
        try:
            documents = list(self.log_queue)
            self.log_queue.clear()
            self.last_log_transmission_time = time.time()
        finally:
            self.release()
        if documents:
            self.send(documents)

    def close(self) -> None:
        self.flush()
        super().close()


def _exception_of(record: logging.LogRecord) -> ExcInfo | None:
    """The record's exception, else the one being handled while it was logged (0.27's behaviour)."""
    for candidate in (record.exc_info, sys.exc_info()):
        if candidate and candidate[0] is not None and candidate[1] is not None:
            return (candidate[0], candidate[1], candidate[2])
    return None


def _plain(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value
