"""The chart's PrometheusRule: off by default; when on, it ships rules/sergeant.rules.yaml as it is
(the file promtool unit-tests in tests/alerts), with the labels a Prometheus selects rules by."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.helm.conftest import CHART, NAMESPACE, Helm, by_kind, one
from tests.servers.prometheus import promtool_binary

RULES = CHART / 'rules' / 'sergeant.rules.yaml'
ALL_ON = CHART / 'ci' / 'all-on-values.yaml'


def source_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text())['groups']
    return groups


def test_no_prometheus_rule_by_default(helm: Helm) -> None:
    assert by_kind(helm.render(), 'PrometheusRule') == []


def test_enabled_it_ships_the_tested_rules_file_as_it_is(helm: Helm) -> None:
    rule = one(
        helm.render(set_values=['prometheusRule.enabled=true', 'prometheusRule.labels.release=kps']),
        'PrometheusRule',
    )

    assert rule['apiVersion'] == 'monitoring.coreos.com/v1'
    assert rule['metadata']['namespace'] == NAMESPACE
    assert rule['metadata']['labels']['release'] == 'kps'
    assert rule['metadata']['labels']['app.kubernetes.io/component'] == 'alerts'
    assert rule['spec']['groups'] == source_groups()


def test_all_on_leaves_out_disabled_alerts_labels_the_others_and_appends_groups(helm: Helm) -> None:
    values = yaml.safe_load(ALL_ON.read_text())['prometheusRule']
    rule = one(helm.render(ALL_ON), 'PrometheusRule')

    expected = copy.deepcopy(source_groups())
    for group in expected:
        group['rules'] = [r for r in group['rules'] if r['alert'] not in values['disabled']]
        for r in group['rules']:
            r['labels'] = {**values['additionalRuleLabels'], **r['labels']}
    assert rule['metadata']['namespace'] == 'monitoring'
    assert rule['metadata']['labels']['release'] == 'kube-prometheus-stack'
    assert rule['metadata']['annotations'] == {'example.com/owner': 'platform'}
    assert rule['spec']['groups'] == expected + values['additionalGroups']


def test_an_alert_keeps_its_own_severity_over_added_labels(helm: Helm) -> None:
    rule = one(
        helm.render(
            set_values=[
                'prometheusRule.enabled=true',
                'prometheusRule.additionalRuleLabels.severity=info',
                'prometheusRule.additionalRuleLabels.team=ops',
            ]
        ),
        'PrometheusRule',
    )

    for group in rule['spec']['groups']:
        for r in group['rules']:
            assert r['labels']['severity'] in {'critical', 'warning'}
            assert r['labels']['team'] == 'ops'


def test_a_group_whose_alerts_are_all_disabled_is_left_out(helm: Helm) -> None:
    rule = one(
        helm.render(
            set_values=['prometheusRule.enabled=true', 'prometheusRule.disabled={SergeantBrokerUnreachable}']
        ),
        'PrometheusRule',
    )

    names = [group['name'] for group in rule['spec']['groups']]
    assert 'sergeant-broker' not in names
    assert names == [group['name'] for group in source_groups() if group['name'] != 'sergeant-broker']


def test_promtool_accepts_what_the_chart_renders(helm: Helm, tmp_path: Path) -> None:
    rule = one(helm.render(ALL_ON), 'PrometheusRule')
    rendered = tmp_path / 'rendered.rules.yaml'
    rendered.write_text(yaml.safe_dump({'groups': rule['spec']['groups']}))

    result = subprocess.run(
        [promtool_binary(), 'check', 'rules', str(rendered)], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stdout + result.stderr
