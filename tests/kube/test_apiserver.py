"""Smoke tests of the Kubernetes tooling: the API server fixture, the Python client and Helm."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.servers.kube import HELM_BINARY, REPO_ROOT, KubeAPIServer, required_binary

GROUP = 'smoke.sergeant.example'
CRD_READY_TIMEOUT = 30.0


def pinned_version(script: str, variable: str) -> str:
    """The version a scripts/tools/ script pins, e.g. ``HELM_VERSION="v3.22.0"``."""
    text = (REPO_ROOT / 'scripts' / 'tools' / script).read_text()
    match = re.search(rf'^{variable}="(v[0-9][^"]*)"$', text, re.MULTILINE)
    assert match is not None, f'{variable} not found in scripts/tools/{script}'
    return match.group(1)


def test_api_server_reports_the_pinned_kubernetes_version(kube_client: client.ApiClient) -> None:
    version = client.VersionApi(kube_client).get_code()

    assert version.git_version == pinned_version('kube-apiserver.sh', 'KUBERNETES_VERSION')


def test_namespace_is_created_and_listed(kube_client: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(kube_client)

    namespace = core.read_namespace(kube_namespace)

    assert namespace.status.phase == 'Active'
    assert kube_namespace in {item.metadata.name for item in core.list_namespace().items}


def test_crd_schema_rejects_an_invalid_object_with_422(
    kube_client: client.ApiClient, kube_namespace: str
) -> None:
    establish_widget_crd(kube_client)
    objects = client.CustomObjectsApi(kube_client)

    def create(spec: dict[str, Any], name: str) -> Any:
        body = {'apiVersion': f'{GROUP}/v1', 'kind': 'Widget', 'metadata': {'name': name}, 'spec': spec}
        return objects.create_namespaced_custom_object(GROUP, 'v1', kube_namespace, 'widgets', body)

    created = create({'queue': 'emails', 'replicas': 3}, 'good')
    with pytest.raises(ApiException) as rejected:
        create({'queue': 'emails', 'replicas': 'many'}, 'bad')

    assert created['spec'] == {'queue': 'emails', 'replicas': 3}
    assert rejected.value.status == 422
    assert 'spec.replicas' in rejected.value.body
    stored = objects.list_namespaced_custom_object(GROUP, 'v1', kube_namespace, 'widgets')['items']
    assert [item['metadata']['name'] for item in stored] == ['good']


def test_deployment_is_stored_and_read_back(kube_client: client.ApiClient, kube_namespace: str) -> None:
    apps = client.AppsV1Api(kube_client)
    labels = {'app': 'worker'}
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name='worker', labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name='worker', image='sergeant:test')]),
            ),
        ),
    )

    apps.create_namespaced_deployment(kube_namespace, deployment)
    stored = apps.read_namespaced_deployment('worker', kube_namespace)

    assert stored.spec.replicas == 2
    assert stored.spec.selector.match_labels == labels
    assert [container.image for container in stored.spec.template.spec.containers] == ['sergeant:test']
    assert stored.metadata.uid


def test_helm_prints_the_pinned_version() -> None:
    result = subprocess.run(
        [str(required_binary(HELM_BINARY)), 'version', '--template', '{{ .Version }}'],
        capture_output=True,
        text=True,
        check=True,
    )

    assert result.stdout.strip() == pinned_version('helm.sh', 'HELM_VERSION')


def test_helm_installs_a_chart_into_the_api_server(
    kube_api: KubeAPIServer, kube_client: client.ApiClient, kube_namespace: str, tmp_path: Path
) -> None:
    chart = tmp_path / 'smoke'
    (chart / 'templates').mkdir(parents=True)
    (chart / 'Chart.yaml').write_text('apiVersion: v2\nname: smoke\nversion: 0.1.0\n')
    (chart / 'values.yaml').write_text('greeting: hello\n')
    (chart / 'templates' / 'configmap.yaml').write_text(
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\n'
        'data:\n  greeting: {{ .Values.greeting | quote }}\n'
    )
    helm_home = {
        f'HELM_{kind}_HOME': str(tmp_path / f'helm-{kind.lower()}') for kind in ('CACHE', 'CONFIG', 'DATA')
    }

    helm = str(required_binary(HELM_BINARY))
    command = [helm, 'install', 'smoke', str(chart), '--namespace', kube_namespace, '--set', 'greeting=hi']

    subprocess.run(command, env={**kube_api.env(), **helm_home}, capture_output=True, check=True)

    config_map = client.CoreV1Api(kube_client).read_namespaced_config_map('smoke-settings', kube_namespace)
    assert config_map.data == {'greeting': 'hi'}


def establish_widget_crd(kube_client: client.ApiClient) -> None:
    """Create the ``widgets`` CRD (structural schema) once, and wait until it is served."""
    extensions = client.ApiextensionsV1Api(kube_client)
    name = f'widgets.{GROUP}'
    schema = client.V1JSONSchemaProps(
        type='object',
        properties={
            'spec': client.V1JSONSchemaProps(
                type='object',
                required=['queue'],
                properties={
                    'queue': client.V1JSONSchemaProps(type='string', min_length=1),
                    'replicas': client.V1JSONSchemaProps(type='integer', minimum=0),
                },
            )
        },
    )
    crd = client.V1CustomResourceDefinition(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1CustomResourceDefinitionSpec(
            group=GROUP,
            scope='Namespaced',
            names=client.V1CustomResourceDefinitionNames(plural='widgets', singular='widget', kind='Widget'),
            versions=[
                client.V1CustomResourceDefinitionVersion(
                    name='v1',
                    served=True,
                    storage=True,
                    schema=client.V1CustomResourceValidation(open_apiv3_schema=schema),
                )
            ],
        ),
    )
    try:
        extensions.create_custom_resource_definition(crd)
    except ApiException as error:
        if error.status != 409:
            raise
    deadline = time.monotonic() + CRD_READY_TIMEOUT
    while time.monotonic() < deadline:
        conditions = extensions.read_custom_resource_definition(name).status.conditions or []
        if any(c.type == 'Established' and c.status == 'True' for c in conditions):
            return
        time.sleep(0.1)
    raise AssertionError(f'CRD {name} not established within {CRD_READY_TIMEOUT:.0f} s')
