"""The Deployment built for a SergeantWorker: the supervisor's command, env, probes, template overrides."""

from __future__ import annotations

import copy
import json
from typing import Any

from sergeant_operator.deployment import METRICS_PORT, desired_deployment, is_owned_by
from sergeant_operator.resource import parse_worker

from sergeant.connector import POD_NAME_VARIABLE
from tests.operator.test_resource import MINIMAL, with_spec


def build(obj: dict[str, Any] = MINIMAL, replicas: int = 2) -> dict[str, Any]:
    return desired_deployment(parse_worker(obj), replicas)


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    [only] = deployment['spec']['template']['spec']['containers']
    return only


def env(deployment: dict[str, Any]) -> dict[str, Any]:
    return {
        entry['name']: entry.get('value', entry.get('valueFrom')) for entry in container(deployment)['env']
    }


def test_pods_run_the_supervisor_with_the_resource_flags() -> None:
    deployment = build(with_spec(concurrentWorkers=4, maxWorkerMemoryUsage='512Mi'), replicas=3)

    assert deployment['spec']['replicas'] == 3
    assert container(deployment)['command'] == [
        'sergeant', 'supervise',
        '--worker-module', 'app.workers',
        '--worker-class', 'Crawler',
        '--concurrent-workers', '4',
        '--max-worker-memory-usage', '512Mi',
        '--metrics-port', str(METRICS_PORT),
    ]  # fmt: skip


def test_the_metrics_port_serves_the_probes() -> None:
    worker = container(build())
    assert worker['ports'] == [{'name': 'metrics', 'containerPort': 9808, 'protocol': 'TCP'}]
    assert worker['livenessProbe']['httpGet'] == {'path': '/healthz', 'port': 'metrics'}
    assert worker['readinessProbe']['httpGet'] == {'path': '/readyz', 'port': 'metrics'}


def test_the_broker_reaches_the_pods_as_environment_variables() -> None:
    assert env(build()) == {
        'POD_NAME': {'fieldRef': {'fieldPath': 'metadata.name'}},
        'SERGEANT_BROKER_TYPE': 'redis',
        'SERGEANT_QUEUE': 'crawl',
        'SERGEANT_BROKER_URL': 'redis://broker:6379/0',
    }
    params = {'nodes': [{'host': 'a', 'port': 6379}]}
    assert (
        json.loads(
            env(build(with_spec(connector={'type': 'redis', 'params': params})))['SERGEANT_BROKER_PARAMS']
        )
        == params
    )


def test_workers_know_their_pod_by_name_to_own_their_leases() -> None:
    [pod_name] = [entry for entry in container(build())['env'] if entry['name'] == POD_NAME_VARIABLE]

    assert pod_name == {'name': 'POD_NAME', 'valueFrom': {'fieldRef': {'fieldPath': 'metadata.name'}}}


def test_the_signing_key_reaches_the_pods_from_its_secret() -> None:
    deployment = build(with_spec(signingKeySecretRef={'name': 'broker', 'key': 'hmac'}))

    assert env(deployment)['SERGEANT_SIGNING_KEY'] == {'secretKeyRef': {'name': 'broker', 'key': 'hmac'}}
    assert 'SERGEANT_SIGNING_KEY' not in env(build())


def test_selector_and_labels_identify_the_worker() -> None:
    deployment = build(with_spec(template={'labels': {'team': 'search', 'sergeant.io/worker': 'spoofed'}}))

    assert deployment['spec']['selector'] == {'matchLabels': {'sergeant.io/worker': 'crawler'}}
    labels = deployment['spec']['template']['metadata']['labels']
    assert labels['sergeant.io/worker'] == 'crawler'  # the selector cannot be overridden
    assert labels['team'] == 'search'


def test_template_overrides_reach_the_pod() -> None:
    template = {
        'resources': {'limits': {'memory': '1Gi'}, 'requests': {'cpu': '500m'}},
        'env': [{'name': 'LOG_LEVEL', 'value': 'debug'}, {'name': 'SERGEANT_QUEUE', 'value': 'other'}],
        'envFrom': [{'configMapRef': {'name': 'settings'}}],
        'nodeSelector': {'pool': 'workers'},
        'tolerations': [{'key': 'spot', 'operator': 'Exists', 'effect': 'NoSchedule'}],
        'affinity': {'nodeAffinity': {}},
        'imagePullSecrets': [{'name': 'registry'}],
        'serviceAccountName': 'crawler',
        'terminationGracePeriodSeconds': 45,
        'annotations': {'team': 'search'},
    }
    deployment = build(with_spec(template=template))
    pod = deployment['spec']['template']['spec']

    assert container(deployment)['resources'] == template['resources']
    assert container(deployment)['envFrom'] == template['envFrom']
    assert env(deployment)['LOG_LEVEL'] == 'debug'
    assert env(deployment)['SERGEANT_QUEUE'] == 'other'  # the template's variable wins
    for field in ('nodeSelector', 'tolerations', 'affinity', 'imagePullSecrets', 'serviceAccountName'):
        assert pod[field] == template[field]
    assert pod['terminationGracePeriodSeconds'] == 45
    assert deployment['spec']['template']['metadata']['annotations']['team'] == 'search'


def test_worker_pods_are_locked_down_by_default() -> None:
    deployment = build()
    pod = deployment['spec']['template']['spec']
    security = container(deployment)['securityContext']

    assert pod['securityContext'] == {'runAsNonRoot': True, 'seccompProfile': {'type': 'RuntimeDefault'}}
    assert security['allowPrivilegeEscalation'] is False
    assert security['readOnlyRootFilesystem'] is True
    assert security['capabilities'] == {'drop': ['ALL']}
    [tmp] = container(deployment)['volumeMounts']
    assert tmp['mountPath'] == '/tmp'
    assert {'name': tmp['name'], 'emptyDir': {'medium': 'Memory'}} in pod['volumes']


def test_template_security_contexts_are_merged_over_the_defaults() -> None:
    template = {
        'podSecurityContext': {'runAsUser': 2000},
        'securityContext': {'readOnlyRootFilesystem': False},
    }
    deployment = build(with_spec(template=template))

    assert deployment['spec']['template']['spec']['securityContext']['runAsUser'] == 2000
    assert deployment['spec']['template']['spec']['securityContext']['runAsNonRoot'] is True
    assert container(deployment)['securityContext']['readOnlyRootFilesystem'] is False
    assert container(deployment)['securityContext']['capabilities'] == {'drop': ['ALL']}


def test_without_replicas_the_body_leaves_the_size_to_others() -> None:
    deployment = desired_deployment(parse_worker(MINIMAL), None)

    assert 'replicas' not in deployment['spec']


def test_ownership_is_by_controller_uid() -> None:
    worker = parse_worker(MINIMAL)
    ours = build()
    theirs = copy.deepcopy(ours)
    theirs['metadata']['ownerReferences'][0]['uid'] = 'someone-else'
    unowned = {'metadata': {'name': 'crawler'}}

    assert is_owned_by(ours, worker)
    assert not is_owned_by(theirs, worker)
    assert not is_owned_by(unowned, worker)
