"""Pod deletion costs set before a scale-down, so that busy workers are removed last.

When a ReplicaSet has more pods than it wants, its controller removes first the pods
that are not scheduled, running or ready, then those with the lowest
``controller.kubernetes.io/pod-deletion-cost`` (an int32; a pod without one costs 0).
Every worker process records ``<pod or host name>/<pid>`` as the owner of the leases
it holds (``sergeant.connector.process_lease_owner``; the operator's Deployment sets ``POD_NAME``), so
the broker knows how many tasks each pod holds right now.

Before the reconciler lowers ``spec.replicas`` it calls :func:`mark_pods`: each pod of
the Deployment gets the number of tasks its workers hold as its cost, and an idle pod
gets 0, so idle pods go first and the busiest go last. Only changed values are patched.

This is best effort. A cost is read when the ReplicaSet controller picks its victims;
a pod that takes a task between the reading and its removal still drains on SIGTERM
(its tasks finish or go back to the queue), so nothing is lost, only moved. A failed
reading or patch is logged and the scale-down goes on: the costs never hold it back.
Neighbours: :mod:`.queue` reads the leases, :mod:`.kube` lists and patches the pods,
:mod:`.reconciler` calls this module.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from . import deployment as desired
from .kube import Kube, KubeError, NotFound
from .queue import BrokerError, QueueReader
from .resource import WorkerResource

logger = logging.getLogger(__name__)

DELETION_COST_ANNOTATION = 'controller.kubernetes.io/pod-deletion-cost'
MAX_COST = 2**31 - 1  # the annotation is an int32


def tasks_per_pod(leases_by_owner: Mapping[str, int]) -> dict[str, int]:
    """Leases per pod: the owners ``<pod>/<pid>`` of one pod added up."""
    pods: dict[str, int] = {}
    for owner, count in leases_by_owner.items():
        pod = owner.partition('/')[0]
        pods[pod] = pods.get(pod, 0) + count
    return pods


def deletion_costs(pods: Iterable[Mapping[str, Any]], held: Mapping[str, int]) -> dict[str, str]:
    """The cost each live pod should carry, for the pods whose annotation differs from it.

    A pod already being deleted is left alone.
    """
    changes: dict[str, str] = {}
    for pod in pods:
        metadata = pod.get('metadata') or {}
        if metadata.get('deletionTimestamp'):
            continue
        name = str(metadata.get('name') or '')
        wanted = str(min(held.get(name, 0), MAX_COST))
        if (metadata.get('annotations') or {}).get(DELETION_COST_ANNOTATION) != wanted:
            changes[name] = wanted
    return changes


def mark_pods(kube: Kube, reader: QueueReader, worker: WorkerResource) -> dict[str, int] | None:
    """Set the deletion cost of every pod of ``worker``'s Deployment to the tasks it holds.

    Returns the tasks held per pod (pods holding none left out), or None when the
    leases or the pods could not be read or a pod could not be patched.
    """
    try:
        held = tasks_per_pod(reader.leases_by_owner(worker))
        pods = kube.list_pods(worker.namespace, desired.selector_string(worker))
    except (BrokerError, KubeError) as error:
        logger.warning('%s/%s: pod deletion costs not set: %s', worker.namespace, worker.name, error)
        return None
    for name, cost in sorted(deletion_costs(pods, held).items()):
        try:
            kube.annotate_pod(worker.namespace, name, {DELETION_COST_ANNOTATION: cost})
        except NotFound:
            continue  # gone meanwhile
        except KubeError as error:
            logger.warning(
                '%s/%s: deletion cost of pod %s not set: %s', worker.namespace, worker.name, name, error
            )
            return None
    names = {str((pod.get('metadata') or {}).get('name')) for pod in pods}
    busy = {name: count for name, count in held.items() if name in names and count > 0}
    logger.info('%s/%s: tasks held per pod before scaling down: %s', worker.namespace, worker.name, busy)
    return busy
