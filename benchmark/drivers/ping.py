"""Round-trip probe: PING over TCP and the unix socket, from whichever interpreter runs it.

Prints JSON with, per transport, a bare socket sending ``PING`` and reading
``+PONG`` (the floor any client pays for a round trip) and redis-py's
``Redis.ping()`` in this interpreter's redis-py version (what a library built on
it pays at least), as median/p99 microseconds, round trips per second and client
CPU microseconds per round trip. A mode that needs one round trip per task cannot
beat the redis-py rate from one process.
"""

from __future__ import annotations

import argparse
import functools
import json
import socket
import statistics
import sys
import time
from collections.abc import Callable

import redis

_PING = b'*1\r\n$4\r\nPING\r\n'
_PONG = b'+PONG\r\n'


def raw_ping(sock: socket.socket) -> None:
    sock.sendall(_PING)
    received = b''
    while len(received) < len(_PONG):
        received += sock.recv(64)


def open_raw(tcp: tuple[str, int] | None, unix: str | None) -> socket.socket:
    if unix is not None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(unix)
        return sock
    assert tcp is not None
    sock = socket.create_connection(tcp)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def sample(call: Callable[[], object], count: int) -> dict[str, float]:
    """Statistics of ``count`` calls after a warm-up."""
    for _ in range(min(1000, count)):
        call()
    durations = []
    started, started_cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        before = time.perf_counter_ns()
        call()
        durations.append(time.perf_counter_ns() - before)
    total, cpu = time.perf_counter() - started, time.process_time() - started_cpu
    durations.sort()
    return {
        'median_us': statistics.median(durations) / 1000,
        'p99_us': durations[int(len(durations) * 0.99)] / 1000,
        'per_second': count / total,
        'client_cpu_us': cpu / count * 1e6,
    }


def measure(tcp: tuple[str, int] | None, unix: str | None, count: int) -> dict[str, dict[str, float]]:
    with open_raw(tcp, unix) as sock:
        raw = sample(functools.partial(raw_ping, sock), count)
    if unix is not None:
        client = redis.Redis(unix_socket_path=unix)
    else:
        assert tcp is not None
        client = redis.Redis(host=tcp[0], port=tcp[1])
    try:
        via_redis_py = sample(client.ping, count)
    finally:
        client.close()
    return {'raw socket': raw, f'redis-py {redis.__version__}': via_redis_py}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--host', required=True)
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--unix-socket', required=True)
    parser.add_argument('--count', type=int, default=20_000)
    arguments = parser.parse_args()
    results = {
        'tcp': measure((arguments.host, arguments.port), None, arguments.count),
        'unix': measure(None, arguments.unix_socket, arguments.count),
    }
    json.dump(results, sys.stdout)
    print()


if __name__ == '__main__':
    main()
