"""The SergeantWorker's status: conditions that keep their transition times (pure).

Three conditions, each with a reason a machine can match on:

* ``Ready``: the Deployment has the pods asked for (``DeploymentReady``,
  ``ScaledToZero``), or not (``WaitingForPods``, ``InvalidSpec``,
  ``DeploymentConflict``, ``ApplyFailed``);
* ``Scaling``: the Deployment is being resized (``ScalingUp``, ``ScalingDown``), or
  holds its size, the reason then being the policy's (``Load``, ``Stabilizing``,
  ``Cooldown``, ``Idle``, ``BelowActivation``) or ``BrokerUnreachable``;
* ``BrokerReachable``: the last queue reading succeeded (``QueueRead``), or not
  (``BrokerUnreachable``, ``SecretNotFound``, ``InvalidConnector``);
* ``Paused``: the ``sergeant.io/paused-replicas`` annotation holds the size (``PausedReplicas``);
* ``Fallback``: ``scaling.fallback.failureThreshold`` readings failed in a row and
  the pool runs ``fallback.replicas`` (``FallbackReplicas``);
* ``ExternallyScaled``: a HorizontalPodAutoscaler decides the size (``HorizontalPodAutoscaler``).

Ready=False also says why a resource is not acted on: ``InvalidSpec``,
``DeploymentConflict`` or ``PrivilegedPodRefused``.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any, Literal

READY = 'Ready'
SCALING = 'Scaling'
BROKER_REACHABLE = 'BrokerReachable'
PAUSED = 'Paused'
FALLBACK = 'Fallback'
EXTERNALLY_SCALED = 'ExternallyScaled'
CONDITION_TYPES = (READY, SCALING, BROKER_REACHABLE, PAUSED, FALLBACK, EXTERNALLY_SCALED)


@dataclasses.dataclass(frozen=True)
class Condition:
    type: str
    status: Literal['True', 'False', 'Unknown']
    reason: str
    message: str = ''


def timestamp(moment: datetime.datetime) -> str:
    """RFC 3339 in UTC with second precision, as Kubernetes writes ``date-time`` fields."""
    return moment.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def merge_conditions(
    current: Sequence[Mapping[str, Any]],
    updates: Sequence[Condition],
    now: datetime.datetime,
    generation: int,
) -> list[dict[str, Any]]:
    """The conditions after ``updates``; a condition whose status did not change keeps its
    ``lastTransitionTime``. Conditions not updated are kept as they are."""
    by_type = {str(condition.get('type')): dict(condition) for condition in current}
    for update in updates:
        previous = by_type.get(update.type, {})
        changed = previous.get('status') != update.status
        by_type[update.type] = {
            'type': update.type,
            'status': update.status,
            'reason': update.reason,
            'message': update.message,
            'lastTransitionTime': timestamp(now)
            if changed
            else previous.get('lastTransitionTime', timestamp(now)),
            'observedGeneration': generation,
        }
    ordered = [by_type.pop(kind) for kind in CONDITION_TYPES if kind in by_type]
    return ordered + list(by_type.values())
