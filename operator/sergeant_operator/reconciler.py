"""One reconciliation of one SergeantWorker: read the queue, decide, apply, report.

A :class:`WorkerReconciler` lives as long as its resource is watched and keeps
what the scaling policy remembers between polls. Each :meth:`~WorkerReconciler.reconcile`:

1. reads the spec (an invalid one sets Ready=False and changes nothing else);
2. reads the owned Deployment (one made by someone else is never taken over);
3. reads the queue and asks the policy for a count; when the queue cannot be
   read, it keeps the last decision (it never scales to zero on an error), sets
   BrokerReachable=False and records a Warning event; after
   ``scaling.fallback.failureThreshold`` failed readings in a row it runs
   ``fallback.replicas`` instead (Fallback=True);
   the ``sergeant.io/paused-replicas`` annotation holds the count instead (Paused=True),
   and a HorizontalPodAutoscaler targeting the resource or its Deployment takes
   the count over (ExternallyScaled=True, :mod:`.hpa`);
   a pod template asking for privileges is refused (:mod:`.security`);
4. if this replica still leads (and scales down), marks idle pods cheapest to
   delete (:mod:`.deletion_cost`), server-side-applies the Deployment with that
   count, publishes it as ``spec.replicas`` through the scale subresource, and
   patches the status when it changed.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from . import deletion_cost
from . import deployment as desired
from .events import EventReporter
from .hpa import HANDOVER_MANAGER, Autoscaler, autoscaler_of, handover_body, owns_replicas
from .kube import Kube, KubeError
from .metrics import OperatorMetrics
from .policy import Decision, Observation, ScalerState, decide, on_failure
from .queue import BrokerError, QueueReader
from .resource import SpecError, WorkerResource, object_key, parse_worker
from .security import pod_violations
from .status import (
    BROKER_REACHABLE,
    EXTERNALLY_SCALED,
    FALLBACK,
    PAUSED,
    READY,
    SCALING,
    Condition,
    merge_conditions,
    timestamp,
)

logger = logging.getLogger(__name__)

RETRY_SECONDS = 10.0  # next attempt after an API failure or an invalid spec
BROKER_UNREACHABLE_REASON = 'BrokerUnreachable'
FALLBACK_REASON = 'Fallback'
PAUSED_REASON = 'Paused'
HPA_REASON = 'HorizontalPodAutoscaler'
PRIVILEGED_REASON = 'PrivilegedPodRefused'


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one reconciliation did, for callers and tests."""

    replicas: int | None  # None when nothing was applied
    observation: Observation | None
    reason: str
    next_poll_seconds: float


class WorkerReconciler:
    """Reconciles one SergeantWorker; the scaling state lives here between polls."""

    def __init__(
        self,
        kube: Kube,
        reader: QueueReader,
        metrics: OperatorMetrics,
        events: EventReporter,
        is_leader: Callable[[], bool],
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime.datetime] = _utc_now,
        allow_privileged_pods: bool = False,
    ) -> None:
        self._kube = kube
        self._reader = reader
        self._metrics = metrics
        self._events = events
        self._is_leader = is_leader
        self._clock = clock
        self._wall_clock = wall_clock
        self._scaler: ScalerState | None = None
        self._broker_error: BrokerError | None = None  # the last reading's failure, None when it worked
        self._reported_problem: tuple[str, int] | None = None  # (reason, generation) already evented
        self._allow_privileged_pods = allow_privileged_pods
        self._failures = 0  # failed queue readings in a row
        self._mode: str | None = None  # PAUSED_REASON, HPA_REASON or FALLBACK_REASON while one applies
        self._autoscaler_error: str | None = None  # why HPAs could not be listed, once logged

    def reconcile(self, obj: Mapping[str, Any]) -> Outcome:
        namespace, name = object_key(obj)
        self._metrics.reconciles.labels(namespace, name).inc()
        try:
            worker = parse_worker(obj)
        except SpecError as error:
            self._refuse(obj, 'InvalidSpec', str(error))
            return Outcome(None, None, 'InvalidSpec', RETRY_SECONDS)
        try:
            return self._reconcile(obj, worker)
        except KubeError as error:
            logger.warning('reconciling %s/%s: %s', namespace, name, error)
            self._metrics.count_error(namespace, name, 'KubernetesApi')
            return Outcome(
                None, None, 'KubernetesApi', min(RETRY_SECONDS, worker.spec.scaling.polling_interval_seconds)
            )

    def _reconcile(self, obj: Mapping[str, Any], worker: WorkerResource) -> Outcome:
        scaling = worker.spec.scaling
        existing = self._kube.get_deployment(worker.namespace, worker.name)
        if existing is not None and not desired.is_owned_by(existing, worker):
            message = f'Deployment {worker.name!r} exists and is not controlled by this SergeantWorker'
            self._refuse(obj, 'DeploymentConflict', message)
            return Outcome(None, None, 'DeploymentConflict', scaling.polling_interval_seconds)
        problems = pod_violations(desired.desired_deployment(worker, None)['spec']['template']['spec'])
        if problems and not self._allow_privileged_pods:
            message = (
                f'refused: the pod template asks for {"; ".join(problems)} (see --allow-privileged-pods)'
            )
            self._refuse(obj, PRIVILEGED_REASON, message)
            return Outcome(None, None, PRIVILEGED_REASON, scaling.polling_interval_seconds)
        current = None if existing is None else int((existing.get('spec') or {}).get('replicas') or 0)
        now = self._clock()
        if self._scaler is None:
            published = (obj.get('spec') or {}).get('replicas')
            start = current if current is not None else published if isinstance(published, int) else 0
            self._scaler = ScalerState.initial(scaling.clamp(start), now)

        observation, decision = self._observe(obj, worker, now)
        if decision is not None:
            replicas, reason, self._scaler = decision.replicas, decision.reason.value, decision.state
        else:
            replicas, fell_back = on_failure(scaling, self._scaler, self._failures)
            reason = FALLBACK_REASON if fell_back else BROKER_UNREACHABLE_REASON
            self._scaler = dataclasses.replace(self._scaler, replicas=replicas)
        autoscaler = self._autoscaler(worker)
        applied: int | None = replicas  # None: spec.replicas left to an HPA of the Deployment
        if autoscaler is not None and autoscaler.scales_deployment:
            applied, reason = None, HPA_REASON
            replicas = current if current is not None else 1  # a new Deployment gets the default size
        elif autoscaler is not None:  # the HPA writes spec.replicas through the scale subresource
            published = (obj.get('spec') or {}).get('replicas')
            applied = replicas = (
                published if isinstance(published, int) else current if current is not None else replicas
            )
            reason = HPA_REASON
        elif worker.paused_replicas is not None:
            applied = replicas = worker.paused_replicas
            reason = PAUSED_REASON
        if reason in (PAUSED_REASON, HPA_REASON):  # resume from the size the pool has
            self._scaler = dataclasses.replace(self._scaler, replicas=scaling.clamp(replicas))
        self._metrics.desired_replicas.labels(worker.namespace, worker.name).set(replicas)

        if not self._is_leader():
            return Outcome(None, observation, 'NotLeader', scaling.polling_interval_seconds)
        if current is not None and replicas < current:  # idle pods first: costs before the count
            deletion_cost.mark_pods(self._kube, self._reader, worker)
        if applied is None and existing is not None and owns_replicas(existing):
            self._kube.apply_deployment(handover_body(existing), field_manager=HANDOVER_MANAGER)
        self._kube.apply_deployment(desired.desired_deployment(worker, applied))
        if autoscaler is None and (obj.get('spec') or {}).get('replicas') != replicas:
            self._kube.scale_worker(worker.namespace, worker.name, replicas)
        self._report_mode(obj, worker, reason, autoscaler, replicas)
        if current is None:
            self._events.emit(
                obj, 'Normal', 'Created', 'Apply', f'Deployment created with {replicas} replicas'
            )
        elif current != replicas:
            note = f'Scaled from {current} to {replicas} replicas ({_describe(observation, reason)})'
            self._events.emit(obj, 'Normal', 'Scaled', 'Scale', note)
        # pods come and go at the Deployment controller's pace: report what it had seen at the start
        self._update_status(
            obj, worker, existing or {}, replicas, reason, observation, scaled=current != replicas,
            modes=self._mode_conditions(worker, reason, autoscaler, replicas),
        )  # fmt: skip
        return Outcome(replicas, observation, reason, scaling.polling_interval_seconds)

    def _observe(
        self, obj: Mapping[str, Any], worker: WorkerResource, now: float
    ) -> tuple[Observation | None, Decision | None]:
        assert self._scaler is not None
        try:
            observation = self._reader.read(worker)
        except BrokerError as error:
            self._failures += 1
            self._metrics.count_error(worker.namespace, worker.name, error.reason)
            if (
                self._broker_error is None or self._broker_error.reason != error.reason
            ) and self._is_leader():
                note = f'{error.message}; keeping {self._scaler.replicas} replicas'
                self._events.emit(obj, 'Warning', error.reason, 'ReadQueue', note)
            self._broker_error = error
            logger.warning('%s/%s: %s', worker.namespace, worker.name, error.message)
            return None, None
        if self._broker_error is not None and self._is_leader():
            self._events.emit(obj, 'Normal', 'BrokerReachable', 'ReadQueue', 'The queue can be read again')
        self._broker_error = None
        self._failures = 0
        self._metrics.queue_length.labels(worker.namespace, worker.name).set(observation.ready)
        self._metrics.in_flight.labels(worker.namespace, worker.name).set(observation.in_flight)
        return observation, decide(worker.spec.scaling, self._scaler, observation, now)

    def _update_status(
        self,
        obj: Mapping[str, Any],
        worker: WorkerResource,
        deployment: Mapping[str, Any],
        replicas: int,
        reason: str,
        observation: Observation | None,
        scaled: bool,
        modes: list[Condition],
    ) -> None:
        previous = dict(obj.get('status') or {})
        pods = (deployment.get('status') or {}).get('replicas') or 0
        ready_pods = (deployment.get('status') or {}).get('readyReplicas') or 0
        now = self._wall_clock()
        status: dict[str, Any] = {
            **previous,
            'desiredReplicas': replicas,
            'replicas': pods,
            'readyReplicas': ready_pods,
            'selector': desired.selector_string(worker),
            'observedGeneration': worker.generation,
        }
        if observation is not None:
            status['queueLength'] = observation.ready
            status['inFlight'] = observation.in_flight
        # Paused, Fallback and ExternallyScaled appear once they apply (or an HPA overrides one)
        shown = {condition.get('type') for condition in previous.get('conditions') or []}
        if scaled or 'lastScaleTime' not in status:
            status['lastScaleTime'] = timestamp(now)
        conditions = [
            _ready_condition(replicas, ready_pods),
            _scaling_condition(replicas, pods, reason, observation),
            _broker_condition(self._broker_error, observation),
            *(
                mode
                for mode in modes
                if mode.status == 'True' or mode.type in shown or mode.reason == HPA_REASON
            ),
        ]
        status['conditions'] = merge_conditions(
            previous.get('conditions') or [], conditions, now, worker.generation
        )
        if status != previous:
            self._kube.patch_worker_status(worker.namespace, worker.name, status)

    def _autoscaler(self, worker: WorkerResource) -> Autoscaler | None:
        """The HPA scaling this pool, if any; when HPAs cannot be listed (RBAC), none (logged once)."""
        try:
            autoscalers = self._kube.list_autoscalers(worker.namespace)
        except KubeError as error:
            if self._autoscaler_error != error.reason:
                logger.warning('%s/%s: cannot list HorizontalPodAutoscalers: %s', *worker.key, error)
                self._autoscaler_error = error.reason
            return None
        self._autoscaler_error = None
        return autoscaler_of(autoscalers, worker.name)

    def _report_mode(
        self,
        obj: Mapping[str, Any],
        worker: WorkerResource,
        reason: str,
        autoscaler: Autoscaler | None,
        replicas: int,
    ) -> None:
        """An event when the pool enters or leaves paused, HPA-driven or fallback scaling."""
        mode = reason if reason in (PAUSED_REASON, HPA_REASON, FALLBACK_REASON) else None
        if mode == self._mode:
            return
        if mode is None:
            self._events.emit(obj, 'Normal', 'Resumed', 'Scale', 'The operator scales the pool again')
        else:
            paused, fell_back, external = self._mode_conditions(worker, reason, autoscaler, replicas)
            note = {PAUSED_REASON: paused, FALLBACK_REASON: fell_back, HPA_REASON: external}[mode]
            if mode == FALLBACK_REASON:
                self._events.emit(obj, 'Warning', mode, 'Scale', note.message)
            else:
                self._events.emit(obj, 'Normal', mode, 'Scale', note.message)
        self._mode = mode

    def _mode_conditions(
        self, worker: WorkerResource, reason: str, autoscaler: Autoscaler | None, replicas: int
    ) -> list[Condition]:
        """Paused, Fallback and ExternallyScaled, in that order."""
        paused = worker.paused_replicas
        if paused is not None and autoscaler is None:
            pause = Condition(PAUSED, 'True', 'PausedReplicas', f'Held at {paused} replicas by annotation')
        elif paused is not None:
            pause = Condition(PAUSED, 'False', HPA_REASON, 'The paused-replicas annotation yields to the HPA')
        else:
            pause = Condition(PAUSED, 'False', 'NotPaused', 'No paused-replicas annotation')
        fallback = worker.spec.scaling.fallback
        if reason == FALLBACK_REASON and fallback is not None:
            message = (
                f'{self._failures} failed queue readings in a row (threshold {fallback.failure_threshold}):'
                f' running fallback.replicas = {fallback.replicas}'
            )
            fell_back = Condition(FALLBACK, 'True', 'FallbackReplicas', message)
        else:
            fell_back = Condition(
                FALLBACK, 'False', 'NoFallback', f'{self._failures} failed queue readings in a row'
            )
        if autoscaler is None:
            external = Condition(
                EXTERNALLY_SCALED, 'False', 'NoAutoscaler', 'The operator decides the replicas'
            )
        else:
            target = 'Deployment' if autoscaler.scales_deployment else 'SergeantWorker'
            message = (
                f'HorizontalPodAutoscaler {autoscaler.name!r} targets the {target}: it decides the replicas'
                f' ({replicas} now); the operator does not scale'
            )
            external = Condition(EXTERNALLY_SCALED, 'True', HPA_REASON, message)
        return [pause, fell_back, external]

    def _refuse(self, obj: Mapping[str, Any], reason: str, message: str) -> None:
        """Report a resource the operator will not act on; its Deployment is left as it is."""
        namespace, name = object_key(obj)
        generation = int((obj.get('metadata') or {}).get('generation') or 0)
        self._metrics.count_error(namespace, name, reason)
        logger.warning('%s/%s: %s', namespace, name, message)
        if not self._is_leader():
            return
        if self._reported_problem != (reason, generation):
            self._events.emit(obj, 'Warning', reason, 'Reconcile', message)
            self._reported_problem = (reason, generation)
        previous = dict(obj.get('status') or {})
        conditions = merge_conditions(
            previous.get('conditions') or [],
            [Condition(READY, 'False', reason, message)],
            self._wall_clock(),
            generation,
        )
        status = {**previous, 'observedGeneration': generation, 'conditions': conditions}
        if status != previous:
            try:
                self._kube.patch_worker_status(namespace, name, status)
            except KubeError as error:
                logger.warning('%s/%s: status not updated: %s', namespace, name, error)


def _describe(observation: Observation | None, reason: str) -> str:
    if observation is None:
        return reason
    return f'{observation.ready} ready, {observation.in_flight} in flight; {reason}'


def _ready_condition(replicas: int, ready_pods: int) -> Condition:
    if replicas == 0:
        return Condition(READY, 'True', 'ScaledToZero', 'No replicas wanted')
    if ready_pods >= replicas:
        return Condition(READY, 'True', 'DeploymentReady', f'{ready_pods}/{replicas} pods ready')
    return Condition(READY, 'False', 'WaitingForPods', f'{ready_pods}/{replicas} pods ready')


def _scaling_condition(replicas: int, pods: int, reason: str, observation: Observation | None) -> Condition:
    message = f'{replicas} replicas wanted, {pods} running ({_describe(observation, reason)})'
    if pods < replicas:
        return Condition(SCALING, 'True', 'ScalingUp', message)
    if pods > replicas:
        return Condition(SCALING, 'True', 'ScalingDown', message)
    return Condition(SCALING, 'False', reason, message)


def _broker_condition(error: BrokerError | None, observation: Observation | None) -> Condition:
    if observation is not None or error is None:
        return Condition(BROKER_REACHABLE, 'True', 'QueueRead', 'The queue was read at the last poll')
    return Condition(BROKER_REACHABLE, 'False', error.reason, f'{error.message}; the last decision is kept')
