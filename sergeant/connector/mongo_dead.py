"""Requeueing all of a queue's dead letters on MongoDB in a few passes, however many there are.

Used by :mod:`sergeant.connector.mongo`. On FerretDB 1.x every delete and every
sorted query reads the whole collection, so moving dead letters a batch at a time
(oldest first, then delete them) costs time in proportion to the square of their
number: 100,000 did not finish in six minutes. ``requeue --all`` drains instead:

1. rename ``dead_letters`` to ``dead_letters_drain_<ObjectId>`` (atomic; letters
   dead-lettered from then on go to a fresh ``dead_letters``);
2. read the drained collection once, in insertion order: each letter of the queue
   is won in the claim ledger (``dead:<id>``, as a requeue by id does) and pushed
   (parked in the backlog when many), letters of other queues are put back into
   ``dead_letters`` with their own ``_id``;
3. drop the drained collection.

Until it is dropped, a drained collection still counts as dead letters of every
queue in it (:func:`sources`). A requeue that dies mid-way leaves it behind; the
next ``requeue --all`` drains it once it is ``ORPHANED_AFTER`` old, and letters the
dead requeue had already pushed are pushed once more (at-least-once).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import pymongo.errors
from bson import ObjectId
from pymongo.collection import Collection

from .mongo_backlog import insert_once
from .mongo_params import Document
from .mongo_store import DEAD_ORDER, MongoStore

DRAIN_PREFIX = 'dead_letters_drain_'
ORPHANED_AFTER = 600.0  # seconds: far longer than any drain's pause between two reads
_BATCH = 1000
_REPLY_BYTES = 16 * 2**20  # payload bytes in one reply of the drain's cursor
_NAMESPACE_NOT_FOUND = 26

Push = Callable[[MongoStore, str, Sequence[Document]], int]


def sources(store: MongoStore) -> list[Collection[Document]]:
    """``dead_letters`` and the drained collections not dropped yet: all dead letters of a store."""
    drains = sorted(name for name in store.database.list_collection_names() if name.startswith(DRAIN_PREFIX))
    return [store.dead, *(store.database[name] for name in drains)]


def drain(store: MongoStore, queue: str, push: Push) -> int:
    """Requeue every dead letter of ``queue`` on this store; return how many were pushed.

    ``push`` moves letters (read with their payload) to the queue, winning them in
    the ledger, and returns how many it moved.
    """
    name = f'{DRAIN_PREFIX}{ObjectId()}'
    mine = [name]
    try:
        store.dead.rename(name)
    except pymongo.errors.OperationFailure as error:
        if error.code != _NAMESPACE_NOT_FOUND:
            raise
        mine = []  # no dead letters at all right now
    store.dead.create_index([('queue', 1), *DEAD_ORDER], name='dead_order')
    horizon = time.time() - ORPHANED_AFTER
    orphans = [
        source.name
        for source in sources(store)[1:]
        if source.name not in mine and _created(source.name) < horizon
    ]
    moved = 0
    for drained in mine + orphans:
        moved += _drain_one(store, store.database[drained], queue, push)
        store.database.drop_collection(drained)
    return moved


def _drain_one(store: MongoStore, source: Collection[Document], queue: str, push: Push) -> int:
    largest = max((doc.get('size', 0) for doc in source.find({}, {'size': 1})), default=0)
    per_reply = _BATCH if type(largest) is not int or largest <= 0 else _REPLY_BYTES // largest
    moved = 0
    batch: list[Document] = []
    for document in source.find({}, batch_size=max(1, min(_BATCH, per_reply))):
        batch.append(document)
        if len(batch) >= _BATCH:
            moved += _settle(store, queue, batch, push)
            batch = []
    return moved + _settle(store, queue, batch, push)


def _settle(store: MongoStore, queue: str, batch: list[Document], push: Push) -> int:
    others = [document for document in batch if document.get('queue') != queue]
    if others:
        insert_once(store.dead, others)
    return push(store, queue, [document for document in batch if document.get('queue') == queue])


def _created(name: str) -> float:
    suffix = name[len(DRAIN_PREFIX) :]
    return ObjectId(suffix).generation_time.timestamp() if ObjectId.is_valid(suffix) else 0.0
