"""Dead letters of MongoDB queues: writing, reading, requeueing and purging them.

Used by :mod:`sergeant.connector.mongo`, one :class:`DeadLetters` per deployment.
A queue's letters live in three kinds of collection, its *sources*:

* ``dead_letters``, which takes letters a few at a time, and the part collections
  of :mod:`sergeant.connector.mongo_dead_parts`, which take the rest: every
  operation reads the few parts it needs, so batches cost the same however many
  letters wait;
* ``dead_letters_drain_<ObjectId>`` collections of a ``requeue --all`` under way.
  Such a requeue *drains*: it renames ``dead_letters`` (atomic; letters written
  from then on go to a fresh one), reads the renamed collection once, pushes the
  queue's letters and puts other queues' letters back with their own ``_id``,
  then drops it; the queue's parts are pushed and dropped one by one. A requeue
  that dies mid-way leaves its drain collection behind; the next ``requeue --all``
  drains it once it is ``ORPHANED_AFTER`` old.

Every move of a letter to its queue is won in the claim ledger (``dead:<id>``), so
concurrent requeues move each letter once; the items are inserted before the
letter is deleted, so a requeue that dies in between leaves a duplicate, never a
lost letter.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pymongo.errors
from bson import ObjectId
from pymongo.collection import Collection

from .base import DeadLetter
from .mongo_backlog import insert_once
from .mongo_dead_parts import DeadParts
from .mongo_params import Document
from .mongo_store import DEAD_ORDER, MongoStore, read_in_parts

DRAIN_PREFIX = 'dead_letters_drain_'
ORPHANED_AFTER = 600.0  # seconds: far longer than any drain's pause between two reads
BATCH = 1000
NORMAL_RANK = 0
_REPLY_BYTES = 16 * 2**20  # payload bytes in one reply of the drain's cursor
_NAMESPACE_NOT_FOUND = 26
_READ_FIELDS = {'payload': 1, 'reason': 1, 'failed_at': 1}


class _Head:
    """One letter found by :meth:`DeadLetters._oldest`: where it is, and its sort key."""

    __slots__ = ('document', 'part', 'source')

    def __init__(self, document: Document, source: Collection[Document], part: Document | None) -> None:
        self.document = document
        self.source = source
        self.part = part

    def key(self) -> tuple[float, ObjectId]:
        return (float(self.document.get('at', 0.0)), self.document['_id'])


class DeadLetters:
    """The dead letters of every queue on one deployment."""

    def __init__(self, store: MongoStore) -> None:
        self._store = store
        self._parts = DeadParts(store.database, store.dead, store.win)
        self._indexed = False

    def _ready(self) -> MongoStore:
        store = self._store.ready()
        if not self._indexed:
            self._parts.create_indexes()
            self._indexed = True
        return store

    # -- writing and reading ----------------------------------------------------------

    def add(self, queue: str, letters: Sequence[DeadLetter]) -> None:
        now = time.time()
        documents = [
            {
                '_id': ObjectId(),
                'queue': queue,
                'payload': letter.payload,
                'reason': letter.reason,
                'failed_at': letter.failed_at,
                'at': now,
                'size': len(letter.payload),
            }
            for letter in letters
        ]
        self._ready()
        self._parts.add(queue, documents)

    def oldest(self, queue: str, count: int) -> list[DeadLetter]:
        heads = self._oldest(queue, count, [])
        documents: dict[ObjectId, Document] = {}
        for source, _, group in _by_source(heads):
            documents.update(
                (doc['_id'], doc) for doc in read_in_parts(source, group, _READ_FIELDS, DEAD_ORDER)
            )
        return [
            _letter(documents[head.document['_id']]) for head in heads if head.document['_id'] in documents
        ]

    def find(self, queue: str, ids: Sequence[ObjectId]) -> list[DeadLetter]:
        """The letters of ``queue`` among ``ids``, oldest first."""
        found: list[Document] = []
        for source, heads in self._find(queue, ids):
            found.extend(read_in_parts(source, heads, {**_READ_FIELDS, 'at': 1}, DEAD_ORDER))
        return [
            _letter(doc) for doc in sorted(found, key=lambda doc: (float(doc.get('at', 0.0)), doc['_id']))
        ]

    def length(self, queue: str) -> int:
        store = self._ready()
        return self._parts.count(queue) + sum(
            c.count_documents({'queue': queue}) for c in _collections(store)
        )

    def queues(self) -> set[str]:
        store = self._ready()
        names = self._parts.queues()
        for collection in _collections(store):
            names.update(name for name in collection.distinct('queue') if isinstance(name, str))
        return names

    # -- requeueing and purging -------------------------------------------------------

    def requeue(self, queue: str, count: int) -> int:
        """Move the oldest ``count`` letters of ``queue`` back to it; return how many moved."""
        moved = 0
        taken: list[ObjectId] = []  # letters another requeue is moving right now
        while moved < count:
            heads = self._oldest(queue, min(BATCH, count - moved), taken)
            if not heads:
                break
            for source, part, documents in _by_source(heads):
                found = read_in_parts(source, documents, {'payload': 1}, DEAD_ORDER)
                won = self._move(queue, source, part, found, {})
                won_ids = {doc['_id'] for doc in won}
                taken.extend(doc['_id'] for doc in found if doc['_id'] not in won_ids)
                moved += len(won)
        return moved

    def requeue_ids(self, queue: str, ids: Sequence[ObjectId], payloads: Mapping[str, bytes]) -> int:
        moved = 0
        for source, heads in self._find(queue, ids):
            part = self._part_of(queue, source)
            for start in range(0, len(heads), BATCH):
                found = read_in_parts(source, heads[start : start + BATCH], {'payload': 1}, DEAD_ORDER)
                moved += len(self._move(queue, source, part, found, payloads))
        return moved

    def purge(self, queue: str, count: int | None) -> int:
        store = self._ready()
        if count is None:
            purged = sum(c.delete_many({'queue': queue}).deleted_count for c in _collections(store))
            for whole in self._parts.parts(queue):
                purged += int(whole['count'])
                self._parts.drop(whole)
            return purged
        purged = 0
        for source, part, heads in _by_source(self._oldest(queue, count, [])):
            ids = [head['_id'] for head in heads]
            if part is None:
                purged += source.delete_many({'_id': {'$in': ids}}).deleted_count
            else:
                self._parts.remove(part, ids)
                purged += len(ids)
        return purged

    def drain(self, queue: str) -> int:
        """Requeue every letter of ``queue``; return how many were pushed."""
        store = self._ready()
        moved = 0
        for part in self._parts.parts(queue):
            source = self._parts.collection(part)
            documents = list(source.find({}, {'payload': 1, 'at': 1}, sort=DEAD_ORDER))
            moved += len(self._move(queue, source, None, documents, {}))
            self._parts.drop(part)
        name = f'{DRAIN_PREFIX}{ObjectId()}'
        mine = [name]
        try:
            store.dead.rename(name)
        except pymongo.errors.OperationFailure as error:
            if error.code != _NAMESPACE_NOT_FOUND:
                raise
            mine = []  # no dead letters in the hot collection right now
        store.dead.create_index([('queue', 1), *DEAD_ORDER], name='dead_order')
        horizon = time.time() - ORPHANED_AFTER
        orphans = [c.name for c in _drains(store) if c.name not in mine and _created(c.name) < horizon]
        for drained in mine + orphans:
            moved += self._drain_one(queue, store.database[drained])
            store.database.drop_collection(drained)
        return moved

    def _drain_one(self, queue: str, source: Collection[Document]) -> int:
        largest = max((doc.get('size', 0) for doc in source.find({}, {'size': 1})), default=0)
        per_reply = BATCH if type(largest) is not int or largest <= 0 else _REPLY_BYTES // largest
        moved = 0
        batch: list[Document] = []
        for document in source.find({}, batch_size=max(1, min(BATCH, per_reply))):
            batch.append(document)
            if len(batch) >= BATCH:
                moved += self._settle_drained(queue, batch)
                batch = []
        return moved + self._settle_drained(queue, batch)

    def _settle_drained(self, queue: str, batch: list[Document]) -> int:
        others = [document for document in batch if document.get('queue') != queue]
        if others:
            insert_once(self._store.dead, others)
        mine = [document for document in batch if document.get('queue') == queue]
        return len(self._move(queue, None, None, mine, {}))

    def _move(
        self,
        queue: str,
        source: Collection[Document] | None,
        part: Document | None,
        found: Sequence[Document],
        replacements: Mapping[str, bytes],
    ) -> list[Document]:
        """Push letters (read with their payload) to ``queue`` and delete them from ``source``.

        Returns the letters this call won in the ledger and moved. ``source`` None:
        the caller drops the collection they came from.
        """
        store = self._store
        outcomes = store.win([f'dead:{doc["_id"]}' for doc in found])
        won = [doc for doc, ok in zip(found, outcomes, strict=True) if ok]
        if won:
            payloads = [replacements.get(str(doc['_id']), bytes(doc['payload'])) for doc in won]
            store.insert_items(queue, payloads, NORMAL_RANK, 0.0)
            ids = [doc['_id'] for doc in won]
            if part is not None:
                self._parts.remove(part, ids)
            elif source is not None:
                source.delete_many({'_id': {'$in': ids}})
        return won

    # -- finding letters --------------------------------------------------------------

    def _oldest(self, queue: str, count: int, excluded: Sequence[ObjectId]) -> list[_Head]:
        """The oldest ``count`` letters of ``queue`` (but ``excluded``), oldest first.

        Parts are visited oldest first, and only while one may hold a letter older
        than the ``count``-th found so far.
        """
        if count <= 0:
            return []
        store = self._ready()
        query: dict[str, Any] = {'queue': queue}
        if excluded:
            query['_id'] = {'$nin': list(excluded)}
        heads: list[_Head] = []
        for collection in _collections(store):
            found = collection.find(query, {'size': 1, 'at': 1}, sort=DEAD_ORDER, limit=count)
            heads.extend(_Head(document, collection, None) for document in found)
        heads.sort(key=_Head.key)
        for part in self._parts.parts(queue):
            if len(heads) >= count and part['first_at'] > heads[count - 1].key()[0]:
                break
            collection = self._parts.collection(part)
            found = collection.find(
                {'_id': {'$nin': list(excluded)}}, {'size': 1, 'at': 1}, sort=DEAD_ORDER, limit=count
            )
            heads.extend(_Head(document, collection, part) for document in found)
            heads.sort(key=_Head.key)
            del heads[count:]
        return heads[:count]

    def _find(
        self, queue: str, ids: Sequence[ObjectId]
    ) -> Iterator[tuple[Collection[Document], list[Document]]]:
        """The letters of ``queue`` among ``ids``, by source: the hot collection, then parts oldest first."""
        store = self._ready()
        wanted = list(ids)
        sources = [
            store.dead,
            *(self._parts.collection(p) for p in self._parts.parts(queue)),
            *_drains(store),
        ]
        for source in sources:
            if not wanted:
                return
            heads = list(source.find({'queue': queue, '_id': {'$in': wanted}}, {'size': 1}, sort=DEAD_ORDER))
            if heads:
                found = {head['_id'] for head in heads}
                wanted = [value for value in wanted if value not in found]
                yield source, heads

    def _part_of(self, queue: str, source: Collection[Document]) -> Document | None:
        return next((part for part in self._parts.parts(queue) if part['_id'] == source.name), None)


def _collections(store: MongoStore) -> list[Collection[Document]]:
    """The hot collection and the drain collections not dropped yet."""
    return [store.dead, *_drains(store)]


def _drains(store: MongoStore) -> list[Collection[Document]]:
    names = sorted(name for name in store.database.list_collection_names() if name.startswith(DRAIN_PREFIX))
    return [store.database[name] for name in names]


def _by_source(heads: Sequence[_Head]) -> list[tuple[Collection[Document], Document | None, list[Document]]]:
    """Heads grouped by the collection holding them, each group in the order given."""
    groups: dict[str, tuple[Collection[Document], Document | None, list[Document]]] = {}
    for head in heads:
        group = groups.setdefault(head.source.name, (head.source, head.part, []))
        group[2].append(head.document)
    return list(groups.values())


def _letter(document: Document) -> DeadLetter:
    return DeadLetter(
        bytes(document['payload']), document['reason'], document['failed_at'], str(document['_id'])
    )


def _created(name: str) -> float:
    suffix = name[len(DRAIN_PREFIX) :]
    return ObjectId(suffix).generation_time.timestamp() if ObjectId.is_valid(suffix) else 0.0
