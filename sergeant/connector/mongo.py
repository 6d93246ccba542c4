"""The MongoDB broker: queues, dead letters, keys and locks in MongoDB or FerretDB.

Runs on standalone servers, replica sets and FerretDB alike: no multi-document
transactions, TTL indexes or change streams. Each item is claimed with a ledger
insert plus single-document updates, and leases and locks expire by timestamps
compared in queries (see :mod:`sergeant.connector.mongo_store` for the document
layout and why the ledger exists; :mod:`sergeant.connector.mongo_params` for the
params).

With several ``nodes`` (independent deployments, as in Sergeant 0.27) pushes go
round robin, pops visit every deployment, and a queue's dead letters, keys and
locks live on the deployment picked by a CRC32 of their name. A receipt names the
deployment, the item and the claim token of one delivery.
"""

from __future__ import annotations

import functools
import itertools
import math
import secrets
import struct
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

import bson
import pymongo.errors
from bson import ObjectId

from ..errors import ConnectorError
from .base import Connector, DeadLetter, Lock, Message, Priority, Released, check_priority
from .mongo_backlog import rank_of
from .mongo_dead import DeadLetters
from .mongo_params import MongoSettings, create_client, database_name, parse_params
from .mongo_store import MAX_PAYLOAD_BYTES, ORDER, MongoStore

__all__ = ['MongoConnector', 'MongoLock']

_P = ParamSpec('_P')
_R = TypeVar('_R')

_RANK = {'NORMAL': 0, 'HIGH': 1}
_RECEIPT = struct.Struct('>H12s16s')  # deployment index, item ObjectId, claim token
_AT_MOST_ONCE_LEASE = 60.0  # held between claiming and deleting when pop has no lease
_REQUEUE_BATCH = 1000


def _driver_errors(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Re-raise the driver's errors as ConnectorError, chained."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except pymongo.errors.PyMongoError as error:
            raise ConnectorError(f'MongoDB {method.__name__} failed: {error}') from error

    return wrapper


class MongoConnector(Connector):
    """Connector on one or more MongoDB (or FerretDB) deployments."""

    def __init__(self, settings: MongoSettings) -> None:
        self._stores: list[MongoStore] = []
        try:
            for deployment in settings.deployments:
                client = create_client(deployment, settings)
                self._stores.append(MongoStore(client, database_name(client, settings)))
        except BaseException:
            self.close()
            raise
        self._dead = [DeadLetters(store) for store in self._stores]
        self._turn = itertools.count(secrets.randbelow(len(self._stores)))

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> MongoConnector:
        return cls(parse_params(params))

    def _store(self, index: int) -> MongoStore:
        return self._stores[index].ready()

    def _next_index(self) -> int:
        return next(self._turn) % len(self._stores)

    def _home(self, name: str) -> int:
        """The deployment holding a queue's dead letters, or a key, or a lock."""
        return zlib.crc32(name.encode()) % len(self._stores)

    # -- queues ----------------------------------------------------------------------

    @_driver_errors
    def push(
        self,
        queue: str,
        payloads: Sequence[bytes],
        priority: Priority = 'NORMAL',
        consumable_from: float | None = None,
    ) -> int:
        rank = _RANK[check_priority(priority)]
        too_large = [len(payload) for payload in payloads if len(payload) > MAX_PAYLOAD_BYTES]
        if too_large:
            raise ConnectorError(
                f'MongoDB push refused: a payload of {too_large[0]} bytes is larger than '
                f'{MAX_PAYLOAD_BYTES} bytes, the most one MongoDB document can carry; nothing was pushed'
            )
        visible_at = 0.0 if consumable_from is None else float(consumable_from)
        self._store(self._next_index()).insert_items(queue, payloads, rank, visible_at)
        return len(payloads)

    @_driver_errors
    def pop(
        self,
        queue: str,
        count: int,
        lease_seconds: float | None,
        ack: Sequence[bytes] = (),
    ) -> list[Message]:
        if ack:
            self.ack(queue, ack)
        messages: list[Message] = []
        start = self._next_index()
        for offset in range(len(self._stores)):
            if len(messages) >= count:
                break
            index = (start + offset) % len(self._stores)
            messages.extend(self._claim(index, queue, count - len(messages), lease_seconds))
        return messages

    def _claim(self, index: int, queue: str, count: int, lease_seconds: float | None) -> list[Message]:
        store = self._store(index)
        token = secrets.token_bytes(16)
        lease = _AT_MOST_ONCE_LEASE if lease_seconds is None else lease_seconds
        claimed = store.claim(queue, count, token, lease, self.lease_owner)
        if lease_seconds is None and claimed:
            # At-most-once: the items are ours alone now; deleting them ends the delivery.
            store.items.delete_many({'_id': {'$in': [doc['_id'] for doc in claimed]}, 'lease': token})
        return [_message(index, token, doc) for doc in claimed]

    @_driver_errors
    def ack(self, queue: str, receipts: Sequence[bytes]) -> int:
        acked = 0
        for index, token, ids in _group(receipts, len(self._stores)):
            leased = {'_id': {'$in': ids}, 'queue': queue, 'lease': token}
            acked += self._store(index).items.delete_many(leased).deleted_count
        return acked

    @_driver_errors
    def nack(self, queue: str, receipts: Sequence[bytes]) -> int:
        handed_back = {'$set': {'lease': None, 'visible_at': 0.0, 'order': 0.0}, '$inc': {'nacks': 1}}
        return self._update_leased(queue, receipts, handed_back)

    @_driver_errors
    def extend_leases(self, queue: str, receipts: Sequence[bytes], lease_seconds: float) -> int:
        return self._update_leased(queue, receipts, {'$set': {'visible_at': time.time() + lease_seconds}})

    def _update_leased(self, queue: str, receipts: Sequence[bytes], update: Mapping[str, Any]) -> int:
        updated = 0
        for index, token, ids in _group(receipts, len(self._stores)):
            leased = {'_id': {'$in': ids}, 'queue': queue, 'lease': token}
            updated += self._store(index).items.update_many(leased, update).matched_count
        return updated

    @_driver_errors
    def leases_by_owner(self, queue: str) -> dict[str, int]:
        query = {'queue': queue, 'lease': {'$ne': None}, 'visible_at': {'$gt': time.time()}}
        counts = Counter[str]()
        for index in range(len(self._stores)):
            for document in self._store(index).items.find(query, {'owner': 1, '_id': 0}):
                owner = document.get('owner')
                if isinstance(owner, str):
                    counts[owner] += 1
        return dict(counts)

    @_driver_errors
    def release_owner(
        self, queue: str, owner: str, started: Sequence[bytes], keep: Sequence[bytes] = ()
    ) -> Released:
        started_keys = {
            (index, item_id) for index, _, ids in _group(started, len(self._stores)) for item_id in ids
        }
        kept_keys = {
            (index, token, item_id)
            for index, token, ids in _group(keep, len(self._stores))
            for item_id in ids
        }
        charged: list[bytes] = []
        uncharged = 0
        for index in range(len(self._stores)):
            items = self._store(index).items
            held = {
                'queue': queue,
                'owner': owner,
                'lease': {'$ne': None},
                'visible_at': {'$gt': time.time()},
            }
            for document in items.find(held, {'lease': 1}):
                if (index, document['lease'], document['_id']) in kept_keys:
                    continue
                mine = {'_id': document['_id'], 'lease': document['lease'], 'owner': owner}
                if (index, document['_id']) in started_keys:
                    # no nack counted: the next claim makes its delivery count one more
                    update: dict[str, Any] = {
                        '$set': {'lease': None, 'visible_at': 0.0, 'order': 0.0, 'owner': None}
                    }
                    released = items.find_one_and_update(mine, update)  # FerretDB: no projection here
                    if released is not None:
                        charged.append(_payload_of(released))
                else:
                    update = {
                        '$set': {'lease': None, 'visible_at': 0.0, 'order': 0.0, 'owner': None},
                        '$inc': {'nacks': 1},
                    }
                    uncharged += items.update_one(mine, update).matched_count
        return Released(charged, uncharged)

    @_driver_errors
    def length(self, queue: str, include_delayed: bool = False) -> int:
        now = time.time()
        query: dict[str, Any]
        if include_delayed:
            query = {'queue': queue, '$or': [{'lease': None}, {'visible_at': {'$lte': now}}]}
        else:
            query = {'queue': queue, 'visible_at': {'$lte': now}}
        parked_since = None if include_delayed else now
        return sum(
            self._store(i).items.count_documents(query) + self._store(i).backlog.count(queue, parked_since)
            for i in range(len(self._stores))
        )

    @_driver_errors
    def in_flight(self, queue: str) -> int:
        query = {'queue': queue, 'lease': {'$ne': None}, 'visible_at': {'$gt': time.time()}}
        return sum(self._store(i).items.count_documents(query) for i in range(len(self._stores)))

    @_driver_errors
    def queues(self) -> list[str]:
        names: set[str] = set()
        for index in range(len(self._stores)):
            store = self._store(index)
            names.update(name for name in store.items.distinct('queue') if isinstance(name, str))
            names.update(store.backlog.queues())
            names.update(self._dead[index].queues())
        return sorted(names)

    @_driver_errors
    def head_pushed_at(self, queue: str) -> float | None:
        now = time.time()
        ready = {'queue': queue, 'visible_at': {'$lte': now}}
        heads = []
        for index in range(len(self._stores)):
            store = self._store(index)
            head = store.items.find_one(ready, {'_id': 1, 'priority': 1, 'order': 1}, sort=ORDER)
            parked = store.backlog.head(queue, now)
            if parked is not None and (head is None or rank_of(parked) < rank_of(head)):
                heads.append(float(parked['pushed_at']))
            # a document's ObjectId holds the second it was inserted: its push
            elif head is not None and isinstance(head['_id'], ObjectId):
                heads.append(head['_id'].generation_time.timestamp())
        return min(heads) if heads else None

    @_driver_errors
    def delete(self, queue: str) -> bool:
        deleted = False
        for index in range(len(self._stores)):
            store = self._store(index)
            deleted |= store.items.delete_many({'queue': queue}).deleted_count > 0
            deleted |= store.backlog.delete(queue)
        return deleted

    # -- dead letters ------------------------------------------------------------------

    @_driver_errors
    def dead_letter(self, queue: str, letters: Sequence[DeadLetter], receipts: Sequence[bytes] = ()) -> int:
        if letters:
            self._dead[self._home(queue)].add(queue, letters)
        if receipts:
            # After the insert: a crash in between duplicates a payload rather than losing it.
            self.ack(queue, receipts)
        return len(letters)

    @_driver_errors
    def dead_letters(self, queue: str, count: int = 100) -> list[DeadLetter]:
        return self._dead[self._home(queue)].oldest(queue, count) if count > 0 else []

    @_driver_errors
    def find_dead_letters(self, queue: str, ids: Sequence[str]) -> list[DeadLetter]:
        object_ids = _object_ids(ids)
        return self._dead[self._home(queue)].find(queue, object_ids) if object_ids else []

    @_driver_errors
    def dead_letter_length(self, queue: str) -> int:
        return self._dead[self._home(queue)].length(queue)

    @_driver_errors
    def requeue_dead_letters(self, queue: str, count: int | None = None) -> int:
        dead = self._dead[self._home(queue)]
        return dead.drain(queue) if count is None else dead.requeue(queue, count)

    @_driver_errors
    def requeue_dead_letters_by_id(
        self, queue: str, ids: Sequence[str], payloads: Mapping[str, bytes] | None = None
    ) -> int:
        object_ids = _object_ids(ids)
        return (
            self._dead[self._home(queue)].requeue_ids(queue, object_ids, payloads or {}) if object_ids else 0
        )

    @_driver_errors
    def purge_dead_letters(self, queue: str, count: int | None = None) -> int:
        if count is not None and count <= 0:
            return 0
        return self._dead[self._home(queue)].purge(queue, count)

    # -- keys and locks ------------------------------------------------------------------

    @_driver_errors
    def key_set(self, key: str, value: bytes) -> bool:
        keys = self._stores[self._home(key)].keys
        try:
            result = keys.update_one({'_id': key}, {'$set': {'value': value}}, upsert=True)
        except pymongo.errors.DuplicateKeyError:
            # Another writer created the key between our lookup and our insert.
            keys.update_one({'_id': key}, {'$set': {'value': value}})
            return False
        return result.upserted_id is not None

    @_driver_errors
    def key_get(self, key: str) -> bytes | None:
        document = self._stores[self._home(key)].keys.find_one({'_id': key})
        return None if document is None else bytes(document['value'])

    @_driver_errors
    def key_delete(self, key: str) -> bool:
        return self._stores[self._home(key)].keys.delete_one({'_id': key}).deleted_count == 1

    def lock(self, name: str) -> MongoLock:
        return MongoLock(self._stores[self._home(name)], name)

    # -- lifecycle -------------------------------------------------------------------------

    def ping(self) -> bool:
        """True when every deployment answers a ping within the server selection timeout."""
        try:
            for store in self._stores:
                store.client.admin.command('ping')
        except pymongo.errors.PyMongoError:
            return False
        return True

    def close(self) -> None:
        for store in self._stores:
            store.client.close()


class MongoLock(Lock):
    """A document ``{_id: name, token, expires_at, version}`` in the ``locks`` collection.

    Taking a free lock is an insert (its ``_id`` is unique); taking over an expired
    one, releasing and changing the ttl first win the ledger entry of the
    document's current ``version``, so two of them never both succeed.
    """

    def __init__(self, store: MongoStore, name: str) -> None:
        super().__init__(name)
        self._store = store

    @_driver_errors
    def _try_acquire(self, ttl: int) -> bool:
        now = time.time()
        fields = {'token': self.token, 'expires_at': now + ttl, 'version': secrets.token_bytes(8)}
        try:
            self._store.locks.insert_one({'_id': self.name, **fields})
            return True
        except pymongo.errors.DuplicateKeyError:
            pass
        current = self._store.locks.find_one({'_id': self.name})
        if current is None or current['expires_at'] > now:
            return False  # held; or released just now, and the next poll will take it
        return self._transition(current, {'$set': fields})

    @_driver_errors
    def _release(self) -> bool:
        current = self._held()
        if current is None or not self._store.win([self._ledger_key(current)])[0]:
            return False
        result = self._store.locks.delete_one({'_id': self.name, 'version': current['version']})
        return result.deleted_count == 1

    @_driver_errors
    def is_locked(self) -> bool:
        return self._store.locks.find_one({'_id': self.name, 'expires_at': {'$gt': time.time()}}) is not None

    @_driver_errors
    def set_ttl(self, ttl: int) -> bool:
        current = self._held()
        if current is None:
            return False
        fields = {'expires_at': time.time() + ttl, 'version': secrets.token_bytes(8)}
        return self._transition(current, {'$set': fields})

    @_driver_errors
    def get_ttl(self) -> int | None:
        now = time.time()
        current = self._store.locks.find_one({'_id': self.name, 'expires_at': {'$gt': now}})
        return None if current is None else math.ceil(current['expires_at'] - now)

    def _held(self) -> dict[str, Any] | None:
        """The lock document while this object's token holds it unexpired."""
        return self._store.locks.find_one(
            {'_id': self.name, 'token': self.token, 'expires_at': {'$gt': time.time()}}
        )

    def _transition(self, current: Mapping[str, Any], update: Mapping[str, Any]) -> bool:
        if not self._store.win([self._ledger_key(current)])[0]:
            return False
        result = self._store.locks.update_one({'_id': self.name, 'version': current['version']}, update)
        return result.matched_count == 1

    def _ledger_key(self, current: Mapping[str, Any]) -> str:
        return f'lock:{self.name}:{bytes(current["version"]).hex()}'


def _object_ids(ids: Sequence[str]) -> list[ObjectId]:
    """The ids that are ObjectIds (the ids of Mongo dead letters), once each; others are dropped."""
    return list(dict.fromkeys(ObjectId(value) for value in ids if ObjectId.is_valid(value)))


def _message(index: int, token: bytes, document: Mapping[str, Any]) -> Message:
    receipt = _RECEIPT.pack(index, document['_id'].binary, token)
    return Message(_payload_of(document), receipt, document['claims'] - document['nacks'])


def _payload_of(document: Mapping[str, Any]) -> bytes:
    payload = document.get('payload')
    if not isinstance(payload, bytes):  # written by another client: its BSON, for the dead letter
        payload = bson.encode({'payload': payload})
    return payload


def _group(receipts: Iterable[bytes], deployments: int) -> list[tuple[int, bytes, list[ObjectId]]]:
    """Receipts as (deployment index, claim token, item ids), one entry per pop batch."""
    groups: dict[tuple[int, bytes], list[ObjectId]] = {}
    for receipt in receipts:
        try:
            index, item_id, token = _RECEIPT.unpack(receipt)
        except struct.error:
            raise ValueError(f'not a receipt of the mongo connector: {receipt!r}') from None
        if index >= deployments:
            raise ValueError(f'receipt of another deployment list: {receipt!r}')
        groups.setdefault((index, token), []).append(ObjectId(item_id))
    return [(index, token, ids) for (index, token), ids in groups.items()]
