"""What a worker process reports to its supervisor about its tasks, and how the supervisor adds it up.

A :class:`TaskSnapshot` holds *cumulative* counts since the worker process
started, so the latest one is all the supervisor needs from a live process:
a lost or repeated message changes nothing. When a process ends, the supervisor
adds its last snapshot to the totals of its worker name (:class:`TaskTotals`);
the counters it exports are those totals plus the snapshots of live processes,
so they never go backwards when a worker is replaced.

On the wire a snapshot is the fields of one JSON message (see
:mod:`sergeant.supervisor.protocol`)::

    {"event": "metrics", "worker": "crawl", "outcomes": {"success": 10, ...},
     "duration_counts": [8, 2, 0, ...], "duration_sum": 0.0123, "in_flight": 1, "fetch_errors": 0,
     "wait_counts": [9, 1, 0, ...], "wait_sum": 0.004}

``duration_counts`` has one count per bucket of
:data:`~sergeant.metrics.durations.DURATION_BUCKETS` plus one above them all,
``wait_counts`` the same for :data:`~sergeant.metrics.queue_wait.WAIT_BUCKETS`
(absent from the messages of earlier versions: no waits).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .durations import DURATION_BUCKETS
from .queue_wait import WAIT_BUCKETS

# every outcome a task can have, as counted by the worker (summary['tasks'] uses the same names)
OUTCOMES = ('success', 'failure', 'timeout', 'retry', 'max_retries', 'requeue', 'dead_letter')
_BUCKET_COUNT = len(DURATION_BUCKETS) + 1
_WAIT_BUCKET_COUNT = len(WAIT_BUCKETS) + 1


def _count(value: object, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f'{field}: must be an int >= 0, got {value!r}')
    return value


def _seconds(value: object, field: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
        raise ValueError(f'{field}: must be a number >= 0, got {value!r}')
    return float(value)


@dataclasses.dataclass(frozen=True)
class TaskSnapshot:
    """Cumulative task counts of one worker process."""

    worker: str
    outcomes: Mapping[str, int]
    duration_counts: tuple[int, ...]
    duration_sum: float
    in_flight: int = 0
    fetch_errors: int = 0
    wait_counts: tuple[int, ...] = (0,) * _WAIT_BUCKET_COUNT
    wait_sum: float = 0.0

    def to_fields(self) -> dict[str, Any]:
        return {
            'worker': self.worker,
            'outcomes': dict(self.outcomes),
            'duration_counts': list(self.duration_counts),
            'duration_sum': self.duration_sum,
            'in_flight': self.in_flight,
            'fetch_errors': self.fetch_errors,
            'wait_counts': list(self.wait_counts),
            'wait_sum': self.wait_sum,
        }

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> TaskSnapshot:
        """Read a snapshot from a message; ValueError names the first bad field."""
        worker = fields.get('worker')
        if not isinstance(worker, str) or not worker:
            raise ValueError(f'worker: must be a non-empty string, got {worker!r}')
        outcomes = fields.get('outcomes')
        if not isinstance(outcomes, Mapping):
            raise ValueError(f'outcomes: must be an object, got {outcomes!r}')
        counts = fields.get('duration_counts')
        if not isinstance(counts, list) or len(counts) != _BUCKET_COUNT:
            raise ValueError(f'duration_counts: must be a list of {_BUCKET_COUNT} counts')
        wait_counts = fields.get('wait_counts', [0] * _WAIT_BUCKET_COUNT)
        if not isinstance(wait_counts, list) or len(wait_counts) != _WAIT_BUCKET_COUNT:
            raise ValueError(f'wait_counts: must be a list of {_WAIT_BUCKET_COUNT} counts')
        return cls(
            worker=worker,
            outcomes={str(name): _count(count, f'outcomes.{name}') for name, count in outcomes.items()},
            duration_counts=tuple(_count(count, 'duration_counts') for count in counts),
            duration_sum=_seconds(fields.get('duration_sum'), 'duration_sum'),
            in_flight=_count(fields.get('in_flight', 0), 'in_flight'),
            fetch_errors=_count(fields.get('fetch_errors', 0), 'fetch_errors'),
            wait_counts=tuple(_count(count, 'wait_counts') for count in wait_counts),
            wait_sum=_seconds(fields.get('wait_sum', 0.0), 'wait_sum'),
        )


@dataclasses.dataclass
class TaskTotals:
    """The sum of snapshots of one worker name: ended processes, plus live ones when exporting."""

    outcomes: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    duration_counts: list[int] = dataclasses.field(default_factory=lambda: [0] * _BUCKET_COUNT)
    duration_sum: float = 0.0
    in_flight: int = 0
    fetch_errors: int = 0
    wait_counts: list[int] = dataclasses.field(default_factory=lambda: [0] * _WAIT_BUCKET_COUNT)
    wait_sum: float = 0.0

    def add(self, snapshot: TaskSnapshot) -> None:
        for outcome, count in snapshot.outcomes.items():
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + count
        for index, count in enumerate(snapshot.duration_counts):
            self.duration_counts[index] += count
        self.duration_sum += snapshot.duration_sum
        self.in_flight += snapshot.in_flight
        self.fetch_errors += snapshot.fetch_errors
        for index, count in enumerate(snapshot.wait_counts):
            self.wait_counts[index] += count
        self.wait_sum += snapshot.wait_sum

    def copy(self) -> TaskTotals:
        return TaskTotals(
            dict(self.outcomes),
            list(self.duration_counts),
            self.duration_sum,
            self.in_flight,
            self.fetch_errors,
            list(self.wait_counts),
            self.wait_sum,
        )

    def cumulative_buckets(self) -> list[tuple[float, int]]:
        """Durations: ``(upper bound, tasks at or under it)`` per bucket, the last bound being infinity."""
        return _cumulative(DURATION_BUCKETS, self.duration_counts)

    def cumulative_wait_buckets(self) -> list[tuple[float, int]]:
        """Queue waits, as :meth:`cumulative_buckets` gives durations."""
        return _cumulative(WAIT_BUCKETS, self.wait_counts)


def _cumulative(bounds: tuple[float, ...], counts: list[int]) -> list[tuple[float, int]]:
    buckets = []
    running = 0
    for bound, count in zip((*bounds, float('inf')), counts, strict=True):
        running += count
        buckets.append((bound, running))
    return buckets
