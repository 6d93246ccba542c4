"""The operator against a real API server and a real Redis: the CRD's contract, deploying, scaling.

There is no kubelet or controller-manager: Deployments never get pods, so the
tests assert on the Deployment's spec and the SergeantWorker's status.
"""

from __future__ import annotations

import base64
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
from tests.operator.conftest import RunningOperator, eventually
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


def deployment_replicas(kube: Kube, namespace: str, name: str) -> int | None:
    deployment = kube.get_deployment(namespace, name)
    return None if deployment is None else int(deployment['spec']['replicas'])


def worker_once(
    kube: Kube, namespace: str, name: str, check: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """The SergeantWorker as soon as ``check`` holds for it."""

    def attempt() -> dict[str, Any] | None:
        worker: dict[str, Any] = kube.get_worker(namespace, name)
        return worker if check(worker) else None

    found: dict[str, Any] = eventually(attempt, what)
    return found


def condition(obj: dict[str, Any], kind: str) -> tuple[str, str] | None:
    for entry in (obj.get('status') or {}).get('conditions') or []:
        if entry['type'] == kind:
            return entry['status'], entry['reason']
    return None


def reconciles(running: RunningOperator, namespace: str, name: str) -> float:
    labels = {'namespace': namespace, 'name': name}
    value = running.operator.metrics.registry.get_sample_value('sergeant_operator_reconciles_total', labels)
    return value or 0.0


def events_of(kube: Kube, namespace: str, name: str) -> list[dict[str, Any]]:
    listing = client.CustomObjectsApi(kube.api_client).list_namespaced_custom_object(
        'events.k8s.io', 'v1', namespace, 'events'
    )
    return [event for event in listing['items'] if (event.get('regarding') or {}).get('name') == name]


# -- the CRD's contract -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('change', 'complaint'),
    [
        pytest.param(lambda spec: spec.pop('image'), 'spec.image', id='no-image'),
        pytest.param(lambda spec: spec.update(workerClass='Crawler()'), 'spec.workerClass', id='bad-class'),
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

    created = create(objects, kube_namespace, body)

    assert created['spec']['concurrentWorkers'] == 1
    assert created['spec']['connector']['secretRef'] == {'name': 'broker', 'key': 'url'}
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
    start_operator: Callable[..., RunningOperator],
    objects: client.CustomObjectsApi,
    kube: Kube,
    kube_namespace: str,
    redis_server: RedisServer,
    queue: str,
) -> None:
    start_operator()
    created = create(objects, kube_namespace, worker_body('crawler', redis_server.url, queue, minReplicas=1))

    deployment = eventually(lambda: kube.get_deployment(kube_namespace, 'crawler'), 'the Deployment exists')

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
    assert {'name': 'SERGEANT_BROKER_URL', 'value': redis_server.url} in container['env']


def test_fields_of_other_managers_are_kept_and_the_operator_s_restored(
    start_operator: Callable[..., RunningOperator],
    objects: client.CustomObjectsApi,
    kube: Kube,
    kube_namespace: str,
    redis_server: RedisServer,
    queue: str,
) -> None:
    running = start_operator()
    create(objects, kube_namespace, worker_body('shared-fields', redis_server.url, queue, minReplicas=1))
    eventually(lambda: kube.get_deployment(kube_namespace, 'shared-fields'), 'the Deployment exists')

    # someone else annotates the Deployment and scales it by hand
    patch = {'metadata': {'annotations': {'team.example/owner': 'search'}}, 'spec': {'replicas': 7}}
    client.AppsV1Api(kube.api_client).patch_namespaced_deployment(
        'shared-fields', kube_namespace, patch, field_manager='kubectl-edit'
    )
    polls = reconciles(running, kube_namespace, 'shared-fields')
    eventually(lambda: reconciles(running, kube_namespace, 'shared-fields') >= polls + 2, 'two more polls')

    deployment = kube.get_deployment(kube_namespace, 'shared-fields')
    assert deployment is not None
    assert deployment['metadata']['annotations']['team.example/owner'] == 'search'
    assert deployment['spec']['replicas'] == 1  # the operator owns the size


def test_replicas_follow_the_queue_up_and_back_to_zero(
    start_operator: Callable[..., RunningOperator],
    objects: client.CustomObjectsApi,
    kube: Kube,
    kube_namespace: str,
    redis_server: RedisServer,
    broker: Connector,
    queue: str,
) -> None:
    start_operator()
    create(objects, kube_namespace, worker_body('scaler', redis_server.url, queue))
    eventually(lambda: deployment_replicas(kube, kube_namespace, 'scaler') == 0, 'the pool starts at zero')

    broker.push(queue, [b'task'] * 500)

    # the next poll sees them: within two polling intervals (plus slack for a loaded machine)
    eventually(
        lambda: deployment_replicas(kube, kube_namespace, 'scaler') == 10,
        '500 tasks / 50 per replica = 10 replicas',
        deadline=2 * POLL_SECONDS + 5,
    )
    worker = worker_once(
        kube, kube_namespace, 'scaler', lambda w: w.get('status', {}).get('desiredReplicas') == 10, 'status'
    )
    status = worker['status']
    assert (status['queueLength'], status['inFlight']) == (500, 0)
    # publishing the decision in spec.replicas is a new generation, which the operator observes next
    worker_once(
        kube,
        kube_namespace,
        'scaler',
        lambda w: w['status']['observedGeneration'] == w['metadata']['generation'],
        'the latest generation is observed',
    )
    assert status['lastScaleTime']
    assert condition(worker, 'BrokerReachable') == ('True', 'QueueRead')
    assert condition(worker, 'Ready') == ('False', 'WaitingForPods')  # no kubelet: pods never come
    scale = objects.get_namespaced_custom_object_scale(GROUP, VERSION, kube_namespace, PLURAL, 'scaler')
    assert scale['spec']['replicas'] == 10
    assert scale['status']['selector'] == 'sergeant.io/worker=scaler'

    broker.delete(queue)

    eventually(
        lambda: deployment_replicas(kube, kube_namespace, 'scaler') == 0, 'back to zero after the cooldown'
    )
    worker_once(
        kube, kube_namespace, 'scaler', lambda w: condition(w, 'Ready') == ('True', 'ScaledToZero'), 'status'
    )
    reasons = [event['reason'] for event in events_of(kube, kube_namespace, 'scaler')]
    assert 'Scaled' in reasons


def test_an_idle_pool_returns_to_its_minimum(
    start_operator: Callable[..., RunningOperator],
    objects: client.CustomObjectsApi,
    kube: Kube,
    kube_namespace: str,
    redis_server: RedisServer,
    broker: Connector,
    queue: str,
) -> None:
    start_operator()
    broker.push(queue, [b'task'] * 250)
    create(objects, kube_namespace, worker_body('floor', redis_server.url, queue, minReplicas=2))
    eventually(lambda: deployment_replicas(kube, kube_namespace, 'floor') == 5, 'scaled up to 5')

    broker.delete(queue)

    eventually(lambda: deployment_replicas(kube, kube_namespace, 'floor') == 2, 'back to minReplicas')


def test_an_unreachable_broker_keeps_the_replicas_and_raises_an_event(
    start_operator: Callable[..., RunningOperator],
    objects: client.CustomObjectsApi,
    kube: Kube,
    kube_namespace: str,
    tmp_path: Path,
    queue: str,
) -> None:
    running = start_operator()
    with running_redis(tmp_path / 'redis') as flaky:
        connector = create_connector('redis', {'url': flaky.url})
        connector.push(queue, [b'task'] * 120)
        connector.close()
        create(objects, kube_namespace, worker_body('flaky', flaky.url, queue))
        eventually(lambda: deployment_replicas(kube, kube_namespace, 'flaky') == 3, 'scaled up to 3')

        flaky.stop()

        worker = worker_once(
            kube,
            kube_namespace,
            'flaky',
            lambda w: condition(w, 'BrokerReachable') == ('False', 'BrokerUnreachable'),
            'BrokerReachable=False',
        )
        # polls with the broker down for longer than the cooldown: the size holds
        polls = reconciles(running, kube_namespace, 'flaky')
        eventually(lambda: reconciles(running, kube_namespace, 'flaky') >= polls + 3, 'three more polls')
        assert deployment_replicas(kube, kube_namespace, 'flaky') == 3
        assert worker['status']['desiredReplicas'] == 3
        warnings = [e for e in events_of(kube, kube_namespace, 'flaky') if e['type'] == 'Warning']
        assert [e['reason'] for e in warnings] == ['BrokerUnreachable']

        flaky.start()

        eventually(
            lambda: (
                condition(kube.get_worker(kube_namespace, 'flaky'), 'BrokerReachable')
                == ('True', 'QueueRead')
            ),
            'the broker is reachable again',
        )


def test_the_broker_url_is_taken_from_a_secret(
    start_operator: Callable[..., RunningOperator],
    objects: client.CustomObjectsApi,
    kube: Kube,
    kube_namespace: str,
    redis_server: RedisServer,
    broker: Connector,
    queue: str,
) -> None:
    client.CoreV1Api(kube.api_client).create_namespaced_secret(
        kube_namespace,
        {
            'apiVersion': 'v1',
            'kind': 'Secret',
            'metadata': {'name': 'broker'},
            'data': {'dsn': base64.b64encode(redis_server.url.encode()).decode()},
        },
    )
    body = worker_body('secretive', redis_server.url, queue)
    body['spec']['connector'] = {'type': 'redis', 'secretRef': {'name': 'broker', 'key': 'dsn'}}
    broker.push(queue, [b'task'] * 75)
    start_operator()

    create(objects, kube_namespace, body)

    eventually(
        lambda: deployment_replicas(kube, kube_namespace, 'secretive') == 2, 'scaled from the secret URL'
    )
    deployment = kube.get_deployment(kube_namespace, 'secretive')
    assert deployment is not None
    [container] = deployment['spec']['template']['spec']['containers']
    reference = {'secretKeyRef': {'name': 'broker', 'key': 'dsn'}}
    assert {'name': 'SERGEANT_BROKER_URL', 'valueFrom': reference} in container['env']


# -- two replicas -------------------------------------------------------------------------------


def test_two_operators_never_both_act(
    start_operator: Callable[..., RunningOperator],
    objects: client.CustomObjectsApi,
    kube: Kube,
    kube_namespace: str,
    redis_server: RedisServer,
    broker: Connector,
    queue: str,
) -> None:
    first, second = start_operator('operator-a'), start_operator('operator-b')
    leader = eventually(lambda: next((op for op in (first, second) if op.leads), None), 'a leader is elected')
    standby = second if leader is first else first
    broker.push(queue, [b'task'] * 100)
    create(objects, kube_namespace, worker_body('shared', redis_server.url, queue))

    eventually(lambda: deployment_replicas(kube, kube_namespace, 'shared') == 2, 'the leader scaled')
    assert not any(first.leads and second.leads for _ in _samples(100))
    assert standby.operator.controller is None  # the standby watches nothing
    eventually(
        lambda: (
            {e['reportingInstance'] for e in events_of(kube, kube_namespace, 'shared')} == {leader.identity}
        ),
        'only the leader reports',
    )

    leader.halt()  # releases the Lease

    eventually(lambda: standby.leads, 'the standby takes over')
    broker.push(queue, [b'task'] * 100)
    eventually(lambda: deployment_replicas(kube, kube_namespace, 'shared') == 4, 'the new leader scaled')
    eventually(
        lambda: (
            {e['reportingInstance'] for e in events_of(kube, kube_namespace, 'shared')}
            == {leader.identity, standby.identity}
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
    objects: client.CustomObjectsApi,
    kube: Kube,
    kube_api: KubeAPIServer,
    kube_namespace: str,
    redis_server: RedisServer,
    broker: Connector,
    queue: str,
    tmp_path: Path,
) -> None:
    """An operator running as a service account bound to role.yaml and leader-election.yaml works."""
    core = client.CoreV1Api(kube.api_client)
    core.create_namespaced_service_account(kube_namespace, {'metadata': {'name': 'sergeant-operator'}})
    for manifest in ('role.yaml', 'leader-election.yaml'):
        for document in yaml.safe_load_all((RBAC / manifest).read_text()):
            document['metadata']['namespace'] = kube_namespace
            for subject in document.get('subjects', []):
                subject['namespace'] = kube_namespace
            plural = 'roles' if document['kind'] == 'Role' else 'rolebindings'
            objects.create_namespaced_custom_object(
                'rbac.authorization.k8s.io', 'v1', kube_namespace, plural, document
            )
    token = core.create_namespaced_service_account_token(
        'sergeant-operator', kube_namespace, {'spec': {'expirationSeconds': 3600}}
    ).status.token
    kubeconfig = service_account_kubeconfig(tmp_path, kube_api, token)
    running = start_operator('least-privileged', api_client=load_api_client(str(kubeconfig)))
    core.create_namespaced_secret(
        kube_namespace,
        {
            'metadata': {'name': 'broker'},
            'data': {'url': base64.b64encode(redis_server.url.encode()).decode()},
        },
    )
    body = worker_body('restricted', redis_server.url, queue)
    body['spec']['connector'] = {'type': 'redis', 'secretRef': {'name': 'broker'}}
    broker.push(queue, [b'task'] * 60)

    create(objects, kube_namespace, body)

    eventually(
        lambda: deployment_replicas(kube, kube_namespace, 'restricted') == 2, 'scaled as the service account'
    )
    worker_once(kube, kube_namespace, 'restricted', lambda w: w['spec'].get('replicas') == 2, 'scale written')
    worker_once(
        kube,
        kube_namespace,
        'restricted',
        lambda w: condition(w, 'BrokerReachable') == ('True', 'QueueRead'),
        'status written',
    )
    assert [event['reason'] for event in events_of(kube, kube_namespace, 'restricted')] == ['Created']
    errors = running.operator.metrics.registry.get_sample_value(
        'sergeant_operator_reconcile_errors_total',
        {'namespace': kube_namespace, 'name': 'restricted', 'reason': 'KubernetesApi'},
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
