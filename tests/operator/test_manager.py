"""The running operator against an emulated API server: the watch starts and stops resource loops."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sergeant_operator.manager import Operator, OperatorSettings
from sergeant_operator.metrics import HealthServer
from sergeant_operator.queue import QueueReader

from sergeant.connector import create_connector
from tests.operator.kmock_api import EmulatedApi, emulated_api
from tests.operator.test_reconciler import DEPLOYMENTS, NAMESPACE, WORKERS, worker_object

DEADLINE = 20.0


def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f'not within {DEADLINE} s: {what}')


@pytest.fixture
def api() -> Iterator[EmulatedApi]:
    with emulated_api() as emulated:
        yield emulated


@pytest.fixture
def operator(api: EmulatedApi, tmp_path: Path) -> Iterator[Operator]:
    kube = api.kube()
    path = str(tmp_path / 'broker.sqlite3')
    reader = QueueReader(
        kube.read_secret_value, lambda kind, params: create_connector('local', {'file_path': path})
    )
    settings = OperatorSettings(namespace=NAMESPACE, identity='op-1', watch_timeout_seconds=2)
    running = Operator(kube, settings, reader=reader)
    stop = threading.Event()
    thread = threading.Thread(target=running.run, args=(stop,), daemon=True)
    thread.start()
    yield running
    stop.set()
    thread.join(10)


def test_a_created_worker_is_reconciled_and_a_deleted_one_forgotten(
    api: EmulatedApi, operator: Operator
) -> None:
    objects = api.kube()._custom
    objects.create_namespaced_custom_object(
        'sergeant.io', 'v1alpha1', NAMESPACE, 'sergeantworkers', worker_object()
    )

    eventually(lambda: api.object(DEPLOYMENTS, NAMESPACE, 'crawler') is not None, 'the Deployment is applied')
    eventually(
        lambda: operator.controller is not None and operator.controller.watched == [(NAMESPACE, 'crawler')],
        'watched',
    )

    objects.delete_namespaced_custom_object(
        'sergeant.io', 'v1alpha1', NAMESPACE, 'sergeantworkers', 'crawler'
    )

    eventually(lambda: operator.controller is not None and operator.controller.watched == [], 'forgotten')
    assert api.object(WORKERS, NAMESPACE, 'crawler') is None


def test_health_and_metrics_are_served(operator: Operator) -> None:
    server = HealthServer('127.0.0.1', 0, operator.metrics, operator.is_healthy)
    server.start()
    try:
        base = f'http://127.0.0.1:{server.port}'
        with urllib.request.urlopen(f'{base}/healthz', timeout=5) as response:
            assert response.status == 200
        with urllib.request.urlopen(f'{base}/metrics', timeout=5) as response:
            assert b'sergeant_operator_leader 1.0' in response.read()
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f'{base}/nothing', timeout=5)
        assert missing.value.code == 404
    finally:
        server.stop()


def test_health_fails_when_the_loops_stall(operator: Operator) -> None:
    assert operator.is_healthy()
    assert not operator.is_healthy(stale_after=0.0)
