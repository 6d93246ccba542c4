"""NOTES.txt tells what to do next, following the values.

``helm template`` does not print NOTES.txt and ``helm install --dry-run`` wants a
cluster, so the tests render a copy of the chart in which the notes are also
wrapped in a ConfigMap: the same text, from the same values.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.helm.conftest import CHART, NAMESPACE, RELEASE, Helm

WRAPPER = """apiVersion: v1
kind: ConfigMap
metadata:
  name: rendered-notes
data:
  notes: {{ include "notes-under-test" . | toJson }}
"""


@pytest.fixture(scope='module')
def notes_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chart = tmp_path_factory.mktemp('notes') / 'sergeant'
    shutil.copytree(CHART, chart)
    notes = (chart / 'templates' / 'NOTES.txt').read_text()
    define = '{{- define "notes-under-test" -}}\n' + notes + '{{- end }}\n'
    (chart / 'templates' / '_notes_under_test.tpl').write_text(define)
    (chart / 'templates' / 'rendered-notes.yaml').write_text(WRAPPER)
    return chart


def render_notes(helm: Helm, chart: Path, *values: Path, set_values: tuple[str, ...] = ()) -> str:
    output = helm.template(*values, set_values=set_values, chart=chart).stdout
    [notes] = [
        item['data']['notes']
        for item in yaml.safe_load_all(output)
        if item and item['metadata']['name'] == 'rendered-notes'
    ]
    return str(notes)


def test_the_notes_say_how_to_check_the_operator(helm: Helm, notes_chart: Path) -> None:
    notes = render_notes(helm, notes_chart)

    operator = f'{RELEASE}-sergeant-operator'
    assert f'kubectl --namespace {NAMESPACE} rollout status deployment/{operator}' in notes
    assert f'helm test {RELEASE} --namespace {NAMESPACE}' in notes
    assert f'port-forward service/{operator} 8080' in notes
    assert 'every namespace' in notes


def test_without_worker_pools_the_notes_show_a_sergeant_worker_to_apply(
    helm: Helm, notes_chart: Path
) -> None:
    notes = render_notes(helm, notes_chart)
    manifest = notes.split("<<'YAML'\n", 1)[1].split('YAML\n', 1)[0]

    worker = yaml.safe_load(manifest)
    assert worker['kind'] == 'SergeantWorker'
    assert {'image', 'workerModule', 'workerClass', 'queue', 'connector'} <= set(worker['spec'])


def test_with_every_option_the_notes_list_pools_monitors_and_dashboard(helm: Helm, notes_chart: Path) -> None:
    notes = render_notes(helm, notes_chart, notes_chart / 'ci' / 'all-on-values.yaml')

    assert 'crawler in ops: app.workers.Crawler on queue crawl' in notes
    assert 'reports in batch: reports.worker.Builder on queue reports' in notes
    assert (
        'ServiceMonitor rel-sgt-operator, PodMonitor rel-sgt-workers, '
        'PrometheusRule rel-sgt-alerts in namespace ops' in notes
    )
    assert 'ConfigMap rel-sgt-dashboard (namespace monitoring)' in notes
    assert 'port-forward service/rel-sgt-operator 9090' in notes


def test_a_watched_namespace_is_named(helm: Helm, notes_chart: Path) -> None:
    notes = render_notes(helm, notes_chart, set_values=('operator.watchNamespace=jobs',))

    assert 'in namespace jobs only' in notes
    assert 'kubectl apply --namespace jobs' in notes
