"""The queue-wait histogram: each wait in its bucket, whatever the order of the waits."""

from __future__ import annotations

import time

import pytest

from sergeant.metrics import WAIT_BUCKETS, QueueWaitHistogram, queue_wait


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> float:
    fixed = 1_800_000_000.0
    monkeypatch.setattr(queue_wait, '_now', lambda: fixed)
    return fixed


def bucket_of(histogram: QueueWaitHistogram) -> list[int]:
    return [index for index, count in enumerate(histogram.counts) for _ in range(count)]


def test_each_wait_lands_in_the_lowest_bucket_that_holds_it(now: float) -> None:
    histogram = QueueWaitHistogram()
    waits = [0.0, WAIT_BUCKETS[0], 0.002, 0.002, 0.0005, 7.0, 7.0, WAIT_BUCKETS[-1], 7200.0, 0.0]

    for wait in waits:
        histogram.observe_since(now - wait)

    # bucket i holds (WAIT_BUCKETS[i-1], WAIT_BUCKETS[i]]; the last one everything above
    assert bucket_of(histogram) == sorted(
        [0, 0, 1, 1, 0, 11, 11, len(WAIT_BUCKETS) - 1, len(WAIT_BUCKETS), 0]
    )
    assert histogram.total == pytest.approx(sum(waits))


def test_a_task_ready_in_the_future_waited_zero(now: float) -> None:
    # another host's clock ahead of ours
    histogram = QueueWaitHistogram()
    histogram.observe_since(now + 3.0)
    histogram.observe_since(now + 3.0)

    assert histogram.counts[0] == 2 and histogram.total == 0.0


def test_the_real_clock_is_read() -> None:
    histogram = QueueWaitHistogram()
    histogram.observe_since(time.time() - 0.3)

    assert bucket_of(histogram) == [WAIT_BUCKETS.index(0.5)]
    assert 0.3 <= histogram.total < 0.5


@pytest.mark.parametrize(
    'waits',
    [
        [0.002, 0.003, 0.004],  # one bucket: counted at once
        [0.003, 0.003, 0.003],  # one ready time (one bulk push)
        [0.0005, 0.002, 7.0, WAIT_BUCKETS[0], 0.0],  # several, and a boundary
        [0.003, -1.0],  # a clock ahead of ours
    ],
)
def test_a_run_counts_as_its_waits_would_one_by_one(now: float, waits: list[float]) -> None:
    one_by_one, as_a_run = QueueWaitHistogram(), QueueWaitHistogram()
    for wait in waits:
        one_by_one.observe_since(now - wait)

    as_a_run.observe_run([now - wait for wait in waits], now)

    assert as_a_run.counts == one_by_one.counts
    assert as_a_run.total == pytest.approx(one_by_one.total)


def test_an_empty_run_counts_nothing(now: float) -> None:
    histogram = QueueWaitHistogram()
    histogram.observe_run([], now)
    assert sum(histogram.counts) == 0
