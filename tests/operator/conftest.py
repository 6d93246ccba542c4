"""Fixtures of the operator's end-to-end tests: a real API server with the CRD, a real Redis, operators.

The API server fixtures come from ``tests/conftest.py`` (kube-apiserver on
etcd: no kubelet or controllers, so Deployments never get pods and nothing is
garbage-collected; tests assert on objects). Only the end-to-end tests use them,
so the fast unit tests of this folder run without the binaries.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from sergeant_operator.kube import Kube, load_api_client
from sergeant_operator.leader import ElectionTimings, LeaderElector
from sergeant_operator.manager import Operator, OperatorSettings

from tests.servers.kube import KubeAPIServer
from tests.servers.redis import RedisServer, running_redis

CRD_PATH = Path(__file__).resolve().parents[2] / 'operator' / 'crd' / 'sergeantworkers.sergeant.io.yaml'
DEADLINE = 30.0
# Short enough for tests, with the same safety margins as the defaults (retry < renew < lease).
TEST_TIMINGS = ElectionTimings(lease_duration=3.0, renew_deadline=2.0, retry_period=0.2)


def eventually(check: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > end:
            raise AssertionError(f'not within {deadline:.0f} s: {what}')
        time.sleep(0.1)


@pytest.fixture(scope='session')
def sergeant_crd(kube_api: KubeAPIServer) -> dict[str, Any]:
    """The SergeantWorker CRD, applied and established."""
    crd = yaml.safe_load(CRD_PATH.read_text())
    api_client = load_api_client(str(kube_api.kubeconfig_path))
    try:
        extensions = client.CustomObjectsApi(api_client)
        extensions.patch_cluster_custom_object(
            'apiextensions.k8s.io', 'v1', 'customresourcedefinitions', crd['metadata']['name'], crd,
            field_manager='sergeant-tests', force=True, _content_type='application/apply-patch+yaml',
        )  # fmt: skip

        def established() -> bool:
            current = extensions.get_cluster_custom_object(
                'apiextensions.k8s.io', 'v1', 'customresourcedefinitions', crd['metadata']['name']
            )
            conditions = (current.get('status') or {}).get('conditions') or []
            return any(c['type'] == 'Established' and c['status'] == 'True' for c in conditions)

        eventually(established, 'the CRD is established')
    finally:
        api_client.close()
    return crd  # type: ignore[no-any-return]


@pytest.fixture(scope='session')
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp('operator-redis')) as server:
        yield server


@pytest.fixture
def kube(kube_api: KubeAPIServer, sergeant_crd: dict[str, Any]) -> Iterator[Kube]:
    api = Kube(load_api_client(str(kube_api.kubeconfig_path)))
    yield api
    api.close()


@dataclasses.dataclass
class RunningOperator:
    operator: Operator
    stop: threading.Event
    thread: threading.Thread

    @property
    def identity(self) -> str:
        return self.operator.settings.identity

    @property
    def leads(self) -> bool:
        return self.operator.is_leader

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(30)


@pytest.fixture
def start_operator(
    kube_api: KubeAPIServer,
    kube_namespace: str,
    sergeant_crd: dict[str, Any],
) -> Iterator[Callable[..., RunningOperator]]:
    """Start operators on the test's namespace, each in its own thread with its own client."""
    started: list[RunningOperator] = []

    def start(identity: str = 'operator-a', api_client: client.ApiClient | None = None) -> RunningOperator:
        kube = Kube(api_client or load_api_client(str(kube_api.kubeconfig_path)))
        elector = LeaderElector(kube, kube_namespace, 'sergeant-operator', identity, TEST_TIMINGS)
        settings = OperatorSettings(namespace=kube_namespace, identity=identity, watch_timeout_seconds=5)
        operator = Operator(kube, settings, elector=elector)
        stop = threading.Event()
        thread = threading.Thread(target=operator.run, args=(stop,), name=f'operator-{identity}', daemon=True)
        thread.start()
        running = RunningOperator(operator, stop, thread)
        started.append(running)
        return running

    yield start
    for running in started:
        running.halt()
        running.operator.kube.close()
