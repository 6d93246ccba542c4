"""KEDA's controls, the security boundary and the Deployment's lifecycle, against a real API server.

No controllers run on ``kube_api``: the tests play the Deployment controller (its
status) and the HPA controller (its writes to scale subresources) where needed, and
assert on the objects. The API server's own PodSecurity admission judges the pods.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from sergeant_operator.deployment import desired_deployment
from sergeant_operator.hpa import HANDOVER_MANAGER, owns_replicas
from sergeant_operator.kube import Kube
from sergeant_operator.resource import PAUSED_REPLICAS_ANNOTATION, parse_worker

from sergeant.connector import Connector, create_connector
from tests.operator.conftest import RunningOperator, eventually
from tests.operator.test_end_to_end import (
    GROUP,
    PLURAL,
    POLL_SECONDS,
    VERSION,
    Cluster,
    condition,
    create,
    reconciles,
    worker_body,
)
from tests.servers.redis import RedisServer, running_redis


@pytest.fixture
def cluster(kube: Kube, kube_namespace: str, redis_server: RedisServer) -> Cluster:
    objects = client.CustomObjectsApi(kube.api_client)
    return Cluster(kube, objects, kube_namespace, redis_server.url, f'controls-{kube_namespace}')


@pytest.fixture
def broker(redis_server: RedisServer, cluster: Cluster) -> Iterator[Connector]:
    connector = create_connector('redis', {'url': redis_server.url})
    yield connector
    connector.delete(cluster.queue)
    connector.close()


def patch_worker(cluster: Cluster, name: str, body: dict[str, Any]) -> None:
    cluster.objects.patch_namespaced_custom_object(GROUP, VERSION, cluster.namespace, PLURAL, name, body)


def deployment_of(cluster: Cluster, name: str) -> dict[str, Any]:
    found: dict[str, Any] = eventually(
        lambda: cluster.kube.get_deployment(cluster.namespace, name), f'Deployment {name} exists'
    )
    return found


# -- the CRD's contract for the new fields ------------------------------------------------------


@pytest.mark.parametrize(
    ('fallback', 'complaint'),
    [
        pytest.param({'failureThreshold': 2}, 'spec.scaling.fallback.replicas', id='no-replicas'),
        pytest.param({'replicas': -1}, 'spec.scaling.fallback.replicas', id='negative'),
        pytest.param({'replicas': 1, 'failureThreshold': 0}, 'failureThreshold', id='threshold-0'),
        pytest.param({'replicas': '2'}, 'spec.scaling.fallback.replicas', id='string'),
        pytest.param({'replicas': 30}, 'fallback.replicas must lie within', id='above-max'),
    ],
)
def test_the_api_server_rejects_a_bad_fallback(
    cluster: Cluster, fallback: dict[str, Any], complaint: str
) -> None:
    body = worker_body('bad-fallback', 'redis://broker:6379/0', 'crawl', maxReplicas=20)
    body['spec']['scaling']['fallback'] = fallback

    with pytest.raises(ApiException) as rejected:
        create(cluster.objects, cluster.namespace, body)

    assert rejected.value.status == 422
    assert complaint in rejected.value.body


def test_a_fallback_gets_its_default_threshold(cluster: Cluster) -> None:
    body = worker_body('fallback-default', 'redis://broker:6379/0', 'crawl')
    body['spec']['scaling']['fallback'] = {'replicas': 2}

    created = create(cluster.objects, cluster.namespace, body)

    assert created['spec']['scaling']['fallback'] == {'replicas': 2, 'failureThreshold': 3}


# -- the Deployment's lifecycle (point 2, without pods) -----------------------------------------


def test_status_reports_the_deployment_s_ready_replicas(
    start_operator: Callable[..., RunningOperator], cluster: Cluster
) -> None:
    start_operator()
    cluster.create('readiness', minReplicas=3)
    cluster.await_replicas('readiness', 3, 'three replicas wanted')
    apps = client.AppsV1Api(cluster.kube.api_client)

    # what the Deployment controller would write as pods come up
    status = {'status': {'replicas': 3, 'readyReplicas': 2, 'availableReplicas': 2, 'updatedReplicas': 3}}
    apps.patch_namespaced_deployment_status('readiness', cluster.namespace, status)
    worker = cluster.worker_once(
        'readiness', lambda w: w.get('status', {}).get('readyReplicas') == 2, 'two ready reported'
    )
    assert condition(worker, 'Ready') == ('False', 'WaitingForPods')
    assert worker['status']['replicas'] == 3

    status['status']['readyReplicas'] = 3
    apps.patch_namespaced_deployment_status('readiness', cluster.namespace, status)
    cluster.worker_once(
        'readiness', lambda w: condition(w, 'Ready') == ('True', 'DeploymentReady'), 'all ready reported'
    )


def test_the_owner_reference_lets_the_garbage_collector_delete_the_deployment(
    start_operator: Callable[..., RunningOperator], cluster: Cluster
) -> None:
    running = start_operator()
    created = cluster.create('owned', minReplicas=1)
    deployment = deployment_of(cluster, 'owned')

    assert deployment['metadata']['ownerReferences'] == [
        {
            'apiVersion': f'{GROUP}/{VERSION}',
            'kind': 'SergeantWorker',
            'name': 'owned',
            'uid': created['metadata']['uid'],
            'controller': True,
            'blockOwnerDeletion': True,
        }
    ]

    cluster.objects.delete_namespaced_custom_object(GROUP, VERSION, cluster.namespace, PLURAL, 'owned')

    # the operator lets go: no loop, no more reconciliations; the garbage collector (not running
    # here) deletes a Deployment whose only owner is gone, which the cluster-with-pods tests show
    controller = running.operator.controller
    assert controller is not None
    eventually(lambda: (cluster.namespace, 'owned') not in controller.watched, 'the loop is dropped')
    left = cluster.kube.get_deployment(cluster.namespace, 'owned')
    assert left is not None
    time.sleep(2 * POLL_SECONDS)
    assert cluster.kube.get_deployment(cluster.namespace, 'owned') == left  # untouched since


def test_a_template_change_rolls_the_deployment_per_its_strategy(
    start_operator: Callable[..., RunningOperator], cluster: Cluster
) -> None:
    start_operator()
    cluster.create('rolling', minReplicas=2)
    before = deployment_of(cluster, 'rolling')
    assert before['spec']['strategy'] == {
        'type': 'RollingUpdate',
        'rollingUpdate': {'maxUnavailable': '25%', 'maxSurge': '25%'},
    }  # the API server's default: the operator leaves the strategy to the Deployment

    patch_worker(
        cluster,
        'rolling',
        {
            'spec': {
                'image': 'registry.example/crawler:2',
                'template': {'env': [{'name': 'MODE', 'value': 'b'}]},
            }
        },
    )

    def rolled() -> dict[str, Any] | None:
        deployment = cluster.kube.get_deployment(cluster.namespace, 'rolling')
        [container] = (deployment or {})['spec']['template']['spec']['containers']
        return deployment if container['image'] == 'registry.example/crawler:2' else None

    after: dict[str, Any] = eventually(rolled, 'the new image is in the pod template')
    [container] = after['spec']['template']['spec']['containers']
    assert {'name': 'MODE', 'value': 'b'} in container['env']
    assert after['metadata']['generation'] > before['metadata']['generation']  # a new rollout
    assert after['spec']['strategy'] == before['spec']['strategy']
    assert after['spec']['replicas'] == 2


# -- paused, activation, fallback ---------------------------------------------------------------


def test_paused_replicas_hold_and_removing_the_annotation_resumes(
    start_operator: Callable[..., RunningOperator], cluster: Cluster, broker: Connector
) -> None:
    start_operator()
    broker.push(cluster.queue, [b'task'] * 250)
    cluster.create('pausable')
    cluster.await_replicas('pausable', 5, '250 tasks: 5 replicas')

    patch_worker(cluster, 'pausable', {'metadata': {'annotations': {PAUSED_REPLICAS_ANNOTATION: '1'}}})

    cluster.await_replicas('pausable', 1, 'held at the paused count')
    worker = cluster.worker_once(
        'pausable', lambda w: condition(w, 'Paused') == ('True', 'PausedReplicas'), 'Paused=True'
    )
    assert worker['spec']['replicas'] == 1
    broker.push(cluster.queue, [b'task'] * 250)  # more work changes nothing while paused
    cluster.worker_once('pausable', lambda w: w['status'].get('queueLength') == 500, 'the queue is read')
    assert cluster.replicas('pausable') == 1

    patch_worker(cluster, 'pausable', {'metadata': {'annotations': {PAUSED_REPLICAS_ANNOTATION: None}}})

    cluster.await_replicas('pausable', 10, 'scaling resumes: 500 tasks, 10 replicas')
    cluster.worker_once('pausable', lambda w: condition(w, 'Paused') == ('False', 'NotPaused'), 'resumed')
    reasons = [event['reason'] for event in cluster.events('pausable')]
    assert 'Paused' in reasons and 'Resumed' in reasons


def test_a_pool_at_zero_wakes_only_past_the_activation_length(
    start_operator: Callable[..., RunningOperator], cluster: Cluster, broker: Connector
) -> None:
    running = start_operator()
    cluster.create('sleepy', activationQueueLength=20)
    broker.push(cluster.queue, [b'task'] * 20)
    cluster.worker_once('sleepy', lambda w: w.get('status', {}).get('queueLength') == 20, 'queue read')
    polls = reconciles(running, cluster.namespace, 'sleepy')
    eventually(lambda: reconciles(running, cluster.namespace, 'sleepy') >= polls + 2, 'two more polls')
    assert cluster.replicas('sleepy') == 0  # 20 is not more than 20

    broker.push(cluster.queue, [b'task'] * 1)

    cluster.await_replicas('sleepy', 1, '21 tasks wake the pool')
    broker.delete(cluster.queue)
    broker.push(cluster.queue, [b'task'] * 5)  # below the activation length: normal scaling keeps 1
    polls = reconciles(running, cluster.namespace, 'sleepy')
    eventually(lambda: reconciles(running, cluster.namespace, 'sleepy') >= polls + 2, 'two more polls')
    assert cluster.replicas('sleepy') == 1


def test_failed_queue_reads_bring_the_fallback_replicas(
    start_operator: Callable[..., RunningOperator], cluster: Cluster, tmp_path: Path
) -> None:
    start_operator()
    with running_redis(tmp_path / 'redis') as flaky:
        connector = create_connector('redis', {'url': flaky.url})
        connector.push(cluster.queue, [b'task'] * 100)
        connector.close()
        body = worker_body('fallback', flaky.url, cluster.queue)
        body['spec']['scaling']['fallback'] = {'failureThreshold': 2, 'replicas': 7}
        create(cluster.objects, cluster.namespace, body)
        cluster.await_replicas('fallback', 2, '100 tasks: 2 replicas')

        flaky.stop()

        cluster.await_replicas('fallback', 7, 'the fallback size after two failed reads')
        worker = cluster.worker_once(
            'fallback', lambda w: condition(w, 'Fallback') == ('True', 'FallbackReplicas'), 'Fallback=True'
        )
        assert condition(worker, 'BrokerReachable') == ('False', 'BrokerUnreachable')
        assert ('Warning', 'Fallback') in {(e['type'], e['reason']) for e in cluster.events('fallback')}

        flaky.start()
        connector = create_connector('redis', {'url': flaky.url})
        connector.push(cluster.queue, [b'task'] * 100)  # whatever survived the restart, 100 more
        length = connector.length(cluster.queue)
        connector.close()

        cluster.await_replicas('fallback', -(-length // 50), 'the queue decides again')
        cluster.worker_once('fallback', lambda w: condition(w, 'Fallback') == ('False', 'NoFallback'), 'over')


# -- a HorizontalPodAutoscaler ------------------------------------------------------------------


def create_hpa(cluster: Cluster, name: str, kind: str, api_version: str, target: str) -> None:
    body = {
        'apiVersion': 'autoscaling/v2',
        'kind': 'HorizontalPodAutoscaler',
        'metadata': {'name': name},
        'spec': {
            'scaleTargetRef': {'apiVersion': api_version, 'kind': kind, 'name': target},
            'minReplicas': 1,
            'maxReplicas': 9,
        },
    }
    client.AutoscalingV2Api(cluster.kube.api_client).create_namespaced_horizontal_pod_autoscaler(
        cluster.namespace, body
    )


def test_an_hpa_of_the_worker_scales_it_through_the_scale_subresource(
    start_operator: Callable[..., RunningOperator], cluster: Cluster, broker: Connector
) -> None:
    start_operator()
    broker.push(cluster.queue, [b'task'] * 150)
    cluster.create('hpa-worker')
    cluster.await_replicas('hpa-worker', 3, 'the operator scaled first')

    create_hpa(cluster, 'hpa-worker', 'SergeantWorker', f'{GROUP}/{VERSION}', 'hpa-worker')
    cluster.worker_once(
        'hpa-worker',
        lambda w: condition(w, 'ExternallyScaled') == ('True', 'HorizontalPodAutoscaler'),
        'the HPA is noticed',
    )
    # what the HPA controller does: write the scale subresource
    cluster.objects.patch_namespaced_custom_object_scale(
        GROUP, VERSION, cluster.namespace, PLURAL, 'hpa-worker', {'spec': {'replicas': 6}}
    )

    cluster.await_replicas('hpa-worker', 6, 'the Deployment follows the HPA')
    broker.push(cluster.queue, [b'task'] * 500)  # the operator would want 13: it does not scale
    cluster.worker_once('hpa-worker', lambda w: w['status'].get('queueLength') == 650, 'queue read')
    assert cluster.replicas('hpa-worker') == 6
    assert cluster.kube.get_worker(cluster.namespace, 'hpa-worker')['spec']['replicas'] == 6


def test_an_hpa_of_the_deployment_takes_over_its_replicas(
    start_operator: Callable[..., RunningOperator], cluster: Cluster, broker: Connector
) -> None:
    running = start_operator()
    broker.push(cluster.queue, [b'task'] * 200)
    cluster.create('hpa-deploy')
    cluster.await_replicas('hpa-deploy', 4, 'the operator scaled first')

    create_hpa(cluster, 'hpa-deploy', 'Deployment', 'apps/v1', 'hpa-deploy')
    cluster.worker_once(
        'hpa-deploy',
        lambda w: condition(w, 'ExternallyScaled') == ('True', 'HorizontalPodAutoscaler'),
        'the HPA is noticed',
    )

    def handed_over() -> dict[str, Any] | None:
        deployment = cluster.kube.get_deployment(cluster.namespace, 'hpa-deploy')
        return deployment if deployment is not None and not owns_replicas(deployment) else None

    deployment = eventually(handed_over, 'the operator hands spec.replicas over')
    assert deployment['spec']['replicas'] == 4  # handed over, not reset to the default of 1
    assert owns_replicas(deployment, HANDOVER_MANAGER)

    # what the HPA controller does: write the Deployment's scale subresource
    client.AppsV1Api(cluster.kube.api_client).patch_namespaced_deployment_scale(
        'hpa-deploy', cluster.namespace, {'spec': {'replicas': 8}}
    )
    polls = reconciles(running, cluster.namespace, 'hpa-deploy')
    eventually(lambda: reconciles(running, cluster.namespace, 'hpa-deploy') >= polls + 2, 'two more polls')
    assert cluster.replicas('hpa-deploy') == 8  # not fought


# -- the security boundary ----------------------------------------------------------------------


def restricted_namespace(cluster: Cluster) -> str:
    name = f'{cluster.namespace}-restricted'
    labels = {
        'pod-security.kubernetes.io/enforce': 'restricted',
        'pod-security.kubernetes.io/enforce-version': 'latest',
    }
    client.CoreV1Api(cluster.kube.api_client).create_namespace({'metadata': {'name': name, 'labels': labels}})
    return name


def pod_from(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    template = deployment['spec']['template']
    return {
        'apiVersion': 'v1',
        'kind': 'Pod',
        'metadata': {'name': name, **template['metadata']},
        'spec': template['spec'],
    }


def test_a_restricted_namespace_admits_the_rendered_worker_pod(
    start_operator: Callable[..., RunningOperator], cluster: Cluster
) -> None:
    start_operator()
    cluster.create('admitted', minReplicas=1)
    deployment = deployment_of(cluster, 'admitted')  # as the operator applied it, defaults filled in
    namespace = restricted_namespace(cluster)
    core = client.CoreV1Api(cluster.kube.api_client)

    created = core.create_namespaced_pod(namespace, pod_from(deployment, 'worker-0'))

    assert created.metadata.name == 'worker-0'  # admitted by PodSecurity 'restricted'
    # and the check is real: a pod the operator would refuse is refused by the API server too
    obj = worker_body('escalating', cluster.broker_url, cluster.queue)
    obj['metadata'].update(namespace=namespace, uid='u-1')
    obj['spec']['template'] = {'securityContext': {'allowPrivilegeEscalation': True}}
    privileged = desired_deployment(parse_worker(obj), 1)
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(namespace, pod_from(privileged, 'worker-1'))
    assert refused.value.status == 403
    assert 'violates PodSecurity' in refused.value.body and 'allowPrivilegeEscalation' in refused.value.body


def test_a_privileged_worker_is_refused_with_a_condition_and_an_event(
    start_operator: Callable[..., RunningOperator], cluster: Cluster
) -> None:
    start_operator()
    body = worker_body('greedy', cluster.broker_url, cluster.queue, minReplicas=1)
    body['spec']['template'] = {
        'podSecurityContext': {'runAsUser': 0},
        'securityContext': {'privileged': True},
    }

    create(cluster.objects, cluster.namespace, body)

    worker = cluster.worker_once(
        'greedy', lambda w: condition(w, 'Ready') == ('False', 'PrivilegedPodRefused'), 'refused'
    )
    message = next(c['message'] for c in worker['status']['conditions'] if c['type'] == 'Ready')
    assert 'securityContext.runAsUser is 0 (root)' in message
    assert 'containers[worker].securityContext.privileged is true' in message
    assert cluster.kube.get_deployment(cluster.namespace, 'greedy') is None
    assert [e['reason'] for e in cluster.events('greedy')] == ['PrivilegedPodRefused']
