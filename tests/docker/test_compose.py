"""docker/docker-compose.yml, the local playground: its structure, the files it mounts, the wiring of
Prometheus and Grafana, and its worker and producer services run with podman in the locally built
sergeant-worker image, with the services' own settings, against the test Redis.

podman-compose itself is not run: its images of Redis, Prometheus and Grafana cannot be pulled here,
and Debian's podman-compose 1.0.3 starts dependencies despite --no-deps and adds the project network
next to a service's host network.
"""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from sergeant.supervisor.options import DEFAULT_DRAIN_TIMEOUT, DEFAULT_METRICS_PORT
from tests.docker.dockerfile import DOCKER, WORKER_DOCKERFILE, final_stage
from tests.docker.podman import REPO, WORKER_IMAGE, container, env_flags, run, volume
from tests.servers.ports import free_port
from tests.supervisor.conftest import wait_until

COMPOSE_FILE = DOCKER / 'docker-compose.yml'
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())  # PyYAML resolves the << merge keys
SERVICES: dict[str, dict[str, Any]] = COMPOSE['services']
BUILT = [name for name, service in SERVICES.items() if 'build' in service]


def mounts(service: str) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts (all of them read-only)."""
    found = {}
    for entry in SERVICES[service].get('volumes', []):
        source, target, mode = entry.split(':')
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


def service_flags(name: str, broker_url: str, metrics_port: int) -> list[str]:
    """`podman run` flags of a compose service, as compose would set them, on the host network instead of
    the project's (the broker is the test's Redis on loopback; no ports to publish)."""
    service = SERVICES[name]
    flags = ['--read-only'] if service.get('read_only') else []
    flags += [flag for path in service.get('tmpfs', []) for flag in ('--tmpfs', path)]
    flags += [flag for capability in service.get('cap_drop', []) for flag in ('--cap-drop', capability)]
    flags += [flag for option in service.get('security_opt', []) for flag in ('--security-opt', option)]
    for target, source in mounts(name).items():
        flags += volume(source, target, read_only=True)
    if 'entrypoint' in service:
        flags += ['--entrypoint', json.dumps(service['entrypoint'])]
    variables = service['environment'] | {
        'SERGEANT_BROKER_URL': broker_url,
        'SERGEANT_METRICS_PORT': str(metrics_port),
    }
    return flags + env_flags(variables)


@pytest.mark.usefixtures('images')
def test_the_worker_and_producer_services_run_in_the_worker_image(redis_settings: dict[str, Any]) -> None:
    # given the worker service's container (the locally built image, the service's lock-down, its mount)
    broker_url = redis_settings['params']['url']
    port = free_port()
    worker_flags = service_flags('worker', broker_url, port)
    producer = SERVICES['producer']
    # the producer pushes 3 batches at once instead of one every few seconds for ever
    producer_command = [*producer['command'], '--rounds', '3', '--every', '0']

    with container(WORKER_IMAGE, *SERVICES['worker']['command'], flags=worker_flags) as worker:
        # when the producer service's container runs
        result = run(WORKER_IMAGE, *producer_command, flags=service_flags('producer', broker_url, 0))

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
        grace = int(seconds(SERVICES['worker']['stop_grace_period']))
        exit_code, took = worker.stop(grace)
        assert exit_code == 0 and took < grace, worker.logs()


def test_prometheus_loads_the_alert_rules_the_chart_ships() -> None:
    config = yaml.safe_load(host_file('prometheus', '/etc/prometheus/prometheus.yml').read_text())

    [rules] = [host_file('prometheus', path) for path in config['rule_files']]
    shipped = DOCKER.parent / 'helm' / 'sergeant' / 'rules' / 'sergeant.rules.yaml'
    assert rules.resolve() == shipped.resolve()
