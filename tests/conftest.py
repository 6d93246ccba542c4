"""Fixtures shared by every suite: one real Kubernetes API server per session, and clients of it.

They live here, at the root, so that the kube, operator, helm and docker suites share
one server in a full run (a fixture imported into several conftest files would start
one server per import). ``kubernetes`` is imported only when a fixture is used.

``kube_api`` (session scope) yields a running ``tests.servers.kube.KubeAPIServer``
(kube-apiserver on etcd, no kubelet or controllers) with:

- ``kubeconfig_path``: a kubeconfig file (context ``sergeant-test``, namespace
  ``default``) for the Python client, Helm (``--kubeconfig``) or kubectl;
- ``url``: ``https://127.0.0.1:<port>``, its certificate signed by the CA in ``ca_path``;
- ``token``: a bearer token of a ``system:masters`` member (authorization mode is
  RBAC, so RBAC objects apply to every other user);
- ``workdir``: where the logs (``etcd.log``, ``kube-apiserver.log``) are;
- ``env()``: this process's environment plus ``KUBECONFIG``, for subprocesses.

``kube_client`` is a ``kubernetes.client.ApiClient`` on that kubeconfig, closed
after each test; ``kube_namespace`` is a fresh namespace for one test, left in
place (with no controller-manager a deleted namespace never goes away).

``kube_cluster`` (session scope) is a separate cluster with pods
(``tests.servers.kube_cluster.KubeCluster``, the same attributes plus ``nodes``):
its own API server with kube-controller-manager, kube-scheduler and kwok's fake
nodes, so Deployments get ReplicaSets and Ready pods (no container runs) and
garbage collection works. It is kept apart from ``kube_api`` so that the tests
asserting on bare objects never see controllers act.

Missing binaries fail the fixture with a message to run ``make tools``.

``redis_cluster`` (session scope) is a Redis Cluster of 3 masters and 3 replicas
(``tests.servers.redis_cluster.RedisClusterServers``), shared by the connector and
operator suites; the failover test starts its own, since it kills a master.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.servers.kube import KubeAPIServer, running_kube_apiserver
from tests.servers.kube_cluster import KubeCluster, running_cluster_with_pods
from tests.servers.redis_cluster import RedisClusterServers, running_redis_cluster

if TYPE_CHECKING:
    from kubernetes import client


@pytest.fixture(scope='session')
def kube_api() -> Iterator[KubeAPIServer]:
    with running_kube_apiserver() as server:
        yield server


@pytest.fixture(scope='session')
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    with running_redis_cluster(tmp_path_factory.mktemp('redis-cluster')) as cluster:
        yield cluster


@pytest.fixture(scope='session')
def kube_cluster() -> Iterator[KubeCluster]:
    with running_cluster_with_pods() as cluster:
        yield cluster


@pytest.fixture
def kube_client(kube_api: KubeAPIServer) -> Iterator[client.ApiClient]:
    from kubernetes import config

    api_client = config.new_client_from_config(config_file=str(kube_api.kubeconfig_path))
    try:
        yield api_client
    finally:
        api_client.close()


@pytest.fixture
def kube_namespace(kube_client: client.ApiClient) -> str:
    from kubernetes import client

    name = f'test-{uuid.uuid4().hex[:10]}'
    client.CoreV1Api(kube_client).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
    )
    return name
