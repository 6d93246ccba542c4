"""The operator against a real API server and a real Redis: the CRD's contract, deploying, scaling.

There is no kubelet or controller-manager: Deployments never get pods, so the
tests assert on the Deployment's spec and the SergeantWorker's status.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from sergeant_operator.kube import Kube, KubeError, load_api_client

from sergeant.connector import Connector, create_connector
from tests.operator.conftest import DEADLINE, RunningOperator, eventually
from tests.servers.kube import KubeAPIServer
from tests.servers.redis import RedisServer, running_redis

GROUP, VERSION, PLURAL = 'sergeant.io', 'v1alpha1', 'sergeantworkers'
POLL_SECONDS = 2
RBAC = Path(__file__).resolve().parents[2] / 'operator' / 'rbac'


def worker_body(name: str, url: str, queue: str, **scaling: int) -> dict[str, Any]:
    return {
        'apiVersion': f'{GROUP}/{VERSION}',
        'kind': 'SergeantWorker',
        'metadata': {'name': name},
        'spec': {
            'image': 'registry.example/crawler:1',
            'workerModule': 'app.workers',
            'workerClass': 'Crawler',
            'concurrentWorkers': 4,
            'queue': queue,
            'connector': {'type': 'redis', 'url': url},
            'scaling': {
                'minReplicas': 0,
                'maxReplicas': 20,
                'tasksPerReplica': 50,
                'pollingIntervalSeconds': POLL_SECONDS,
                'cooldownSeconds': 3,
                'scaleDownStabilizationSeconds': 2,
                **scaling,
            },
        },
    }


@pytest.fixture
def objects(kube: Kube) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube.api_client)


@pytest.fixture
def queue() -> str:
    return f'crawl-{uuid.uuid4().hex[:8]}'


@pytest.fixture
def broker(redis_server: RedisServer, queue: str) -> Iterator[Connector]:
    connector = create_connector('redis', {'url': redis_server.url})
    yield connector
    connector.delete(queue)
    connector.close()


def create(objects: client.CustomObjectsApi, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    return created


def condition(obj: dict[str, Any], kind: str) -> tuple[str, str] | None:
    for entry in (obj.get('status') or {}).get('conditions') or []:
        if entry['type'] == kind:
            return entry['status'], entry['reason']
    return None


def reconciles(running: RunningOperator, namespace: str, name: str) -> float:
    labels = {'namespace': namespace, 'name': name}
    value = running.operator.metrics.registry.get_sample_value('sergeant_operator_reconciles_total', labels)
    return value or 0.0


@dataclasses.dataclass(frozen=True)
class Cluster:
    """The test's namespace on the API server and its queue on Redis, with the lookups the tests share."""

    kube: Kube
    objects: client.CustomObjectsApi
    namespace: str
    broker_url: str
    queue: str

    def create(
        self, name: str, *, url: str | None = None, connector: dict[str, Any] | None = None, **scaling: int
    ) -> dict[str, Any]:
        """Create the SergeantWorker ``name`` on the test's queue (on ``url`` or the test's Redis)."""
        body = worker_body(name, url or self.broker_url, self.queue, **scaling)
        if connector is not None:
            body['spec']['connector'] = connector
        return create(self.objects, self.namespace, body)

    def create_secret(self, name: str, data: dict[str, str]) -> None:
        encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
        secret = {'apiVersion': 'v1', 'kind': 'Secret', 'metadata': {'name': name}, 'data': encoded}
        client.CoreV1Api(self.kube.api_client).create_namespaced_secret(self.namespace, secret)

    def replicas(self, name: str) -> int | None:
        deployment = self.kube.get_deployment(self.namespace, name)
        return None if deployment is None else int(deployment['spec']['replicas'])

    def await_replicas(self, name: str, count: int, what: str, deadline: float = DEADLINE) -> None:
        eventually(lambda: self.replicas(name) == count, what, deadline)

    def worker_once(self, name: str, check: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """The SergeantWorker as soon as ``check`` holds for it."""

        def attempt() -> dict[str, Any] | None:
            worker: dict[str, Any] = self.kube.get_worker(self.namespace, name)
            return worker if check(worker) else None

        found: dict[str, Any] = eventually(attempt, what)
        return found

    def events(self, name: str) -> list[dict[str, Any]]:
        listing = self.objects.list_namespaced_custom_object('events.k8s.io', 'v1', self.namespace, 'events')
        return [event for event in listing['items'] if (event.get('regarding') or {}).get('name') == name]


@pytest.fixture
def cluster(
    kube: Kube, objects: client.CustomObjectsApi, kube_namespace: str, redis_server: RedisServer, queue: str
) -> Cluster:
    return Cluster(kube, objects, kube_namespace, redis_server.url, queue)


# -- the CRD's contract -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('change', 'complaint'),
    [
        pytest.param(lambda spec: spec.pop('image'), 'spec.image', id='no-image'),
        pytest.param(lambda spec: spec.update(workerClass='Crawler()'), 'spec.workerClass', id='bad-class'),
        pytest.param(
            lambda spec: spec.update(workerModule='app/workers'), 'spec.workerModule', id='bad-module'
        ),
        pytest.param(
            lambda spec: spec.update(signingKeySecretRef={'key': 'k'}),
            'spec.signingKeySecretRef.name',
            id='signing-key-without-secret',
        ),
        pytest.param(
            lambda spec: spec.update(concurrentWorkers=0), 'spec.concurrentWorkers', id='no-workers'
        ),
        pytest.param(
            lambda spec: spec['connector'].update(type='local'), 'spec.connector.type', id='local-broker'
        ),
        pytest.param(
            lambda spec: spec['connector'].update(secretRef={'name': 'broker'}),
            'spec.connector',
            id='url-and-secret',
        ),
        pytest.param(
            lambda spec: spec['connector'].update(url='mongodb://db:27017'),
            'url must use a scheme',
            id='scheme-mismatch',
        ),
        pytest.param(
            lambda spec: spec['scaling'].update(minReplicas=5, maxReplicas=2),
            'minReplicas must not exceed',
            id='min-above-max',
        ),
        pytest.param(
            lambda spec: spec['scaling'].update(tasksPerReplica=0),
            'spec.scaling.tasksPerReplica',
            id='no-tasks-per-replica',
        ),
        pytest.param(
            lambda spec: spec.update(maxWorkerMemoryUsage='lots'),
            'spec.maxWorkerMemoryUsage',
            id='bad-memory',
        ),
    ],
)
def test_the_api_server_rejects_an_invalid_worker(
    objects: client.CustomObjectsApi,
    kube_namespace: str,
    change: Callable[[dict[str, Any]], object],
    complaint: str,
) -> None:
    body = worker_body('invalid', 'redis://broker:6379/0', 'crawl')
    change(body['spec'])

    with pytest.raises(ApiException) as rejected:
        create(objects, kube_namespace, body)

    assert rejected.value.status == 422
    assert complaint in rejected.value.body


def test_the_api_server_fills_in_the_defaults(objects: client.CustomObjectsApi, kube_namespace: str) -> None:
    body = worker_body('defaults', 'redis://broker:6379/0', 'crawl')
    del body['spec']['scaling'], body['spec']['concurrentWorkers']
    body['spec']['connector'] = {'type': 'redis', 'secretRef': {'name': 'broker'}}
    body['spec']['signingKeySecretRef'] = {'name': 'broker'}
    body['spec']['workerModule'] = 'examples.1_producer.consumer'  # 0.27's example layout

    created = create(objects, kube_namespace, body)

    assert created['spec']['concurrentWorkers'] == 1
    assert created['spec']['connector']['secretRef'] == {'name': 'broker', 'key': 'url'}
    assert created['spec']['signingKeySecretRef'] == {'name': 'broker', 'key': 'signing-key'}
    assert created['spec']['scaling'] == {
        'minReplicas': 0,
        'maxReplicas': 10,
        'tasksPerReplica': 10,
        'activationQueueLength': 0,
        'pollingIntervalSeconds': 30,
        'cooldownSeconds': 300,
        'scaleDownStabilizationSeconds': 300,
    }


# -- deploying and scaling ----------------------------------------------------------------------


def test_a_worker_gets_an_owned_deployment_running_the_supervisor(
    start_operator: Callable[..., RunningOperator], cluster: Cluster
) -> None:
    start_operator()
    created = cluster.create('crawler', minReplicas=1)

    deployment = eventually(
        lambda: cluster.kube.get_deployment(cluster.namespace, 'crawler'), 'the Deployment exists'
    )

    [owner] = deployment['metadata']['ownerReferences']
    assert (owner['kind'], owner['name'], owner['uid'], owner['controller']) == (
        'SergeantWorker',
        'crawler',
        created['metadata']['uid'],
        True,
    )
    managers = {(entry['manager'], entry['operation']) for entry in deployment['metadata']['managedFields']}
    assert ('sergeant-operator', 'Apply') in managers
    assert deployment['spec']['replicas'] == 1
    assert deployment['spec']['selector'] == {'matchLabels': {'sergeant.io/worker': 'crawler'}}
    [container] = deployment['spec']['template']['spec']['containers']
    assert container['command'][:2] == ['sergeant', 'supervise']
    assert container['command'][container['command'].index('--concurrent-workers') + 1] == '4'
    assert container['ports'][0]['containerPort'] == 9808
    assert container['readinessProbe']['httpGet']['path'] == '/readyz'
    assert {'name': 'SERGEANT_BROKER_URL', 'value': cluster.broker_url} in container['env']


def test_fields_of_other_managers_are_kept_and_the_operator_s_restored(
    start_operator: Callable[..., RunningOperator], cluster: Cluster
) -> None:
    running = start_operator()
    cluster.create('shared-fields', minReplicas=1)
    eventually(
        lambda: cluster.kube.get_deployment(cluster.namespace, 'shared-fields'), 'the Deployment exists'
    )

    # someone else annotates the Deployment and scales it by hand
    patch = {'metadata': {'annotations': {'team.example/owner': 'search'}}, 'spec': {'replicas': 7}}
    client.AppsV1Api(cluster.kube.api_client).patch_namespaced_deployment(
        'shared-fields', cluster.namespace, patch, field_manager='kubectl-edit'
    )
    polls = reconciles(running, cluster.namespace, 'shared-fields')
    eventually(lambda: reconciles(running, cluster.namespace, 'shared-fields') >= polls + 2, 'two more polls')

    deployment = cluster.kube.get_deployment(cluster.namespace, 'shared-fields')
    assert deployment is not None
    assert deployment['metadata']['annotations']['team.example/owner'] == 'search'
    assert deployment['spec']['replicas'] == 1  # the operator owns the size


def test_replicas_follow_the_queue_up_and_back_to_zero(
    start_operator: Callable[..., RunningOperator], cluster: Cluster, broker: Connector
) -> None:
    start_operator()
    cluster.create('scaler')
    cluster.await_replicas('scaler', 0, 'the pool starts at zero')

    broker.push(cluster.queue, [b'task'] * 500)

    # the next poll sees them: within two polling intervals (plus slack for a loaded machine)
    cluster.await_replicas(
        'scaler', 10, '500 tasks / 50 per replica = 10 replicas', deadline=2 * POLL_SECONDS + 5
    )
    worker = cluster.worker_once(
        'scaler', lambda w: w.get('status', {}).get('desiredReplicas') == 10, 'status'
    )
    status = worker['status']
    assert (status['queueLength'], status['inFlight']) == (500, 0)
    # publishing the decision in spec.replicas is a new generation, which the operator observes next
    cluster.worker_once(
        'scaler',
        lambda w: w['status']['observedGeneration'] == w['metadata']['generation'],
        'the latest generation is observed',
    )
    assert status['lastScaleTime']
    assert condition(worker, 'BrokerReachable') == ('True', 'QueueRead')
    assert condition(worker, 'Ready') == ('False', 'WaitingForPods')  # no kubelet: pods never come
    scale = cluster.objects.get_namespaced_custom_object_scale(
        GROUP, VERSION, cluster.namespace, PLURAL, 'scaler'
    )
    assert scale['spec']['replicas'] == 10
    assert scale['status']['selector'] == 'sergeant.io/worker=scaler'

    broker.delete(cluster.queue)

    cluster.await_replicas('scaler', 0, 'back to zero after the cooldown')
    cluster.worker_once('scaler', lambda w: condition(w, 'Ready') == ('True', 'ScaledToZero'), 'status')
    reasons = [event['reason'] for event in cluster.events('scaler')]
    assert 'Scaled' in reasons


def test_an_idle_pool_returns_to_its_minimum(
    start_operator: Callable[..., RunningOperator], cluster: Cluster, broker: Connector
) -> None:
    start_operator()
    broker.push(cluster.queue, [b'task'] * 250)
    cluster.create('floor', minReplicas=2)
    cluster.await_replicas('floor', 5, 'scaled up to 5')

    broker.delete(cluster.queue)

    cluster.await_replicas('floor', 2, 'back to minReplicas')


def test_an_unreachable_broker_keeps_the_replicas_and_raises_an_event(
    start_operator: Callable[..., RunningOperator], cluster: Cluster, tmp_path: Path
) -> None:
    running = start_operator()
    with running_redis(tmp_path / 'redis') as flaky:
        connector = create_connector('redis', {'url': flaky.url})
        connector.push(cluster.queue, [b'task'] * 120)
        connector.close()
        cluster.create('flaky', url=flaky.url)
        cluster.await_replicas('flaky', 3, 'scaled up to 3')

        flaky.stop()

        worker = cluster.worker_once(
            'flaky',
            lambda w: condition(w, 'BrokerReachable') == ('False', 'BrokerUnreachable'),
            'BrokerReachable=False',
        )
        # polls with the broker down for longer than the cooldown: the size holds
        polls = reconciles(running, cluster.namespace, 'flaky')
        eventually(lambda: reconciles(running, cluster.namespace, 'flaky') >= polls + 3, 'three more polls')
        assert cluster.replicas('flaky') == 3
        assert worker['status']['desiredReplicas'] == 3
        warnings = [e for e in cluster.events('flaky') if e['type'] == 'Warning']
        assert [e['reason'] for e in warnings] == ['BrokerUnreachable']

        flaky.start()

        cluster.worker_once(
            'flaky',
            lambda w: condition(w, 'BrokerReachable') == ('True', 'QueueRead'),
            'the broker is reachable again',
        )


def test_the_broker_url_is_taken_from_a_secret(
    start_operator: Callable[..., RunningOperator], cluster: Cluster, broker: Connector
) -> None:
    cluster.create_secret('broker', {'dsn': cluster.broker_url})
    broker.push(cluster.queue, [b'task'] * 75)
    start_operator()

    cluster.create('secretive', connector={'type': 'redis', 'secretRef': {'name': 'broker', 'key': 'dsn'}})

    cluster.await_replicas('secretive', 2, 'scaled from the secret URL')
    deployment = cluster.kube.get_deployment(cluster.namespace, 'secretive')
    assert deployment is not None
    [container] = deployment['spec']['template']['spec']['containers']
    reference = {'secretKeyRef': {'name': 'broker', 'key': 'dsn'}}
    assert {'name': 'SERGEANT_BROKER_URL', 'valueFrom': reference} in container['env']


# -- two replicas -------------------------------------------------------------------------------


def test_two_operators_never_both_act(
    start_operator: Callable[..., RunningOperator], cluster: Cluster, broker: Connector
) -> None:
    first, second = start_operator('operator-a'), start_operator('operator-b')
    leader = eventually(lambda: next((op for op in (first, second) if op.leads), None), 'a leader is elected')
    standby = second if leader is first else first
    broker.push(cluster.queue, [b'task'] * 100)
    cluster.create('shared')

    cluster.await_replicas('shared', 2, 'the leader scaled')
    assert not any(first.leads and second.leads for _ in _samples(100))
    assert standby.operator.controller is None  # the standby watches nothing
    eventually(
        lambda: {e['reportingInstance'] for e in cluster.events('shared')} == {leader.identity},
        'only the leader reports',
    )

    leader.halt()  # releases the Lease

    eventually(lambda: standby.leads, 'the standby takes over')
    broker.push(cluster.queue, [b'task'] * 100)
    cluster.await_replicas('shared', 4, 'the new leader scaled')
    eventually(
        lambda: (
            {e['reportingInstance'] for e in cluster.events('shared')} == {leader.identity, standby.identity}
        ),
        'the new leader reports its decision',
    )


def test_a_leader_cut_off_from_the_api_stops_before_the_standby_starts(
    start_operator: Callable[..., RunningOperator], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = start_operator('operator-a'), start_operator('operator-b')
    leader = eventually(lambda: next((op for op in (first, second) if op.leads), None), 'a leader is elected')
    standby = second if leader is first else first

    def partitioned(*args: object, **kwargs: object) -> None:
        raise KubeError(0, 'Partitioned', 'the API server cannot be reached')

    monkeypatch.setattr(leader.operator.kube, 'get_lease', partitioned)
    monkeypatch.setattr(leader.operator.kube, 'replace_lease', partitioned)

    overlaps = 0
    for _ in _samples(10_000):
        overlaps += first.leads and second.leads
        if standby.leads:
            break
    assert standby.leads, 'the standby never took over'
    assert overlaps == 0, 'both replicas led at once'
    assert not leader.leads
    assert leader.operator.controller is None  # its loops were stopped when its leadership ran out


def _samples(count: int, interval: float = 0.01) -> Iterator[int]:
    """``count`` sampling moments ``interval`` seconds apart."""
    for index in range(count):
        yield index
        time.sleep(interval)


# -- least privilege ----------------------------------------------------------------------------


def test_the_rbac_manifests_grant_all_the_operator_needs(
    start_operator: Callable[..., RunningOperator],
    cluster: Cluster,
    kube_api: KubeAPIServer,
    broker: Connector,
    tmp_path: Path,
) -> None:
    """An operator running as a service account bound to role.yaml and leader-election.yaml works."""
    namespace = cluster.namespace
    core = client.CoreV1Api(cluster.kube.api_client)
    core.create_namespaced_service_account(namespace, {'metadata': {'name': 'sergeant-operator'}})
    for manifest in ('role.yaml', 'leader-election.yaml'):
        for document in yaml.safe_load_all((RBAC / manifest).read_text()):
            document['metadata']['namespace'] = namespace
            for subject in document.get('subjects', []):
                subject['namespace'] = namespace
            plural = 'roles' if document['kind'] == 'Role' else 'rolebindings'
            cluster.objects.create_namespaced_custom_object(
                'rbac.authorization.k8s.io', 'v1', namespace, plural, document
            )
    token = core.create_namespaced_service_account_token(
        'sergeant-operator', namespace, {'spec': {'expirationSeconds': 3600}}
    ).status.token
    kubeconfig = service_account_kubeconfig(tmp_path, kube_api, token)
    running = start_operator('least-privileged', api_client=load_api_client(str(kubeconfig)))
    cluster.create_secret('broker', {'url': cluster.broker_url})
    broker.push(cluster.queue, [b'task'] * 60)

    cluster.create('restricted', connector={'type': 'redis', 'secretRef': {'name': 'broker'}})

    cluster.await_replicas('restricted', 2, 'scaled as the service account')
    cluster.worker_once('restricted', lambda w: w['spec'].get('replicas') == 2, 'scale written')
    cluster.worker_once(
        'restricted', lambda w: condition(w, 'BrokerReachable') == ('True', 'QueueRead'), 'status written'
    )
    assert [event['reason'] for event in cluster.events('restricted')] == ['Created']
    errors = running.operator.metrics.registry.get_sample_value(
        'sergeant_operator_reconcile_errors_total',
        {'namespace': namespace, 'name': 'restricted', 'reason': 'KubernetesApi'},
    )
    assert not errors


def service_account_kubeconfig(directory: Path, server: KubeAPIServer, token: str) -> Path:
    path = directory / 'service-account.kubeconfig'
    config = {
        'apiVersion': 'v1',
        'kind': 'Config',
        'clusters': [
            {'name': 'test', 'cluster': {'server': server.url, 'certificate-authority': str(server.ca_path)}}
        ],
        'users': [{'name': 'operator', 'user': {'token': token}}],
        'contexts': [{'name': 'test', 'context': {'cluster': 'test', 'user': 'operator'}}],
        'current-context': 'test',
    }
    path.write_text(json.dumps(config))
    return path
