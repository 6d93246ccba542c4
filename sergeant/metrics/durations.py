"""Task durations: the histogram buckets, and the clock that times the serial hot path per batch.

Reading the clock twice per task costs about as much as running a no-op task
through the whole loop, so the fast path (one thread, no hooks around ``work``,
no time limit) is timed per *batch* while the tasks are fast. A batch is the
tasks of one pop, run one after another between two waits for the broker
(:class:`~sergeant.loop.stream.StreamEvents` tells when): the clock is read when
the batch arrives and when the stream next waits.

* While tasks take more than :data:`FAST_TASK_SECONDS` on average, each task is
  timed: one clock read as it ends, its start being the previous task's end (or
  the batch's arrival).
* Once a batch shows faster tasks, the following batches are timed as a whole and
  each of their tasks is observed at the batch's mean (all land in the lowest
  bucket). A slow task hidden in such a batch raises the mean: if the mean stays
  under the threshold the task is under-reported (the ``_sum`` stays exact); if
  not, the extra time is put on one task and the next batch is timed per task.

On this path a task's time includes the loop's own work next to it (settling
it, sending the next pop ahead of time): microseconds. Other paths (hooks,
threads, time limits) time every task with two clock reads around it.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable

# upper bounds ("le") in seconds: no-op tasks, then milliseconds up to five minutes
DURATION_BUCKETS: tuple[float, ...] = (
    0.0001, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
)  # fmt: skip
FAST_TASK_SECONDS = 20e-6  # below this mean, reading the clock per task would cost over 1% of a task


class DurationHistogram:
    """Task counts per bucket (not cumulative; the last is above every bound) and their sum.

    Written by one thread at a time (the runner holds its lock when several
    threads run tasks); the metrics flusher only copies it.
    """

    __slots__ = ('counts', 'total')

    def __init__(self) -> None:
        self.counts = [0] * (len(DURATION_BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.total += seconds

    def observe_many(self, count: int, seconds: float) -> None:
        """``count`` tasks of ``seconds`` each."""
        self.counts[bisect.bisect_left(DURATION_BUCKETS, seconds)] += count
        self.total += count * seconds


class BatchClock:
    """Times the serial fast path per batch or per task (see the module docstring).

    ``finished()`` counts the tasks that ran to an outcome so far; between
    :meth:`batch_received` and :meth:`batch_done` it grows only by the tasks of the
    batch. While :attr:`per_task` is true the runner calls :meth:`task_done` after
    each task.
    """

    __slots__ = (
        '_clock',
        '_closed',
        '_fast_mean',
        '_finished',
        '_finished_at_start',
        '_histogram',
        '_last',
        '_open',
        '_started',
        'per_task',
    )

    def __init__(
        self,
        histogram: DurationHistogram,
        finished: Callable[[], int],
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.per_task = True  # until a batch shows that the tasks are fast
        self._clock = clock
        self._histogram = histogram
        self._finished = finished
        self._finished_at_start = 0
        self._started = self._last = 0.0
        self._fast_mean = 0.0
        self._open = False
        self._closed = False

    def batch_received(self) -> None:
        if self._closed:
            return
        self._finished_at_start = self._finished()
        self._started = self._last = self._clock()
        self._open = True

    def task_done(self) -> None:
        now = self._clock()
        self._histogram.observe(now - self._last)
        self._last = now

    def batch_done(self) -> None:
        if not self._open:
            return
        now = self._clock()
        self._open = False
        count = self._finished() - self._finished_at_start
        if count <= 0:
            return
        elapsed = now - self._started
        mean = elapsed / count
        if not self.per_task:
            self._observe_batch(count, elapsed, mean)
        self.per_task = mean >= FAST_TASK_SECONDS
        if not self.per_task:
            self._fast_mean = mean

    def _observe_batch(self, count: int, elapsed: float, mean: float) -> None:
        if mean < FAST_TASK_SECONDS or count == 1:
            self._histogram.observe_many(count, mean)
            return
        # slower than the batch before: most likely one slow task among fast ones
        usual = min(self._fast_mean, mean)
        self._histogram.observe_many(count - 1, usual)
        self._histogram.observe(elapsed - usual * (count - 1))

    def close(self) -> None:
        """Account for the batch in progress; later batches are ignored (they are handed back)."""
        self.batch_done()
        self._closed = True
