"""The Logstash handlers (``sergeant.logging.logstash``) as ``Logging.handlers`` of a worker on Redis.

A ``LogstashHandler`` and a ``BufferedLogstashHandler`` (``chunk_size=2``) each send to a
TCP server of the program's own. The worker logs a record with ``extra``, one while an
exception is being handled, and, from a task in ``work_loop()``, a third (the buffered
handler sends the rest when the loop ends). Observed per handler: connections and what
each carries (framing, and every document's keys, message, level, ``extra``, emitter
and exception fields, with timestamps reduced to facts).
"""

from __future__ import annotations

import datetime
import json
import logging
import socketserver
import threading
from typing import Any, ClassVar

from _observe import emit, queue, typed, wait_for
from _recorder import Recorder, Task

import sergeant.config
import sergeant.logging.logstash


class Collector(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(('127.0.0.1', 0), Receive)
        self.connections: list[bytes] = []
        self.lock = threading.Lock()


class Receive(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        chunks = []
        while chunk := self.request.recv(65536):
            chunks.append(chunk)
        server = self.server
        assert isinstance(server, Collector)
        with server.lock:
            server.connections.append(b''.join(chunks))


def timestamp_facts(text: Any) -> dict[str, Any]:
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return {'iso_format': typed(False)}
    return {'iso_format': typed(True), 'naive': typed(parsed.tzinfo is None)}


def document_view(document: dict[str, Any]) -> dict[str, Any]:
    emitter = document.get('emitter', {})
    extra = document.get('extra', {})
    exception = document.get('exception')
    return {
        'keys': sorted(document),
        '@timestamp': timestamp_facts(document.get('@timestamp')),
        'message': typed(document.get('message')),
        'level': typed(document.get('level')),
        'name_is_worker_name': typed(document.get('name') == queue()),
        'emitter.keys': sorted(emitter),
        'emitter.types': {key: typed(value)['type'] for key, value in sorted(emitter.items())},
        'extra.keys': sorted(extra),
        'extra.custom': typed(extra.get('custom')),
        'extra.task.keys': sorted(extra['task']) if isinstance(extra.get('task'), dict) else None,
        'exception.keys': sorted(exception) if isinstance(exception, dict) else None,
        'exception.type': typed(exception.get('type')) if isinstance(exception, dict) else None,
        'exception.message': typed(exception.get('message')) if isinstance(exception, dict) else None,
    }


def connection_view(payload: bytes) -> dict[str, Any]:
    parts = [part for part in payload.split(b'\n') if part.strip()]
    return {
        'ends_with_newline': typed(payload.endswith(b'\n')),
        'documents': [document_view(json.loads(part)) for part in parts],
    }


class Logging(Recorder):
    config_overrides: ClassVar[dict[str, Any]] = {'max_tasks_per_run': 1}

    def work(self, task: Task) -> Any:
        self.logger.warning('from a task', extra={'custom': 'in work'})


def main() -> None:
    plain, buffered = Collector(), Collector()
    for server in (plain, buffered):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    handlers: list[logging.Handler] = [
        sergeant.logging.logstash.LogstashHandler('127.0.0.1', plain.server_address[1]),
        sergeant.logging.logstash.BufferedLogstashHandler(
            '127.0.0.1', buffered.server_address[1], chunk_size=2
        ),
    ]
    Logging.config_overrides = {
        **Logging.config_overrides,
        'logging': sergeant.config.Logging(level=logging.INFO, handlers=handlers),
    }
    worker = Logging()
    worker.init_worker()
    worker.logger.info('with extra', extra={'custom': {'a': [1, 2]}})
    try:
        raise LookupError('handled')
    except LookupError:
        worker.logger.error('while handling')
    worker.push_task(kwargs={'id': 'logs'})
    worker.work_loop()
    wait_for(lambda: len(plain.connections) >= 3 and len(buffered.connections) >= 2, timeout=5)
    observed = {
        name: {
            'connections': typed(len(server.connections)),
            # connections are served by threads of their own: ordered by their messages, not arrival
            'payloads': sorted(
                (connection_view(payload) for payload in server.connections),
                key=lambda view: [document['message'].get('value', '') for document in view['documents']],
            ),
        }
        for name, server in (('plain', plain), ('buffered', buffered))
    }
    for server in (plain, buffered):
        server.shutdown()
    emit(observed)


if __name__ == '__main__':
    main()
