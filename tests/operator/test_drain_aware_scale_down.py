"""Scale-down on a cluster with pods keeps the busy workers: the operator's deletion costs at work.

The cluster (``kube_cluster``) runs the controllers, the scheduler and kwok, so the
SergeantWorker's Deployment gets pods that turn Ready, though no container runs:
four, then two more some seconds later. Real supervisors started beside the
cluster play the workers of those two youngest pods, the ones the ReplicaSet
controller would remove first if the costs were equal:
they carry the pod's name in ``POD_NAME``, as the Deployment's downward API would
give it, and so own their leases at the test Redis in that pod's name. When the
operator scales down to two, the ReplicaSet controller removes the four idle pods
(cost 0) and keeps the two whose workers hold tasks; every task is still processed.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client
from sergeant_operator.deletion_cost import DELETION_COST_ANNOTATION, tasks_per_pod
from sergeant_operator.kube import Kube, load_api_client
from sergeant_operator.leader import LeaderElector
from sergeant_operator.manager import Operator, OperatorSettings

from sergeant.connector import Connector, create_connector
from sergeant.objects import Task
from tests.operator.conftest import CRD_PATH, TEST_TIMINGS, eventually
from tests.servers.kube_cluster import KubeCluster
from tests.servers.redis import RedisServer
from tests.supervisor.conftest import Supervise, broker_for, local_settings, supervise  # noqa: F401  (fixtures)

GROUP, VERSION, PLURAL = 'sergeant.io', 'v1alpha1', 'sergeantworkers'
NAME = 'crawler'
TASKS = 10
TASK_SECONDS = 2.0
# The ReplicaSet controller removes, costs being equal, the pods Ready for the shortest time first
# (compared on a log2 scale of seconds): the busy pods are made the youngest by this much.
OLDER_SECONDS = 8.0


@pytest.fixture(scope='module')
def cluster_api(kube_cluster: KubeCluster) -> Iterator[client.ApiClient]:
    """A client of the cluster with pods, on which the SergeantWorker CRD is established."""
    api_client = load_api_client(str(kube_cluster.kubeconfig_path))
    crd = yaml.safe_load(CRD_PATH.read_text())
    extensions = client.CustomObjectsApi(api_client)
    extensions.patch_cluster_custom_object(
        'apiextensions.k8s.io', 'v1', 'customresourcedefinitions', crd['metadata']['name'], crd,
        field_manager='sergeant-tests', force=True, _content_type='application/apply-patch+yaml',
    )  # fmt: skip

    def established() -> bool:
        current = extensions.get_cluster_custom_object(
            'apiextensions.k8s.io', 'v1', 'customresourcedefinitions', crd['metadata']['name']
        )
        conditions = (current.get('status') or {}).get('conditions') or []
        return any(c['type'] == 'Established' and c['status'] == 'True' for c in conditions)

    eventually(established, 'the CRD is established')
    yield api_client
    api_client.close()


@pytest.fixture
def namespace(cluster_api: client.ApiClient) -> Iterator[str]:
    name = f'test-{uuid.uuid4().hex[:10]}'
    core = client.CoreV1Api(cluster_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)  # the namespace controller removes what is left


@pytest.fixture
def operator(kube_cluster: KubeCluster, namespace: str, cluster_api: client.ApiClient) -> Iterator[Operator]:
    """The operator, watching the test's namespace, in a thread of this process."""
    kube = Kube(load_api_client(str(kube_cluster.kubeconfig_path)))
    elector = LeaderElector(kube, namespace, 'sergeant-operator', 'operator-a', TEST_TIMINGS)
    settings = OperatorSettings(namespace=namespace, identity='operator-a', watch_timeout_seconds=5)
    running = Operator(kube, settings, elector=elector)
    stop = threading.Event()
    thread = threading.Thread(target=running.run, args=(stop,), name='operator', daemon=True)
    thread.start()
    yield running
    stop.set()
    thread.join(30)
    kube.close()


@pytest.fixture
def queue() -> str:
    return f'crawl-{uuid.uuid4().hex[:8]}'


@pytest.fixture
def broker(redis_server: RedisServer, queue: str) -> Iterator[Connector]:
    connector = create_connector('redis', {'url': redis_server.url})
    yield connector
    connector.delete(queue)
    connector.close()


def worker_body(queue: str, url: str, min_replicas: int) -> dict[str, Any]:
    return {
        'apiVersion': f'{GROUP}/{VERSION}',
        'kind': 'SergeantWorker',
        'metadata': {'name': NAME},
        'spec': {
            'image': 'registry.example/crawler:1',  # never pulled: kwok runs no container
            'workerModule': 'tests.workers.supervised_common',
            'workerClass': 'RecordingWorker',
            'queue': queue,
            'connector': {'type': 'redis', 'url': url},
            'scaling': {
                'minReplicas': min_replicas,
                'maxReplicas': 6,
                'tasksPerReplica': 5,
                'pollingIntervalSeconds': 1,
                'cooldownSeconds': 1,
                'scaleDownStabilizationSeconds': 0,
            },
        },
    }


def live_pods(core: client.CoreV1Api, namespace: str) -> list[client.V1Pod]:
    pods = core.list_namespaced_pod(namespace, label_selector=f'sergeant.io/worker={NAME}').items
    return [pod for pod in pods if pod.metadata.deletion_timestamp is None]


def is_ready(pod: client.V1Pod) -> bool:
    conditions = (pod.status and pod.status.conditions) or []
    return any(c.type == 'Ready' and c.status == 'True' for c in conditions)


def test_scaling_down_removes_the_idle_pods_and_keeps_the_busy_ones(
    cluster_api: client.ApiClient,
    namespace: str,
    operator: Operator,
    redis_server: RedisServer,
    broker: Connector,
    queue: str,
    supervise: Supervise,  # noqa: F811
) -> None:
    core = client.CoreV1Api(cluster_api)
    objects = client.CustomObjectsApi(cluster_api)
    objects.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, worker_body(queue, redis_server.url, min_replicas=4)
    )

    def ready(count: int) -> Callable[[], list[client.V1Pod] | None]:
        def check() -> list[client.V1Pod] | None:
            pods = live_pods(core, namespace)
            return pods if len(pods) == count and all(map(is_ready, pods)) else None

        return check

    first = {pod.metadata.name for pod in eventually(ready(4), '4 pods Ready', deadline=90)}
    time.sleep(OLDER_SECONDS)
    set_min_replicas(objects, namespace, 6)
    six = eventually(ready(6), '6 pods Ready', deadline=90)
    # the two youngest: with equal costs, the first two the ReplicaSet controller would remove
    busy = sorted(pod.metadata.name for pod in six if pod.metadata.name not in first)
    producer = broker_for({'type': 'redis', 'params': {'url': redis_server.url}})
    producer.push_tasks(queue, [Task(kwargs={'id': i}) for i in range(TASKS)])
    runs = [
        supervise(
            'supervised_common',
            'RecordingWorker',
            '--concurrent-workers',
            '1',
            settings={'type': 'redis', 'params': {'url': redis_server.url}},
            env={
                'POD_NAME': pod_name,
                'TEST_QUEUE': queue,
                'TEST_TASK_SECONDS': str(TASK_SECONDS),
                'TEST_PREFETCH': '1',
                'TEST_LEASE_SECONDS': '10',
            },
        )
        for pod_name in busy
    ]
    eventually(lambda: set(tasks_per_pod(broker.leases_by_owner(queue))) == set(busy), 'both pods hold tasks')

    set_min_replicas(objects, namespace, 2)

    def two_left() -> list[client.V1Pod] | None:
        pods = live_pods(core, namespace)
        return pods if len(pods) == 2 else None

    kept = eventually(two_left, 'scaled down to 2', deadline=60)
    assert sorted(pod.metadata.name for pod in kept) == busy
    for pod in kept:
        assert int(pod.metadata.annotations[DELETION_COST_ANNOTATION]) > 0

    def all_processed() -> list[int] | None:
        ids = sorted(i for run in runs for i in run.processed_ids())
        return ids if len(ids) >= TASKS else None

    processed = eventually(all_processed, 'every task processed', deadline=60)
    assert set(processed) == set(range(TASKS))  # none lost (a redelivery would show as a duplicate)
    assert broker.length(queue) == 0
    print(f'\nkept {sorted(pod.metadata.name for pod in kept)} of {sorted(p.metadata.name for p in six)}')


def set_min_replicas(objects: client.CustomObjectsApi, namespace: str, replicas: int) -> None:
    body = {'spec': {'scaling': {'minReplicas': replicas}}}
    objects.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, NAME, body)
