"""Task durations: buckets follow Prometheus' "le", and the batch clock times fast and slow tasks."""

from __future__ import annotations

from sergeant.metrics.durations import DURATION_BUCKETS, FAST_TASK_SECONDS, BatchClock, DurationHistogram


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Batch:
    """Drives a BatchClock the way the task stream and the fast-path runner do."""

    def __init__(self) -> None:
        self.time = ManualClock()
        self.finished = 0
        self.histogram = DurationHistogram()
        self.clock = BatchClock(self.histogram, lambda: self.finished, self.time)

    def run(self, *durations: float) -> None:
        self.clock.batch_received()
        for seconds in durations:
            self.time.now += seconds
            self.finished += 1
            if self.clock.per_task:
                self.clock.task_done()
        self.clock.batch_done()  # the stream is about to wait for the broker
        self.time.now += 0.5  # waiting is not task time


def bucket_of(seconds: float) -> int:
    histogram = DurationHistogram()
    histogram.observe(seconds)
    return histogram.counts.index(1)


def test_a_duration_counts_in_the_first_bucket_whose_bound_it_does_not_exceed() -> None:
    assert bucket_of(DURATION_BUCKETS[0]) == 0
    assert bucket_of(DURATION_BUCKETS[0] * 1.01) == 1
    assert bucket_of(0.0) == 0
    assert bucket_of(DURATION_BUCKETS[-1] * 2) == len(DURATION_BUCKETS)  # above every bound: +Inf


def test_slow_tasks_are_timed_one_by_one() -> None:
    # given batches of tasks slower than the fast threshold
    batch = Batch()

    # when two batches run
    batch.run(0.02, 0.3, 0.004)
    batch.run(1.5)

    # then each task is in its own bucket and the sum excludes the waits
    assert batch.histogram.counts[bucket_of(0.004)] == 1
    assert batch.histogram.counts[bucket_of(0.02)] == 1
    assert batch.histogram.counts[bucket_of(0.3)] == 1
    assert batch.histogram.counts[bucket_of(1.5)] == 1
    assert sum(batch.histogram.counts) == 4
    assert abs(batch.histogram.total - 1.824) < 1e-9
    assert batch.clock.per_task


def test_fast_tasks_are_timed_per_batch_after_the_first() -> None:
    # given a first batch of fast tasks (timed one by one) and then more fast batches
    batch = Batch()
    fast = FAST_TASK_SECONDS / 4
    batch.run(*[fast] * 100)
    assert not batch.clock.per_task

    # when the next batches run
    batch.run(*[fast] * 100)
    batch.run(*[fast * 2] * 50)

    # then every task is counted, in the lowest bucket, with an exact sum
    assert batch.histogram.counts[0] == 250
    assert abs(batch.histogram.total - fast * 300) < 1e-9


def test_a_slow_task_among_fast_ones_is_counted_as_one_slow_task() -> None:
    # given fast batches
    batch = Batch()
    fast = FAST_TASK_SECONDS / 4
    batch.run(*[fast] * 100)
    batch.run(*[fast] * 100)

    # when a batch hides one 2 s task among 99 fast ones
    batch.run(*[fast] * 50, 2.0, *[fast] * 49)

    # then 99 tasks are fast and one took the rest, and the clock times the next batch per task
    assert batch.histogram.counts[0] == 299
    assert batch.histogram.counts[bucket_of(2.0)] == 1
    assert abs(batch.histogram.total - (2.0 + fast * 299)) < 1e-9
    assert batch.clock.per_task


def test_the_batch_in_progress_counts_at_close_and_later_batches_do_not() -> None:
    # given a batch of which two tasks ran when the loop ended
    batch = Batch()
    batch.clock.batch_received()
    for _ in range(2):
        batch.time.now += 0.01
        batch.finished += 1
        batch.clock.task_done()

    # when the clock is closed and the stream receives tasks it will hand back
    batch.clock.close()
    batch.clock.batch_received()
    batch.finished += 5
    batch.clock.batch_done()

    # then only the two tasks that ran are counted
    assert sum(batch.histogram.counts) == 2
