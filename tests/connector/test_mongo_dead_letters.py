"""Dead letters of the MongoDB connector in part collections, on FerretDB.

What the contract suite cannot see: that bulk dead-lettering goes to parts and a
stream of single letters spills there, that the oldest-first order holds across the
hot collection and the parts, and that requeues and purges empty parts by dropping
them. Speed is measured in ``benchmark/cli_requeue.py``, never asserted here.
"""

from __future__ import annotations

from typing import Any

import pytest

from sergeant.connector import DeadLetter, mongo_dead_parts
from sergeant.connector.mongo import MongoConnector
from sergeant.connector.mongo_dead_parts import PART_ITEMS, PART_MIN, PREFIX
from tests.connector.conftest import Factory


@pytest.fixture
def connector(make: Factory) -> MongoConnector:
    return make()


def letters(start: int, stop: int) -> list[DeadLetter]:
    return [DeadLetter(b'%d' % i, f'reason {i}') for i in range(start, stop)]


def parts(raw: Any) -> list[str]:
    return sorted(name for name in raw.list_collection_names() if name.startswith(PREFIX))


def queue_payloads(raw: Any, queue: str) -> list[bytes]:
    """The ready items of a queue in push order, wherever the connector keeps them."""
    found = list(raw.queue_items.find({'queue': queue}, {'payload': 1, 'order': 1}))
    for segment in raw.queue_segments.find({'queue': queue}):
        found += raw[segment['_id']].find({}, {'payload': 1, 'order': 1})
    return [bytes(doc['payload']) for doc in sorted(found, key=lambda doc: (doc['order'], doc['_id']))]


def test_bulk_dead_letters_go_to_parts_and_read_oldest_first(
    connector: MongoConnector, raw: Any, name: str
) -> None:
    # given a few single letters, then a bulk bigger than two parts, then one more
    connector.dead_letter(name, letters(0, 3))
    connector.dead_letter(name, letters(3, 3 + 2 * PART_ITEMS + 5))
    connector.dead_letter(name, letters(3 + 2 * PART_ITEMS + 5, 3 + 2 * PART_ITEMS + 6))
    total = 3 + 2 * PART_ITEMS + 6

    # then the bulk sits in three parts and the single letters in dead_letters
    assert len(parts(raw)) == 3
    assert raw.dead_letters.count_documents({'queue': name}) == 4
    assert connector.dead_letter_length(name) == total
    # and reading, finding by id and requeueing keep the oldest-first order across them
    oldest = connector.dead_letters(name, 5)
    assert [letter.payload for letter in oldest] == [b'0', b'1', b'2', b'3', b'4']
    assert [letter.reason for letter in oldest] == [f'reason {i}' for i in range(5)]
    newest = connector.dead_letters(name, total)[-2:]
    assert [letter.payload for letter in newest] == [b'%d' % (total - 2), b'%d' % (total - 1)]
    found = connector.find_dead_letters(name, [newest[0].id, oldest[4].id, oldest[0].id])
    assert found == [oldest[0], oldest[4], newest[0]]
    assert connector.requeue_dead_letters(name, 4) == 4
    assert queue_payloads(raw, name) == [b'0', b'1', b'2', b'3']


def test_requeueing_a_part_in_batches_empties_then_drops_it(
    connector: MongoConnector, raw: Any, name: str
) -> None:
    connector.dead_letter(name, letters(0, PART_ITEMS))
    [part] = parts(raw)

    assert connector.requeue_dead_letters(name, 300) == 300
    assert raw[part].count_documents({}) == PART_ITEMS - 300
    assert raw.dead_letter_parts.find_one({'_id': part})['count'] == PART_ITEMS - 300
    assert connector.dead_letter_length(name) == PART_ITEMS - 300
    assert connector.requeue_dead_letters(name, PART_ITEMS) == PART_ITEMS - 300

    assert parts(raw) == []
    assert raw.dead_letter_parts.count_documents({}) == 0
    assert queue_payloads(raw, name) == [b'%d' % i for i in range(PART_ITEMS)]


def test_requeue_by_id_and_purge_reach_letters_in_parts(
    connector: MongoConnector, raw: Any, name: str
) -> None:
    connector.dead_letter(name, letters(0, PART_MIN * 3))
    every = connector.dead_letters(name, PART_MIN * 3)
    chosen = [every[7].id, every[PART_MIN * 2].id]

    assert connector.requeue_dead_letters_by_id(name, chosen, {every[7].id: b'reset'}) == 2
    assert queue_payloads(raw, name) == [b'reset', b'%d' % (PART_MIN * 2)]
    assert connector.purge_dead_letters(name, 10) == 10
    assert connector.dead_letters(name, 1)[0].payload == b'11'  # 0-10 less 7, requeued
    assert connector.purge_dead_letters(name) == PART_MIN * 3 - 12
    assert (connector.dead_letter_length(name), parts(raw)) == (0, [])


def test_single_letters_spill_into_parts_beyond_the_hot_limit(
    connector: MongoConnector, raw: Any, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a small hot limit, and a writer that counts after every write
    monkeypatch.setattr(mongo_dead_parts, 'HOT_HIGH', 20)
    monkeypatch.setattr(mongo_dead_parts, 'HOT_LOW', 5)
    monkeypatch.setattr(mongo_dead_parts.random, 'random', lambda: 0.0)
    connector.dead_letter('other', letters(0, 10))  # below the limit: they stay where they are

    # when 30 letters are dead-lettered a few at a time
    for start in range(0, 30, 3):
        connector.dead_letter(name, letters(start, start + 3))

    # then at most the hot limit stays in dead_letters, the oldest moved to parts, and the order holds
    assert 5 <= raw.dead_letters.count_documents({'queue': name}) <= 20
    assert parts(raw)
    assert raw.dead_letters.count_documents({'queue': 'other'}) == 10
    assert connector.dead_letter_length(name) == 30
    assert [letter.payload for letter in connector.dead_letters(name, 30)] == [b'%d' % i for i in range(30)]
    assert connector.requeue_dead_letters(name) == 30
    assert connector.dead_letter_length(name) == 0
    assert queue_payloads(raw, name) == [b'%d' % i for i in range(30)]
    assert connector.dead_letter_length('other') == 10


def test_queues_lists_a_queue_whose_letters_are_all_in_parts(connector: MongoConnector, name: str) -> None:
    connector.dead_letter(name, letters(0, PART_MIN))
    assert name in connector.queues()
