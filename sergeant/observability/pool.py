"""The worker pool as the metrics exporter sees it: one consistent view per scrape.

The supervisor's ledger builds a :class:`PoolView` under its lock; the exporter
(:mod:`sergeant.observability`) turns it into metric families and readiness
without touching the pool itself. A :class:`BrokerTarget` is what a worker
announces when it is ready, so the supervisor can probe the same broker and queue.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..metrics.snapshot import TaskTotals


@dataclasses.dataclass(frozen=True)
class BrokerTarget:
    """A worker's connector config and queue: enough to build a connector and probe the queue."""

    connector_type: str
    params: Mapping[str, Any]
    queue: str

    def to_fields(self) -> dict[str, Any]:
        return {'queue': self.queue, 'connector': {'type': self.connector_type, 'params': dict(self.params)}}

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> BrokerTarget | None:
        """The target a message announces, or None when it announces none (or a malformed one)."""
        connector, queue = fields.get('connector'), fields.get('queue')
        if not isinstance(connector, Mapping) or not isinstance(queue, str) or not queue:
            return None
        connector_type, params = connector.get('type'), connector.get('params')
        if not isinstance(connector_type, str) or not isinstance(params, Mapping):
            return None
        return cls(connector_type, dict(params), queue)


@dataclasses.dataclass(frozen=True)
class PoolView:
    """Everything ``/metrics`` and ``/readyz`` need from the pool, taken at one instant."""

    tasks: Mapping[str, TaskTotals]  # by worker name: ended processes plus live ones
    processes: int  # live (not yet reaped) worker processes
    ready_processes: int  # of which built their worker and run the loop
    pids_by_slot: Mapping[int, int]
    respawns: Mapping[str, int]  # worker processes replaced, by why the previous one ended
    broker: BrokerTarget | None  # announced by the latest ready worker
