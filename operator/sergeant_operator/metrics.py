"""The operator's own Prometheus metrics, and the HTTP server for ``/metrics`` and ``/healthz``.

Each :class:`OperatorMetrics` has its own registry, so two operators in one
process (as in tests) do not share counters. ``/healthz`` answers 200 while the
operator's loops report in (see :meth:`HealthServer.__init__`), 503 otherwise;
a standby replica that is not the leader is healthy.
"""

from __future__ import annotations

import contextlib
import http.server
import logging
import threading
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest

logger = logging.getLogger(__name__)

_LABELS = ('namespace', 'name')


class OperatorMetrics:
    """Counters and gauges per SergeantWorker (labels ``namespace`` and ``name``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconciles = Counter(
            'sergeant_operator_reconciles_total', 'Reconciliations of a SergeantWorker', _LABELS,
            registry=self.registry,
        )  # fmt: skip
        self.errors = Counter(
            'sergeant_operator_reconcile_errors_total',
            'Failed reconciliation steps of a SergeantWorker, by reason',
            (*_LABELS, 'reason'),
            registry=self.registry,
        )
        self.queue_length = Gauge(
            'sergeant_operator_queue_length', 'Tasks ready in the queue at the last poll', _LABELS,
            registry=self.registry,
        )  # fmt: skip
        self.in_flight = Gauge(
            'sergeant_operator_queue_in_flight', 'Tasks leased by workers at the last poll', _LABELS,
            registry=self.registry,
        )  # fmt: skip
        self.desired_replicas = Gauge(
            'sergeant_operator_desired_replicas', 'Replicas the operator asked for', _LABELS,
            registry=self.registry,
        )  # fmt: skip
        self.leader = Gauge(
            'sergeant_operator_leader', '1 while this replica holds the leader lease', registry=self.registry
        )
        self._error_reasons: dict[tuple[str, str], set[str]] = {}
        self._lock = threading.Lock()

    def count_error(self, namespace: str, name: str, reason: str) -> None:
        with self._lock:
            self._error_reasons.setdefault((namespace, name), set()).add(reason)
        self.errors.labels(namespace, name, reason).inc()

    def forget(self, namespace: str, name: str) -> None:
        """Drop the series of a deleted SergeantWorker."""
        for metric in (self.reconciles, self.queue_length, self.in_flight, self.desired_replicas):
            with contextlib.suppress(KeyError):
                metric.remove(namespace, name)
        with self._lock:
            reasons = self._error_reasons.pop((namespace, name), set())
        for reason in reasons:
            with contextlib.suppress(KeyError):
                self.errors.remove(namespace, name, reason)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class HealthServer:
    """Serves ``/metrics`` and ``/healthz`` from a daemon thread."""

    def __init__(self, host: str, port: int, metrics: OperatorMetrics, is_alive: Callable[[], bool]) -> None:
        handler = _handler_class(metrics, is_alive)
        self._server = http.server.ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name='health-server', daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_class(
    metrics: OperatorMetrics, is_alive: Callable[[], bool]
) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split('?', 1)[0]
            if path == '/metrics':
                self._answer(200, metrics.exposition(), CONTENT_TYPE_LATEST)
            elif path == '/healthz':
                alive = is_alive()
                self._answer(200 if alive else 503, b'ok\n' if alive else b'stalled\n', 'text/plain')
            else:
                self._answer(404, b'not found\n', 'text/plain')

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header('Content-Type', content_type)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            logger.debug('health server: ' + format, *args)

    return Handler
