"""docker/docker-compose.yml, the local playground: its structure, the files it mounts, the wiring of
Prometheus and Grafana, and its worker and producer run as compose would run them, against real Redis."""

from __future__ import annotations

import re
import signal
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from sergeant.supervisor.options import DEFAULT_DRAIN_TIMEOUT, DEFAULT_METRICS_PORT
from tests.docker.dockerfile import DOCKER, WORKER_DOCKERFILE, entrypoint, final_stage
from tests.docker.image import REPO, container_env
from tests.servers.ports import free_port
from tests.supervisor.conftest import Supervise, wait_until

COMPOSE_FILE = DOCKER / 'docker-compose.yml'
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())  # PyYAML resolves the << merge keys
SERVICES: dict[str, dict[str, Any]] = COMPOSE['services']
BUILT = [name for name, service in SERVICES.items() if 'build' in service]


def mounts(service: str) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts (all of them read-only)."""
    found = {}
    for volume in SERVICES[service].get('volumes', []):
        source, target, mode = volume.split(':')
        assert mode == 'ro', f'{service} mounts {source} writable'
        found[target] = (DOCKER / source).resolve()
    return found


def host_file(service: str, container_path: str) -> Path:
    """The host file a container path of a service reads, through the service's bind mounts."""
    for target, source in mounts(service).items():
        if container_path == target or container_path.startswith(target + '/'):
            return source / container_path.removeprefix(target).lstrip('/')
    raise AssertionError(f'{container_path} is not mounted into {service}')


def depends_on(service: dict[str, Any]) -> dict[str, str | None]:
    """Service -> condition (None in the short list form)."""
    depends = service.get('depends_on', [])
    if isinstance(depends, list):
        return dict.fromkeys(depends)
    return {name: spec.get('condition') for name, spec in depends.items()}


def seconds(duration: str) -> float:
    match = re.fullmatch(r'(\d+)(s|m)', duration)
    assert match is not None, duration
    return int(match.group(1)) * (60 if match.group(2) == 'm' else 1)


def test_the_playground_services() -> None:
    assert set(SERVICES) == {'redis', 'worker', 'producer', 'prometheus', 'grafana'}
    assert BUILT == ['worker', 'producer']


@pytest.mark.parametrize('name', sorted(SERVICES))
def test_images_are_pinned_or_built_here(name: str) -> None:
    service = SERVICES[name]
    if 'build' in service:
        context = (DOCKER / service['build']['context']).resolve()
        assert context == REPO
        assert (context / service['build']['dockerfile']).resolve() == WORKER_DOCKERFILE
        assert service['image'] == 'sergeant-worker'
    else:
        _, _, tag = service['image'].partition(':')
        assert re.fullmatch(r'v?[0-9]+(\.[0-9]+)*(-[a-z0-9]+)?', tag), (
            f'{service["image"]}: pin a release tag'
        )


@pytest.mark.parametrize('name', sorted(SERVICES))
def test_mounts_exist_dependencies_are_services_and_ports_stay_local(name: str) -> None:
    service = SERVICES[name]

    for source in mounts(name).values():
        assert source.exists(), source
    for dependency, condition in depends_on(service).items():
        assert dependency in SERVICES
        if condition == 'service_healthy':
            assert 'healthcheck' in SERVICES[dependency]
    for port in service.get('ports', []):
        assert str(port).startswith('127.0.0.1:'), f'{name} publishes {port} beyond this machine'
    assert not service.get('privileged', False)


@pytest.mark.parametrize('name', BUILT)
def test_sergeant_containers_are_locked_down(name: str) -> None:
    service = SERVICES[name]

    assert service['read_only'] is True and '/tmp' in service['tmpfs']
    assert service['cap_drop'] == ['ALL']
    assert 'no-new-privileges:true' in service['security_opt']


def test_the_worker_gets_time_to_drain() -> None:
    assert seconds(SERVICES['worker']['stop_grace_period']) >= DEFAULT_DRAIN_TIMEOUT + 5


def test_prometheus_scrapes_every_worker_replica_on_the_metrics_port() -> None:
    config = yaml.safe_load(host_file('prometheus', '/etc/prometheus/prometheus.yml').read_text())
    [job] = [job for job in config['scrape_configs'] if job['job_name'] == 'sergeant-worker']
    [discovery] = job['dns_sd_configs']

    assert discovery['names'] == ['worker'] and discovery['type'] == 'A'
    assert discovery['port'] == DEFAULT_METRICS_PORT == int(final_stage(WORKER_DOCKERFILE).last('EXPOSE'))
    assert job.get('metrics_path', '/metrics') == '/metrics'


def test_grafana_gets_prometheus_and_the_dashboard() -> None:
    provisioning = '/etc/grafana/provisioning'
    datasources = yaml.safe_load(
        host_file('grafana', f'{provisioning}/datasources/prometheus.yml').read_text()
    )
    providers = yaml.safe_load(host_file('grafana', f'{provisioning}/dashboards/sergeant.yml').read_text())
    [source] = datasources['datasources']
    [provider] = providers['providers']
    home = SERVICES['grafana']['environment']['GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH']

    assert source['type'] == 'prometheus' and source['isDefault'] is True
    assert source['url'] == 'http://prometheus:9090'
    assert '127.0.0.1:9090:9090' in SERVICES['prometheus']['ports']
    dashboards = host_file('grafana', provider['options']['path'])
    assert dashboards == DOCKER / 'grafana' / 'dashboards'
    assert host_file('grafana', home) == dashboards / 'sergeant.json'
    assert (dashboards / 'sergeant.json').is_file()


def scrape(port: int) -> dict[str, float]:
    """``sergeant_tasks_total`` of a running supervisor, by outcome."""
    with urllib.request.urlopen(f'http://127.0.0.1:{port}/metrics', timeout=5) as response:
        text = response.read().decode()
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == 'sergeant_tasks_total':
                outcome = sample.labels['outcome']
                totals[outcome] = totals.get(outcome, 0.0) + sample.value
    return totals


def test_the_worker_and_producer_run_as_compose_runs_them(
    supervise: Supervise, redis_settings: dict[str, Any], tmp_path: Path
) -> None:
    # given the services' command lines and variables, the broker being the test's Redis
    app = host_file('worker', '/app')
    port = free_port()
    service_env = SERVICES['worker']['environment'] | {'SERGEANT_BROKER_URL': redis_settings['params']['url']}
    variables = container_env(WORKER_DOCKERFILE, app=app, SERGEANT_METRICS_PORT=str(port), **service_env)
    worker = supervise(
        None, None, *SERVICES['worker']['command'], env=variables, command=entrypoint(WORKER_DOCKERFILE)
    )
    producer = SERVICES['producer']
    # the producer pushes 3 batches at once instead of one every few seconds for ever
    producer_command = [*producer['entrypoint'], *producer['command'], '--rounds', '3', '--every', '0']

    # when the producer runs
    result = subprocess.run(
        producer_command, env=variables, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )

    # then its tasks are worked off, and the worker's /metrics shows them
    assert result.returncode == 0, result.stderr
    assert result.stdout.count('pushed batch') == 3
    tasks = 3 * int(producer['command'][producer['command'].index('--tasks') + 1])

    def all_done() -> bool:
        try:
            totals = scrape(port)
        except OSError:
            return False
        # a task ends in success, or (5% failures, max_retries=2: rarely) in max_retries, dead-lettered
        ended = totals.get('success', 0) + totals.get('max_retries', 0) + totals.get('dead_letter', 0)
        return ended >= tasks

    wait_until(all_done, 60, 'the pushed tasks worked off', 0.5)
    assert scrape(port).get('success', 0) > 0
    worker.send(signal.SIGTERM)
    assert worker.wait(40) == 0, worker.log()
