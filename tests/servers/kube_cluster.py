"""A Kubernetes cluster with pods for tests: the API server plus controllers, scheduler and kwok.

Beside etcd and kube-apiserver (``tests.servers.kube``) it runs, from the same
Kubernetes release, ``kube-controller-manager`` (Deployments get ReplicaSets and
Pods, garbage collection follows owner references, deleted namespaces go away)
and ``kube-scheduler`` (pods are bound to nodes), and ``kwok``, which registers
fake nodes and plays their kubelet: a pod bound to one turns Running and Ready
within seconds and a deleted pod goes away, with no container run. All are
built by ``make tools`` (scripts/tools/kube-controller-manager.sh,
kube-scheduler.sh, kwok.sh, which also writes kwok's stage definitions into
``.tools/etc/kwok-stages.yaml``).

Every process listens on loopback only (the controller-manager and the scheduler
serve nothing: ``--secure-port=0``) and authenticates with the admin token of the
API server's kubeconfig. The ServiceAccount admission plugin stays off as on the
plain API server (no token controller runs), so pods mount no service-account
token; the ``default`` ServiceAccount of each namespace is created by the
controller-manager. Logs are in the work directory, one per process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import pathlib
import ssl
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

from .kube import (
    _HOST,
    START_TIMEOUT,
    TOOLS_BIN,
    KubeAPIServer,
    _process,
    _start_apiserver,
    _start_etcd,
    _tail,
    required_binary,
)

KUBE_CONTROLLER_MANAGER_BINARY = TOOLS_BIN / 'kube-controller-manager'
KUBE_SCHEDULER_BINARY = TOOLS_BIN / 'kube-scheduler'
KWOK_BINARY = TOOLS_BIN / 'kwok'
KWOK_STAGES = TOOLS_BIN.parent / 'etc' / 'kwok-stages.yaml'

FAKE_NODE_ANNOTATION = 'kwok.x-k8s.io/node'  # kwok manages the nodes annotated with it ('fake')
NODE_CAPACITY = {'cpu': '32', 'memory': '256Gi', 'pods': '110'}


@dataclasses.dataclass(frozen=True)
class KubeCluster(KubeAPIServer):
    """A running API server (see :class:`KubeAPIServer`) whose Deployments get pods on ``nodes``."""

    nodes: tuple[str, ...] = ()


@contextlib.contextmanager
def running_cluster_with_pods(workdir: pathlib.Path | None = None, nodes: int = 2) -> Iterator[KubeCluster]:
    """Start the API server, the controllers, the scheduler and kwok with ``nodes`` fake nodes;
    yield once the nodes are Ready; stop everything on exit.

    ``workdir`` is created if needed and left in place; without it, a temporary
    directory is used and removed on exit.
    """
    controller_manager, scheduler, kwok = (
        required_binary(path) for path in (KUBE_CONTROLLER_MANAGER_BINARY, KUBE_SCHEDULER_BINARY, KWOK_BINARY)
    )
    if not KWOK_STAGES.is_file():
        raise RuntimeError(f'{KWOK_STAGES} is missing: run `make tools` (scripts/build-tools.sh) first')
    with contextlib.ExitStack() as stack:  # unwinds in reverse: kwok, scheduler, controllers, API, etcd
        if workdir is None:
            workdir = pathlib.Path(stack.enter_context(tempfile.TemporaryDirectory(prefix='kube-cluster-')))
        workdir.mkdir(parents=True, exist_ok=True)
        etcd_url = _start_etcd(stack, required_binary(TOOLS_BIN / 'etcd'), workdir)
        api = _start_apiserver(stack, required_binary(TOOLS_BIN / 'kube-apiserver'), workdir, etcd_url)
        kubeconfig = str(api.kubeconfig_path)
        delegated = [f'--authentication-kubeconfig={kubeconfig}', f'--authorization-kubeconfig={kubeconfig}']
        stack.enter_context(
            _process(
                [
                    str(controller_manager),
                    f'--kubeconfig={kubeconfig}',
                    *delegated,
                    '--leader-elect=false',
                    f'--bind-address={_HOST}',
                    '--secure-port=0',
                    f'--service-account-private-key-file={workdir / "service-account.key"}',
                    '--use-service-account-credentials=false',
                    '--controllers=*,-serviceaccount-token',  # tokens come from the TokenRequest API
                ],
                workdir / 'kube-controller-manager.log',
            )
        )
        stack.enter_context(
            _process(
                [
                    str(scheduler),
                    f'--kubeconfig={kubeconfig}',
                    *delegated,
                    '--leader-elect=false',
                    f'--bind-address={_HOST}',
                    '--secure-port=0',
                ],
                workdir / 'kube-scheduler.log',
            )
        )
        stack.enter_context(
            _process(
                [
                    str(kwok),
                    f'--kubeconfig={kubeconfig}',
                    f'--config={KWOK_STAGES}',
                    '--manage-all-nodes=false',
                    f'--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake',
                    '--cidr=10.0.0.1/24',  # pod IPs kwok hands out; nothing is routed
                    '--node-ip=10.0.0.1',
                ],
                workdir / 'kwok.log',
            )
        )
        client = _Client(api)
        names = tuple(f'fake-node-{index}' for index in range(nodes))
        for name in names:
            client.request('POST', '/api/v1/nodes', _node(name))
        _wait_for(lambda: all(_node_is_ready(client, name) for name in names), 'fake nodes Ready', workdir)
        _wait_for(
            lambda: client.get('/api/v1/namespaces/default/serviceaccounts/default') is not None,
            'the default ServiceAccount (controller-manager running)',
            workdir,
        )
        yield KubeCluster(api.url, api.token, api.kubeconfig_path, api.ca_path, api.workdir, names)


def _node(name: str) -> dict[str, Any]:
    return {
        'apiVersion': 'v1',
        'kind': 'Node',
        'metadata': {
            'name': name,
            'annotations': {FAKE_NODE_ANNOTATION: 'fake'},
            'labels': {'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'type': 'kwok'},
        },
        'status': {'capacity': NODE_CAPACITY, 'allocatable': NODE_CAPACITY},
    }


def _node_is_ready(client: _Client, name: str) -> bool:
    node = client.get(f'/api/v1/nodes/{name}') or {}
    conditions = (node.get('status') or {}).get('conditions') or []
    return any(c.get('type') == 'Ready' and c.get('status') == 'True' for c in conditions)


def _wait_for(ready: Any, what: str, workdir: pathlib.Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if time.monotonic() > deadline:
            logs = '\n'.join(
                f'--- {name} ---\n{_tail(workdir / name, 15)}'
                for name in ('kube-controller-manager.log', 'kube-scheduler.log', 'kwok.log')
            )
            raise RuntimeError(f'not within {START_TIMEOUT:.0f} s: {what}\n{logs}')
        time.sleep(0.2)


class _Client:
    """JSON over HTTPS with the admin token: enough to register nodes and wait for them."""

    def __init__(self, api: KubeAPIServer) -> None:
        self._api = api
        self._context = ssl.create_default_context(cafile=str(api.ca_path))

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(
            f'{self._api.url}{path}',
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={'Authorization': f'Bearer {self._api.token}', 'Content-Type': 'application/json'},
        )
        with urllib.request.urlopen(request, timeout=10, context=self._context) as response:
            answer: dict[str, Any] = json.load(response)
            return answer

    def get(self, path: str) -> dict[str, Any] | None:
        try:
            return self.request('GET', path)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise
