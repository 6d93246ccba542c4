"""``/healthz`` and ``/readyz`` of a real supervisor: broker outages, dead workers, ports."""

from __future__ import annotations

import signal
import socket
from typing import Any

from tests.observability.conftest import get, sample, supervise_observed
from tests.servers.ports import free_port
from tests.servers.redis import RedisServer
from tests.supervisor.conftest import Supervise, wait_until


def answers(port: int, path: str, status: int, containing: str = '') -> bool:
    found, body = get(port, path)
    return found == status and containing in body


def test_readyz_follows_the_broker_and_healthz_the_loop(
    supervise: Supervise, redis_server: RedisServer, redis_settings: dict[str, Any]
) -> None:
    # given a supervisor of 2 workers on a running Redis
    run, port = supervise_observed(supervise, redis_settings)
    wait_until(lambda: answers(port, '/readyz', 200), 60, '/readyz to answer 200')
    assert answers(port, '/healthz', 200, 'ok')

    # when Redis stops
    redis_server.stop()

    # then /readyz answers 503 naming the broker, /healthz still 200, and probe errors are counted
    wait_until(lambda: answers(port, '/readyz', 503, 'broker unreachable'), 60, '/readyz to answer 503')
    assert answers(port, '/healthz', 200)
    assert sample(port, 'sergeant_broker_up') == 0
    assert (sample(port, 'sergeant_broker_errors_total', source='probe') or 0) >= 1
    assert sample(port, 'sergeant_worker_processes') == 2

    # and when Redis is back, /readyz answers 200 again
    redis_server.start()
    wait_until(lambda: answers(port, '/readyz', 200, 'ok'), 60, '/readyz to answer 200 again')
    assert sample(port, 'sergeant_broker_up') == 1
    assert answers(port, '/nothing-here', 404)
    run.send(signal.SIGTERM)
    assert run.wait() == 0


def test_readyz_is_503_while_no_worker_runs(supervise: Supervise, local_settings: dict[str, Any]) -> None:
    # given workers that crash while starting, again and again
    port = free_port()
    run = supervise(
        'supervised_startup_crash', 'StartupCrashWorker', '--metrics-port', str(port), settings=local_settings
    )

    # then the supervisor is live but not ready, and says why
    wait_until(lambda: answers(port, '/healthz', 200), 60, '/healthz to answer 200')
    wait_until(
        lambda: (sample(port, 'sergeant_worker_respawns_total', reason='start_failed') or 0) >= 1,
        60,
        'a respawn',
    )
    assert answers(port, '/readyz', 503, 'no worker process is running')
    run.send(signal.SIGTERM)
    assert run.wait() == 0


def test_a_taken_port_is_a_clear_start_up_error(supervise: Supervise) -> None:
    # given a port some other process listens on
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(('0.0.0.0', 0))
        taken.listen()
        port = taken.getsockname()[1]

        # when a supervisor is asked to serve metrics there
        run = supervise('supervised_observed', 'ObservedWorker', '--metrics-port', str(port))

        # then it exits with an error naming the port and the way out, without starting workers
        assert run.wait() == 1
    assert f'cannot serve /metrics on 0.0.0.0:{port}' in run.log()
    assert '--metrics-port' in run.log()
    assert 'started in slot' not in run.log()
    assert 'Traceback' not in run.log()


def test_port_zero_serves_nothing_and_workers_count_nothing(supervise: Supervise) -> None:
    # given a supervisor whose metrics port comes from the environment, set to 0
    run = supervise('supervised_observed', 'ObservedWorker', env={'SERGEANT_METRICS_PORT': '0'})
    run.wait_for_log('started in slot')

    # then nothing is served, and the worker is not asked to report metrics
    assert 'serving /metrics' not in run.log()
    wait_until(lambda: len(run.workers()) == 1, 30, 'the worker process')
    assert '--report-metrics' not in run.workers()[0].cmdline()
    run.send(signal.SIGTERM)
    assert run.wait() == 0
