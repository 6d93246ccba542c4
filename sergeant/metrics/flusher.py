"""Sends a worker process's metrics to its supervisor: every second from a thread, and once at the end.

Used by the supervisor's child entry point around ``work_loop``. A worker that
ends normally sends everything it counted; one that is SIGKILLed loses what it
counted since its last message (at most :data:`FLUSH_INTERVAL` seconds).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..periodic import PeriodicThread
from .recorder import WorkerMetrics
from .snapshot import TaskSnapshot

FLUSH_INTERVAL = 1.0

logger = logging.getLogger('sergeant.metrics')


class MetricsFlusher(PeriodicThread):
    """A context manager: while inside, ``send`` receives a snapshot whenever it changed."""

    def __init__(
        self, metrics: WorkerMetrics, send: Callable[[TaskSnapshot], None], interval: float = FLUSH_INTERVAL
    ) -> None:
        super().__init__(self.flush, interval, 'sergeant-metrics')
        self._metrics = metrics
        self._send = send
        self._last: TaskSnapshot | None = None

    def stop(self) -> None:
        super().stop()
        self.flush()

    def flush(self) -> None:
        try:
            snapshot = self._metrics.snapshot()
            if snapshot != self._last:
                self._send(snapshot)
                self._last = snapshot
        except Exception:  # metrics must never take a worker down
            logger.exception('could not send task metrics to the supervisor')
