"""The Redis connector on a real Redis Cluster (3 masters, 3 replicas), beyond the contract suite.

The contract suite runs on the same cluster (the ``redis-cluster`` backend); here:
the cluster params and their errors, the hash-tagged key layout (every key of a
queue, lease groups included, in the queue's slot), queues spread over every master
and all found again by ``queues()`` and ``sergeant queues``, a push waking an idle
consumer blocked on the master of its queue, and big batches in one script call.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from redis.cluster import key_slot

from sergeant.connector import DeadLetter, create_connector
from sergeant.connector.redis import RedisConnector
from sergeant.connector.redis_node import cluster_queue_keys
from sergeant.connector.redis_params import ClusterParams, parse_params
from sergeant.errors import ConfigError, ConnectorError
from tests.cli.conftest import run_sergeant
from tests.servers.ports import free_port
from tests.servers.redis_cluster import RedisClusterServers, wait_for

Factory = Callable[..., RedisConnector]


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
def cluster_connector(redis_cluster: RedisClusterServers, make: Factory) -> RedisConnector:
    return make({'cluster': {'nodes': redis_cluster.startup_nodes}})


@pytest.fixture
def masters(redis_cluster: RedisClusterServers) -> Iterator[dict[int, redis.Redis]]:
    """A plain client of each master, by port, to look at what the connector stored."""
    clients = {server.port: redis_cluster.client(server) for server in redis_cluster.masters()}
    yield clients
    for client in clients.values():
        client.close()


def keys_on(masters: dict[int, redis.Redis], pattern: str) -> dict[int, list[bytes]]:
    return {port: list(client.scan_iter(match=pattern, count=1000)) for port, client in masters.items()}


def names_on_every_master(cluster: RedisClusterServers, per_master: int = 2) -> list[str]:
    """Queue names whose slots are served by each master in turn, ``per_master`` per master."""
    wanted = {server.port: per_master for server in cluster.masters()}
    names = []
    while any(wanted.values()):
        name = f'q-{uuid.uuid4().hex[:12]}'
        port = cluster.master_of_slot(key_slot(cluster_queue_keys(name).ready.encode())).port
        if wanted.get(port, 0) > 0:
            wanted[port] -= 1
            names.append(name)
    return names


# -- params ------------------------------------------------------------------------------------


def test_cluster_params_by_nodes_and_by_url() -> None:
    by_nodes = parse_params({'cluster': {'nodes': [{'host': 'a', 'port': 7000}, {'host': 'b'}], 'tls': True}})
    by_url = parse_params({'cluster': {'url': 'rediss://a:7000', 'username': 'u', 'password': 'p'}})

    assert by_nodes == ClusterParams('connector.params.cluster', nodes=(('a', 7000), ('b', 6379)), tls=True)
    assert by_url == ClusterParams(
        'connector.params.cluster', url='rediss://a:7000', username='u', password='p'
    )


def test_a_cluster_url_names_a_cluster_where_one_url_names_the_broker() -> None:
    assert parse_params({'url': 'redis+cluster://u:p@a:7000'}) == ClusterParams(
        'connector.params.url', url='redis://u:p@a:7000'
    )
    assert parse_params({'url': 'rediss+cluster://a:7000'}) == ClusterParams(
        'connector.params.url', url='rediss://a:7000'
    )


@pytest.mark.parametrize(
    ('params', 'field'),
    [
        ({'cluster': {'nodes': [{'host': 'h'}]}, 'url': 'redis://h'}, 'connector.params'),
        ({'cluster': 'redis://h:7000'}, 'connector.params.cluster'),
        ({'cluster': {}}, 'connector.params.cluster'),
        ({'cluster': {'nodes': [{'host': 'h'}], 'url': 'redis://h'}}, 'connector.params.cluster'),
        ({'cluster': {'nodes': [{'host': 'h'}], 'database': 1}}, 'connector.params.cluster'),
        ({'cluster': {'nodes': []}}, 'connector.params.cluster.nodes'),
        ({'cluster': {'nodes': [{'host': 'h', 'port': 0}]}}, 'connector.params.cluster.nodes[0].port'),
        ({'cluster': {'nodes': [{'host': 'h', 'database': 0}]}}, 'connector.params.cluster.nodes[0]'),
        ({'cluster': {'nodes': [{'host': 'h'}], 'tls': 'yes'}}, 'connector.params.cluster.tls'),
        ({'cluster': {'nodes': [{'host': 'h'}], 'password': 5}}, 'connector.params.cluster.password'),
        ({'cluster': {'url': 'redis://h', 'tls': True}}, 'connector.params.cluster.tls'),
        ({'cluster': {'url': 'unix:///run/redis.sock'}}, 'connector.params.cluster.url'),
        ({'cluster': {'url': 'redis://h:7000/2'}}, 'connector.params.cluster.url'),
        ({'cluster': {'url': 'http://h:7000'}}, 'connector.params.cluster.url'),
        ({'url': 'redis+cluster://h:7000/3'}, 'connector.params.url'),
    ],
)
def test_bad_cluster_params_name_the_field(params: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as raised:
        create_connector('redis', params)

    assert raised.value.field == field


def test_an_unreachable_cluster_is_a_connector_error() -> None:
    with pytest.raises(ConnectorError, match='unreachable'):
        create_connector('redis', {'cluster': {'nodes': [{'host': '127.0.0.1', 'port': free_port()}]}})


# -- key layout ----------------------------------------------------------------------------------


def test_every_key_of_a_queue_shares_its_hash_tag_and_slot(
    cluster_connector: RedisConnector, masters: dict[int, redis.Redis]
) -> None:
    # given a queue with ready, delayed, leased (lease group, done bitmap, owner) and dead items
    name = f'q-{uuid.uuid4().hex[:12]}'
    cluster_connector.lease_owner = 'pod-a'
    cluster_connector.push(name, [b'a', b'b', b'c', b'd'])
    cluster_connector.push(name, [b'later'], consumable_from=4102444800.0)
    leased = cluster_connector.pop(name, 2, lease_seconds=60)
    cluster_connector.ack(name, [leased[0].receipt])  # the group's done bitmap
    cluster_connector.dead_letter(name, [DeadLetter(b'bad', 'failed')])

    # when the keys of the queue are looked for on every master
    found = keys_on(masters, f'sergeant:queue:{{{name}}}:*')

    # then they are all on one master, in one slot, each named with the queue's hash tag
    holders = [port for port, keys in found.items() if keys]
    assert len(holders) == 1
    keys = found[holders[0]]
    suffixes = {key.decode().removeprefix(f'sergeant:queue:{{{name}}}:').split(':')[0] for key in keys}
    assert suffixes == {'ready', 'delayed', 'leased', 'dead', 'wake'}
    assert any(key.endswith(b':done') for key in keys) and any(key.endswith(b':owners') for key in keys)
    assert {key_slot(key) for key in keys} == {key_slot(cluster_queue_keys(name).ready.encode())}
    assert cluster_connector.leases_by_owner(name) == {'pod-a': 1}


def test_queues_spread_over_every_master_and_are_all_listed(
    redis_cluster: RedisClusterServers, cluster_connector: RedisConnector, masters: dict[int, redis.Redis]
) -> None:
    # given queues whose slots are served by each of the three masters
    names = names_on_every_master(redis_cluster)

    # when each gets a task
    for name in names:
        cluster_connector.push(name, [name.encode()])

    # then each master holds some of them, and queues() (a scan of every master) names them all
    holders = {
        port
        for name in names
        for port, keys in keys_on(masters, f'sergeant:queue:{{{name}}}:ready').items()
        if keys
    }
    assert holders == set(masters) and len(holders) == 3
    assert set(names) <= set(cluster_connector.queues())
    for name in names:
        assert cluster_connector.length(name) == 1
        assert [m.payload for m in cluster_connector.pop(name, 5, lease_seconds=30)] == [name.encode()]


def test_sergeant_queues_lists_the_queues_of_every_master(
    redis_cluster: RedisClusterServers, cluster_connector: RedisConnector
) -> None:
    # given queues on every master, one with a task in flight
    names = names_on_every_master(redis_cluster, per_master=1)
    for name in names:
        cluster_connector.push(name, [b'a', b'b'])
    cluster_connector.pop(names[0], 1, lease_seconds=60)

    # when `sergeant queues` is pointed at any one node of the cluster
    any_node = f'redis+cluster://{redis_cluster.host}:{redis_cluster.servers[-1].port}'
    result = run_sergeant('queues', '--json', '--broker', any_node)

    # then it lists every one of them with its counts
    assert result.returncode == 0, result.stderr
    rows = {row['queue']: row for row in json.loads(result.stdout)}
    assert set(names) <= set(rows)
    assert (rows[names[0]]['ready'], rows[names[0]]['in_flight']) == (1, 1)
    assert [(rows[name]['ready'], rows[name]['in_flight']) for name in names[1:]] == [(2, 0)] * 2


def test_a_batch_beyond_luas_unpack_limit_goes_in_one_call(cluster_connector: RedisConnector) -> None:
    name = f'q-{uuid.uuid4().hex[:12]}'
    payloads = [str(i).encode() for i in range(12_000)]

    assert cluster_connector.push(name, payloads, priority='HIGH') == 12_000
    assert cluster_connector.push(name, [b'normal']) == 1

    popped = cluster_connector.pop(name, 20_000, lease_seconds=None)
    assert [m.payload for m in popped] == [*payloads, b'normal']


# -- wake-up ---------------------------------------------------------------------------------------


def test_an_idle_consumer_blocks_on_the_master_of_its_queue_and_a_push_wakes_it(
    redis_cluster: RedisClusterServers, cluster_connector: RedisConnector, make: Factory
) -> None:
    # given an idle consumer (its pop came back empty), waiting on its queue's wake list
    name = f'q-{uuid.uuid4().hex[:12]}'
    producer = make({'cluster': {'url': redis_cluster.url}})
    assert cluster_connector.pop(name, 1, lease_seconds=30) == []
    stop = threading.Event()
    waiter = threading.Thread(target=cluster_connector.wait_for_work, args=(name, 60.0, stop.is_set))
    waiter.start()
    try:
        master = redis_cluster.master_of_slot(key_slot(cluster_queue_keys(name).wake.encode()))
        client = redis_cluster.client(master)
        try:
            wait_for_blocked_client(client)

            # when a producer pushes a task
            producer.push(name, [b'x'])
            waiter.join(30)

            # then the consumer woke (not stopped) by taking the push's wake token
            assert not waiter.is_alive() and not stop.is_set()
            assert client.llen(cluster_queue_keys(name).wake) == 0
        finally:
            client.close()
    finally:
        stop.set()
        waiter.join()
    assert [m.payload for m in cluster_connector.pop(name, 1, lease_seconds=30)] == [b'x']


def wait_for_blocked_client(client: redis.Redis) -> None:
    """Until the master has a client blocked (the consumer's BLPOP)."""
    wait_for(lambda: int(client.info('clients')['blocked_clients']) >= 1, 30, 'a consumer blocked on BLPOP')
