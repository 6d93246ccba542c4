"""The chart's files agree with the rest of the repository: versions, the CRD, the dashboard, RBAC rules."""

from __future__ import annotations

import json
from typing import Any

import yaml

from tests.helm.conftest import CHART, RELEASE, REPO, Helm, by_kind, one, package_version

OPERATOR_RBAC = REPO / 'operator' / 'rbac'
DASHBOARD = REPO / 'docker' / 'grafana' / 'dashboards' / 'sergeant.json'


def rules(manifest: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in manifest['rules']
        for group in rule['apiGroups']
        for resource in rule['resources']
        for verb in rule['verbs']
    }


def rules_in(file_name: str, kind: str) -> set[tuple[str, str, str]]:
    documents = yaml.safe_load_all((OPERATOR_RBAC / file_name).read_text())
    [manifest] = [document for document in documents if document['kind'] == kind]
    return rules(manifest)


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / 'Chart.yaml').read_text())

    assert chart['apiVersion'] == 'v2'
    assert chart['name'] == 'sergeant'
    assert chart['appVersion'] == package_version()


def test_the_crd_is_the_operators() -> None:
    [source] = (REPO / 'operator' / 'crd').glob('*.yaml')
    copy = CHART / 'crds' / source.name

    assert copy.read_bytes() == source.read_bytes(), (
        f'run: cp {source.relative_to(REPO)} {copy.relative_to(REPO)}'
    )
    assert [path.name for path in (CHART / 'crds').iterdir()] == [source.name]


def test_the_dashboard_is_the_one_of_the_compose_stack() -> None:
    copy = CHART / 'dashboards' / DASHBOARD.name

    assert copy.read_bytes() == DASHBOARD.read_bytes(), (
        f'run: cp {DASHBOARD.relative_to(REPO)} {copy.relative_to(REPO)}'
    )


def test_cluster_wide_rbac_grants_what_the_operators_own_manifests_grant(helm: Helm) -> None:
    manifests = helm.render()

    roles = {role['metadata']['name']: rules(role) for role in by_kind(manifests, 'ClusterRole')}
    crd_rule = {('apiextensions.k8s.io', 'customresourcedefinitions', verb) for verb in ('get', 'patch')}
    assert roles == {
        f'{RELEASE}-sergeant-operator': rules_in('cluster-role.yaml', 'ClusterRole') - crd_rule,
        f'{RELEASE}-sergeant-operator-crd': crd_rule,  # operator.manageCRD, on by default
    }
    [lease_role] = by_kind(manifests, 'Role')
    assert rules(lease_role) == rules_in('leader-election.yaml', 'Role')


def test_namespaced_rbac_grants_the_same_rules_in_the_watched_namespace_only(helm: Helm) -> None:
    manifests = helm.render(set_values=['operator.watchNamespace=jobs', 'operator.manageCRD=false'])

    assert by_kind(manifests, 'ClusterRole') == [] and by_kind(manifests, 'ClusterRoleBinding') == []
    [role] = [role for role in by_kind(manifests, 'Role') if role['metadata']['namespace'] == 'jobs']
    assert rules(role) == rules_in('role.yaml', 'Role')
    [binding] = [
        item for item in by_kind(manifests, 'RoleBinding') if item['metadata']['namespace'] == 'jobs'
    ]
    assert binding['roleRef'] == {
        'apiGroup': 'rbac.authorization.k8s.io',
        'kind': 'Role',
        'name': role['metadata']['name'],
    }


def test_the_dashboard_configmap_carries_the_dashboard_and_the_sidecar_label(helm: Helm) -> None:
    configmap = one(helm.render(set_values=['grafana.dashboard.enabled=true']), 'ConfigMap')

    assert configmap['metadata']['labels']['grafana_dashboard'] == '1'
    [(name, text)] = configmap['data'].items()
    assert name.endswith('.json')
    assert json.loads(text) == json.loads(DASHBOARD.read_text())
