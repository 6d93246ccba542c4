"""`docker run sergeant-worker ...` without Docker: the image's ENTRYPOINT, ENV and HEALTHCHECK, run as
processes from this virtual environment against a real Redis."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from typing import Any

import psutil
import pytest

from tests.docker.dockerfile import WORKER_DOCKERFILE, entrypoint
from tests.docker.image import container_env, run_healthcheck
from tests.servers.ports import free_port
from tests.supervisor.conftest import QUEUE, Supervise, SupervisorRun, broker_for, push_ids, wait_until

TASKS = 1000
WORKER_ENV = {'TEST_TASK_SECONDS': '0.05', 'TEST_TASKS_PER_TRANSACTION': '5', 'TEST_LEASE_SECONDS': '30'}


def assert_no_task_lost(run: SupervisorRun, settings: dict[str, Any]) -> None:
    broker = broker_for(settings)
    processed = run.processed_ids()
    queued = [leased.task.kwargs['id'] for leased in broker.pop_tasks(QUEUE, TASKS, None).tasks]
    assert len(processed) == len(set(processed)), 'no task ran twice'
    assert broker.connector.in_flight(QUEUE) == 0, 'no task is left leased'
    assert sorted(processed + queued) == list(range(TASKS))


def test_run_with_flags_serves_healthz_and_drains_on_sigterm(
    supervise: Supervise, redis_settings: dict[str, Any]
) -> None:
    # given tasks in Redis and the image started as `docker run sergeant-worker --worker-module ...`
    push_ids(broker_for(redis_settings), range(TASKS))
    variables = container_env(WORKER_DOCKERFILE, SERGEANT_METRICS_PORT=str(free_port()), **WORKER_ENV)
    run = supervise(
        'supervised_image', 'ImageWorker', '--concurrent-workers', '2',
        settings=redis_settings, env=variables, command=entrypoint(WORKER_DOCKERFILE),
    )  # fmt: skip

    # then its HEALTHCHECK passes while it works
    wait_until(lambda: run_healthcheck(WORKER_DOCKERFILE, variables) == 0, 30, 'a passing HEALTHCHECK', 0.5)
    wait_until(lambda: len(run.records()) >= 30, 60, '30 processed tasks')

    # when Docker stops it (SIGTERM to the entrypoint's process)
    run.send(signal.SIGTERM)

    # then it drains and exits 0, every task processed or back in the queue, and the check fails
    assert run.wait(40) == 0, run.log()
    assert_no_task_lost(run, redis_settings)
    assert len(run.processed_ids()) < TASKS, 'stopped mid-way'
    assert run_healthcheck(WORKER_DOCKERFILE, variables) != 0


def test_run_with_environment_variables_only(supervise: Supervise, redis_settings: dict[str, Any]) -> None:
    # given `docker run -e SERGEANT_WORKER_MODULE=... -e SERGEANT_WORKER_CLASS=... sergeant-worker`
    push_ids(broker_for(redis_settings), range(TASKS))
    variables = container_env(
        WORKER_DOCKERFILE,
        SERGEANT_WORKER_MODULE='tests.workers.supervised_image',
        SERGEANT_WORKER_CLASS='ImageWorker',
        SERGEANT_METRICS_PORT=str(free_port()),
        **WORKER_ENV,
    )
    run = supervise(None, None, settings=redis_settings, env=variables, command=entrypoint(WORKER_DOCKERFILE))

    # then it works through the queue, and stops cleanly
    wait_until(lambda: len(run.records()) >= 10, 60, '10 processed tasks')
    run.send(signal.SIGTERM)
    assert run.wait(40) == 0, run.log()
    assert_no_task_lost(run, redis_settings)


def unshare_works() -> bool:
    if shutil.which('unshare') is None:
        return False
    result = subprocess.run(['unshare', '--pid', '--fork', 'true'], capture_output=True, timeout=10)
    return result.returncode == 0


def namespace_pid(pid: int) -> int:
    """The pid of a process inside its own pid namespace (the last NSpid field)."""
    with open(f'/proc/{pid}/status') as status:
        [line] = [line for line in status if line.startswith('NSpid:')]
    return int(line.split()[-1])


@pytest.mark.skipif(not unshare_works(), reason='needs `unshare --pid` (root or user namespaces) to be PID 1')
def test_as_pid_1_sigterm_still_drains(supervise: Supervise, redis_settings: dict[str, Any]) -> None:
    # given the entrypoint as PID 1 of its own pid namespace, as in a container without an init
    push_ids(broker_for(redis_settings), range(TASKS))
    variables = container_env(WORKER_DOCKERFILE, SERGEANT_METRICS_PORT=str(free_port()), **WORKER_ENV)
    command = ['unshare', '--pid', '--fork', '--', *entrypoint(WORKER_DOCKERFILE)]
    run = supervise(
        'supervised_image', 'ImageWorker', settings=redis_settings, env=variables, command=command
    )
    wait_until(lambda: len(run.records()) >= 10, 60, '10 processed tasks')
    [supervisor] = psutil.Process(run.pid).children()
    assert namespace_pid(supervisor.pid) == 1

    # when SIGTERM comes from outside the namespace, as `docker stop` sends it (the kernel drops
    # signals to a PID 1 that has no handler for them)
    started = time.monotonic()
    supervisor.send_signal(signal.SIGTERM)

    # then the supervisor drains and exits 0 (unshare passes its exit code on)
    assert run.wait(40) == 0, run.log()
    assert time.monotonic() - started < 25
    assert_no_task_lost(run, redis_settings)
