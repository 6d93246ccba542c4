"""The Deployment a SergeantWorker owns, built as a server-side-apply body (pure).

The body lists only the fields the operator manages, so applying it with the
field manager ``sergeant-operator`` never fights fields set by others (an admission
webhook's sidecar, a ``kubectl annotate``); fields dropped from the body are
dropped from the Deployment on the next apply.

The pods run the supervisor, configured by flags (flags win over ``SERGEANT_*``
variables, so the resource's fields cannot be overridden by mistake), serve
``/metrics``, ``/healthz`` (liveness) and ``/readyz`` (readiness) on port
``METRICS_PORT``, and receive the broker's coordinates as environment variables
that a worker's ``generate_config()`` may read (see :data:`BROKER_URL_ENV`).
They run locked down, meeting Pod Security's 'restricted' profile: not as root,
seccomp's runtime default, no privilege escalation, no capabilities, and a
read-only root filesystem with an in-memory ``/tmp``. ``spec.template``'s security
contexts are merged over these defaults, so a template changes only the fields it
names (what it may not ask for is :mod:`.security`'s).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from sergeant.config import SIGNING_KEY_VARIABLE

from .resource import API_VERSION, KIND, WorkerResource

CONTAINER_NAME = 'worker'
METRICS_PORT = 9808
METRICS_PORT_NAME = 'metrics'
WORKER_LABEL = 'sergeant.io/worker'

# Conveniences for the user's Worker.generate_config(); the supervisor itself does not read them.
BROKER_TYPE_ENV = 'SERGEANT_BROKER_TYPE'
BROKER_URL_ENV = 'SERGEANT_BROKER_URL'  # from spec.connector.url, or the Secret via secretKeyRef
BROKER_PARAMS_ENV = 'SERGEANT_BROKER_PARAMS'  # spec.connector.params as JSON
QUEUE_ENV = 'SERGEANT_QUEUE'
# The pod's name, which its workers record as the owner of the leases they hold
# (sergeant.connector.POD_NAME_VARIABLE): the operator's view of the work in flight per pod.
POD_NAME_ENV = 'POD_NAME'

TMP_VOLUME = 'tmp'
POD_SECURITY_CONTEXT: dict[str, Any] = {'runAsNonRoot': True, 'seccompProfile': {'type': 'RuntimeDefault'}}
CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {
    'allowPrivilegeEscalation': False,
    'readOnlyRootFilesystem': True,
    'capabilities': {'drop': ['ALL']},
}

_POD_FIELDS = (  # spec.template keys copied as they are onto the pod spec
    'nodeSelector',
    'tolerations',
    'affinity',
    'imagePullSecrets',
    'serviceAccountName',
    'terminationGracePeriodSeconds',
)


def selector_labels(worker: WorkerResource) -> dict[str, str]:
    """The Deployment's selector: fixed for the resource's lifetime (selectors are immutable)."""
    return {WORKER_LABEL: worker.name}


def selector_string(worker: WorkerResource) -> str:
    """The selector in the string form the scale subresource reports."""
    return ','.join(f'{key}={value}' for key, value in selector_labels(worker).items())


def common_labels(worker: WorkerResource) -> dict[str, str]:
    return {
        'app.kubernetes.io/name': 'sergeant-worker',
        'app.kubernetes.io/instance': worker.name,
        'app.kubernetes.io/managed-by': 'sergeant-operator',
        **selector_labels(worker),
    }


def owner_reference(worker: WorkerResource) -> dict[str, Any]:
    return {
        'apiVersion': API_VERSION,
        'kind': KIND,
        'name': worker.name,
        'uid': worker.uid,
        'controller': True,
        'blockOwnerDeletion': True,
    }


def supervisor_command(worker: WorkerResource) -> list[str]:
    spec = worker.spec
    command = [
        'sergeant', 'supervise',
        '--worker-module', spec.worker_module,
        '--worker-class', spec.worker_class,
        '--concurrent-workers', str(spec.concurrent_workers),
    ]  # fmt: skip
    if spec.max_worker_memory_usage is not None:
        command += ['--max-worker-memory-usage', spec.max_worker_memory_usage]
    return [*command, '--metrics-port', str(METRICS_PORT)]


def broker_env(worker: WorkerResource) -> list[dict[str, Any]]:
    connector = worker.spec.connector
    env: list[dict[str, Any]] = [
        {'name': BROKER_TYPE_ENV, 'value': connector.type},
        {'name': QUEUE_ENV, 'value': worker.spec.queue},
    ]
    if connector.url is not None:
        env.append({'name': BROKER_URL_ENV, 'value': connector.url})
    elif connector.secret_ref is not None:
        reference = {'name': connector.secret_ref.name, 'key': connector.secret_ref.key}
        env.append({'name': BROKER_URL_ENV, 'valueFrom': {'secretKeyRef': reference}})
    if connector.params is not None:
        env.append({'name': BROKER_PARAMS_ENV, 'value': json.dumps(connector.params, sort_keys=True)})
    signing = worker.spec.signing_key_secret_ref
    if signing is not None:
        reference = {'name': signing.name, 'key': signing.key}
        env.append({'name': SIGNING_KEY_VARIABLE, 'valueFrom': {'secretKeyRef': reference}})
    return env


def _pod_name_env() -> dict[str, Any]:
    return {'name': POD_NAME_ENV, 'valueFrom': {'fieldRef': {'fieldPath': 'metadata.name'}}}


def _merged_env(ours: list[dict[str, Any]], theirs: object) -> list[dict[str, Any]]:
    """Our variables, then the template's; a template variable replaces ours of the same name."""
    merged = {entry['name']: entry for entry in ours}
    if isinstance(theirs, list):
        for entry in theirs:
            if isinstance(entry, Mapping) and 'name' in entry:
                merged[str(entry['name'])] = dict(entry)
    return list(merged.values())


def _merged(defaults: Mapping[str, Any], overrides: object) -> dict[str, Any]:
    """``overrides`` over ``defaults``, nested objects merged key by key."""
    merged = copy.deepcopy(dict(defaults))
    if isinstance(overrides, Mapping):
        for key, value in overrides.items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
                merged[key] = _merged(merged[key], value)
            else:
                merged[key] = copy.deepcopy(value)
    return merged


def _container(worker: WorkerResource) -> dict[str, Any]:
    spec, template = worker.spec, worker.spec.template
    container: dict[str, Any] = {
        'name': CONTAINER_NAME,
        'image': spec.image,
        'command': supervisor_command(worker),
        'env': _merged_env([_pod_name_env(), *broker_env(worker)], template.get('env')),
        'ports': [{'name': METRICS_PORT_NAME, 'containerPort': METRICS_PORT, 'protocol': 'TCP'}],
        'securityContext': _merged(CONTAINER_SECURITY_CONTEXT, template.get('securityContext')),
        'volumeMounts': [{'name': TMP_VOLUME, 'mountPath': '/tmp'}],
        'livenessProbe': {
            'httpGet': {'path': '/healthz', 'port': METRICS_PORT_NAME},
            'initialDelaySeconds': 10,
            'periodSeconds': 10,
            'failureThreshold': 3,
        },
        'readinessProbe': {
            'httpGet': {'path': '/readyz', 'port': METRICS_PORT_NAME},
            'periodSeconds': 5,
            'failureThreshold': 2,
        },
    }
    if spec.image_pull_policy is not None:
        container['imagePullPolicy'] = spec.image_pull_policy
    if template.get('envFrom'):
        container['envFrom'] = list(template['envFrom'])
    if template.get('resources'):
        container['resources'] = dict(template['resources'])
    return container


def desired_deployment(worker: WorkerResource, replicas: int | None) -> dict[str, Any]:
    """The apply body of the worker's Deployment, running ``replicas`` pods; with None the body
    leaves ``spec.replicas`` to others (a HorizontalPodAutoscaler of the Deployment)."""
    template = worker.spec.template
    pod_labels = {**dict(template.get('labels') or {}), **common_labels(worker)}
    pod_annotations = {
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': str(METRICS_PORT),
        'prometheus.io/path': '/metrics',
        **dict(template.get('annotations') or {}),
    }
    pod_spec: dict[str, Any] = {
        'containers': [_container(worker)],
        'securityContext': _merged(POD_SECURITY_CONTEXT, template.get('podSecurityContext')),
        'volumes': [{'name': TMP_VOLUME, 'emptyDir': {'medium': 'Memory'}}],
    }
    for field in _POD_FIELDS:
        if template.get(field) not in (None, [], {}, ''):
            pod_spec[field] = template[field]
    body: dict[str, Any] = {
        'apiVersion': 'apps/v1',
        'kind': 'Deployment',
        'metadata': {
            'name': worker.name,
            'namespace': worker.namespace,
            'labels': common_labels(worker),
            'ownerReferences': [owner_reference(worker)],
        },
        'spec': {
            'replicas': replicas,
            'selector': {'matchLabels': selector_labels(worker)},
            'template': {
                'metadata': {'labels': pod_labels, 'annotations': pod_annotations},
                'spec': pod_spec,
            },
        },
    }
    if replicas is None:
        del body['spec']['replicas']
    return body


def is_owned_by(deployment: Mapping[str, Any], worker: WorkerResource) -> bool:
    """True when the Deployment's controller is this SergeantWorker; a Deployment by the same
    name that someone else made (or that a deleted namesake left behind) is never taken over."""
    references = (deployment.get('metadata') or {}).get('ownerReferences') or []
    return any(ref.get('controller') and ref.get('uid') == worker.uid for ref in references)
