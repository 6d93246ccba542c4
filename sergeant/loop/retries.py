"""The one rule of ``max_retries``, wherever a task's runs are counted.

A task's ``run_count`` is how many of its runs did not settle: a ``retry()`` from
user code, a worker death after it started, a lease that ran out. It may run again
while ``run_count <= max_retries``; ``max_retries=0`` means no limit (as in
Sergeant 0.27). Used by ``Worker.retry`` (the next run would be one more), by
the stream's screening of redeliveries, and by :mod:`.isolation`, which does not
count the deaths a task shared with others.
"""

from __future__ import annotations


def may_run(run_count: int, max_retries: int) -> bool:
    """Whether a task that did not settle ``run_count`` times may run again."""
    return max_retries == 0 or run_count <= max_retries
