"""KEDA's controls on a SergeantWorker against kmock: paused replicas, fallback, an HPA, privileges."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kmock
import pytest
from sergeant_operator.events import EventReporter
from sergeant_operator.reconciler import WorkerReconciler
from sergeant_operator.resource import PAUSED_REPLICAS_ANNOTATION

from sergeant.connector import Connector, create_connector
from tests.operator.kmock_api import EmulatedApi, emulated_api
from tests.operator.test_reconciler import (
    NAMESPACE,
    WORKERS,
    Harness,
    SwitchableConnector,
    conditions,
    push,
    worker_object,
)

HPAS = 'autoscaling/v2/horizontalpodautoscalers'


@pytest.fixture
def api() -> Iterator[EmulatedApi]:
    with emulated_api() as emulated:
        info = kmock.ResourceInfo(kind='HorizontalPodAutoscaler', namespaced=True)
        emulated.emulator.resources[HPAS] = info
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


@pytest.fixture
def harness(api: EmulatedApi, broker_path: str) -> Harness:
    return Harness(api, broker_path)


def paused(count: str, **spec: Any) -> dict[str, Any]:
    obj = worker_object(**spec)
    obj['metadata']['annotations'] = {PAUSED_REPLICAS_ANNOTATION: count}
    return obj


def replicas(harness: Harness) -> int | None:
    deployment = harness.deployment()
    return None if deployment is None else int(deployment['spec'].get('replicas', -1))


def events(harness: Harness) -> list[tuple[str, str]]:
    writes = harness.api.writes()
    return [(r.data['type'], r.data['reason']) for r in writes if r.url.path.endswith('/events')]


def hpa(name: str, kind: str, target: str) -> dict[str, Any]:
    api_version = 'sergeant.io/v1alpha1' if kind == 'SergeantWorker' else 'apps/v1'
    return {
        'apiVersion': 'autoscaling/v2',
        'kind': 'HorizontalPodAutoscaler',
        'metadata': {'name': name, 'namespace': NAMESPACE},
        'spec': {
            'scaleTargetRef': {'apiVersion': api_version, 'kind': kind, 'name': target},
            'minReplicas': 1,
            'maxReplicas': 8,
        },
    }


# -- paused replicas ----------------------------------------------------------------------------


def test_paused_replicas_hold_the_deployment_whatever_the_queue(harness: Harness, broker: Connector) -> None:
    harness.api.put_object(WORKERS, NAMESPACE, 'crawler', paused('2'))
    push(broker, 90)  # 9 replicas' worth

    worker = harness.reconcile()

    assert replicas(harness) == 2
    assert worker['spec']['replicas'] == 2
    assert conditions(worker)['Paused'] == ('True', 'PausedReplicas')
    assert conditions(worker)['Scaling'] == ('True', 'ScalingUp')  # towards the paused count
    assert ('Normal', 'Paused') in events(harness)


def test_removing_the_annotation_resumes_scaling(harness: Harness, broker: Connector) -> None:
    harness.api.put_object(WORKERS, NAMESPACE, 'crawler', paused('0'))
    push(broker, 90)
    harness.reconcile()
    assert replicas(harness) == 0

    resumed = harness.api.object(WORKERS, NAMESPACE, 'crawler')
    assert resumed is not None
    del resumed['metadata']['annotations']
    harness.api.put_object(WORKERS, NAMESPACE, 'crawler', resumed)
    worker = harness.reconcile()

    assert replicas(harness) == 9
    assert conditions(worker)['Paused'] == ('False', 'NotPaused')  # shown once it has been set
    assert events(harness)[-2:] == [('Normal', 'Resumed'), ('Normal', 'Scaled')]


def test_a_bad_annotation_is_an_invalid_spec(harness: Harness) -> None:
    harness.api.put_object(WORKERS, NAMESPACE, 'crawler', paused('some'))

    worker = harness.reconcile()

    assert harness.deployment() is None
    assert conditions(worker)['Ready'] == ('False', 'InvalidSpec')
    assert PAUSED_REPLICAS_ANNOTATION in worker['status']['conditions'][0]['message']


# -- fallback -----------------------------------------------------------------------------------


def test_after_the_failure_threshold_the_fallback_replicas_run(harness: Harness, broker: Connector) -> None:
    scaling = {'maxReplicas': 10, 'tasksPerReplica': 10, 'fallback': {'failureThreshold': 2, 'replicas': 6}}
    harness.api.put_object(WORKERS, NAMESPACE, 'crawler', worker_object(scaling=scaling))
    push(broker, 30)
    harness.reconcile()
    assert replicas(harness) == 3
    SwitchableConnector.unreachable = True

    worker = harness.reconcile()  # one failure: the last size holds
    assert replicas(harness) == 3
    assert 'Fallback' not in conditions(worker)

    worker = harness.reconcile()  # two: the fallback
    assert replicas(harness) == 6
    assert conditions(worker)['Fallback'] == ('True', 'FallbackReplicas')
    assert '2 failed queue readings in a row' in next(
        c['message'] for c in worker['status']['conditions'] if c['type'] == 'Fallback'
    )
    assert ('Warning', 'Fallback') in events(harness)

    SwitchableConnector.unreachable = False
    worker = harness.reconcile()  # read again: the queue decides

    assert replicas(harness) == 3
    assert conditions(worker)['Fallback'] == ('False', 'NoFallback')
    assert conditions(worker)['BrokerReachable'] == ('True', 'QueueRead')


def test_without_a_fallback_the_last_size_holds_forever(harness: Harness, broker: Connector) -> None:
    harness.api.put_object(WORKERS, NAMESPACE, 'crawler', worker_object())
    push(broker, 30)
    harness.reconcile()
    SwitchableConnector.unreachable = True

    for _ in range(5):
        worker = harness.reconcile()

    assert replicas(harness) == 3
    assert 'Fallback' not in conditions(worker)


# -- a HorizontalPodAutoscaler ------------------------------------------------------------------


def test_an_hpa_of_the_worker_decides_through_spec_replicas(harness: Harness, broker: Connector) -> None:
    obj = worker_object()
    obj['spec']['replicas'] = 4  # written by the HPA through the scale subresource
    harness.api.put_object(WORKERS, NAMESPACE, 'crawler', obj)
    harness.api.put_object(HPAS, NAMESPACE, 'crawler-hpa', hpa('crawler-hpa', 'SergeantWorker', 'crawler'))
    push(broker, 90)

    worker = harness.reconcile()

    assert replicas(harness) == 4
    assert worker['spec']['replicas'] == 4
    assert not [r for r in harness.api.writes() if r.url.path.endswith('/scale')]
    assert conditions(worker)['ExternallyScaled'] == ('True', 'HorizontalPodAutoscaler')
    assert worker['status']['queueLength'] == 90  # still read, for the status (and any HPA metric)


def test_an_hpa_of_the_deployment_owns_its_replicas(harness: Harness, broker: Connector) -> None:
    harness.api.put_object(WORKERS, NAMESPACE, 'crawler', paused('3'))
    harness.api.put_object(HPAS, NAMESPACE, 'deploy-hpa', hpa('deploy-hpa', 'Deployment', 'crawler'))
    push(broker, 90)

    worker = harness.reconcile()

    [apply] = [r for r in harness.api.writes() if r.url.path.endswith('/deployments/crawler')]
    assert 'replicas' not in apply.data['spec']
    assert not [r for r in harness.api.writes() if r.url.path.endswith('/scale')]
    assert conditions(worker)['ExternallyScaled'] == ('True', 'HorizontalPodAutoscaler')
    assert conditions(worker)['Paused'] == ('False', 'HorizontalPodAutoscaler')  # the HPA wins


def test_an_hpa_of_another_target_changes_nothing(harness: Harness, broker: Connector) -> None:
    harness.api.put_object(WORKERS, NAMESPACE, 'crawler', worker_object())
    harness.api.put_object(HPAS, NAMESPACE, 'other', hpa('other', 'Deployment', 'indexer'))
    push(broker, 30)

    worker = harness.reconcile()

    assert replicas(harness) == 3
    assert 'ExternallyScaled' not in conditions(worker)


# -- privileges ---------------------------------------------------------------------------------


def test_a_privileged_template_is_refused_with_an_event(harness: Harness) -> None:
    template = {'securityContext': {'privileged': True, 'capabilities': {'add': ['NET_ADMIN']}}}
    harness.api.put_object(WORKERS, NAMESPACE, 'crawler', worker_object(template=template))

    worker = harness.reconcile()

    assert harness.deployment() is None
    assert conditions(worker)['Ready'] == ('False', 'PrivilegedPodRefused')
    message = worker['status']['conditions'][0]['message']
    assert 'containers[worker].securityContext.privileged is true' in message
    assert 'capabilities.add has NET_ADMIN' in message
    assert ('Warning', 'PrivilegedPodRefused') in events(harness)


def test_the_allow_flag_lets_it_through(harness: Harness, broker: Connector) -> None:
    harness.reconciler = WorkerReconciler(
        harness.kube,
        harness.reader,
        harness.metrics,
        EventReporter(harness.kube, 'op-1'),
        lambda: True,
        allow_privileged_pods=True,
    )
    template = {'podSecurityContext': {'runAsUser': 0, 'runAsNonRoot': False}}
    harness.api.put_object(WORKERS, NAMESPACE, 'crawler', worker_object(template=template))

    harness.reconcile()

    deployment = harness.deployment()
    assert deployment is not None
    assert deployment['spec']['template']['spec']['securityContext']['runAsUser'] == 0
