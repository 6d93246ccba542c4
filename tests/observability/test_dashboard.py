"""The Grafana dashboard only queries metrics a real supervisor exports, and shows what it should."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.observability.conftest import sample, scrape, supervise_observed
from tests.supervisor.conftest import QUEUE, REPO, Supervise, broker_for, push_ids, wait_until

DASHBOARD = REPO / 'docker' / 'grafana' / 'dashboards' / 'sergeant.json'
CHART_COPY = REPO / 'helm' / 'sergeant' / 'dashboards' / 'sergeant.json'  # Helm reads its chart's files only
_KEYWORDS = {
    'and',
    'or',
    'unless',
    'bool',
    'offset',
    'by',
    'without',
    'on',
    'ignoring',
    'group_left',
    'group_right',
}
_LABEL_LISTS = re.compile(r'\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)')


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (not functions, keywords or labels)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r'\{[^}]*\}', '', expr)  # label matchers
    expr = re.sub(r'\[[^\]]*\]', '', expr)  # range selectors
    expr = _LABEL_LISTS.sub('', expr)
    expr = re.sub(r'\$\w+', '', expr)  # Grafana variables
    names = set()
    for match in re.finditer(r'(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*', expr):  # not the unit of 5m
        if expr[match.end() :].lstrip().startswith('(') or match.group() in _KEYWORDS:
            continue  # a function call or a keyword
        names.add(match.group())
    return names


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item
        yield from panels(item.get('panels', []))


def load() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(Path(DASHBOARD).read_text())
    return dashboard


def queried_metrics(dashboard: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for panel in panels(dashboard['panels']):
        for target in panel.get('targets', []):
            names |= metric_names(target['expr'])
    for variable in dashboard['templating']['list']:
        if variable['type'] == 'query':
            names |= set(re.findall(r'label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)', variable['definition']))
    return names


def test_names_are_read_from_promql() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le) (rate(sergeant_task_duration_seconds_bucket{worker=~"$worker"}'
        '[$__rate_interval]))) / on (job) group_left max(sergeant_worker_slots{state="a{b}"}) offset 5m'
    )

    assert metric_names(expr) == {'sergeant_task_duration_seconds_bucket', 'sergeant_worker_slots'}


def test_the_dashboard_has_its_panels_and_a_datasource_variable() -> None:
    dashboard = load()
    titles = {panel['title'] for panel in panels(dashboard['panels'])}
    assert {
        'Throughput by outcome',
        'Failure and timeout rates',
        'Task duration',
        'Queue depth',
        'Queue wait',
        'In-flight tasks',
        'Workers alive',
        'Respawns by reason',
        'Worker memory',
    } <= titles
    assert dashboard['templating']['list'][0] == {**dashboard['templating']['list'][0], 'type': 'datasource'}
    for panel in panels(dashboard['panels']):
        if panel['type'] != 'row':
            assert panel['datasource']['uid'] == '${datasource}', panel['title']
    exprs = [target['expr'] for panel in panels(dashboard['panels']) for target in panel.get('targets', [])]
    assert any(f'histogram_quantile({q}, ' in expr for expr in exprs for q in ('0.5', '0.95', '0.99'))


def test_the_helm_chart_ships_the_same_dashboard() -> None:
    assert CHART_COPY.read_bytes() == DASHBOARD.read_bytes(), f'copy {DASHBOARD} to {CHART_COPY}'


def test_every_query_reads_metrics_a_real_supervisor_exports(
    supervise: Supervise, redis_settings: dict[str, Any]
) -> None:
    # given a supervisor with a memory limit whose 2 workers on Redis processed tasks
    push_ids(broker_for(redis_settings), range(20))
    run, port = supervise_observed(supervise, redis_settings, '--max-worker-memory-usage', '1Gi')
    wait_until(
        lambda: sample(port, 'sergeant_tasks_total', worker=QUEUE, outcome='success') == 20, 60, '20 tasks'
    )
    wait_until(
        lambda: sample(port, 'sergeant_queue_length', queue=QUEUE, state='ready') == 0, 60, 'queue lengths'
    )

    # when its /metrics is scraped
    exported = scrape(port).names()

    # then every metric the dashboard queries is among them
    queried = queried_metrics(load())
    assert {'sergeant_task_duration_seconds_bucket', 'sergeant_task_queue_wait_seconds_bucket'} <= queried
    assert queried - exported == set()
    run.send(signal.SIGTERM)
    assert run.wait() == 0
