"""The CRD and RBAC manifests agree with the operator's code (the API server checks them end to end)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml
from sergeant_operator import resource
from sergeant_operator.crd import BUNDLED_FILE, REVISION_ANNOTATION, bundled_crd, revision
from sergeant_operator.policy import Fallback, ScalingSpec
from sergeant_operator.status import CONDITION_TYPES

OPERATOR = Path(__file__).resolve().parents[2] / 'operator'
CRD_PATH = OPERATOR / 'crd' / 'sergeantworkers.sergeant.io.yaml'

# Every API call the operator makes, as (API group, resource, verb).
NEEDED = {
    ('sergeant.io', 'sergeantworkers', 'get'),
    ('sergeant.io', 'sergeantworkers', 'list'),
    ('sergeant.io', 'sergeantworkers', 'watch'),
    ('sergeant.io', 'sergeantworkers/status', 'patch'),
    ('sergeant.io', 'sergeantworkers/scale', 'patch'),
    ('sergeant.io', 'sergeantworkers/finalizers', 'update'),
    ('apps', 'deployments', 'get'),
    ('apps', 'deployments', 'create'),
    ('apps', 'deployments', 'update'),
    ('apps', 'deployments', 'patch'),
    ('', 'secrets', 'get'),
    ('', 'pods', 'list'),
    ('', 'pods', 'patch'),
    ('events.k8s.io', 'events', 'create'),
    ('autoscaling', 'horizontalpodautoscalers', 'list'),
}
# Cluster-wide only, for --manage-crd (a Role cannot grant a cluster-scoped resource).
CRD_RULES = {('apiextensions.k8s.io', 'customresourcedefinitions', verb) for verb in ('get', 'patch')}
LEASES = {('coordination.k8s.io', 'leases', verb) for verb in ('get', 'create', 'update')}


def load(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def crd_version() -> dict[str, Any]:
    [crd] = load(CRD_PATH)
    [version] = crd['spec']['versions']
    return version


def spec_schema() -> dict[str, Any]:
    return crd_version()['schema']['openAPIV3Schema']['properties']['spec']


def granted(path: Path) -> set[tuple[str, str, str]]:
    return {
        (group, name, verb)
        for document in load(path)
        if document['kind'] in ('Role', 'ClusterRole')
        for rule in document['rules']
        for group in rule['apiGroups']
        for name in rule['resources']
        for verb in rule['verbs']
    }


def test_the_crd_names_the_resource_the_operator_watches() -> None:
    [crd] = load(CRD_PATH)
    assert crd['metadata']['name'] == f'{resource.PLURAL}.{resource.GROUP}'
    assert crd['spec']['group'] == resource.GROUP
    assert crd['spec']['names']['kind'] == resource.KIND
    assert crd['spec']['scope'] == 'Namespaced'
    assert crd_version()['name'] == resource.VERSION


def test_status_and_scale_subresources() -> None:
    assert crd_version()['subresources'] == {
        'status': {},
        'scale': {
            'specReplicasPath': '.spec.replicas',
            'statusReplicasPath': '.status.replicas',
            'labelSelectorPath': '.status.selector',
        },
    }


def test_printer_columns_show_queue_desired_ready_and_age() -> None:
    columns = {column['name']: column for column in crd_version()['additionalPrinterColumns']}
    assert columns['Queue']['jsonPath'] == '.status.queueLength'
    assert columns['Desired']['jsonPath'] == '.status.desiredReplicas'
    assert columns['Ready']['jsonPath'] == '.status.readyReplicas'
    assert columns['Age']['jsonPath'] == '.metadata.creationTimestamp'


def test_required_fields_and_connector_types() -> None:
    schema = spec_schema()
    assert set(schema['required']) == {'image', 'workerModule', 'workerClass', 'queue', 'connector'}
    connector = schema['properties']['connector']
    assert tuple(connector['properties']['type']['enum']) == resource.CONNECTOR_TYPES
    assert 'local' not in connector['properties']['type']['enum']
    assert connector['properties']['secretRef']['properties']['key']['default'] == resource.DEFAULT_SECRET_KEY


def test_scaling_defaults_match_the_policy_defaults() -> None:
    properties = spec_schema()['properties']['scaling']['properties']
    camel = {
        'min_replicas': 'minReplicas',
        'max_replicas': 'maxReplicas',
        'tasks_per_replica': 'tasksPerReplica',
        'activation_queue_length': 'activationQueueLength',
        'polling_interval_seconds': 'pollingIntervalSeconds',
        'cooldown_seconds': 'cooldownSeconds',
        'scale_down_stabilization_seconds': 'scaleDownStabilizationSeconds',
    }
    for field in dataclasses.fields(ScalingSpec):
        if field.name != 'fallback':  # optional, without a default
            assert properties[camel[field.name]]['default'] == field.default, field.name
    fallback = properties['fallback']
    assert fallback['properties']['failureThreshold']['default'] == Fallback.failure_threshold
    assert fallback['required'] == ['replicas']


def test_status_conditions_are_the_ones_the_operator_writes() -> None:
    status = crd_version()['schema']['openAPIV3Schema']['properties']['status']
    assert tuple(status['properties']['conditions']['items']['properties']['type']['enum']) == CONDITION_TYPES


def test_both_rbac_variants_grant_exactly_what_the_operator_uses() -> None:
    assert granted(OPERATOR / 'rbac' / 'cluster-role.yaml') == NEEDED | CRD_RULES
    assert granted(OPERATOR / 'rbac' / 'role.yaml') == NEEDED
    assert granted(OPERATOR / 'rbac' / 'leader-election.yaml') == LEASES


def test_the_crd_rule_names_only_the_sergeant_crd() -> None:
    [crd] = load(CRD_PATH)
    [rule] = [
        rule
        for document in load(OPERATOR / 'rbac' / 'cluster-role.yaml')
        if document['kind'] == 'ClusterRole'
        for rule in document['rules']
        if 'customresourcedefinitions' in rule['resources']
    ]
    assert rule['resourceNames'] == [crd['metadata']['name']]


def test_the_operator_ships_the_crd_with_a_revision() -> None:
    bundled = OPERATOR / 'sergeant_operator' / 'crd' / BUNDLED_FILE
    assert bundled.read_bytes() == CRD_PATH.read_bytes(), 'copy operator/crd/ into the package'
    assert bundled_crd() == load(CRD_PATH)[0]
    assert revision(bundled_crd()) >= 1
    assert revision({'metadata': {'annotations': {REVISION_ANNOTATION: 'x'}}}) == 0
    assert revision({'metadata': {}}) == 0
