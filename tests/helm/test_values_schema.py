"""values.schema.json refuses bad values before anything is rendered, naming what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.helm.conftest import CHART, SCENARIOS, Helm

SCHEMA = json.loads((CHART / 'values.schema.json').read_text())
WORKER = [
    'workers.crawler.image=registry.example/crawler:1',
    'workers.crawler.workerModule=app.workers',
    'workers.crawler.workerClass=Crawler',
    'workers.crawler.queue=crawl',
    'workers.crawler.connector.type=redis',
    'workers.crawler.connector.url=redis://redis:6379/0',
]

BAD = {
    'negative operator replicas': (['operator.replicas=-1'], "'/operator/replicas'"),
    'unknown connector type': (
        [*WORKER, 'workers.crawler.connector.type=kafka'],
        "'/workers/crawler/connector/type'",
    ),
    'the process-local connector': (
        [*WORKER, 'workers.crawler.connector.type=local'],
        "'/workers/crawler/connector/type'",
    ),
    'a misspelt key': (['operator.replica=2'], "'replica' not allowed"),
    'an unknown top-level key': (['ingress.enabled=true'], "'ingress' not allowed"),
    'a worker name that is no DNS label': ([w.replace('crawler', 'Crawler_1') for w in WORKER], 'Crawler_1'),
    'a worker without its queue': ([w for w in WORKER if '.queue=' not in w], "missing property 'queue'"),
    'two broker sources at once': (
        [*WORKER, 'workers.crawler.connector.secretRef.name=broker'],
        "'/workers/crawler/connector'",
    ),
    'a url of another scheme': (
        [*WORKER, 'workers.crawler.connector.url=http://redis'],
        "'/workers/crawler/connector/url'",
    ),
    'negative minReplicas': (
        [*WORKER, 'workers.crawler.scaling.minReplicas=-1'],
        "'/workers/crawler/scaling/minReplicas'",
    ),
    'zero tasksPerReplica': (
        [*WORKER, 'workers.crawler.scaling.tasksPerReplica=0'],
        "'/workers/crawler/scaling/tasksPerReplica'",
    ),
    'zero concurrent workers': (
        [*WORKER, 'workers.crawler.concurrentWorkers=0'],
        "'/workers/crawler/concurrentWorkers'",
    ),
    'the replicas the operator owns': ([*WORKER, 'workers.crawler.replicas=3'], "'replicas' not allowed"),
    'a port out of range': (['metrics.port=70000'], "'/metrics/port'"),
    'an unknown log level': (['operator.logLevel=TRACE'], "'/operator/logLevel'"),
    'a pull policy typo': (['operator.image.pullPolicy=always'], "'/operator/image/pullPolicy'"),
    'a percentage above 100': (
        ['podDisruptionBudget.maxUnavailable=150%'],
        "'/podDisruptionBudget/maxUnavailable'",
    ),
    'a bad scrape interval': (['metrics.serviceMonitor.interval=soon'], "'/metrics/serviceMonitor/interval'"),
    'prometheusRule.enabled not a boolean': (['prometheusRule.enabled=yes'], "'/prometheusRule/enabled'"),
    'a PrometheusRule label not a string': (
        ['prometheusRule.enabled=true', 'prometheusRule.labels.release=1'],
        "'/prometheusRule/labels/release'",
    ),
    'a misspelt prometheusRule key': (['prometheusRule.enable=true'], "'enable' not allowed"),
    'disabled alerts not a list': (
        ['prometheusRule.disabled=SergeantBrokerUnreachable'],
        "'/prometheusRule/disabled'",
    ),
    'an additional rule without expr': (
        [
            'prometheusRule.additionalGroups[0].name=mine',
            'prometheusRule.additionalGroups[0].rules[0].alert=A',
        ],
        "'/prometheusRule/additionalGroups/0/rules/0'",
    ),
}


def test_the_schema_is_a_valid_draft_7_schema() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)


@pytest.mark.parametrize('path', [CHART / 'values.yaml', *SCENARIOS], ids=lambda path: path.name)
def test_the_shipped_values_pass_the_schema(path: Path) -> None:
    values = yaml.safe_load(path.read_text())

    assert list(jsonschema.Draft7Validator(SCHEMA).iter_errors(values)) == []


def test_a_worker_with_every_required_field_passes(helm: Helm) -> None:
    assert helm.template(set_values=WORKER).returncode == 0


@pytest.mark.parametrize('assignments, named', BAD.values(), ids=BAD.keys())
def test_bad_values_are_refused(helm: Helm, assignments: list[str], named: str) -> None:
    result = helm.template(set_values=assignments, check=False)

    assert result.returncode != 0, f'accepted: {assignments}'
    assert "values don't meet the specifications of the schema" in result.stderr
    assert named in result.stderr
