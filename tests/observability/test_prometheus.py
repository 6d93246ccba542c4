"""Prometheus itself evaluates the Grafana dashboard and the chart's alert rules on a real supervisor.

Grafana cannot run here; what it would send is sent instead. A real ``prometheus`` (Debian's 2.42)
scrapes a supervisor of two workers on Redis every second while they run a short workload with
failures. Then every target of the dashboard is evaluated through ``/api/v1/query`` and
``/api/v1/query_range`` with the dashboard's variables substituted as Grafana does (``$job``,
``$worker`` and ``$queue`` as "All" = ``.*`` and as the values found; ``$__interval``,
``$__rate_interval`` and ``$__range`` from the time range and the data source's scrape interval), and
every ``label_values(...)`` variable through the label values and series APIs. The alert rules file
the chart ships is loaded into the same Prometheus, whose ``/api/v1/rules`` must report each rule
evaluated without error.
"""

from __future__ import annotations

import math
import re
import signal
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.observability.conftest import sample, supervise_observed
from tests.observability.test_dashboard import load, panels
from tests.servers.prometheus import PrometheusServer, running_prometheus
from tests.supervisor.conftest import QUEUE, REPO, Supervise, SupervisorRun, broker_for, push_ids, wait_until

RULES = REPO / 'helm' / 'sergeant' / 'rules' / 'sergeant.rules.yaml'
SCRAPE_SECONDS = 1.0
MAX_DATA_POINTS = 1000  # Grafana's default for a panel about as wide as a screen
# panels whose every target must return a finite value after the workload
MAIN_PANELS = {
    'Throughput',
    'Failure rate',
    'Workers alive',
    'Ready tasks',
    'Throughput by outcome',
    'Failure and timeout rates',
    'Task duration',
    'In-flight tasks',
    'Queue depth',
    'Queue wait',
}
_VARIABLE = re.compile(r'\$(\w+)|\$\{(\w+)(?::\w+)?\}')
_LABEL_VALUES = re.compile(r'^label_values\((?:(?P<match>.+),\s*)?(?P<label>\w+)\)$')


def seconds(value: float) -> str:
    return f'{round(value * 1000)}ms'


def grafana_intervals(start: float, end: float) -> dict[str, str]:
    """``$__interval``, ``$__rate_interval`` and ``$__range`` of a panel showing ``[start, end]``.

    The interval is the range over the panel's data points, never below the data source's scrape
    interval (its "Scrape interval" setting, 1 s here as Prometheus'); the rate interval is
    ``max($__interval + scrape interval, 4 * scrape interval)``.
    """
    interval = max(SCRAPE_SECONDS, (end - start) / MAX_DATA_POINTS)
    return {
        '__interval': seconds(interval),
        '__interval_ms': str(round(interval * 1000)),
        '__rate_interval': seconds(max(interval + SCRAPE_SECONDS, 4 * SCRAPE_SECONDS)),
        '__range': seconds(end - start),
        '__range_s': str(round(end - start)),
        '__range_ms': str(round((end - start) * 1000)),
    }


def regex_value(values: list[str]) -> str:
    """A multi-value variable in a regex matcher, as Grafana's Prometheus data source writes it."""
    escaped = [re.sub(r'([\\^$.|?*+()\[\]{}])', r'\\\\\1', value) for value in values]
    return escaped[0] if len(escaped) == 1 else f'({"|".join(escaped)})'


def substitute(expr: str, variables: Mapping[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in variables, f'unknown dashboard variable ${name} in {expr}'
        return variables[name]

    return _VARIABLE.sub(value, expr)


def targets(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, expression) of every query of the dashboard."""
    for panel in panels(dashboard['panels']):
        for target in panel.get('targets', []):
            yield panel['title'], target['expr']


def query_variables(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [variable for variable in dashboard['templating']['list'] if variable['type'] == 'query']


def label_values(prometheus: PrometheusServer, definition: str, start: float, end: float) -> list[str]:
    """A ``label_values(match, label)`` variable through the label values API and the series API,
    which must agree (Grafana uses the first where Prometheus has it, the second before)."""
    parsed = _LABEL_VALUES.match(definition.strip())
    assert parsed is not None, f'not a label_values() query: {definition}'
    label, match = parsed.group('label'), parsed.group('match')
    window: dict[str, Any] = {'start': start, 'end': end}
    if match is None:
        return sorted(prometheus.api(f'label/{label}/values', **window))
    by_label = sorted(prometheus.api(f'label/{label}/values', **{'match[]': [match]}, **window))
    series = prometheus.api('series', **{'match[]': [match]}, **window)
    assert by_label == sorted({item[label] for item in series if label in item}), definition
    return by_label


def finite_values(result: dict[str, Any]) -> list[float]:
    if result['resultType'] == 'matrix':
        points = [value for series in result['result'] for _time, value in series['values']]
    else:
        points = [series['value'][1] for series in result['result']]
    return [float(point) for point in points if math.isfinite(float(point))]


def run_workload(run: SupervisorRun, port: int, settings: dict[str, Any]) -> None:
    """30 tasks that succeed and 10 that fail, in two batches a few scrapes apart."""
    broker = broker_for(settings)
    push_ids(broker, range(0, 20))
    push_ids(broker, range(20, 25), action='fail')
    time.sleep(3 * SCRAPE_SECONDS)
    push_ids(broker, range(25, 35))
    push_ids(broker, range(35, 40), action='fail')
    wait_until(lambda: len(set(run.processed_ids())) == 40, 60, '40 tasks run')
    wait_until(
        lambda: sample(port, 'sergeant_tasks_total', worker=QUEUE, outcome='success') == 30, 30, 'counts'
    )


def rules_evaluated(prometheus: PrometheusServer) -> list[dict[str, Any]]:
    """The alerting rules of :data:`RULES` as ``/api/v1/rules`` reports them."""
    groups = prometheus.api('rules', type='alert')['groups']
    return [rule for group in groups if group['file'] == str(RULES) for rule in group['rules']]


def test_prometheus_evaluates_every_dashboard_query_and_variable_and_every_alert_rule(
    supervise: Supervise, redis_settings: dict[str, Any], tmp_path: Path
) -> None:
    # given a supervisor of two workers on Redis, scraped every second by a Prometheus with the chart's rules
    run, port = supervise_observed(
        supervise,
        redis_settings,
        '--max-worker-memory-usage',
        '1Gi',
        env={'TEST_TASK_SECONDS': '0.1', 'TEST_MAX_RETRIES': '1'},
    )
    wait_until(lambda: sample(port, 'sergeant_broker_up') == 1, 30, 'the broker probe')
    with running_prometheus(
        tmp_path / 'prometheus', [f'127.0.0.1:{port}'], rule_files=[RULES], scrape_interval=SCRAPE_SECONDS
    ) as prometheus:
        # the counters are scraped at zero before any task, so rate() sees every task
        wait_until(
            lambda: bool(prometheus.query('sergeant_tasks_total{outcome="success"} == 0')['result']),
            30,
            'a first scrape',
            interval=0.2,
        )
        # when the workload has run, and been scraped a few more times
        started = time.time()
        run_workload(run, port, redis_settings)
        time.sleep(3 * SCRAPE_SECONDS)

        # then the dashboard's queries and variables evaluate, and the main panels show data
        check_the_dashboard(prometheus, start=started - 10, end=time.time())
        # and the alert rules evaluate on these series
        check_the_alert_rules(prometheus)
        # and a query Prometheus refuses would not go unnoticed
        with pytest.raises(AssertionError, match='bad_data'):
            prometheus.query('sum(sergeant_tasks_total')
    run.send(signal.SIGTERM)
    assert run.wait() == 0


def check_the_dashboard(prometheus: PrometheusServer, start: float, end: float) -> None:
    dashboard = load()
    intervals = grafana_intervals(start, end)
    step = float(intervals['__interval'].removesuffix('ms')) / 1000

    # the variables, resolved as Grafana does with "All" selected, have this supervisor's values
    all_values = {variable['name']: variable['allValue'] for variable in query_variables(dashboard)}
    found: dict[str, list[str]] = {}
    for variable in query_variables(dashboard):
        definition = substitute(variable['definition'], all_values)
        found[variable['name']] = label_values(prometheus, definition, start, end)
    assert found == {'job': [prometheus.job], 'worker': [QUEUE], 'queue': [QUEUE]}

    # every query evaluates, instant and over the time range, with "All" and with each value chosen
    chosen = {name: regex_value(values) for name, values in found.items()}
    without_data = []
    for selection in (all_values, chosen):
        variables = {**selection, **intervals}
        for title, expr in targets(dashboard):
            query = substitute(expr, variables)
            instant = prometheus.query(query, at=end)
            over_range = prometheus.query_range(query, start, end, step)
            assert instant['resultType'] == 'vector', query
            if not finite_values(over_range):
                without_data.append((title, query))

    assert {title for title, _expr in targets(dashboard)} >= MAIN_PANELS
    assert [(title, query) for title, query in without_data if title in MAIN_PANELS] == []


def check_the_alert_rules(prometheus: PrometheusServer) -> None:
    wait_until(
        lambda: all(rule['health'] != 'unknown' for rule in rules_evaluated(prometheus)),
        30,
        'rule evaluations',
    )
    rules = rules_evaluated(prometheus)
    names = {
        rule['alert'] for group in yaml.safe_load(RULES.read_text())['groups'] for rule in group['rules']
    }

    # every alert of the file is loaded and evaluated without error
    assert {rule['name'] for rule in rules} == names
    assert [
        (rule['name'], rule['health'], rule.get('lastError')) for rule in rules if rule['health'] != 'ok'
    ] == []
    # and the workload's failure ratio (10 of 40 tasks failed) is seen, pending for its 10 minutes
    [ratio] = [rule for rule in rules if rule['name'] == 'SergeantTaskFailureRatioHigh']
    assert ratio['state'] == 'pending'
    assert [alert['labels']['worker'] for alert in ratio['alerts']] == [QUEUE]
