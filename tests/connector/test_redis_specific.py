"""Redis-connector behaviour beyond the shared contract, against real redis-server processes.

Params and URL parsing with errors naming the field, unix sockets and credentials,
round trips per operation, spreading over two nodes with receipts routed back to
their node, batches larger than Lua's unpack limit, and a server restart.
"""

from __future__ import annotations

import pathlib
import re
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from sergeant import Task, config
from sergeant.codec import TaskCodec
from sergeant.connector import DeadLetter, FramedPayloads, create_connector
from sergeant.connector.redis import RedisConnector
from sergeant.connector.redis_params import parse_params
from sergeant.connector.redis_receipts import GROUP_ID_SIZE, RUN_TAG
from sergeant.encoder import Encoder
from sergeant.errors import ConfigError, ConnectorError
from tests.servers.redis import RedisServer, running_redis

BIG = 9000  # above the ~8000 values Lua's unpack() accepts
LUA_DIR = pathlib.Path(__file__).resolve().parents[2] / 'sergeant' / 'connector' / 'lua'

Factory = Callable[..., RedisConnector]


@pytest.fixture(scope='module')
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisServer, RedisServer]]:
    with (
        running_redis(tmp_path_factory.mktemp('redis-one')) as first,
        running_redis(tmp_path_factory.mktemp('redis-two')) as second,
    ):
        yield first, second


@pytest.fixture
def make() -> Iterator[Factory]:
    built: list[RedisConnector] = []

    def build(params: dict[str, Any]) -> RedisConnector:
        connector = create_connector('redis', params)
        assert isinstance(connector, RedisConnector)
        built.append(connector)
        return connector

    yield build
    for connector in built:
        connector.close()


@pytest.fixture
def one(servers: tuple[RedisServer, RedisServer], make: Factory) -> RedisConnector:
    return make({'url': servers[0].url})


@pytest.fixture
def two(servers: tuple[RedisServer, RedisServer], make: Factory) -> RedisConnector:
    return make({'nodes': [{'host': s.host, 'port': s.port} for s in servers]})


@pytest.fixture
def raw(servers: tuple[RedisServer, RedisServer]) -> Iterator[list[redis.Redis]]:
    """Plain clients of both servers, to look at what the connector stored."""
    clients = [redis.Redis.from_url(server.url) for server in servers]
    yield clients
    for client in clients:
        client.close()


@pytest.fixture
def name() -> str:
    return f'q-{uuid.uuid4().hex[:12]}'


def ready_key(queue: str) -> str:
    return f'sergeant:queue:{queue}:ready'


def leased_key(queue: str) -> str:
    return f'sergeant:queue:{queue}:leased'


# -- params ------------------------------------------------------------------------------


def connection_kwargs(params: dict[str, Any]) -> list[dict[str, Any]]:
    connector = create_connector('redis', params)
    assert isinstance(connector, RedisConnector)
    try:
        return [dict(node.client.connection_pool.connection_kwargs) for node in connector._nodes]
    finally:
        connector.close()


def test_sergeant_027_nodes_are_accepted() -> None:
    nodes = [
        {'host': 'alpha', 'port': 6379, 'password': None, 'database': 0},
        {'host': 'beta', 'port': 6380, 'password': 'secret', 'database': 2},
    ]

    first, second = connection_kwargs({'nodes': nodes})

    assert (first['host'], first['port'], first['db'], first.get('password')) == ('alpha', 6379, 0, None)
    assert (second['host'], second['port'], second['db'], second['password']) == ('beta', 6380, 2, 'secret')
    assert first['socket_keepalive'] is True and first['health_check_interval'] > 0


def test_urls_carry_host_port_database_and_credentials() -> None:
    [kwargs] = connection_kwargs({'url': 'redis://worker:s%40cret@cache.example:6390/4'})

    assert (kwargs['host'], kwargs['port'], kwargs['db']) == ('cache.example', 6390, 4)
    assert (kwargs['username'], kwargs['password']) == ('worker', 's@cret')


def test_credentials_may_be_node_keys_next_to_a_url() -> None:
    [kwargs] = connection_kwargs({'nodes': [{'url': 'redis://h:1/0', 'username': 'u', 'password': 'p'}]})

    assert (kwargs['username'], kwargs['password']) == ('u', 'p')


def test_tls_and_unix_socket_urls_pick_their_connection_class() -> None:
    connector = create_connector('redis', {'urls': ['rediss://h:6380/0', 'unix:///run/redis.sock?db=3']})
    assert isinstance(connector, RedisConnector)
    tls, unix = (node.client.connection_pool for node in connector._nodes)
    connector.close()

    assert tls.connection_class is redis.SSLConnection
    assert unix.connection_class is redis.UnixDomainSocketConnection
    assert (unix.connection_kwargs['path'], unix.connection_kwargs['db']) == ('/run/redis.sock', 3)
    assert 'socket_keepalive' not in unix.connection_kwargs


@pytest.mark.parametrize(
    ('params', 'field'),
    [
        ({}, 'connector.params'),
        ({'url': 'redis://h', 'nodes': [{'host': 'h'}]}, 'connector.params'),
        ({'url': 'redis://h', 'pool_size': 3}, 'connector.params'),
        ({'nodes': []}, 'connector.params.nodes'),
        ({'nodes': 'localhost'}, 'connector.params.nodes'),
        ({'nodes': [{'host': 'h'}] * 257}, 'connector.params.nodes'),
        (
            {'nodes': [{'host': 'a', 'port': 1}, {'host': 'b', 'port': '6379'}]},
            'connector.params.nodes[1].port',
        ),
        ({'nodes': [{'host': 'a', 'port': 70000}]}, 'connector.params.nodes[0].port'),
        ({'nodes': [{'host': ''}]}, 'connector.params.nodes[0].host'),
        ({'nodes': ['redis://h']}, 'connector.params.nodes[0]'),
        ({'nodes': [{'host': 'h', 'databse': 1}]}, 'connector.params.nodes[0]'),
        ({'nodes': [{'host': 'h', 'database': -1}]}, 'connector.params.nodes[0].database'),
        ({'nodes': [{'host': 'h', 'password': 5}]}, 'connector.params.nodes[0].password'),
        ({'nodes': [{'url': 'redis://h', 'port': 1}]}, 'connector.params.nodes[0]'),
        ({'nodes': [{'url': 'redis://u:p@h', 'password': 'q'}]}, 'connector.params.nodes[0].url'),
        ({'url': 'http://h'}, 'connector.params.url'),
        ({'url': 6379}, 'connector.params.url'),
        ({'url': 'redis://:6379/0'}, 'connector.params.url'),
        ({'url': 'redis://h:99999/0'}, 'connector.params.url'),
        ({'url': 'redis://h/zero'}, 'connector.params.url'),
        ({'url': 'redis://h?db=x'}, 'connector.params.url'),
        ({'url': 'unix://'}, 'connector.params.url'),
        ({'url': 'redis://h?socket_timeout=soon'}, 'connector.params.url'),
        ({'url': 'redis://h?no_such_option=1'}, 'connector.params.url'),
        ({'urls': ['redis://h', 5]}, 'connector.params.urls[1]'),
    ],
)
def test_bad_params_name_the_field(params: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as raised:
        create_connector('redis', params)

    assert raised.value.field == field


def test_errors_never_echo_a_password() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_params({'url': 'http://user:hunter2@h:1/0'})

    assert 'hunter2' not in str(raised.value)
    assert 'user:***@h:1' in str(raised.value)


# -- connections ------------------------------------------------------------------------------


def test_unix_socket_connection(servers: tuple[RedisServer, RedisServer], make: Factory, name: str) -> None:
    connector = make({'url': servers[0].unix_url})

    connector.push(name, [b'over the socket'])

    assert connector.ping() is True
    assert [m.payload for m in connector.pop(name, 1, lease_seconds=None)] == [b'over the socket']


def test_username_and_password(
    servers: tuple[RedisServer, RedisServer], make: Factory, raw: list[redis.Redis], name: str
) -> None:
    user = f'u{uuid.uuid4().hex[:8]}'
    raw[0].acl_setuser(user, enabled=True, passwords=['+s3cret'], keys=['*'], commands=['+@all'])
    server = servers[0]
    try:
        by_keys = make(
            {'nodes': [{'host': server.host, 'port': server.port, 'username': user, 'password': 's3cret'}]}
        )
        by_url = make({'url': f'redis://{user}:s3cret@{server.host}:{server.port}/0'})
        wrong = make({'url': f'redis://{user}:wrong@{server.host}:{server.port}/0'})

        by_keys.push(name, [b'x'])

        assert by_url.length(name) == 1
        assert wrong.ping() is False
        with pytest.raises(ConnectorError) as raised:
            wrong.length(name)
        assert isinstance(raised.value.__cause__, redis.RedisError)
    finally:
        raw[0].acl_deluser(user)


def test_items_keys_and_locks_are_prefixed(one: RedisConnector, raw: list[redis.Redis], name: str) -> None:
    one.push(name, [b'a'])
    one.push(name, [b'b'], consumable_from=time.time() + 60)
    one.pop(name, 1, lease_seconds=30)
    one.dead_letter(name, [DeadLetter(b'c', 'failed')])
    one.key_set(name, b'v')
    lock = one.lock(name)
    lock.acquire(timeout=0)

    stored = {key.decode() for key in raw[0].scan_iter(match=f'*{name}*')}
    groups = {key for key in stored if key.startswith(f'sergeant:queue:{name}:leased:')}

    assert len(groups) == 1, 'the one pop leased one group'
    assert stored - groups == {
        f'sergeant:queue:{name}:delayed',
        f'sergeant:queue:{name}:leased',
        f'sergeant:queue:{name}:dead',
        f'sergeant:queue:{name}:wake',  # the pushes' wake tokens: the pop took an item, so it kept them
        f'sergeant:key:{name}',
        f'sergeant:lock:{name}',
    }
    lock.release()


def command_calls(client: redis.Redis) -> dict[str, int]:
    stats = client.info('commandstats')
    return {command.removeprefix('cmdstat_'): int(stat['calls']) for command, stat in stats.items()}


def test_push_and_pop_cost_one_command_each(one: RedisConnector, raw: list[redis.Redis], name: str) -> None:
    one.push(name, [b'warm-up'])
    one.pop(name, 1, lease_seconds=30)  # loads the script and opens the connection
    raw[0].config_resetstat()

    one.push(name, [b'single'])
    one.push(name, [b'bulk-1', b'bulk-2', b'bulk-3'])
    one.push(name, [b'urgent'], priority='HIGH')
    [message] = one.pop(name, 1, lease_seconds=30)
    one.pop(name, 3, lease_seconds=30, ack=[message.receipt])

    # Commands run inside scripts are counted too (time, lpop, zadd...): each push
    # runs push.lua, which also leaves wake tokens while the wake list has room (one LLEN,
    # one LPUSH), and each pop leases its items with one RPUSH of a lease group (the ack reads
    # its group's length: one more LLEN).
    calls = command_calls(raw[0])
    sent = {
        command: calls.get(command, 0)
        for command in ('rpush', 'lpush', 'llen', 'evalsha', 'eval', 'script|load')
    }
    assert sent == {
        'rpush': 2 + 2,
        'lpush': 1 + 3,
        'llen': 3 + 1,
        'evalsha': 3 + 2,
        'eval': 0,
        'script|load': 0,
    }
    assert 'multi' not in calls


# -- waking idle consumers -------------------------------------------------------------------------


def test_pushes_leave_few_wake_tokens_and_an_empty_pop_clears_them(
    one: RedisConnector, raw: list[redis.Redis], name: str
) -> None:
    wake = f'sergeant:queue:{name}:wake'
    one.push(name, [b'%d' % i for i in range(100)])
    one.push(name, [b'later'], consumable_from=time.time() + 60)
    one.nack(name, [m.receipt for m in one.pop(name, 3, lease_seconds=30)])

    assert raw[0].llen(wake) == 16, 'one token per item, at most 16'

    one.pop(name, 200, lease_seconds=30)
    assert one.pop(name, 1, lease_seconds=30) == []
    assert raw[0].exists(wake) == 0


def test_requeued_dead_letters_leave_wake_tokens_as_pushes_do(
    one: RedisConnector, raw: list[redis.Redis], name: str
) -> None:
    # given an idle queue (an empty pop cleared its tokens) with dead letters
    wake = f'sergeant:queue:{name}:wake'
    one.dead_letter(name, [DeadLetter(b'%d' % i, 'boom') for i in range(5)])
    assert one.pop(name, 1, lease_seconds=30) == []
    assert raw[0].exists(wake) == 0

    # when some are requeued, then by id, then idle consumers get one token per letter moved
    assert one.requeue_dead_letters(name, 2) == 2
    assert raw[0].llen(wake) == 2
    assert one.requeue_dead_letters_by_id(name, [one.dead_letters(name, 1)[0].id]) == 1
    assert raw[0].llen(wake) == 3


def test_an_idle_wait_ends_at_a_push_or_a_stop(
    servers: tuple[RedisServer, RedisServer], one: RedisConnector, make: Factory, name: str
) -> None:
    # given an idle consumer: its pop came back empty
    producer = make({'url': servers[0].url})
    assert one.pop(name, 1, lease_seconds=30) == []
    timer = threading.Timer(0.2, lambda: producer.push(name, [b'x']))
    timer.start()

    # when another client pushes while it waits, then the wait ends at the push
    started = time.monotonic()
    one.wait_for_work(name, 10.0, lambda: False)
    assert 0.15 < time.monotonic() - started < 1.0, 'woken by the push, not by the poll interval'
    timer.join()

    # and when it is asked to stop while it waits, then the wait ends at once
    assert [m.payload for m in one.pop(name, 1, lease_seconds=30)] == [b'x']
    assert one.pop(name, 1, lease_seconds=30) == []
    stop_at = time.monotonic() + 0.2
    started = time.monotonic()
    one.wait_for_work(name, 10.0, lambda: time.monotonic() > stop_at)
    assert time.monotonic() - started < 0.5, 'a stop ends the wait'
    assert one.ping()


def test_deleting_a_queue_deletes_its_wake_tokens(
    one: RedisConnector, raw: list[redis.Redis], name: str
) -> None:
    # given a queue with items and wake tokens nobody took
    one.push(name, [b'a', b'b'])
    assert raw[0].llen(f'sergeant:queue:{name}:wake') == 2

    # when it is deleted, then its tokens go too
    assert one.delete(name)
    assert raw[0].exists(f'sergeant:queue:{name}:wake') == 0


def test_a_consumer_that_took_a_token_but_stops_gives_it_back(
    one: RedisConnector, raw: list[redis.Redis], name: str
) -> None:
    # given an idle consumer, and a push that leaves one token
    assert one.pop(name, 1, lease_seconds=30) == []
    one.push(name, [b'x'])

    # when it takes the token while it is told to stop
    one.wait_for_work(name, 10.0, lambda: True)

    # then the token is back for another consumer
    assert raw[0].llen(f'sergeant:queue:{name}:wake') == 1


def test_an_idle_consumer_wakes_when_a_delayed_item_falls_due(one: RedisConnector, name: str) -> None:
    # given a delayed item due in a second, and a consumer whose pop came back empty
    due = time.time() + 1.0
    one.push(name, [b'later'], consumable_from=due)
    assert one.pop(name, 1, lease_seconds=30) == []

    # when it waits for work (no push comes)
    one.wait_for_work(name, 10.0, lambda: False)

    # then it wakes at the due time, not at its 5 s idle pop, and the pop brings the item
    assert due - 0.05 < time.time() < due + 1.0
    assert [m.payload for m in one.pop(name, 1, lease_seconds=30)] == [b'later']


def test_a_busy_consumer_relays_a_due_time_it_knew_to_another_idle_one(
    servers: tuple[RedisServer, RedisServer], make: Factory, name: str
) -> None:
    # given two idle consumers and a producer
    first, second = (make({'url': servers[0].url}) for _ in range(2))
    producer = make({'url': servers[0].url})
    assert first.pop(name, 1, lease_seconds=30) == [] and second.pop(name, 1, lease_seconds=30) == []
    second_woke = threading.Event()

    def second_waits() -> None:
        second.wait_for_work(name, 10.0, lambda: False)
        second_woke.set()

    # when a delayed item due in 3 s wakes the first one, which learns the due time,
    due = time.time() + 3.0
    producer.push(name, [b'later'], consumable_from=due)
    first.wait_for_work(name, 10.0, lambda: False)
    assert first.pop(name, 1, lease_seconds=30) == []
    waiter = threading.Thread(target=second_waits)
    waiter.start()
    time.sleep(0.2)
    # and the first one then takes a ready item (it will be busy when the delayed one falls due)
    producer.push(name, [b'now'])
    assert [m.payload for m in first.pop(name, 1, lease_seconds=30)] == [b'now']

    # then the second one is woken to learn the due time, and later pops the delayed item
    assert second_woke.wait(2.0), 'the second consumer slept on (polling would wake it after 5 s)'
    waiter.join()
    assert second.pop(name, 1, lease_seconds=30) == []
    second.wait_for_work(name, 10.0, lambda: False)
    assert time.time() < due + 1.0
    assert [m.payload for m in second.pop(name, 1, lease_seconds=30)] == [b'later']


def test_an_idle_consumer_costs_few_commands(one: RedisConnector, raw: list[redis.Redis], name: str) -> None:
    # given an idle consumer, popping and waiting as the stream does
    assert one.pop(name, 1, lease_seconds=30) == []
    raw[0].config_resetstat()
    started = time.monotonic()

    # when it stays idle for a few seconds
    while time.monotonic() - started < 6.0:
        one.wait_for_work(name, 0.02, lambda: time.monotonic() - started > 6.0)
        assert one.pop(name, 1, lease_seconds=30) == []

    # then Redis ran few commands for it, those its scripts ran included (a polling worker: 5/s)
    calls = command_calls(raw[0])
    spent = sum(count for command, count in calls.items() if command not in ('info', 'config|resetstat'))
    assert spent <= 3 * 6.0, calls


def test_with_several_nodes_an_idle_consumer_polls(two: RedisConnector, name: str) -> None:
    # given a consumer of two nodes whose pop came back empty
    assert two.pop(name, 1, lease_seconds=30) == []

    # when it waits for work, then it sleeps the poll interval (a push may go to either node)
    started = time.monotonic()
    two.wait_for_work(name, 0.2, lambda: False)
    assert 0.15 < time.monotonic() - started < 1.0
    two.push(name, [b'x'])
    assert [m.payload for m in two.pop(name, 1, lease_seconds=30)] == [b'x']


# -- two nodes -----------------------------------------------------------------------------------


def test_pushes_go_to_both_nodes_and_pops_drain_both(
    two: RedisConnector, raw: list[redis.Redis], name: str
) -> None:
    for i in range(10):
        two.push(name, [f'p{i}'.encode()])

    assert [client.llen(ready_key(name)) for client in raw] == [5, 5]
    popped = two.pop(name, 10, lease_seconds=30)
    assert sorted(m.payload for m in popped) == sorted(f'p{i}'.encode() for i in range(10))
    assert [client.llen(ready_key(name)) for client in raw] == [0, 0]
    assert [client.zcard(leased_key(name)) for client in raw] == [1, 1], 'one lease group per node'
    assert two.in_flight(name) == 10
    assert {m.receipt[0] for m in popped} == {0, 1}


def test_receipts_route_settlements_to_their_node(
    two: RedisConnector, raw: list[redis.Redis], name: str
) -> None:
    two.push(name, [b'a'])
    two.push(name, [b'b'])
    two.push(name, [b'c'])
    two.push(name, [b'd'])
    messages = two.pop(name, 4, lease_seconds=30)
    node_of = {m.payload: m.receipt[0] for m in messages}
    by_payload = {m.payload: m for m in messages}

    assert two.extend_leases(name, [m.receipt for m in messages], 60) == 4
    assert two.nack(name, [by_payload[b'a'].receipt]) == 1
    assert raw[node_of[b'a']].llen(ready_key(name)) == 1
    assert two.ack(name, [by_payload[b'b'].receipt, by_payload[b'c'].receipt]) == 2
    two.dead_letter(name, [DeadLetter(b'd', 'failed')], [by_payload[b'd'].receipt])

    assert [client.zcard(leased_key(name)) for client in raw] == [0, 0]
    assert two.in_flight(name) == 0
    assert two.length(name) == 1
    assert [letter.payload for letter in two.dead_letters(name)] == [b'd']


def test_pop_acks_on_every_node_in_one_call(two: RedisConnector, raw: list[redis.Redis], name: str) -> None:
    two.push(name, [b'a'])
    two.push(name, [b'b'])
    messages = two.pop(name, 2, lease_seconds=30)

    assert two.pop(name, 5, lease_seconds=30, ack=[m.receipt for m in messages]) == []

    assert [client.zcard(leased_key(name)) for client in raw] == [0, 0]


def test_keys_locks_and_dead_letters_live_on_the_node_picked_by_crc32(
    two: RedisConnector, raw: list[redis.Redis]
) -> None:
    names = [f'k-{uuid.uuid4().hex[:8]}' for _ in range(6)] + ['k-a', 'k-d']  # crc32 % 2: 0 and 1
    for key in names:
        two.key_set(key, b'v')
        two.dead_letter(key, [DeadLetter(b'x', 'failed')])
        two.lock(key).acquire(timeout=0, ttl=5)

    for key in names:
        home = zlib.crc32(key.encode()) % 2
        for suffix in (f'key:{key}', f'queue:{key}:dead', f'lock:{key}'):
            assert [bool(client.exists(f'sergeant:{suffix}')) for client in raw] == [home == 0, home == 1]
        assert two.key_get(key) == b'v'
        assert two.dead_letter_length(key) == 1
        two.key_delete(key)
        two.purge_dead_letters(key)
        raw[home].delete(f'sergeant:lock:{key}')


def test_unknown_receipts_settle_nothing(one: RedisConnector, name: str) -> None:
    one.push(name, [b'a'])
    [message] = one.pop(name, 1, lease_seconds=30)

    assert one.ack(name, [b'\x07' + message.receipt[1:], b'', b'\x00garbage']) == 0
    assert one.ack(name, [b'', b'\x07']) == 0
    assert one.nack(name, [b'\x07' + message.receipt[1:]]) == 0
    assert one.extend_leases(name, [b''], 30) == 0
    assert one.in_flight(name) == 1


def test_a_group_acknowledged_piecemeal_settles_each_item_once(one: RedisConnector, name: str) -> None:
    # a group larger than the scripts' chunk, so its bitmap of done positions spans several
    items = [f'item-{i}'.encode() for i in range(BIG)]
    one.push(name, items)
    receipts = [m.receipt for m in one.pop(name, BIG, lease_seconds=0.3)]
    odd, even = receipts[1::2], receipts[0::2]

    assert one.ack(name, odd[::-1] + odd[:10]) == len(odd)  # any order; a repeat counts once
    assert one.ack(name, odd[:100]) == 0
    assert one.in_flight(name) == len(even)
    time.sleep(0.5)
    again = one.pop(name, BIG, lease_seconds=30)  # the lease ran out: what was not acknowledged
    assert sorted(m.payload for m in again) == sorted(items[0::2])
    halves = [m.receipt for m in again]
    assert one.pop(name, 0, lease_seconds=30, ack=halves[: len(halves) // 2]) == []
    assert one.ack(name, halves) == len(halves) - len(halves) // 2
    assert one.in_flight(name) == 0
    assert one.length(name) == 0


def test_runs_and_single_receipts_settle_each_item_once(
    one: RedisConnector, raw: list[redis.Redis], name: str
) -> None:
    one.push(name, [f'item-{i}'.encode() for i in range(100)])
    receipts = [m.receipt for m in one.pop(name, 100, lease_seconds=30)]
    # a run of 0..39, then 20..29 again one by one (known group, out of order), then a run of 60..99
    mixed = receipts[:40] + receipts[29:19:-1] + receipts[60:]

    assert one.extend_leases(name, mixed, 60) == 80
    assert one.ack(name, mixed) == 80
    assert one.ack(name, receipts[:40]) == 0
    assert one.in_flight(name) == 20
    assert one.extend_leases(name, receipts, 60) == 20
    assert one.pop(name, 0, lease_seconds=30, ack=receipts[40:60]) == []
    assert one.in_flight(name) == 0
    assert not raw[0].keys(f'*{name}*:leased:*')  # the group went once all its items were done


def test_a_run_beyond_its_group_settles_only_the_group(one: RedisConnector, name: str) -> None:
    one.push(name, [b'a', b'b', b'c'])
    [receipt, *_] = [m.receipt for m in one.pop(name, 3, lease_seconds=30)]
    group = receipt[:GROUP_ID_SIZE]
    keys = one._keys(name)

    run = RUN_TAG + group + struct.pack('>II', 1, 1000)
    assert one._nodes[0]._ack((keys.leased,), [run]) == 2
    assert one.in_flight(name) == 1


# -- ordering details --------------------------------------------------------------------------------


def test_a_high_priority_batch_keeps_its_order_ahead_of_normal_items(one: RedisConnector, name: str) -> None:
    one.push(name, [b'n1', b'n2'])
    one.push(name, [b'h1', b'h2', b'h3'], priority='HIGH')
    one.push(name, [b'late-high'], priority='HIGH', consumable_from=time.time() + 0.3)

    time.sleep(0.4)
    popped = [m.payload for m in one.pop(name, 10, lease_seconds=None)]

    assert popped == [b'late-high', b'h1', b'h2', b'h3', b'n1', b'n2']


def test_reclaimed_leases_go_back_to_the_head(one: RedisConnector, name: str) -> None:
    one.push(name, [b'first', b'second'])
    [first] = one.pop(name, 1, lease_seconds=0.1)
    one.push(name, [b'third'])

    time.sleep(0.3)
    popped = one.pop(name, 3, lease_seconds=30)

    assert [(m.payload, m.delivery_count) for m in popped] == [(b'first', 2), (b'second', 1), (b'third', 1)]
    assert one.extend_leases(name, [first.receipt, popped[0].receipt], 30) == 1
    assert one.nack(name, [first.receipt]) == 0
    assert one.ack(name, [first.receipt]) == 0


@pytest.mark.parametrize('foreign', [b'', b'junk', b'x' * 19])
def test_a_foreign_item_shorter_than_our_header_never_wedges_the_queue(
    one: RedisConnector, raw: list[redis.Redis], name: str, foreign: bytes
) -> None:
    raw[0].rpush(ready_key(name), foreign)
    codec = TaskCodec(one, Encoder(config.Encoder()))
    codec.push_tasks(name, [Task(kwargs={'n': n}) for n in range(65)])

    [popped_foreign] = one.pop(name, 1, lease_seconds=0.1)  # leased, then its lease runs out
    time.sleep(0.3)
    first = codec.pop_tasks(name, 100, lease_seconds=30)

    assert (popped_foreign.payload, popped_foreign.delivery_count) == (foreign, 1)
    assert [task.kwargs['n'] for task in first.tasks] == list(range(65))
    [letter] = first.dead_lettered
    assert letter.payload == foreign and 'undecodable' in letter.reason
    assert one.dead_letter_length(name) == 1
    assert one.length(name) == 0


# -- batches beyond Lua's unpack limit ------------------------------------------------------------------


def test_large_batches_pass_through_every_script(one: RedisConnector, name: str) -> None:
    items = [f'item-{i}'.encode() for i in range(BIG)]

    assert one.push(name, items) == BIG
    leased = one.pop(name, BIG, lease_seconds=0.2)
    assert [m.payload for m in leased] == items
    time.sleep(0.4)
    again = one.pop(name, BIG, lease_seconds=30)
    assert [m.delivery_count for m in again] == [2] * BIG
    assert sorted(m.payload for m in again) == sorted(items)  # reclaimed in lease-deadline order
    receipts = [m.receipt for m in again]
    assert one.extend_leases(name, receipts, 60) == BIG
    assert one.nack(name, receipts) == BIG
    third = one.pop(name, BIG, lease_seconds=30)
    assert [m.payload for m in third] == [m.payload for m in again]

    assert one.pop(name, 1, lease_seconds=30, ack=[m.receipt for m in third]) == []
    assert one.in_flight(name) == 0


def test_large_delayed_and_dead_letter_batches(one: RedisConnector, name: str) -> None:
    items = [f'item-{i}'.encode() for i in range(BIG)]
    one.push(name, items, priority='HIGH', consumable_from=time.time() + 0.3)
    time.sleep(0.4)
    leased = one.pop(name, BIG, lease_seconds=30)
    assert sorted(m.payload for m in leased) == sorted(items)

    one.dead_letter(name, [DeadLetter(m.payload, 'failed') for m in leased], [m.receipt for m in leased])

    assert one.in_flight(name) == 0
    assert one.dead_letter_length(name) == BIG
    assert one.requeue_dead_letters(name) == BIG
    assert one.length(name) == BIG
    assert one.ack(name, [m.receipt for m in one.pop(name, BIG, lease_seconds=30)]) == BIG


def test_bulk_push_of_many_items_is_chunked(one: RedisConnector, name: str) -> None:
    items = [b'x%d' % i for i in range(25_000)]

    one.push(name, items)

    assert one.length(name) == 25_000
    assert [m.payload for m in one.pop(name, 3, lease_seconds=None)] == items[:3]


# -- scripts and server restarts ------------------------------------------------------------------------


@pytest.mark.parametrize('script', sorted(LUA_DIR.glob('*.lua')), ids=lambda path: path.name)
def test_every_lua_script_documents_its_keys_and_arguments(script: pathlib.Path) -> None:
    lines = script.read_text().splitlines()
    header = '\n'.join(line for line in lines if line.startswith('--'))
    code = '\n'.join(line for line in lines if not line.startswith('--'))

    assert lines[0].startswith(f'-- {script.name}:')
    assert 'Returns' in header
    for used in set(re.findall(r'(?:KEYS|ARGV)\[\d+\]', code)):
        assert used in header, f'{script.name} uses {used} without documenting it'


def test_connector_recovers_after_a_server_restart(
    tmp_path_factory: pytest.TempPathFactory, make: Factory, name: str
) -> None:
    with running_redis(tmp_path_factory.mktemp('redis-restart')) as server:
        connector = make({'url': server.url})
        connector.push(name, [b'before'])

        server.stop()
        assert connector.ping() is False
        with pytest.raises(ConnectorError) as raised:
            connector.push(name, [b'while down'])
        assert isinstance(raised.value.__cause__, redis.ConnectionError)

        server.start()
        assert connector.ping() is True
        connector.push(name, [b'after'])
        assert [m.payload for m in connector.pop(name, 5, lease_seconds=None)] == [b'after']


def test_a_pop_sent_ahead_leases_before_its_answer_is_read(
    one: RedisConnector, raw: list[redis.Redis], name: str
) -> None:
    one.push(name, [b'a', b'b'])

    pending = one.begin_pop(name, 1, lease_seconds=30)
    deadline = time.monotonic() + 5
    while one.in_flight(name) == 0 and time.monotonic() < deadline:
        time.sleep(0.01)

    assert one.in_flight(name) == 1, 'Redis ran the pop before anyone read its answer'
    second = one.begin_pop(name, 1, lease_seconds=30)  # the channel is busy: popped at once
    assert second.result().payloads == [b'b']
    assert pending.result().payloads == [b'a']


def test_a_pop_sent_ahead_survives_a_script_flush(
    one: RedisConnector, raw: list[redis.Redis], name: str
) -> None:
    one.push(name, [b'a'])
    raw[0].script_flush()

    assert one.begin_pop(name, 1, lease_seconds=30).result().payloads == [b'a']
    assert one.in_flight(name) == 1


def test_a_pop_sent_ahead_reports_a_lost_server_as_connector_error(
    tmp_path_factory: pytest.TempPathFactory, make: Factory, name: str
) -> None:
    with running_redis(tmp_path_factory.mktemp('redis-ahead')) as server:
        connector = make({'url': server.url})
        connector.push(name, [b'a'])
        assert connector.begin_pop(name, 1, lease_seconds=30).result().payloads == [b'a']

        server.stop()
        with pytest.raises(ConnectorError):
            connector.begin_pop(name, 1, lease_seconds=30).result()

        server.start()
        connector.push(name, [b'b'])
        assert connector.begin_pop(name, 1, lease_seconds=30).result().payloads == [b'b']


def test_payloads_read_in_place_behave_as_a_list_of_them() -> None:
    items = [b'h' * 4 + b'first', b'h' * 4 + b'second', b'h' * 4]
    payloads = FramedPayloads(items, 4)

    assert list(payloads) == [b'first', b'second', b''] and len(payloads) == 3
    assert payloads[1] == b'second' and payloads[-1] == b'' and payloads[:2] == [b'first', b'second']
    assert payloads == [b'first', b'second', b''] and payloads == (b'first', b'second', b'')
    assert payloads != [b'first', b'second'] and payloads != [b'first', b'other', b'']
    assert payloads != 'first' and payloads != [1, 2, 3]
