"""Reading a SergeantWorker's task queue through Sergeant's own connectors.

:class:`QueueReader` builds a connector from ``spec.connector`` (taking the URL
from a Secret for ``secretRef``), keeps it per resource while the connector spec
and the Secret's value stay the same, and reads ``length`` (ready tasks, delayed
ones excluded) and ``in_flight``, and the leases each owner holds (for
:mod:`.deletion_cost`). Every failure becomes a :class:`BrokerError`
whose ``reason`` is the BrokerReachable condition's; after a failed reading the
connector is closed and built afresh next time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from sergeant.connector import Connector, create_connector
from sergeant.errors import ConfigError, ConnectorError

from .kube import KubeError
from .policy import Observation
from .resource import ConnectorSpec, WorkerResource

logger = logging.getLogger(__name__)

SecretReader = Callable[[str, str, str], str]  # (namespace, name, key) -> value
ConnectorFactory = Callable[[str, Mapping[str, Any]], Connector]

SECRET_NOT_FOUND = 'SecretNotFound'
INVALID_CONNECTOR = 'InvalidConnector'
BROKER_UNREACHABLE = 'BrokerUnreachable'


class BrokerError(Exception):
    """The queue could not be read; ``reason`` says why in one CamelCase word."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class QueueReader:
    """Queue readings for many SergeantWorkers, one cached connector each."""

    def __init__(
        self, read_secret: SecretReader, connector_factory: ConnectorFactory = create_connector
    ) -> None:
        self._read_secret = read_secret
        self._connector_factory = connector_factory
        self._connectors: dict[tuple[str, str], tuple[str, Connector]] = {}
        self._lock = threading.Lock()

    def read(self, worker: WorkerResource) -> Observation:
        connector = self._connector_of(worker)
        queue = worker.spec.queue
        try:
            return Observation(ready=connector.length(queue), in_flight=connector.in_flight(queue))
        except ConnectorError as error:
            self.forget(worker.key)
            raise BrokerError(BROKER_UNREACHABLE, f'reading queue {queue!r} failed: {error}') from error

    def leases_by_owner(self, worker: WorkerResource) -> dict[str, int]:
        """Tasks leased right now per lease owner (``<pod or host name>/<pid>``)."""
        connector = self._connector_of(worker)
        queue = worker.spec.queue
        try:
            return connector.leases_by_owner(queue)
        except ConnectorError as error:
            self.forget(worker.key)
            raise BrokerError(BROKER_UNREACHABLE, f'reading leases of {queue!r} failed: {error}') from error

    def forget(self, key: tuple[str, str]) -> None:
        """Close the connector of a resource (deleted, or whose connector failed)."""
        with self._lock:
            cached = self._connectors.pop(key, None)
        if cached is not None:
            _close(cached[1])

    def close(self) -> None:
        with self._lock:
            cached, self._connectors = list(self._connectors.values()), {}
        for _, connector in cached:
            _close(connector)

    def _params(self, worker: WorkerResource) -> Mapping[str, Any]:
        spec: ConnectorSpec = worker.spec.connector
        if spec.url is not None:
            return {'url': spec.url}
        if spec.params is not None:
            return spec.params
        assert spec.secret_ref is not None  # resource.parse_worker guarantees exactly one
        try:
            url = self._read_secret(worker.namespace, spec.secret_ref.name, spec.secret_ref.key)
        except KubeError as error:
            message = f'secret {spec.secret_ref.name!r}, key {spec.secret_ref.key!r}: {error}'
            raise BrokerError(SECRET_NOT_FOUND, message) from error
        return {'url': url.strip()}

    def _connector_of(self, worker: WorkerResource) -> Connector:
        params = self._params(worker)
        fingerprint = hashlib.sha256(
            json.dumps([worker.spec.connector.type, params], sort_keys=True, default=str).encode()
        ).hexdigest()
        return self._connector(worker, params, fingerprint)

    def _connector(self, worker: WorkerResource, params: Mapping[str, Any], fingerprint: str) -> Connector:
        with self._lock:
            cached = self._connectors.get(worker.key)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        self.forget(worker.key)
        try:
            connector = self._connector_factory(worker.spec.connector.type, params)
        except ConfigError as error:
            # ConfigError names a field and never echoes a password
            raise BrokerError(INVALID_CONNECTOR, str(error)) from error
        with self._lock:
            self._connectors[worker.key] = (fingerprint, connector)
        return connector


def _close(connector: Connector) -> None:
    with contextlib.suppress(Exception):
        connector.close()
