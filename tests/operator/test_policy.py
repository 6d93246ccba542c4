"""The scaling policy as a pure function: examples, then properties over random timelines."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sergeant_operator.policy import Decision, Observation, Reason, ScalerState, ScalingSpec, decide, hold

SPEC = ScalingSpec(
    min_replicas=0,
    max_replicas=10,
    tasks_per_replica=10,
    activation_queue_length=5,
    polling_interval_seconds=10,
    cooldown_seconds=60,
    scale_down_stabilization_seconds=30,
)


def run(spec: ScalingSpec, start: int, readings: list[tuple[float, int, int]]) -> list[Decision]:
    """Feed (time, ready, in_flight) readings through the policy, starting at ``start`` replicas."""
    state = ScalerState.initial(start, readings[0][0] if readings else 0.0)
    decisions = []
    for now, ready, in_flight in readings:
        decision = decide(spec, state, Observation(ready, in_flight), now)
        decisions.append(decision)
        state = decision.state
    return decisions


def test_scales_up_at_once_to_ready_plus_in_flight_over_tasks_per_replica() -> None:
    decision = run(SPEC, 1, [(0.0, 41, 4)])[0]
    assert decision.replicas == 5  # ceil(45 / 10)
    assert decision.reason is Reason.LOAD


def test_scale_up_is_bounded_by_max_replicas() -> None:
    assert run(SPEC, 1, [(0.0, 500, 0)])[0].replicas == SPEC.max_replicas


def test_a_busy_pool_keeps_at_least_one_replica_even_with_min_zero() -> None:
    assert run(SPEC, 3, [(0.0, 0, 1)])[0].replicas == 1


def test_zero_stays_zero_until_the_queue_passes_the_activation_length() -> None:
    decisions = run(SPEC, 0, [(0.0, 5, 0), (10.0, 5, 0), (20.0, 6, 0)])
    assert [d.replicas for d in decisions] == [0, 0, 1]
    assert decisions[0].reason is Reason.BELOW_ACTIVATION


def test_scale_down_waits_for_the_stabilisation_window() -> None:
    # given 10 replicas at t=0, when the queue shrinks to 2 replicas' worth
    decisions = run(SPEC, 1, [(0.0, 100, 0), (10.0, 20, 0), (20.0, 20, 0), (30.0, 20, 0), (40.0, 20, 0)])
    # then the count holds while t=0's recommendation is inside the 30 s window
    assert [d.replicas for d in decisions] == [10, 10, 10, 2, 2]
    assert decisions[1].reason is Reason.STABILIZING


def test_an_empty_queue_holds_for_the_cooldown_then_drops_to_the_minimum() -> None:
    readings = [(0.0, 30, 0)] + [(float(t), 0, 0) for t in range(10, 80, 10)]
    decisions = run(SPEC, 1, readings)
    assert [d.replicas for d in decisions] == [3, 3, 3, 3, 3, 3, 0, 0]  # last busy at 0, cooldown 60
    assert decisions[1].reason is Reason.COOLDOWN
    assert decisions[6].reason is Reason.IDLE


def test_in_flight_tasks_keep_the_pool_from_going_idle() -> None:
    readings = [(0.0, 30, 0)] + [(float(t), 0, 2) for t in range(10, 200, 10)]
    assert all(d.replicas >= 1 for d in run(SPEC, 1, readings))


def test_the_minimum_holds_when_idle() -> None:
    spec = dataclasses.replace(SPEC, min_replicas=2)
    decisions = run(spec, 5, [(0.0, 0, 0), (100.0, 0, 0)])
    assert [d.replicas for d in decisions] == [5, 2]


def test_after_dropping_to_zero_the_old_recommendations_are_forgotten() -> None:
    decisions = run(SPEC, 1, [(0.0, 100, 0), (30.0, 0, 0), (61.0, 0, 0), (70.0, 7, 0)])
    assert [d.replicas for d in decisions] == [10, 10, 0, 1]


def test_hold_keeps_the_last_decision_within_the_bounds() -> None:
    assert hold(SPEC, ScalerState(4, 0.0)) == 4
    assert hold(dataclasses.replace(SPEC, max_replicas=3), ScalerState(4, 0.0)) == 3


@pytest.mark.parametrize(
    ('field', 'value'),
    [('min_replicas', -1), ('max_replicas', 0), ('tasks_per_replica', 0), ('polling_interval_seconds', 0)],
)
def test_a_spec_out_of_bounds_is_refused(field: str, value: int) -> None:
    with pytest.raises(ValueError, match='must be'):
        dataclasses.replace(SPEC, **{field: value})


# -- properties --------------------------------------------------------------------------------


@st.composite
def specs(draw: st.DrawFn) -> ScalingSpec:
    low = draw(st.integers(0, 5))
    return ScalingSpec(
        min_replicas=low,
        max_replicas=draw(st.integers(max(low, 1), 20)),
        tasks_per_replica=draw(st.integers(1, 50)),
        activation_queue_length=draw(st.integers(0, 20)),
        polling_interval_seconds=draw(st.integers(1, 30)),
        cooldown_seconds=draw(st.integers(0, 300)),
        scale_down_stabilization_seconds=draw(st.integers(0, 300)),
    )


@st.composite
def timelines(draw: st.DrawFn, noisy_around: int | None = None) -> list[tuple[float, int, int]]:
    """Readings at increasing times; around a level when ``noisy_around`` is given."""
    count = draw(st.integers(1, 60))
    gaps = draw(st.lists(st.floats(0.5, 60.0), min_size=count, max_size=count))
    if noisy_around is None:
        ready = draw(st.lists(st.integers(0, 1000), min_size=count, max_size=count))
    else:
        noise = st.integers(-noisy_around // 2, noisy_around // 2)
        ready = [noisy_around + n for n in draw(st.lists(noise, min_size=count, max_size=count))]
    in_flight = draw(st.lists(st.integers(0, 100), min_size=count, max_size=count))
    times, now = [], 0.0
    for gap in gaps:
        now += gap
        times.append(now)
    return list(zip(times, ready, in_flight, strict=True))


@settings(max_examples=150, deadline=None)
@given(spec=specs(), start=st.integers(0, 30), readings=timelines())
def test_property_the_count_always_lies_within_the_bounds(
    spec: ScalingSpec, start: int, readings: list[tuple[float, int, int]]
) -> None:
    for decision in run(spec, start, readings):
        assert spec.min_replicas <= decision.replicas <= spec.max_replicas


@settings(max_examples=150, deadline=None)
@given(spec=specs(), start=st.integers(0, 30), readings=timelines())
def test_property_work_in_the_queue_never_leaves_a_started_pool_at_zero(
    spec: ScalingSpec, start: int, readings: list[tuple[float, int, int]]
) -> None:
    previous = start
    for (_, ready, in_flight), decision in zip(readings, run(spec, start, readings), strict=True):
        if ready > spec.activation_queue_length or (previous > 0 and ready + in_flight > 0):
            assert decision.replicas >= 1
        previous = decision.replicas


@settings(max_examples=150, deadline=None)
@given(spec=specs(), level=st.integers(1, 400), data=st.data())
def test_property_no_scale_down_within_the_window_after_a_scale_up(
    spec: ScalingSpec, level: int, data: st.DataObject
) -> None:
    readings = data.draw(timelines(noisy_around=level))
    decisions = run(spec, spec.min_replicas, readings)
    last_up: tuple[float, int] | None = None
    previous = spec.min_replicas
    for (now, ready, in_flight), decision in zip(readings, decisions, strict=True):
        if decision.replicas > previous:
            last_up = (now, decision.replicas)
        elif last_up is not None and now - last_up[0] < spec.scale_down_stabilization_seconds:
            assert ready + in_flight > 0  # the noisy queue is never empty
            assert decision.replicas >= last_up[1], 'scaled down inside the stabilisation window'
        previous = decision.replicas


@settings(max_examples=150, deadline=None)
@given(spec=specs(), start=st.integers(1, 30), readings=timelines())
def test_property_the_pool_drops_below_its_load_only_after_a_full_cooldown_of_empty_queue(
    spec: ScalingSpec, start: int, readings: list[tuple[float, int, int]]
) -> None:
    last_busy = readings[0][0]
    for (now, ready, in_flight), decision in zip(readings, run(spec, start, readings), strict=True):
        if ready + in_flight > 0:
            last_busy = now
        if decision.reason is Reason.IDLE:
            assert ready + in_flight == 0
            assert now - last_busy >= spec.cooldown_seconds
            assert decision.replicas == spec.min_replicas
        if decision.replicas == 0:
            assert decision.reason in (Reason.IDLE, Reason.BELOW_ACTIVATION)


@settings(max_examples=150, deadline=None)
@given(spec=specs(), readings=timelines())
def test_property_a_pool_at_zero_starts_only_past_the_activation_length(
    spec: ScalingSpec, readings: list[tuple[float, int, int]]
) -> None:
    previous = 0
    state = ScalerState.initial(0, readings[0][0])
    for now, ready, in_flight in readings:
        decision = decide(spec, state, Observation(ready, in_flight), now)
        if previous == 0 and decision.replicas > spec.min_replicas:
            assert ready > spec.activation_queue_length
        previous, state = decision.replicas, decision.state
