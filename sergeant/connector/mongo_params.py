"""Params of the MongoDB connector: validation, and the clients they describe.

Two shapes are accepted. Sergeant 0.27's ``{'nodes': [{'host', 'port', 'replica_set'}, ...]}``
lists independent deployments (each a standalone server, or a replica set reached
through that node); the connector spreads queue items over them round robin. A
``{'url': 'mongodb://...'}`` (or ``mongodb+srv://``) names one deployment with
everything a connection string can say, seed lists of replica sets included.
Both take optional ``username``/``password`` and ``database``.

Used by :mod:`sergeant.connector.mongo` only; every error is a
:class:`~sergeant.errors.ConfigError` naming the offending field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pymongo
import pymongo.errors

from ..errors import ConfigError

FIELD = 'connector.params'
DEFAULT_DATABASE = 'sergeant'

Document = dict[str, Any]
Client = pymongo.MongoClient[Document]

# Sensible defaults for a task queue; options spelled out in a URL win over them.
_CLIENT_DEFAULTS: dict[str, Any] = {
    'serverSelectionTimeoutMS': 5_000,
    'connectTimeoutMS': 5_000,
    'socketTimeoutMS': 60_000,
    'appname': 'sergeant',
}
_KEYS = {'nodes', 'url', 'username', 'password', 'database'}
_NODE_KEYS = {'host', 'port', 'replica_set'}
_FORBIDDEN_IN_DATABASE = set('/\\. "$\x00')


@dataclasses.dataclass(frozen=True)
class Deployment:
    """How to reach one independent deployment; ``field`` names where it was configured."""

    field: str
    url: str | None = None
    host: str | None = None
    port: int | None = None
    replica_set: str | None = None


@dataclasses.dataclass(frozen=True)
class MongoSettings:
    """Validated params: the deployments, the database, and optional credentials."""

    deployments: tuple[Deployment, ...]
    database: str | None = None
    username: str | None = None
    password: str | None = None


def parse_params(params: Mapping[str, Any]) -> MongoSettings:
    """Validate the connector params; raise ConfigError naming the first bad field."""
    if not isinstance(params, Mapping):
        raise ConfigError(FIELD, f'must be a mapping, got {type(params).__name__}')
    unknown = set(params) - _KEYS
    if unknown:
        raise ConfigError(FIELD, f'unknown keys for the mongo connector: {sorted(unknown)}')
    if ('nodes' in params) == ('url' in params):
        raise ConfigError(FIELD, "give exactly one of 'nodes' or 'url'")
    if 'url' in params:
        deployments: tuple[Deployment, ...] = (_parse_url(params['url']),)
    else:
        deployments = _parse_nodes(params['nodes'])
    username = _optional_text(params, 'username')
    password = _optional_text(params, 'password')
    if (username is None) != (password is None):
        missing = 'password' if password is None else 'username'
        raise ConfigError(f'{FIELD}.{missing}', 'username and password must be given together')
    if username is not None and '@' in urlsplit(params.get('url') or '').netloc:
        raise ConfigError(f'{FIELD}.username', 'the URL already carries credentials')
    return MongoSettings(deployments, _parse_database(params.get('database')), username, password)


def create_client(deployment: Deployment, settings: MongoSettings) -> Client:
    """A client for one deployment; it connects lazily, on first use."""
    options = dict(_CLIENT_DEFAULTS)
    if settings.username is not None:
        options.update(username=settings.username, password=settings.password)
    try:
        if deployment.url is not None:
            for name in _url_option_names(deployment.url):
                options.pop(name, None)
            return pymongo.MongoClient(deployment.url, connect=False, **options)
        if deployment.replica_set is not None:
            options['replicaSet'] = deployment.replica_set
        return pymongo.MongoClient(deployment.host, deployment.port, connect=False, **options)
    except (pymongo.errors.ConfigurationError, TypeError, ValueError) as error:
        field = f'{deployment.field}.url' if deployment.url is not None else deployment.field
        raise ConfigError(field, str(error)) from error


def database_name(client: Client, settings: MongoSettings) -> str:
    """The ``database`` param, else the URL's database, else ``sergeant``."""
    if settings.database is not None:
        return settings.database
    default = client.get_default_database(DEFAULT_DATABASE)
    return default.name


def _parse_url(url: object) -> Deployment:
    field = f'{FIELD}.url'
    if not isinstance(url, str) or not url.startswith(('mongodb://', 'mongodb+srv://')):
        raise ConfigError(field, f"must be a 'mongodb://' or 'mongodb+srv://' URL, got {url!r}")
    if not urlsplit(url).netloc.rpartition('@')[2]:
        raise ConfigError(field, 'the URL names no host')
    return Deployment(FIELD, url=url)


def _parse_nodes(nodes: object) -> tuple[Deployment, ...]:
    field = f'{FIELD}.nodes'
    if not isinstance(nodes, list | tuple) or not nodes:
        raise ConfigError(field, 'must be a non-empty list of {host, port, replica_set} mappings')
    return tuple(_parse_node(f'{field}[{index}]', node) for index, node in enumerate(nodes))


def _parse_node(field: str, node: object) -> Deployment:
    if not isinstance(node, Mapping):
        raise ConfigError(field, f'must be a mapping with host, port and replica_set, got {node!r}')
    unknown = set(node) - _NODE_KEYS
    if unknown:
        raise ConfigError(field, f'unknown keys: {sorted(unknown)}')
    host = node.get('host')
    if not isinstance(host, str) or not host.strip():
        raise ConfigError(f'{field}.host', f'must be a non-empty host name, got {host!r}')
    port = node.get('port')
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f'{field}.port', f'must be an integer between 1 and 65535, got {port!r}')
    replica_set = node.get('replica_set')
    if replica_set is not None and (not isinstance(replica_set, str) or not replica_set):
        raise ConfigError(f'{field}.replica_set', f'must be a replica set name or None, got {replica_set!r}')
    return Deployment(field, host=host.strip(), port=port, replica_set=replica_set)


def _parse_database(database: object) -> str | None:
    if database is None:
        return None
    field = f'{FIELD}.database'
    if not isinstance(database, str) or not database:
        raise ConfigError(field, f'must be a non-empty string, got {database!r}')
    bad = sorted(_FORBIDDEN_IN_DATABASE.intersection(database))
    if bad:
        raise ConfigError(field, f'may not contain {bad!r}')
    if len(database.encode()) >= 64:
        raise ConfigError(field, 'must be shorter than 64 bytes')
    return database


def _optional_text(params: Mapping[str, Any], key: str) -> str | None:
    value = params.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f'{FIELD}.{key}', f'must be a non-empty string, got {type(value).__name__}')
    return value


def _url_option_names(url: str) -> set[str]:
    """Names of the options a URL sets, matched case-insensitively like the driver does."""
    query = urlsplit(url).query
    given = {name.lower() for name, _ in parse_qsl(query, keep_blank_values=True)}
    return {name for name in _CLIENT_DEFAULTS if name.lower() in given}
