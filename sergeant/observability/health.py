"""What ``/healthz`` and ``/readyz`` answer, decided from plain facts (no I/O here).

* live (``/healthz``): the supervisor's loop turned within :data:`LOOP_STALL_LIMIT`
  seconds. It wakes at least every second, so a longer silence means it is stuck
  and restarting the container is the cure.
* ready (``/readyz``): not draining, at least one worker process is running its
  loop, and the last broker probe, at most :data:`PROBE_STALE_AFTER` seconds old,
  reached the broker.
"""

from __future__ import annotations

import dataclasses

from .pool import PoolView
from .probe import PROBE_INTERVAL, BrokerState

LOOP_STALL_LIMIT = 10.0
PROBE_STALE_AFTER = 3 * PROBE_INTERVAL


@dataclasses.dataclass(frozen=True)
class SupervisorStatus:
    loop_turned_at: float  # time.monotonic() of the loop's last turn
    draining: bool


@dataclasses.dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str


def liveness(status: SupervisorStatus, now: float) -> Verdict:
    silent = now - status.loop_turned_at
    if silent > LOOP_STALL_LIMIT:
        return Verdict(False, f'supervisor loop has not turned for {silent:.0f} s')
    return Verdict(True, 'ok')


def readiness(
    status: SupervisorStatus,
    pool: PoolView,
    broker: BrokerState | None,
    probing_since: float | None,
    now: float,
) -> Verdict:
    if status.draining:
        return Verdict(False, 'draining: the workers are stopping')
    if pool.ready_processes == 0:
        return Verdict(False, 'no worker process is running its loop')
    if broker is None:
        if probing_since is not None and now - probing_since > PROBE_STALE_AFTER:
            return Verdict(False, f'broker has not answered for {now - probing_since:.0f} s')
        return Verdict(False, 'broker not probed yet')
    age = now - broker.checked_at
    if age > PROBE_STALE_AFTER:
        return Verdict(False, f'broker has not answered for {age:.0f} s')
    if not broker.reachable:
        return Verdict(False, f'broker unreachable: {broker.error}')
    return Verdict(True, 'ok')
