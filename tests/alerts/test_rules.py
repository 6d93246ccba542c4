"""The alert rules the chart ships (helm/sergeant/rules/sergeant.rules.yaml), checked by promtool.

``promtool check rules`` parses every expression and template; ``promtool test rules`` runs the unit
tests of sergeant.rules.test.yaml, where every alert fires on some series and stays quiet on others
just short of its threshold. tests/observability/test_prometheus.py loads the same file into a real
Prometheus scraping a supervisor; tests/helm/test_prometheus_rule.py checks the chart ships it as is.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.servers.prometheus import promtool_binary

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / 'helm' / 'sergeant' / 'rules' / 'sergeant.rules.yaml'
UNIT_TESTS = Path(__file__).with_name('sergeant.rules.test.yaml')
SEVERITIES = {'critical', 'warning'}


def promtool(*arguments: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool_binary(), *arguments], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())['groups']
    return [rule for group in groups for rule in group['rules'] if 'alert' in rule]


def test_promtool_accepts_the_rules_file() -> None:
    result = promtool('check', 'rules', str(RULES))

    assert result.returncode == 0, result.stdout + result.stderr
    assert f'SUCCESS: {len(alerts())} rules found' in result.stdout


def test_the_unit_tests_of_every_alert_pass() -> None:
    result = promtool('test', 'rules', UNIT_TESTS.name, cwd=UNIT_TESTS.parent)

    assert result.returncode == 0, result.stdout + result.stderr
    assert 'SUCCESS' in result.stdout


def test_every_alert_is_tested_firing_and_quiet() -> None:
    cases = [
        case for test in yaml.safe_load(UNIT_TESTS.read_text())['tests'] for case in test['alert_rule_test']
    ]

    for alert in alerts():
        name = alert['alert']
        assert any(case['alertname'] == name and case['exp_alerts'] for case in cases), f'{name} never fires'
        assert any(case['alertname'] == name and not case['exp_alerts'] for case in cases), (
            f'{name} never quiet'
        )


def test_every_alert_has_a_severity_a_summary_and_a_description_with_its_labels() -> None:
    names = [alert['alert'] for alert in alerts()]

    assert len(names) == len(set(names))
    assert {
        'SergeantSupervisorDown',
        'SergeantWorkerPoolAbsent',
        'SergeantNoWorkerProcesses',
        'SergeantWorkerProcessesMissing',
        'SergeantWorkerRespawnStorm',
        'SergeantWorkerMemoryLimitKills',
        'SergeantBrokerUnreachable',
        'SergeantQueueBacklogGrowing',
        'SergeantQueueWaitHigh',
        'SergeantDeadLettersIncreasing',
        'SergeantTaskFailureRatioHigh',
    } == set(names)
    for alert in alerts():
        assert alert['labels']['severity'] in SEVERITIES, alert['alert']
        assert set(alert['annotations']) >= {'summary', 'description'}, alert['alert']
        assert '$labels.' in alert['annotations']['summary'], alert['alert']
        assert '$labels.job' in alert['annotations']['description'], alert['alert']


def test_the_queue_wait_alert_reads_the_queue_wait_histogram() -> None:
    [wait] = [alert for alert in alerts() if alert['alert'] == 'SergeantQueueWaitHigh']

    assert 'sergeant_task_queue_wait_seconds_bucket' in wait['expr']
    assert 'histogram_quantile(0.95' in wait['expr']
