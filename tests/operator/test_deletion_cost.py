"""Pod deletion costs before a scale-down: from leases per owner to annotations, set before the apply.

The pure parts and the reconciler's order of calls run against the kmock emulator and
a local broker; tests/operator/test_pods.py shows the ReplicaSet controller keeping
the busy pods on a cluster with pods.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sergeant_operator.deletion_cost import DELETION_COST_ANNOTATION, deletion_costs, tasks_per_pod

from sergeant.connector import Connector, create_connector
from tests.operator.kmock_api import EmulatedApi, emulated_api
from tests.operator.test_reconciler import DEPLOYMENTS, NAMESPACE, WORKERS, Harness, worker_object

PODS = 'v1/pods'


def pod(name: str, cost: str | None = None, deleting: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        'name': name,
        'namespace': NAMESPACE,
        'labels': {'sergeant.io/worker': 'crawler'},
    }
    if cost is not None:
        metadata['annotations'] = {DELETION_COST_ANNOTATION: cost}
    if deleting:
        metadata['deletionTimestamp'] = '2030-01-01T00:00:00Z'
    return {'apiVersion': 'v1', 'kind': 'Pod', 'metadata': metadata}


def test_leases_of_the_processes_of_one_pod_are_added_up() -> None:
    owners = {'crawler-a/12': 2, 'crawler-a/13': 1, 'crawler-b/12': 4, 'laptop/99': 1}

    assert tasks_per_pod(owners) == {'crawler-a': 3, 'crawler-b': 4, 'laptop': 1}


def test_busy_pods_cost_what_they_hold_and_idle_ones_zero() -> None:
    pods = [pod('crawler-a'), pod('crawler-b'), pod('crawler-c', cost='5')]

    assert deletion_costs(pods, {'crawler-a': 3}) == {'crawler-a': '3', 'crawler-b': '0', 'crawler-c': '0'}


def test_only_changed_costs_are_patched_and_pods_being_deleted_are_left_alone() -> None:
    pods = [pod('crawler-a', cost='3'), pod('crawler-b', cost='0'), pod('crawler-c', deleting=True)]

    assert deletion_costs(pods, {'crawler-a': 3, 'crawler-c': 9}) == {}


def test_a_cost_stays_within_int32() -> None:
    assert deletion_costs([pod('crawler-a')], {'crawler-a': 2**40}) == {'crawler-a': str(2**31 - 1)}


@pytest.fixture
def api() -> Iterator[EmulatedApi]:
    with emulated_api() as emulated:
        yield emulated


@pytest.fixture
def broker_path(tmp_path: Path) -> str:
    return str(tmp_path / 'broker.sqlite3')


@pytest.fixture
def scaling_down(api: EmulatedApi, broker_path: str) -> Harness:
    """A worker at 3 replicas whose queue asks for fewer, three pods, a task held by crawler-b."""
    harness = Harness(api, broker_path)
    harness.api.put_object(WORKERS, NAMESPACE, 'crawler', worker_object())
    harness.reconcile()
    deployment = copy.deepcopy(harness.deployment())
    assert deployment is not None
    deployment['spec']['replicas'] = 3
    harness.api.put_object(DEPLOYMENTS, NAMESPACE, 'crawler', deployment)
    for name in ('crawler-a', 'crawler-b', 'crawler-c'):
        harness.api.put_object(PODS, NAMESPACE, name, pod(name))
    broker = create_connector('local', {'file_path': broker_path})
    broker.push('crawl', [b'task'])
    broker.lease_owner = 'crawler-b/4242'
    assert len(broker.pop('crawl', 1, 60)) == 1
    broker.close()
    return harness


def test_costs_are_set_before_the_deployment_is_scaled_down(scaling_down: Harness) -> None:
    scaling_down.reconcile()

    writes = [(r.method.value.upper(), r.url.path) for r in scaling_down.api.writes()]
    apply = writes.index(('PATCH', f'/apis/apps/v1/namespaces/{NAMESPACE}/deployments/crawler'), 1)
    patched = [path.rsplit('/', 1)[1] for method, path in writes[:apply] if '/pods/' in path]
    assert sorted(patched) == ['crawler-a', 'crawler-b', 'crawler-c']
    costs = {
        name: (scaling_down.api.object(PODS, NAMESPACE, name) or {})['metadata']['annotations']
        for name in ('crawler-a', 'crawler-b', 'crawler-c')
    }
    assert costs == {
        'crawler-a': {DELETION_COST_ANNOTATION: '0'},
        'crawler-b': {DELETION_COST_ANNOTATION: '1'},
        'crawler-c': {DELETION_COST_ANNOTATION: '0'},
    }
    deployment = scaling_down.deployment()
    assert deployment is not None and deployment['spec']['replicas'] < 3


def test_no_pod_is_touched_when_scaling_up_or_holding(api: EmulatedApi, broker_path: str) -> None:
    harness = Harness(api, broker_path)
    harness.api.put_object(WORKERS, NAMESPACE, 'crawler', worker_object())
    harness.api.put_object(PODS, NAMESPACE, 'crawler-a', pod('crawler-a'))
    broker: Connector = create_connector('local', {'file_path': broker_path})
    broker.push('crawl', [b'task'] * 25)
    broker.close()

    harness.reconcile()
    harness.reconcile()

    assert not [r for r in harness.api.requests() if '/pods' in r.url.path]
