"""Dead letters of MongoDB queues kept in small part collections.

Used by :mod:`sergeant.connector.mongo_dead`. FerretDB 1.x reads a whole
collection for every filter, sort, count and delete (see
:mod:`sergeant.connector.mongo_backlog`), so a requeue or purge done a batch at a
time from one big ``dead_letters`` collection costs time in proportion to its size
on every batch: 100,000 dead letters moved at about 86 a second. Instead:

* ``dead_letters`` (the *hot* collection) takes a few letters at a time, as
  workers dead-letter them; now and then (a chance proportional to the letters
  written) the writer counts that queue's letters there, and above ``HOT_HIGH``
  the oldest are *spilled* into parts until ``HOT_LOW`` remain;
* a write of at least ``PART_MIN`` letters goes to parts straight away.

A part is a collection ``dead_letter_part_<ObjectId>`` of at most ``PART_ITEMS``
letters of one queue (and at most ``_PART_BYTES`` payload bytes, so it is read back
in one reply), registered in ``dead_letter_parts`` as ``_id`` (the collection's
name), ``queue``, ``first_at`` (no letter of it failed earlier) and ``count``.
Letters keep their ``_id`` when they move, so the id an operator saw still names
the letter. A batch reads one or a few parts, and a part emptied by a requeue or
purge is dropped, not deleted from.

Crash safety: a part is written, then registered (a crash in between leaves an
unreachable collection: the dead-lettering writer has not acknowledged the
deliveries yet, so they come back; a spill deletes from ``dead_letters`` only
after registering, so a crash then leaves a letter in two places, which the claim
ledger lets a requeue move once).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from bson import ObjectId
from pymongo.collection import Collection
from pymongo.database import Database

from .mongo_params import Document
from .mongo_store import DEAD_ORDER, read_in_parts

PART_MIN = 50  # writes of fewer letters go to the hot collection
PART_ITEMS = 1000  # the CLI's default batch: one part per batch
HOT_HIGH = 1000  # letters of one queue in the hot collection above which a writer spills
HOT_LOW = 200  # what a spill leaves there
PREFIX = 'dead_letter_part_'
_PART_BYTES = 16 * 2**20
_LETTER_FIELDS = {'queue': 1, 'payload': 1, 'reason': 1, 'failed_at': 1, 'at': 1, 'size': 1}


class DeadParts:
    """The part collections of every queue's dead letters on one database."""

    def __init__(
        self,
        database: Database[Document],
        hot: Collection[Document],
        win: Callable[[Sequence[str]], list[bool]],
    ) -> None:
        self._database = database
        self._hot = hot
        self._win = win
        self.registry: Collection[Document] = database['dead_letter_parts']

    def create_indexes(self) -> None:
        self.registry.create_index([('queue', 1), ('first_at', 1)], name='part_order')

    def collection(self, part: Document) -> Collection[Document]:
        return self._database[part['_id']]

    # -- writing ----------------------------------------------------------------------

    def add(self, queue: str, documents: Sequence[Document]) -> None:
        """Store fresh letter documents of ``queue``: in parts when many, else in the hot collection."""
        if len(documents) >= PART_MIN:
            self.park(queue, documents)
            return
        self._hot.insert_many(documents, ordered=True)
        # one count per PART_MIN letters written, on average
        if (
            random.random() * PART_MIN < len(documents)
            and self._hot.count_documents({'queue': queue}) > HOT_HIGH
        ):
            self.spill(queue)

    def park(self, queue: str, documents: Sequence[Document]) -> None:
        """Store letter documents (with their ``_id``, oldest first) in new parts of ``queue``."""
        for chunk in _chunks(documents):
            name = f'{PREFIX}{ObjectId()}'
            self._database[name].insert_many(chunk, ordered=True)
            first_at = min(float(document.get('at', 0.0)) for document in chunk)
            self.registry.insert_one({'_id': name, 'queue': queue, 'first_at': first_at, 'count': len(chunk)})

    def spill(self, queue: str) -> int:
        """Move the oldest letters of ``queue`` in the hot collection beyond ``HOT_LOW`` into parts."""
        heads = list(self._hot.find({'queue': queue}, {'size': 1, 'at': 1}, sort=DEAD_ORDER))
        oldest = heads[: max(0, len(heads) - HOT_LOW)]
        # two writers spilling at once would park the same letters twice: one wins the oldest
        if not oldest or not self._win([f'dead-spill:{oldest[0]["_id"]}'])[0]:
            return 0
        documents = read_in_parts(self._hot, oldest, _LETTER_FIELDS, DEAD_ORDER)
        self.park(queue, documents)
        self._hot.delete_many({'_id': {'$in': [document['_id'] for document in documents]}})
        return len(documents)

    def remove(self, part: Document, ids: Sequence[ObjectId]) -> None:
        """Delete letters from a part; drop the part when none are left."""
        if len(ids) >= part['count']:
            self.drop(part)
            return
        self.collection(part).delete_many({'_id': {'$in': list(ids)}})
        self.registry.update_one({'_id': part['_id']}, {'$inc': {'count': -len(ids)}})
        part['count'] -= len(ids)

    def drop(self, part: Document) -> None:
        self.registry.delete_one({'_id': part['_id']})
        self._database.drop_collection(part['_id'])

    # -- reading ----------------------------------------------------------------------

    def parts(self, queue: str) -> list[Document]:
        """The registered parts of ``queue``, oldest first."""
        return sorted(self.registry.find({'queue': queue}), key=lambda part: (part['first_at'], part['_id']))

    def count(self, queue: str) -> int:
        return sum(int(part['count']) for part in self.registry.find({'queue': queue}, {'count': 1}))

    def queues(self) -> set[str]:
        return {name for name in self.registry.distinct('queue') if isinstance(name, str)}


def _chunks(documents: Sequence[Document]) -> list[list[Document]]:
    """Documents in parts of at most ``PART_ITEMS`` letters and ``_PART_BYTES`` payload bytes each."""
    chunks: list[list[Document]] = []
    chunk_bytes = _PART_BYTES
    for document in documents:
        size = document.get('size')
        size = size if type(size) is int else _PART_BYTES
        if not chunks or len(chunks[-1]) >= PART_ITEMS or chunk_bytes + size > _PART_BYTES:
            chunks.append([])
            chunk_bytes = 0
        chunks[-1].append(document)
        chunk_bytes += size
    return chunks
