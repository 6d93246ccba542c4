"""The chart and the operator end to end on a cluster with pods: Helm installs, pods follow the queue.

``helm install`` puts the chart, with one worker pool in its values, into the cluster
with pods (``kube_cluster``: controllers, scheduler and kwok's fake nodes, so
Deployments get ReplicaSets and pods that turn Ready; no container runs). The
chart's own operator pod is scheduled there too, but runs nothing: the operator runs
beside the cluster as a real ``sergeant-operator`` process with the arguments and
variables of that pod (its name is the operator's identity in the Lease), signed in
with a token of the chart's ServiceAccount from the TokenRequest API, so the chart's
RBAC is all it gets. The module shares one release and one operator; each test
has its own pool and queue on the test Redis, or on a Redis of its own that it stops.

Shown: a backlog scales the chart's pool from 0 to Ready pods and the status reports
them, an empty queue scales it back to 0; the paused-replicas annotation holds the
pods at its count whatever the queue says; an unreachable broker brings the pool to
``fallback.replicas``; deleting a SergeantWorker garbage-collects its Deployment,
ReplicaSets and pods; a new image and env roll the pods through a new ReplicaSet
within the Deployment's surge and unavailability bounds.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException
from sergeant_operator.resource import PAUSED_REPLICAS_ANNOTATION

from sergeant.connector import Connector, create_connector
from tests.helm.conftest import CHART, Helm, helm  # noqa: F401  (fixture)
from tests.helm.test_install import NO_MONITORS
from tests.operator.conftest import eventually
from tests.operator.test_drain_aware_scale_down import cluster_api, is_ready  # noqa: F401  (fixture)
from tests.operator.test_end_to_end import service_account_kubeconfig
from tests.servers.kube_cluster import KubeCluster
from tests.servers.ports import free_port
from tests.servers.redis import RedisServer, running_redis

GROUP, VERSION, PLURAL = 'sergeant.io', 'v1alpha1', 'sergeantworkers'
WORKER_LABEL = 'sergeant.io/worker'
SCALED = re.compile(
    r'Scaled (?P<direction>up|down) replica set (?P<set>\S+) from (?P<before>\d+) to (?P<after>\d+)'
)
POOL = 'crawler'  # the pool of the chart's values
TASKS_PER_REPLICA = 5
MAX_REPLICAS = 4
FAST_SCALING = {
    'pollingIntervalSeconds': 1,
    'cooldownSeconds': 1,
    'scaleDownStabilizationSeconds': 0,
    'tasksPerReplica': TASKS_PER_REPLICA,
}


@pytest.fixture(scope='module')
def release_namespace(cluster_api: client.ApiClient) -> Iterator[str]:  # noqa: F811
    name = f'pods-{uuid.uuid4().hex[:8]}'
    core = client.CoreV1Api(cluster_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)  # the namespace controller removes what is left


@pytest.fixture(scope='module')
def pool_queue() -> str:
    return f'crawl-{uuid.uuid4().hex[:8]}'


@pytest.fixture(scope='module')
def release(
    helm: Helm,  # noqa: F811
    kube_cluster: KubeCluster,
    release_namespace: str,
    redis_server: RedisServer,
    pool_queue: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The chart installed for the test's namespace, with the pool ``crawler`` on the test Redis."""
    name = f'sgt-{uuid.uuid4().hex[:6]}'
    values = tmp_path_factory.mktemp('pods-values') / 'values.yaml'
    pool = {
        'image': 'registry.example/crawler:1',  # never pulled: kwok runs no container
        'workerModule': 'app.workers',
        'workerClass': 'Crawler',
        'queue': pool_queue,
        'connector': {'type': 'redis', 'url': redis_server.url},
        'scaling': {'minReplicas': 0, 'maxReplicas': MAX_REPLICAS, **FAST_SCALING},
    }
    chart_values = {
        'operator': {'watchNamespace': release_namespace},
        'metrics': {'port': free_port()},
        'workers': {POOL: pool},
    }
    values.write_text(yaml.safe_dump(chart_values))
    kubeconfig = str(kube_cluster.kubeconfig_path)
    arguments = ['install', name, str(CHART), '--namespace', release_namespace, '--kubeconfig', kubeconfig]
    for assignment in NO_MONITORS:
        arguments += ['--set', assignment]
    helm.run(*arguments, '--values', str(values))
    yield name
    helm.run('uninstall', name, '--namespace', release_namespace, '--kubeconfig', kubeconfig, check=False)


@pytest.fixture(scope='module')
def operator_process(
    kube_cluster: KubeCluster,
    cluster_api: client.ApiClient,  # noqa: F811
    release_namespace: str,
    release: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Path]:
    """The chart's operator pod, as a process beside the cluster signed in as the chart's ServiceAccount;
    yields its log."""
    core, apps = client.CoreV1Api(cluster_api), client.AppsV1Api(cluster_api)
    deployment = apps.read_namespaced_deployment(f'{release}-sergeant-operator', release_namespace)
    selector = ','.join(f'{key}={value}' for key, value in deployment.spec.selector.match_labels.items())

    def operator_pod() -> client.V1Pod | None:
        pods = core.list_namespaced_pod(release_namespace, label_selector=selector).items
        return next((pod for pod in pods if is_ready(pod)), None)

    # the chart's operator pod is scheduled and Ready on a fake node (its ServiceAccount exists)
    pod = eventually(operator_pod, "the chart's operator pod Ready", deadline=60)
    account = pod.spec.service_account_name
    assert core.read_namespaced_service_account(account, release_namespace) is not None
    token = core.create_namespaced_service_account_token(
        account, release_namespace, {'spec': {'expirationSeconds': 3600}}
    ).status.token
    folder = tmp_path_factory.mktemp('pods-operator')
    kubeconfig = service_account_kubeconfig(folder, kube_cluster, token)
    [container] = pod.spec.containers
    fields = {'metadata.namespace': release_namespace, 'metadata.name': pod.metadata.name}
    env = {
        entry.name: fields[entry.value_from.field_ref.field_path] if entry.value_from else entry.value
        for entry in container.env or []
    }
    log = folder / 'operator.log'
    command = [sys.executable, '-m', 'sergeant_operator.cli', *container.args]
    with open(log, 'wb') as output:
        process = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**_python_env(), **env, 'SERGEANT_OPERATOR_KUBECONFIG': str(kubeconfig)},
        )
    try:
        lease = client.CoordinationV1Api(cluster_api)

        def leads() -> bool:
            with contextlib.suppress(ApiException):
                holder = lease.read_namespaced_lease(f'{release}-sergeant-operator', release_namespace)
                return bool(holder.spec.holder_identity == pod.metadata.name)
            return False

        eventually(leads, 'the operator leads under its pod name', deadline=30)
        yield log
    finally:
        process.terminate()
        process.wait(30)
    text = log.read_text()
    assert process.returncode == 0, text
    assert 'Forbidden' not in text, text  # the chart's RBAC sufficed (KubeError: '403 Forbidden: ...')


def _python_env() -> dict[str, str]:
    """This process's environment without KUBECONFIG: the operator gets only the ServiceAccount's."""
    return {key: value for key, value in os.environ.items() if key != 'KUBECONFIG'}


class Pool:
    """One SergeantWorker of the release namespace and the lookups the tests share."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str, log: Path) -> None:
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.objects = client.CustomObjectsApi(api)
        self.namespace = namespace
        self.name = name
        self.log = log

    def create(self, spec: dict[str, Any]) -> None:
        body = {'apiVersion': f'{GROUP}/{VERSION}', 'kind': 'SergeantWorker', 'metadata': {'name': self.name}}
        self.objects.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, {**body, 'spec': spec}
        )

    def patch(self, body: dict[str, Any]) -> None:
        self.objects.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, self.name, body)

    def worker(self) -> dict[str, Any]:
        found: dict[str, Any] = self.objects.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, self.name
        )
        return found

    def pods(self) -> list[client.V1Pod]:
        """The pool's pods not being deleted."""
        listing = self.core.list_namespaced_pod(self.namespace, label_selector=f'{WORKER_LABEL}={self.name}')
        return [pod for pod in listing.items if pod.metadata.deletion_timestamp is None]

    def all_pods(self) -> list[client.V1Pod]:
        listing = self.core.list_namespaced_pod(self.namespace, label_selector=f'{WORKER_LABEL}={self.name}')
        return list(listing.items)

    def replica_sets(self) -> list[client.V1ReplicaSet]:
        listing = self.apps.list_namespaced_replica_set(
            self.namespace, label_selector=f'{WORKER_LABEL}={self.name}'
        )
        return list(listing.items)

    def deployment(self) -> client.V1Deployment | None:
        try:
            return self.apps.read_namespaced_deployment(self.name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def ready_pods(self, count: int, what: str, deadline: float = 45) -> list[client.V1Pod]:
        """Wait for exactly ``count`` live pods, all Ready."""

        def check() -> list[client.V1Pod] | None:
            pods = self.pods()
            return pods if len(pods) == count and all(map(is_ready, pods)) else None

        if count == 0:
            eventually(lambda: not self.pods(), what, deadline)
            return []
        try:
            found: list[client.V1Pod] = eventually(check, what, deadline)
        except AssertionError as error:
            raise AssertionError(f'{error}\n--- operator log ---\n{self.log.read_text()[-3000:]}') from None
        return found

    def condition(self, kind: str) -> tuple[str, str] | None:
        for entry in (self.worker().get('status') or {}).get('conditions') or []:
            if entry['type'] == kind:
                return entry['status'], entry['reason']
        return None


@pytest.fixture
def pool_of(
    cluster_api: client.ApiClient,  # noqa: F811
    release_namespace: str,
    operator_process: Path,
) -> Iterator[Callable[[str], Pool]]:
    """Pools of the test, deleted after it (but the chart's)."""
    made: list[Pool] = []

    def make(name: str) -> Pool:
        made.append(Pool(cluster_api, release_namespace, name, operator_process))
        return made[-1]

    yield make
    for pool in made:
        if pool.name != POOL:
            with contextlib.suppress(ApiException):  # 404: the test deleted it
                pool.objects.delete_namespaced_custom_object(
                    GROUP, VERSION, pool.namespace, PLURAL, pool.name
                )


@pytest.fixture
def broker(redis_server: RedisServer) -> Iterator[Connector]:
    connector = create_connector('redis', {'url': redis_server.url})
    yield connector
    connector.close()


def pool_spec(queue: str, url: str, **scaling: Any) -> dict[str, Any]:
    return {
        'image': 'registry.example/crawler:1',
        'workerModule': 'app.workers',
        'workerClass': 'Crawler',
        'queue': queue,
        'connector': {'type': 'redis', 'url': url},
        'scaling': {'minReplicas': 0, 'maxReplicas': MAX_REPLICAS, **FAST_SCALING, **scaling},
    }


def timed(what: str, started: float) -> None:
    print(f'\n{what}: {time.monotonic() - started:.1f} s', end='')


# -- the chart's pool follows its queue ---------------------------------------------------------


def test_the_charts_pool_scales_up_to_ready_pods_on_a_backlog_and_back_down_when_drained(
    pool_of: Callable[[str], Pool], broker: Connector, pool_queue: str
) -> None:
    # given the chart's pool, idle: no pods
    pool = pool_of(POOL)
    eventually(lambda: pool.condition('Ready') == ('True', 'ScaledToZero'), 'the idle pool scaled to zero')
    assert pool.pods() == []

    # when a backlog of 18 tasks arrives (5 per replica, at most 4)
    started = time.monotonic()
    broker.push(pool_queue, [b'task'] * 18)

    # then 4 pods become Ready and the status reports them, as the Deployment does
    pods = pool.ready_pods(MAX_REPLICAS, '4 pods Ready')
    timed('0 -> 4 pods Ready', started)
    assert {pod.spec.node_name for pod in pods} <= {'fake-node-0', 'fake-node-1'}
    status = eventually(
        lambda: (s := pool.worker().get('status') or {}).get('readyReplicas') == MAX_REPLICAS and s,
        'readyReplicas 4 in the status',
    )
    timed('and readyReplicas 4 in the status', started)
    assert status['replicas'] == MAX_REPLICAS and status['desiredReplicas'] == MAX_REPLICAS
    assert status['queueLength'] == 18
    assert pool.condition('Ready') == ('True', 'DeploymentReady')
    deployment = pool.deployment()
    assert deployment is not None and deployment.status.ready_replicas == MAX_REPLICAS
    assert pool.worker()['spec']['replicas'] == MAX_REPLICAS  # the scale subresource

    # (as the chart's ServiceAccount: it kept the CRD current, and nothing was forbidden)
    log = pool.log.read_text()
    assert 'SergeantWorker CRD: current' in log and 'Forbidden' not in log, log

    # when the queue is drained, the pool goes back to its minimum, 0, and no pod is left
    started = time.monotonic()
    broker.delete(pool_queue)
    pool.ready_pods(0, 'scaled back to 0 pods')
    timed('4 -> 0 pods', started)
    eventually(
        lambda: (pool.worker().get('status') or {}).get('readyReplicas') == 0, 'readyReplicas 0 in the status'
    )
    eventually(lambda: pool.condition('Ready') == ('True', 'ScaledToZero'), 'Ready: ScaledToZero')


# -- KEDA's controls on pods --------------------------------------------------------------------


def test_paused_replicas_hold_the_pods_whatever_the_queue_says(
    pool_of: Callable[[str], Pool], broker: Connector, redis_server: RedisServer
) -> None:
    queue = f'paused-{uuid.uuid4().hex[:8]}'
    pool = pool_of('paused')
    try:
        # given a pool at 2 pods for a backlog of 10
        broker.push(queue, [b'task'] * 10)
        pool.create(pool_spec(queue, redis_server.url))
        pool.ready_pods(2, '2 pods Ready')

        # when it is paused at 3, it goes to 3 pods and stays there through a growing backlog...
        started = time.monotonic()
        pool.patch({'metadata': {'annotations': {PAUSED_REPLICAS_ANNOTATION: '3'}}})
        pool.ready_pods(3, '3 pods Ready while paused')
        timed('paused at 3: 2 -> 3 pods Ready', started)
        eventually(lambda: pool.condition('Paused') == ('True', 'PausedReplicas'), 'Paused=True')
        broker.push(queue, [b'task'] * 10)  # 20 tasks: 4 replicas if not paused
        hold_pods(pool, 3, seconds=4)
        # ...and through an empty queue
        broker.delete(queue)
        hold_pods(pool, 3, seconds=4)
        assert (pool.worker().get('status') or {}).get('queueLength') == 0  # still read

        # when the annotation goes, the operator scales again: the queue is empty, so to 0
        pool.patch({'metadata': {'annotations': {PAUSED_REPLICAS_ANNOTATION: None}}})
        pool.ready_pods(0, 'resumed: scaled to 0')
        eventually(lambda: pool.condition('Paused') == ('False', 'NotPaused'), 'Paused=False')
    finally:
        broker.delete(queue)


def hold_pods(pool: Pool, count: int, seconds: float) -> None:
    """The pool keeps ``count`` Ready pods (and its Deployment that size) for ``seconds``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pods = pool.pods()
        deployment = pool.deployment()
        assert deployment is not None and deployment.spec.replicas == count
        assert len(pods) == count and all(map(is_ready, pods)), [p.metadata.name for p in pods]
        time.sleep(0.5)


def test_fallback_replicas_run_while_the_broker_is_unreachable(
    pool_of: Callable[[str], Pool], tmp_path: Path
) -> None:
    queue = f'fallback-{uuid.uuid4().hex[:8]}'
    pool = pool_of('fallback')
    with running_redis(tmp_path / 'redis') as own_redis:
        # given a pool at 4 pods for a backlog of 20, on a Redis of its own
        connector = create_connector('redis', {'url': own_redis.url})
        try:
            connector.push(queue, [b'task'] * 20)
        finally:
            connector.close()
        pool.create(pool_spec(queue, own_redis.url, fallback={'replicas': 1, 'failureThreshold': 2}))
        pool.ready_pods(4, '4 pods Ready')

        # when the broker goes away
        started = time.monotonic()
        own_redis.stop()

        # then after 2 failed readings the pool runs fallback.replicas: 1 pod
        pool.ready_pods(1, 'fallback: 1 pod')
        timed('broker down: 4 -> 1 pod (fallback)', started)
        eventually(lambda: pool.condition('Fallback') == ('True', 'FallbackReplicas'), 'Fallback=True')
        assert pool.condition('BrokerReachable') == ('False', 'BrokerUnreachable')
        hold_pods(pool, 1, seconds=3)

        # and when it is back (its data gone: an empty queue), the operator scales from the queue again
        own_redis.start()
        pool.ready_pods(0, 'broker back, empty queue: 0 pods')
        eventually(lambda: pool.condition('Fallback') == ('False', 'NoFallback'), 'Fallback=False')


# -- garbage collection and rollouts ------------------------------------------------------------


def test_deleting_a_worker_garbage_collects_its_deployment_replica_sets_and_pods(
    pool_of: Callable[[str], Pool], redis_server: RedisServer
) -> None:
    # given a pool of 3 Ready pods, through 2 ReplicaSets (the image changed once)
    pool = pool_of('doomed')
    pool.create(pool_spec(f'doomed-{uuid.uuid4().hex[:8]}', redis_server.url, minReplicas=3))
    pool.ready_pods(3, '3 pods Ready')
    pool.patch({'spec': {'image': 'registry.example/crawler:2'}})
    eventually(lambda: len(pool.replica_sets()) == 2, 'a second ReplicaSet')
    deployment = pool.deployment()
    assert deployment is not None
    [owner] = deployment.metadata.owner_references
    assert (owner.kind, owner.name, owner.controller) == ('SergeantWorker', 'doomed', True)

    # when the SergeantWorker is deleted
    started = time.monotonic()
    pool.objects.delete_namespaced_custom_object(GROUP, VERSION, pool.namespace, PLURAL, pool.name)

    # then the garbage collector removes the Deployment, both ReplicaSets and every pod
    eventually(lambda: pool.deployment() is None, 'the Deployment is gone')
    eventually(lambda: not pool.replica_sets(), 'the ReplicaSets are gone')
    eventually(lambda: not pool.all_pods(), 'the pods are gone')
    timed('deleted: Deployment, ReplicaSets and pods gone', started)
    time.sleep(3)  # and the operator does not bring them back
    assert pool.deployment() is None and not pool.all_pods()


def test_a_new_image_and_env_roll_the_pods_within_the_deployment_strategy(
    pool_of: Callable[[str], Pool], redis_server: RedisServer
) -> None:
    # given a pool of 4 Ready pods (the default strategy: RollingUpdate, 25 % surge and unavailable)
    pool = pool_of('rolling')
    pool.create(pool_spec(f'rolling-{uuid.uuid4().hex[:8]}', redis_server.url, minReplicas=4))
    first = {pod.metadata.name for pod in pool.ready_pods(4, '4 pods Ready')}
    [old_set] = pool.replica_sets()
    deployment = pool.deployment()
    assert deployment is not None and deployment.spec.strategy.type == 'RollingUpdate'

    # when its image and env change
    started = time.monotonic()
    pool.patch(
        {
            'spec': {
                'image': 'registry.example/crawler:2',
                'template': {'env': [{'name': 'CRAWL_DEPTH', 'value': '3'}]},
            }
        }
    )

    # then a new ReplicaSet replaces every pod, never more than 4 + 1 pods nor fewer than 4 - 1 Ready
    most, fewest_ready = 0, 4

    def rolled() -> list[client.V1Pod] | None:
        nonlocal most, fewest_ready
        pods = pool.pods()
        ready = [pod for pod in pods if is_ready(pod)]
        most, fewest_ready = max(most, len(pods)), min(fewest_ready, len(ready))
        new = [pod for pod in ready if on_new_template(pod) and pod.metadata.name not in first]
        return pods if len(pods) == 4 and len(new) == 4 else None

    pods = eventually(rolled, 'every pod on the new template', deadline=45)
    timed(f'rolled 4 pods (at most {most} pods, at least {fewest_ready} Ready)', started)
    assert most <= 5 and fewest_ready >= 3
    sets = {rs.metadata.name: rs for rs in pool.replica_sets()}
    assert len(sets) == 2 and old_set.metadata.name in sets
    old = old_set.metadata.name
    eventually(
        lambda: pool.apps.read_namespaced_replica_set(old, pool.namespace).spec.replicas == 0,
        'the old ReplicaSet scaled to 0',
    )
    # step by step, as the Deployment controller reports it: the new ReplicaSet up by the surge of 1
    # first, the old one down to 0, neither in one go (that would be Recreate)
    [new] = set(sets) - {old}
    eventually(lambda: scaling_steps(pool, old, 'down')[-1:] == [(1, 0)], 'the last scaling event')
    ups, downs = scaling_steps(pool, new, 'up'), scaling_steps(pool, old, 'down')
    print(f' new ReplicaSet {ups}, old {downs}', end='')
    assert ups[0] == (0, 1) and ups[-1][1] == 4 and len(ups) > 1
    assert downs[0][0] == 4 and len(downs) > 1
    for chain in (ups, downs):
        assert all(step[1] == after[0] for step, after in itertools.pairwise(chain)), chain  # no gap
    owners = {pod.metadata.owner_references[0].name for pod in pods}
    assert owners == set(sets) - {old_set.metadata.name}


def scaling_steps(pool: Pool, replica_set: str, direction: str) -> list[tuple[int, int]]:
    """The (from, to) sizes of ``replica_set`` scaled ``direction`` ('up' or 'down'), in order, from
    the Deployment controller's events."""
    events = pool.core.list_namespaced_event(
        pool.namespace, field_selector=f'involvedObject.kind=Deployment,involvedObject.name={pool.name}'
    )
    steps = []
    for event in events.items:
        match = SCALED.fullmatch(event.message or '') if event.reason == 'ScalingReplicaSet' else None
        if match and (match['direction'], match['set']) == (direction, replica_set):
            steps.append((int(match['before']), int(match['after'])))
    return sorted(steps, reverse=direction == 'down')


def on_new_template(pod: client.V1Pod) -> bool:
    [container] = pod.spec.containers
    env = {entry.name: entry.value for entry in container.env or [] if entry.value is not None}
    return bool(container.image == 'registry.example/crawler:2' and env.get('CRAWL_DEPTH') == '3')
