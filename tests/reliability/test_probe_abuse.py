"""Abuse of the supervisor's probe port: garbage, slow and silent clients must not silence ``/healthz``.

The supervisor serves ``/metrics``, ``/healthz`` and ``/readyz`` on one port, which
the kubelet probes. Clients that send garbage, send a request a byte at a time
and stop, connect and say nothing (as a half-open connection looks from the
server: the peer is gone without a FIN), or reset their connections must not
keep the probes from answering, nor the supervisor from supervising.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import psutil
from prometheus_client.parser import text_string_to_metric_families

from tests.reliability.conftest import Record, since
from tests.servers.ports import free_port
from tests.supervisor.conftest import QUEUE, Supervise, SupervisorRun, broker_for, push_ids, wait_until

PROMPT = 5.0  # seconds a probe may take to answer: the kubelet's default timeout is 1 s
SILENT = 100
SLOW = 20
GARBAGE = [
    os.urandom(65536),
    b'\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' + os.urandom(64),  # a TLS client hello
    b'BREW /pot HTCPCP/1.0\r\n\r\n',
    b'GET /' + b'a' * 100_000 + b' HTTP/1.1\r\n\r\n',
    b'GET /healthz HTTP/1.1\r\n' + b''.join(b'X-%d: %s\r\n' % (n, b'v' * 100) for n in range(500)) + b'\r\n',
    b'POST /healthz HTTP/1.1\r\nContent-Length: 1000000000000\r\n\r\n' + b'x' * 1000,
    b'GET /healthz HTTP/9.9\r\n\r\n',
    b'GET http://elsewhere.example/ HTTP/1.1\r\nHost: elsewhere.example\r\n\r\n',
    b'\x00' * 4096,
    b'\r\n' * 5000,
    b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' * 1000,  # pipelined
    b'GET /%00%ff/../../etc/passwd HTTP/1.0\r\n\r\n',
]


def healthz(port: int, timeout: float = PROMPT) -> int:
    """The status of ``GET /healthz``; 0 when it does not answer within ``timeout``."""
    try:
        with urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=timeout) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0


def timed_healthz(port: int) -> tuple[int, float]:
    """The status of ``GET /healthz`` and the seconds it took."""
    start = time.monotonic()
    status = healthz(port)
    return status, time.monotonic() - start


def connect(port: int) -> socket.socket:
    # a little apart, with a generous timeout: a burst beyond the listen backlog would wait for
    # SYN retransmits (1 s, 3 s ...)
    time.sleep(0.005)
    return socket.create_connection(('127.0.0.1', port), timeout=30)


@contextlib.contextmanager
def abusive_clients(port: int) -> Iterator[list[socket.socket]]:
    """Silent and slow connections, held open inside the block; garbage and resets already sent."""
    held: list[socket.socket] = []
    try:
        for _ in range(SILENT):
            held.append(connect(port))
        for number in range(SLOW):
            slow = connect(port)
            slow.sendall(b'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow-%d: ' % number)
            held.append(slow)
        for garbage in GARBAGE:
            with contextlib.suppress(OSError), connect(port) as client:
                client.sendall(garbage)
                client.shutdown(socket.SHUT_WR)  # the server reads to the end, answers or drops it
                client.settimeout(PROMPT)
                while client.recv(65536):
                    pass
        for _ in range(100):
            with connect(port) as reset:
                reset.sendall(b'GET /met')
                reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))  # RST on close
        yield held
    finally:
        for client in held:
            client.close()


def supervise_with_probes(supervise: Supervise, settings: dict[str, Any]) -> tuple[SupervisorRun, int]:
    port = free_port()
    run = supervise(
        'supervised_drain',
        'DrainWorker',
        '--concurrent-workers',
        '2',
        '--metrics-port',
        str(port),
        settings=settings,
    )
    wait_until(lambda: healthz(port, timeout=1) == 200, 60, '/healthz to answer')
    return run, port


def test_probes_answer_promptly_during_and_after_garbage_slow_and_silent_clients(
    supervise: Supervise, local_settings: dict[str, Any], record_property: Record
) -> None:
    # given a supervisor of two workers serving its probes
    run, port = supervise_with_probes(supervise, local_settings)
    threads_before = psutil.Process(run.pid).num_threads()

    # when clients send garbage, reset their connections, and 120 of them stay connected, silent
    # or in the middle of a request
    with abusive_clients(port) as held:
        # then /healthz answers promptly again and again, and /metrics still parses
        answers = [timed_healthz(port) for _ in range(20)]
        record_property('clients', len(held))
        record_property('healthz_max_s', round(max(seconds for _status, seconds in answers), 3))
        record_property('healthz_bound_s', PROMPT)
        assert [status for status, _seconds in answers] == [200] * 20
        with urllib.request.urlopen(f'http://127.0.0.1:{port}/metrics', timeout=PROMPT) as answer:
            families = {family.name for family in text_string_to_metric_families(answer.read().decode())}
        assert 'sergeant_worker_processes' in families
        # and the workers still run tasks
        broker = broker_for(local_settings)
        started = time.monotonic()
        push_ids(broker, range(100))
        record_property('tasks', 100)
        wait_until(lambda: len(set(run.processed_ids())) == 100, 60, 'the tasks processed')
        record_property('wall_s', since(started))

    # and after the clients are gone, the probes still answer, the threads serving them are gone,
    # and the supervisor stops cleanly
    status, seconds = timed_healthz(port)
    record_property('healthz_after_s', round(seconds, 3))
    assert status == 200
    wait_until(
        lambda: psutil.Process(run.pid).num_threads() <= threads_before + 2, 30, 'the serving threads to end'
    )
    wait_until(lambda: broker.connector.in_flight(QUEUE) == 0, 30, 'no task in flight')
    run.send(signal.SIGTERM)
    assert run.wait(60) == 0


FILE_LIMIT = 256  # as in a container with a small nofile limit (podman's default here: 1024)
STARVED_FOR = 30.0  # generous: a server dropping silent clients after a timeout has done so by then


def test_silent_clients_cannot_starve_the_supervisor_of_open_files(
    supervise: Supervise, local_settings: dict[str, Any], record_property: Record
) -> None:
    # given a supervisor of two workers serving its probes, allowed 256 open files
    run, port = supervise_with_probes(supervise, local_settings)
    psutil.Process(run.pid).rlimit(psutil.RLIMIT_NOFILE, (FILE_LIMIT, FILE_LIMIT))

    # when clients connect and stay connected without a word, as many as the server takes, and more
    held: list[socket.socket] = []
    try:
        for _ in range(FILE_LIMIT + 50):
            try:
                held.append(socket.create_connection(('127.0.0.1', port), timeout=2))
            except OSError:
                break  # the server takes no more connections
            time.sleep(0.005)
        record_property('clients', len(held))

        # then, while they are still connected, /healthz answers again within a generous bound
        starved_from = time.monotonic()
        wait_until(lambda: healthz(port, timeout=2) == 200, STARVED_FOR, '/healthz to answer again')
        record_property('healthz_wait_s', since(starved_from))
        record_property('healthz_bound_s', STARVED_FOR)
        # and a worker that dies is replaced
        [victim, _other] = run.workers()
        victim.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        record_property('kills', 1)
        run.wait_for_log(r'started in slot', timeout=STARVED_FOR, count=3)
        record_property('respawn_s', since(killed_at))
    finally:
        for client in held:
            client.close()
    run.send(signal.SIGTERM)
    assert run.wait(60) == 0
