"""Connections a Redis node keeps for itself, outside redis-py's per-command machinery.

:class:`DirectChannel` sends one packed command and reads its answer (pushes:
redis-py's per-command work costs more client CPU than the round trip);
:class:`WakeChannel` blocks an idle consumer on a queue's wake list (BLPOP). Both
take their connection from a pool found by key (``pool_for``): the client's only
pool on a standalone server, the pool of the master serving the key's slot on a
Redis Cluster. Used by :mod:`sergeant.connector.redis_node`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import hiredis
import redis

STOP_CHECK_INTERVAL = 0.05  # a blocked wait asks whether to stop this often (no Redis command)
_ANSWER_GRACE = 1.0  # how late a BLPOP's answer may come before its connection is dropped

PoolFor = Callable[[str], Any]
"""The redis.ConnectionPool serving a key (untyped in redis-py)."""


def standalone_pools(client: redis.Redis) -> PoolFor:
    """``pool_for`` of a standalone server: its one pool, whatever the key."""
    pool = client.connection_pool
    return lambda _key: pool


def cluster_pools(client: Any) -> PoolFor:
    """``pool_for`` of a redis.cluster.RedisCluster: the pool of the master serving the key's slot.

    The slot map is the client's: after a failover it is refreshed by the next
    command through the client that meets the change (a pop, say); until then a
    channel may reach the old master, fail, and the caller falls back.
    """

    def pool_for(key: str) -> Any:
        connection = client.get_node_from_key(key).redis_connection
        if connection is None:
            raise redis.ConnectionError(f'no connection to the node serving {key!r} yet')
        return connection.connection_pool

    return pool_for


def _take(pool: Any, name: str) -> Any:
    try:
        return pool.get_connection()
    except TypeError:  # redis-py before 5.3 wants a command name
        return pool.get_connection(name)


class DirectChannel:
    """Sends one packed command at a time on a pooled connection kept for this channel."""

    def __init__(self, pool_for: PoolFor) -> None:
        self._pool_for = pool_for
        self._pool: Any = None
        self._connection: Any = None  # a redis.connection.Connection (untyped in redis-py)
        self._pid = 0
        self._guard = threading.Lock()

    def call(self, key: str, command: tuple[Any, ...]) -> Any:
        """Send ``command``, which touches ``key`` (it picks the server), and return its answer."""
        packed = [hiredis.pack_command(command)]
        with self._guard:
            reused = self._connection is not None and self._pid == os.getpid()
            try:
                return self._send(key, packed, command[0])
            except redis.exceptions.ConnectionError:
                if not reused:
                    raise
            # a kept connection may have gone stale (server restarted): one fresh try,
            # as redis-py does for its own commands
            return self._send(key, packed, command[0])

    def _send(self, key: str, packed: list[bytes], name: str) -> Any:
        pool = self._pool_for(key)
        if self._connection is not None and (self._pid != os.getpid() or pool is not self._pool):
            self._drop()
        if self._connection is None:
            self._connection, self._pool, self._pid = _take(pool, name), pool, os.getpid()
        try:
            self._connection.send_packed_command(packed)
            return self._connection.read_response()
        except BaseException:
            self._drop()
            raise

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and self._pid == os.getpid():
            connection.disconnect()
            self._pool.release(connection)


class WakeChannel:
    """A connection of one node on which an idle consumer blocks (BLPOP) for a wake token.

    The answer is awaited in slices of :data:`STOP_CHECK_INTERVAL`, asking the
    caller's ``should_stop`` in between: a stop ends the wait at once (a SIGTERM
    handler only sets a flag), and the connection, its BLPOP still blocked at the
    server, is dropped. Waiting costs no command besides the BLPOP itself.
    """

    def __init__(self, pool_for: PoolFor) -> None:
        self._pool_for = pool_for
        self._pool: Any = None
        self._connection: Any = None  # a redis.connection.Connection (untyped in redis-py)
        self._pid = 0

    def wait(self, key: str, seconds: float, should_stop: Callable[[], bool]) -> bool:
        """True when a token came within ``seconds``; False after the timeout or a stop."""
        pool = self._pool_for(key)
        if self._connection is not None and (self._pid != os.getpid() or pool is not self._pool):
            self._drop()
        if self._connection is None:
            self._connection, self._pool, self._pid = _take(pool, 'BLPOP'), pool, os.getpid()
        connection = self._connection
        try:
            command: Any = ('BLPOP', key, f'{max(seconds, 0.01):.3f}')  # a timeout of 0 blocks forever
            connection.send_packed_command([hiredis.pack_command(command)])
            give_up = time.monotonic() + seconds + _ANSWER_GRACE
            while not connection.can_read(timeout=STOP_CHECK_INTERVAL):
                if should_stop() or time.monotonic() > give_up:
                    self._drop()
                    return False
            return connection.read_response() is not None
        except BaseException:
            self._drop()
            raise

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and self._pid == os.getpid():
            connection.disconnect()
            self._pool.release(connection)
