"""The logstash handlers of Sergeant 0.27 ship JSON documents to a real TCP listener."""

from __future__ import annotations

import json
import logging
import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from sergeant import Task
from sergeant.logging.logstash import BufferedLogstashHandler, LogstashHandler
from tests.supervisor.conftest import wait_until


class Listener(socketserver.ThreadingTCPServer):
    """A TCP server keeping every newline-separated document it receives."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.documents: list[dict[str, object]] = []
        self.connections = 0
        super().__init__(('127.0.0.1', 0), _Receive)

    @property
    def port(self) -> int:
        port: int = self.server_address[1]
        return port


class _Receive(socketserver.StreamRequestHandler):
    server: Listener

    def handle(self) -> None:
        self.server.connections += 1
        for line in self.rfile:
            if line.strip():
                self.server.documents.append(json.loads(line))


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def logger_with(handler: logging.Handler, name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_each_record_is_sent_as_a_document(listener: Listener) -> None:
    # given a 0.27-style handler, constructed with host and port
    logger = logger_with(LogstashHandler('127.0.0.1', listener.port), 'logstash-each')

    # when a worker-like logger logs a task event and an exception
    task = Task(kwargs={'url': 'https://example.com'}, trace_id='trace-1')
    logger.error('task failed', extra={'task': task, 'trace_id': task.trace_id})
    try:
        raise ValueError('boom')
    except ValueError:
        logger.exception('handler failed')

    # then each arrives as a document with 0.27's fields
    wait_until(lambda: len(listener.documents) == 2, 10, 'two documents')
    # one connection per record, each read by its own server thread: they may arrive in either order
    by_message = {document['message']: document for document in listener.documents}
    first, second = by_message['task failed'], by_message['handler failed']
    assert first['level'] == 'ERROR'
    assert first['name'] == 'logstash-each'
    assert first['extra'] == {'task': {'kwargs': {'url': 'https://example.com'}, 'trace_id': 'trace-1',
                                       'date': task.date, 'run_count': 0}, 'trace_id': 'trace-1'}  # fmt: skip
    emitter = first['emitter']
    assert isinstance(emitter, dict)
    assert emitter['function'] == 'test_each_record_is_sent_as_a_document'
    assert emitter['hostname'] == socket.gethostname()
    assert isinstance(first['@timestamp'], str)
    assert 'exception' not in first
    exception = second['exception']
    assert isinstance(exception, dict)
    assert exception['type'] == 'ValueError'
    assert exception['message'] == 'boom'
    assert 'raise ValueError' in str(exception['stacktrace'])
    assert listener.connections == 2


def test_buffered_records_travel_together(listener: Listener) -> None:
    # given a buffered handler sending every 3 records
    handler = BufferedLogstashHandler('127.0.0.1', listener.port, chunk_size=3, max_store_time=3600)
    logger = logger_with(handler, 'logstash-buffered')

    # when 4 records are logged, then the first 3 arrive together
    for number in range(4):
        logger.info('record %d', number)
    wait_until(lambda: len(listener.documents) == 3, 10, 'three documents')
    assert listener.connections == 1

    # and the last one on flush
    handler.flush()
    wait_until(lambda: len(listener.documents) == 4, 10, 'the fourth document')
    assert [document['message'] for document in listener.documents] == [f'record {n}' for n in range(4)]


def test_an_unreachable_logstash_does_not_break_logging(capsys: pytest.CaptureFixture[str]) -> None:
    # given a handler for a port nobody listens on
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    logger = logger_with(LogstashHandler('127.0.0.1', port, timeout=1), 'logstash-down')

    # when a record is logged, then it is dropped with one line on stderr
    logger.error('lost')
    assert f'logstash at 127.0.0.1:{port} failed' in capsys.readouterr().err
