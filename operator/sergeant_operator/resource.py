"""The ``SergeantWorker`` resource: its API coordinates, and its spec read into frozen dataclasses.

The CRD's OpenAPI schema (``operator/crd/``) makes the API server reject malformed
resources and fill in defaults; :func:`parse_worker` reads a resource as the API
returns it, applies the same defaults (so a resource created before a default
existed still works) and raises :class:`SpecError` naming the field for what a
schema cannot express. Nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, Literal

from .policy import Fallback, ScalingSpec

GROUP = 'sergeant.io'
VERSION = 'v1alpha1'
API_VERSION = f'{GROUP}/{VERSION}'
KIND = 'SergeantWorker'
PLURAL = 'sergeantworkers'
FIELD_MANAGER = 'sergeant-operator'
# "N": hold the Deployment at N replicas, whatever the queue says, until the annotation is removed
PAUSED_REPLICAS_ANNOTATION = 'sergeant.io/paused-replicas'

CONNECTOR_TYPES = ('redis', 'mongo')  # 'local' is process-local: pods cannot share it
DEFAULT_SECRET_KEY = 'url'
DEFAULT_SIGNING_KEY_KEY = 'signing-key'  # the Secret's key holding the signing key
PULL_POLICIES = ('Always', 'IfNotPresent', 'Never')

# anything importlib can import (0.27's examples live in packages such as 1_producer): no empty
# part, no whitespace, no path separator; the supervisor's import is the real check
_MODULE = re.compile(r'[^.\s/\\]+(\.[^.\s/\\]+)*')
_CLASS = re.compile(r'[A-Za-z_]\w*')
_QUANTITY = re.compile(r'(\d+)(Ki|Mi|Gi|K|M|G)?B?')
_URL_SCHEMES = {
    'redis': ('redis://', 'rediss://', 'redis+cluster://', 'rediss+cluster://', 'unix://'),
    'mongo': ('mongodb://', 'mongodb+srv://'),
}


class SpecError(ValueError):
    """A SergeantWorker field is invalid; ``field`` is its path, such as ``spec.connector.url``."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f'{field}: {problem}')
        self.field = field
        self.problem = problem


@dataclasses.dataclass(frozen=True)
class SecretRef:
    name: str
    key: str = DEFAULT_SECRET_KEY


@dataclasses.dataclass(frozen=True)
class ConnectorSpec:
    """How the operator (and, through environment variables, the workers) reach the broker.

    Exactly one of ``url``, ``params`` and ``secret_ref`` is set.
    """

    type: Literal['redis', 'mongo']
    url: str | None = None
    params: Mapping[str, Any] | None = None
    secret_ref: SecretRef | None = None


@dataclasses.dataclass(frozen=True)
class WorkerSpec:
    image: str
    worker_module: str
    worker_class: str
    queue: str
    connector: ConnectorSpec
    image_pull_policy: str | None = None
    concurrent_workers: int = 1
    max_worker_memory_usage: str | None = None  # bytes, or a quantity such as 512Mi
    scaling: ScalingSpec = dataclasses.field(default_factory=ScalingSpec)
    template: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # pod-level overrides
    signing_key_secret_ref: SecretRef | None = None  # SERGEANT_SIGNING_KEY of the workers


@dataclasses.dataclass(frozen=True)
class WorkerResource:
    """One SergeantWorker: identity, generation and parsed spec."""

    namespace: str
    name: str
    uid: str
    generation: int
    spec: WorkerSpec
    paused_replicas: int | None = None  # from the PAUSED_REPLICAS_ANNOTATION

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


def object_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(namespace, name) of any Kubernetes object as the API returns it."""
    metadata = obj.get('metadata') or {}
    return (str(metadata.get('namespace') or ''), str(metadata.get('name') or ''))


def parse_worker(obj: Mapping[str, Any]) -> WorkerResource:
    """Read a SergeantWorker as returned by the API; raise SpecError naming the first bad field."""
    metadata = obj.get('metadata') or {}
    spec = _mapping(obj.get('spec'), 'spec')
    return WorkerResource(
        namespace=str(metadata.get('namespace') or ''),
        name=str(metadata.get('name') or ''),
        uid=str(metadata.get('uid') or ''),
        generation=int(metadata.get('generation') or 0),
        spec=WorkerSpec(
            image=_text(spec, 'image', 'spec'),
            worker_module=_matching(spec, 'workerModule', _MODULE, 'a dotted module name'),
            worker_class=_matching(spec, 'workerClass', _CLASS, 'a class name'),
            queue=_text(spec, 'queue', 'spec'),
            connector=_connector(_mapping(spec.get('connector'), 'spec.connector')),
            image_pull_policy=_pull_policy(spec.get('imagePullPolicy')),
            concurrent_workers=_count(spec, 'concurrentWorkers', 'spec', default=1, minimum=1),
            max_worker_memory_usage=_memory(spec.get('maxWorkerMemoryUsage')),
            scaling=_scaling(_mapping(spec.get('scaling') or {}, 'spec.scaling')),
            template=_mapping(spec.get('template') or {}, 'spec.template'),
            signing_key_secret_ref=_signing_key(spec.get('signingKeySecretRef')),
        ),
        paused_replicas=_paused_replicas(metadata.get('annotations') or {}),
    )


def _paused_replicas(annotations: Mapping[str, Any]) -> int | None:
    value = annotations.get(PAUSED_REPLICAS_ANNOTATION)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip().isdigit():
        field = f'metadata.annotations[{PAUSED_REPLICAS_ANNOTATION}]'
        raise SpecError(field, f'must be a number of replicas >= 0, got {value!r}')
    return int(value)


def _signing_key(value: object) -> SecretRef | None:
    if value is None:
        return None
    field = 'spec.signingKeySecretRef'
    ref = _mapping(value, field)
    key = _text(ref, 'key', field) if 'key' in ref else DEFAULT_SIGNING_KEY_KEY
    return SecretRef(name=_text(ref, 'name', field), key=key)


def _mapping(value: object, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(field, 'must be an object')
    return value


def _text(spec: Mapping[str, Any], key: str, parent: str) -> str:
    value = spec.get(key)
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f'{parent}.{key}', 'must be a non-empty string')
    return value


def _matching(spec: Mapping[str, Any], key: str, pattern: re.Pattern[str], expected: str) -> str:
    value = _text(spec, key, 'spec')
    if not pattern.fullmatch(value):
        raise SpecError(f'spec.{key}', f'must be {expected}, got {value!r}')
    return value


def _count(spec: Mapping[str, Any], key: str, parent: str, default: int, minimum: int) -> int:
    value = spec.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise SpecError(f'{parent}.{key}', f'must be an integer >= {minimum}, got {value!r}')
    return value


def _pull_policy(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value in PULL_POLICIES:
        return value
    raise SpecError('spec.imagePullPolicy', f'must be one of {", ".join(PULL_POLICIES)}')


def _memory(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    match = _QUANTITY.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is not None and int(match.group(1)) > 0:
        return match.group(0)
    raise SpecError('spec.maxWorkerMemoryUsage', 'must be a number of bytes > 0, or a quantity such as 512Mi')


def _connector(spec: Mapping[str, Any]) -> ConnectorSpec:
    kind = spec.get('type')
    if kind not in CONNECTOR_TYPES:
        raise SpecError('spec.connector.type', f'must be one of {", ".join(CONNECTOR_TYPES)}, got {kind!r}')
    given = [key for key in ('url', 'params', 'secretRef') if spec.get(key) is not None]
    if len(given) != 1:
        raise SpecError('spec.connector', 'give exactly one of url, params or secretRef')
    url = spec.get('url')
    if url is not None and (not isinstance(url, str) or not url.startswith(_URL_SCHEMES[kind])):
        schemes = ', '.join(_URL_SCHEMES[kind])
        raise SpecError('spec.connector.url', f'a {kind} connector needs a URL starting with {schemes}')
    params = spec.get('params')
    if params is not None:
        params = dict(_mapping(params, 'spec.connector.params'))
    secret_ref = None
    if spec.get('secretRef') is not None:
        ref = _mapping(spec['secretRef'], 'spec.connector.secretRef')
        secret_ref = SecretRef(
            name=_text(ref, 'name', 'spec.connector.secretRef'),
            key=_text(ref, 'key', 'spec.connector.secretRef') if 'key' in ref else DEFAULT_SECRET_KEY,
        )
    return ConnectorSpec(type=kind, url=url, params=params, secret_ref=secret_ref)


def _scaling(spec: Mapping[str, Any]) -> ScalingSpec:
    defaults = ScalingSpec()
    parent = 'spec.scaling'
    values = {
        'min_replicas': _count(spec, 'minReplicas', parent, defaults.min_replicas, 0),
        'max_replicas': _count(spec, 'maxReplicas', parent, defaults.max_replicas, 1),
        'tasks_per_replica': _count(spec, 'tasksPerReplica', parent, defaults.tasks_per_replica, 1),
        'activation_queue_length': _count(
            spec, 'activationQueueLength', parent, defaults.activation_queue_length, 0
        ),
        'polling_interval_seconds': _count(
            spec, 'pollingIntervalSeconds', parent, defaults.polling_interval_seconds, 1
        ),
        'cooldown_seconds': _count(spec, 'cooldownSeconds', parent, defaults.cooldown_seconds, 0),
        'scale_down_stabilization_seconds': _count(
            spec, 'scaleDownStabilizationSeconds', parent, defaults.scale_down_stabilization_seconds, 0
        ),
    }
    if values['min_replicas'] > values['max_replicas']:
        raise SpecError(f'{parent}.maxReplicas', 'must be >= minReplicas')
    fallback = _fallback(spec.get('fallback'), values['min_replicas'], values['max_replicas'])
    return ScalingSpec(**values, fallback=fallback)


def _fallback(value: object, min_replicas: int, max_replicas: int) -> Fallback | None:
    if value is None:
        return None
    field = 'spec.scaling.fallback'
    spec = _mapping(value, field)
    if 'replicas' not in spec:
        raise SpecError(f'{field}.replicas', 'is required')
    replicas = _count(spec, 'replicas', field, 0, 0)
    if not min_replicas <= replicas <= max_replicas:
        raise SpecError(f'{field}.replicas', 'must lie within [minReplicas, maxReplicas]')
    return Fallback(replicas, _count(spec, 'failureThreshold', field, Fallback.failure_threshold, 1))
