"""Reading a SergeantWorker into the operator's spec: defaults, and errors naming the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sergeant_operator.policy import Fallback, ScalingSpec
from sergeant_operator.resource import PAUSED_REPLICAS_ANNOTATION, SecretRef, SpecError, parse_worker

MINIMAL: dict[str, Any] = {
    'metadata': {'name': 'crawler', 'namespace': 'jobs', 'uid': 'u-1', 'generation': 3},
    'spec': {
        'image': 'app:1',
        'workerModule': 'app.workers',
        'workerClass': 'Crawler',
        'queue': 'crawl',
        'connector': {'type': 'redis', 'url': 'redis://broker:6379/0'},
    },
}


def with_spec(**changes: Any) -> dict[str, Any]:
    obj = copy.deepcopy(MINIMAL)
    for key, value in changes.items():
        if value is None:
            del obj['spec'][key]
        else:
            obj['spec'][key] = value
    return obj


def test_a_minimal_resource_gets_the_defaults() -> None:
    worker = parse_worker(MINIMAL)

    assert (worker.namespace, worker.name, worker.uid, worker.generation) == ('jobs', 'crawler', 'u-1', 3)
    assert worker.spec.concurrent_workers == 1
    assert worker.spec.max_worker_memory_usage is None
    assert worker.spec.scaling == ScalingSpec()
    assert worker.spec.connector.url == 'redis://broker:6379/0'


def test_a_secret_reference_defaults_to_the_url_key() -> None:
    worker = parse_worker(with_spec(connector={'type': 'mongo', 'secretRef': {'name': 'broker'}}))
    assert worker.spec.connector.secret_ref == SecretRef('broker', 'url')


def test_a_signing_key_secret_defaults_to_the_signing_key_key() -> None:
    worker = parse_worker(with_spec(signingKeySecretRef={'name': 'broker'}))
    assert worker.spec.signing_key_secret_ref == SecretRef('broker', 'signing-key')
    assert parse_worker(MINIMAL).spec.signing_key_secret_ref is None


@pytest.mark.parametrize('module', ['examples.1_producer.consumer', 'app.workers', 'x'])
def test_any_importable_module_name_is_accepted(module: str) -> None:
    assert parse_worker(with_spec(workerModule=module)).spec.worker_module == module


@pytest.mark.parametrize('memory', [536870912, '512Mi', '1G'])
def test_memory_limits_are_bytes_or_quantities(memory: object) -> None:
    assert parse_worker(with_spec(maxWorkerMemoryUsage=memory)).spec.max_worker_memory_usage == str(memory)


@pytest.mark.parametrize(
    ('changes', 'field'),
    [
        ({'image': None}, 'spec.image'),
        ({'workerModule': 'app..workers'}, 'spec.workerModule'),
        ({'workerModule': 'app/workers'}, 'spec.workerModule'),
        ({'workerModule': 'app workers'}, 'spec.workerModule'),
        ({'signingKeySecretRef': {'key': 'signing-key'}}, 'spec.signingKeySecretRef.name'),
        ({'workerClass': 'Crawler()'}, 'spec.workerClass'),
        ({'concurrentWorkers': 0}, 'spec.concurrentWorkers'),
        ({'maxWorkerMemoryUsage': '12 parsecs'}, 'spec.maxWorkerMemoryUsage'),
        ({'imagePullPolicy': 'Sometimes'}, 'spec.imagePullPolicy'),
        ({'connector': {'type': 'local', 'params': {'file_path': '/q'}}}, 'spec.connector.type'),
        ({'connector': {'type': 'redis'}}, 'spec.connector'),
        ({'connector': {'type': 'redis', 'url': 'redis://a', 'params': {}}}, 'spec.connector'),
        ({'connector': {'type': 'redis', 'url': 'mongodb://a'}}, 'spec.connector.url'),
        ({'scaling': {'minReplicas': 5, 'maxReplicas': 2}}, 'spec.scaling.maxReplicas'),
        ({'scaling': {'tasksPerReplica': 0}}, 'spec.scaling.tasksPerReplica'),
        ({'scaling': {'fallback': {'failureThreshold': 2}}}, 'spec.scaling.fallback.replicas'),
        ({'scaling': {'fallback': {'replicas': 11}}}, 'spec.scaling.fallback.replicas'),
        (
            {'scaling': {'fallback': {'replicas': 1, 'failureThreshold': 0}}},
            'spec.scaling.fallback.failureThreshold',
        ),
    ],
)
def test_an_invalid_field_is_named(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as raised:
        parse_worker(with_spec(**changes))
    assert raised.value.field == field


def test_a_fallback_defaults_its_failure_threshold() -> None:
    worker = parse_worker(with_spec(scaling={'minReplicas': 1, 'fallback': {'replicas': 4}}))

    assert worker.spec.scaling.fallback == Fallback(replicas=4, failure_threshold=3)
    assert parse_worker(MINIMAL).spec.scaling.fallback is None


@pytest.mark.parametrize(('value', 'paused'), [(None, None), ('0', 0), ('3', 3), (' 12 ', 12)])
def test_the_paused_replicas_annotation(value: str | None, paused: int | None) -> None:
    obj = copy.deepcopy(MINIMAL)
    if value is not None:
        obj['metadata']['annotations'] = {PAUSED_REPLICAS_ANNOTATION: value}

    assert parse_worker(obj).paused_replicas == paused


@pytest.mark.parametrize('value', ['-1', 'three', '', '2.5'])
def test_a_bad_paused_replicas_annotation_is_named(value: str) -> None:
    obj = copy.deepcopy(MINIMAL)
    obj['metadata']['annotations'] = {PAUSED_REPLICAS_ANNOTATION: value}

    with pytest.raises(SpecError) as raised:
        parse_worker(obj)
    assert raised.value.field == f'metadata.annotations[{PAUSED_REPLICAS_ANNOTATION}]'
