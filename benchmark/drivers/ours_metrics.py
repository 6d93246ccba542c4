"""Benchmark driver for ours with task metrics on, as under a supervisor serving ``/metrics``.

The same no-op worker as ``ours.py``; its work loop runs the way the
supervisor's worker process runs it when metrics are served
(``sergeant.supervisor.child.run_loop``): the worker counts outcomes, durations
and fetch failures, and a flusher thread sends a snapshot every second, here
to ``/dev/null`` instead of the supervisor's pipe (same encoding, same writes).
"""

from __future__ import annotations

import os
from typing import Any

import modes
import ours

from sergeant.supervisor.child import Reporter, run_loop


class MeteredWorker:
    """A no-op worker whose ``work_loop`` reports task metrics; the rest is the plain worker's."""

    def __init__(self, worker: ours.NoopWorker) -> None:
        self._worker = worker
        self._reporter = Reporter(os.open(os.devnull, os.O_WRONLY))

    @property
    def processed(self) -> int:
        return self._worker.processed

    def push_task(self, kwargs: dict[str, Any]) -> bool:
        return self._worker.push_task(kwargs)

    def push_tasks(self, kwargs_list: list[dict[str, Any]]) -> bool:
        return self._worker.push_tasks(kwargs_list)

    def number_of_enqueued_tasks(self) -> int:
        return self._worker.number_of_enqueued_tasks()

    def work_loop(self) -> dict[str, Any]:
        return run_loop(self._worker, self._reporter, report_metrics=True)


def make_worker(
    params: dict[str, Any], queue: str, tasks_per_transaction: int, max_tasks_per_run: int
) -> MeteredWorker:
    return MeteredWorker(ours.make_worker(params, queue, tasks_per_transaction, max_tasks_per_run))


if __name__ == '__main__':
    modes.main(make_worker)
