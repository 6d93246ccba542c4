"""Poison payloads of every shape among good tasks, on every broker.

A worker that signs and checks its payloads (msgpack, HMAC-SHA256) consumes good
tasks in batches of 10, with poison items between them: correctly signed bytes
that are no msgpack, a map instead of a task, tasks whose fields have the wrong
types, a 12 MB payload (undecodable), a task signed with another key, an unsigned one, an
empty one, and a 4-byte item written behind the connector's back (Redis RPUSH,
SQLite INSERT, Mongo insert) that is shorter than any header. Each poison item
ends in the dead-letter queue exactly once with a reason naming its problem;
every good task runs exactly once; the worker never stops.
"""

from __future__ import annotations

import dataclasses
import hmac
import os
import signal
import sqlite3
import time
from typing import Any

import pymongo
import redis

from sergeant import Task, config
from sergeant.codec import TaskCodec
from sergeant.connector import create_connector
from sergeant.connector.redis_node import queue_keys
from sergeant.encoder import Encoder
from sergeant.errors import ConnectorError
from tests.reliability.conftest import Record, dead_letters, queue_is_empty, record_tally, since, tally
from tests.supervisor.conftest import QUEUE, Supervise, wait_until

KEY = 'the-signing-key-of-the-fault-suite'
GOOD = 300
CHUNK = 30  # good tasks after each poison item
HUGE = 12 * 2**20  # below the 16 MiB a MongoDB document holds; five of them fill more than a reply
TOO_HUGE = 20 * 2**20  # above it
NOT_MSGPACK = b'\xc1'  # a byte msgpack never uses
SIGNATURE = 'payload signature does not match the signing key'


@dataclasses.dataclass(frozen=True)
class Poison:
    name: str
    payload: bytes
    reason: str  # a part of the dead letter's reason naming the problem
    raw: bool = False  # written behind the connector's back


def signed(data: bytes) -> bytes:
    """``data`` with a valid signature: it passes the signature check and reaches the serializer."""
    return hmac.digest(KEY.encode(), data, 'sha256') + data


def poisons() -> list[Poison]:
    ours = Encoder(config.Encoder(serializer='msgpack', signing_key=KEY))
    theirs = Encoder(config.Encoder(serializer='msgpack', signing_key='somebody-else-s-signing-key'))
    unsigned = Encoder(config.Encoder(serializer='msgpack'))
    task = [{'id': -1}, None, 1.0, 0]
    # the huge one first: FerretDB reads every document of the collection at each pop, so while
    # it waits in the queue every pop costs seconds
    return [
        Poison('huge', signed(NOT_MSGPACK + os.urandom(HUGE)), 'cannot decode payload'),
        Poison('undecodable', signed(NOT_MSGPACK + b' not msgpack'), 'cannot decode payload'),
        Poison('not a task', ours.encode({'id': -1}), 'payload is not a Sergeant task'),
        Poison('short task', ours.encode([{'id': -1}, None]), 'payload is not a Sergeant task'),
        Poison('string run_count', ours.encode([{'id': -1}, None, 1.0, '1']), 'task field run_count'),
        Poison('negative run_count', ours.encode([{'id': -1}, None, 1.0, -1]), 'task field run_count'),
        Poison('list kwargs', ours.encode([['id', -1], None, 1.0, 0]), 'task field kwargs'),
        Poison('string date', ours.encode([{'id': -1}, None, 'yesterday', 0]), 'task field date'),
        Poison('integer trace_id', ours.encode([{'id': -1}, 7, 1.0, 0]), 'task field trace_id'),
        Poison('wrong signature', theirs.encode(task), SIGNATURE),
        Poison('unsigned', unsigned.encode(task), SIGNATURE),
        Poison('empty', b'', SIGNATURE),
        Poison('foreign short item', b'junk', SIGNATURE, raw=True),
    ]


def push_behind_the_connector(settings: dict[str, Any], payload: bytes) -> None:
    """Store ``payload`` as another client of the broker would, without Sergeant's headers or fields."""
    params = settings['params']
    if settings['type'] == 'redis':
        client = redis.Redis.from_url(params['url'])
        client.rpush(queue_keys(QUEUE).ready, payload)
        client.close()
    elif settings['type'] == 'local':
        with sqlite3.connect(params['file_path']) as db:
            db.execute(
                'INSERT INTO items (queue, payload, priority, ready_at) VALUES (?, ?, 0, 0)', (QUEUE, payload)
            )
        db.close()
    else:
        mongo: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(params['url'])
        mongo[params['database']]['queue_items'].insert_one(
            {'queue': QUEUE, 'payload': payload, 'priority': 0, 'order': 0.0, 'visible_at': 0.0}
        )
        mongo.close()


def test_every_poison_item_is_dead_lettered_once_with_its_reason_and_every_good_task_runs(
    supervise: Supervise, broker_settings: dict[str, Any], record_property: Record
) -> None:
    # given 300 good signed tasks with a poison item of each shape before every 30 of them
    connector = create_connector(broker_settings['type'], broker_settings['params'])
    producer = TaskCodec(connector, Encoder(config.Encoder(serializer='msgpack', signing_key=KEY)))
    bad = poisons()
    for chunk, poison in enumerate(bad):
        if poison.raw:
            push_behind_the_connector(broker_settings, poison.payload)
        else:
            connector.push(QUEUE, [poison.payload])
        first = chunk * CHUNK
        producer.push_tasks(QUEUE, [Task(kwargs={'id': i}) for i in range(first, min(first + CHUNK, GOOD))])
    producer.push_tasks(QUEUE, [Task(kwargs={'id': i}) for i in range(len(bad) * CHUNK, GOOD)])
    record_property('tasks', GOOD)
    record_property('poison', len(bad))

    # when one worker consumes them in batches of 10
    started = time.monotonic()
    run = supervise(
        'supervised_poison',
        'PoisonWorker',
        settings=broker_settings,
        env={'TEST_SIGNING_KEY': KEY, 'TEST_TASKS_PER_TRANSACTION': '10'},
    )

    # then every good task runs exactly once
    wait_until(lambda: len(run.processed_ids()) >= GOOD, 120, 'every good task processed', interval=0.2)
    record_property('wall_s', since(started))
    wait_until(lambda: queue_is_empty(producer), 60, 'no task left ready or in flight')
    counts = tally(run.processed_ids(), range(GOOD))
    record_tally(record_property, counts, 0)
    assert counts.lost == [] and counts.strangers == [] and counts.duplicates == 0, counts
    # and the dead letters are exactly the poison items, each with a reason naming its problem
    letters = dead_letters(producer)
    record_property('dead_letters', len(letters))
    assert sorted(letter.payload for letter in letters) == sorted(poison.payload for poison in bad)
    reasons = {letter.payload: letter.reason for letter in letters}
    wrong = {
        poison.name: reasons[poison.payload] for poison in bad if poison.reason not in reasons[poison.payload]
    }
    assert wrong == {}, 'reasons not naming the problem'
    assert all(letter.task is None for letter in letters), 'no poison item decodes to a task'
    # and the worker went on past each of them: one process, never replaced, each dead letter logged
    log = run.log()
    assert log.count('started in slot') == 1 and 'ended after' not in log, log[-3000:]
    assert log.count('payload dead-lettered') == len(bad)
    run.send(signal.SIGTERM)
    assert run.wait(60) == 0
    connector.close()


HUGE_TASKS = 5  # 60 MB together: more than one reply of the MongoDB wire protocol may carry (48 MB)


def test_huge_tasks_are_processed_or_refused_at_push(
    supervise: Supervise, broker_settings: dict[str, Any], record_property: Record
) -> None:
    # given three tasks of 20 MB each, five of 12 MB, then 20 small ones
    connector = create_connector(broker_settings['type'], broker_settings['params'])
    producer = TaskCodec(connector, Encoder(config.Encoder(serializer='msgpack', signing_key=KEY)))
    too_huge = [Task(kwargs={'id': GOOD + n, 'blob': bytes(TOO_HUGE)}) for n in range(3)]
    try:
        producer.push_tasks(QUEUE, too_huge)
    except ConnectorError as refusal:
        record_property('refused', len(too_huge))
        # refused at push, where the producer learns of it, and nothing of them was stored: MongoDB
        # documents hold 16 MiB at most
        assert broker_settings['type'] == 'mongo', refusal
        assert 'larger than' in str(refusal) and 'nothing was pushed' in str(refusal)
        assert connector.length(QUEUE, include_delayed=True) == 0
        too_huge = []
    else:
        record_property('refused', 0)
        assert broker_settings['type'] != 'mongo', 'a document above 16 MiB is stored on MongoDB'
    huge = [Task(kwargs={'id': 2 * GOOD + n, 'blob': bytes(HUGE)}) for n in range(HUGE_TASKS)]
    producer.push_tasks(QUEUE, huge)
    producer.push_tasks(QUEUE, [Task(kwargs={'id': i}) for i in range(20)])
    expected = [*range(20), *(task.kwargs['id'] for task in [*too_huge, *huge])]
    record_property('tasks', len(expected))

    # when one worker consumes them in batches of 10
    started = time.monotonic()
    run = supervise(
        'supervised_poison',
        'PoisonWorker',
        settings=broker_settings,
        env={'TEST_SIGNING_KEY': KEY, 'TEST_TASKS_PER_TRANSACTION': '10'},
    )

    # then every task that was stored runs exactly once, and nothing is dead-lettered
    wait_until(lambda: len(run.processed_ids()) >= len(expected), 45, 'every task processed', interval=0.2)
    record_property('wall_s', since(started))
    wait_until(lambda: queue_is_empty(producer), 60, 'no task left ready or in flight')
    counts = tally(run.processed_ids(), expected)
    record_tally(record_property, counts, 0)
    assert counts.lost == [] and counts.strangers == [] and counts.duplicates == 0, counts
    letters = dead_letters(producer)
    record_property('dead_letters', len(letters))
    assert letters == []
    run.send(signal.SIGTERM)
    assert run.wait(60) == 0
    connector.close()
