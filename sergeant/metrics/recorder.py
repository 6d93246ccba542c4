"""The worker-side accumulator: what one worker process counts for its supervisor's ``/metrics``.

Outcome counts are the worker's own ``outcomes`` counter (the work loop counts
them anyway, and the summary reports them); this adds task durations, queue
waits, fetch failures and the tasks running now. Everything is cumulative and written by the
task threads without locks; :meth:`WorkerMetrics.snapshot` may be called from
another thread (:mod:`.flusher`) at any time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from .durations import DurationHistogram
from .queue_wait import QueueWaitHistogram
from .snapshot import TaskSnapshot


class WorkerMetrics:
    """Task metrics of one worker process named ``worker`` (its ``config.name``)."""

    def __init__(self, worker: str, outcomes: Counter[str]) -> None:
        self.worker = worker
        self.durations = DurationHistogram()
        self.queue_waits = QueueWaitHistogram()
        self.fetch_errors = 0
        self._outcomes = outcomes
        self._not_run = 0  # outcomes counted for tasks that never ran: dead letters, exhausted redeliveries
        self._delivered: Callable[[], int] | None = None
        self._finished_before_loop = 0

    def counted_without_running(self) -> None:
        """An outcome was counted for a payload or task that was not run (dead-lettered on arrival)."""
        self._not_run += 1

    def fetch_failed(self) -> None:
        self.fetch_errors += 1

    def finished(self) -> int:
        """Tasks that ran to an outcome in this process."""
        return sum(dict(self._outcomes).values()) - self._not_run

    def loop_started(self, delivered: Callable[[], int]) -> None:
        """The work loop started; ``delivered()`` counts the tasks its stream handed out so far."""
        self._finished_before_loop = self.finished()
        self._delivered = delivered

    def loop_ended(self) -> None:
        self._delivered = None

    def in_flight(self) -> int:
        delivered = self._delivered
        if delivered is None:
            return 0
        return max(0, delivered() - (self.finished() - self._finished_before_loop))

    def snapshot(self) -> TaskSnapshot:
        durations, waits = self.durations, self.queue_waits
        return TaskSnapshot(
            worker=self.worker,
            outcomes=dict(self._outcomes),
            duration_counts=tuple(durations.counts),
            duration_sum=durations.total,
            in_flight=self.in_flight(),
            fetch_errors=self.fetch_errors,
            wait_counts=tuple(waits.counts),
            wait_sum=waits.total,
        )
