"""MongoDB-connector behaviour beyond the shared contract, against a real FerretDB.

Params and their errors, the claim protocol under concurrency, expiry by
timestamps (no TTL index), receipts, and spreading over several deployments.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pymongo
import pytest

from sergeant import Task, config
from sergeant.codec import TaskCodec
from sergeant.connector import Connector, DeadLetter, create_connector
from sergeant.connector.mongo import MongoConnector
from sergeant.encoder import Encoder
from sergeant.errors import ConfigError, ConnectorError
from tests.connector.conftest import Factory
from tests.servers.ferretdb import FerretDBServer, running_ferretdb


def run_threads(count: int, target: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)


# -- params ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('params', 'field'),
    [
        ({}, 'connector.params'),
        ({'url': 'mongodb://h/', 'nodes': [{'host': 'h', 'port': 1}]}, 'connector.params'),
        ({'url': 'mongodb://h/', 'timeout': 3}, 'connector.params'),
        ({'url': 'redis://h/'}, 'connector.params.url'),
        ({'url': 'mongodb:///db'}, 'connector.params.url'),
        ({'url': 'mongodb+srv://cluster.example.com:27017/'}, 'connector.params.url'),
        ({'url': 'mongodb://h:99999/'}, 'connector.params.url'),
        ({'nodes': []}, 'connector.params.nodes'),
        ({'nodes': 'h:27017'}, 'connector.params.nodes'),
        ({'nodes': ['h:27017']}, 'connector.params.nodes[0]'),
        ({'nodes': [{'host': 'h', 'port': 1, 'extra': 1}]}, 'connector.params.nodes[0]'),
        ({'nodes': [{'port': 27017}]}, 'connector.params.nodes[0].host'),
        (
            {'nodes': [{'host': 'a', 'port': 1}, {'host': 'b', 'port': '27017'}]},
            'connector.params.nodes[1].port',
        ),
        ({'nodes': [{'host': 'h', 'port': 0}]}, 'connector.params.nodes[0].port'),
        ({'nodes': [{'host': 'h', 'port': True}]}, 'connector.params.nodes[0].port'),
        ({'nodes': [{'host': 'h', 'port': 1, 'replica_set': 7}]}, 'connector.params.nodes[0].replica_set'),
        ({'url': 'mongodb://h/', 'database': 'a.b'}, 'connector.params.database'),
        ({'url': 'mongodb://h/', 'database': ''}, 'connector.params.database'),
        ({'url': 'mongodb://h/', 'username': 'u'}, 'connector.params.password'),
        ({'url': 'mongodb://h/', 'password': 'p'}, 'connector.params.username'),
        ({'url': 'mongodb://u:p@h/', 'username': 'u', 'password': 'p'}, 'connector.params.username'),
    ],
)
def test_bad_params_name_the_field(params: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as raised:
        create_connector('mongo', params)

    assert raised.value.field == field


def test_params_in_sergeant_027_form_and_as_urls_build_without_connecting() -> None:
    nodes = [{'host': 'localhost', 'port': 27017, 'replica_set': 'rs0'}, {'host': 'other', 'port': 27018}]
    connectors = [
        create_connector('mongo', {'nodes': nodes, 'username': 'u', 'password': 'p'}),
        create_connector('mongo', {'url': 'mongodb+srv://cluster.example.invalid/?retryWrites=true'}),
        create_connector('mongo', {'url': 'mongodb://a:1,b:2/?replicaSet=rs0', 'database': 'jobs'}),
    ]

    for connector in connectors:
        connector.close()


def test_database_comes_from_params_then_url_then_default() -> None:
    def database_of(params: dict[str, Any]) -> str:
        connector = create_connector('mongo', params)
        assert isinstance(connector, MongoConnector)
        name = connector._stores[0].items.database.name
        connector.close()
        return name

    assert database_of({'url': 'mongodb://h/'}) == 'sergeant'
    assert database_of({'url': 'mongodb://h/fromurl'}) == 'fromurl'
    assert database_of({'url': 'mongodb://h/fromurl', 'database': 'explicit'}) == 'explicit'
    assert database_of({'nodes': [{'host': 'h', 'port': 1, 'replica_set': None}]}) == 'sergeant'


def test_unreachable_server_fails_with_connector_error_and_ping_false() -> None:
    # Options in the URL win over the connector's defaults (5 s server selection).
    connector = create_connector('mongo', {'url': 'mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200'})

    assert connector.ping() is False
    with pytest.raises(ConnectorError) as raised:
        connector.push('q', [b'x'])
    assert isinstance(raised.value.__cause__, pymongo.errors.PyMongoError)
    connector.close()


# -- claims under concurrency ------------------------------------------------------------


@pytest.mark.parametrize('lease_seconds', [30.0, None], ids=['leased', 'at-most-once'])
def test_threads_claiming_at_once_never_get_the_same_item(
    make: Factory, name: str, lease_seconds: float | None
) -> None:
    items = [f'item-{i}'.encode() for i in range(400)]
    make().push(name, items)
    consumers = [make() for _ in range(6)]
    delivered: Counter[bytes] = Counter()
    guard = threading.Lock()

    def consume(i: int) -> None:
        consumer = consumers[i]
        while batch := consumer.pop(name, 5, lease_seconds=lease_seconds):
            with guard:
                delivered.update(message.payload for message in batch)
            if lease_seconds is not None:
                assert consumer.ack(name, [message.receipt for message in batch]) == len(batch)

    run_threads(len(consumers), consume)

    assert max(delivered.values()) == 1
    assert set(delivered) == set(items)


def test_threads_sharing_one_connector_split_the_queue(make: Factory, name: str) -> None:
    connector = make()
    connector.push(name, [f'{i}'.encode() for i in range(200)])
    delivered: list[bytes] = []

    def consume(_: int) -> None:
        # leases long enough to outlast a slow run: nothing may be redelivered here
        while batch := connector.pop(name, 3, lease_seconds=600):
            delivered.extend(message.payload for message in batch)

    run_threads(4, consume)

    assert sorted(delivered) == sorted(f'{i}'.encode() for i in range(200))
    assert connector.in_flight(name) == 200


def test_concurrent_requeues_move_each_dead_letter_once(make: Factory, name: str) -> None:
    make().dead_letter(name, [DeadLetter(f'd{i}'.encode(), 'failed') for i in range(60)])
    connectors = [make() for _ in range(4)]
    moved = [0] * len(connectors)

    def requeue(i: int) -> None:
        moved[i] = connectors[i].requeue_dead_letters(name, count=20)

    run_threads(len(connectors), requeue)

    assert sum(moved) == 60
    assert connectors[0].dead_letter_length(name) == 0
    assert connectors[0].length(name) == 60


def test_only_one_concurrent_key_set_creates_the_key(make: Factory, name: str) -> None:
    connectors = [make() for _ in range(5)]
    created = [False] * len(connectors)

    def set_key(i: int) -> None:
        created[i] = connectors[i].key_set(name, f'v{i}'.encode())

    run_threads(len(connectors), set_key)

    assert created.count(True) == 1


# -- receipts, deliveries and documents ----------------------------------------------------


def test_redelivery_counts_and_stale_receipts(make: Factory, name: str) -> None:
    connector = make()
    connector.push(name, [b'job'])
    [first] = connector.pop(name, 1, lease_seconds=0.3)
    time.sleep(0.5)
    [second] = connector.pop(name, 1, lease_seconds=30)

    assert (first.delivery_count, second.delivery_count) == (1, 2)
    assert first.receipt != second.receipt
    assert connector.nack(name, [first.receipt]) == 0
    assert connector.extend_leases(name, [first.receipt], 30) == 0
    assert connector.ack(name + '-other', [second.receipt]) == 0
    assert connector.nack(name, [second.receipt]) == 1
    [third] = connector.pop(name, 1, lease_seconds=30)
    assert third.delivery_count == 2, 'a nack does not count as a delivery'


def test_garbage_receipts_are_rejected(make: Factory, name: str) -> None:
    with pytest.raises(ValueError, match='receipt'):
        make().ack(name, [b'not a receipt'])


def test_document_layout_and_indexes(make: Factory, raw: Any, name: str) -> None:
    connector = make()
    connector.push(name, [b'a'], priority='HIGH')
    connector.push(name, [b'later'], consumable_from=time.time() + 60)
    connector.pop(name, 1, lease_seconds=30)

    leased = raw.queue_items.find_one({'queue': name, 'payload': b'a'})
    delayed = raw.queue_items.find_one({'queue': name, 'payload': b'later'})
    assert leased['priority'] == 1 and leased['claims'] == 1 and leased['nacks'] == 0
    assert isinstance(leased['lease'], bytes) and leased['visible_at'] > time.time() + 25
    assert delayed['lease'] is None and delayed['visible_at'] > time.time() + 55
    for collection in ('queue_items', 'dead_letters', 'claims'):
        for index in raw[collection].index_information().values():
            assert 'expireAfterSeconds' not in index, 'FerretDB has no TTL indexes'


def test_dead_letters_keep_their_queue(make: Factory, raw: Any, name: str) -> None:
    connector = make()
    connector.dead_letter(name, [DeadLetter(b'x', 'boom', 10.0)])

    document = raw.dead_letters.find_one({'queue': name})
    assert (document['payload'], document['reason'], document['failed_at']) == (b'x', 'boom', 10.0)


# -- locks ------------------------------------------------------------------------------------


def test_lock_expires_by_timestamp_and_the_document_stays(make: Factory, raw: Any, name: str) -> None:
    lock = make().lock(name)
    assert lock.acquire(timeout=0, ttl=1)

    time.sleep(1.3)

    assert not lock.is_locked()
    assert lock.get_ttl() is None
    assert raw.locks.find_one({'_id': name}) is not None, 'expiry is a comparison, not a deletion'
    assert lock.set_ttl(30) is False
    assert lock.release() is False


def test_many_contenders_for_an_expired_lock_yield_one_owner(make: Factory, name: str) -> None:
    assert make().lock(name).acquire(timeout=0, ttl=1)
    time.sleep(1.2)
    locks = [make().lock(name) for _ in range(6)]
    won = [False] * len(locks)

    def contend(i: int) -> None:
        won[i] = locks[i].acquire(timeout=0, ttl=30)

    run_threads(len(locks), contend)

    assert won.count(True) == 1
    owner = locks[won.index(True)]
    assert all(lock.release() is False for lock in locks if lock is not owner)
    assert owner.is_locked() and owner.release() is True


def test_ledger_entries_are_pruned_by_age(
    make: Factory, raw: Any, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sergeant.connector import mongo_store

    connector = make()
    connector.push(name, [b'a', b'b'])
    connector.pop(name, 1, lease_seconds=30)
    assert raw.claims.count_documents({}) == 1

    monkeypatch.setattr(mongo_store, '_PRUNE_EVERY', 0.0)
    monkeypatch.setattr(mongo_store, '_LEDGER_HORIZON', 0.0)
    [message] = connector.pop(name, 1, lease_seconds=30)

    assert message.payload == b'b'
    assert raw.claims.count_documents({}) == 1, 'the older entry was pruned, the new one kept'


def abandon(raw: Any, key: str, age: float) -> None:
    """A contender recorded ``key`` in the ledger ``age`` seconds ago, then died before writing.

    Fault injection: no server can stop a process between its two round trips on demand.
    """
    raw.claims.insert_one({'_id': key, 'at': time.time() - age})


def test_an_item_whose_claimer_died_after_winning_the_ledger_is_claimed_once_abandoned(
    make: Factory, raw: Any, name: str
) -> None:
    from sergeant.connector.mongo_store import _ABANDONED_AFTER

    connector = make()
    connector.push(name, [b'a', b'b'])
    first = raw.queue_items.find_one({'queue': name, 'payload': b'a'})
    abandon(raw, f'item:{first["_id"]}:0', age=0)

    [message] = connector.pop(name, 2, lease_seconds=30)
    assert message.payload == b'b', 'a fresh entry: its winner may still be writing'

    key = f'item:{first["_id"]}:0'
    raw.claims.update_one({'_id': key}, {'$set': {'at': time.time() - _ABANDONED_AFTER - 1}})
    abandon(raw, f'item:{first["_id"]}:0+', age=_ABANDONED_AFTER + 1)  # the first taker died too
    [message] = connector.pop(name, 2, lease_seconds=30)
    assert message.payload == b'a'
    assert connector.pop(name, 2, lease_seconds=30) == []


def test_a_lock_whose_taker_died_after_winning_the_ledger_is_taken_once_abandoned(
    make: Factory, raw: Any, name: str
) -> None:
    assert make().lock(name).acquire(timeout=0, ttl=1)
    version = raw.locks.find_one({'_id': name})['version']
    abandon(raw, f'lock:{name}:{bytes(version).hex()}', age=0)
    time.sleep(1.2)
    assert not make().lock(name).acquire(timeout=0, ttl=30), 'a fresh entry: its winner may still be writing'

    raw.claims.update_one({'_id': f'lock:{name}:{bytes(version).hex()}'}, {'$set': {'at': 0.0}})  # abandoned
    lock = make().lock(name)
    assert lock.acquire(timeout=0, ttl=30)
    assert lock.is_locked() and lock.release() is True


# -- several deployments (Sergeant 0.27 "nodes") ----------------------------------------------


@pytest.fixture(scope='module')
def second_ferretdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FerretDBServer]:
    with running_ferretdb(tmp_path_factory.mktemp('ferretdb-second')) as server:
        yield server


@pytest.fixture
def two_nodes(
    ferretdb_server: FerretDBServer, second_ferretdb: FerretDBServer, database: str
) -> Iterator[Callable[[], Connector]]:
    nodes = [
        {'host': s.host, 'port': s.port, 'replica_set': None} for s in (ferretdb_server, second_ferretdb)
    ]
    built: list[Connector] = []

    def build() -> Connector:
        built.append(create_connector('mongo', {'nodes': nodes, 'database': database}))
        return built[-1]

    yield build
    for connector in built:
        connector.close()


def test_items_are_spread_over_nodes_and_all_come_back(
    two_nodes: Callable[[], Connector], raw: Any, name: str
) -> None:
    producer, consumer = two_nodes(), two_nodes()
    for i in range(6):
        producer.push(name, [f'p{i}'.encode()])

    assert raw.queue_items.count_documents({'queue': name}) == 3, (
        'round robin puts half the pushes on each node'
    )
    assert consumer.length(name) == 6

    messages = consumer.pop(name, 10, lease_seconds=30)
    assert sorted(m.payload for m in messages) == [f'p{i}'.encode() for i in range(6)]
    assert consumer.in_flight(name) == 6
    assert producer.ack(name, [m.receipt for m in messages]) == 6
    assert consumer.length(name, include_delayed=True) == 0


def test_keys_locks_and_dead_letters_work_across_nodes(two_nodes: Callable[[], Connector], name: str) -> None:
    first, second = two_nodes(), two_nodes()

    for i in range(8):
        assert first.key_set(f'{name}-{i}', b'v') is True
        assert second.key_get(f'{name}-{i}') == b'v'
    assert first.lock(name).acquire(timeout=0) is True
    assert second.lock(name).acquire(timeout=0) is False
    first.dead_letter(name, [DeadLetter(b'x', 'failed')])
    [letter] = second.dead_letters(name)
    assert (letter.payload, letter.reason, letter.id) == (b'x', 'failed', first.dead_letters(name)[0].id)
    assert second.requeue_dead_letters(name) == 1
    assert [m.payload for m in first.pop(name, 5, lease_seconds=None)] == [b'x']


def test_bulk_push_and_pop_on_two_nodes(two_nodes: Callable[[], Connector], name: str) -> None:
    connector = two_nodes()
    connector.push(name, [f'{i}'.encode() for i in range(300)])
    connector.push(name, [f'{i}'.encode() for i in range(300, 600)])

    got = [m.payload for m in connector.pop(name, 1000, lease_seconds=None)]

    assert sorted(got) == sorted(f'{i}'.encode() for i in range(600))


@pytest.mark.parametrize(
    'foreign',
    [
        {'payload': 'junk'},
        {'payload': b'junk', 'claims': 'many'},
        {'claims': True, 'nacks': None},
        {'payload': 7, 'claims': 0},
    ],
)
def test_a_foreign_document_in_a_queue_never_wedges_it(
    make: Factory, raw: Any, foreign: dict[str, Any]
) -> None:
    connector = make()
    codec = TaskCodec(connector, Encoder(config.Encoder()))
    raw['queue_items'].insert_one({'queue': 'q', 'visible_at': 0.0, 'priority': 1, 'order': 0.0, **foreign})
    codec.push_tasks('q', [Task(kwargs={'n': n}) for n in range(5)])

    popped = codec.pop_tasks('q', 10, lease_seconds=30)

    assert [task.kwargs['n'] for task in popped.tasks] == list(range(5))
    [letter] = popped.dead_lettered
    assert 'undecodable' in letter.reason
    assert connector.dead_letter_length('q') == 1
    assert connector.length('q') == 0 and connector.in_flight('q') == 5
