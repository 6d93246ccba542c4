"""The connector contract: the one interface every broker backend implements.

A connector moves opaque ``bytes`` between producers and workers; it never sees a
Task. The broker layer above it turns Tasks into bytes and back. Every backend
passes the same contract suite (``tests/connector/test_contract.py``) against a
real server.

Delivery model
--------------
* ``push`` appends payloads to a queue's *ready* list (``HIGH`` priority goes
  before ``NORMAL``), or to its *delayed* set when ``consumable_from`` is in the
  future.
* ``pop`` with ``lease_seconds`` claims payloads: each claimed item becomes a
  :class:`Message` invisible to every other consumer until it is acknowledged
  (``ack``), handed back (``nack``), or its lease runs out, at which point it
  becomes ready again and its ``delivery_count`` goes up by one. That is
  at-least-once delivery. ``pop`` with ``lease_seconds=None`` deletes what it
  returns: at-most-once, Sergeant 0.27's behaviour.
* A receipt names one *delivery*, not one item: after a lease expired and the item
  was delivered again, the first receipt no longer acknowledges anything.
* Each queue has a dead-letter queue holding :class:`DeadLetter` entries, each
  named by an ``id`` the backend gives it, so that an operator can look at one
  letter and put chosen ones back (``find_dead_letters``,
  ``requeue_dead_letters_by_id``).
* ``queues`` names every queue holding anything, and ``head_pushed_at`` says how
  long the next item in line has waited: what ``sergeant queues`` shows.
* ``begin_pop`` (optional) sends a pop and returns a :class:`PendingPop` whose
  answer is read later, so a worker's next tasks travel while it runs the
  current ones. The default pops at once; the Redis connector overrides it.
* Leases carry an owner: the connector's :attr:`Connector.lease_owner` (a worker
  process sets it to ``<pod or host>/<pid>``) is recorded with every lease a pop
  takes. :meth:`Connector.leases_by_owner` counts what each owner holds, and once
  an owner is known dead, :meth:`Connector.release_owner` hands everything it held
  back at once instead of waiting for the leases to run out: the deliveries that
  had started count as deliveries, the others (prefetched, or in a pop whose answer
  the owner never read) go back uncounted.
* ``wait_for_work`` (optional) is where an idle consumer waits after a pop came
  back empty. The default sleeps (the consumer polls); the Redis connector blocks
  until a push wakes it and the local one watches the database file for commits.
"""

from __future__ import annotations

import abc
import dataclasses
import operator
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Literal, overload

POD_NAME_VARIABLE = 'POD_NAME'  # set by the operator's Deployments through the downward API


def process_lease_owner() -> str:
    """The lease owner of this process: ``<pod or host name>/<pid>``."""
    return f'{os.environ.get(POD_NAME_VARIABLE) or socket.gethostname()}/{os.getpid()}'


Priority = Literal['NORMAL', 'HIGH']
PRIORITIES: tuple[Priority, ...] = ('NORMAL', 'HIGH')


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    """One delivery of a queued payload.

    ``receipt`` is an opaque token for ``ack``, ``nack``, ``extend_leases`` and
    ``dead_letter``. ``delivery_count`` is 1 on the first delivery and grows by one
    each time an expired lease makes the item visible again.
    """

    payload: bytes
    receipt: bytes
    delivery_count: int = 1


@dataclasses.dataclass(frozen=True, slots=True)
class DeadLetter:
    """A payload that will not be processed again unless requeued, and why.

    ``id`` names a stored letter within its queue's dead letters (read back from the
    backend); it is empty on a letter about to be stored, and ignored by ``dead_letter``.
    """

    payload: bytes
    reason: str
    failed_at: float = dataclasses.field(default_factory=time.time)
    id: str = ''


class FramedPayloads(Sequence[bytes]):
    """Payloads that sit in stored items after a header of ``offset`` bytes, cut out when read.

    A decoder that copies the payloads anyway (``unpickle_spliced``) reads ``items`` in place
    and saves the copies; everything else sees a sequence of payloads.
    """

    __slots__ = ('_cut', 'items', 'offset')

    def __init__(self, items: list[bytes], offset: int) -> None:
        self.items = items
        self.offset = offset
        self._cut = operator.itemgetter(slice(offset, None))

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, index: int) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> list[bytes]: ...

    def __getitem__(self, index: int | slice) -> bytes | list[bytes]:
        if isinstance(index, slice):
            return list(map(self._cut, self.items[index]))
        cut: bytes = self._cut(self.items[index])
        return cut

    def __iter__(self) -> Iterator[bytes]:
        return map(self._cut, self.items)

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence of the same payloads (a list of them, say)."""
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(other) == len(self.items) and all(map(operator.eq, self, other))

    __hash__ = None  # type: ignore[assignment]  # mutable items: equality only

    def __repr__(self) -> str:
        return f'FramedPayloads({list(self)!r})'


@dataclasses.dataclass(slots=True)
class Deliveries:
    """The messages of one pop as three parallel lists (see :meth:`Connector.begin_pop`).

    The same information as a list of :class:`Message`, without an object per
    message: the worker's hot path reads thousands of them per second.
    """

    payloads: Sequence[bytes]
    receipts: list[bytes]
    delivery_counts: list[int]

    @classmethod
    def of(cls, messages: Sequence[Message]) -> Deliveries:
        return cls(
            [message.payload for message in messages],
            [message.receipt for message in messages],
            [message.delivery_count for message in messages],
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Released:
    """What :meth:`Connector.release_owner` handed back.

    ``charged`` holds the payloads of the deliveries that had started (their next
    delivery counts one more); ``uncharged`` is how many went back uncounted.
    """

    charged: list[bytes]
    uncharged: int


class PendingPop(abc.ABC):
    """A pop that was sent to the backend; :meth:`result` collects its answer.

    Items are leased from the moment the backend ran the pop, not from the call to
    ``result``. ``result`` may be called from any thread, any number of times: the
    first call waits for the answer (or its error), later calls return (or raise)
    the same. The caller must call it once eventually, so the connection it uses
    is free again.
    """

    @abc.abstractmethod
    def result(self) -> Deliveries:
        """The popped messages; raises ConnectorError when the pop failed."""


class CompletedPop(PendingPop):
    """A pending pop whose answer (or error) is already known."""

    def __init__(self, deliveries: Deliveries | None = None, error: Exception | None = None) -> None:
        self._deliveries = deliveries
        self._error = error

    def result(self) -> Deliveries:
        if self._error is not None:
            raise self._error
        assert self._deliveries is not None
        return self._deliveries


def check_priority(priority: str) -> Priority:
    if priority == 'NORMAL':
        return 'NORMAL'
    if priority == 'HIGH':
        return 'HIGH'
    raise ValueError(f'priority must be one of {PRIORITIES}, got {priority!r}')


class Lock(abc.ABC):
    """A named, expiring lock carrying an owner token.

    Only the holder that acquired the lock can release it or change its ttl, so a
    holder whose lock expired and was taken by someone else cannot release the new
    owner's lock. Backends implement the ``_try_acquire``/``_release``/… primitives;
    the polling loop lives here once.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.token = secrets.token_bytes(16)
        self.acquired = False

    def acquire(
        self,
        timeout: float | None = None,
        check_interval: float = 1.0,
        ttl: int = 60,
    ) -> bool:
        """Try to take the lock, polling every ``check_interval`` seconds.

        ``timeout=None`` waits forever. The lock expires ``ttl`` seconds after it
        was taken unless released or extended with :meth:`set_ttl`.
        """
        if ttl <= 0:
            raise ValueError(f'ttl must be positive, got {ttl!r}')
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._try_acquire(ttl):
                self.acquired = True
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            pause = check_interval
            if deadline is not None:
                pause = max(0.0, min(check_interval, deadline - time.monotonic()))
            time.sleep(pause)

    def release(self) -> bool:
        """Release the lock if this object holds it; True when it was released."""
        if not self.acquired:
            return False
        self.acquired = False
        return self._release()

    @abc.abstractmethod
    def _try_acquire(self, ttl: int) -> bool:
        """Take the lock once, atomically, if nobody holds it."""

    @abc.abstractmethod
    def _release(self) -> bool:
        """Delete the lock if its stored token is ours."""

    @abc.abstractmethod
    def is_locked(self) -> bool:
        """True while anyone holds the lock."""

    @abc.abstractmethod
    def set_ttl(self, ttl: int) -> bool:
        """Set the remaining lifetime of a lock this object holds."""

    @abc.abstractmethod
    def get_ttl(self) -> int | None:
        """Seconds left before the lock expires, or None when it is not held."""


class Connector(abc.ABC):
    """Queues, dead-letter queues, keys and locks on one backend."""

    lease_owner: str | None = None
    """Recorded with every lease this connector's pops take (see the module docstring)."""

    # -- queues -------------------------------------------------------------

    @abc.abstractmethod
    def push(
        self,
        queue: str,
        payloads: Sequence[bytes],
        priority: Priority = 'NORMAL',
        consumable_from: float | None = None,
    ) -> int:
        """Enqueue payloads; return how many were stored.

        ``consumable_from`` (a UNIX time) keeps them delayed, invisible to ``pop``
        until that time.
        """

    @abc.abstractmethod
    def pop(
        self,
        queue: str,
        count: int,
        lease_seconds: float | None,
        ack: Sequence[bytes] = (),
    ) -> list[Message]:
        """Claim up to ``count`` ready payloads, oldest first, ``HIGH`` before ``NORMAL``.

        Delayed payloads whose time has come are ready. With ``lease_seconds`` each
        returned message is leased; with None the items are deleted. ``ack`` holds
        receipts to acknowledge first, in the same round trip where the backend
        allows it.
        """

    def begin_pop(
        self,
        queue: str,
        count: int,
        lease_seconds: float | None,
        ack: Sequence[bytes] = (),
    ) -> PendingPop:
        """Optional: send a ``pop`` now and collect its answer later.

        Same meaning as :meth:`pop`; a worker calls it to have the next tasks
        travel while it runs the current ones. The default pops at once and
        returns the answer (or the error) as a :class:`CompletedPop`; a backend
        that can leave a request in flight overrides it.
        """
        try:
            return CompletedPop(Deliveries.of(self.pop(queue, count, lease_seconds, ack)))
        except Exception as error:
            return CompletedPop(error=error)

    def wait_for_work(
        self,
        queue: str,
        poll_interval: float,
        should_stop: Callable[[], bool],
        deadline: float | None = None,
    ) -> None:
        """Optional: return once ``queue`` may have ready items; called after a pop came back empty.

        ``poll_interval`` is how long the caller would sleep before popping again:
        the default sleeps that long. A backend told of pushes overrides it to return
        as soon as one happens, or a delayed item or a lease falls due, and may then
        wait longer than ``poll_interval`` (a few seconds at most, so that items made
        ready without a notification are still found); it returns within about 0.1 s
        once ``should_stop()`` is true, and by ``deadline`` (a ``time.monotonic()``
        value: the caller has something to do then, such as reporting starvation) at
        the latest. Returning early only costs an empty pop.
        """
        if deadline is not None:
            poll_interval = min(poll_interval, deadline - time.monotonic())
        if poll_interval > 0:
            time.sleep(poll_interval)

    @abc.abstractmethod
    def ack(self, queue: str, receipts: Sequence[bytes]) -> int:
        """Delete leased items for good; return how many leases were still held."""

    @abc.abstractmethod
    def nack(self, queue: str, receipts: Sequence[bytes]) -> int:
        """Hand leased items back to the head of the queue at once.

        Used for prefetched items that never started. Not counted as a new
        delivery. Returns how many leases were still held.
        """

    @abc.abstractmethod
    def extend_leases(self, queue: str, receipts: Sequence[bytes], lease_seconds: float) -> int:
        """Push the lease of held items to ``now + lease_seconds``; return how many were held."""

    @abc.abstractmethod
    def leases_by_owner(self, queue: str) -> dict[str, int]:
        """Items currently leased, per lease owner (leases taken without an owner are left out)."""

    @abc.abstractmethod
    def release_owner(
        self, queue: str, owner: str, started: Sequence[bytes], keep: Sequence[bytes] = ()
    ) -> Released:
        """Hand every item ``owner`` still holds back to the head of the queue at once.

        For a consumer known to be gone (its process died). The items whose receipt is
        in ``started`` had started running: their next delivery counts one more, as
        after an expired lease. The others go back uncounted, as with ``nack``. Items
        whose lease already expired are left to the next pop. Items whose receipt is in
        ``keep`` stay leased: a living owner passes the receipts it knows, to get back
        the items of a pop whose answer it lost (a connection that broke after the pop ran).
        """

    @abc.abstractmethod
    def length(self, queue: str, include_delayed: bool = False) -> int:
        """Ready items, plus delayed ones when ``include_delayed`` (leased items excluded)."""

    @abc.abstractmethod
    def in_flight(self, queue: str) -> int:
        """Items currently leased by consumers."""

    @abc.abstractmethod
    def queues(self) -> list[str]:
        """The names of every queue holding ready, delayed or leased items or dead letters, sorted."""

    @abc.abstractmethod
    def head_pushed_at(self, queue: str) -> float | None:
        """When the next ready item a pop would take was pushed (a UNIX time).

        None when no item is ready, or when the backend cannot tell (an item written
        by an earlier version or another client). With several nodes: the earliest of
        their heads. A requeued dead letter counts as pushed when it was requeued.
        """

    @abc.abstractmethod
    def delete(self, queue: str) -> bool:
        """Remove ready, delayed and leased items; True when anything was removed.

        The dead-letter queue is left alone (see ``purge_dead_letters``).
        """

    # -- dead letters -------------------------------------------------------

    @abc.abstractmethod
    def dead_letter(
        self,
        queue: str,
        letters: Sequence[DeadLetter],
        receipts: Sequence[bytes] = (),
    ) -> int:
        """Append letters to the queue's dead-letter queue and ack ``receipts``."""

    @abc.abstractmethod
    def dead_letters(self, queue: str, count: int = 100) -> list[DeadLetter]:
        """Read up to ``count`` dead letters, oldest first, without removing them; ids filled in."""

    @abc.abstractmethod
    def find_dead_letters(self, queue: str, ids: Sequence[str]) -> list[DeadLetter]:
        """The stored dead letters named by ``ids``, oldest first; ids not found are left out."""

    @abc.abstractmethod
    def dead_letter_length(self, queue: str) -> int:
        """How many dead letters the queue holds."""

    @abc.abstractmethod
    def requeue_dead_letters(self, queue: str, count: int | None = None) -> int:
        """Move up to ``count`` (all when None) oldest dead letters back to the ready queue."""

    @abc.abstractmethod
    def requeue_dead_letters_by_id(
        self, queue: str, ids: Sequence[str], payloads: Mapping[str, bytes] | None = None
    ) -> int:
        """Move the dead letters named by ``ids`` back to the tail of the ready queue.

        Each letter moves at most once, atomically: a letter another caller moved (or
        purged) meanwhile is skipped, never pushed twice. ``payloads`` maps an id to
        the payload to push instead of the letter's own (e.g. the task with its retries
        reset). Returns how many letters were moved.
        """

    @abc.abstractmethod
    def purge_dead_letters(self, queue: str, count: int | None = None) -> int:
        """Delete the ``count`` oldest (all when None) dead letters of the queue; return how many."""

    # -- keys and locks -----------------------------------------------------

    @abc.abstractmethod
    def key_set(self, key: str, value: bytes) -> bool:
        """Store a value; True when the key did not exist before."""

    @abc.abstractmethod
    def key_get(self, key: str) -> bytes | None:
        """The stored value, or None."""

    @abc.abstractmethod
    def key_delete(self, key: str) -> bool:
        """True when a key was deleted."""

    @abc.abstractmethod
    def lock(self, name: str) -> Lock:
        """A lock object for ``name`` (not yet acquired)."""

    # -- lifecycle ----------------------------------------------------------

    def ping(self) -> bool:
        """True when the backend answers; connectors override with a real probe."""
        return True

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op for connectors without resources
        """Release connections. The connector must not be used afterwards."""
