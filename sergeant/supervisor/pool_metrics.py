"""What the pool's metrics are made of: live workers' task counts, ended ones' totals, respawns.

The pool tells this book when a worker starts, ends or is replaced; the metrics
exporter's thread asks for a :class:`~sergeant.metrics.pool.PoolView`. Task
counts arrive as cumulative snapshots (see :mod:`sergeant.metrics.snapshot`):
a live process contributes its latest one, and when it ends that snapshot joins
the totals of its worker name under the same lock, so a scrape never counts a
process twice or not at all, and exported counters never go backwards.
"""

from __future__ import annotations

import dataclasses
import threading

from ..metrics.pool import BrokerTarget, PoolView
from ..metrics.snapshot import TaskTotals
from .process import EndReason, WorkerProcess

# the ends after which the pool starts a new worker (unless it is stopping)
RESPAWN_REASONS = tuple(
    reason
    for reason in EndReason
    if reason not in (EndReason.STOP_ASKED, EndReason.LOAD_FAILED, EndReason.KILLED)
)


class PoolMetrics:
    """Written by the supervisor's loop, read by the metrics thread through :meth:`view`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[int, WorkerProcess] = {}
        self._ended: dict[str, TaskTotals] = {}  # worker name -> totals of its ended processes
        self._respawns: dict[EndReason, int] = dict.fromkeys(RESPAWN_REASONS, 0)
        self._broker: BrokerTarget | None = None

    def started(self, process: WorkerProcess) -> None:
        with self._lock:
            self._live[process.pid] = process

    def ended(self, process: WorkerProcess) -> None:
        """The process was reaped and its last messages read."""
        with self._lock:
            self._live.pop(process.pid, None)
            if process.broker is not None:
                self._broker = process.broker
            if process.metrics is not None:
                # a killed worker may have reported a task running: it is not any more
                final = dataclasses.replace(process.metrics, in_flight=0)
                self._ended.setdefault(final.worker, TaskTotals()).add(final)

    def respawning(self, reason: EndReason) -> None:
        with self._lock:
            self._respawns[reason] = self._respawns.get(reason, 0) + 1

    def view(self) -> PoolView:
        with self._lock:
            tasks = {worker: totals.copy() for worker, totals in self._ended.items()}
            live = list(self._live.values())
            broker = self._broker
            for process in live:
                snapshot = process.metrics  # replaced whole by the loop: one consistent snapshot
                if snapshot is not None:
                    tasks.setdefault(snapshot.worker, TaskTotals()).add(snapshot)
                if process.broker is not None:
                    broker = process.broker
            return PoolView(
                tasks=tasks,
                processes=len(live),
                ready_processes=sum(1 for process in live if process.ready and process.alive),
                pids_by_slot={process.slot: process.pid for process in live},
                respawns={reason.name.lower(): count for reason, count in self._respawns.items()},
                broker=broker,
            )
