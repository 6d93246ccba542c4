"""Leader election on an emulated API server, with clocks the test moves by hand."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sergeant_operator.kube import Kube
from sergeant_operator.leader import ElectionTimings, LeaderElector

from tests.operator.kmock_api import EmulatedApi, emulated_api

LEASES = 'coordination.k8s.io/v1/leases'
TIMINGS = ElectionTimings(lease_duration=15, renew_deadline=10, retry_period=2)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def api() -> Iterator[EmulatedApi]:
    with emulated_api() as emulated:
        yield emulated


def candidate(kube: Kube, identity: str, clock: Clock) -> LeaderElector:
    return LeaderElector(kube, 'ops', 'sergeant-operator', identity, TIMINGS, clock=clock, wall_clock=clock)


def holder(api: EmulatedApi) -> str | None:
    lease = api.object(LEASES, 'ops', 'sergeant-operator')
    return None if lease is None else lease['spec'].get('holderIdentity')


def test_the_first_candidate_creates_the_lease_and_leads(api: EmulatedApi) -> None:
    clock = Clock()
    first, second = candidate(api.kube(), 'a', clock), candidate(api.kube(), 'b', clock)

    assert first.try_acquire_or_renew()
    assert not second.try_acquire_or_renew()

    assert first.is_leader and not second.is_leader
    assert holder(api) == 'a'
    lease = api.object(LEASES, 'ops', 'sergeant-operator')
    assert lease is not None and lease['spec']['leaseDurationSeconds'] == 15


def test_a_standby_takes_over_only_after_the_lease_duration_without_renewal(api: EmulatedApi) -> None:
    leader_clock, standby_clock = Clock(), Clock()
    leader = candidate(api.kube(), 'a', leader_clock)
    standby = candidate(api.kube(), 'b', standby_clock)
    assert leader.try_acquire_or_renew()
    assert not standby.try_acquire_or_renew()  # observes the record at t=1000

    # the leader stops renewing (cut off); its own view ends at the renew deadline
    leader_clock.now += TIMINGS.renew_deadline
    assert not leader.is_leader
    standby_clock.now += TIMINGS.lease_duration - 0.1
    assert not standby.try_acquire_or_renew()

    standby_clock.now += 0.2
    assert standby.try_acquire_or_renew()
    assert holder(api) == 'b'
    lease = api.object(LEASES, 'ops', 'sergeant-operator')
    assert lease is not None and lease['spec']['leaseTransitions'] == 1


def test_renewals_keep_a_standby_out(api: EmulatedApi) -> None:
    leader_clock, standby_clock = Clock(), Clock()
    leader = candidate(api.kube(), 'a', leader_clock)
    standby = candidate(api.kube(), 'b', standby_clock)
    for _ in range(20):
        assert leader.try_acquire_or_renew()
        assert not standby.try_acquire_or_renew()
        leader_clock.now += TIMINGS.retry_period
        leader_clock.now += 0.001  # the renew time must change for the standby to notice
        standby_clock.now += TIMINGS.retry_period
    assert leader.is_leader and holder(api) == 'a'


def test_a_released_lease_is_taken_at_once(api: EmulatedApi) -> None:
    clock = Clock()
    leader, standby = candidate(api.kube(), 'a', clock), candidate(api.kube(), 'b', clock)
    assert leader.try_acquire_or_renew()

    leader.release()

    assert not leader.is_leader
    assert standby.try_acquire_or_renew()
    assert holder(api) == 'b'


def test_run_reports_transitions_and_releases_on_stop(api: EmulatedApi) -> None:
    timings = ElectionTimings(lease_duration=3, renew_deadline=2, retry_period=0.05)
    elector = LeaderElector(api.kube(), 'ops', 'sergeant-operator', 'a', timings)
    stop = threading.Event()
    changes: list[bool] = []

    def on_change(leading: bool) -> None:
        changes.append(leading)
        if leading:
            stop.set()

    elector.run(stop, on_change)

    assert changes == [True, False]
    assert not holder(api)  # released


def test_timings_must_leave_a_safety_margin() -> None:
    with pytest.raises(ValueError, match='renew deadline'):
        ElectionTimings(lease_duration=10, renew_deadline=10, retry_period=2)
