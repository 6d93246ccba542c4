"""The supervisor's record of its workers: each one's last summary and the pool's totals.

Everything the supervisor learns about its workers' ends is logged from here,
with running totals (workers started, ends by reason, task outcomes, CPU
seconds). The live counts ``/metrics`` serves are kept apart, in
:mod:`sergeant.observability.pool_metrics`.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

from .process import EndReason, WorkerProcess

logger = logging.getLogger('sergeant.supervisor')

_LEVEL_OF_REASON = {
    EndReason.FINISHED: logging.INFO,
    EndReason.RESPAWN_ASKED: logging.INFO,
    EndReason.STOP_ASKED: logging.INFO,
    EndReason.MEMORY_LIMIT: logging.WARNING,
    EndReason.KILLED: logging.WARNING,
}


class Ledger:
    """Per-slot last summaries and running totals of the whole pool."""

    def __init__(self) -> None:
        # the loop writes; a future metrics thread reads through snapshot()
        self._lock = threading.Lock()
        self.workers_started = 0
        self.workers_ended: Counter[EndReason] = Counter()
        self.task_outcomes: Counter[str] = Counter()
        self.cpu_seconds = 0.0
        self.last_summary: dict[int, Mapping[str, Any]] = {}  # slot -> summary of its last worker

    def started(self, process: WorkerProcess) -> None:
        with self._lock:
            self.workers_started += 1
        logger.info('worker %d started in slot %d', process.pid, process.slot)

    def ended(self, process: WorkerProcess, reason: EndReason) -> None:
        summary = process.summary
        with self._lock:
            self.workers_ended[reason] += 1
            if summary is not None:
                self.last_summary[process.slot] = summary
                self._add_totals(summary)
        level = _LEVEL_OF_REASON.get(reason, logging.ERROR)
        logger.log(
            level,
            'worker %d (slot %d) ended after %.1f s: %s, %s; %s',
            process.pid,
            process.slot,
            process.lifetime,
            reason.value,
            process.describe_exit(),
            describe_summary(summary) if summary is not None else 'no summary',
        )
        if process.error and reason is not EndReason.LOAD_FAILED:  # the pool reports load errors itself
            described = error_with_details(process.error, process.error_details)
            logger.error('worker %d: %s', process.pid, described)
        unkillable = _unkillable_threads(summary) if summary is not None else []
        if unkillable:
            logger.warning('worker %d had unkillable threads: %s', process.pid, unkillable)

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of the totals, safe to take from another thread."""
        with self._lock:
            return {
                'workers_started': self.workers_started,
                'workers_ended': {reason.name.lower(): count for reason, count in self.workers_ended.items()},
                'task_outcomes': dict(self.task_outcomes),
                'cpu_seconds': self.cpu_seconds,
            }

    def _add_totals(self, summary: Mapping[str, Any]) -> None:
        tasks = summary.get('tasks')
        if isinstance(tasks, Mapping):
            for outcome, count in tasks.items():
                if isinstance(count, int):
                    self.task_outcomes[str(outcome)] += count
        cpu = _number(summary.get('executor'), 'total_cpu_time')
        self.cpu_seconds += cpu


def _number(section: object, key: str) -> float:
    value = section.get(key) if isinstance(section, Mapping) else None
    return float(value) if isinstance(value, (int, float)) else 0.0


def _unkillable_threads(summary: Mapping[str, Any]) -> list[str]:
    """Names of the threads left running by the worker's tasks that would not end, from its summary."""
    names = summary.get('unkillable_threads')
    return [str(name) for name in names] if isinstance(names, list) else []


def describe_summary(summary: Mapping[str, Any]) -> str:
    """One line out of a work loop summary: why it ended, times, CPU, memory, task counts, exceptions."""
    executor = summary.get('executor')
    wall, cpu = _number(executor, 'total_wall_time'), _number(executor, 'total_cpu_time')
    tasks = summary.get('tasks')
    counts = 'none'
    if isinstance(tasks, Mapping) and tasks:
        counts = ', '.join(f'{outcome}={count}' for outcome, count in sorted(tasks.items()))
    parts = [
        f'loop ended by {summary.get("reason", "an unreported reason")}',
        f'ran {summary.get("start_time")} to {summary.get("end_time")}',
        f'loop cpu {cpu:.2f} s of {wall:.2f} s ({_number(executor, "cpu_utilization"):.0%})',
    ]
    process = summary.get('process')
    if isinstance(process, Mapping):
        parts.append(
            f'process cpu user {_number(process, "user_cpu_seconds"):.2f} s '
            f'system {_number(process, "system_cpu_seconds"):.2f} s, '
            f'peak rss {_number(process, "peak_rss_bytes") / 2**20:.0f} MiB'
        )
    parts.append(f'tasks: {counts}')
    for phase in ('initialize', 'executor', 'finalize'):
        error = summary.get(f'{phase}_exception')
        if error:
            parts.append(f'{phase} raised {error}')
    return '; '.join(parts)


def error_with_details(error: str, details: str) -> str:
    """A one-line error, and its traceback on the lines after it when there is one."""
    return f'{error}\n{details}' if details else error
