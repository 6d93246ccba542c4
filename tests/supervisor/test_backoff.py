"""Backoff of workers that fail at start-up: doubling delays, capped, reset by a healthy worker."""

from __future__ import annotations

from sergeant.supervisor.backoff import Backoff


def test_early_failures_double_the_delay_up_to_the_cap() -> None:
    backoff = Backoff(initial=0.5, maximum=30.0)

    delays = [backoff.record(failed=True, early=True) for _ in range(9)]

    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_clean_end_respawns_at_once_and_resets() -> None:
    backoff = Backoff()
    backoff.record(failed=True, early=True)
    backoff.record(failed=True, early=True)

    assert backoff.record(failed=False, early=True) == 0.0
    assert backoff.record(failed=True, early=True) == 0.5


def test_failure_after_a_long_life_respawns_at_once() -> None:
    backoff = Backoff()
    backoff.record(failed=True, early=True)

    assert backoff.record(failed=True, early=False) == 0.0
    assert backoff.failures == 0
