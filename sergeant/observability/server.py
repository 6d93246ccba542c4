"""A small threaded HTTP server for ``GET /metrics``, ``/healthz`` and ``/readyz``.

Each request runs in a thread of its own, so a slow scrape never delays a probe.
Clients cannot hold the server hostage: one that stays silent is dropped after
``READ_TIMEOUT`` seconds, and beyond ``MAX_WAITING`` connections that have not sent
their request yet the oldest of them is closed, so a probe always gets through and
the supervisor keeps file descriptors for its workers. ``/metrics`` answers in the
Prometheus text format, or OpenMetrics when the scraper asks for it; the probes
answer 200 or 503 with the reason as plain text.
"""

from __future__ import annotations

import contextlib
import errno
import http.server
import logging
import socket
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from .health import Verdict

logger = logging.getLogger('sergeant.supervisor')


READ_TIMEOUT = 10.0  # seconds a client may stay silent; a kubelet or Prometheus sends at once
MAX_WAITING = 64  # connections accepted and still waiting for their request
_ACCEPT_PAUSE = 0.1  # seconds to wait when the process is out of file descriptors


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a burst of probes and scrapes waits in the backlog, not in SYN retries

    def __init__(self, address: tuple[str, int], handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._waiting: dict[socket.socket, None] = {}  # in the order they were accepted
        self._waiting_guard = threading.Lock()

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        try:
            return super().get_request()
        except OSError as error:
            if error.errno in (errno.EMFILE, errno.ENFILE):
                # The listening socket stays readable: without a pause serve_forever spins on it.
                time.sleep(_ACCEPT_PAUSE)
            raise

    def process_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:  # type: ignore[override]
        with self._waiting_guard:
            self._waiting[request] = None
            while len(self._waiting) > MAX_WAITING:
                oldest = next(iter(self._waiting))
                del self._waiting[oldest]
                # Its handler thread wakes up to an empty read and closes it.
                with contextlib.suppress(OSError):
                    oldest.shutdown(socket.SHUT_RDWR)
        super().process_request(request, client_address)

    def request_arrived(self, request: socket.socket) -> None:
        """The client of ``request`` sent its request: it is being served, no longer waiting."""
        with self._waiting_guard:
            self._waiting.pop(request, None)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        self.request_arrived(request)
        super().shutdown_request(request)


class _Server6(_Server):
    address_family = socket.AF_INET6


class ObservabilityServer:
    """Serves one registry and two probes on ``address:port`` from daemon threads."""

    def __init__(
        self,
        address: str,
        port: int,
        registry: CollectorRegistry,
        live: Callable[[], Verdict],
        ready: Callable[[], Verdict],
    ) -> None:
        self._address = address
        self._port = port
        self._registry = registry
        self._probes = {'/healthz': live, '/readyz': ready}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Listen (OSError when the port is taken) and serve from a daemon thread."""
        server_class = _Server6 if ':' in self._address else _Server
        self._server = server_class((self._address, self._port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name='sergeant-http', daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        registry, probes = self._registry, self._probes

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = READ_TIMEOUT
            server: _Server

            def parse_request(self) -> bool:
                parsed = super().parse_request()  # reads the headers too
                self.server.request_arrived(self.connection)
                return parsed

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                try:
                    if path == '/metrics':
                        encode, content_type = choose_encoder(self.headers.get('Accept', ''))
                        self._answer(200, content_type, encode(registry))
                    elif path in probes:
                        verdict = probes[path]()
                        text = f'{verdict.reason}\n'.encode()
                        self._answer(200 if verdict.ok else 503, 'text/plain; charset=utf-8', text)
                    else:
                        self._answer(404, 'text/plain; charset=utf-8', b'try /metrics, /healthz or /readyz\n')
                except Exception as error:
                    logger.exception('answering %s failed', path)
                    self._answer(
                        500, 'text/plain; charset=utf-8', f'{type(error).__name__}: {error}\n'.encode()
                    )

            def _answer(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header('Content-Type', content_type)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *arguments: object) -> None:
                logger.debug('http %s - %s', self.address_string(), format % arguments)

        return Handler
