"""The CRD upgrade path on a real API server of its own: the previous CRD, a resource, then the operator.

Helm installed the chart's ``crds/`` once and never upgrades them; an operator started with
``--manage-crd`` (the chart's default) applies its own. Given the CRD of the previous release
(``fixtures/sergeantworkers-revision-0.yaml``, from git history) and a resource created under it,
the operator (a real ``sergeant-operator`` process, as the chart's service account bound to
``operator/rbac/cluster-role.yaml``) upgrades the CRD, and the old resource keeps working and takes
the new fields, defaulted. The server is its own so that the session's CRD is never downgraded.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from sergeant_operator.crd import REVISION_ANNOTATION, bundled_crd, ensure_crd, revision
from sergeant_operator.kube import Kube, load_api_client

from tests.operator.conftest import eventually
from tests.operator.test_end_to_end import GROUP, PLURAL, VERSION, service_account_kubeconfig, worker_body
from tests.servers.kube import KubeAPIServer, running_kube_apiserver
from tests.servers.redis import RedisServer

FIXTURES = Path(__file__).resolve().parent / 'fixtures'
RBAC = Path(__file__).resolve().parents[2] / 'operator' / 'rbac'
CRD_NAME = 'sergeantworkers.sergeant.io'
NAMESPACE = 'legacy'


@pytest.fixture(scope='module')
def own_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeAPIServer]:
    with running_kube_apiserver(tmp_path_factory.mktemp('crd-upgrade-api')) as server:
        yield server


@pytest.fixture(scope='module')
def kube(own_api: KubeAPIServer) -> Iterator[Kube]:
    api = Kube(load_api_client(str(own_api.kubeconfig_path)))
    yield api
    api.close()


def established_revision(kube: Kube) -> int | None:
    crd = kube.get_crd(CRD_NAME)
    conditions = ((crd or {}).get('status') or {}).get('conditions') or []
    if crd is None or not any(c['type'] == 'Established' and c['status'] == 'True' for c in conditions):
        return None
    return revision(crd)


def install_as_helm_did(kube: Kube) -> None:
    """The previous release's CRD, created the way `helm install` creates crds/ (no apply)."""
    old = yaml.safe_load((FIXTURES / 'sergeantworkers-revision-0.yaml').read_text())
    client.ApiextensionsV1Api(kube.api_client).create_custom_resource_definition(old, field_manager='helm')
    eventually(lambda: established_revision(kube) == 0, 'the old CRD is established')


def bind_the_operator(kube: Kube, directory: Path, server: KubeAPIServer) -> Path:
    """A kubeconfig of the service account sergeant-operator, bound to cluster-role.yaml's ClusterRole."""
    core = client.CoreV1Api(kube.api_client)
    core.create_namespaced_service_account(NAMESPACE, {'metadata': {'name': 'sergeant-operator'}})
    rbac = client.RbacAuthorizationV1Api(kube.api_client)
    for document in yaml.safe_load_all((RBAC / 'cluster-role.yaml').read_text()):
        if document['kind'] == 'ClusterRole':
            rbac.create_cluster_role(document)
        else:
            document['subjects'][0]['namespace'] = NAMESPACE
            rbac.create_cluster_role_binding(document)
    token = core.create_namespaced_service_account_token(
        'sergeant-operator', NAMESPACE, {'spec': {'expirationSeconds': 3600}}
    ).status.token
    return service_account_kubeconfig(directory, server, token)


def test_the_operator_upgrades_the_crd_and_old_resources_keep_working(
    own_api: KubeAPIServer, kube: Kube, redis_server: RedisServer, tmp_path: Path
) -> None:
    install_as_helm_did(kube)
    client.CoreV1Api(kube.api_client).create_namespace({'metadata': {'name': NAMESPACE}})
    objects = client.CustomObjectsApi(kube.api_client)
    old = worker_body('veteran', redis_server.url, 'veteran-queue', minReplicas=1)
    del old['spec']['scaling']['cooldownSeconds']
    objects.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, old)
    kubeconfig = bind_the_operator(kube, tmp_path, own_api)

    command = [
        sys.executable, '-m', 'sergeant_operator.cli', '--kubeconfig', str(kubeconfig),
        '--namespace', NAMESPACE, '--no-leader-election', '--metrics-port', '0', '--manage-crd',
    ]  # fmt: skip
    log = tmp_path / 'operator.log'
    with open(log, 'wb') as output:
        operator = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        eventually(lambda: established_revision(kube) == revision(bundled_crd()), 'the CRD is upgraded')
        eventually(lambda: kube.get_deployment(NAMESPACE, 'veteran'), 'the old resource is deployed')
        worker: dict[str, Any] = eventually(
            lambda: (w := kube.get_worker(NAMESPACE, 'veteran')).get('status', {}).get('conditions') and w,
            'the old resource has a status',
        )
    finally:
        operator.terminate()
        operator.wait(30)
    assert operator.returncode == 0, log.read_text()

    assert worker['spec']['scaling']['cooldownSeconds'] == 300  # stored without it: defaulted
    crd = kube.get_crd(CRD_NAME)
    assert crd is not None and crd['metadata']['annotations'][REVISION_ANNOTATION] == '1'
    assert ('sergeant-operator', 'Apply') in {
        (f['manager'], f['operation']) for f in crd['metadata']['managedFields']
    }
    # the new fields are served for the old resource, with their defaults
    patch = {'spec': {'scaling': {'fallback': {'replicas': 1}}}, 'metadata': {'annotations': {'x': 'y'}}}
    patched = objects.patch_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, 'veteran', patch)
    assert patched['spec']['scaling']['fallback'] == {'replicas': 1, 'failureThreshold': 3}
    assert 'SergeantWorker CRD: upgraded' in log.read_text()


def test_a_current_or_newer_crd_is_left_alone(kube: Kube) -> None:
    eventually(lambda: established_revision(kube) is not None, 'a CRD is installed')
    before = kube.get_crd(CRD_NAME)
    older = bundled_crd()
    older['metadata']['annotations'][REVISION_ANNOTATION] = '0'

    assert ensure_crd(kube) == 'current'
    assert ensure_crd(kube, older) == 'current'  # a rolled-back operator does not downgrade it

    after = kube.get_crd(CRD_NAME)
    assert before is not None and after is not None
    assert after['metadata']['resourceVersion'] == before['metadata']['resourceVersion']
