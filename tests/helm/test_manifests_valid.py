"""Every manifest the chart renders is valid for Kubernetes, checked offline (see validation.py)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tests.helm.conftest import CHART, SCENARIOS, Helm, one
from tests.helm.validation import KUBE_VERSIONS, problems

SCENARIO_IDS = ['defaults', *(path.name for path in SCENARIOS)]


@pytest.mark.parametrize('kube_version', KUBE_VERSIONS)
@pytest.mark.parametrize('values', [None, *SCENARIOS], ids=SCENARIO_IDS)
def test_every_rendered_manifest_is_valid(helm: Helm, values: Path | None, kube_version: str) -> None:
    manifests = helm.render(*([values] if values else []))

    found = {
        f'{manifest["kind"]}/{manifest["metadata"]["name"]}': problems(manifest, kube_version)
        for manifest in manifests
    }

    assert manifests
    assert {name: issues for name, issues in found.items() if issues} == {}


@pytest.mark.parametrize('kube_version', KUBE_VERSIONS)
def test_the_crd_the_chart_installs_is_valid(kube_version: str) -> None:
    [crd] = [
        doc for doc in yaml.safe_load_all((CHART / 'crds' / 'sergeantworkers.sergeant.io.yaml').read_text())
    ]
    assert problems(crd, kube_version) == []


# The checks themselves: each catches what it is there for.


def test_an_unknown_field_of_a_core_kind_is_caught(helm: Helm) -> None:
    deployment = copy.deepcopy(one(helm.render(), 'Deployment'))
    deployment['spec']['template']['spec']['containers'][0]['imagePullPolcy'] = 'Always'

    assert any('imagePullPolcy' in problem for problem in problems(deployment, KUBE_VERSIONS[0]))


def test_a_sergeant_worker_is_checked_against_the_crd(helm: Helm) -> None:
    worker = copy.deepcopy(one(helm.render(CHART / 'ci' / 'namespaced-values.yaml'), 'SergeantWorker'))
    assert problems(worker, KUBE_VERSIONS[0]) == []

    worker['spec']['connector']['type'] = 'local'
    del worker['spec']['queue']

    found = problems(worker, KUBE_VERSIONS[0])
    assert any('spec/connector/type' in problem for problem in found)
    assert any("'queue' is a required property" in problem for problem in found)


def test_a_monitor_with_an_unknown_field_is_caught(helm: Helm) -> None:
    monitor = copy.deepcopy(one(helm.render(CHART / 'ci' / 'all-on-values.yaml'), 'PodMonitor'))
    monitor['spec']['podMetricsEndpoints'][0]['intervall'] = '15s'

    assert any('intervall' in problem for problem in problems(monitor, KUBE_VERSIONS[0]))


def test_an_unknown_kind_is_an_error_not_a_pass() -> None:
    manifest = {'apiVersion': 'example.com/v1', 'kind': 'Gadget', 'metadata': {'name': 'g'}}

    assert any('no schema' in problem for problem in problems(manifest, KUBE_VERSIONS[0]))


def test_bad_names_and_labels_are_caught() -> None:
    manifest = {
        'apiVersion': 'v1',
        'kind': 'ConfigMap',
        'metadata': {'name': 'Not_A_Name', 'labels': {'app.kubernetes.io/version': '1.0.0+local'}},
    }

    found = problems(manifest, KUBE_VERSIONS[0])
    assert any('metadata/name' in problem for problem in found)
    assert any('app.kubernetes.io/version' in problem for problem in found)
