"""The Task: what a producer pushes and a worker's ``work`` receives."""

from __future__ import annotations

import dataclasses
import time
from typing import Any


@dataclasses.dataclass
class Task:
    """One unit of work.

    ``run_count`` is 0 on the first execution and grows by one on every retry,
    including a redelivery after the worker running it died or lost its lease.
    """

    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    trace_id: str | None = None
    date: float = dataclasses.field(default_factory=time.time)
    run_count: int = 0
