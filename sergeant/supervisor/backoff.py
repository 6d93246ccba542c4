"""Exponential backoff for workers that die at start-up again and again.

One :class:`Backoff` per pool slot. A worker that fails *early* — it never got
through start-up, or it failed within :data:`HEALTHY_AFTER` seconds — makes the
next respawn of its slot wait 0.5 s, then 1 s, 2 s ... up to 30 s. A worker that
ended cleanly, or lived long enough before failing, resets the delay, so a
healthy fleet respawns at once (``max_tasks_per_run`` reached, respawn asked).
"""

from __future__ import annotations

import dataclasses

INITIAL_DELAY = 0.5
MAX_DELAY = 30.0
HEALTHY_AFTER = 3.0  # seconds a worker must live before a failure stops counting as "at start-up"


@dataclasses.dataclass
class Backoff:
    initial: float = INITIAL_DELAY
    maximum: float = MAX_DELAY
    failures: int = 0  # early failures in a row

    def record(self, failed: bool, early: bool) -> float:
        """Note how a worker ended; returns the delay before its replacement starts."""
        if not (failed and early):
            self.failures = 0
            return 0.0
        self.failures += 1
        return min(self.initial * 2.0 ** (self.failures - 1), self.maximum)
