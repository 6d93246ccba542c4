"""A SergeantWorker whose broker is a Redis Cluster: the schema takes the params, the operator reads it.

The operator builds the worker's connector with ``create_connector`` from
``spec.connector.params`` (``{'cluster': {'nodes': [...]}}``), so it reads queue
length, tasks in flight and leases per owner from the master serving the queue's
slot, here on a real cluster of 3 masters and 3 replicas.
"""

from __future__ import annotations

import uuid

import pytest
from sergeant_operator.policy import Observation
from sergeant_operator.queue import QueueReader
from sergeant_operator.resource import parse_worker

from sergeant.connector import create_connector
from tests.helm.validation import problems
from tests.operator.test_queue import no_secrets
from tests.operator.test_resource import with_spec
from tests.servers.redis_cluster import RedisClusterServers


def cluster_worker(cluster: RedisClusterServers, queue: str, by_url: bool = False) -> dict[str, object]:
    if by_url:
        node = cluster.servers[-1]
        connector: dict[str, object] = {'type': 'redis', 'url': f'redis+cluster://{cluster.host}:{node.port}'}
    else:
        connector = {'type': 'redis', 'params': {'cluster': {'nodes': cluster.startup_nodes[:2]}}}
    worker = with_spec(queue=queue, connector=connector)
    return {'apiVersion': 'sergeant.io/v1alpha1', 'kind': 'SergeantWorker', **worker}


def test_the_crd_schema_takes_cluster_params() -> None:
    nodes = [{'host': 'redis-0.redis', 'port': 6379}, {'host': 'redis-1.redis', 'port': 6379}]
    worker = with_spec(connector={'type': 'redis', 'params': {'cluster': {'nodes': nodes, 'tls': True}}})
    manifest = {'apiVersion': 'sergeant.io/v1alpha1', 'kind': 'SergeantWorker', **worker}

    assert problems(manifest, '1.30.0') == []


@pytest.mark.parametrize(
    ('url', 'accepted'),
    [
        ('redis+cluster://redis-0.redis:6379', True),
        ('rediss+cluster://redis-0.redis:6379', True),
        ('cluster://r', False),
    ],
)
def test_the_crd_schema_takes_a_cluster_url(url: str, accepted: bool) -> None:
    worker = with_spec(connector={'type': 'redis', 'url': url})
    manifest = {'apiVersion': 'sergeant.io/v1alpha1', 'kind': 'SergeantWorker', **worker}

    assert (problems(manifest, '1.30.0') == []) is accepted


@pytest.mark.parametrize('by_url', [False, True], ids=['params', 'url'])
def test_the_operator_reads_a_queue_on_a_redis_cluster(
    redis_cluster: RedisClusterServers, by_url: bool
) -> None:
    # given a queue on the cluster with ready, leased and delayed tasks
    queue = f'crawl-{uuid.uuid4().hex[:8]}'
    broker = create_connector('redis', {'cluster': {'url': redis_cluster.url}})
    broker.lease_owner = 'crawler-7d9f/12'
    broker.push(queue, [b'task'] * 7)
    broker.pop(queue, 2, lease_seconds=60)
    broker.push(queue, [b'later'], consumable_from=2**31)
    reader = QueueReader(no_secrets)
    try:
        # when the operator reads the SergeantWorker's queue
        worker = parse_worker(cluster_worker(redis_cluster, queue, by_url))
        observation = reader.read(worker)
        leases = reader.leases_by_owner(worker)

        # then it sees what the workers would
        assert observation == Observation(ready=5, in_flight=2)
        assert leases == {'crawler-7d9f/12': 2}
    finally:
        reader.close()
        broker.close()
