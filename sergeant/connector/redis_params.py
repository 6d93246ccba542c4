"""Params of the Redis connector: validation, and the clients they describe.

Accepted shapes, each naming independent Redis servers ("nodes"):

* Sergeant 0.27's ``{'nodes': [{'host', 'port', 'password', 'database'}, ...]}``,
  where a node may also carry ``username``, or be ``{'url': ...}`` alone (with
  optional ``username``/``password`` when the URL carries no credentials);
* ``{'url': 'redis://...'}`` for one node, ``{'urls': [...]}`` for several;
* ``{'cluster': {...}}`` for one Redis Cluster (see :func:`parse_cluster`): its
  startup ``nodes`` (``[{'host', 'port'}, ...]``) or the ``url`` of any one node,
  with optional ``username``, ``password`` and, with ``nodes``, ``tls``; or, the
  same as a ``cluster`` ``url``, ``{'url': 'redis+cluster://...'}`` (or
  ``rediss+cluster://``), a form that fits wherever one URL names the broker.

URLs use the ``redis://`` (TCP), ``rediss://`` (TLS) or ``unix://`` (socket)
schemes, exactly as redis-py reads them. Used by :mod:`sergeant.connector.redis`
only; every error is a :class:`~sergeant.errors.ConfigError` naming the offending
field, and never echoes a password.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import redis
import redis.cluster

from ..errors import ConfigError

FIELD = 'connector.params'
MAX_NODES = 256  # a receipt names its node in one byte

# Sensible defaults for a task queue; options spelled out in a URL win over them.
_CLIENT_DEFAULTS: dict[str, Any] = {
    'socket_connect_timeout': 5.0,
    'socket_timeout': 30.0,
    'health_check_interval': 30,
}
_TCP_DEFAULTS: dict[str, Any] = {'socket_keepalive': True}  # unix sockets reject this option
_KEYS = ('nodes', 'url', 'urls', 'cluster')
# a URL in one of these schemes names a Redis Cluster through one of its nodes
CLUSTER_SCHEMES = {'redis+cluster://': 'redis://', 'rediss+cluster://': 'rediss://'}
_CLUSTER_KEYS = {'nodes', 'url', 'username', 'password', 'tls'}
_HOST_NODE_KEYS = {'host', 'port', 'username', 'password', 'database'}
_URL_NODE_KEYS = {'url', 'username', 'password'}
_SCHEMES = ('redis', 'rediss', 'unix')


@dataclasses.dataclass(frozen=True)
class NodeParams:
    """How to reach one Redis server; ``field`` names where it was configured (the URL's field for URLs)."""

    field: str
    url: str | None = None
    host: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = None
    database: int = 0


@dataclasses.dataclass(frozen=True)
class ClusterParams:
    """How to reach one Redis Cluster: startup nodes (host, port), or the URL of one node."""

    field: str
    nodes: tuple[tuple[str, int], ...] = ()
    url: str | None = None
    username: str | None = None
    password: str | None = None
    tls: bool = False


def parse_params(params: Mapping[str, Any]) -> tuple[NodeParams, ...] | ClusterParams:
    """Validate the connector params; raise ConfigError naming the first bad field.

    Independent servers come back as a tuple of :class:`NodeParams`, a cluster as
    :class:`ClusterParams`.
    """
    if not isinstance(params, Mapping):
        raise ConfigError(FIELD, f'must be a mapping, got {type(params).__name__}')
    unknown = set(params) - set(_KEYS)
    if unknown:
        raise ConfigError(FIELD, f'unknown keys for the redis connector: {sorted(unknown)}')
    given = [key for key in _KEYS if key in params]
    if len(given) != 1:
        raise ConfigError(FIELD, "give exactly one of 'nodes', 'url', 'urls' or 'cluster'")
    if 'cluster' in params:
        return parse_cluster(f'{FIELD}.cluster', params['cluster'])
    if 'url' in params:
        url = params['url']
        for scheme, plain in CLUSTER_SCHEMES.items():
            if isinstance(url, str) and url.startswith(scheme):
                field = f'{FIELD}.url'
                return _cluster_from_url(field, field, plain + url.removeprefix(scheme))
        return (_parse_url_node(f'{FIELD}.url', url),)
    key = given[0]
    entries = params[key]
    field = f'{FIELD}.{key}'
    if not isinstance(entries, list | tuple) or not entries:
        raise ConfigError(field, f'must be a non-empty list, got {_describe(entries)}')
    if len(entries) > MAX_NODES:
        raise ConfigError(field, f'at most {MAX_NODES} nodes are supported, got {len(entries)}')
    if key == 'urls':
        return tuple(_parse_url_node(f'{field}[{i}]', url) for i, url in enumerate(entries))
    return tuple(_parse_node(f'{field}[{i}]', node) for i, node in enumerate(entries))


def create_client(node: NodeParams) -> redis.Redis:
    """A client for one node; it connects lazily, on first use."""
    options = dict(_CLIENT_DEFAULTS)
    if node.username is not None:
        options['username'] = node.username
    if node.password is not None:
        options['password'] = node.password
    if node.url is None:
        options.update(_TCP_DEFAULTS)
        return redis.Redis(host=node.host or 'localhost', port=node.port or 6379, db=node.database, **options)
    if not node.url.startswith('unix:'):
        options.update(_TCP_DEFAULTS)
    try:
        client = redis.Redis.from_url(node.url, **options)
        # Options from the URL reach the connection class only when it connects;
        # building one connection now turns a misspelt option into a ConfigError.
        pool = client.connection_pool
        pool.connection_class(**pool.connection_kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(node.field, f'invalid option in {_redact(node.url)!r}: {error}') from None
    return client


def parse_cluster(field: str, cluster: object) -> ClusterParams:
    """Validate ``{'nodes': [{'host', 'port'}, ...]}`` or ``{'url': ...}``, plus credentials and ``tls``.

    A cluster has database 0 only and no unix sockets; a cluster client finds every
    other node from any one it reaches, so several startup nodes only matter when
    some may be down at start.
    """
    if not isinstance(cluster, Mapping):
        raise ConfigError(field, f"must be a mapping with 'nodes' or 'url', got {_describe(cluster)}")
    unknown = set(cluster) - _CLUSTER_KEYS
    if unknown:
        raise ConfigError(field, f'unknown keys: {sorted(unknown)}')
    if ('nodes' in cluster) == ('url' in cluster):
        raise ConfigError(field, "give exactly one of 'nodes' or 'url'")
    username = _optional_text(field, cluster, 'username')
    password = _optional_text(field, cluster, 'password')
    tls = cluster.get('tls', False)
    if not isinstance(tls, bool):
        raise ConfigError(f'{field}.tls', f'must be true or false, got {_describe(tls)}')
    if 'url' in cluster:
        if tls:
            raise ConfigError(f'{field}.tls', 'with a url, ask for TLS with the rediss:// scheme')
        return _cluster_from_url(field, f'{field}.url', cluster['url'], username, password)
    entries = cluster['nodes']
    nodes_field = f'{field}.nodes'
    if not isinstance(entries, list | tuple) or not entries:
        raise ConfigError(nodes_field, f'must be a non-empty list, got {_describe(entries)}')
    nodes = []
    for index, entry in enumerate(entries):
        entry_field = f'{nodes_field}[{index}]'
        if isinstance(entry, Mapping) and set(entry) - {'host', 'port'}:
            raise ConfigError(entry_field, f'unknown keys: {sorted(set(entry) - {"host", "port"})}')
        node = _parse_node(entry_field, entry)
        assert node.host is not None and node.port is not None
        nodes.append((node.host, node.port))
    return ClusterParams(field, nodes=tuple(nodes), username=username, password=password, tls=tls)


def _cluster_from_url(
    field: str, url_field: str, url: object, username: str | None = None, password: str | None = None
) -> ClusterParams:
    """A cluster configured at ``field``, reached through the redis:// or rediss:// URL of one node."""
    node = _parse_url_node(url_field, url, username, password)
    assert node.url is not None
    parts = urlsplit(node.url)
    if parts.scheme == 'unix':
        raise ConfigError(url_field, 'a cluster is reached over TCP: use redis:// or rediss://')
    if parts.path.strip('/') not in ('', '0') or parse_qs(parts.query).get('db', ['0'])[0] != '0':
        raise ConfigError(url_field, 'a Redis Cluster has database 0 only')
    return ClusterParams(field, url=node.url, username=username, password=password)


def create_cluster_client(cluster: ClusterParams) -> redis.cluster.RedisCluster:
    """A cluster client; it connects to a startup node and learns the cluster's slots at once."""
    options = dict(_CLIENT_DEFAULTS, **_TCP_DEFAULTS)
    options.pop('health_check_interval')  # the cluster client checks nodes itself
    if cluster.username is not None:
        options['username'] = cluster.username
    if cluster.password is not None:
        options['password'] = cluster.password
    if cluster.url is not None:
        return redis.cluster.RedisCluster.from_url(cluster.url, **options)
    node = redis.cluster.ClusterNode
    startup = [node(host, port) for host, port in cluster.nodes]  # type: ignore[no-untyped-call]
    return redis.cluster.RedisCluster(startup_nodes=startup, ssl=cluster.tls, **options)


def _parse_node(field: str, node: object) -> NodeParams:
    if not isinstance(node, Mapping):
        raise ConfigError(field, f'must be a mapping with host and port, or url, got {_describe(node)}')
    allowed = _URL_NODE_KEYS if 'url' in node else _HOST_NODE_KEYS
    unknown = set(node) - allowed
    if unknown:
        hint = ' (a node is either a url or host/port/database)' if 'url' in node else ''
        raise ConfigError(field, f'unknown keys: {sorted(unknown)}{hint}')
    username = _optional_text(field, node, 'username')
    password = _optional_text(field, node, 'password')
    if 'url' in node:
        return _parse_url_node(f'{field}.url', node['url'], username, password)
    host = node.get('host')
    if not isinstance(host, str) or not host.strip():
        raise ConfigError(f'{field}.host', f'must be a non-empty host name, got {_describe(host)}')
    port = node.get('port', 6379)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f'{field}.port', f'must be an integer between 1 and 65535, got {_describe(port)}')
    database = node.get('database', 0)
    if database is None:
        database = 0
    if isinstance(database, bool) or not isinstance(database, int) or database < 0:
        raise ConfigError(f'{field}.database', f'must be a non-negative integer, got {_describe(database)}')
    return NodeParams(field, None, host.strip(), port, username, password, database)


def _parse_url_node(
    field: str,
    url: object,
    username: str | None = None,
    password: str | None = None,
) -> NodeParams:
    if not isinstance(url, str):
        raise ConfigError(field, f'must be a redis://, rediss:// or unix:// URL, got {_describe(url)}')
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise ConfigError(field, f'must be a redis://, rediss:// or unix:// URL, got {_redact(url)!r}')
    try:
        parts.port  # noqa: B018 - parsing the port validates it
    except ValueError:
        raise ConfigError(field, f'invalid port in {_redact(url)!r}') from None
    if parts.scheme == 'unix':
        if not parts.path:
            raise ConfigError(field, f'names no socket path: {_redact(url)!r}')
    else:
        if not parts.hostname:
            raise ConfigError(field, f'names no host: {_redact(url)!r}')
        if parts.path.strip('/') and not parts.path.strip('/').isdigit():
            raise ConfigError(field, f'the path must be a database number, got {parts.path!r}')
    databases = parse_qs(parts.query).get('db', [])
    if databases and not databases[0].isdigit():
        raise ConfigError(field, f'db must be a non-negative integer, got {databases[0]!r}')
    if (username is not None or password is not None) and (parts.username or parts.password):
        raise ConfigError(field, 'the URL already carries credentials; drop username/password')
    return NodeParams(field, url, username=username, password=password)


def _optional_text(field: str, node: Mapping[str, Any], key: str) -> str | None:
    value = node.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f'{field}.{key}', f'must be a non-empty string or None, got {type(value).__name__}')
    return value


def _redact(url: str) -> str:
    """The URL with its password, if any, replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition('@')
    name = user.partition(':')[0]
    return urlunsplit(parts._replace(netloc=f'{name}:***@{host}'))


def _describe(value: object) -> str:
    return repr(value) if isinstance(value, str | int | float | type(None)) else type(value).__name__
