"""Loopback round-trip times to the benchmark's Redis, to put tasks/s in context.

Runs ``drivers/ping.py`` in each contender's interpreter, so the report shows the
bare-socket floor and what one round trip costs through each redis-py version in
play (ours and 0.27 do not use the same one).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from .measure import DRIVERS_DIR
from .placement import Placement
from .server import RedisServer


def _probe(python: Path, server: RedisServer, placement: Placement) -> dict[str, dict[str, Any]]:
    command = [
        str(python), '-E', '-s', str(DRIVERS_DIR / 'ping.py'),
        '--host', server.host,
        '--port', str(server.port),
        '--unix-socket', server.unix_socket,
    ]  # fmt: skip
    completed = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=300, preexec_fn=placement.pin_client()
    )
    result: dict[str, dict[str, Any]] = json.loads(completed.stdout)
    return result


def measure_latency(
    server: RedisServer, placement: Placement, interpreters: list[Path]
) -> dict[str, dict[str, Any]]:
    """``{'tcp'|'unix': {client name: stats}}``, the raw socket taken from the first interpreter."""
    merged: dict[str, dict[str, Any]] = {'tcp': {}, 'unix': {}}
    for python in interpreters:
        for transport, clients in _probe(python, server, placement).items():
            for client, stats in clients.items():
                merged[transport].setdefault(client, stats)
    return merged
