"""Broker backends behind one contract (:mod:`sergeant.connector.base`).

Backends are looked up by name in a registry and imported lazily, so a worker on
the local broker never imports the Redis or MongoDB drivers.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from .base import (
    POD_NAME_VARIABLE,
    CompletedPop,
    Connector,
    DeadLetter,
    Deliveries,
    FramedPayloads,
    Lock,
    Message,
    PendingPop,
    Priority,
    Released,
    check_priority,
    process_lease_owner,
)

__all__ = [
    'CONNECTOR_TYPES',
    'POD_NAME_VARIABLE',
    'CompletedPop',
    'Connector',
    'DeadLetter',
    'Deliveries',
    'FramedPayloads',
    'Lock',
    'Message',
    'PendingPop',
    'Priority',
    'Released',
    'check_priority',
    'create_connector',
    'process_lease_owner',
]

# type name -> "module:class"; each class offers ``from_params(params) -> Connector``.
CONNECTOR_TYPES: dict[str, str] = {
    'local': 'sergeant.connector.local:LocalConnector',
    'redis': 'sergeant.connector.redis:RedisConnector',
    'mongo': 'sergeant.connector.mongo:MongoConnector',
}


def create_connector(type_name: str, params: Mapping[str, Any]) -> Connector:
    """Build the connector registered as ``type_name`` from its ``params``."""
    try:
        target = CONNECTOR_TYPES[type_name]
    except KeyError:
        known = ', '.join(sorted(CONNECTOR_TYPES))
        raise ConfigError(
            'connector.type', f'unknown connector type {type_name!r} (known: {known})'
        ) from None
    module_name, class_name = target.split(':')
    connector_class = getattr(importlib.import_module(module_name), class_name)
    connector: Connector = connector_class.from_params(params)
    return connector
