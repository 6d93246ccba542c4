"""Both Dockerfiles pass hadolint and keep the images' hygiene: multi-stage, slim, non-root, exec form."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sergeant_operator.cli import DEFAULT_METRICS_PORT as OPERATOR_METRICS_PORT

from sergeant.supervisor.options import DEFAULT_METRICS_PORT as WORKER_METRICS_PORT
from tests.docker.dockerfile import (
    OPERATOR_DOCKERFILE,
    WORKER_DOCKERFILE,
    entrypoint,
    env,
    final_stage,
    healthcheck,
    stages,
)
from tests.docker.podman import VERSION

HADOLINT = Path(sys.executable).parent / 'hadolint'
DOCKERFILES = {WORKER_DOCKERFILE: WORKER_METRICS_PORT, OPERATOR_DOCKERFILE: OPERATOR_METRICS_PORT}
PORT_VARIABLES = {
    WORKER_DOCKERFILE: 'SERGEANT_METRICS_PORT',
    OPERATOR_DOCKERFILE: 'SERGEANT_OPERATOR_METRICS_PORT',
}
each_dockerfile = pytest.mark.parametrize('dockerfile', list(DOCKERFILES), ids=lambda path: path.name)


def hadolint(*arguments: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HADOLINT), '--no-color', *arguments], input=stdin, capture_output=True, text=True, timeout=60
    )


@each_dockerfile
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    result = hadolint(str(dockerfile))

    assert (result.returncode, result.stdout) == (0, ''), result.stdout + result.stderr


def test_hadolint_does_report_what_it_should() -> None:
    result = hadolint('-', stdin='FROM python:latest\nRUN pip install requests\nUSER root\n')

    assert result.returncode != 0
    assert {'DL3007', 'DL3013', 'DL3042'} <= set(result.stdout.replace(':', ' ').split())


@each_dockerfile
def test_a_slim_pinned_base_and_separate_build_stages(dockerfile: Path) -> None:
    *builders, final = stages(dockerfile)
    by_name = {stage.name: stage for stage in builders}

    image, _, tag = final.base.partition(':')
    assert image == 'python' and 'slim' in tag and tag[0].isdigit()
    assert final.all('COPY') == ['--from=build /opt/sergeant /opt/sergeant'], 'only the venv is copied'
    assert not any('pip' in run for run in final.all('RUN')), (
        'nothing is built or installed in the final stage'
    )
    # the wheels: built from the context by default, or taken from the build context `wheels`
    assert set(by_name) == {'wheels-source', 'wheels-prebuilt', 'selected-wheels', 'build'}
    assert by_name['selected-wheels'].base == 'wheels-source', 'WHEELS defaults to source'
    assert any('pip wheel' in run for run in by_name['wheels-source'].all('RUN'))
    assert by_name['wheels-prebuilt'].all('COPY') == ['--from=wheels . /wheels/']
    [install] = by_name['build'].all('RUN')
    assert '--no-index --find-links /wheels' in install, 'installed offline, whichever the wheels'


@each_dockerfile
def test_the_version_label_defaults_to_the_package_version(dockerfile: Path) -> None:
    args = dict(arg.partition('=')[::2] for arg in final_stage(dockerfile).all('ARG'))
    labels = ' '.join(final_stage(dockerfile).all('LABEL'))

    assert args['VERSION'] == VERSION  # make images passes it; a plain `docker build` gets this default
    for key in ('title', 'description', 'version', 'source', 'licenses'):
        assert f'org.opencontainers.image.{key}=' in labels


@each_dockerfile
def test_the_container_runs_as_an_unprivileged_numeric_user(dockerfile: Path) -> None:
    user = final_stage(dockerfile).last('USER')
    uid, _, gid = user.partition(':')

    # numeric, so that Kubernetes' runAsNonRoot can check it without reading /etc/passwd
    assert uid.isdigit() and int(uid) >= 1000 and gid.isdigit()


@each_dockerfile
def test_signals_reach_the_process_and_the_metrics_port_is_exposed(dockerfile: Path) -> None:
    stage = final_stage(dockerfile)
    port = DOCKERFILES[dockerfile]

    assert entrypoint(dockerfile)  # exec form: the program is PID 1 and receives SIGTERM itself
    assert stage.last('STOPSIGNAL') == 'SIGTERM'
    assert stage.last('EXPOSE') == str(port)
    assert env(dockerfile)[PORT_VARIABLES[dockerfile]] == str(port)


@each_dockerfile
def test_the_healthcheck_asks_healthz_on_the_metrics_port(dockerfile: Path) -> None:
    options, command = healthcheck(dockerfile)

    assert {'interval', 'timeout', 'start-period', 'retries'} <= set(options)
    assert command[:2] == ['python', '-c']
    assert '/healthz' in command[2] and PORT_VARIABLES[dockerfile] in command[2]
