"""The operator image as the chart deploys it, without Docker or a kubelet.

`helm install` puts the chart into a real API server (CRD, ServiceAccount, RBAC,
Deployment, a worker pool from values); then the image's ENTRYPOINT runs as a
process with the arguments and variables of the chart's Deployment, signed in
with a token of the chart's ServiceAccount, so the chart's RBAC is what it gets.
It must scale the pool from a real Redis queue, pass its HEALTHCHECK, and stop
cleanly on SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.docker.dockerfile import OPERATOR_DOCKERFILE, entrypoint
from tests.docker.image import container_env, run_healthcheck
from tests.helm.conftest import CHART, Helm
from tests.servers.kube import KubeAPIServer
from tests.servers.ports import free_port
from tests.supervisor.conftest import QUEUE, broker_for, push_ids

RELEASE = 'rel'
POD_NAME = f'{RELEASE}-sergeant-operator-7d9f8-abcde'
TASKS = 25
TASKS_PER_REPLICA = 10


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


def service_account_kubeconfig(kube_api: KubeAPIServer, token: str, path: Path) -> Path:
    """A kubeconfig signing in as a ServiceAccount: what the pod's mounted token gives the operator."""
    config = {
        'apiVersion': 'v1',
        'kind': 'Config',
        'current-context': 'pod',
        'clusters': [
            {
                'name': 'api',
                'cluster': {'server': kube_api.url, 'certificate-authority': str(kube_api.ca_path)},
            }
        ],
        'users': [{'name': 'service-account', 'user': {'token': token}}],
        'contexts': [{'name': 'pod', 'context': {'cluster': 'api', 'user': 'service-account'}}],
    }
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def pod_env(container: client.V1Container, field_values: dict[str, str]) -> dict[str, str]:
    """The container's variables as the kubelet would set them (only plain values and fieldRefs here)."""
    variables = {}
    for entry in container.env or []:
        if entry.value_from is not None:
            variables[entry.name] = field_values[entry.value_from.field_ref.field_path]
        else:
            variables[entry.name] = entry.value
    return variables


@contextlib.contextmanager
def started(command: list[str], env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log_path.open('wb') as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def eventually(check: Callable[[], Any], what: str, log_path: Path, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(ApiException):
            result = check()
            if result:
                return result
        if time.monotonic() > deadline:
            raise AssertionError(
                f'not within {timeout:.0f} s: {what}\n--- operator log ---\n{log_path.read_text()}'
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
    [container] = pod.containers
    token = core.create_namespaced_service_account_token(
        pod.service_account_name,
        kube_namespace,
        client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[])),
    ).status.token
    kubeconfig = service_account_kubeconfig(kube_api, token, tmp_path / 'pod-kubeconfig')
    variables = container_env(
        OPERATOR_DOCKERFILE,
        **pod_env(container, {'metadata.namespace': kube_namespace, 'metadata.name': POD_NAME}),
        SERGEANT_OPERATOR_METRICS_PORT=str(metrics_port),
        SERGEANT_OPERATOR_KUBECONFIG=str(kubeconfig),  # in a pod: the mounted token instead
    )
    base = {
        key: value for key, value in os.environ.items() if not key.startswith(('SERGEANT_', 'KUBECONFIG'))
    }
    command = [*entrypoint(OPERATOR_DOCKERFILE), *(container.command or []), *container.args]
    log_path = tmp_path / 'operator.log'

    # when the image's entrypoint runs with them
    with started(command, base | variables, log_path) as operator:
        # then it passes its HEALTHCHECK, takes the Lease and scales the pool to ceil(25 / 10) replicas
        eventually(
            lambda: run_healthcheck(OPERATOR_DOCKERFILE, variables) == 0, 'a passing HEALTHCHECK', log_path
        )
        worker_deployment = eventually(
            lambda: apps.read_namespaced_deployment('crawler', kube_namespace),
            'the pool Deployment',
            log_path,
        )
        assert worker_deployment.metadata.owner_references[0].kind == 'SergeantWorker'
        wanted = math.ceil(TASKS / TASKS_PER_REPLICA)
        eventually(
            lambda: apps.read_namespaced_deployment('crawler', kube_namespace).spec.replicas == wanted,
            f'{wanted} replicas',
            log_path,
        )
        objects = client.CustomObjectsApi(kube_client)
        status = eventually(
            lambda: objects.get_namespaced_custom_object(
                'sergeant.io', 'v1alpha1', kube_namespace, 'sergeantworkers', 'crawler'
            ).get('status'),
            'a status',
            log_path,
        )
        eventually(
            lambda: (
                objects.get_namespaced_custom_object(
                    'sergeant.io', 'v1alpha1', kube_namespace, 'sergeantworkers', 'crawler'
                )['status'].get('queueLength')
                == TASKS
            ),
            'the queue length in the status',
            log_path,
        )
        lease = client.CoordinationV1Api(kube_client).read_namespaced_lease(
            f'{RELEASE}-sergeant-operator', kube_namespace
        )
        assert lease.spec.holder_identity == POD_NAME

        # and SIGTERM (what the kubelet sends) stops it cleanly and promptly
        operator.send_signal(signal.SIGTERM)
        assert operator.wait(20) == 0, log_path.read_text()

    log = log_path.read_text()
    assert status is not None
    assert 'Forbidden' not in log and ' 403' not in log, 'the chart RBAC lacks a permission:\n' + log
    assert run_healthcheck(OPERATOR_DOCKERFILE, variables) != 0
