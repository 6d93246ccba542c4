"""The stream of tasks a worker runs: fetching in batches, settling, handing back.

It pops up to ``tasks_per_transaction`` tasks at a time (sending the pending
acknowledgements in the same call), honours ``max_tasks_per_run``, waits with
backoff on an empty queue and reports starvation, dead-letters tasks whose
redeliveries used up ``max_retries``, and on close hands prefetched tasks that
never started back to the queue.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable, Iterator

from .broker import Broker, LeasedTask
from .config import WorkerConfig
from .connector import DeadLetter
from .lease_keeper import LeaseKeeper
from .objects import Task

_MIN_IDLE_SLEEP = 0.02
_MAX_IDLE_SLEEP = 1.0


class Outcome(enum.Enum):
    """How one task ended; decides how its delivery is settled."""

    SUCCESS = 'success'
    FAILURE = 'failure'
    TIMEOUT = 'timeout'
    RETRY = 'retry'
    MAX_RETRIES = 'max_retries'
    REQUEUE = 'requeue'
    STOPPED = 'stopped'


class StreamEvents:
    """Callbacks from the stream to the worker (no-ops by default)."""

    def dead_lettered(self, letter: DeadLetter) -> None:
        """A payload went to the dead-letter queue."""

    def redeliveries_exhausted(self, task: Task) -> None:
        """A task came back after crashes more often than ``max_retries`` allows."""

    def starving(self, seconds_without_tasks: float) -> None:
        """No task arrived for ``starvation.time_with_no_tasks`` seconds (repeats)."""

    def fetch_failed(self, error: Exception) -> None:
        """Popping from the broker raised."""


class TaskStream:
    """Iterate to receive tasks; call :meth:`settle` after each and :meth:`close` at the end."""

    def __init__(
        self,
        broker: Broker,
        config: WorkerConfig,
        events: StreamEvents,
        keeper: LeaseKeeper | None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self._broker = broker
        self._config = config
        self._queue = config.name
        self._events = events
        self._keeper = keeper
        self._should_stop = should_stop
        self._prefetched: deque[LeasedTask] = deque()
        self.delivered = 0

    def __iter__(self) -> Iterator[LeasedTask]:
        limit = self._config.max_tasks_per_run
        idle_sleep = _MIN_IDLE_SLEEP
        idle_since = time.monotonic()
        starvation_reported_at = 0.0
        while not self._should_stop() and (limit == 0 or self.delivered < limit):
            wanted = self._config.tasks_per_transaction
            if limit:
                wanted = min(wanted, limit - self.delivered)
            if not self._fetch(wanted):
                time.sleep(idle_sleep)
                idle_sleep = min(idle_sleep * 2, _MAX_IDLE_SLEEP)
                starvation_reported_at = self._check_starvation(idle_since, starvation_reported_at)
                continue
            idle_sleep = _MIN_IDLE_SLEEP
            idle_since = time.monotonic()
            starvation_reported_at = 0.0
            while self._prefetched and not self._should_stop():
                self.delivered += 1
                yield self._prefetched.popleft()

    def _fetch(self, wanted: int) -> bool:
        acks = self._keeper.take_acks() if self._keeper else []
        try:
            popped = self._broker.pop_tasks(self._queue, wanted, self._config.delivery.lease, acks)
        except Exception as error:
            if self._keeper:
                self._keeper.give_back_acks(acks)
            self._events.fetch_failed(error)
            return False
        for letter in popped.dead_lettered:
            self._events.dead_lettered(letter)
        fresh = [leased for leased in popped.tasks if not self._exhausted(leased)]
        if self._keeper:
            self._keeper.hold([leased.receipt for leased in fresh])
        self._prefetched.extend(fresh)
        return bool(popped.tasks or popped.dead_lettered)

    def _exhausted(self, leased: LeasedTask) -> bool:
        max_retries = self._config.max_retries
        if max_retries == 0 or leased.task.run_count <= max_retries:
            return False
        reason = f'redelivered after its worker died or lost the lease; run_count {leased.task.run_count}'
        self._broker.dead_letter_task(self._queue, leased.task, reason, [leased.receipt])
        self._events.redeliveries_exhausted(leased.task)
        return True

    def _check_starvation(self, idle_since: float, reported_at: float) -> float:
        starvation = self._config.starvation
        if starvation is None:
            return reported_at
        now = time.monotonic()
        if now - max(idle_since, reported_at) >= starvation.time_with_no_tasks:
            self._events.starving(now - idle_since)
            return now
        return reported_at

    def settle(self, leased: LeasedTask, outcome: Outcome) -> None:
        """Acknowledge a finished task, or dead-letter it when it used up its retries."""
        if outcome is Outcome.MAX_RETRIES:
            reason = f'max retries ({self._config.max_retries}) exhausted'
            self._broker.dead_letter_task(self._queue, leased.task, reason, [leased.receipt])
            if self._keeper:
                self._keeper.forget([leased.receipt])
        elif self._keeper:
            self._keeper.done(leased.receipt)

    def close(self) -> None:
        """Hand prefetched tasks that never started back to the queue, then flush acks."""
        unstarted = [leased.receipt for leased in self._prefetched]
        if self._keeper is None:
            # at-most-once: popping deleted them, so they are pushed again
            self._broker.push_tasks(self._queue, [leased.task for leased in self._prefetched], 'HIGH')
            self._prefetched.clear()
            return
        self._prefetched.clear()
        try:
            if unstarted:
                self._broker.connector.nack(self._queue, unstarted)
                self._keeper.forget(unstarted)
        finally:
            self._keeper.close()
