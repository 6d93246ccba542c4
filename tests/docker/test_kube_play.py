"""The pods of our manifests, run for real by `podman kube play` with our images.

The worker Deployment the operator renders, with the worker image:

The body is ``desired_deployment`` of a SergeantWorker, as the operator applies it;
only what a kubelet and a cluster would provide is added: the worker module and an
output folder mounted from the host (in a cluster they come with the user's image).
kube play then runs its pod as Kubernetes would, downward-API variables and
security context included, so the test proves that our manifest and our image agree:
the supervisor starts with the rendered flags, ``POD_NAME`` is the pod's name and
owns the leases at the broker, the probes' path and port answer, the pod runs as
uid 10001 with a read-only root, an in-memory ``/tmp``, no capabilities, no
privilege escalation and seccomp on, and it works the queue to the end.

The chart's operator Deployment, with the operator image: installed by Helm into
the test API server, read back as the API server keeps it, and played with a
kubeconfig of the chart's ServiceAccount mounted (what the kubelet's token mount
gives a pod), it runs with the chart's flags, variables and security context,
answers its probe, leads through its Lease under the pod's name and scales the
chart's worker pool from the queue.

Podman specifics (podman 4.3 here, see the README's Containers section): the pod's
infra container needs the rlimits this machine allows and runc, which only a
containers.conf of our own can give it (``CONTAINERS_CONF``); a container port is
published on the host's same port, which host networking refuses, so the pod runs
on slirp4netns and reaches the test Redis on the host's loopback as ``10.0.2.2``.
Podman resolves no downward-API field but ``metadata.name`` (the chart's
``POD_NAMESPACE`` is given as a value), and it turns an ``httpGet`` liveness probe
into a ``curl`` healthcheck, which neither resolves a named port nor finds curl in
a slim image, so the probes' endpoints are asked from the host instead, through
the published port.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from sergeant_operator.deployment import METRICS_PORT, desired_deployment
from sergeant_operator.resource import parse_worker

from sergeant.connector import create_connector
from sergeant.objects import Task
from tests.docker.podman import OPERATOR_IMAGE, VERSION, WORKER_IMAGE, podman
from tests.helm.conftest import CHART, Helm
from tests.servers.kube import KubeAPIServer
from tests.servers.ports import free_port
from tests.supervisor.conftest import broker_for, wait_until

pytestmark = pytest.mark.usefixtures('images')

REPO = Path(__file__).resolve().parents[2]
HOST_FROM_POD = '10.0.2.2'  # slirp4netns with allow_host_loopback: the host's 127.0.0.1
NETWORK = 'slirp4netns:allow_host_loopback=true'
TASKS = 40
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
"""


def worker_resource(name: str, redis_url: str, queue: str) -> dict[str, Any]:
    connector = {'type': 'redis', 'params': {'url': redis_url}}
    return {
        'apiVersion': 'sergeant.io/v1alpha1',
        'kind': 'SergeantWorker',
        'metadata': {'name': name, 'namespace': 'default', 'uid': str(uuid.uuid4()), 'generation': 1},
        'spec': {
            'image': WORKER_IMAGE,
            'imagePullPolicy': 'Never',
            'workerModule': 'tests.workers.supervised_image',
            'workerClass': 'ImageWorker',
            'concurrentWorkers': 2,
            'queue': queue,
            'connector': {'type': 'redis', 'url': redis_url},
            'template': {
                'env': [
                    {'name': 'TEST_CONNECTOR', 'value': json.dumps(connector)},
                    {'name': 'TEST_QUEUE', 'value': queue},
                    {'name': 'TEST_OUTPUT', 'value': '/out/processed.txt'},
                    {'name': 'TEST_TASK_SECONDS', 'value': '0.25'},
                    {'name': 'TEST_LEASE_SECONDS', 'value': '30'},
                ]
            },
        },
    }


def with_host_mounts(deployment: dict[str, Any], out: Path) -> dict[str, Any]:
    """What the user's image and the cluster would bring: the worker module, a folder for results."""
    pod = deployment['spec']['template']['spec']
    pod['volumes'] = [
        *pod['volumes'],
        {'name': 'workers', 'hostPath': {'path': str(REPO / 'tests' / 'workers'), 'type': 'Directory'}},
        {'name': 'out', 'hostPath': {'path': str(out), 'type': 'Directory'}},
    ]
    [worker] = pod['containers']
    worker['volumeMounts'] = [
        *worker['volumeMounts'],
        {'name': 'workers', 'mountPath': '/app/tests/workers', 'readOnly': True},
        {'name': 'out', 'mountPath': '/out'},
    ]
    return deployment


@contextlib.contextmanager
def kube_play(manifest: Path, conf: Path) -> Iterator[None]:
    environment = {**os.environ, 'CONTAINERS_CONF': str(conf)}

    def run(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ['podman', 'kube', *arguments], capture_output=True, text=True, timeout=120, env=environment
        )

    played = run('play', '--network', NETWORK, str(manifest))
    try:
        assert played.returncode == 0, f'podman kube play failed:\n{played.stdout}{played.stderr}'
        yield
    finally:
        run('down', str(manifest))


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(('0.0.0.0', port))
        except OSError:
            return False
    return True


def status_of(path: str, port: int = METRICS_PORT) -> int:
    try:
        with urllib.request.urlopen(f'http://127.0.0.1:{port}{path}', timeout=3) as response:
            return int(response.status)
    except OSError:
        return 0


def processed_ids(out: Path) -> list[int]:
    path = out / 'processed.txt'
    if not path.exists():
        return []
    return [int(line.split()[1]) for line in path.read_text().splitlines() if line]


def test_the_rendered_worker_pod_runs_the_image_and_works_the_queue(
    redis_settings: dict[str, Any], tmp_path: Path
) -> None:
    if not port_is_free(METRICS_PORT):
        pytest.fail(f'port {METRICS_PORT} is taken: kube play publishes the pod port on the host')
    # given the operator's Deployment for a SergeantWorker on the test Redis, and tasks in its queue
    name, queue = f'kp-{uuid.uuid4().hex[:8]}', f'kube-play-{uuid.uuid4().hex[:8]}'
    host_url = redis_settings['params']['url']
    pod_url = host_url.replace('127.0.0.1', HOST_FROM_POD)
    out = tmp_path / 'out'
    out.mkdir()
    out.chmod(0o777)  # written by the pod's uid 10001
    deployment = desired_deployment(parse_worker(worker_resource(name, pod_url, queue)), 1)
    manifest, conf = tmp_path / 'deployment.yaml', tmp_path / 'containers.conf'
    manifest.write_text(yaml.safe_dump(with_host_mounts(deployment, out)))
    conf.write_text(CONTAINERS_CONF)
    broker = broker_for({'type': 'redis', 'params': {'url': host_url}})
    broker.push_tasks(queue, [Task(kwargs={'id': i}) for i in range(TASKS)])
    connector = create_connector('redis', {'url': host_url})

    # when podman plays it
    with kube_play(manifest, conf):
        pod_name = f'{name}-pod-0'
        container = f'{pod_name}-worker'

        def logs() -> str:
            return podman('logs', container, check=False).stderr

        # then its workers hold tasks under the pod's name (POD_NAME from the downward API)
        owners: set[str] = set()

        def pods_owning() -> bool:
            owners.update(owner.partition('/')[0] for owner in connector.leases_by_owner(queue))
            return bool(owners)

        wait_until(pods_owning, 60, 'leases held by the pod')
        assert owners == {pod_name}, logs()
        # the probes' endpoints answer on the container port
        wait_until(lambda: status_of('/healthz') == 200, 30, '/healthz')
        wait_until(lambda: status_of('/readyz') == 200, 30, '/readyz')
        # the supervisor is PID 1 with the rendered flags
        [worker] = deployment['spec']['template']['spec']['containers']
        cmdline = [
            part for part in podman('exec', container, 'cat', '/proc/1/cmdline').stdout.split('\0') if part
        ]
        flags = worker['command'][1:]  # after the `sergeant` script: python runs it
        assert cmdline[-len(flags) :] == flags, cmdline
        # and the security context holds
        assert podman('exec', container, 'id', '-u').stdout.strip() == '10001'
        assert podman('exec', container, 'touch', '/app/written', check=False).returncode != 0
        assert podman('exec', container, 'touch', '/tmp/written').returncode == 0
        status = dict(
            line.split(':\t', 1)
            for line in podman('exec', container, 'cat', '/proc/1/status').stdout.splitlines()
            if ':\t' in line
        )
        assert status['NoNewPrivs'].strip() == '1'
        assert int(status['CapEff'].strip(), 16) == 0
        assert status['Seccomp'].strip() == '2'  # filtering: the runtime's default profile

        # and every task is processed
        wait_until(lambda: len(set(processed_ids(out))) >= TASKS, 90, 'every task processed', 0.2)
    assert set(processed_ids(out)) == set(range(TASKS))
    connector.delete(queue)
    connector.close()


RELEASE = 'play'
SECRETS = '/var/run/sergeant'  # the kubeconfig and CA of the chart's ServiceAccount, mounted
TASKS_PER_REPLICA = 10


def service_account_kubeconfig(kube_api: KubeAPIServer, token: str, folder: Path) -> Path:
    """A kubeconfig signing in with ``token``; the pod reaches the API server through the host's
    loopback (``HOST_FROM_POD``), whose serving certificate names 127.0.0.1."""
    folder.mkdir()
    (folder / 'ca.crt').write_bytes(kube_api.ca_path.read_bytes())
    server = kube_api.url.replace('127.0.0.1', HOST_FROM_POD)
    cluster = {'server': server, 'certificate-authority': f'{SECRETS}/ca.crt', 'tls-server-name': '127.0.0.1'}
    config = {
        'apiVersion': 'v1',
        'kind': 'Config',
        'current-context': 'pod',
        'clusters': [{'name': 'api', 'cluster': cluster}],
        'users': [{'name': 'service-account', 'user': {'token': token}}],
        'contexts': [{'name': 'pod', 'context': {'cluster': 'api', 'user': 'service-account'}}],
    }
    (folder / 'kubeconfig').write_text(json.dumps(config))
    for path in (folder / 'ca.crt', folder / 'kubeconfig'):
        path.chmod(0o644)  # a test's throwaway token, read by the pod's uid 10001
    folder.chmod(0o755)
    return folder


def test_the_chart_operator_pod_runs_the_image_and_scales_the_pool(
    helm: Helm,
    kube_api: KubeAPIServer,
    kube_client: client.ApiClient,
    kube_namespace: str,
    redis_settings: dict[str, Any],
    tmp_path: Path,
) -> None:
    # given the chart installed for one namespace with a worker pool, 25 tasks in its queue
    queue, tasks = f'kube-play-{uuid.uuid4().hex[:8]}', 25
    host_url = redis_settings['params']['url']
    broker_for({'type': 'redis', 'params': {'url': host_url}}).push_tasks(
        queue, [Task(kwargs={'id': i}) for i in range(tasks)]
    )
    metrics_port = free_port()
    pool = {
        'image': 'registry.example/crawler:1',
        'workerModule': 'tests.workers.supervised_image',
        'workerClass': 'ImageWorker',
        'queue': queue,
        'connector': {'type': 'redis', 'url': host_url.replace('127.0.0.1', HOST_FROM_POD)},
        'scaling': {
            'minReplicas': 0,
            'maxReplicas': 5,
            'tasksPerReplica': TASKS_PER_REPLICA,
            'pollingIntervalSeconds': 1,
        },
    }
    values = {
        'operator': {
            'watchNamespace': kube_namespace,
            'image': {'repository': OPERATOR_IMAGE.rsplit(':', 1)[0], 'tag': VERSION, 'pullPolicy': 'Never'},
        },
        'metrics': {'port': metrics_port},
        'workers': {'crawler': pool},
    }
    (tmp_path / 'values.yaml').write_text(yaml.safe_dump(values))
    helm.run(
        'install', RELEASE, str(CHART), '--namespace', kube_namespace,
        '--kubeconfig', str(kube_api.kubeconfig_path), '--values', str(tmp_path / 'values.yaml'),
    )  # fmt: skip
    apps, core = client.AppsV1Api(kube_client), client.CoreV1Api(kube_client)
    name = f'{RELEASE}-sergeant-operator'
    stored = kube_client.sanitize_for_serialization(apps.read_namespaced_deployment(name, kube_namespace))
    pod = stored['spec']['template']['spec']
    token = core.create_namespaced_service_account_token(
        pod['serviceAccountName'],
        kube_namespace,
        client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[])),
    ).status.token
    secrets = service_account_kubeconfig(kube_api, token, tmp_path / 'secrets')
    # what the kubelet would add: the token (here a kubeconfig holding it) mounted into the pod
    [operator] = pod['containers']
    for entry in operator['env']:  # podman 4.3 resolves metadata.name only: give the namespace as a value
        if (entry.get('valueFrom') or {}).get('fieldRef', {}).get('fieldPath') == 'metadata.namespace':
            entry.pop('valueFrom')
            entry['value'] = kube_namespace
    operator['env'].append({'name': 'SERGEANT_OPERATOR_KUBECONFIG', 'value': f'{SECRETS}/kubeconfig'})
    operator['volumeMounts'].append({'name': 'service-account', 'mountPath': SECRETS, 'readOnly': True})
    pod['volumes'].append(
        {'name': 'service-account', 'hostPath': {'path': str(secrets), 'type': 'Directory'}}
    )
    manifest = {
        'apiVersion': 'apps/v1',
        'kind': 'Deployment',
        'metadata': {'name': name, 'namespace': kube_namespace, 'labels': stored['metadata']['labels']},
        'spec': {k: v for k, v in stored['spec'].items() if k in ('replicas', 'selector', 'template')},
    }
    path, conf = tmp_path / 'operator.yaml', tmp_path / 'containers.conf'
    path.write_text(yaml.safe_dump(manifest))
    conf.write_text(CONTAINERS_CONF)

    # when podman plays it
    with kube_play(path, conf):
        pod_name = f'{name}-pod-0'

        def logs() -> str:
            return podman('logs', f'{pod_name}-operator', check=False).stderr

        # then it answers its probe, leads under the pod's name and scales the pool: ceil(25 / 10)
        wait_until(lambda: status_of('/healthz', metrics_port) == 200, 60, '/healthz')
        try:
            wait_until(
                lambda: _replicas(apps, 'crawler', kube_namespace) == -(-tasks // TASKS_PER_REPLICA),
                60,
                'the pool scaled from the queue',
                0.2,
            )
        except AssertionError as error:
            raise AssertionError(f'{error}\n--- operator log ---\n{logs()}') from None
        lease = client.CoordinationV1Api(kube_client).read_namespaced_lease(name, kube_namespace)
        assert lease.spec.holder_identity == pod_name
        assert podman('exec', f'{pod_name}-operator', 'id', '-u').stdout.strip() == '10001'
        log = logs()
    assert 'Forbidden' not in log and ' 403' not in log, 'the chart RBAC lacks a permission:\n' + log
    broker_for({'type': 'redis', 'params': {'url': host_url}}).connector.delete(queue)


def _replicas(apps: client.AppsV1Api, name: str, namespace: str) -> int | None:
    try:
        return int(apps.read_namespaced_deployment(name, namespace).spec.replicas)
    except client.ApiException:
        return None
