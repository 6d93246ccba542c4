"""One Redis server of the Redis connector: key layout, stored items, Lua scripts.

:class:`RedisNode` runs every queue operation against one server, each in one
round trip; :mod:`sergeant.connector.redis` spreads queues over several nodes and
routes receipts. Multi-step changes are Lua scripts in ``connector/lua/``, whose
headers document their keys and arguments.

Keys of queue ``Q`` (``sergeant:`` keeps them apart from the user's own keys; on a
Redis Cluster the name is a hash tag, ``sergeant:queue:{Q}:ready`` and so on, so
that all keys of a queue live in one slot and every script runs on one master)::

    sergeant:queue:Q:ready           LIST  stored items; HIGH pushed at the head, NORMAL at the tail
    sergeant:queue:Q:delayed         ZSET  priority byte + stored item, score = ready time (ms)
    sergeant:queue:Q:leased          ZSET  lease group ids, score = lease deadline (ms, server clock)
    sergeant:queue:Q:leased:G        LIST  the stored items lease group G leased, in pop order
    sergeant:queue:Q:leased:G:done   STRING  bitmap of the positions of G acknowledged or handed back
    sergeant:queue:Q:leased:owners   HASH  lease group id -> the consumer that popped it (its owner)
    sergeant:queue:Q:dead            LIST  dead letters, oldest first; a letter's id is the first
                                           16 hex digits of its SHA-1
    sergeant:queue:Q:wake            LIST  tokens that wake idle consumers (``lua/wake.lua``)

A stored item is a 16-byte id, a 4-byte big-endian delivery counter and the
payload. The id is when the item was pushed (6 bytes, big-endian milliseconds since
the epoch: the age ``sergeant queues`` shows) and 10 random bytes; items written by
versions before 1.0 have 16 random bytes there, so a pushed time outside the last
few years reads as unknown. Leases are held per pop (``lua/leases.lua`` explains why): a receipt is
the pop's group id and the item's position in it, so it names exactly one
delivery; reclaiming an expired group deletes it, after which its receipts match
nothing. Scripts touch a group's keys by names derived from ``leased``: in the same
slot as it on a cluster, where the hash tag leads every name. A dead letter is
``failed_at`` (big-endian double), the length of the reason (4 bytes), the UTF-8
reason and the payload: a layout Lua can cut the payload out of when requeueing.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import os
import re
import struct
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, cast

import hiredis
import redis

from .redis_channels import (
    STOP_CHECK_INTERVAL,
    DirectChannel,
    PoolFor,
    WakeChannel,
    cluster_pools,
    standalone_pools,
)
from .redis_receipts import packed_receipts

ID_SIZE = 16
PUSHED_AT_SIZE = 6  # the first bytes of an id: when the item was pushed, in ms
_EARLIEST_PUSH_MS = 1_577_836_800_000  # 2020-01-01: older times are random bytes of a pre-1.0 id
HEADER_SIZE = ID_SIZE + 4  # id, delivery counter
FIRST_DELIVERY = (1).to_bytes(4, 'big')
HIGH_FLAG = b'H'
NORMAL_FLAG = b'N'
CHUNK = 5000  # items per command: keeps single commands (and Lua's unpack) small
# An idle consumer pops at least this often (seconds) even without a wake token: an idle
# pop and its blocking wait cost Redis 7 commands (counting the script's), so 1.4 a second.
IDLE_POP_INTERVAL = 5.0
# Redis times blocked clients out in its cron (10 times a second by default): a BLPOP may
# answer this late. A wait for a due time ends that much earlier and sleeps the rest here.
_TIMEOUT_SLACK = 0.1
REQUEUE_BATCH = 1000
SCAN_BATCH = 1000  # dead letters read per LRANGE, queue keys per SCAN
_QUEUE_KEY = re.compile(rb'sergeant:queue:(.*):(?:ready|delayed|leased|dead)', re.DOTALL)
_CLUSTER_QUEUE_KEY = re.compile(rb'sergeant:queue:\{(.*)\}:(?:ready|delayed|leased|dead)', re.DOTALL)
_DEAD_HEADER = struct.Struct('>dI')  # failed_at, reason length


class QueueKeys(NamedTuple):
    ready: str
    delayed: str
    leased: str
    dead: str
    wake: str


@functools.lru_cache(maxsize=4096)
def queue_keys(queue: str) -> QueueKeys:
    base = f'sergeant:queue:{queue}:'
    return QueueKeys(base + 'ready', base + 'delayed', base + 'leased', base + 'dead', base + 'wake')


@functools.lru_cache(maxsize=4096)
def cluster_queue_keys(queue: str) -> QueueKeys:
    """The keys of ``queue`` on a Redis Cluster: the name in braces, a hash tag, so all share a slot.

    A name holding braces itself still gives one slot: every key starts with the
    same ``sergeant:queue:{`` + name + ``}``, which holds the first ``{`` and the
    first ``}`` after it.
    """
    base = f'sergeant:queue:{{{queue}}}:'
    return QueueKeys(base + 'ready', base + 'delayed', base + 'leased', base + 'dead', base + 'wake')


def key_name(key: str) -> str:
    return f'sergeant:key:{key}'


def lock_name(lock: str) -> str:
    return f'sergeant:lock:{lock}'


def _pushed_now() -> bytes:
    return (time.time_ns() // 1_000_000).to_bytes(PUSHED_AT_SIZE, 'big')


def new_items(payloads: Sequence[bytes]) -> list[bytes]:
    """Stored items for fresh payloads: ids of this time and one urandom call, counter 1."""
    pushed = _pushed_now()
    if len(payloads) == 1:
        return [pushed + os.urandom(ID_SIZE - PUSHED_AT_SIZE) + FIRST_DELIVERY + payloads[0]]
    count = len(payloads)
    headers = bytearray(os.urandom(HEADER_SIZE * count))
    for offset, byte in enumerate(pushed + b'\0' * (ID_SIZE - PUSHED_AT_SIZE) + FIRST_DELIVERY):
        if offset < PUSHED_AT_SIZE or offset >= ID_SIZE:
            headers[offset::HEADER_SIZE] = bytes([byte]) * count
    raw = bytes(headers)
    return [raw[i * HEADER_SIZE : (i + 1) * HEADER_SIZE] + payload for i, payload in enumerate(payloads)]


def new_ids(count: int) -> bytes:
    """``count`` item ids of this time, concatenated (for the requeue scripts)."""
    pushed = _pushed_now()
    random = os.urandom((ID_SIZE - PUSHED_AT_SIZE) * count)
    step = ID_SIZE - PUSHED_AT_SIZE
    return b''.join(pushed + random[i * step : (i + 1) * step] for i in range(count))


def pushed_at(item: bytes) -> float | None:
    """When a stored item was pushed (seconds), or None when its id carries no plausible time."""
    if len(item) < HEADER_SIZE:
        return None
    milliseconds = int.from_bytes(item[:PUSHED_AT_SIZE], 'big')
    if not _EARLIEST_PUSH_MS <= milliseconds <= time.time_ns() // 1_000_000 + 86_400_000:
        return None
    return milliseconds / 1000


def dead_letter_id(letter: bytes) -> str:
    """The id of an encoded dead letter: the first 16 hex digits of its SHA-1."""
    return hashlib.sha1(letter, usedforsecurity=False).hexdigest()[:16]


def encode_dead_letter(payload: bytes, reason: str, failed_at: float) -> bytes:
    reason_bytes = reason.encode()
    return _DEAD_HEADER.pack(failed_at, len(reason_bytes)) + reason_bytes + payload


def decode_dead_letter(letter: bytes) -> tuple[bytes, str, float]:
    """``(payload, reason, failed_at)`` of an encoded dead letter."""
    failed_at, reason_size = _DEAD_HEADER.unpack_from(letter)
    payload_start = _DEAD_HEADER.size + reason_size
    return letter[payload_start:], letter[_DEAD_HEADER.size : payload_start].decode(), failed_at


@functools.cache
def _script_source(name: str) -> str:
    return importlib.resources.files(__package__).joinpath(f'lua/{name}.lua').read_text('utf-8')


def _lease_script_source(name: str) -> str:
    """A script that holds or settles leases, behind the shared functions of leases.lua."""
    return _script_source('leases') + '\n' + _script_source(name)


def _waking_script_source(name: str, leases: bool = True) -> str:
    """A script that makes items ready, behind the shared functions of wake.lua (and leases.lua)."""
    return (_lease_script_source('wake') if leases else _script_source('wake')) + '\n' + _script_source(name)


class PopArguments(NamedTuple):
    """What one pop sends besides the queue's keys."""

    wanted: int
    lease_ms: int  # negative: at-most-once
    group_id: bytes
    owner: str  # '' for none
    acks: Sequence[bytes]


class _Idle(NamedTuple):
    """What an empty pop said, for the wait after it."""

    popped_at: float  # monotonic time of its answer
    due_at: float | None  # monotonic time the next delayed item or lease falls due; None: none will


def _chunks(values: Sequence[Any], size: int = CHUNK) -> list[Sequence[Any]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


class RedisNode:
    """Queue, dead-letter, key and lock operations on one Redis server.

    Receipt handling is the caller's: methods take stored items (a receipt without
    its node byte). Errors of redis-py propagate; the connector wraps them.

    With ``cluster``, ``client`` is a ``redis.cluster.RedisCluster`` and the keys
    given are :func:`cluster_queue_keys`: every script and command then names keys
    of one slot, which the client routes to the master serving it (following
    redirections and failovers), and pushes go through it too.
    """

    def __init__(self, client: redis.Redis, cluster: bool = False) -> None:
        self.client = client
        self.cluster = cluster
        pool_for: PoolFor = cluster_pools(client) if cluster else standalone_pools(client)
        self._push_channel = None if cluster else DirectChannel(pool_for)
        self._wake_channel = WakeChannel(pool_for)
        self._queue_key = _CLUSTER_QUEUE_KEY if cluster else _QUEUE_KEY
        # per wake key: the last empty pop, until a wait used it
        self._idle: dict[str, _Idle] = {}
        # per wake key: when something falls due, as the last pop said (until a pop brings items)
        self._due_at: dict[str, float] = {}
        register = client.register_script
        self._push = register(_waking_script_source('push', leases=False))
        self._pop = register(_waking_script_source('pop'))
        self._give_back = register(_script_source('wake') + '\nwake_consumers(KEYS[1], 1)')
        self._ack = register(_lease_script_source('ack'))
        self._nack = register(_waking_script_source('nack'))
        self._extend = register(_lease_script_source('extend'))
        self._counts = register(_lease_script_source('counts'))
        self._owners = register(_lease_script_source('owners'))
        self._release_owner = register(_waking_script_source('release_owner'))
        self._delete = register(_lease_script_source('delete_queue'))
        self._dead_letter = register(_lease_script_source('dead_letter'))
        self._requeue_dead = register(_waking_script_source('requeue_dead', leases=False))
        self._requeue_dead_ids = register(_waking_script_source('requeue_dead_ids', leases=False))
        self._purge_dead = register(_script_source('purge_dead'))
        self._lock_release = register(_script_source('lock_release'))
        self._lock_set_ttl = register(_script_source('lock_set_ttl'))

    # -- queues -----------------------------------------------------------------

    def push_ready(self, keys: QueueKeys, items: list[bytes], at_head: bool) -> None:
        # LPUSH a b puts b first: reversed, the batch keeps its order at the head.
        items = items[::-1] if at_head else items
        self._push_items(keys.ready, keys.wake, 'head' if at_head else 'tail', items)

    def push_delayed(self, keys: QueueKeys, items: list[bytes], at_head: bool, ready_ms: int) -> None:
        flag = HIGH_FLAG if at_head else NORMAL_FLAG
        self._push_items(keys.delayed, keys.wake, ready_ms, [flag + item for item in items])

    def _push_items(self, target: str, wake: str, where: str | int, items: list[bytes]) -> None:
        """Run push.lua: the items, then wake tokens for idle consumers."""
        if self._push_channel is None:
            # a cluster: the client finds the slot's master; one script call, however many
            # items (a transaction would pin one connection, not every redis-py has it)
            self._push((target, wake), (where, *items))
            return
        if len(items) <= CHUNK:
            # one command on a connection of our own: redis-py's per-command machinery
            # costs more client CPU than the round trip itself
            try:
                self._push_channel.call(target, ('EVALSHA', self._push.sha, 2, target, wake, where, *items))
            except redis.exceptions.NoScriptError:  # nothing ran: the client loads the script
                self._push((target, wake), (where, *items))
            return
        with self.client.pipeline(transaction=True) as pipe:
            for chunk in _chunks(items):
                self._push((target, wake), (where, *chunk), client=pipe)
            pipe.execute()

    def pop(self, keys: QueueKeys, pop: PopArguments) -> list[bytes]:
        """Popped stored items; when leased, they form the lease group ``pop.group_id``."""
        answer: list[Any] = self._pop(
            (keys.ready, keys.delayed, keys.leased, keys.wake), self.pop_arguments(keys, pop)
        )
        return self.note_answer(keys, pop, answer)

    def pop_arguments(self, keys: QueueKeys, pop: PopArguments) -> tuple[Any, ...]:
        """ARGV of pop.lua; the upkeep batch never falls below 100 items.

        It asks the script to relay a wake token when this consumer, idle, knew of an
        item falling due that it will not be there for should this pop bring items.
        """
        due_at = self._due_at.get(keys.wake)
        relay = '1' if pop.wanted and due_at is not None and due_at > time.monotonic() else '0'
        return (
            pop.wanted,
            pop.lease_ms,
            max(pop.wanted, 100),
            pop.group_id,
            pop.owner,
            relay,
            *packed_receipts(pop.acks),
        )

    def note_answer(self, keys: QueueKeys, pop: PopArguments, answer: list[Any]) -> list[bytes]:
        """The stored items of pop.lua's answer; an empty one tells when something falls due."""
        if not pop.wanted:
            return []  # an acknowledgement only: says nothing about the queue
        if answer and answer[0].__class__ is not int:
            self._due_at.pop(keys.wake, None)
            return answer
        now = time.monotonic()
        due_at = now + answer[0] / 1000 if answer else None
        self._idle[keys.wake] = _Idle(now, due_at)
        if due_at is None:
            self._due_at.pop(keys.wake, None)
        else:
            self._due_at[keys.wake] = due_at
        return []

    def wait_for_work(
        self, keys: QueueKeys, should_stop: Callable[[], bool], deadline: float | None = None
    ) -> bool:
        """Block until a wake token comes, something falls due, or a while passed since the last pop.

        Waits only right after a pop of this queue came back empty (its answer said
        when the next delayed item or lease falls due); otherwise returns False at
        once. After :data:`IDLE_POP_INTERVAL` without a token the caller pops again
        anyway, for what became ready without one (dead letters requeued, say), and
        by ``deadline`` (monotonic), give or take Redis's timeout resolution. A
        token taken by a consumer told to stop goes back for another one.
        """
        idle = self._idle.pop(keys.wake, None)
        if idle is None:
            return False  # no empty pop since the last wait (it failed, or brought items)
        until = idle.popped_at + IDLE_POP_INTERVAL
        slack = 0.0
        if idle.due_at is not None and idle.due_at < until:
            until, slack = idle.due_at, _TIMEOUT_SLACK
        if deadline is not None and deadline < until - slack:
            until, slack = deadline, 0.0  # the caller's own deadline: a late answer is fine
        block = until - slack - time.monotonic()
        if block > 0 and self._wake_channel.wait(keys.wake, block, should_stop):
            if should_stop():
                self._give_token_back(keys.wake)
            return True
        while not should_stop():  # the rest of the way to the due time, without Redis
            left = until - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, STOP_CHECK_INTERVAL))
        return True

    def _give_token_back(self, wake: str) -> None:
        """Put back a wake token this consumer took but will not act on (it stops)."""
        self._give_back((wake,), ())

    @property
    def pop_sha(self) -> str:
        return str(self._pop.sha)

    def ack(self, keys: QueueKeys, receipts: Sequence[bytes]) -> int:
        return int(self._ack((keys.leased,), packed_receipts(receipts)))

    def nack(self, keys: QueueKeys, receipts: Sequence[bytes]) -> int:
        return int(self._nack((keys.ready, keys.leased, keys.wake), receipts))

    def extend_leases(self, keys: QueueKeys, receipts: Sequence[bytes], lease_ms: int) -> int:
        return int(self._extend((keys.leased,), (lease_ms, *packed_receipts(receipts))))

    def leases_by_owner(self, keys: QueueKeys) -> dict[str, int]:
        flat = self._owners((keys.leased,))
        return {bytes(flat[i]).decode(): int(flat[i + 1]) for i in range(0, len(flat), 2)}

    def release_owner(
        self, keys: QueueKeys, owner: str, started: Sequence[bytes], keep: Sequence[bytes]
    ) -> tuple[list[bytes], int]:
        """The charged stored items and how many went back uncharged (see ``lua/release_owner.lua``)."""
        arguments: tuple[Any, ...] = (owner, len(started), *started, *keep)
        answer = self._release_owner((keys.ready, keys.leased, keys.wake), arguments)
        return list(answer[1:]), int(answer[0])

    def length(self, keys: QueueKeys, include_delayed: bool) -> int:
        """Consumable items: ready, due delayed and expired leases (plus all delayed when asked)."""
        ready, due, delayed, expired, _ = self._counts((keys.ready, keys.delayed, keys.leased))
        return int(ready) + int(delayed if include_delayed else due) + int(expired)

    def in_flight(self, keys: QueueKeys) -> int:
        """Leases not expired yet."""
        _, _, _, expired, leased = self._counts((keys.ready, keys.delayed, keys.leased))
        return int(leased) - int(expired)

    def queues(self) -> set[str]:
        """Names of the queues with any key on this node."""
        names = set()
        for key in self.client.scan_iter(match='sergeant:queue:*', count=SCAN_BATCH):
            match = self._queue_key.fullmatch(key)
            if match is not None:
                names.add(match.group(1).decode(errors='replace'))
        return names

    def head_pushed_at(self, keys: QueueKeys) -> float | None:
        head = cast('bytes | None', self.client.lindex(keys.ready, 0))
        return None if head is None else pushed_at(head)

    def delete(self, keys: QueueKeys) -> bool:
        return bool(self._delete((keys.ready, keys.delayed, keys.leased, keys.wake)))

    # -- dead letters -------------------------------------------------------------

    def dead_letter(self, keys: QueueKeys, letters: Sequence[bytes], receipts: Sequence[bytes]) -> int:
        """Append encoded letters and ack ``receipts`` atomically; return how many leases were held."""
        return int(
            self._dead_letter((keys.dead, keys.leased), (len(letters), *letters, *packed_receipts(receipts)))
        )

    def dead_letters(self, keys: QueueKeys, count: int) -> list[bytes]:
        if count <= 0:
            return []
        return cast('list[bytes]', self.client.lrange(keys.dead, 0, count - 1))

    def dead_letter_length(self, keys: QueueKeys) -> int:
        return int(self.client.llen(keys.dead))

    def find_dead_letters(self, keys: QueueKeys, ids: Sequence[str]) -> list[bytes]:
        """The encoded letters ``ids`` name, oldest first, read in parts from the head until all were seen.

        Equal letters share an id: the copies read before every id was seen are all returned.
        """
        wanted, missing, found = set(ids), set(ids), []
        start = 0
        while missing:
            part = cast('list[bytes]', self.client.lrange(keys.dead, start, start + SCAN_BATCH - 1))
            for letter in part:
                letter_id = dead_letter_id(letter)
                if letter_id in wanted:
                    found.append(letter)
                    missing.discard(letter_id)
            if len(part) < SCAN_BATCH:
                break
            start += SCAN_BATCH
        return found

    def requeue_dead_letters(self, keys: QueueKeys, count: int | None) -> int:
        moved = 0
        while count is None or moved < count:
            batch = REQUEUE_BATCH if count is None else min(REQUEUE_BATCH, count - moved)
            done = int(self._requeue_dead((keys.dead, keys.ready, keys.wake), (new_ids(batch),)))
            moved += done
            if done < batch:
                break
        return moved

    def requeue_dead_letter_pairs(self, keys: QueueKeys, pairs: Sequence[tuple[bytes, bytes]]) -> int:
        """Move each ``(encoded letter, payload to push)`` still in the dead list; return how many moved."""
        moved = 0
        for start in range(0, len(pairs), REQUEUE_BATCH):
            part = pairs[start : start + REQUEUE_BATCH]
            flat = [value for pair in part for value in pair]
            arguments = (new_ids(len(part)), *flat)
            moved += int(self._requeue_dead_ids((keys.dead, keys.ready, keys.wake), arguments))
        return moved

    def purge_dead_letters(self, keys: QueueKeys, count: int | None = None) -> int:
        return int(self._purge_dead((keys.dead,), () if count is None else (max(0, count),)))

    # -- locks ----------------------------------------------------------------------

    def release_lock(self, name: str, token: bytes) -> bool:
        return bool(self._lock_release((lock_name(name),), (token,)))

    def set_lock_ttl(self, name: str, token: bytes, ttl: int) -> bool:
        return bool(self._lock_set_ttl((lock_name(name),), (token, ttl)))


class PopChannel:
    """A connection of one node reserved for pops whose answer is read later.

    redis-py's client takes a pooled connection for each command and waits for
    the answer. A worker instead sends the next pop (one EVALSHA of pop.lua, which
    also carries the acknowledgements) and reads the answer once it needs the
    tasks, so Redis pops while the worker runs the current ones. At most one pop
    is in flight: :meth:`try_send` returns False while the channel is busy, and
    :meth:`read` frees it. The connection comes from the client's pool and is
    replaced after an error or a fork.
    """

    def __init__(self, node: RedisNode) -> None:
        self._node = node
        self._connection: Any = None  # a redis.connection.Connection (untyped in redis-py)
        self._pid = 0
        self._busy = threading.Lock()

    def try_send(self, keys: QueueKeys, pop: PopArguments) -> bool:
        """Send a pop; False (nothing sent) while another pop is in flight."""
        if not self._busy.acquire(blocking=False):
            return False
        try:
            command = (
                'EVALSHA',
                self._node.pop_sha,
                4,
                *keys[:3],
                keys.wake,
                *self._node.pop_arguments(keys, pop),
            )
            self._take_connection().send_packed_command([hiredis.pack_command(command)])
        except BaseException:
            self._drop()
            self._busy.release()
            raise
        return True

    def read(self, keys: QueueKeys, pop: PopArguments) -> list[bytes]:
        """The popped items of the pop in flight (sent with these arguments); frees the channel."""
        assert self._connection is not None
        try:
            try:
                answer: list[Any] = self._connection.read_response()
            except redis.exceptions.NoScriptError:
                # nothing ran: pop again through the client, which loads the script
                return self._node.pop(keys, pop)
        except BaseException:
            self._drop()
            raise
        finally:
            self._busy.release()
        return self._node.note_answer(keys, pop, answer)

    def _take_connection(self) -> Any:
        if self._connection is None or self._pid != os.getpid():
            pool = self._node.client.connection_pool
            try:
                connection = pool.get_connection()
            except TypeError:  # redis-py before 5.3 wants a command name
                connection = pool.get_connection('EVALSHA')
            self._connection, self._pid = connection, os.getpid()
        return self._connection

    def _drop(self) -> None:
        """Forget the connection after an error: its state is unknown."""
        connection, self._connection = self._connection, None
        if connection is not None and self._pid == os.getpid():
            connection.disconnect()
            self._node.client.connection_pool.release(connection)
