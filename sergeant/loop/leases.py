"""Keeps the leases of a worker's held tasks alive and batches their acknowledgements.

A background thread extends every held lease each third of the lease period, so a
long task is not redelivered while it still runs, and sends acknowledgements that
no pop carried within :data:`ACK_DELAY` (a worker gone idle sends no more pops, yet
its finished tasks must not look in flight to probes and the operator, nor run
again should it be killed). A receipt stays held (its
lease extended) from the pop until its acknowledgement was sent, so a finished
task cannot be redelivered while its ack waits. Pops still in flight are watched
too: their items are leased from the moment Redis ran the pop, so the thread
collects the answer of a pop pending for long (the worker is busy with a long
task) and extends those leases as well. Failures in the thread are logged and
retried, never fatal: the worst case is a redelivery, which at-least-once
delivery allows.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from ..connector import Connector, PendingPop
from ..logging.outages import OutageLog
from .held import HeldReceipts

ACK_DELAY = 0.05  # the thread looks this often; an ack no pop took by the next look is sent alone


class LeaseKeeper:
    """Tracks receipts of one queue: held (leased by this worker) and done (to ack)."""

    def __init__(
        self, connector: Connector, queue: str, lease_seconds: float, logger: logging.Logger
    ) -> None:
        self._connector = connector
        self._queue = queue
        self._lease_seconds = lease_seconds
        self._logger = logger
        self._held = HeldReceipts()
        self._pending: list[PendingPop] = []
        # appended to by the task threads without a lock (deque.append is atomic);
        # only the takers (the stream, this thread) share a lock
        self._acks: deque[bytes] = deque()
        self._take_guard = threading.Lock()
        self._guard = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.done = self._acks.append
        """``done(receipt)``: the task finished; acknowledge it soon (called once per task)."""
        self._on_tick: Callable[[], None] | None = None
        self._extend_outage = OutageLog(logger, 'extend leases', logging.WARNING)
        self._ack_outage = OutageLog(logger, 'acknowledge tasks', logging.WARNING, then='will retry')

    def every_tick(self, callback: Callable[[], None]) -> None:
        """Also call ``callback`` from the keeper's thread every :data:`ACK_DELAY` seconds."""
        self._on_tick = callback

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f'sergeant-lease-{self._queue}', daemon=True)
        self._thread.start()

    def hold(self, receipts: Sequence[bytes]) -> None:
        with self._guard:
            self._held.add(receipts)

    def forget(self, receipts: Sequence[bytes]) -> None:
        """Stop tracking receipts that were acknowledged or settled some other way."""
        if not receipts:
            return
        with self._guard:
            self._held.remove(receipts)

    def held(self) -> list[bytes]:
        """The receipts held now: leased to this worker and not acknowledged yet."""
        with self._guard:
            return list(self._held)

    def watch(self, pending: PendingPop) -> None:
        """Extend the leases of a pop in flight too, should it stay uncollected for long."""
        with self._guard:
            self._pending.append(pending)

    def unwatch(self, pending: PendingPop) -> None:
        with self._guard:
            if pending in self._pending:
                self._pending.remove(pending)

    def take_acks(self) -> list[bytes]:
        """Acknowledgements to send; pass them to :meth:`acked` or :meth:`give_back_acks` after."""
        take = self._acks.popleft
        with self._take_guard:  # popleft called from C: a Python loop costs twice as much
            return list(itertools.starmap(take, itertools.repeat((), len(self._acks))))

    def acked(self, acks: Sequence[bytes]) -> None:
        """The acknowledgements were sent: those leases are gone."""
        self.forget(acks)

    def give_back_acks(self, acks: Sequence[bytes]) -> None:
        """Keep acknowledgements whose sending failed, to try again later."""
        with self._take_guard:
            self._acks.extendleft(reversed(acks))

    def close(self) -> None:
        """Stop the thread and send the acknowledgements still waiting."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        self._flush_acks()

    def _run(self) -> None:
        extend_every = self._lease_seconds / 3
        next_extension = time.monotonic() + extend_every
        oldest_ack: bytes | None = None
        while not self._stopping.wait(ACK_DELAY):
            # the same receipt at the head twice in a row: it waited at least ACK_DELAY for a pop
            try:
                head: bytes | None = self._acks[0]
            except IndexError:  # none waiting (or a pop took them just now)
                head = None
            if head is not None and head is oldest_ack:
                self._flush_acks()
                head = None
            oldest_ack = head
            if self._on_tick is not None:
                try:
                    self._on_tick()
                except Exception as error:  # a redelivery at worst; never the end of the upkeep
                    self._logger.warning('lease keeper tick failed: %s', error)
            if time.monotonic() >= next_extension:
                self._extend()
                next_extension = time.monotonic() + extend_every

    def _extend(self) -> None:
        """Extend every held lease, pops in flight included, then send waiting acknowledgements."""
        with self._guard:
            held = list(self._held)
            pending = list(self._pending)
        for waiting in pending:
            # a failed pop leased nothing; the worker reports the same error
            with contextlib.suppress(Exception):
                held += waiting.result().receipts
        try:
            if held:
                self._connector.extend_leases(self._queue, held, self._lease_seconds)
        except Exception as error:
            self._extend_outage.failed(error)
        else:
            self._extend_outage.worked()
        self._flush_acks()

    def _flush_acks(self) -> None:
        acks = self.take_acks()
        if not acks:
            return
        try:
            self._connector.ack(self._queue, acks)
        except Exception as error:
            self._ack_outage.failed(error)
            self.give_back_acks(acks)
        else:
            self._ack_outage.worked()
            self.acked(acks)
