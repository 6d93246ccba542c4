"""Keeps the leases of a worker's held tasks alive and batches their acknowledgements.

A background thread extends every held lease each third of the lease period, so a
long task is not redelivered while it still runs, and flushes acknowledgements
that were not already sent along with the next pop. Failures in the thread are
logged and retried, never fatal: the worst case is a redelivery, which
at-least-once delivery allows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from .connector import Connector


class LeaseKeeper:
    """Tracks receipts of one queue: held (running or prefetched) and done (to ack)."""

    def __init__(
        self, connector: Connector, queue: str, lease_seconds: float, logger: logging.Logger
    ) -> None:
        self._connector = connector
        self._queue = queue
        self._lease_seconds = lease_seconds
        self._logger = logger
        self._held: dict[bytes, None] = {}
        self._acks: list[bytes] = []
        self._guard = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f'sergeant-lease-{self._queue}', daemon=True)
        self._thread.start()

    def hold(self, receipts: Sequence[bytes]) -> None:
        with self._guard:
            self._held.update(dict.fromkeys(receipts))

    def done(self, receipt: bytes) -> None:
        """The task finished: stop extending its lease and acknowledge it soon."""
        with self._guard:
            self._held.pop(receipt, None)
            self._acks.append(receipt)

    def forget(self, receipts: Sequence[bytes]) -> None:
        """Stop tracking receipts that were settled some other way (dead-lettered, nacked)."""
        with self._guard:
            for receipt in receipts:
                self._held.pop(receipt, None)

    def take_acks(self) -> list[bytes]:
        with self._guard:
            acks, self._acks = self._acks, []
        return acks

    def give_back_acks(self, acks: Sequence[bytes]) -> None:
        """Keep acknowledgements whose sending failed, to try again later."""
        with self._guard:
            self._acks[:0] = acks

    def close(self) -> None:
        """Stop the thread and send the acknowledgements still waiting."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        self._flush_acks()

    def _run(self) -> None:
        interval = self._lease_seconds / 3
        while not self._stopping.wait(interval):
            with self._guard:
                held = list(self._held)
            try:
                if held:
                    self._connector.extend_leases(self._queue, held, self._lease_seconds)
            except Exception as error:
                self._logger.warning('could not extend %d leases: %s', len(held), error)
            self._flush_acks()

    def _flush_acks(self) -> None:
        acks = self.take_acks()
        if not acks:
            return
        try:
            self._connector.ack(self._queue, acks)
        except Exception as error:
            self._logger.warning('could not acknowledge %d tasks, will retry: %s', len(acks), error)
            self.give_back_acks(acks)
