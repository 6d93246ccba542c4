"""The MongoDB connector's backlog (segments) and dead-letter drain, on FerretDB.

What the contract suite cannot see: where deep queues keep their items, that the
claim order holds across ``queue_items`` and segments, that single pushes spill, that
an interrupted move or drain loses nothing. Speed is measured in
``benchmark/mongo_depth.py``, never asserted here.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
from bson import ObjectId

from sergeant.connector import DeadLetter, mongo_backlog, mongo_store
from sergeant.connector.mongo import MongoConnector
from sergeant.connector.mongo_backlog import HOT_HIGH, HOT_LOW, SEGMENT_ITEMS, SEGMENT_MIN
from sergeant.connector.mongo_dead import DRAIN_PREFIX
from tests.connector.conftest import Factory


@pytest.fixture
def connector(make: Factory) -> MongoConnector:
    return make()


def drain_all(connector: MongoConnector, queue: str, batch: int = 37) -> list[bytes]:
    payloads: list[bytes] = []
    while messages := connector.pop(queue, batch, lease_seconds=30):
        payloads += [message.payload for message in messages]
        connector.ack(queue, [message.receipt for message in messages])
    return payloads


def test_a_bulk_push_is_parked_in_segments_and_comes_back_in_order(
    connector: MongoConnector, raw: Any, name: str
) -> None:
    # given a bulk push bigger than a segment, then a few HIGH items pushed one by one
    count = SEGMENT_ITEMS * 2 + 10
    connector.push(name, [b'%d' % i for i in range(count)])
    connector.push(name, [b'high'], priority='HIGH')

    # then the bulk push sits in segments, and every count sees it
    assert raw.queue_segments.count_documents({'queue': name}) == 3
    assert raw.queue_items.count_documents({'queue': name}) == 1
    assert connector.length(name) == count + 1
    assert name in connector.queues()

    # when it is consumed, HIGH comes first and then the push in its order
    assert drain_all(connector, name) == [b'high'] + [b'%d' % i for i in range(count)]
    assert raw.queue_segments.count_documents({'queue': name}) == 0
    assert not [c for c in raw.list_collection_names() if c.startswith('queue_segment_')]


def test_a_parked_high_push_overtakes_normal_items(connector: MongoConnector, name: str) -> None:
    connector.push(name, [b'normal'] * 3)
    connector.push(name, [b'high'] * SEGMENT_MIN, priority='HIGH')

    assert drain_all(connector, name, batch=5) == [b'high'] * SEGMENT_MIN + [b'normal'] * 3


def test_a_delayed_segment_waits_and_counts_as_delayed(connector: MongoConnector, name: str) -> None:
    connector.push(name, [b'later'] * SEGMENT_MIN, consumable_from=time.time() + 2)

    assert connector.pop(name, 10, lease_seconds=30) == []
    assert connector.length(name) == 0
    assert connector.length(name, include_delayed=True) == SEGMENT_MIN
    time.sleep(2.2)
    assert drain_all(connector, name) == [b'later'] * SEGMENT_MIN


def test_single_pushes_spill_into_segments_and_keep_their_order(
    connector: MongoConnector, raw: Any, name: str
) -> None:
    # given many more single pushes than queue_items keeps for one queue
    count = HOT_HIGH + SEGMENT_MIN * 4
    for i in range(count):
        connector.push(name, [b'%d' % i])

    # then the excess was spilled (the check runs by chance, one push in SEGMENT_MIN on average:
    # the last SEGMENT_MIN * 4 pushes all skipping it has a chance of about 3 in 10,000)
    assert raw.queue_items.count_documents({'queue': name}) < count
    assert raw.queue_segments.count_documents({'queue': name}) >= 1
    assert connector.length(name) == count
    assert drain_all(connector, name) == [b'%d' % i for i in range(count)]


def test_delayed_single_pushes_spill_into_delayed_segments_and_come_due_in_order(
    connector: MongoConnector, raw: Any, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a small hot limit, and the pusher counting after every push: the spills are certain
    monkeypatch.setattr(mongo_store, 'HOT_HIGH', 40)
    monkeypatch.setattr(mongo_backlog, 'HOT_LOW', 20)
    monkeypatch.setattr(mongo_store, 'random', SimpleNamespace(random=lambda: 0.0))
    due = time.time() + 2

    # given delayed single pushes, due in push order, among more ready ones than the hot limit
    for i in range(60):
        connector.push(name, [b'late%d' % i], consumable_from=due + i / 1000)
        connector.push(name, [b'%d' % i])

    # then queue_items kept no more than the hot limit: the delayed items were parked too,
    # in segments that are not claimable yet
    assert raw.queue_items.count_documents({'queue': name}) <= 40
    assert raw.queue_segments.count_documents({'queue': name, 'visible_at': {'$gt': time.time()}}) >= 1
    assert connector.length(name) == 60
    assert connector.length(name, include_delayed=True) == 120

    # when consumed, the ready items come in push order and the delayed ones wait (pops of 5:
    # a claim moves a few segments at most, and these small limits make small segments)
    assert drain_all(connector, name, batch=5) == [b'%d' % i for i in range(60)]
    time.sleep(max(0.0, due + 0.2 - time.time()))
    assert drain_all(connector, name, batch=5) == [b'late%d' % i for i in range(60)]
    assert raw.queue_segments.count_documents({'queue': name}) == 0


def test_leases_nacks_and_dead_letters_work_on_moved_items(connector: MongoConnector, name: str) -> None:
    connector.push(name, [b'%d' % i for i in range(SEGMENT_MIN)])
    first = connector.pop(name, 2, lease_seconds=0.5)
    assert [m.payload for m in first] == [b'0', b'1']
    assert connector.in_flight(name) == 2
    connector.nack(name, [first[0].receipt])
    time.sleep(0.6)  # the second lease expires

    again = connector.pop(name, 2, lease_seconds=30)
    assert [(m.payload, m.delivery_count) for m in again] == [(b'0', 1), (b'1', 2)]
    connector.dead_letter(name, [DeadLetter(again[1].payload, 'boom')], [m.receipt for m in again])
    assert connector.length(name) == SEGMENT_MIN - 2
    assert connector.delete(name)
    assert connector.length(name, include_delayed=True) == 0


def test_a_move_that_died_after_inserting_is_finished_without_duplicates(
    connector: MongoConnector, raw: Any, name: str
) -> None:
    # given a segment whose mover inserted its items, then died before unregistering it
    connector.push(name, [b'%d' % i for i in range(SEGMENT_MIN)])
    segment = raw.queue_segments.find_one({'queue': name})
    raw.queue_items.insert_many(list(raw[segment['_id']].find()))
    raw.claims.insert_one({'_id': f'segment:{segment["_id"]}', 'at': time.time() - 11})

    # then the next claim takes the move over, and every item comes once
    assert drain_all(connector, name) == [b'%d' % i for i in range(SEGMENT_MIN)]
    assert raw.queue_segments.count_documents({}) == 0


def test_requeue_all_drains_and_keeps_other_queues_letters(
    connector: MongoConnector, raw: Any, name: str
) -> None:
    connector.dead_letter(name, [DeadLetter(b'%d' % i, 'boom') for i in range(120)])
    connector.dead_letter('other', [DeadLetter(b'keep', 'boom')])

    assert connector.requeue_dead_letters(name) == 120
    assert connector.dead_letter_length(name) == 0
    assert [letter.payload for letter in connector.dead_letters('other')] == [b'keep']
    assert sorted(drain_all(connector, name)) == sorted(b'%d' % i for i in range(120))
    assert not [c for c in raw.list_collection_names() if c.startswith(DRAIN_PREFIX)]
    assert connector.requeue_dead_letters(name) == 0  # nothing to drain: fine


def test_an_abandoned_drain_still_counts_and_is_drained_once_old(
    connector: MongoConnector, raw: Any, name: str
) -> None:
    # given a drained collection left behind by a requeue that died long ago
    connector.dead_letter(name, [DeadLetter(b'a', 'boom'), DeadLetter(b'b', 'boom')])
    old = ObjectId.from_datetime(ObjectId().generation_time.replace(year=2020))
    raw.dead_letters.rename(f'{DRAIN_PREFIX}{old}')

    # then its letters still show, and the next requeue --all moves them
    assert connector.dead_letter_length(name) == 2
    assert [letter.payload for letter in connector.dead_letters(name)] == [b'a', b'b']
    assert connector.requeue_dead_letters(name) == 2
    assert connector.dead_letter_length(name) == 0
    assert sorted(drain_all(connector, name)) == [b'a', b'b']


def test_hot_low_is_below_hot_high() -> None:
    assert SEGMENT_MIN <= HOT_LOW < HOT_HIGH
