"""Offline validation of rendered manifests, kind by kind.

- Kubernetes' own kinds: the API's JSON schemas shipped by kubernetes-validate, in
  strict mode (an unknown field is an error, as ``kubectl --validate=strict`` has it).
- SergeantWorker: the ``openAPIV3Schema`` of our CRD, with ``jsonschema`` (the CEL
  rules in ``x-kubernetes-validations`` need an API server and are not evaluated).
- ServiceMonitor, PodMonitor and PrometheusRule: their CRDs belong to the Prometheus
  Operator and are not shipped here; :data:`MONITOR_SCHEMAS` is a minimal schema of the
  fields the chart uses, closed to unknown fields so a misspelt key still fails.

A kind none of these covers is an error: every manifest the chart renders is checked.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

CRD_PATH = Path(__file__).resolve().parents[2] / 'operator' / 'crd' / 'sergeantworkers.sergeant.io.yaml'
# Oldest (the chart's kubeVersion) and newest Kubernetes versions checked.
KUBE_VERSIONS = ('1.29', '1.37')

_DURATION = {'type': 'string', 'pattern': r'^(0|([0-9]+(ms|s|m|h|d|w|y))+)$'}
_LABEL_SELECTOR = {
    'type': 'object',
    'additionalProperties': False,
    'properties': {
        'matchLabels': {'type': 'object', 'additionalProperties': {'type': 'string'}},
        'matchExpressions': {'type': 'array', 'items': {'type': 'object'}},
    },
}
_NAMESPACE_SELECTOR = {
    'type': 'object',
    'additionalProperties': False,
    'properties': {
        'any': {'type': 'boolean'},
        'matchNames': {'type': 'array', 'items': {'type': 'string', 'minLength': 1}},
    },
}
_ENDPOINT = {
    'type': 'object',
    'additionalProperties': False,
    'required': ['port'],
    'properties': {
        'port': {'type': 'string', 'minLength': 1},
        'path': {'type': 'string', 'pattern': '^/'},
        'interval': _DURATION,
        'scrapeTimeout': _DURATION,
    },
}
_METADATA = {
    'type': 'object',
    'required': ['name'],
    'properties': {
        'name': {'type': 'string'},
        'namespace': {'type': 'string'},
        'labels': {'type': 'object', 'additionalProperties': {'type': 'string'}},
        'annotations': {'type': 'object', 'additionalProperties': {'type': 'string'}},
    },
}


def _monitor_schema(kind: str, endpoints: str) -> dict[str, Any]:
    return {
        'type': 'object',
        'additionalProperties': False,
        'required': ['apiVersion', 'kind', 'metadata', 'spec'],
        'properties': {
            'apiVersion': {'const': 'monitoring.coreos.com/v1'},
            'kind': {'const': kind},
            'metadata': _METADATA,
            'spec': {
                'type': 'object',
                'additionalProperties': False,
                'required': ['selector', endpoints],
                'properties': {
                    'jobLabel': {'type': 'string'},
                    'selector': _LABEL_SELECTOR,
                    'namespaceSelector': _NAMESPACE_SELECTOR,
                    endpoints: {'type': 'array', 'minItems': 1, 'items': _ENDPOINT},
                },
            },
        },
    }


_RULE = {
    'type': 'object',
    'additionalProperties': False,
    'required': ['expr'],
    'properties': {
        'alert': {'type': 'string', 'minLength': 1},
        'record': {'type': 'string', 'minLength': 1},
        'expr': {'type': ['string', 'integer']},
        'for': _DURATION,
        'labels': {'type': 'object', 'additionalProperties': {'type': 'string'}},
        'annotations': {'type': 'object', 'additionalProperties': {'type': 'string'}},
    },
}
_PROMETHEUS_RULE = {
    'type': 'object',
    'additionalProperties': False,
    'required': ['apiVersion', 'kind', 'metadata', 'spec'],
    'properties': {
        'apiVersion': {'const': 'monitoring.coreos.com/v1'},
        'kind': {'const': 'PrometheusRule'},
        'metadata': _METADATA,
        'spec': {
            'type': 'object',
            'additionalProperties': False,
            'properties': {
                'groups': {
                    'type': 'array',
                    'items': {
                        'type': 'object',
                        'additionalProperties': False,
                        'required': ['name', 'rules'],
                        'properties': {
                            'name': {'type': 'string', 'minLength': 1},
                            'interval': _DURATION,
                            'rules': {'type': 'array', 'items': _RULE},
                        },
                    },
                },
            },
        },
    },
}

MONITOR_SCHEMAS = {
    'ServiceMonitor': _monitor_schema('ServiceMonitor', 'endpoints'),
    'PodMonitor': _monitor_schema('PodMonitor', 'podMetricsEndpoints'),
    'PrometheusRule': _PROMETHEUS_RULE,
}

# Kubernetes label syntax: an optional DNS-subdomain prefix, a name of 63 characters at most.
_LABEL_NAME = re.compile(r'^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$')
_LABEL_VALUE = re.compile(r'^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$')
_DNS_LABEL = re.compile(r'^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$')
_DNS_SUBDOMAIN = re.compile(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')
_NAMED_BY_DNS_LABEL = ('Service', 'Namespace')  # kinds whose names become DNS labels


def sergeant_worker_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD_PATH.read_text())
    [version] = crd['spec']['versions']
    schema: dict[str, Any] = version['schema']['openAPIV3Schema']
    return schema


def _problems_of_schema(manifest: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    return [
        f'{"/".join(map(str, error.absolute_path)) or "(root)"}: {error.message}'
        for error in validator.iter_errors(manifest)
    ]


def _problems_of_metadata(manifest: dict[str, Any]) -> list[str]:
    metadata = manifest.get('metadata') or {}
    problems = []
    name = str(metadata.get('name', ''))
    if manifest.get('kind') in _NAMED_BY_DNS_LABEL and not _DNS_LABEL.fullmatch(name):
        problems.append(f'metadata/name: {name!r} is not a DNS-1123 label')
    if not _DNS_SUBDOMAIN.fullmatch(name) or len(name) > 253:
        problems.append(f'metadata/name: {name!r} is not a DNS-1123 subdomain')
    for key, value in (metadata.get('labels') or {}).items():
        if not _LABEL_NAME.fullmatch(key) or len(key.rsplit('/', 1)[-1]) > 63:
            problems.append(f'metadata/labels: {key!r} is not a label name')
        if not isinstance(value, str) or not _LABEL_VALUE.fullmatch(value):
            problems.append(f'metadata/labels/{key}: {value!r} is not a label value')
    return problems


def problems(manifest: dict[str, Any], kube_version: str) -> list[str]:
    """What is wrong with ``manifest`` for Kubernetes ``kube_version``; empty when it is valid."""
    kind = manifest.get('kind')
    found = _problems_of_metadata(manifest)
    schema = sergeant_worker_schema() if kind == 'SergeantWorker' else MONITOR_SCHEMAS.get(str(kind))
    if schema is not None:
        return found + _problems_of_schema(manifest, schema)
    try:
        kubernetes_validate.validate(manifest, kube_version, strict=True)
    except kubernetes_validate.ValidationError as error:
        found.append(f'{"/".join(map(str, error.path)) or "(root)"}: {error.message}')
    except kubernetes_validate.SchemaNotFoundError as error:
        found.append(f'no schema to validate it: {error.message}')
    return found
