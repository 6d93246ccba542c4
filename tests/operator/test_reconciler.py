"""One reconciliation against an emulated API server (kmock): which calls it makes, and with what."""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sergeant_operator.events import EventReporter
from sergeant_operator.metrics import OperatorMetrics
from sergeant_operator.queue import QueueReader
from sergeant_operator.reconciler import WorkerReconciler

from sergeant.connector import Connector, create_connector
from sergeant.connector.local import LocalConnector
from sergeant.errors import ConnectorError
from tests.operator.kmock_api import EmulatedApi, emulated_api

WORKERS = 'sergeant.io/v1alpha1/sergeantworkers'
DEPLOYMENTS = 'apps/v1/deployments'
NAMESPACE = 'jobs'


class SwitchableConnector(LocalConnector):
    """The local broker, made unreachable on demand."""

    unreachable = False

    def length(self, queue: str, include_delayed: bool = False) -> int:
        if SwitchableConnector.unreachable:
            raise ConnectorError('connection refused')
        return super().length(queue, include_delayed)


def worker_object(name: str = 'crawler', **spec: Any) -> dict[str, Any]:
    return {
        'apiVersion': 'sergeant.io/v1alpha1',
        'kind': 'SergeantWorker',
        'metadata': {'name': name, 'namespace': NAMESPACE, 'uid': f'uid-{name}', 'generation': 1},
        'spec': {
            'image': 'registry.example/crawler:1',
            'workerModule': 'app.workers',
            'workerClass': 'Crawler',
            'queue': 'crawl',
            'connector': {'type': 'redis', 'url': 'redis://broker:6379/0'},
            'scaling': {'minReplicas': 0, 'maxReplicas': 10, 'tasksPerReplica': 10, 'cooldownSeconds': 60},
            **spec,
        },
    }


@pytest.fixture
def api() -> Iterator[EmulatedApi]:
    with emulated_api() as emulated:
        yield emulated


@pytest.fixture
def broker_path(tmp_path: Path) -> str:
    SwitchableConnector.unreachable = False
    return str(tmp_path / 'broker.sqlite3')


@pytest.fixture
def broker(broker_path: str) -> Iterator[Connector]:
    connector = create_connector('local', {'file_path': broker_path})
    yield connector
    connector.close()


class Harness:
    """A reconciler whose broker is a local SQLite file, whatever the resource's connector says."""

    def __init__(self, api: EmulatedApi, broker_path: str, leading: bool = True) -> None:
        self.api = api
        self.kube = api.kube()
        self.leading = leading
        self.urls: list[str] = []

        def connect(kind: str, params: Mapping[str, Any]) -> Connector:
            self.urls.append(params['url'])
            return SwitchableConnector.from_params({'file_path': broker_path})

        self.reader = QueueReader(self.kube.read_secret_value, connect)
        self.metrics = OperatorMetrics()
        self.reconciler = WorkerReconciler(
            self.kube, self.reader, self.metrics, EventReporter(self.kube, 'op-1'), lambda: self.leading
        )

    def reconcile(self, name: str = 'crawler') -> dict[str, Any]:
        obj = self.api.object(WORKERS, NAMESPACE, name)
        assert obj is not None
        self.reconciler.reconcile(copy.deepcopy(obj))
        refreshed = self.api.object(WORKERS, NAMESPACE, name)
        assert refreshed is not None
        return refreshed

    def deployment(self, name: str = 'crawler') -> dict[str, Any] | None:
        return self.api.object(DEPLOYMENTS, NAMESPACE, name)


def conditions(obj: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    return {c['type']: (c['status'], c['reason']) for c in obj['status']['conditions']}


def push(broker: Connector, count: int) -> None:
    broker.push('crawl', [b'task'] * count)


@pytest.fixture
def harness(api: EmulatedApi, broker_path: str) -> Harness:
    return Harness(api, broker_path)


def test_a_new_worker_gets_an_owned_deployment_applied_server_side(
    harness: Harness, broker: Connector
) -> None:
    harness.api.put_object(WORKERS, NAMESPACE, 'crawler', worker_object())
    push(broker, 25)

    harness.reconcile()

    [apply] = [r for r in harness.api.writes() if r.url.path.endswith('/deployments/crawler')]
    assert apply.headers['Content-Type'] == 'application/apply-patch+yaml'
    assert dict(apply.params) == {'fieldManager': 'sergeant-operator', 'force': 'true'}
    deployment = harness.deployment()
    assert deployment is not None
    assert deployment['spec']['replicas'] == 3  # ceil(25 / 10)
    [owner] = deployment['metadata']['ownerReferences']
    assert owner == {
        'apiVersion': 'sergeant.io/v1alpha1',
        'kind': 'SergeantWorker',
        'name': 'crawler',
        'uid': 'uid-crawler',
        'controller': True,
        'blockOwnerDeletion': True,
    }


def test_status_scale_and_event_are_written_through_their_subresources(
    harness: Harness, broker: Connector
) -> None:
    harness.api.put_object(WORKERS, NAMESPACE, 'crawler', worker_object())
    push(broker, 25)

    worker = harness.reconcile()

    paths = [(str(r.method.value).upper(), r.url.path) for r in harness.api.writes()]
    base = f'/apis/sergeant.io/v1alpha1/namespaces/{NAMESPACE}/sergeantworkers/crawler'
    assert ('PATCH', f'{base}/scale') in paths
    assert ('PATCH', f'{base}/status') in paths
    assert ('POST', f'/apis/events.k8s.io/v1/namespaces/{NAMESPACE}/events') in paths
    assert worker['spec']['replicas'] == 3
    status = worker['status']
    assert (status['queueLength'], status['inFlight'], status['desiredReplicas']) == (25, 0, 3)
    assert status['observedGeneration'] == 1
    assert status['selector'] == 'sergeant.io/worker=crawler'
    assert conditions(worker) == {
        'Ready': ('False', 'WaitingForPods'),
        'Scaling': ('True', 'ScalingUp'),
        'BrokerReachable': ('True', 'QueueRead'),
    }


def test_in_flight_tasks_count_towards_the_replicas(harness: Harness, broker: Connector) -> None:
    harness.api.put_object(WORKERS, NAMESPACE, 'crawler', worker_object())
    push(broker, 30)
    broker.pop('crawl', 15, lease_seconds=60)

    worker = harness.reconcile()

    assert (worker['status']['queueLength'], worker['status']['inFlight']) == (15, 15)
    deployment = harness.deployment()
    assert deployment is not None and deployment['spec']['replicas'] == 3


def test_an_unchanged_status_is_not_written_again(harness: Harness, broker: Connector) -> None:
    harness.api.put_object(WORKERS, NAMESPACE, 'crawler', worker_object())
    push(broker, 25)
    harness.reconcile()
    before = len(harness.api.writes())

    harness.reconcile()

    new = harness.api.writes()[before:]
    assert [r.url.path.rsplit('/', 1)[-1] for r in new] == ['crawler']  # only the idempotent apply


def test_an_unreachable_broker_keeps_the_replicas_and_warns_once(harness: Harness, broker: Connector) -> None:
    harness.api.put_object(WORKERS, NAMESPACE, 'crawler', worker_object())
    push(broker, 45)
    harness.reconcile()
    SwitchableConnector.unreachable = True

    harness.reconcile()
    worker = harness.reconcile()

    deployment = harness.deployment()
    assert deployment is not None and deployment['spec']['replicas'] == 5
    assert conditions(worker)['BrokerReachable'] == ('False', 'BrokerUnreachable')
    assert worker['status']['queueLength'] == 45  # the last reading stays
    warnings = [
        r.data for r in harness.api.writes() if r.url.path.endswith('/events') and r.data['type'] == 'Warning'
    ]
    assert [w['reason'] for w in warnings] == ['BrokerUnreachable']
    assert 'keeping 5 replicas' in warnings[0]['note']


def test_the_broker_url_comes_from_the_secret(harness: Harness, broker: Connector) -> None:
    secret_url = 'redis://:s3cret@broker:6379/1'
    secret = {
        'apiVersion': 'v1',
        'kind': 'Secret',
        'metadata': {'name': 'broker', 'namespace': NAMESPACE},
        'data': {'url': base64.b64encode(secret_url.encode()).decode()},
    }
    harness.api.put_object('v1/secrets', NAMESPACE, 'broker', secret)
    connector = {'type': 'redis', 'secretRef': {'name': 'broker', 'key': 'url'}}
    harness.api.put_object(WORKERS, NAMESPACE, 'crawler', worker_object(connector=connector))

    worker = harness.reconcile()

    assert harness.urls == [secret_url]
    assert conditions(worker)['BrokerReachable'] == ('True', 'QueueRead')
    deployment = harness.deployment()
    assert deployment is not None
    [container] = deployment['spec']['template']['spec']['containers']
    [url_env] = [env for env in container['env'] if env['name'] == 'SERGEANT_BROKER_URL']
    assert url_env == {
        'name': 'SERGEANT_BROKER_URL',
        'valueFrom': {'secretKeyRef': {'name': 'broker', 'key': 'url'}},
    }


def test_a_missing_secret_is_reported_and_nothing_scales_to_zero(harness: Harness) -> None:
    connector = {'type': 'redis', 'secretRef': {'name': 'absent'}}
    obj = worker_object(connector=connector, scaling={'minReplicas': 0, 'maxReplicas': 5})
    obj['spec']['replicas'] = 2  # published by an earlier decision
    harness.api.put_object(WORKERS, NAMESPACE, 'crawler', obj)

    worker = harness.reconcile()

    assert conditions(worker)['BrokerReachable'] == ('False', 'SecretNotFound')
    deployment = harness.deployment()
    assert deployment is not None and deployment['spec']['replicas'] == 2


def test_a_replica_that_does_not_lead_writes_nothing(
    api: EmulatedApi, broker_path: str, broker: Connector
) -> None:
    harness = Harness(api, broker_path, leading=False)
    api.put_object(WORKERS, NAMESPACE, 'crawler', worker_object())
    push(broker, 25)

    harness.reconcile()

    assert harness.api.writes() == []


def test_a_deployment_made_by_someone_else_is_left_alone(harness: Harness) -> None:
    harness.api.put_object(WORKERS, NAMESPACE, 'crawler', worker_object())
    foreign = {
        'apiVersion': 'apps/v1',
        'kind': 'Deployment',
        'metadata': {'name': 'crawler', 'namespace': NAMESPACE},
        'spec': {'replicas': 7},
    }
    harness.api.put_object(DEPLOYMENTS, NAMESPACE, 'crawler', foreign)

    worker = harness.reconcile()

    assert harness.deployment() == foreign
    assert conditions(worker)['Ready'] == ('False', 'DeploymentConflict')


def test_an_invalid_spec_is_reported_without_touching_the_deployment(harness: Harness) -> None:
    harness.api.put_object(WORKERS, NAMESPACE, 'crawler', worker_object(workerClass='not a class'))

    worker = harness.reconcile()

    assert harness.deployment() is None
    assert conditions(worker)['Ready'] == ('False', 'InvalidSpec')
    assert 'spec.workerClass' in worker['status']['conditions'][0]['message']


def test_metrics_follow_the_reconciliation(harness: Harness, broker: Connector) -> None:
    harness.api.put_object(WORKERS, NAMESPACE, 'crawler', worker_object())
    push(broker, 25)

    harness.reconcile()

    text = harness.metrics.exposition().decode()
    labels = f'name="crawler",namespace="{NAMESPACE}"'
    assert f'sergeant_operator_reconciles_total{{{labels}}} 1.0' in text
    assert f'sergeant_operator_queue_length{{{labels}}} 25.0' in text
    assert f'sergeant_operator_desired_replicas{{{labels}}} 3.0' in text
