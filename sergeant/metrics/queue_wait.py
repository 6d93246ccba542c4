"""Queue wait: how long a task waited between becoming ready and the start of its run.

A task becomes ready when it is pushed, or at its due time when it was pushed
delayed (a retry's wait starts at its own push). The worker observes the wait
as it hands the task to the code that runs it, with one read of the wall clock;
on the serial hot path, while tasks are fast, one read per run of tasks serves
them all (:meth:`QueueWaitHistogram.observe_run`).
Clocks of different hosts differ, so a wait measured across hosts carries their
offset; a negative one is counted as zero.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Sequence

# upper bounds ("le") in seconds: from a worker that was waiting for work to a backlog of an hour
WAIT_BUCKETS: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
)  # fmt: skip
_now = time.time
# bucket i holds waits in (_BOUNDS[i], _BOUNDS[i + 1]]; a wait of 0 (or below) takes the slow path to bucket 0
_BOUNDS = (0.0, *WAIT_BUCKETS, float('inf'))


class QueueWaitHistogram:
    """Tasks per wait bucket (not cumulative; the last is above every bound) and their sum.

    Written by the thread that hands tasks out; the metrics flusher only copies it.
    """

    __slots__ = ('_high', '_index', '_low', 'counts', 'total')

    def __init__(self) -> None:
        self.counts = [0] * (len(WAIT_BUCKETS) + 1)
        self.total = 0.0
        # the bucket of the previous wait: consecutive tasks mostly share one
        self._index, self._low, self._high = 0, 0.0, 0.0

    def observe_since(self, ready_at: float) -> None:
        """A task ready at ``ready_at`` (seconds since the epoch) starts now."""
        wait = _now() - ready_at
        if self._low < wait <= self._high:  # the bucket of the previous wait: the common case
            self.counts[self._index] += 1
            self.total += wait
            return
        self._observe(wait)

    def observe_run(self, ready_ats: Sequence[float], started_at: float) -> None:
        """Tasks ready at ``ready_ats`` that ran one after another from ``started_at`` on.

        Each counts as started at ``started_at``: for a run of fast tasks (the serial hot
        path's runs) a wait is short by at most the run's length, and one clock read and a
        few passes in C replace a read and a call per task.
        """
        if not ready_ats:
            return
        # sorting floats that come mostly in order is one pass in C, cheaper than min() and max()
        ordered = sorted(ready_ats)
        longest, shortest = started_at - ordered[0], started_at - ordered[-1]
        index = bisect.bisect_left(WAIT_BUCKETS, longest)
        if shortest > _BOUNDS[index]:  # all in one bucket (and none negative): the common case
            count = len(ready_ats)
            self.counts[index] += count
            if shortest == longest:  # the tasks of one bulk push share their ready time
                self.total += count * longest
                return
            # the sum of the waits, exactly rounded, without a float made per task: an epoch time's
            # fraction has few bits, so both products are exact and fsum's result is the one sum
            # rounded (started_at - ready_at per task would round, and cost, once per task)
            whole = float(math.floor(started_at))
            self.total -= math.fsum([*ready_ats, -count * whole, -count * (started_at - whole)])
            return
        for ready_at in ready_ats:
            self._observe(started_at - ready_at)

    def _observe(self, wait: float) -> None:
        if wait < 0.0:
            wait = 0.0
        index = bisect.bisect_left(WAIT_BUCKETS, wait)
        self.counts[index] += 1
        self.total += wait
        self._index, self._low, self._high = index, _BOUNDS[index], _BOUNDS[index + 1]
