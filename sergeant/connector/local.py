"""The embedded broker: queues in one SQLite file, shared by processes on one host.

No server is needed, which makes it the broker of the demo and of tests of the
worker loop. Every claim happens inside one ``BEGIN IMMEDIATE`` transaction, so
concurrent processes never receive the same delivery. Each thread (and each
process after a fork) gets its own SQLite connection, as SQLite requires.

An idle worker does not poll with pops: it watches ``PRAGMA data_version``, which
changes once another connection committed, every :data:`COMMIT_CHECK_INTERVAL`
(a few microseconds each, no write), and pops again once an item of its queue is
claimable (a push, a hand-back, a delayed item or an expired lease falling due), or
after :data:`IDLE_POP_INTERVAL`.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import ConfigError, ConnectorError
from .base import Connector, DeadLetter, Lock, Message, Priority, Released, check_priority

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    payload BLOB NOT NULL,
    priority INTEGER NOT NULL,
    ready_at REAL NOT NULL,
    leased_until REAL,
    lease_token BLOB,
    redeliveries INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    pushed_at REAL
);
CREATE INDEX IF NOT EXISTS items_by_order ON items (queue, priority DESC, id);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    payload BLOB NOT NULL,
    reason TEXT NOT NULL,
    failed_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_by_queue ON dead_letters (queue, id);
CREATE TABLE IF NOT EXISTS keys (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS locks (name TEXT PRIMARY KEY, token BLOB NOT NULL, expires_at REAL NOT NULL);
"""

_RECEIPT = struct.Struct('>q16s')  # item id, lease token
_PRIORITY_RANK = {'NORMAL': 0, 'HIGH': 1}
_CLAIMABLE = 'queue = ? AND ready_at <= ? AND (leased_until IS NULL OR leased_until <= ?)'
COMMIT_CHECK_INTERVAL = 0.04  # an idle worker reads the data version this often (seconds)
IDLE_POP_INTERVAL = 5.0  # and pops at least this often all the same


class LocalConnector(Connector):
    """Connector on a SQLite database file."""

    def __init__(self, file_path: str) -> None:
        self.file_path = file_path
        self._local = threading.local()
        try:
            db = self._db()
            db.executescript(_SCHEMA)
            _add_missing_columns(db)
        except sqlite3.Error as error:
            raise ConnectorError(f'cannot create the schema in {file_path!r}: {error}') from error

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> LocalConnector:
        unknown = set(params) - {'file_path'}
        if unknown:
            raise ConfigError('connector.params', f'unknown keys for the local connector: {sorted(unknown)}')
        file_path = params.get('file_path')
        if not isinstance(file_path, str) or not file_path:
            raise ConfigError('connector.params.file_path', 'must be the path of a SQLite file')
        directory = os.path.dirname(os.path.abspath(file_path))
        if not os.path.isdir(directory):
            raise ConfigError('connector.params.file_path', f'directory {directory!r} does not exist')
        return cls(file_path)

    # -- connection handling -------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, 'db', None)
        if db is None or getattr(self._local, 'pid', None) != os.getpid():
            try:
                db = sqlite3.connect(self.file_path, timeout=30.0, isolation_level=None)
                db.execute('PRAGMA journal_mode=WAL')
                db.execute('PRAGMA synchronous=NORMAL')
            except sqlite3.Error as error:
                raise ConnectorError(f'cannot open SQLite broker {self.file_path!r}: {error}') from error
            self._local.db = db
            self._local.pid = os.getpid()
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        try:
            db.execute('BEGIN IMMEDIATE')
            try:
                yield db
            except BaseException:
                db.execute('ROLLBACK')
                raise
            db.execute('COMMIT')
        except sqlite3.Error as error:
            raise ConnectorError(f'SQLite broker {self.file_path!r} failed: {error}') from error

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._db().execute(sql, args).fetchall()
        except sqlite3.Error as error:
            raise ConnectorError(f'SQLite broker {self.file_path!r} failed: {error}') from error

    # -- queues ----------------------------------------------------------------

    def push(
        self,
        queue: str,
        payloads: Sequence[bytes],
        priority: Priority = 'NORMAL',
        consumable_from: float | None = None,
    ) -> int:
        rank = _PRIORITY_RANK[check_priority(priority)]
        ready_at = 0.0 if consumable_from is None else consumable_from
        now = time.time()
        rows = [(queue, payload, rank, ready_at, now) for payload in payloads]
        with self._transaction() as db:
            db.executemany(
                'INSERT INTO items (queue, payload, priority, ready_at, pushed_at) VALUES (?, ?, ?, ?, ?)',
                rows,
            )
        return len(rows)

    def pop(
        self,
        queue: str,
        count: int,
        lease_seconds: float | None,
        ack: Sequence[bytes] = (),
    ) -> list[Message]:
        now = time.time()
        with self._transaction() as db:
            if ack:
                db.executemany('DELETE FROM items WHERE id = ? AND lease_token = ?', _unpack(ack))
            rows = db.execute(
                # the casts: a row another client wrote may hold text or junk there; it then
                # reaches the worker as bytes, to be dead-lettered, instead of breaking the pop
                'SELECT id, CAST(payload AS BLOB), leased_until IS NOT NULL, CAST(redeliveries AS INTEGER) '
                f'FROM items WHERE {_CLAIMABLE} '
                'ORDER BY priority DESC, id LIMIT ?',
                (queue, now, now, count),
            ).fetchall()
            if not rows:
                self._note_idle(db, queue)
                return []
            ids = [(row[0],) for row in rows]
            if lease_seconds is None:
                db.executemany('DELETE FROM items WHERE id = ?', ids)
                return [Message(row[1], _RECEIPT.pack(row[0], b''), row[3] + row[2] + 1) for row in rows]
            token = secrets.token_bytes(16)
            owner = self.lease_owner
            db.executemany(
                'UPDATE items SET leased_until = ?, lease_token = ?, lease_owner = ?, '
                'redeliveries = redeliveries + (leased_until IS NOT NULL) WHERE id = ?',
                [(now + lease_seconds, token, owner, row[0]) for row in rows],
            )
        return [Message(row[1], _RECEIPT.pack(row[0], token), row[3] + row[2] + 1) for row in rows]

    def _note_idle(self, db: sqlite3.Connection, queue: str) -> None:
        """Inside an empty pop's transaction: the data version it saw, and when anything falls due."""
        version = db.execute('PRAGMA data_version').fetchone()[0]
        idle: dict[str, tuple[int, float | None]] = self._local.__dict__.setdefault('idle', {})
        idle[queue] = (version, _next_due(db, queue))

    def wait_for_work(
        self,
        queue: str,
        poll_interval: float,
        should_stop: Callable[[], bool],
        deadline: float | None = None,
    ) -> None:
        """Return once something of ``queue`` became claimable, or after :data:`IDLE_POP_INTERVAL`.

        Returns by ``deadline`` (monotonic) at the latest. Only right after an empty
        pop of this queue in this thread; otherwise sleeps
        ``poll_interval`` as the contract's default. Every :data:`COMMIT_CHECK_INTERVAL`
        it reads the data version (no write, no lock); after another connection
        committed, one read-only query tells whether an item of this queue is
        claimable now or when the next one falls due (commits of other queues, or
        a busy worker's acknowledgements, cost that query, not a pop).
        """
        idle = self._local.__dict__.get('idle', {}).pop(queue, None)
        if idle is None:
            super().wait_for_work(queue, poll_interval, should_stop, deadline)
            return
        version, due = idle
        give_up = time.monotonic() + IDLE_POP_INTERVAL
        if deadline is not None:
            give_up = min(give_up, deadline)
        db = self._db()
        try:
            while not should_stop():
                now = time.monotonic()
                until = give_up if due is None else min(give_up, now + due - time.time())
                if until <= now:
                    return
                time.sleep(min(until - now, COMMIT_CHECK_INTERVAL))
                seen = db.execute('PRAGMA data_version').fetchone()[0]
                if seen != version:
                    version, due = seen, _next_due(db, queue)
        except sqlite3.Error:  # the next pop reports it
            return

    def ack(self, queue: str, receipts: Sequence[bytes]) -> int:
        return self._each('DELETE FROM items WHERE id = ? AND lease_token = ?', _unpack(receipts))

    def nack(self, queue: str, receipts: Sequence[bytes]) -> int:
        return self._each(
            'UPDATE items SET leased_until = NULL, lease_token = NULL, ready_at = 0 '
            'WHERE id = ? AND lease_token = ?',
            _unpack(receipts),
        )

    def extend_leases(self, queue: str, receipts: Sequence[bytes], lease_seconds: float) -> int:
        deadline = time.time() + lease_seconds
        rows = [(deadline, *pair) for pair in _unpack(receipts)]
        return self._each('UPDATE items SET leased_until = ? WHERE id = ? AND lease_token = ?', rows)

    def _each(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        changed = 0
        with self._transaction() as db:
            for row in rows:
                changed += db.execute(sql, row).rowcount
        return changed

    def leases_by_owner(self, queue: str) -> dict[str, int]:
        rows = self._query(
            'SELECT lease_owner, COUNT(*) FROM items WHERE queue = ? AND leased_until > ? '
            'AND lease_owner IS NOT NULL GROUP BY lease_owner',
            (queue, time.time()),
        )
        return {str(owner): int(count) for owner, count in rows}

    def release_owner(
        self, queue: str, owner: str, started: Sequence[bytes], keep: Sequence[bytes] = ()
    ) -> Released:
        started_pairs, kept_pairs = set(_unpack(started)), set(_unpack(keep))
        with self._transaction() as db:
            rows = db.execute(
                'SELECT id, lease_token, CAST(payload AS BLOB) FROM items '
                'WHERE queue = ? AND lease_owner = ? AND leased_until > ?',
                (queue, owner, time.time()),
            ).fetchall()
            rows = [row for row in rows if (row[0], row[1]) not in kept_pairs]
            charged = [row for row in rows if (row[0], row[1]) in started_pairs]
            uncharged = [(row[0],) for row in rows if (row[0], row[1]) not in started_pairs]
            # a past lease (0) counts as a delivery at the next pop; none (NULL) does not
            db.executemany(
                'UPDATE items SET leased_until = 0, lease_token = NULL, lease_owner = NULL WHERE id = ?',
                [(row[0],) for row in charged],
            )
            db.executemany(
                'UPDATE items SET leased_until = NULL, lease_token = NULL, lease_owner = NULL, ready_at = 0 '
                'WHERE id = ?',
                uncharged,
            )
        return Released([row[2] for row in charged], len(uncharged))

    def length(self, queue: str, include_delayed: bool = False) -> int:
        not_leased = 'queue = ? AND (leased_until IS NULL OR leased_until <= ?)'
        if include_delayed:
            rows = self._query(f'SELECT COUNT(*) FROM items WHERE {not_leased}', (queue, time.time()))
        else:
            now = time.time()
            rows = self._query(f'SELECT COUNT(*) FROM items WHERE {_CLAIMABLE}', (queue, now, now))
        return int(rows[0][0])

    def in_flight(self, queue: str) -> int:
        rows = self._query(
            'SELECT COUNT(*) FROM items WHERE queue = ? AND leased_until > ?', (queue, time.time())
        )
        return int(rows[0][0])

    def queues(self) -> list[str]:
        rows = self._query('SELECT queue FROM items UNION SELECT queue FROM dead_letters ORDER BY 1')
        return [str(row[0]) for row in rows]

    def head_pushed_at(self, queue: str) -> float | None:
        now = time.time()
        rows = self._query(
            f'SELECT pushed_at FROM items WHERE {_CLAIMABLE} ORDER BY priority DESC, id LIMIT 1',
            (queue, now, now),
        )
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    def delete(self, queue: str) -> bool:
        with self._transaction() as db:
            return db.execute('DELETE FROM items WHERE queue = ?', (queue,)).rowcount > 0

    # -- dead letters ------------------------------------------------------------

    def dead_letter(self, queue: str, letters: Sequence[DeadLetter], receipts: Sequence[bytes] = ()) -> int:
        with self._transaction() as db:
            db.executemany(
                'INSERT INTO dead_letters (queue, payload, reason, failed_at) VALUES (?, ?, ?, ?)',
                [(queue, letter.payload, letter.reason, letter.failed_at) for letter in letters],
            )
            db.executemany('DELETE FROM items WHERE id = ? AND lease_token = ?', _unpack(receipts))
        return len(letters)

    def dead_letters(self, queue: str, count: int = 100) -> list[DeadLetter]:
        rows = self._query(
            'SELECT payload, reason, failed_at, id FROM dead_letters WHERE queue = ? ORDER BY id LIMIT ?',
            (queue, count),
        )
        return [DeadLetter(row[0], row[1], row[2], str(row[3])) for row in rows]

    def find_dead_letters(self, queue: str, ids: Sequence[str]) -> list[DeadLetter]:
        rows: list[Any] = []
        for part in _row_id_parts(ids):
            rows += self._query(
                'SELECT payload, reason, failed_at, id FROM dead_letters '
                f'WHERE queue = ? AND id IN ({", ".join("?" * len(part))})',
                (queue, *part),
            )
        rows.sort(key=lambda row: int(row[3]))
        return [DeadLetter(row[0], row[1], row[2], str(row[3])) for row in rows]

    def dead_letter_length(self, queue: str) -> int:
        return int(self._query('SELECT COUNT(*) FROM dead_letters WHERE queue = ?', (queue,))[0][0])

    def requeue_dead_letters(self, queue: str, count: int | None = None) -> int:
        limit = -1 if count is None else count
        with self._transaction() as db:
            rows = db.execute(
                'SELECT id, payload FROM dead_letters WHERE queue = ? ORDER BY id LIMIT ?', (queue, limit)
            ).fetchall()
            _requeue_rows(db, queue, rows)
        return len(rows)

    def requeue_dead_letters_by_id(
        self, queue: str, ids: Sequence[str], payloads: Mapping[str, bytes] | None = None
    ) -> int:
        replacements = payloads or {}
        moved = 0
        with self._transaction() as db:
            for part in _row_id_parts(ids):
                marks = ', '.join('?' * len(part))
                rows = db.execute(
                    f'SELECT id, payload FROM dead_letters WHERE queue = ? AND id IN ({marks}) ORDER BY id',
                    (queue, *part),
                ).fetchall()
                rows = [(row[0], replacements.get(str(row[0]), row[1])) for row in rows]
                _requeue_rows(db, queue, rows)
                moved += len(rows)
        return moved

    def purge_dead_letters(self, queue: str, count: int | None = None) -> int:
        with self._transaction() as db:
            if count is None:
                return int(db.execute('DELETE FROM dead_letters WHERE queue = ?', (queue,)).rowcount)
            return int(
                db.execute(
                    'DELETE FROM dead_letters WHERE id IN '
                    '(SELECT id FROM dead_letters WHERE queue = ? ORDER BY id LIMIT ?)',
                    (queue, max(0, count)),
                ).rowcount
            )

    # -- keys and locks --------------------------------------------------------------

    def key_set(self, key: str, value: bytes) -> bool:
        with self._transaction() as db:
            existed = db.execute('SELECT 1 FROM keys WHERE name = ?', (key,)).fetchone() is not None
            db.execute('INSERT OR REPLACE INTO keys (name, value) VALUES (?, ?)', (key, value))
        return not existed

    def key_get(self, key: str) -> bytes | None:
        rows = self._query('SELECT value FROM keys WHERE name = ?', (key,))
        return bytes(rows[0][0]) if rows else None

    def key_delete(self, key: str) -> bool:
        with self._transaction() as db:
            return db.execute('DELETE FROM keys WHERE name = ?', (key,)).rowcount > 0

    def lock(self, name: str) -> LocalLock:
        return LocalLock(self, name)

    def close(self) -> None:
        db: sqlite3.Connection | None = getattr(self._local, 'db', None)
        if db is not None and getattr(self._local, 'pid', None) == os.getpid():
            db.close()
        self._local = threading.local()


class LocalLock(Lock):
    """A row in the ``locks`` table; expiry is a timestamp compared on every access."""

    def __init__(self, connector: LocalConnector, name: str) -> None:
        super().__init__(name)
        self._connector = connector

    def _try_acquire(self, ttl: int) -> bool:
        now = time.time()
        with self._connector._transaction() as db:
            db.execute('DELETE FROM locks WHERE name = ? AND expires_at <= ?', (self.name, now))
            inserted = db.execute(
                'INSERT OR IGNORE INTO locks (name, token, expires_at) VALUES (?, ?, ?)',
                (self.name, self.token, now + ttl),
            ).rowcount
        return inserted == 1

    def _release(self) -> bool:
        with self._connector._transaction() as db:
            deleted = db.execute(
                'DELETE FROM locks WHERE name = ? AND token = ? AND expires_at > ?',
                (self.name, self.token, time.time()),
            ).rowcount
        return deleted == 1

    def is_locked(self) -> bool:
        rows = self._connector._query(
            'SELECT 1 FROM locks WHERE name = ? AND expires_at > ?', (self.name, time.time())
        )
        return bool(rows)

    def set_ttl(self, ttl: int) -> bool:
        now = time.time()
        with self._connector._transaction() as db:
            updated = db.execute(
                'UPDATE locks SET expires_at = ? WHERE name = ? AND token = ? AND expires_at > ?',
                (now + ttl, self.name, self.token, now),
            ).rowcount
        return updated == 1

    def get_ttl(self) -> int | None:
        now = time.time()
        rows = self._connector._query(
            'SELECT expires_at FROM locks WHERE name = ? AND expires_at > ?', (self.name, now)
        )
        return math.ceil(rows[0][0] - now) if rows else None


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Bring a broker file written by an earlier version up to the current schema."""
    columns = {row[1] for row in db.execute('PRAGMA table_info(items)')}
    for column, kind in (('lease_owner', 'TEXT'), ('pushed_at', 'REAL')):
        if column not in columns:
            with contextlib.suppress(sqlite3.OperationalError):  # another process added it meanwhile
                db.execute(f'ALTER TABLE items ADD COLUMN {column} {kind}')


def _requeue_rows(db: sqlite3.Connection, queue: str, rows: Sequence[tuple[int, bytes]]) -> None:
    """Push dead letters' ``(id, payload)`` rows to the tail of ready and delete the letters."""
    now = time.time()
    db.executemany(
        'INSERT INTO items (queue, payload, priority, ready_at, pushed_at) VALUES (?, ?, 0, 0, ?)',
        [(queue, payload, now) for _, payload in rows],
    )
    db.executemany('DELETE FROM dead_letters WHERE id = ?', [(row[0],) for row in rows])


def _row_id_parts(ids: Sequence[str], size: int = 500) -> list[list[int]]:
    """Dead-letter ids as row ids, in parts small enough for one statement; other ids are dropped."""
    row_ids = sorted({int(value) for value in ids if value.isascii() and value.isdigit()})
    return [row_ids[i : i + size] for i in range(0, len(row_ids), size)]


def _unpack(receipts: Sequence[bytes]) -> list[tuple[int, bytes]]:
    return [_RECEIPT.unpack(receipt) for receipt in receipts]


def _next_due(db: sqlite3.Connection, queue: str) -> float | None:
    """When the next item of ``queue`` becomes claimable (epoch seconds; maybe past); None: no item."""
    due: float | None = db.execute(
        'SELECT MIN(MAX(ready_at, COALESCE(leased_until, 0))) FROM items WHERE queue = ?', (queue,)
    ).fetchone()[0]
    return due
