"""What `helm template` renders: the operator's Deployment, its wiring, worker pools and options."""

from __future__ import annotations

from typing import Any

import pytest
from sergeant_operator import deployment as worker_deployment
from sergeant_operator.resource import parse_worker

from tests.helm.conftest import CHART, NAMESPACE, RELEASE, Helm, by_kind, one, package_version

ALL_ON = CHART / 'ci' / 'all-on-values.yaml'
NAMESPACED = CHART / 'ci' / 'namespaced-values.yaml'
STANDARD_LABELS = (
    'helm.sh/chart',
    'app.kubernetes.io/name',
    'app.kubernetes.io/instance',
    'app.kubernetes.io/version',
    'app.kubernetes.io/managed-by',
    'app.kubernetes.io/part-of',
)


def pod_specs(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    specs = [item['spec']['template']['spec'] for item in by_kind(manifests, 'Deployment')]
    return specs + [item['spec'] for item in by_kind(manifests, 'Pod')]


def operator_container(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    [container] = one(manifests, 'Deployment')['spec']['template']['spec']['containers']
    return container


def test_defaults_install_the_operator_and_nothing_optional(helm: Helm) -> None:
    kinds = sorted(manifest['kind'] for manifest in helm.render())

    assert kinds == [
        'ClusterRole', 'ClusterRole',  # the second: operator.manageCRD's, on the CRD only
        'ClusterRoleBinding', 'ClusterRoleBinding', 'Deployment', 'Pod',  # Pod: the `helm test` hook
        'Role', 'RoleBinding', 'Service', 'ServiceAccount',  # Role: the leader election Lease
    ]  # fmt: skip


def test_all_on_renders_every_option(helm: Helm) -> None:
    kinds = {manifest['kind'] for manifest in helm.render(ALL_ON)}

    assert {'ServiceMonitor', 'PodMonitor', 'ConfigMap', 'PodDisruptionBudget', 'NetworkPolicy'} <= kinds
    assert len(by_kind(helm.render(ALL_ON), 'SergeantWorker')) == 3


@pytest.mark.parametrize('values', [[], [ALL_ON], [NAMESPACED]], ids=['defaults', 'all-on', 'namespaced'])
def test_every_pod_runs_locked_down_with_resource_requests(helm: Helm, values: list[Any]) -> None:
    specs = pod_specs(helm.render(*values))

    assert len(specs) == 2  # the operator and the `helm test` pod
    for spec in specs:
        assert spec['securityContext']['runAsNonRoot'] is True
        assert spec['securityContext']['seccompProfile'] == {'type': 'RuntimeDefault'}
        for container in spec['containers']:
            context = container['securityContext']
            assert context['readOnlyRootFilesystem'] is True
            assert context['allowPrivilegeEscalation'] is False
            assert context['capabilities']['drop'] == ['ALL']
            assert {'cpu', 'memory'} <= set(container['resources']['requests'])


@pytest.mark.parametrize('values', [[], [ALL_ON]], ids=['defaults', 'all-on'])
def test_every_resource_carries_the_standard_labels(helm: Helm, values: list[Any]) -> None:
    for manifest in helm.render(*values):
        labels = manifest['metadata']['labels']
        assert all(key in labels for key in STANDARD_LABELS), manifest['metadata']['name']
        assert labels['app.kubernetes.io/instance'] == RELEASE
        assert labels['app.kubernetes.io/managed-by'] == 'Helm'
        assert labels['app.kubernetes.io/version'] == package_version()


def test_selectors_of_the_service_pdb_and_policy_pick_the_operator_pods(helm: Helm) -> None:
    manifests = helm.render(ALL_ON)
    deployment = one(manifests, 'Deployment')
    pod_labels = deployment['spec']['template']['metadata']['labels']
    selectors = [
        deployment['spec']['selector']['matchLabels'],
        one(manifests, 'Service')['spec']['selector'],
        one(manifests, 'PodDisruptionBudget')['spec']['selector']['matchLabels'],
        one(manifests, 'NetworkPolicy')['spec']['podSelector']['matchLabels'],
    ]

    for selector in selectors:
        assert selector.items() <= pod_labels.items()
    # the helm test pod must not be taken for an operator pod
    test_pod_labels = one(manifests, 'Pod')['metadata']['labels']
    assert not selectors[0].items() <= test_pod_labels.items()


def test_the_operator_watches_every_namespace_and_elects_a_leader_by_default(helm: Helm) -> None:
    container = operator_container(helm.render())

    assert container['image'] == f'sergeant-operator:{package_version()}'
    assert container['args'] == [
        '--namespace=all',
        '--metrics-port=8080',
        '--log-level=INFO',
        '--manage-crd',
        '--no-allow-privileged-pods',
        '--leader-election',
        f'--lease-name={RELEASE}-sergeant-operator',
        f'--lease-namespace={NAMESPACE}',
    ]


def test_a_watched_namespace_without_leader_election(helm: Helm) -> None:
    container = operator_container(helm.render(NAMESPACED))

    assert container['args'][0] == '--namespace=jobs'
    assert '--no-leader-election' in container['args']
    assert not any(arg.startswith('--lease') for arg in container['args'])
    assert one(helm.render(NAMESPACED), 'SergeantWorker')['metadata']['namespace'] == 'jobs'


def test_the_crd_upgrade_and_privileged_pods_are_chart_values(helm: Helm) -> None:
    values = ['operator.manageCRD=false', 'operator.allowPrivilegedPods=true']
    manifests = helm.render(set_values=values)
    container = operator_container(manifests)

    assert {'--no-manage-crd', '--allow-privileged-pods'} <= set(container['args'])
    assert [role['metadata']['name'] for role in by_kind(manifests, 'ClusterRole')] == [
        f'{RELEASE}-sergeant-operator'
    ]


def test_the_metrics_port_is_one_number_everywhere(helm: Helm) -> None:
    manifests = helm.render(ALL_ON)
    container = operator_container(manifests)
    [port] = container['ports']

    assert '--metrics-port=9090' in container['args']
    assert port == {'name': 'metrics', 'containerPort': 9090, 'protocol': 'TCP'}
    assert one(manifests, 'Service')['spec']['ports'] == [
        {'name': 'metrics', 'port': 9090, 'targetPort': 'metrics', 'protocol': 'TCP'}
    ]
    for probe in ('livenessProbe', 'readinessProbe'):
        assert container[probe]['httpGet'] == {'path': '/healthz', 'port': 'metrics'}
    assert one(manifests, 'ServiceMonitor')['spec']['endpoints'][0]['port'] == 'metrics'
    assert one(manifests, 'NetworkPolicy')['spec']['ingress'][0]['ports'] == [
        {'port': 'metrics', 'protocol': 'TCP'}
    ]
    assert one(manifests, 'Pod')['spec']['containers'][0]['command'][-1].endswith(':9090/healthz')


def test_the_helm_test_pod_checks_the_operators_healthz_through_its_service(helm: Helm) -> None:
    manifests = helm.render()
    pod = one(manifests, 'Pod')
    service = one(manifests, 'Service')['metadata']['name']

    assert pod['metadata']['annotations']['helm.sh/hook'] == 'test'
    assert pod['spec']['restartPolicy'] == 'Never'
    assert pod['spec']['containers'][0]['command'][-1] == f'http://{service}.{NAMESPACE}.svc:8080/healthz'


def test_an_image_digest_wins_over_the_tag(helm: Helm) -> None:
    digest = 'sha256:' + 'ab' * 32
    manifests = helm.render(
        set_values=['operator.image.repository=r.example/op', f'operator.image.digest={digest}']
    )

    assert operator_container(manifests)['image'] == f'r.example/op@{digest}'


def test_worker_pools_become_sergeant_workers_the_operator_can_parse(helm: Helm) -> None:
    workers = {item['metadata']['name']: item for item in by_kind(helm.render(ALL_ON), 'SergeantWorker')}

    assert set(workers) == {'crawler', 'reports', 'indexer'}
    crawler = workers['crawler']
    assert crawler['metadata']['namespace'] == NAMESPACE
    assert crawler['metadata']['labels']['team'] == 'search'
    assert crawler['metadata']['annotations'] == {'example.com/owner': 'search'}
    assert not {'namespace', 'labels', 'annotations'} & set(crawler['spec'])
    assert crawler['spec']['scaling']['maxReplicas'] == 20
    assert workers['reports']['metadata']['namespace'] == 'batch'
    for item in workers.values():
        item['metadata']['uid'] = 'uid-1'
        parsed = parse_worker(item)  # what the operator will make of it
        assert parsed.name == item['metadata']['name']
    assert parse_worker(crawler).spec.connector.secret_ref is not None


def test_the_pod_monitor_selects_the_pods_the_operator_deploys(helm: Helm) -> None:
    monitor = one(helm.render(ALL_ON), 'PodMonitor')
    crawler = one(helm.render(NAMESPACED), 'SergeantWorker')
    crawler['metadata']['uid'] = 'uid-1'  # set by the API server
    built = worker_deployment.desired_deployment(parse_worker(crawler), 1)
    pod_labels = built['spec']['template']['metadata']['labels']
    [endpoint] = monitor['spec']['podMetricsEndpoints']

    assert monitor['spec']['selector']['matchLabels'].items() <= pod_labels.items()
    assert endpoint['port'] == worker_deployment.METRICS_PORT_NAME
    assert monitor['spec']['jobLabel'] in pod_labels
    assert monitor['spec']['namespaceSelector'] == {'matchNames': ['jobs', 'batch']}
    default = one(helm.render(set_values=['workerMetrics.podMonitor.enabled=true']), 'PodMonitor')
    assert default['spec']['namespaceSelector'] == {'any': True}


def test_min_replicas_above_max_is_refused(helm: Helm) -> None:
    result = helm.template(
        NAMESPACED,
        set_values=['workers.crawler.scaling.minReplicas=5', 'workers.crawler.scaling.maxReplicas=2'],
        check=False,
    )

    assert result.returncode != 0
    assert 'workers.crawler.scaling: minReplicas (5) must not exceed maxReplicas (2)' in result.stderr


def test_several_operators_need_leader_election(helm: Helm) -> None:
    result = helm.template(
        set_values=['operator.replicas=2', 'operator.leaderElection.enabled=false'], check=False
    )

    assert result.returncode != 0
    assert 'needs operator.leaderElection.enabled' in result.stderr


def test_an_existing_service_account_must_be_named(helm: Helm) -> None:
    unnamed = helm.template(set_values=['serviceAccount.create=false'], check=False)
    named = helm.render(set_values=['serviceAccount.create=false', 'serviceAccount.name=ops-robot'])

    assert unnamed.returncode != 0 and 'serviceAccount.name' in unnamed.stderr
    assert by_kind(named, 'ServiceAccount') == []
    assert one(named, 'Deployment')['spec']['template']['spec']['serviceAccountName'] == 'ops-robot'
    assert {binding['subjects'][0]['name'] for binding in by_kind(named, 'ClusterRoleBinding')} == {
        'ops-robot'
    }
