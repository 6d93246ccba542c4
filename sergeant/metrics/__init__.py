"""Task metrics of worker processes: counted in each worker, added up by the supervisor.

A worker process run by the supervisor accumulates plain counters
(:class:`WorkerMetrics`: outcomes, histograms of durations and queue waits, fetch
failures, tasks running) and a :class:`MetricsFlusher` thread sends them as a cumulative
:class:`TaskSnapshot` over the report pipe every second and at exit. The
supervisor adds the snapshots up by worker name (:class:`TaskTotals`) and
exports them on ``/metrics`` (:mod:`sergeant.observability`).

This package sits low in the layers: it imports nothing of Sergeant's beyond
itself, so the worker loop can use it and the supervisor can read its wire
format without loading user code or broker drivers.
"""

from __future__ import annotations

from .durations import DURATION_BUCKETS, BatchClock, DurationHistogram
from .flusher import FLUSH_INTERVAL, MetricsFlusher
from .queue_wait import WAIT_BUCKETS, QueueWaitHistogram
from .recorder import WorkerMetrics
from .snapshot import OUTCOMES, TaskSnapshot, TaskTotals

__all__ = [
    'DURATION_BUCKETS',
    'FLUSH_INTERVAL',
    'OUTCOMES',
    'WAIT_BUCKETS',
    'BatchClock',
    'DurationHistogram',
    'MetricsFlusher',
    'QueueWaitHistogram',
    'TaskSnapshot',
    'TaskTotals',
    'WorkerMetrics',
]
