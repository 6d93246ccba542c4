"""Free loopback ports for the servers and supervisors the tests start."""

from __future__ import annotations

import socket


def free_port(host: str = '127.0.0.1') -> int:
    """A port nothing listens on right now (another process may still take it before we bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port
