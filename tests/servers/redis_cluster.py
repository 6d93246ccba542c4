"""A real Redis Cluster for tests: masters and replicas from Debian's ``redis-server``.

Every node is a :class:`~tests.servers.redis.RedisServer` started with
``cluster-enabled yes`` on a free port, with its cluster bus on another free port
(``cluster-port``, Redis 7), so no port arithmetic can run past 65535. The nodes
are joined with ``redis-cli --cluster create ... --cluster-replicas N``, and the
fixture returns once every running node says ``cluster_state:ok``, agrees on who
serves every slot, and every replica's link to its master is up.

A short ``cluster-node-timeout`` (1.5 s by default) lets a failover test see a
killed master's replica promoted within a few seconds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import redis

from .ports import free_port
from .redis import RedisServer, running_redis

READY_TIMEOUT = 60.0
NODE_TIMEOUT_MS = 1500
SLOTS = 16384


@dataclasses.dataclass(frozen=True)
class ClusterNodeView:
    """One line of ``CLUSTER NODES`` as one node sees it."""

    node_id: str
    port: int
    master: bool
    failed: bool
    slots: tuple[tuple[int, int], ...]  # ranges, inclusive


@dataclasses.dataclass(frozen=True)
class RedisClusterServers:
    """The nodes of a running cluster; any of them may be killed and started again."""

    servers: tuple[RedisServer, ...]

    @property
    def host(self) -> str:
        return self.servers[0].host

    @property
    def startup_nodes(self) -> list[dict[str, Any]]:
        """Every node as ``{'host', 'port'}``: the connector's ``cluster.nodes`` params."""
        return [{'host': server.host, 'port': server.port} for server in self.servers]

    @property
    def url(self) -> str:
        """A ``redis://`` URL of the first node (any node leads a cluster client to the others)."""
        return f'redis://{self.host}:{self.servers[0].port}'

    def server(self, port: int) -> RedisServer:
        return next(server for server in self.servers if server.port == port)

    def client(self, server: RedisServer) -> redis.Redis:
        """A plain (non-cluster) client of one node; close it after use."""
        return redis.Redis(server.host, server.port, socket_connect_timeout=1, socket_timeout=5)

    def running(self) -> list[RedisServer]:
        return [server for server in self.servers if server.running]

    def view(self, server: RedisServer | None = None) -> list[ClusterNodeView]:
        """The cluster as ``server`` (by default the first running node) sees it."""
        server = server or self.running()[0]
        client = self.client(server)
        try:
            text = client.execute_command('CLUSTER', 'NODES')
        finally:
            client.close()
        if isinstance(text, bytes):
            text = text.decode()
        return [_parse_node_line(line) for line in str(text).splitlines() if line.strip()]

    def masters(self) -> list[RedisServer]:
        """The running servers that serve slots, as the first running node sees it."""
        return [
            self.server(node.port)
            for node in self.view()
            if node.master and node.slots and not node.failed and self.server(node.port).running
        ]

    def master_of_slot(self, slot: int) -> RedisServer:
        for node in self.view():
            if node.master and not node.failed and any(low <= slot <= high for low, high in node.slots):
                return self.server(node.port)
        raise LookupError(f'no master serves slot {slot}')

    def is_healthy(self) -> bool:
        """Every running node: state ok, all slots served by running masters, replica links up."""
        try:
            for server in self.running():
                client = self.client(server)
                try:
                    info = client.execute_command('CLUSTER', 'INFO')
                    text = info.decode() if isinstance(info, bytes) else str(info)
                    if 'cluster_state:ok' not in text:
                        return False
                    replication = client.info('replication')
                    if replication.get('role') == 'slave' and replication.get('master_link_status') != 'up':
                        return False
                finally:
                    client.close()
                served = 0
                for node in self.view(server):
                    if node.master and node.slots:
                        if node.failed or not self.server(node.port).running:
                            return False
                        served += sum(high - low + 1 for low, high in node.slots)
                if served != SLOTS:
                    return False
        except redis.RedisError:
            return False
        return True

    def wait_until_healthy(self, timeout: float = READY_TIMEOUT) -> None:
        wait_for(self.is_healthy, timeout, 'the cluster to be healthy (state ok, replicas in sync)')


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f'timed out after {timeout} s waiting for {what}')
        time.sleep(0.1)


@contextlib.contextmanager
def running_redis_cluster(
    workdir: pathlib.Path,
    masters: int = 3,
    replicas: int = 1,
    node_timeout_ms: int = NODE_TIMEOUT_MS,
) -> Iterator[RedisClusterServers]:
    """Start ``masters * (1 + replicas)`` nodes in ``workdir``, join them, stop them all on exit."""
    redis_cli = shutil.which('redis-cli')
    if redis_cli is None:
        raise RuntimeError('redis-cli is not on PATH: run `make test` (it runs scripts/ensure-redis.sh)')
    with contextlib.ExitStack() as stack:
        servers = []
        for index in range(masters * (1 + replicas)):
            options = (
                '--cluster-enabled', 'yes',
                '--cluster-port', str(free_port()),
                '--cluster-config-file', 'nodes.conf',
                '--cluster-node-timeout', str(node_timeout_ms),
                # a replica takes over however long its link was down: the test kills at will
                '--cluster-replica-validity-factor', '0',
            )  # fmt: skip
            servers.append(stack.enter_context(running_redis(workdir / f'node-{index}', options)))
        cluster = RedisClusterServers(tuple(servers))
        addresses = [f'{server.host}:{server.port}' for server in servers]
        create = [redis_cli, '--cluster', 'create', *addresses, '--cluster-replicas', str(replicas)]
        create.append('--cluster-yes')
        result = subprocess.run(create, capture_output=True, text=True, timeout=READY_TIMEOUT, check=False)
        if result.returncode != 0:
            raise RuntimeError(f'redis-cli --cluster create failed:\n{result.stdout}\n{result.stderr}')
        cluster.wait_until_healthy()
        yield cluster


def _parse_node_line(line: str) -> ClusterNodeView:
    # <id> <ip:port@cport> <flags> <master> <ping-sent> <pong-recv> <config-epoch> <link-state> <slot> ...
    fields = line.split()
    address = fields[1].split('@')[0]
    flags = set(fields[2].split(','))
    slots = []
    for spec in fields[8:]:
        if spec.startswith('['):
            continue  # a slot being imported or migrated
        low, _, high = spec.partition('-')
        slots.append((int(low), int(high or low)))
    return ClusterNodeView(
        node_id=fields[0],
        port=int(address.rpartition(':')[2]),
        master='master' in flags,
        failed='fail' in flags or 'fail?' in flags,
        slots=tuple(slots),
    )
