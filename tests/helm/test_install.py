"""`helm install` into a real API server (tests/servers/kube.py), which validates every object itself:
schemas, the CRD's CEL rules, RBAC escalation checks. The Prometheus Operator's CRDs are not installed
there, so the monitors and the PrometheusRule are left out."""

from __future__ import annotations

import contextlib
from pathlib import Path

from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.helm.conftest import CHART, Helm
from tests.servers.kube import KubeAPIServer

NO_MONITORS = [
    'metrics.serviceMonitor.enabled=false',
    'workerMetrics.podMonitor.enabled=false',
    'prometheusRule.enabled=false',
]


def ensure_namespace(kube_client: client.ApiClient, name: str) -> None:
    with contextlib.suppress(ApiException):  # 409: it exists already
        client.CoreV1Api(kube_client).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
        )


def test_every_option_installs_into_an_api_server(
    helm: Helm,
    kube_api: KubeAPIServer,
    kube_client: client.ApiClient,
    kube_namespace: str,
) -> None:
    for namespace in ('batch', 'monitoring'):  # named by ci/all-on-values.yaml
        ensure_namespace(kube_client, namespace)
    arguments = ['install', 'all-on', str(CHART), '--namespace', kube_namespace]
    arguments += [
        '--kubeconfig',
        str(kube_api.kubeconfig_path),
        '--values',
        str(CHART / 'ci' / 'all-on-values.yaml'),
    ]
    for assignment in NO_MONITORS:
        arguments += ['--set', assignment]

    result = helm.run(*arguments)

    assert 'STATUS: deployed' in result.stdout
    assert 'helm test all-on' in result.stdout  # the NOTES
    objects = client.CustomObjectsApi(kube_client)
    workers = objects.list_namespaced_custom_object(
        'sergeant.io', 'v1alpha1', kube_namespace, 'sergeantworkers'
    )
    assert {item['metadata']['name'] for item in workers['items']} == {'crawler', 'indexer'}
    reports = objects.get_namespaced_custom_object(
        'sergeant.io', 'v1alpha1', 'batch', 'sergeantworkers', 'reports'
    )
    assert reports['spec']['scaling']['maxReplicas'] == 10  # the CRD's default, filled in by the server
    dashboard = client.CoreV1Api(kube_client).read_namespaced_config_map('all-on-sgt-dashboard', 'monitoring')
    assert dashboard.metadata.labels['grafana_dashboard'] == '1'
    policy = client.PolicyV1Api(kube_client).read_namespaced_pod_disruption_budget(
        'all-on-sgt-operator', kube_namespace
    )
    assert policy.spec.max_unavailable == 1


def test_the_api_server_refuses_a_pool_the_values_schema_cannot_judge(
    helm: Helm,
    kube_api: KubeAPIServer,
    kube_namespace: str,
    tmp_path: Path,
) -> None:
    # a mongo connector with a redis URL passes the values schema; the CRD's CEL rule refuses it
    values = tmp_path / 'values.yaml'
    values.write_text(
        'workers:\n  bad:\n    image: registry.example/bad:1\n    workerModule: app\n    workerClass: W\n'
        '    queue: q\n    connector: {type: mongo, url: "redis://redis:6379/0"}\n'
    )

    result = helm.run(
        'install', 'bad', str(CHART), '--namespace', kube_namespace,
        '--kubeconfig', str(kube_api.kubeconfig_path), '--values', str(values), check=False,
    )  # fmt: skip

    assert result.returncode != 0
    assert 'url must use a scheme of the connector type' in result.stderr
