"""The backlog of MongoDB queues: items parked in small segment collections.

Used by :mod:`sergeant.connector.mongo_store`. FerretDB 1.x on SQLite pushes down
nothing but ``find`` by ``_id`` equality: every other filter, every sort, count,
update and delete reads the whole collection (``explain`` shows ``filterPushdown:
false``; measured about 60 µs per document). Claims, leases, read-backs and
acknowledgements all update or delete in ``queue_items``, so they cost time in
proportion to that collection, and it is kept small however deep a queue grows:

* a push of at least ``SEGMENT_MIN`` payloads goes to segments straight away;
* a smaller push goes to ``queue_items``, and now and then (a chance proportional to
  the payloads pushed) the pusher counts that queue's waiting items there (ready or
  delayed, not leased); above ``HOT_HIGH`` the ones that rank last are *spilled* into
  segments until ``HOT_LOW`` remain. Delayed items rank after the ready ones of their
  priority (their ``order`` is their due time), so single pushes of delayed tasks do
  not pile up there either.

A segment is a collection ``queue_segment_<id>`` of at most ``SEGMENT_ITEMS``
complete item documents, registered in ``queue_segments`` as ``_id`` (the
collection's name), ``queue``, ``priority`` and ``order`` of its first item (its
items rank no earlier), ``visible_at`` (when its first item becomes claimable: a spill
parks ready and delayed items in separate segments), ``count`` and ``pushed_at``. A claim compares the
first claimable segment with its candidates in ``queue_items`` and *moves* the
segment there when it ranks first or the candidates run short.

The registry is read once per change, not once per claim: every change of a queue's
segments writes a fresh random ``token`` to ``queue_backlog_versions`` (``_id`` the
queue) after changing the registry, and a reader that finds the token it read last
(one ``_id`` lookup) reuses the registry it read then.

Crash safety: parking writes the segment, then registers it (a crash in between
leaves an unreachable collection, never a lost item: a spill deletes its items from
``queue_items`` only after registering). A move is won in the claim ledger
(``segment:<name>``), inserts the documents with their own ``_id`` (so a repeated
move inserts nothing twice), then unregisters and drops the segment; a mover that
dies in between is taken over after the ledger's abandonment time, and the taker
leaves out items the ledger shows were claimed since (acknowledged ones would
otherwise come back).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

import pymongo
import pymongo.errors
from bson import ObjectId
from pymongo.collection import Collection
from pymongo.database import Database

from .mongo_params import Document

SEGMENT_MIN = 50  # pushes of fewer payloads go to queue_items
SEGMENT_ITEMS = 200
HOT_HIGH = 400  # ready items of one queue in queue_items above which a pusher spills
HOT_LOW = 200  # what a spill leaves there
# payload bytes of one segment: read back in one reply (a reply carries at most 48 MB)
_SEGMENT_BYTES = 16 * 2**20
_PREFIX = 'queue_segment_'
_DUPLICATE_KEY = 11000

Rank = tuple[int, float]


def rank_of(document: Document) -> Rank:
    """The claim order of an item or segment: HIGH first, then by ``order``."""
    return (-int(document.get('priority', 0)), float(document.get('order', 0.0)))


class Backlog:
    """The segments of every queue on one database."""

    def __init__(
        self,
        database: Database[Document],
        items: Collection[Document],
        ledger: Collection[Document],
        win: Callable[[Sequence[str]], list[bool]],
    ) -> None:
        self._database = database
        self.registry: Collection[Document] = database['queue_segments']
        self._versions: Collection[Document] = database['queue_backlog_versions']
        self._items = items
        self._ledger = ledger
        self._win = win
        self._cache: dict[str, tuple[Any, list[Document]]] = {}

    def create_indexes(self) -> None:
        self.registry.create_index([('queue', 1), ('priority', -1), ('order', 1)], name='segment_order')

    # -- writing ----------------------------------------------------------------------

    def park(self, queue: str, documents: Sequence[Document]) -> None:
        """Store item documents (with their ``_id``, in claim order) in new segments of ``queue``."""
        for chunk in _chunks(documents):
            name = f'{_PREFIX}{ObjectId()}'
            self._database[name].insert_many(chunk, ordered=True)
            # registered last: a crash before this leaves an unreachable collection, never a dangling entry
            self.registry.insert_one(
                {
                    '_id': name,
                    'queue': queue,
                    'priority': chunk[0]['priority'],
                    'order': min(float(document['order']) for document in chunk),
                    'visible_at': min(float(document['visible_at']) for document in chunk),
                    'count': len(chunk),
                    'pushed_at': min(_pushed_at(document) for document in chunk),
                }
            )
        if documents:
            self._bump(queue)

    def spill(self, queue: str) -> int:
        """Park the last-ranked waiting items of ``queue`` beyond ``HOT_LOW`` in segments; return how many."""
        now = time.time()
        documents = list(self._items.find(waiting(queue), sort=[('priority', -1), ('order', 1), ('_id', 1)]))
        tail = [document for document in documents[HOT_LOW:] if type(document.get('claims')) is int]
        if not tail:
            return 0
        # the same ledger keys a claim wins: no consumer claims an item while it is spilled
        outcomes = self._win([f'item:{document["_id"]}:{document["claims"]}' for document in tail])
        won = [document for document, ok in zip(tail, outcomes, strict=True) if ok]
        if not won:
            return 0
        # fresh ids (keeping the push second): the ledger keys of the old ones are spent
        copies = [{**doc, '_id': ObjectId(doc['_id'].binary[:4] + os.urandom(8))} for doc in won]
        # a segment is claimable from its earliest item on: delayed items apart, so ready ones wait for none
        self.park(queue, [copy for copy in copies if float(copy['visible_at']) <= now])
        self.park(queue, [copy for copy in copies if float(copy['visible_at']) > now])
        self._items.delete_many({'_id': {'$in': [document['_id'] for document in won]}, 'lease': None})
        return len(won)

    def move(self, segment: Document) -> bool:
        """Move a segment's items into ``queue_items``; False when another consumer holds the move."""
        name = segment['_id']
        if not self._win([f'segment:{name}'])[0]:
            return False
        if self.registry.find_one({'_id': name}, {'_id': 1}) is not None:
            documents = self._unclaimed(list(self._database[name].find({}, batch_size=SEGMENT_ITEMS + 1)))
            if documents:
                insert_once(self._items, documents)
            self.registry.delete_one({'_id': name})
        self._database.drop_collection(name)
        self._bump(segment['queue'])
        return True

    def _unclaimed(self, documents: list[Document]) -> list[Document]:
        """The segment's documents less those a mover that died moved already and that were claimed since."""
        ids = [document['_id'] for document in documents]
        if not ids or self._items.find_one({'_id': {'$in': ids}}, {'_id': 1}) is None:
            return documents  # nothing of it was moved before
        keys = [f'item:{document["_id"]}:{document.get("claims")}' for document in documents]
        claimed = {entry['_id'] for entry in self._ledger.find({'_id': {'$in': keys}}, {'_id': 1})}
        return [document for document, key in zip(documents, keys, strict=True) if key not in claimed]

    def delete(self, queue: str) -> bool:
        names = [segment['_id'] for segment in self.registry.find({'queue': queue}, {'_id': 1})]
        if names:
            self.registry.delete_many({'queue': queue})
            for name in names:
                self._database.drop_collection(name)
            self._bump(queue)
        return bool(names)

    def _bump(self, queue: str) -> None:
        """Tell every reader that the segments of ``queue`` changed (after changing them)."""
        change = {'$set': {'token': secrets.token_bytes(8)}}
        try:
            self._versions.update_one({'_id': queue}, change, upsert=True)
        except pymongo.errors.DuplicateKeyError:
            self._versions.update_one({'_id': queue}, change)

    # -- reading ----------------------------------------------------------------------

    def segments(self, queue: str) -> list[Document]:
        """The registered segments of ``queue`` in claim order; cached until their version changes."""
        version = self._versions.find_one({'_id': queue})
        token = None if version is None else version.get('token')
        cached = self._cache.get(queue)
        if token is not None and cached is not None and cached[0] == token:
            return cached[1]
        found = sorted(self.registry.find({'queue': queue}), key=lambda s: (rank_of(s), s['_id']))
        if token is not None:
            if len(self._cache) > 1000:
                self._cache.clear()
            self._cache[queue] = (token, found)
        return found

    def head(self, queue: str, now: float) -> Document | None:
        """The claimable segment of ``queue`` that ranks first, if any."""
        return next((s for s in self.segments(queue) if s['visible_at'] <= now), None)

    def count(self, queue: str, now: float | None) -> int:
        """Items parked for ``queue``: only the claimable ones unless ``now`` is None."""
        return sum(int(s['count']) for s in self.segments(queue) if now is None or s['visible_at'] <= now)

    def queues(self) -> set[str]:
        return {name for name in self.registry.distinct('queue') if isinstance(name, str)}


def waiting(queue: str) -> Document:
    """The filter of the items of ``queue`` in ``queue_items`` that no consumer holds: ready or delayed."""
    return {'queue': queue, 'lease': None}


def insert_once(collection: Collection[Document], documents: Sequence[Document]) -> None:
    """Insert documents, leaving alone those whose ``_id`` is already there."""
    try:
        collection.insert_many(documents, ordered=False)
    except pymongo.errors.BulkWriteError as error:
        failures = error.details.get('writeErrors', [])
        if error.details.get('writeConcernErrors') or any(f.get('code') != _DUPLICATE_KEY for f in failures):
            raise


def _pushed_at(document: Document) -> float:
    identifier = document['_id']
    return identifier.generation_time.timestamp() if isinstance(identifier, ObjectId) else time.time()


def _chunks(documents: Sequence[Document]) -> list[list[Document]]:
    """Documents in segments of one priority, at most ``SEGMENT_ITEMS`` and ``_SEGMENT_BYTES`` each."""
    chunks: list[list[Document]] = []
    chunk_bytes = _SEGMENT_BYTES
    for document in documents:
        size = document.get('size')
        size = size if type(size) is int else _SEGMENT_BYTES
        if (
            not chunks
            or len(chunks[-1]) >= SEGMENT_ITEMS
            or chunk_bytes + size > _SEGMENT_BYTES
            or chunks[-1][0]['priority'] != document['priority']
        ):
            chunks.append([])
            chunk_bytes = 0
        chunks[-1].append(document)
        chunk_bytes += size
    return chunks
