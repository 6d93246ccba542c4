"""Fixtures of the chart's tests: the pinned Helm binary and rendering the chart with given values.

Helm comes from ``make tools`` (scripts/tools/helm.sh) in ``.tools/bin/helm``; a
missing binary fails with that hint. Helm keeps its cache and config in a
temporary folder, never in the user's home.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / 'helm' / 'sergeant'
SCENARIOS = sorted((CHART / 'ci').glob('*-values.yaml'))
HELM_BINARY = REPO / '.tools' / 'bin' / 'helm'
# Helm built by `go install` assumes Kubernetes 1.20 unless told; render for the oldest version we support.
KUBE_VERSION = '1.29.0'
RELEASE = 'rel'
NAMESPACE = 'ops'


@dataclasses.dataclass(frozen=True)
class Helm:
    binary: Path
    home: Path

    def run(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {
            'PATH': '/usr/bin:/bin',
            'HOME': str(self.home),
            'HELM_CACHE_HOME': str(self.home / 'cache'),
            'HELM_CONFIG_HOME': str(self.home / 'config'),
            'HELM_DATA_HOME': str(self.home / 'data'),
            'KUBECONFIG': str(self.home / 'no-kubeconfig'),
        }
        result = subprocess.run(
            [str(self.binary), *arguments], env=env, capture_output=True, text=True, timeout=120
        )
        if check and result.returncode != 0:
            raise AssertionError(f'helm {" ".join(arguments)} failed:\n{result.stdout}\n{result.stderr}')
        return result

    def template(
        self, *values_files: Path, set_values: Sequence[str] = (), check: bool = True, chart: Path = CHART
    ) -> subprocess.CompletedProcess[str]:
        arguments = ['template', RELEASE, str(chart), '--namespace', NAMESPACE]
        arguments += ['--kube-version', KUBE_VERSION]
        for path in values_files:
            arguments += ['--values', str(path)]
        for assignment in set_values:
            arguments += ['--set', assignment]
        return self.run(*arguments, check=check)

    def render(self, *values_files: Path, set_values: Sequence[str] = ()) -> list[dict[str, Any]]:
        """The manifests ``helm template`` renders, test hooks included, CRDs left out."""
        output = self.template(*values_files, set_values=set_values).stdout
        return [document for document in yaml.safe_load_all(output) if document]


@pytest.fixture(scope='session')
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    if not HELM_BINARY.is_file():
        pytest.fail(f'{HELM_BINARY.relative_to(REPO)} is missing: run `make tools`')
    return Helm(HELM_BINARY, tmp_path_factory.mktemp('helm-home'))


def package_version() -> str:
    """The Python package's version, from pyproject.toml (the chart's appVersion and image tags)."""
    match = re.search(r'^version = "([^"]+)"$', (REPO / 'pyproject.toml').read_text(), re.MULTILINE)
    assert match is not None
    return match.group(1)


def by_kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [manifest for manifest in manifests if manifest['kind'] == kind]


def one(manifests: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [manifest] = by_kind(manifests, kind)
    return manifest
