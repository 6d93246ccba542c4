"""The operator image as the chart deploys it, run with podman against the test API server.

`helm install` puts the chart into a real API server (CRD, ServiceAccount, RBAC,
Deployment, a worker pool from values); then `podman run sergeant-operator` runs
with the arguments and variables of the chart's Deployment, as the pod's security
context asks (read-only root filesystem, tmpfs /tmp), signed in with a token of the
chart's ServiceAccount through a mounted kubeconfig, so the chart's RBAC is what it
gets. It must reconcile the SergeantWorker into a Deployment, scale it from a real
Redis queue, answer its probes, pass `podman healthcheck run`, and exit 0 on
`podman stop`.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.docker.podman import OPERATOR_IMAGE, Container, container, env_flags, volume
from tests.helm.conftest import CHART, Helm
from tests.servers.kube import KubeAPIServer
from tests.servers.ports import free_port
from tests.supervisor.conftest import QUEUE, broker_for, push_ids

pytestmark = pytest.mark.usefixtures('images')

RELEASE = 'rel'
POD_NAME = f'{RELEASE}-sergeant-operator-7d9f8-abcde'
TASKS = 25
TASKS_PER_REPLICA = 10
SECRETS = '/var/run/sergeant'  # where the kubeconfig and the API server's CA are mounted


def worker_values(redis_url: str) -> dict[str, Any]:
    return {
        'crawler': {
            'image': 'registry.example/crawler:1',
            'workerModule': 'tests.workers.supervised_image',
            'workerClass': 'ImageWorker',
            'queue': QUEUE,
            'connector': {'type': 'redis', 'url': redis_url},
            'scaling': {
                'minReplicas': 0,
                'maxReplicas': 5,
                'tasksPerReplica': TASKS_PER_REPLICA,
                'pollingIntervalSeconds': 1,
            },
        }
    }


def service_account_secrets(kube_api: KubeAPIServer, token: str, folder: Path) -> Path:
    """A folder to mount at SECRETS: a kubeconfig signing in as a ServiceAccount (what the pod's mounted
    token gives the operator) and the CA it names; readable by the container's uid 10001."""
    folder.mkdir()
    shutil.copyfile(kube_api.ca_path, folder / 'ca.crt')
    config = {
        'apiVersion': 'v1',
        'kind': 'Config',
        'current-context': 'pod',
        'clusters': [
            {'name': 'api', 'cluster': {'server': kube_api.url, 'certificate-authority': f'{SECRETS}/ca.crt'}}
        ],
        'users': [{'name': 'service-account', 'user': {'token': token}}],
        'contexts': [{'name': 'pod', 'context': {'cluster': 'api', 'user': 'service-account'}}],
    }
    (folder / 'kubeconfig').write_text(json.dumps(config))
    for path in (folder, folder / 'ca.crt', folder / 'kubeconfig'):
        path.chmod(0o755 if path.is_dir() else 0o644)  # a test's throwaway token
    return folder


def pod_env(container: client.V1Container, field_values: dict[str, str]) -> dict[str, str]:
    """The container's variables as the kubelet would set them (only plain values and fieldRefs here)."""
    variables = {}
    for entry in container.env or []:
        if entry.value_from is not None:
            variables[entry.name] = field_values[entry.value_from.field_ref.field_path]
        else:
            variables[entry.name] = entry.value
    return variables


def probe(port: int, path: str) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(f'http://127.0.0.1:{port}{path}', timeout=3):
        return True
    return False


def eventually(check: Callable[[], Any], what: str, operator: Container, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(ApiException):
            result = check()
            if result:
                return result
        if time.monotonic() > deadline:
            raise AssertionError(
                f'not within {timeout:.0f} s: {what}\n--- operator log ---\n{operator.logs()}'
            )
        time.sleep(0.2)


def test_the_operator_image_runs_the_chart_deployment_and_scales_a_pool(
    helm: Helm,
    kube_api: KubeAPIServer,
    kube_client: client.ApiClient,
    kube_namespace: str,
    redis_settings: dict[str, Any],
    tmp_path: Path,
) -> None:
    # given the chart installed for one namespace, with a worker pool on a Redis queue of 25 tasks
    push_ids(broker_for(redis_settings), range(TASKS))
    metrics_port = free_port()
    values = tmp_path / 'values.yaml'
    values.write_text(
        yaml.safe_dump(
            {
                'operator': {'watchNamespace': kube_namespace},
                'metrics': {'port': metrics_port},
                'workers': worker_values(redis_settings['params']['url']),
            }
        )
    )
    helm.run(
        'install', RELEASE, str(CHART), '--namespace', kube_namespace,
        '--kubeconfig', str(kube_api.kubeconfig_path), '--values', str(values),
    )  # fmt: skip

    # and the operator container of the chart's Deployment, signed in as the chart's ServiceAccount
    apps, core = client.AppsV1Api(kube_client), client.CoreV1Api(kube_client)
    deployment = apps.read_namespaced_deployment(f'{RELEASE}-sergeant-operator', kube_namespace)
    pod = deployment.spec.template.spec
    [pod_container] = pod.containers
    assert pod_container.security_context.read_only_root_filesystem is True
    token = core.create_namespaced_service_account_token(
        pod.service_account_name,
        kube_namespace,
        client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[])),
    ).status.token
    secrets = service_account_secrets(kube_api, token, tmp_path / 'secrets')
    variables = pod_env(pod_container, {'metadata.namespace': kube_namespace, 'metadata.name': POD_NAME}) | {
        'SERGEANT_OPERATOR_METRICS_PORT': str(metrics_port),
        'SERGEANT_OPERATOR_KUBECONFIG': f'{SECRETS}/kubeconfig',  # in a pod: the mounted token instead
    }
    flags = [
        '--read-only', '--tmpfs', '/tmp',
        *volume(secrets, SECRETS, read_only=True),
        *env_flags(variables),
    ]  # fmt: skip
    arguments = [*(pod_container.command or []), *pod_container.args]

    # when the image runs with them
    with container(OPERATOR_IMAGE, *arguments, flags=flags) as operator:
        # then it answers its probes, passes its HEALTHCHECK, takes the Lease and renders the pool's
        # Deployment, scaled to ceil(25 / 10) replicas
        eventually(lambda: probe(metrics_port, '/healthz'), '/healthz answering', operator)
        eventually(lambda: operator.healthcheck() == 0, 'a passing HEALTHCHECK', operator)
        worker_deployment = eventually(
            lambda: apps.read_namespaced_deployment('crawler', kube_namespace),
            'the pool Deployment',
            operator,
        )
        assert worker_deployment.metadata.owner_references[0].kind == 'SergeantWorker'
        [worker_container] = worker_deployment.spec.template.spec.containers
        assert worker_container.image == 'registry.example/crawler:1'
        wanted = math.ceil(TASKS / TASKS_PER_REPLICA)
        eventually(
            lambda: apps.read_namespaced_deployment('crawler', kube_namespace).spec.replicas == wanted,
            f'{wanted} replicas',
            operator,
        )
        objects = client.CustomObjectsApi(kube_client)

        def status() -> dict[str, Any]:
            found = objects.get_namespaced_custom_object(
                'sergeant.io', 'v1alpha1', kube_namespace, 'sergeantworkers', 'crawler'
            )
            return found.get('status') or {}

        eventually(lambda: status().get('queueLength') == TASKS, 'the queue length in the status', operator)
        lease = client.CoordinationV1Api(kube_client).read_namespaced_lease(
            f'{RELEASE}-sergeant-operator', kube_namespace
        )
        assert lease.spec.holder_identity == POD_NAME
        assert probe(metrics_port, '/metrics')

        # and `podman stop` (SIGTERM, as the kubelet sends it) stops it cleanly and promptly
        exit_code, took = operator.stop(20)
        log = operator.logs()
        assert exit_code == 0, log
        assert took < 20, log

    assert 'Forbidden' not in log and ' 403' not in log, 'the chart RBAC lacks a permission:\n' + log
