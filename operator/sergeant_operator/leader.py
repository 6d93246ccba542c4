"""Leader election through a ``coordination.k8s.io/v1`` Lease, so operator replicas can run side by side.

One candidate holds the Lease and renews it every ``retry_period``. The others
read it at the same pace and take it over only when its record has not changed
for ``lease_duration`` as measured on their own clock (clocks of different
machines are never compared). The holder counts itself the leader only until
``renew_deadline`` after its last successful renewal; as ``renew_deadline`` is
shorter than ``lease_duration``, a holder cut off from the API server stops
acting before anyone else may start. Writes use the Lease's resourceVersion, so
two candidates racing for it cannot both win.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .kube import Conflict, Kube, KubeError

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ElectionTimings:
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError('leader election needs 0 < retry period < renew deadline < lease duration')


def _micro_time(moment: float) -> str:
    return datetime.datetime.fromtimestamp(moment, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


class LeaderElector:
    """Campaigns for the Lease ``namespace/name`` as ``identity``; :attr:`is_leader` is safe to poll."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        timings: ElectionTimings | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.timings = timings or ElectionTimings()
        self._clock = clock
        self._wall_clock = wall_clock
        self._renewed_at: float | None = None  # our clock, last successful acquire or renewal
        self._observed: tuple[Any, ...] | None = None  # the other holder's record, as last read
        self._observed_at = 0.0

    @property
    def is_leader(self) -> bool:
        renewed_at = self._renewed_at
        return renewed_at is not None and self._clock() - renewed_at < self.timings.renew_deadline

    def try_acquire_or_renew(self) -> bool:
        """One round: take or renew the Lease if allowed; True when this candidate holds it now."""
        now = self._clock()
        try:
            lease = self._kube.get_lease(self.namespace, self.name)
            if lease is None:
                self._kube.create_lease(self.namespace, self._lease_body(None))
            else:
                if not self._may_take(lease, now):
                    return False
                self._kube.replace_lease(self.namespace, self.name, self._lease_body(lease))
        except Conflict:
            return False  # another candidate wrote first; read again next round
        except KubeError as error:
            logger.warning('leader election: lease %s/%s: %s', self.namespace, self.name, error)
            return False
        self._renewed_at = now
        return True

    def release(self) -> None:
        """Give the Lease up at once, so a standby need not wait for it to expire."""
        was_leader, self._renewed_at = self.is_leader, None
        if not was_leader:
            return
        try:
            lease = self._kube.get_lease(self.namespace, self.name)
            if lease is not None and (lease.get('spec') or {}).get('holderIdentity') == self.identity:
                body = self._lease_body(lease)
                body['spec']['holderIdentity'] = ''
                body['spec']['leaseDurationSeconds'] = 1
                self._kube.replace_lease(self.namespace, self.name, body)
        except KubeError as error:
            logger.info('leader election: could not release the lease: %s', error)

    def run(
        self,
        stop: threading.Event,
        on_change: Callable[[bool], None],
        on_round: Callable[[], None] = lambda: None,
    ) -> None:
        """Campaign until ``stop`` is set; ``on_change(leading)`` is called on every transition,
        ``on_round()`` after every round (a heartbeat for health checks)."""
        leading = False
        while not stop.is_set():
            self.try_acquire_or_renew()
            on_round()
            if self.is_leader != leading:
                leading = not leading
                logger.info(
                    'leader election: %s %s', self.identity, 'leads' if leading else 'stopped leading'
                )
                on_change(leading)
            stop.wait(self.timings.retry_period)
        if leading:
            self.release()
            on_change(False)

    def _may_take(self, lease: dict[str, Any], now: float) -> bool:
        spec = lease.get('spec') or {}
        holder = spec.get('holderIdentity')
        if holder == self.identity:
            return True
        record = (
            holder,
            spec.get('renewTime'),
            spec.get('leaseDurationSeconds'),
            spec.get('leaseTransitions'),
        )
        if record != self._observed:
            self._observed, self._observed_at = record, now
        if not holder:
            return True
        duration = float(spec.get('leaseDurationSeconds') or self.timings.lease_duration)
        return now - self._observed_at >= duration

    def _lease_body(self, lease: dict[str, Any] | None) -> dict[str, Any]:
        wall_now = _micro_time(self._wall_clock())
        previous = (lease or {}).get('spec') or {}
        ours = previous.get('holderIdentity') == self.identity
        transitions = int(previous.get('leaseTransitions') or 0) + (0 if ours or lease is None else 1)
        metadata: dict[str, Any] = {'name': self.name, 'namespace': self.namespace}
        resource_version = ((lease or {}).get('metadata') or {}).get('resourceVersion')
        if resource_version:  # makes the replacement fail with a Conflict if someone wrote first
            metadata['resourceVersion'] = resource_version
        return {
            'apiVersion': 'coordination.k8s.io/v1',
            'kind': 'Lease',
            'metadata': metadata,
            'spec': {
                'holderIdentity': self.identity,
                'leaseDurationSeconds': round(self.timings.lease_duration),
                'acquireTime': previous.get('acquireTime') if ours else wall_now,
                'renewTime': wall_now,
                'leaseTransitions': transitions,
            },
        }
