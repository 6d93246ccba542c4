"""The Redis broker: queues, dead letters, keys and locks on one or more Redis servers.

With several ``nodes`` (independent servers, as in Sergeant 0.27) each push goes to
the next node round robin, and a pop starts at a rotating node and moves on to
the next ones until it has ``count`` items; order therefore holds per node only.
A receipt is one node byte followed by the node's receipt (lease group and
position), so acks, nacks, lease extensions and dead-lettering go back to the
node the message came from (with a single node, no node byte: nothing to route). A
queue's dead letters, keys and locks live on the node picked by a CRC32 of their
name.

With ``cluster`` params the connector talks to one Redis Cluster through redis-py's
cluster client, as to one node: each queue's keys share a hash tag
(:func:`~.redis_node.cluster_queue_keys`), so each queue lives in one slot, on one
master, with its order kept, and queues spread over the cluster's masters. Keys and
locks are single Redis keys, named as on a standalone server.

Per-node work, the key layout and the item format are in
:mod:`sergeant.connector.redis_node`; params in :mod:`sergeant.connector.redis_params`.
Needs Redis 6.2 or later (LPOP with a count, ZMSCORE, SET ... GET).

An idle worker of a single node blocks on its queue's wake list instead of polling
(:meth:`RedisConnector.wait_for_work`): every push leaves a token there (on a
cluster too, on the master serving the queue's slot).

With one standalone node, :meth:`RedisConnector.begin_pop` sends a worker's next pop on a
connection of its own and reads the answer only when the worker needs it, so
the round trip overlaps with running tasks (:class:`~.redis_node.PopChannel`).
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
import secrets
import struct
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar, cast

import redis

from ..errors import ConnectorError
from .base import (
    CompletedPop,
    Connector,
    DeadLetter,
    Deliveries,
    FramedPayloads,
    Lock,
    Message,
    PendingPop,
    Priority,
    Released,
    check_priority,
)
from .redis_node import (
    HEADER_SIZE,
    ID_SIZE,
    PopArguments,
    PopChannel,
    QueueKeys,
    RedisNode,
    cluster_queue_keys,
    dead_letter_id,
    decode_dead_letter,
    encode_dead_letter,
    key_name,
    lock_name,
    new_items,
    queue_keys,
)
from .redis_params import ClusterParams, NodeParams, create_client, create_cluster_client, parse_params
from .redis_receipts import group_receipts, new_group_id

__all__ = ['RedisConnector', 'RedisLock']

_COUNTER = struct.Struct('>I')  # the delivery counter after the id of a stored item
_COUNTER_BYTES = operator.itemgetter(slice(ID_SIZE, HEADER_SIZE))
_FIRST_DELIVERY = _COUNTER.pack(1)
# redis-py's errors; its cluster client raises some (no slot covered, say) outside RedisError
_DRIVER_ERRORS = (redis.RedisError, redis.exceptions.RedisClusterException)
_P = ParamSpec('_P')
_R = TypeVar('_R')


def _driver_errors(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Re-raise redis-py's errors as ConnectorError, chained."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except _DRIVER_ERRORS as error:
            raise ConnectorError(f'Redis {method.__name__} failed: {error}') from error

    return wrapper


def _payloads_and_counts(items: list[bytes]) -> tuple[Sequence[bytes], list[int]]:
    """The payloads and delivery counters of stored items.

    An item shorter than our header was not written by us (anyone with write access can
    push to the list): it is handed on whole, as a first delivery, so the codec
    dead-letters it with its reason (or runs it, should it be a task) instead of the pop
    failing on it.
    """
    # mapped C functions: a loop in Python costs twice as much per item
    counters = list(map(_COUNTER_BYTES, items))
    if counters.count(_FIRST_DELIVERY) == len(counters):
        # the common case: nothing delivered before (and so every item as long as our header)
        return FramedPayloads(items, HEADER_SIZE), [1] * len(items)
    if min(map(len, items)) < HEADER_SIZE:
        counter = _COUNTER.unpack_from
        return (
            [item[HEADER_SIZE:] if len(item) >= HEADER_SIZE else item for item in items],
            [counter(item, ID_SIZE)[0] if len(item) >= HEADER_SIZE else 1 for item in items],
        )
    counts = [int.from_bytes(counter_bytes, 'big') for counter_bytes in counters]
    return FramedPayloads(items, HEADER_SIZE), counts


def _messages(prefix: bytes, items: list[bytes], group_id: bytes | None) -> list[Message]:
    """Messages of items popped from one node, leased as ``group_id`` (None: at-most-once)."""
    # popping at-most-once deleted the items: there is nothing a receipt could settle
    receipts = [b''] * len(items) if group_id is None else group_receipts(group_id, len(items))
    payloads, counts = _payloads_and_counts(items)
    return [
        Message(payload, prefix + receipt, count)
        for payload, receipt, count in zip(payloads, receipts, counts, strict=True)
    ]


def _deliveries(items: list[bytes], group_id: bytes | None) -> Deliveries:
    """The Deliveries of items popped from the only node."""
    payloads, counts = _payloads_and_counts(items)
    receipts = [b''] * len(items) if group_id is None else group_receipts(group_id, len(items))
    return Deliveries(payloads, receipts, counts)


def _connector_error(operation: str, error: Exception) -> ConnectorError:
    wrapped = ConnectorError(f'Redis {operation} failed: {error}')
    wrapped.__cause__ = error
    return wrapped


class _SentPop(PendingPop):
    """A pop in flight on a node's :class:`PopChannel`; the first ``result`` reads it."""

    def __init__(self, channel: PopChannel, keys: QueueKeys, pop: PopArguments) -> None:
        self._channel = channel
        self._keys = keys
        self._pop = pop
        self._guard = threading.Lock()
        self._answer: CompletedPop | None = None

    def result(self) -> Deliveries:
        with self._guard:
            if self._answer is None:
                pop = self._pop
                try:
                    items = self._channel.read(self._keys, pop)
                    self._answer = CompletedPop(
                        _deliveries(items, pop.group_id if pop.lease_ms >= 0 else None)
                    )
                except _DRIVER_ERRORS as error:
                    self._answer = CompletedPop(error=_connector_error('pop', error))
        return self._answer.result()


def _dead_letter_of(letter: bytes) -> DeadLetter:
    payload, reason, failed_at = decode_dead_letter(letter)
    return DeadLetter(payload, reason, failed_at, dead_letter_id(letter))


def _lease_ms(lease_seconds: float) -> int:
    return max(0, math.ceil(lease_seconds * 1000))


class RedisConnector(Connector):
    """Connector on one or more independent Redis servers, or on one Redis Cluster."""

    def __init__(self, nodes: Sequence[NodeParams] | ClusterParams) -> None:
        self._nodes: list[RedisNode] = []
        self._keys: Callable[[str], QueueKeys] = queue_keys
        if isinstance(nodes, ClusterParams):
            self._keys = cluster_queue_keys
            try:
                client = create_cluster_client(nodes)
            except _DRIVER_ERRORS as error:
                # the cluster client learns the slots at once: an unreachable cluster fails here
                raise ConnectorError(f'Redis Cluster unreachable: {error}') from error
            self._nodes.append(RedisNode(cast('redis.Redis', client), cluster=True))
        else:
            try:
                for node in nodes:
                    self._nodes.append(RedisNode(create_client(node)))
            except BaseException:
                self.close()
                raise
        # a receipt is the node's index byte then the node's receipt; with one node, no prefix
        self._prefixes = (
            [bytes([index]) for index in range(len(self._nodes))] if len(self._nodes) > 1 else [b'']
        )
        single = len(self._nodes) == 1 and not self._nodes[0].cluster
        self._channel = PopChannel(self._nodes[0]) if single else None
        self._push_turn = itertools.count(secrets.randbelow(len(self._nodes)))
        self._pop_turn = itertools.count(secrets.randbelow(len(self._nodes)))

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> RedisConnector:
        return cls(parse_params(params))

    def _home_index(self, name: str) -> int:
        return zlib.crc32(name.encode()) % len(self._nodes)

    def _home(self, name: str) -> RedisNode:
        return self._nodes[self._home_index(name)]

    def _by_node(self, receipts: Sequence[bytes]) -> dict[int, list[bytes]]:
        """The nodes' receipts, grouped by node; unknown receipts are dropped."""
        nodes = len(self._nodes)
        if nodes == 1:
            # one node: the receipt is the node's own
            return {0: list(receipts)} if receipts else {}
        groups: dict[int, list[bytes]] = {}
        for receipt in receipts:
            if receipt and receipt[0] < nodes:
                groups.setdefault(receipt[0], []).append(receipt[1:])
        return groups

    # -- queues -------------------------------------------------------------------

    @_driver_errors
    def push(
        self,
        queue: str,
        payloads: Sequence[bytes],
        priority: Priority = 'NORMAL',
        consumable_from: float | None = None,
    ) -> int:
        at_head = check_priority(priority) == 'HIGH'
        if not payloads:
            return 0
        node = self._nodes[next(self._push_turn) % len(self._nodes)]
        items = new_items(payloads)
        if consumable_from is not None and consumable_from > time.time():
            node.push_delayed(self._keys(queue), items, at_head, math.ceil(consumable_from * 1000))
        else:
            node.push_ready(self._keys(queue), items, at_head)
        return len(items)

    @_driver_errors
    def pop(
        self,
        queue: str,
        count: int,
        lease_seconds: float | None,
        ack: Sequence[bytes] = (),
    ) -> list[Message]:
        keys = self._keys(queue)
        lease_ms = -1 if lease_seconds is None else _lease_ms(lease_seconds)
        acks = self._by_node(ack) if ack else {}
        nodes = len(self._nodes)
        start = next(self._pop_turn) % nodes if nodes > 1 else 0
        messages: list[Message] = []
        for index in itertools.chain(range(start, nodes), range(start)):
            wanted = max(0, count - len(messages))
            node_acks = acks.get(index, ())
            if wanted or node_acks:
                group_id = new_group_id()
                pop = PopArguments(wanted, lease_ms, group_id, self.lease_owner or '', node_acks)
                items = self._nodes[index].pop(keys, pop)
                leased_as = group_id if lease_ms >= 0 else None
                messages += _messages(self._prefixes[index], items, leased_as)
        return messages

    def begin_pop(
        self,
        queue: str,
        count: int,
        lease_seconds: float | None,
        ack: Sequence[bytes] = (),
    ) -> PendingPop:
        """Send the pop on a connection of its own and read the answer in ``result``.

        One standalone node only, one pop in flight: otherwise (several nodes, a
        cluster, or a pop of this connector still in flight) it pops at once, as the
        contract's default.
        """
        channel = self._channel
        if channel is None:
            return super().begin_pop(queue, count, lease_seconds, ack)
        keys = self._keys(queue)
        lease_ms = -1 if lease_seconds is None else _lease_ms(lease_seconds)
        acks = self._by_node(ack).get(0, []) if ack else []
        pop = PopArguments(count, lease_ms, new_group_id(), self.lease_owner or '', acks)
        try:
            sent = channel.try_send(keys, pop)
        except _DRIVER_ERRORS as error:
            return CompletedPop(error=_connector_error('pop', error))
        if not sent:
            return super().begin_pop(queue, count, lease_seconds, ack)
        return _SentPop(channel, keys, pop)

    def wait_for_work(
        self,
        queue: str,
        poll_interval: float,
        should_stop: Callable[[], bool],
        deadline: float | None = None,
    ) -> None:
        """Block on the queue's wake tokens (``lua/wake.lua``); with several nodes, poll.

        Pushes to any one of several nodes would need a wait on each, so those poll as
        the contract's default. An error while waiting falls back to it too: the next
        pop reports it.
        """
        if len(self._nodes) == 1:
            try:
                if self._nodes[0].wait_for_work(self._keys(queue), should_stop, deadline):
                    return
            except _DRIVER_ERRORS:
                pass
        super().wait_for_work(queue, poll_interval, should_stop, deadline)

    @_driver_errors
    def ack(self, queue: str, receipts: Sequence[bytes]) -> int:
        keys = self._keys(queue)
        return sum(self._nodes[index].ack(keys, held) for index, held in self._by_node(receipts).items())

    @_driver_errors
    def nack(self, queue: str, receipts: Sequence[bytes]) -> int:
        keys = self._keys(queue)
        return sum(self._nodes[index].nack(keys, held) for index, held in self._by_node(receipts).items())

    @_driver_errors
    def extend_leases(self, queue: str, receipts: Sequence[bytes], lease_seconds: float) -> int:
        keys, lease_ms = self._keys(queue), _lease_ms(lease_seconds)
        return sum(
            self._nodes[index].extend_leases(keys, held, lease_ms)
            for index, held in self._by_node(receipts).items()
        )

    @_driver_errors
    def leases_by_owner(self, queue: str) -> dict[str, int]:
        keys, counts = self._keys(queue), Counter[str]()
        for node in self._nodes:
            counts.update(node.leases_by_owner(keys))
        return dict(counts)

    @_driver_errors
    def release_owner(
        self, queue: str, owner: str, started: Sequence[bytes], keep: Sequence[bytes] = ()
    ) -> Released:
        keys, started_by_node, keep_by_node = self._keys(queue), self._by_node(started), self._by_node(keep)
        charged: list[bytes] = []
        uncharged = 0
        for index, node in enumerate(self._nodes):
            node_started, node_keep = started_by_node.get(index, ()), keep_by_node.get(index, ())
            items, back = node.release_owner(keys, owner, node_started, node_keep)
            charged += _payloads_and_counts(items)[0]
            uncharged += back
        return Released(charged, uncharged)

    @_driver_errors
    def length(self, queue: str, include_delayed: bool = False) -> int:
        keys = self._keys(queue)
        return sum(node.length(keys, include_delayed) for node in self._nodes)

    @_driver_errors
    def in_flight(self, queue: str) -> int:
        keys = self._keys(queue)
        return sum(node.in_flight(keys) for node in self._nodes)

    @_driver_errors
    def queues(self) -> list[str]:
        return sorted(set().union(*[node.queues() for node in self._nodes]))

    @_driver_errors
    def head_pushed_at(self, queue: str) -> float | None:
        keys = self._keys(queue)
        heads = [node.head_pushed_at(keys) for node in self._nodes]
        known = [pushed for pushed in heads if pushed is not None]
        return min(known) if known else None

    @_driver_errors
    def delete(self, queue: str) -> bool:
        keys = self._keys(queue)
        deleted = [node.delete(keys) for node in self._nodes]
        return any(deleted)

    # -- dead letters -----------------------------------------------------------------

    @_driver_errors
    def dead_letter(
        self,
        queue: str,
        letters: Sequence[DeadLetter],
        receipts: Sequence[bytes] = (),
    ) -> int:
        keys, home = self._keys(queue), self._home_index(queue)
        encoded = [encode_dead_letter(letter.payload, letter.reason, letter.failed_at) for letter in letters]
        acks = self._by_node(receipts)
        home_acks = acks.pop(home, [])
        if encoded or home_acks:
            self._nodes[home].dead_letter(keys, encoded, home_acks)
        # Letters are stored before leases on other nodes are acked: a failure in
        # between leaves a redelivery, never a lost task.
        for index, held in acks.items():
            self._nodes[index].ack(keys, held)
        return len(letters)

    @_driver_errors
    def dead_letters(self, queue: str, count: int = 100) -> list[DeadLetter]:
        encoded = self._home(queue).dead_letters(self._keys(queue), count)
        return [_dead_letter_of(letter) for letter in encoded]

    @_driver_errors
    def find_dead_letters(self, queue: str, ids: Sequence[str]) -> list[DeadLetter]:
        if not ids:
            return []
        encoded = self._home(queue).find_dead_letters(self._keys(queue), ids)
        return [_dead_letter_of(letter) for letter in encoded]

    @_driver_errors
    def dead_letter_length(self, queue: str) -> int:
        return self._home(queue).dead_letter_length(self._keys(queue))

    @_driver_errors
    def requeue_dead_letters(self, queue: str, count: int | None = None) -> int:
        return self._home(queue).requeue_dead_letters(self._keys(queue), count)

    @_driver_errors
    def requeue_dead_letters_by_id(
        self, queue: str, ids: Sequence[str], payloads: Mapping[str, bytes] | None = None
    ) -> int:
        if not ids:
            return 0
        home, keys, replacements = self._home(queue), self._keys(queue), payloads or {}
        pairs = []
        for letter in home.find_dead_letters(keys, ids):
            letter_id = dead_letter_id(letter)
            payload = replacements[letter_id] if letter_id in replacements else decode_dead_letter(letter)[0]
            pairs.append((letter, payload))
        return home.requeue_dead_letter_pairs(keys, pairs)

    @_driver_errors
    def purge_dead_letters(self, queue: str, count: int | None = None) -> int:
        return self._home(queue).purge_dead_letters(self._keys(queue), count)

    # -- keys and locks -------------------------------------------------------------------

    @_driver_errors
    def key_set(self, key: str, value: bytes) -> bool:
        return self._home(key).client.set(key_name(key), value, get=True) is None

    @_driver_errors
    def key_get(self, key: str) -> bytes | None:
        return cast('bytes | None', self._home(key).client.get(key_name(key)))

    @_driver_errors
    def key_delete(self, key: str) -> bool:
        return bool(self._home(key).client.delete(key_name(key)))

    def lock(self, name: str) -> RedisLock:
        return RedisLock(self._home(name), name)

    # -- lifecycle --------------------------------------------------------------------------

    def ping(self) -> bool:
        """True when every node answers PING."""
        try:
            return all([node.client.ping() for node in self._nodes])
        except _DRIVER_ERRORS:
            return False

    def close(self) -> None:
        for node in self._nodes:
            node.client.close()


class RedisLock(Lock):
    """A Redis string holding the owner token, set with NX and an expiry."""

    def __init__(self, node: RedisNode, name: str) -> None:
        super().__init__(name)
        self._node = node
        self._key = lock_name(name)

    @_driver_errors
    def _try_acquire(self, ttl: int) -> bool:
        return bool(self._node.client.set(self._key, self.token, nx=True, ex=ttl))

    @_driver_errors
    def _release(self) -> bool:
        return self._node.release_lock(self.name, self.token)

    @_driver_errors
    def is_locked(self) -> bool:
        return bool(self._node.client.exists(self._key))

    @_driver_errors
    def set_ttl(self, ttl: int) -> bool:
        if ttl <= 0:
            raise ValueError(f'ttl must be positive, got {ttl!r}')
        return self._node.set_lock_ttl(self.name, self.token, ttl)

    @_driver_errors
    def get_ttl(self) -> int | None:
        milliseconds = int(self._node.client.pttl(self._key))
        return math.ceil(milliseconds / 1000) if milliseconds >= 0 else None
