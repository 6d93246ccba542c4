"""The collections of one MongoDB deployment, and the claim protocol run on them.

Used by :mod:`sergeant.connector.mongo`, which spreads queues over one store per
configured deployment. Document layout, per database:

``queue_items`` — one document per queued payload:
    ``_id`` ObjectId; ``queue`` str; ``payload`` binary;
    ``priority`` 1 for HIGH, 0 for NORMAL (claimed highest first);
    ``order`` position inside a priority: the time the item became ready, 0.0 after a nack;
    ``visible_at`` claimable once ``<= now``: 0.0 when ready, ``consumable_from`` while
    delayed, the lease deadline while leased (an expired lease is just a past time);
    ``lease`` the claim token of the latest delivery, null when never claimed or handed back;
    ``claims`` how many times it was claimed; ``nacks`` how many of those were handed
    back, so ``delivery_count = claims - nacks``; ``owner`` the consumer that holds the
    latest claim (absent or null when none was given); ``size`` the payload's length in
    bytes (absent on documents other clients put in the queue).
``dead_letters`` — ``queue``, ``payload``, ``reason``, ``failed_at``, ``at`` (insertion order).
``queue_segments``, ``queue_backlog_versions``, ``queue_segment_<id>`` — the backlog
    of deep queues (see :mod:`sergeant.connector.mongo_backlog`).
``claims`` — the claim ledger: ``_id`` a transition key, ``at`` when it was recorded.
``keys`` — ``_id`` the key, ``value``. ``locks`` — ``_id`` the name, ``token``, ``expires_at``, ``version``.

Why a ledger: FerretDB 1.x evaluates an update's filter and writes the matched
documents in two separate steps, so two consumers racing for the same document
can both "atomically" claim it (measured: ~20% duplicates with four threads).
Inserting an ``_id`` that exists fails atomically on every server, so each
contended transition is first recorded in the ledger under a key naming the state
it starts from (``item:<id>:<claims>``, ``lock:<name>:<version>``, ``dead:<id>``);
only the caller whose insert succeeded goes on to write. A caller that dies between
the two steps leaves an entry whose transition never happened; once it is older
than ``_ABANDONED_AFTER`` while the state it names still holds, the next contender
records the transition again under a successor key (the same key with ``+``
appended), which again only one caller can insert. No multi-document
transactions, TTL indexes or change streams are needed: expiry is a timestamp
compared in queries, and old ledger entries are pruned by age.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pymongo
import pymongo.errors
from bson import ObjectId
from pymongo.collection import Collection

from .mongo_backlog import HOT_HIGH, SEGMENT_ITEMS, SEGMENT_MIN, Backlog, rank_of, waiting
from .mongo_params import Client, Document

ORDER: list[tuple[str, int]] = [('priority', pymongo.DESCENDING), ('order', pymongo.ASCENDING), ('_id', 1)]
DEAD_ORDER: list[tuple[str, int]] = [('at', pymongo.ASCENDING), ('_id', pymongo.ASCENDING)]

_DUPLICATE_KEY = 11000
_CLAIM_ATTEMPTS = 5  # rounds of a pop that lost candidates to other consumers
_LEDGER_HORIZON = 300.0  # seconds a ledger entry is kept; far above any claim's duration
# A ledger entry this old whose transition is still wanted was won by a caller that
# died before writing it (a claim writes within milliseconds of winning).
_ABANDONED_AFTER = 10.0
_TAKEOVER_MARK = '+'
_PRUNE_EVERY = 60.0
# A payload must fit in one document with the item's other fields: MongoDB refuses
# documents above 16 MiB, and FerretDB stores them but then fails every read of them.
MAX_PAYLOAD_BYTES = 16 * 2**20 - 2**14
# Claimed items are read back in parts of at most this many payload bytes: a reply
# of the wire protocol carries at most 48 MB, and FerretDB does not split its batches.
_READ_BACK_BYTES = 16 * 2**20


class MongoStore:
    """Queue items, dead letters, keys and locks on one deployment."""

    def __init__(self, client: Client, database: str) -> None:
        self.client = client
        db = client[database]
        self.database = db
        self.items: Collection[Document] = db['queue_items']
        self.dead: Collection[Document] = db['dead_letters']
        self.ledger: Collection[Document] = db['claims']
        self.keys: Collection[Document] = db['keys']
        self.locks: Collection[Document] = db['locks']
        self.backlog = Backlog(db, self.items, self.ledger, self.win)
        self._indexed = False
        self._guard = threading.Lock()
        self._pruned_at = time.monotonic()

    def ready(self) -> MongoStore:
        """This store, once the indexes of its queue collections exist (created on first use)."""
        if not self._indexed:
            with self._guard:
                if not self._indexed:
                    self._create_indexes()
                    self._indexed = True
        return self

    def _create_indexes(self) -> None:
        self.items.create_index([('queue', 1), *ORDER], name='claim_order')
        self.items.create_index([('queue', 1), ('visible_at', 1)], name='visibility')
        self.dead.create_index([('queue', 1), *DEAD_ORDER], name='dead_order')
        self.ledger.create_index([('at', 1)], name='age')
        self.backlog.create_indexes()

    # -- the ledger ----------------------------------------------------------------

    def win(self, keys: Sequence[str]) -> list[bool]:
        """Record each transition key; True where this call recorded it first.

        A key lost to an abandoned entry (see the module docstring) is contended
        again under its successor key.
        """
        if not keys:
            return []
        self._prune()
        won = [False] * len(keys)
        names = list(keys)
        contending = list(range(len(keys)))
        while contending:
            outcomes = self._record([names[index] for index in contending])
            lost = []
            for index, ok in zip(contending, outcomes, strict=True):
                won[index] = ok
                if not ok:
                    lost.append(index)
            abandoned = self._abandoned([names[index] for index in lost]) if lost else set()
            contending = [index for index in lost if names[index] in abandoned]
            for index in contending:
                names[index] += _TAKEOVER_MARK
        return won

    def _record(self, keys: Sequence[str]) -> list[bool]:
        try:
            self.ledger.insert_many([{'_id': key, 'at': time.time()} for key in keys], ordered=False)
        except pymongo.errors.BulkWriteError as error:
            details: Mapping[str, Any] = error.details
            failures = details.get('writeErrors', [])
            if details.get('writeConcernErrors') or any(f.get('code') != _DUPLICATE_KEY for f in failures):
                raise
            lost = {failure['index'] for failure in failures}
            return [index not in lost for index in range(len(keys))]
        return [True] * len(keys)

    def _abandoned(self, keys: Sequence[str]) -> set[str]:
        """The keys among ``keys`` whose entry is old enough to have been abandoned by its winner."""
        stale = {'_id': {'$in': list(keys)}, 'at': {'$lt': time.time() - _ABANDONED_AFTER}}
        return {entry['_id'] for entry in self.ledger.find(stale, {'_id': 1})}

    def _prune(self) -> None:
        if time.monotonic() - self._pruned_at < _PRUNE_EVERY:
            return
        self._pruned_at = time.monotonic()
        self.ledger.delete_many({'at': {'$lt': time.time() - _LEDGER_HORIZON}})

    # -- queue items ----------------------------------------------------------------

    def insert_items(self, queue: str, payloads: Sequence[bytes], rank: int, visible_at: float) -> None:
        """Store fresh items, ready at ``visible_at`` (0.0 for at once).

        Many at once are parked in the backlog; a few go to ``queue_items``, and now and
        then the pusher spills that queue's excess there into the backlog.
        """
        order = max(time.time(), visible_at)
        documents = [
            {
                '_id': ObjectId(),
                'queue': queue,
                'payload': payload,
                'priority': rank,
                'order': order,
                'visible_at': visible_at,
                'lease': None,
                'claims': 0,
                'nacks': 0,
                'size': len(payload),
            }
            for payload in payloads
        ]
        if len(documents) >= SEGMENT_MIN:
            self.backlog.park(queue, documents)
            return
        if documents:
            self.items.insert_many(documents, ordered=True)
            # one count per SEGMENT_MIN payloads pushed, on average
            counted = random.random() * SEGMENT_MIN < len(documents)
            if counted and self.items.count_documents(waiting(queue)) > HOT_HIGH:
                self.backlog.spill(queue)

    def claim(
        self, queue: str, count: int, token: bytes, lease_seconds: float, owner: str | None = None
    ) -> list[Document]:
        """Lease up to ``count`` claimable items to ``token``; return them in queue order.

        Each round reads candidate ids, first moving the backlog's first segment into
        ``queue_items`` when it ranks before them or they run short, wins what it can
        in the ledger, leases the winners with one update per ``claims`` value, and
        reads them back. Another round runs only when other consumers took some of
        the candidates.
        """
        claimed: list[Document] = []
        contended = 0
        moves = count // SEGMENT_ITEMS + 2  # segments this claim may move into queue_items
        while contended < _CLAIM_ATTEMPTS:
            now = time.time()
            wanted = count - len(claimed)
            candidates = list(
                self.items.find(
                    {'queue': queue, 'visible_at': {'$lte': now}},
                    {'claims': 1, 'nacks': 1, 'size': 1, 'priority': 1, 'order': 1},
                    sort=ORDER,
                    limit=wanted,
                )
            )
            if moves > 0:
                head = self.backlog.head(queue, now)
                if head is not None and (len(candidates) < wanted or rank_of(head) < rank_of(candidates[-1])):
                    moves -= 1
                    if self.backlog.move(head):
                        continue  # its items are candidates now
                    moves = 0  # another consumer is moving it: take what is here
            foreign = [candidate for candidate in candidates if not _has_counters(candidate)]
            if foreign:
                self._adopt(foreign)
                contended += 1
                continue  # they are claimable items now, taken by the next round
            keys = [f'item:{candidate["_id"]}:{candidate["claims"]}' for candidate in candidates]
            won = [candidate for candidate, ok in zip(candidates, self.win(keys), strict=True) if ok]
            claimed.extend(self._lease(won, token, now, lease_seconds, owner))
            if len(won) == len(candidates) or len(claimed) >= count:
                break
            contended += 1
        return claimed

    def _adopt(self, foreign: list[Document]) -> None:
        """Give documents another client put in the queue our counters, so they can be claimed.

        Their payload reaches the worker, which dead-letters what it cannot decode; the
        filter repeats what was read, so a document another consumer adopted (and maybe
        claimed) meanwhile is left alone.
        """
        for document in foreign:
            condition: dict[str, Any] = {'_id': document['_id']}
            for counter in ('claims', 'nacks'):
                condition[counter] = document.get(counter, {'$exists': False})
            self.items.update_one(condition, {'$set': {'claims': 0, 'nacks': 0, 'lease': None}})

    def _lease(
        self, won: list[Document], token: bytes, now: float, lease_seconds: float, owner: str | None
    ) -> list[Document]:
        if not won:
            return []
        ids_by_claims: dict[int, list[ObjectId]] = {}
        for document in won:
            ids_by_claims.setdefault(document['claims'], []).append(document['_id'])
        deadline = time.time() + lease_seconds
        for claims, ids in ids_by_claims.items():
            # The filter repeats the candidate's state: enough on its own on MongoDB.
            self.items.update_many(
                {'_id': {'$in': ids}, 'claims': claims, 'visible_at': {'$lte': now}},
                {'$set': {'lease': token, 'visible_at': deadline, 'owner': owner}, '$inc': {'claims': 1}},
            )
        fields = {'payload': 1, 'claims': 1, 'nacks': 1, 'priority': 1, 'order': 1}
        return read_in_parts(self.items, won, fields, ORDER, {'lease': token})


def read_in_parts(
    collection: Collection[Document],
    heads: Sequence[Document],
    fields: Mapping[str, int],
    sort: list[tuple[str, int]],
    condition: Mapping[str, Any] | None = None,
) -> list[Document]:
    """Read the documents ``heads`` name (by ``_id``, with their ``size``), in parts that fit a reply.

    Each part holds at most ``_READ_BACK_BYTES`` payload bytes; a document of unknown
    size (put there by another client) is read on its own. ``heads`` must be in
    ``sort`` order; documents that no longer match ``condition`` are left out.
    """
    parts: list[list[ObjectId]] = []
    part_bytes = _READ_BACK_BYTES
    for head in heads:
        size = head.get('size')
        size = size if type(size) is int else _READ_BACK_BYTES
        if part_bytes + size > _READ_BACK_BYTES:
            parts.append([])
            part_bytes = 0
        parts[-1].append(head['_id'])
        part_bytes += size
    documents: list[Document] = []
    for ids in parts:
        documents.extend(collection.find({**(condition or {}), '_id': {'$in': ids}}, fields, sort=sort))
    return documents


def _has_counters(document: Document) -> bool:
    """Whether the document carries the counters every item we store has (ints, never bools)."""
    return type(document.get('claims')) is int and type(document.get('nacks')) is int
