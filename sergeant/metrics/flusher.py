"""Sends a worker process's metrics to its supervisor: every second from a thread, and once at the end.

Used by the supervisor's child entry point around ``work_loop``. A worker that
ends normally sends everything it counted; one that is SIGKILLed loses what it
counted since its last message (at most :data:`FLUSH_INTERVAL` seconds).
"""

from __future__ import annotations

import logging
import threading
import types
from collections.abc import Callable

from .recorder import WorkerMetrics
from .snapshot import TaskSnapshot

FLUSH_INTERVAL = 1.0

logger = logging.getLogger('sergeant.metrics')


class MetricsFlusher:
    """A context manager: while inside, ``send`` receives a snapshot whenever it changed."""

    def __init__(
        self, metrics: WorkerMetrics, send: Callable[[TaskSnapshot], None], interval: float = FLUSH_INTERVAL
    ) -> None:
        self._metrics = metrics
        self._send = send
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name='sergeant-metrics', daemon=True)
        self._last: TaskSnapshot | None = None

    def __enter__(self) -> MetricsFlusher:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._thread.join()
        self.flush()

    def flush(self) -> None:
        try:
            snapshot = self._metrics.snapshot()
            if snapshot != self._last:
                self._send(snapshot)
                self._last = snapshot
        except Exception:  # metrics must never take a worker down
            logger.exception('could not send task metrics to the supervisor')

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            self.flush()
