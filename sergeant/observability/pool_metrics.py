"""What the pool's metrics are made of: live workers' task counts, ended ones' totals, respawns.

The pool tells this book when a worker starts, ends or is replaced; the metrics
exporter's thread asks for a :class:`~.pool.PoolView`. Task
counts arrive as cumulative snapshots (see :mod:`sergeant.metrics.snapshot`):
a live process contributes its latest one, and when it ends that snapshot joins
the totals of its worker name under the same lock, so a scrape never counts a
process twice or not at all, and exported counters never go backwards.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable
from typing import Protocol

from ..metrics.snapshot import TaskSnapshot, TaskTotals
from .pool import BrokerTarget, PoolView


class PoolProcess(Protocol):
    """What the book reads of a worker process (the supervisor's ``WorkerProcess``)."""

    @property
    def pid(self) -> int: ...
    @property
    def slot(self) -> int: ...
    @property
    def ready(self) -> bool: ...
    @property
    def alive(self) -> bool: ...
    @property
    def broker(self) -> BrokerTarget | None: ...
    @property
    def metrics(self) -> TaskSnapshot | None: ...


class PoolMetrics:
    """Written by the supervisor's loop, read by the metrics thread through :meth:`view`."""

    def __init__(self, respawn_reasons: Iterable[str]) -> None:
        """``respawn_reasons``: why a worker may be replaced, each exported from the start at 0."""
        self._lock = threading.Lock()
        self._live: dict[int, PoolProcess] = {}
        self._ended: dict[str, TaskTotals] = {}  # worker name -> totals of its ended processes
        self._respawns: dict[str, int] = dict.fromkeys(respawn_reasons, 0)
        self._broker: BrokerTarget | None = None

    def started(self, process: PoolProcess) -> None:
        with self._lock:
            self._live[process.pid] = process

    def ended(self, process: PoolProcess) -> None:
        """The process was reaped and its last messages read."""
        with self._lock:
            self._live.pop(process.pid, None)
            if process.broker is not None:
                self._broker = process.broker
            if process.metrics is not None:
                # a killed worker may have reported a task running: it is not any more
                final = dataclasses.replace(process.metrics, in_flight=0)
                self._ended.setdefault(final.worker, TaskTotals()).add(final)

    def respawning(self, reason: str) -> None:
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
                respawns=dict(self._respawns),
                broker=broker,
            )
