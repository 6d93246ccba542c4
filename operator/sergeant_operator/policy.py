"""The scaling policy: how many replicas a worker pool should run, as a pure function.

Given the bounds and timings of a ``SergeantWorker`` (:class:`ScalingSpec`), what
was remembered from earlier polls (:class:`ScalerState`) and the latest queue
reading (:class:`Observation`), :func:`decide` returns the replica count and the
state to remember. It does no I/O and reads no clock: the reconciler passes
``now`` (monotonic seconds), so tests can drive it through any timeline.

The rules, in order:

1. *Activation*: a pool at zero replicas stays there until more than
   ``activation_queue_length`` tasks are ready.
2. *Idle*: when nothing is ready or in flight, the pool keeps its size for
   ``cooldown_seconds`` after the queue was last seen busy, then drops straight to
   ``min_replicas`` (which may be 0). Busy workers are never scaled away: tasks in
   flight count as work.
3. *Busy*: the recommendation is ``ceil((ready + in_flight) / tasks_per_replica)``
   within the bounds (at least one replica). A higher recommendation is applied at
   once; a lower one only once it has been the highest for
   ``scale_down_stabilization_seconds`` (the count is the highest recommendation
   seen within that window), so a noisy queue length does not make the pool flap.

The result always lies within ``[min_replicas, max_replicas]``.

When the queue cannot be read, :func:`hold` keeps the last decision; after
``fallback.failure_threshold`` failed readings in a row, :func:`on_failure` goes to
``fallback.replicas`` instead (when a fallback is set).
"""

from __future__ import annotations

import dataclasses
import enum
import math


class Reason(str, enum.Enum):
    """Why the policy chose its count; used as the Scaling condition's reason."""

    BELOW_ACTIVATION = 'BelowActivation'
    COOLDOWN = 'Cooldown'
    IDLE = 'Idle'
    LOAD = 'Load'
    STABILIZING = 'Stabilizing'


@dataclasses.dataclass(frozen=True)
class Fallback:
    """``spec.scaling.fallback``: the size to take after ``failure_threshold`` failed queue readings."""

    replicas: int
    failure_threshold: int = 3

    def __post_init__(self) -> None:
        if self.replicas < 0:
            raise ValueError(f'fallback.replicas: must be >= 0, got {self.replicas}')
        if self.failure_threshold < 1:
            raise ValueError(f'fallback.failureThreshold: must be >= 1, got {self.failure_threshold}')


@dataclasses.dataclass(frozen=True)
class ScalingSpec:
    """Bounds and timings of one pool (``spec.scaling`` of a SergeantWorker)."""

    min_replicas: int = 0
    max_replicas: int = 10
    tasks_per_replica: int = 10
    activation_queue_length: int = 0
    polling_interval_seconds: int = 30
    cooldown_seconds: int = 300
    scale_down_stabilization_seconds: int = 300
    fallback: Fallback | None = None

    def __post_init__(self) -> None:
        if self.min_replicas < 0:
            raise ValueError(f'minReplicas: must be >= 0, got {self.min_replicas}')
        if self.max_replicas < max(self.min_replicas, 1):
            raise ValueError(f'maxReplicas: must be >= max(minReplicas, 1), got {self.max_replicas}')
        if self.tasks_per_replica < 1:
            raise ValueError(f'tasksPerReplica: must be >= 1, got {self.tasks_per_replica}')
        if self.activation_queue_length < 0:
            raise ValueError(f'activationQueueLength: must be >= 0, got {self.activation_queue_length}')
        if self.polling_interval_seconds < 1:
            raise ValueError(f'pollingIntervalSeconds: must be >= 1, got {self.polling_interval_seconds}')
        if self.cooldown_seconds < 0:
            raise ValueError(f'cooldownSeconds: must be >= 0, got {self.cooldown_seconds}')
        if self.scale_down_stabilization_seconds < 0:
            raise ValueError(
                f'scaleDownStabilizationSeconds: must be >= 0, got {self.scale_down_stabilization_seconds}'
            )
        if self.fallback is not None and self.clamp(self.fallback.replicas) != self.fallback.replicas:
            raise ValueError(
                f'fallback.replicas: must lie within [minReplicas, maxReplicas], got {self.fallback.replicas}'
            )

    def clamp(self, replicas: int) -> int:
        return min(max(replicas, self.min_replicas), self.max_replicas)


@dataclasses.dataclass(frozen=True)
class Observation:
    """One reading of the task queue."""

    ready: int  # tasks waiting to be popped (delayed tasks excluded)
    in_flight: int  # tasks leased by workers right now

    @property
    def load(self) -> int:
        return self.ready + self.in_flight


@dataclasses.dataclass(frozen=True)
class ScalerState:
    """What the policy remembers between polls."""

    replicas: int  # the last decision
    last_busy: float  # when the queue was last seen with work (or when watching began)
    recommendations: tuple[tuple[float, int], ...] = ()  # (time, count) within the stabilisation window

    @classmethod
    def initial(cls, replicas: int, now: float) -> ScalerState:
        """Start from the pool's current size; an idle queue then waits a full cooldown first."""
        return cls(replicas=replicas, last_busy=now)


@dataclasses.dataclass(frozen=True)
class Decision:
    replicas: int
    reason: Reason
    state: ScalerState


def decide(spec: ScalingSpec, state: ScalerState, observation: Observation, now: float) -> Decision:
    """The replica count for ``observation`` at ``now``, and the state to pass next time."""
    last_busy = now if observation.load > 0 else state.last_busy
    if state.replicas == 0 and observation.ready <= spec.activation_queue_length:
        replicas = spec.clamp(0)
        return Decision(replicas, Reason.BELOW_ACTIVATION, ScalerState(replicas, last_busy))
    if observation.load == 0:
        if now - last_busy < spec.cooldown_seconds:
            replicas = spec.clamp(state.replicas)
            return Decision(replicas, Reason.COOLDOWN, dataclasses.replace(state, replicas=replicas))
        return Decision(spec.min_replicas, Reason.IDLE, ScalerState(spec.min_replicas, last_busy))
    wanted = math.ceil(observation.load / spec.tasks_per_replica)
    recommendation = min(max(wanted, spec.min_replicas, 1), spec.max_replicas)
    window_start = now - spec.scale_down_stabilization_seconds
    recent = tuple((at, count) for at, count in state.recommendations if at > window_start)
    recent += ((now, recommendation),)
    highest = max(count for _, count in recent)
    replicas = min(max(highest, spec.min_replicas, 1), spec.max_replicas)
    reason = Reason.STABILIZING if replicas > recommendation else Reason.LOAD
    return Decision(replicas, reason, ScalerState(replicas, last_busy, recent))


def hold(spec: ScalingSpec, state: ScalerState) -> int:
    """The count to keep when the queue could not be read: the last decision, within the bounds."""
    return spec.clamp(state.replicas)


def on_failure(spec: ScalingSpec, state: ScalerState, failures: int) -> tuple[int, bool]:
    """The count to run after ``failures`` failed readings in a row, and whether it is the fallback's."""
    if spec.fallback is not None and failures >= spec.fallback.failure_threshold:
        return spec.fallback.replicas, True
    return hold(spec, state), False
