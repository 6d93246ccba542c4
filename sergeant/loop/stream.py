"""The stream of tasks a worker runs: fetching in batches, settling, handing back.

It pops up to ``tasks_per_transaction`` tasks at a time (sending the pending
acknowledgements in the same call), honours ``max_tasks_per_run``, waits on an
empty queue (``Connector.wait_for_work``: woken by pushes where the connector can be,
else polling with backoff) and reports starvation, dead-letters tasks whose
redeliveries used up ``max_retries``, and on close hands prefetched tasks that
never started back to the queue.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Protocol

from ..codec import TaskCodec
from ..config import WorkerConfig
from ..connector import CompletedPop, DeadLetter, Deliveries, PendingPop
from ..metrics.queue_wait import QueueWaitHistogram
from ..objects import Task
from .isolation import Verdict, judge, note_name
from .journal import StartJournal
from .leases import LeaseKeeper
from .retries import may_run

_MIN_IDLE_SLEEP = 0.02
_MAX_IDLE_SLEEP = 1.0
# Prefetching holds ahead about this many seconds of work, judged by how fast the worker got
# through its last transactions: long tasks are not held hostage behind a running one while
# idle workers wait, and short ones still overlap the broker's round trip.
PREFETCH_HORIZON = 0.1
# Tasks still waiting after this long without any task handed out sit behind a task that turned out
# long: they go back to the queue, for idle workers to take.
STALL_HAND_BACK = 2 * PREFETCH_HORIZON
_PACE_WEIGHT = 0.5  # weight of the newest transaction in the running estimate of seconds per task


LeasedTask = tuple[Task, bytes, float]
"""A task to run, the receipt of the delivery that brought it, and when its push made it ready
(seconds since the epoch): a plain tuple, made in bulk by ``zip`` as a pop's tasks arrive."""


@dataclasses.dataclass(slots=True)
class Redelivery:
    """What the stream knows of a task delivered again (see :mod:`sergeant.loop.isolation`).

    ``isolation_note``: the note to delete once the task ended; ``alone``: run it with
    nothing else running.
    """

    isolation_note: str | None = None
    alone: bool = False


class Outcome(enum.Enum):
    """How one task ended; decides how its delivery is settled."""

    SUCCESS = 'success'
    FAILURE = 'failure'
    TIMEOUT = 'timeout'
    RETRY = 'retry'
    MAX_RETRIES = 'max_retries'
    REQUEUE = 'requeue'
    STOPPED = 'stopped'


class StopFlag(Protocol):
    """Tells whether the stream is to end: true once a stop was asked for."""

    @property
    def received_stop_signal(self) -> bool: ...


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

    def fetched(self) -> None:
        """A pop came back (with tasks or none)."""

    def waiting(self) -> None:
        """Every task received so far was handed out; the stream now waits for the broker."""

    def received(self) -> None:
        """Tasks arrived; they are handed out before the stream waits again."""


class TaskStream:
    """Iterate to receive tasks; call :meth:`settle` after each and :meth:`close` at the end.

    Prefetching (``Delivery.prefetch_tasks``): at most ``tasks_per_transaction +
    prefetch`` tasks wait to run, counting the ones asked for by the pop in
    flight, where ``prefetch`` is the configured cap cut down to the tasks the
    worker expects to get through in :data:`PREFETCH_HORIZON` seconds, from its
    pace over the transactions it ran (nothing ahead until it has run one). With
    nothing waiting, one transaction is popped (as without prefetching); from then
    on, once half of that room (at least one transaction) is free, the next pop is
    sent at once, carrying the acknowledgements so far, and its answer is only
    read when the tasks already here are used up. So the round trip and the
    broker's work overlap with decoding and running tasks, and one-task
    transactions share round trips. With no prefetch, a transaction is fetched
    when the previous one is done.
    """

    def __init__(
        self,
        codec: TaskCodec,
        config: WorkerConfig,
        events: StreamEvents,
        keeper: LeaseKeeper | None,
        stop_flag: StopFlag,
        journal: StartJournal | None = None,
        queue_waits: QueueWaitHistogram | None = None,
    ) -> None:
        self._codec = codec
        self._journal = journal
        self._queue_waits = queue_waits
        self.before_alone: Callable[[], None] = _nothing_else_runs
        """Called before a task marked ``alone`` is handed out; returns once nothing else runs
        (a threaded executor sets it)."""
        self._config = config
        self._queue = config.name
        self._events = events
        self._keeper = keeper
        self.stop_flag = stop_flag
        """The stream ends once its ``received_stop_signal`` is true (asked before every task)."""
        # the same as a callable, for the connector's waits; a threaded executor extends it
        self._should_stop: Callable[[], bool] = functools.partial(getattr, stop_flag, 'received_stop_signal')
        self._prefetched: deque[LeasedTask] = deque()
        self.redelivered: dict[bytes, Redelivery] = {}
        """Receipt -> what to heed for a task delivered again, until it is settled (usually empty)."""
        self._pending: _Request | None = None
        self._pending_guard = threading.Lock()  # the keeper's thread may take the pop in flight too
        self._suspended = False  # the iteration waits at a yield: its caller runs a task, none fetches
        self._lost_pop = False  # a pop failed: the broker may have leased its items all the same
        self._ack = keeper.done if keeper is not None else None
        self._accepted = 0  # tasks ever put into _prefetched
        self._limit = config.max_tasks_per_run
        self._prefetch_cap = config.delivery.prefetch_tasks(config.tasks_per_transaction) if keeper else 0
        self._seconds_per_task: float | None = None  # the worker's pace, once a transaction was run
        self._batch_started = 0.0
        self._delivered_at_batch_start = 0
        self._room = self._ahead = 0
        self._allow_prefetch(0)
        self._handed_back = 0  # prefetched tasks the keeper's thread gave back (see _hand_back_stalled)
        self._progress_seen = -1
        self._stalled_since = 0.0
        if keeper is not None and self._prefetch_cap:
            keeper.every_tick(self._hand_back_stalled)

    def _allow_prefetch(self, prefetch: int) -> None:
        per_transaction = self._config.tasks_per_transaction
        self._room = per_transaction + prefetch
        # the smallest pop sent ahead: half the room, and at least one transaction
        self._ahead = max(per_transaction, (self._room + 1) // 2) if prefetch else 0

    def _measure_pace(self) -> None:
        """Judge the worker's pace by the transaction just used up, and size prefetching from it.

        Called as the stream turns to the broker: every task received before was handed out.
        """
        delivered = self.delivered
        ran, self._delivered_at_batch_start = delivered - self._delivered_at_batch_start, delivered
        if not self._prefetch_cap or ran <= 0:
            return
        latest = (time.monotonic() - self._batch_started) / ran
        pace = self._seconds_per_task
        pace = latest if pace is None else pace + _PACE_WEIGHT * (latest - pace)
        self._seconds_per_task = pace
        affordable = int(PREFETCH_HORIZON / pace) if pace > 0 else self._prefetch_cap
        self._allow_prefetch(min(self._prefetch_cap, affordable))

    def __iter__(self) -> Iterator[LeasedTask]:
        take = self._prefetched.popleft
        hand_out = self.hand_out
        while count := self.next_run():
            for _ in range(count):
                if self._should_stop():  # looked up each time: a threaded executor wraps it
                    break
                try:
                    leased = take()
                except IndexError:  # the keeper's thread handed them back meanwhile
                    break
                hand_out(leased)
                self._suspended = True
                yield leased
                self._suspended = False

    def next_run(self) -> int:
        """Wait until tasks are here to run; how many to hand out before calling again (0: the end).

        The stream ends at ``max_tasks_per_run`` or once :attr:`stop_flag` says so. Meanwhile
        it sends pops (ahead of time where prefetching allows), waits on an empty queue
        (``Connector.wait_for_work``: woken by pushes where the connector can be, else
        polling with backoff) and reports starvation. A caller that takes the tasks itself
        (:meth:`take`) asks :attr:`stop_flag` before each, calls :meth:`hand_out` on it,
        and copes with finding fewer than counted: the keeper's thread may hand some back.
        """
        prefetched = self._prefetched
        idle_sleep = _MIN_IDLE_SLEEP
        idle_since: float | None = None  # when a pop first came back empty (starvation counts from then)
        starvation_reported_at = 0.0
        while not self._should_stop():
            if self._limit and self.delivered >= self._limit:
                return 0
            if self._pending is None:
                self._send_if_room(len(prefetched))
            if prefetched:
                # with a pop in flight (or no prefetching) nothing is to be sent before these are
                # used up (limits were applied when asking)
                if self._pending is not None or not self._ahead:
                    return len(prefetched)
                return self._run_before_room(len(prefetched))
            if self._refill():
                idle_sleep, idle_since, starvation_reported_at = _MIN_IDLE_SLEEP, None, 0.0
                continue
            if idle_since is None:
                idle_since = time.monotonic()
            # polls every idle_sleep, unless the connector is woken by pushes
            deadline = self._starvation_due(idle_since, starvation_reported_at)
            self._codec.connector.wait_for_work(self._queue, idle_sleep, self._should_stop, deadline)
            idle_sleep = min(idle_sleep * 2, _MAX_IDLE_SLEEP)
            starvation_reported_at = self._check_starvation(idle_since, starvation_reported_at)
        return 0

    @property
    def take(self) -> Callable[[], LeasedTask]:
        """Take the next task :meth:`next_run` counted; raises IndexError when none is left."""
        return self._prefetched.popleft

    @property
    def ack(self) -> Callable[[bytes], None] | None:
        """Acknowledge a task that succeeded and is not in :attr:`redelivered`: the fast part of
        :meth:`settle` (None at-most-once: nothing to acknowledge)."""
        return self._ack

    def hand_out(self, leased: LeasedTask) -> None:
        """A task taken with :meth:`take` is about to run: wait for the floor if it runs alone,
        note it in the journal, observe how long it waited."""
        _, receipt, ready_at = leased
        if self.redelivered and self.runs_alone(receipt):
            self.before_alone()
        if self._journal is not None:
            self._journal.note(receipt)
        if self._queue_waits is not None:
            self._queue_waits.observe_since(ready_at)

    def runs_alone(self, receipt: bytes) -> bool:
        """True for a task to run with nothing else running (until it is settled)."""
        redelivery = self.redelivered.get(receipt) if self.redelivered else None
        return redelivery is not None and redelivery.alone

    @property
    def start_note(self) -> Callable[[bytes], None] | None:
        """What :meth:`hand_out` calls with the receipt of a task not in :attr:`redelivered`, if anything."""
        return self._journal.note if self._journal is not None else None

    @property
    def queue_waits(self) -> QueueWaitHistogram | None:
        """Where :meth:`hand_out` observes how long a task not in :attr:`redelivered` waited, if anywhere."""
        return self._queue_waits

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Entered while a caller of :meth:`take` runs the tasks it took (see :meth:`_hand_back_stalled`)."""
        self._suspended = True
        try:
            yield
        finally:
            self._suspended = False

    def _run_before_room(self, buffered: int) -> int:
        """How many of ``buffered`` tasks to hand out before :meth:`_send_if_room` may send a pop
        ahead: until they leave room for one; all of them when ``max_tasks_per_run`` leaves none
        (what is left of it does not change as tasks are handed out)."""
        if self._limit and self._limit - self.delivered - buffered < self._ahead:
            return buffered
        return max(1, buffered - (self._room - self._ahead))

    def _send_if_room(self, buffered: int) -> None:
        """Send the next pop when ``buffered`` tasks leave room for it (see the class docstring)."""
        per_transaction = self._config.tasks_per_transaction
        # nothing waiting (start, or an idle queue): one transaction, as without prefetching
        wanted = self._room - buffered if buffered else per_transaction
        if self._limit:
            wanted = min(wanted, self._limit - self.delivered - buffered)
        if wanted <= 0 or (buffered and not (self._ahead and wanted >= self._ahead)):
            return
        if wanted > per_transaction:
            wanted -= wanted % per_transaction  # whole transactions
        keeper = self._keeper
        acks = keeper.take_acks() if keeper is not None else []
        try:
            pending = self._codec.begin_pop_tasks(self._queue, wanted, self._config.delivery.lease, acks)
        except Exception as error:  # connectors report errors through result(); this is a bug's safety net
            pending = CompletedPop(error=error)
        if keeper is not None:
            keeper.watch(pending)
        self._pending = _Request(pending, acks)

    def _refill(self) -> bool:
        """Collect the pop in flight into the prefetched tasks; False when it brought nothing.

        The next pop is sent before these are decoded, so the broker works on it
        meanwhile.
        """
        self._events.waiting()
        self._measure_pace()
        request = self._pending
        deliveries = self._receive()
        if deliveries is not None and self._lost_pop:
            self._recover_lost_pops(deliveries)
        if deliveries is None or not deliveries.payloads:
            return False
        assert request is not None
        if self._ahead:
            self._send_if_room(len(deliveries.payloads))
        self._accept(deliveries, request.pending)
        self._batch_started = time.monotonic()
        self._events.received()
        return True

    def _take_pending(self) -> _Request | None:
        with self._pending_guard:
            request, self._pending = self._pending, None
        return request

    def _receive(self) -> Deliveries | None:
        """The answer of the pop in flight, its acks settled; None when there is none or it failed."""
        request = self._take_pending()
        if request is None:
            return None
        keeper = self._keeper
        try:
            deliveries = request.pending.result()
        except Exception as error:
            if keeper is not None:
                keeper.unwatch(request.pending)
                keeper.give_back_acks(request.acks)
                self._lost_pop = True
            self._events.fetch_failed(error)
            return None
        if keeper is not None:
            keeper.acked(request.acks)
        self._events.fetched()
        return deliveries

    def _recover_lost_pops(self, deliveries: Deliveries) -> None:
        """Hand back what this worker holds without knowing it, once a pop worked again.

        A pop that failed may have run at the broker all the same (the connection broke
        before its answer came back): its items are leased to this worker, which never
        saw them, and would wait for their lease to run out. Called with no pop in
        flight, so the held receipts and ``deliveries`` are everything this worker knows.
        """
        keeper, connector = self._keeper, self._codec.connector
        owner = connector.lease_owner
        if keeper is None or owner is None:
            self._lost_pop = False
            return
        try:
            connector.release_owner(self._queue, owner, [], keep=keeper.held() + deliveries.receipts)
        except Exception as error:  # tried again after the next pop
            self._events.fetch_failed(error)
            return
        self._lost_pop = False

    def _accept(self, deliveries: Deliveries, pending: PendingPop) -> None:
        """Decode received deliveries into the prefetched tasks and hold their leases."""
        keeper = self._keeper
        try:
            popped = self._codec.decode_deliveries(self._queue, deliveries)
        except Exception as error:
            self._events.fetch_failed(error)
            return
        finally:
            if keeper is not None:
                keeper.unwatch(pending)
        for letter in popped.dead_lettered:
            self._events.dead_lettered(letter)
        fresh = list(zip(popped.tasks, popped.receipts, popped.ready_at, strict=True))
        if self._config.max_retries:
            fresh = self._screen_redeliveries(fresh, deliveries)
        if keeper is not None:
            everything = len(fresh) == len(deliveries.receipts)
            keeper.hold(deliveries.receipts if everything else [receipt for _, receipt, _ in fresh])
        self._prefetched.extend(fresh)
        self._accepted += len(fresh)

    @property
    def delivered(self) -> int:
        """How many tasks the iteration handed out so far."""
        return self._accepted - self._handed_back - len(self._prefetched)

    def _hand_back_stalled(self) -> None:
        """In the keeper's thread: give back the tasks waiting behind a task that runs long.

        Those received and those of the pop in flight. Taking from the right end of
        the deque while the iteration takes from the left is safe item by item (each
        operation is atomic); the iteration copes with finding it empty, and with
        finding no pop in flight.
        """
        delivered, now = self.delivered, time.monotonic()
        holding = bool(self._prefetched) or self._pending is not None
        if delivered != self._progress_seen or not holding or not self._suspended:
            self._progress_seen, self._stalled_since = delivered, now
            return
        if now - self._stalled_since < STALL_HAND_BACK:
            return
        waiting = self._take_waiting()
        request = self._take_pending()
        self._handed_back += len(waiting)
        self._nack(waiting)
        if request is not None:
            self._give_back(request)

    def _give_back(self, request: _Request) -> None:
        """Hand back the tasks of a pop in flight, undecoded; the acknowledgements it carried count."""
        keeper = self._keeper
        assert keeper is not None
        try:
            deliveries = request.pending.result()
        except Exception:  # the acknowledgements go with the next pop, which also recovers the items
            keeper.unwatch(request.pending)
            keeper.give_back_acks(request.acks)
            self._lost_pop = True
            return
        keeper.unwatch(request.pending)
        keeper.acked(request.acks)
        if deliveries.receipts:
            self._codec.connector.nack(self._queue, deliveries.receipts)

    def _take_waiting(self) -> list[LeasedTask]:
        """Empty the prefetched tasks, one atomic pop at a time (another thread may take too)."""
        waiting: list[LeasedTask] = []
        while True:
            try:
                waiting.append(self._prefetched.pop())
            except IndexError:
                return waiting[::-1]

    def _nack(self, unstarted: list[LeasedTask]) -> None:
        """Give leased tasks that never started back to the head of the queue, uncounted."""
        receipts = [receipt for _, receipt, _ in unstarted]
        for receipt in receipts:
            self.redelivered.pop(receipt, None)
        if receipts and self._keeper is not None:
            self._codec.connector.nack(self._queue, receipts)
            self._keeper.forget(receipts)

    def _screen_redeliveries(self, fresh: list[LeasedTask], deliveries: Deliveries) -> list[LeasedTask]:
        """Tasks to run; the ones whose deliveries used up ``max_retries`` go to the dead-letter queue.

        Unless :mod:`sergeant.loop.isolation` says to run one alone first. Tasks delivered
        again get an entry in :attr:`redelivered` with the name of their isolation note,
        deleted once they end.
        """
        limit = self._config.max_retries  # not 0: the caller screens only with a limit
        counts = deliveries.delivery_counts
        # may_run, inlined: the common batch has no redelivery and no task near its limit
        if counts.count(1) == len(counts) and all([task.run_count <= limit for task, _, _ in fresh]):
            return fresh
        payloads = dict(zip(deliveries.receipts, zip(deliveries.payloads, counts, strict=True), strict=True))
        kept = []
        for leased in fresh:
            task, receipt, _ = leased
            payload, delivery_count = payloads[receipt]
            note = note_name(self._queue, payload) if delivery_count > 1 else None
            run_count = task.run_count
            if may_run(run_count, limit):
                if note is not None:
                    self.redelivered[receipt] = Redelivery(note)
                kept.append(leased)
                continue
            if note is None:
                verdict = Verdict(False, f'its run_count {run_count} is above max_retries')
            else:
                verdict = judge(self._codec.connector, note, run_count, limit)
            if verdict.run_alone:
                self.redelivered[receipt] = Redelivery(note, alone=True)
                kept.append(leased)
                continue
            self._codec.dead_letter_task(self._queue, task, verdict.reason, [receipt])
            self._events.redeliveries_exhausted(task)
        return kept

    def _starvation_due(self, idle_since: float, reported_at: float) -> float | None:
        """When starvation is to be reported next (monotonic): an idle wait ends by then."""
        starvation = self._config.starvation
        if starvation is None:
            return None
        return max(idle_since, reported_at) + starvation.time_with_no_tasks

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
        """Acknowledge a finished task, or dead-letter it when it used up its retries.

        Safe to call from any thread while another iterates the stream.
        """
        task, receipt, _ = leased
        redelivery = self.redelivered.pop(receipt, None) if self.redelivered else None
        if redelivery is not None and redelivery.isolation_note is not None:
            self._codec.connector.key_delete(redelivery.isolation_note)
        if outcome is not _MAX_RETRIES:
            if self._ack is not None:
                self._ack(receipt)
            return
        reason = f'max retries ({self._config.max_retries}) exhausted'
        self._codec.dead_letter_task(self._queue, task, reason, [receipt])
        if self._keeper:
            self._keeper.forget([receipt])

    def close(self) -> None:
        """Hand prefetched tasks that never started back to the queue, then flush acks."""
        try:
            request = self._pending
            deliveries = self._receive()
            if request is not None and deliveries is not None:
                self._accept(deliveries, request.pending)
        finally:
            self._hand_back()

    def _hand_back(self) -> None:
        unstarted = self._take_waiting()
        if self._keeper is None:
            # at-most-once: popping deleted them, so they are pushed again
            self._codec.push_tasks(self._queue, [task for task, _, _ in unstarted], 'HIGH')
            return
        try:
            self._nack(unstarted)
        finally:
            self._keeper.close()


def _nothing_else_runs() -> None:
    """``before_alone`` of a stream run one task at a time."""


@dataclasses.dataclass(slots=True)
class _Request:
    """A pop in flight and the acknowledgements it carries."""

    pending: PendingPop
    acks: list[bytes]


_MAX_RETRIES = Outcome.MAX_RETRIES
