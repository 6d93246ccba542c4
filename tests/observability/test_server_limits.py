"""The probe server drops clients that hold a connection without sending a request."""

from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.registry import CollectorRegistry

from sergeant.observability import server as probe_server
from sergeant.observability.health import Verdict
from sergeant.observability.server import ObservabilityServer
from tests.servers.ports import free_port


@pytest.fixture
def port(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setattr(probe_server, 'READ_TIMEOUT', 2.0)
    monkeypatch.setattr(probe_server, 'MAX_WAITING', 4)
    number = free_port()
    healthy = Verdict(ok=True, reason='all workers alive')
    served = ObservabilityServer('127.0.0.1', number, CollectorRegistry(), lambda: healthy, lambda: healthy)
    served.start()
    yield number
    served.stop()


def closed_by_server(client: socket.socket, within: float) -> bool:
    """Whether the server closes ``client`` within ``within`` seconds (it never answers a silent client)."""
    client.settimeout(within)
    try:
        return client.recv(1) == b''
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def healthz(port: int) -> int:
    with urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2) as answer:
        return int(answer.status)


def test_a_silent_client_is_dropped_after_the_read_timeout(port: int) -> None:
    with socket.create_connection(('127.0.0.1', port)) as silent:
        started = time.monotonic()
        assert closed_by_server(silent, within=5)
        assert time.monotonic() - started >= 1.9


def test_a_client_that_stops_in_the_middle_of_its_headers_is_dropped(port: int) -> None:
    with socket.create_connection(('127.0.0.1', port)) as slow:
        slow.sendall(b'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ')
        assert closed_by_server(slow, within=5)


def test_beyond_the_cap_the_oldest_waiting_connections_are_closed_and_probes_are_served(port: int) -> None:
    # given more silent clients than the server keeps waiting
    clients = [socket.create_connection(('127.0.0.1', port)) for _ in range(6)]
    try:
        # then the oldest two were closed without waiting for the read timeout, the newest four kept
        assert [closed_by_server(client, within=0.5) for client in clients[:2]] == [True, True]
        assert [closed_by_server(client, within=0.1) for client in clients[2:]] == [False] * 4
        # and a probe is still served at once, making room by closing the oldest waiting one
        assert healthz(port) == 200
        assert closed_by_server(clients[2], within=0.5)
    finally:
        for client in clients:
            client.close()
