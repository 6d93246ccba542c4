"""`podman run sergeant-worker`: the real image, with a user's worker module mounted read-only, against
the test Redis on the host network; and an image built FROM it with a user's package and requirements.

Every container runs as the README recommends for production: read-only root
filesystem with a tmpfs /tmp. The processed task ids are written by the workers to
a mounted folder, so a test can tell that a task in flight at `podman stop` was
finished or handed back, never lost.
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.docker.podman import (
    BASE_IMAGE,
    OPERATOR_IMAGE,
    RUNTIME,
    VERSION,
    WORKER_IMAGE,
    Container,
    build,
    container,
    env_flags,
    inspect_image,
    podman,
    run,
    volume,
)
from tests.servers.ports import free_port
from tests.supervisor.conftest import QUEUE, broker_for, push_ids, wait_until

pytestmark = pytest.mark.usefixtures('images')

REPO = Path(__file__).resolve().parents[2]
TASKS = 400
GRACE_SECONDS = 30
LOCKED_DOWN = ('--read-only', '--tmpfs', '/tmp')
# 2 workers at 0.05 s a task: about 10 s for the queue, so a stop comes while tasks run
WORKER_ENV = {
    'TEST_QUEUE': QUEUE,
    'TEST_OUTPUT': '/out/processed.txt',
    'TEST_TASK_SECONDS': '0.05',
    'TEST_TASKS_PER_TRANSACTION': '5',
    'TEST_LEASE_SECONDS': '30',
}


def output_dir(tmp_path: Path) -> Path:
    """A folder the container's user (uid 10001) can write its processed ids to."""
    out = tmp_path / 'out'
    out.mkdir()
    out.chmod(0o777)
    return out


def processed_ids(out: Path) -> list[int]:
    path = out / 'processed.txt'
    if not path.exists():
        return []
    return [int(line.split()[1]) for line in path.read_text().splitlines() if line]


def get(port: int, path: str) -> tuple[int, str]:
    with urllib.request.urlopen(f'http://127.0.0.1:{port}{path}', timeout=5) as response:
        return response.status, response.read().decode()


def stop_and_check_nothing_lost(worker: Container, out: Path, settings: dict[str, Any]) -> None:
    """`podman stop` mid-queue: exit 0 within the grace period, every task processed once or queued."""
    wait_until(lambda: len(processed_ids(out)) >= 20, 60, '20 processed tasks', 0.2)

    exit_code, took = worker.stop(GRACE_SECONDS)

    logs = worker.logs()
    assert exit_code == 0, logs
    assert took < GRACE_SECONDS, f'drained in {took:.1f} s, not within the grace period\n{logs}'
    broker = broker_for(settings)
    processed = processed_ids(out)
    queued = [task.kwargs['id'] for task in broker.pop_tasks(QUEUE, TASKS, None).tasks]
    assert len(processed) < TASKS, 'stopped mid-way'
    assert len(processed) == len(set(processed)), 'no task ran twice'
    assert broker.connector.in_flight(QUEUE) == 0, 'no task is left leased'
    assert sorted(processed + queued) == list(range(TASKS)), 'every task processed or back in the queue'


@pytest.mark.parametrize(
    ('image', 'usage'), [(WORKER_IMAGE, 'sergeant supervise'), (OPERATOR_IMAGE, 'sergeant-operator')]
)
def test_help_prints_usage(image: str, usage: str) -> None:
    result = run(image, '--help')

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('usage: ') and usage in result.stdout.splitlines()[0]


@pytest.mark.parametrize('image', [WORKER_IMAGE, OPERATOR_IMAGE])
def test_the_image_keeps_no_build_tool_wheel_cache_or_host_setting(image: str) -> None:
    found = inspect_image(image)
    config = found['Config']
    base_size = inspect_image(BASE_IMAGE)['Size']

    labels = config['Labels']
    assert labels['org.opencontainers.image.version'] == VERSION
    assert labels['org.opencontainers.image.licenses'] == 'MIT'
    assert {'source', 'description', 'title'} <= {key.rpartition('.')[2] for key in labels}
    assert config['User'] == '10001:10001'
    assert found['Healthcheck']['Test'][0] == 'CMD', 'docker format, exec form'
    names = [variable.partition('=')[0].lower() for variable in config['Env']]
    assert not [name for name in names if 'proxy' in name or 'cert' in name or name.startswith('pip_')]
    if image == WORKER_IMAGE:
        assert found['Size'] - base_size <= 100e6, 'the worker image adds at most 100 MB to its base'
    # as root, to see everything: no wheels, no pip or build caches, no compiler
    script = (
        'for p in /wheels /src /root/.cache /home/sergeant/.cache /tmp/pip-*; do'
        ' [ -e "$p" ] && echo "$p"; done;'
        'for c in gcc cc g++ make; do command -v "$c"; done; true'
    )
    result = run(image, '-c', script, flags=('--user', '0', '--entrypoint', 'sh'))
    assert (result.returncode, result.stdout) == (0, ''), result.stdout + result.stderr


def test_by_default_the_wheels_are_built_from_the_source_in_the_context() -> None:
    # given no network, the default build gets as far as building the wheels from the source, so a
    # user's `docker build -f docker/worker.Dockerfile .` builds them, where the network is reachable
    result = podman(
        'build', '--format', 'docker', *RUNTIME, '--network', 'none', '--pull=never',
        '--file', str(REPO / 'docker' / 'worker.Dockerfile'),
        '--build-arg', f'PYTHON_IMAGE={BASE_IMAGE}', '--build-arg', 'WHEELS=source', str(REPO),
        timeout=300, check=False,
    )  # fmt: skip

    assert result.returncode != 0
    assert 'AS wheels-source' in result.stdout and 'pip wheel' in result.stdout, result.stdout + result.stderr


def test_a_mounted_worker_module_works_the_queue_and_drains_on_stop(
    redis_settings: dict[str, Any], tmp_path: Path
) -> None:
    # given tasks in the test Redis, and the image run with the worker module mounted read-only
    push_ids(broker_for(redis_settings), range(TASKS))
    out, port = output_dir(tmp_path), free_port()
    variables = WORKER_ENV | {
        'TEST_CONNECTOR': json.dumps(redis_settings),
        'SERGEANT_METRICS_PORT': str(port),
    }
    flags = [
        *LOCKED_DOWN,
        *volume(REPO / 'tests' / 'workers', '/app/tests/workers', read_only=True),
        *volume(out, '/out', read_only=False),
        *env_flags(variables),
    ]
    arguments = ['--worker-module', 'tests.workers.supervised_image', '--worker-class', 'ImageWorker']

    with container(WORKER_IMAGE, *arguments, '--concurrent-workers', '2', flags=flags) as worker:
        # then it works the queue, as uid 10001, the supervisor being PID 1, its probes answering
        wait_until(lambda: len(processed_ids(out)) >= 5, 60, 'processed tasks', 0.2)
        assert worker.exec('id', '-u').stdout.strip() == '10001'
        assert 'supervise' in worker.exec('cat', '/proc/1/cmdline').stdout
        assert worker.exec('touch', '/app/written').returncode != 0, 'the root filesystem is read-only'
        assert worker.exec('touch', '/tmp/written').returncode == 0, '/tmp is writable'
        assert get(port, '/healthz')[0] == 200
        assert get(port, '/readyz')[0] == 200
        # the workers' counters reach the supervisor's /metrics after their first report
        wait_until(lambda: 'sergeant_tasks_total{' in get(port, '/metrics')[1], 30, 'task counters', 0.5)
        assert worker.healthcheck() == 0, worker.logs()

        # when podman stops it; then it drains and nothing is lost
        stop_and_check_nothing_lost(worker, out, redis_settings)
        assert worker.healthcheck() != 0


TINY_MODULE = 'def double(value):\n    return 2 * value\n'
USER_WORKERS = """
import json
import os

from sergeant import config
from sergeant.worker import Worker
from tinydep import double


class Doubler(Worker):
    def generate_config(self):
        connector = json.loads(os.environ['TEST_CONNECTOR'])
        return config.WorkerConfig(
            name=os.environ['TEST_QUEUE'],
            connector=config.Connector(type=connector['type'], params=connector['params']),
            tasks_per_transaction=5,
            delivery=config.Delivery(lease_seconds=30),
        )

    def initialize(self):
        self.output = os.open(os.environ['TEST_OUTPUT'], os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def work(self, task):
        import time

        time.sleep(0.05)
        assert double(task.kwargs['id']) == 2 * task.kwargs['id']
        os.write(self.output, f'{os.getpid()} {task.kwargs["id"]}\\n'.encode())
"""
# The README's recommended derived image, plus the wheels its requirements name (no network here).
DERIVED_DOCKERFILE = f"""
FROM {WORKER_IMAGE}
USER root
COPY wheels/ /tmp/wheels/
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt && rm -r /tmp/requirements.txt /tmp/wheels
COPY app/ /app/app/
USER 10001
"""


def pure_wheel(directory: Path, name: str, version: str, files: dict[str, str]) -> Path:
    """A minimal pure-Python wheel of ``files`` (path in the wheel -> text)."""
    info = f'{name}-{version}.dist-info'
    contents = dict(files)
    contents[f'{info}/METADATA'] = f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n'
    contents[f'{info}/WHEEL'] = (
        'Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n'
    )
    record = []
    for path, text in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()
        record.append(f'{path},sha256={digest},{len(text.encode())}')
    contents[f'{info}/RECORD'] = '\n'.join([*record, f'{info}/RECORD,,']) + '\n'
    wheel = directory / f'{name}-{version}-py3-none-any.whl'
    with zipfile.ZipFile(wheel, 'w') as archive:
        for path, text in contents.items():
            archive.writestr(path, text)
    return wheel


def test_an_image_from_sergeant_worker_with_a_user_package_and_its_requirements(
    redis_settings: dict[str, Any], tmp_path: Path
) -> None:
    # given a user's package needing `tinydep`, built into an image FROM sergeant-worker, offline
    context = tmp_path / 'context'
    (context / 'wheels').mkdir(parents=True)
    (context / 'app').mkdir()
    pure_wheel(context / 'wheels', 'tinydep', '1.0', {'tinydep/__init__.py': TINY_MODULE})
    (context / 'requirements.txt').write_text('--no-index\n--find-links /tmp/wheels\ntinydep==1.0\n')
    (context / 'app' / '__init__.py').write_text('')
    (context / 'app' / 'workers.py').write_text(USER_WORKERS)
    (context / 'Dockerfile').write_text(DERIVED_DOCKERFILE)
    tag = f'localhost/sergeant-test-derived:{tmp_path.name.lower()}'
    build(context, tag)
    try:
        push_ids(broker_for(redis_settings), range(TASKS))
        out, port = output_dir(tmp_path), free_port()
        # `docker run -e SERGEANT_WORKER_MODULE=... -e SERGEANT_WORKER_CLASS=...`: no arguments
        variables = WORKER_ENV | {
            'TEST_CONNECTOR': json.dumps(redis_settings),
            'SERGEANT_METRICS_PORT': str(port),
            'SERGEANT_WORKER_MODULE': 'app.workers',
            'SERGEANT_WORKER_CLASS': 'Doubler',
        }
        flags = [*LOCKED_DOWN, *volume(out, '/out', read_only=False), *env_flags(variables)]

        # when it runs, then it works the queue with the user's code, and drains on stop
        with container(tag, flags=flags) as worker:
            stop_and_check_nothing_lost(worker, out, redis_settings)
    finally:
        podman('rmi', '--force', tag, check=False)
