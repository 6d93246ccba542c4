"""examples/kubernetes/: the Secret and the SergeantWorker are valid, and run an example that exists.

Given the manifests, then each passes the CRD's openAPIV3Schema (SergeantWorker) or Kubernetes'
own schema (Secret) for the oldest and newest versions the chart supports, the SergeantWorker
names a worker module and class of examples/ whose queue is the resource's queue, and its
secret references point into the Secret.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm.validation import KUBE_VERSIONS, problems

from .conftest import EXAMPLES

MANIFESTS = sorted((EXAMPLES / 'kubernetes').glob('*.yaml'))


def load(path: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load(path.read_text())
    return manifest


@pytest.mark.parametrize('kube_version', KUBE_VERSIONS)
@pytest.mark.parametrize('path', MANIFESTS, ids=lambda path: path.name)
def test_each_manifest_is_valid(path: Path, kube_version: str) -> None:
    assert problems(load(path), kube_version) == []


def test_the_sergeant_worker_runs_an_example_worker_on_its_queue_with_the_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    manifests = {load(path)['kind']: load(path) for path in MANIFESTS}
    spec, secret = manifests['SergeantWorker']['spec'], manifests['Secret']
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setenv('SERGEANT_BROKER', str(tmp_path / 'broker.sqlite3'))
    module = __import__(spec['workerModule'])
    worker = getattr(module, spec['workerClass'])()
    assert worker.generate_config().name == spec['queue']
    for reference in (spec['connector']['secretRef'], spec['signingKeySecretRef']):
        assert reference['name'] == secret['metadata']['name']
        assert reference['key'] in secret['stringData']
    sys.modules.pop(spec['workerModule'], None)
