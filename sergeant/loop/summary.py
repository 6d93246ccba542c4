"""The parts of a work loop summary that say why the loop ended and what the process used.

:meth:`~sergeant.worker.Worker.work_loop` returns Sergeant 0.27's summary
(times, ``stop``/``respawn``, exceptions, ``executor`` times, task outcomes) and
adds ``reason`` (a :class:`LoopEnd`) and ``process`` (:func:`process_usage`).
The supervisor receives the summary as JSON and logs it (:mod:`sergeant.supervisor.ledger`).
"""

from __future__ import annotations

import enum
import os
import resource
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ['LoopEnd', 'loop_end', 'process_usage']


class LoopEnd(str, enum.Enum):
    """Why a work loop ended; a ``str``, so it is its own value in JSON and comparisons."""

    MAX_TASKS_PER_RUN = 'max_tasks_per_run'  # the loop ran its max_tasks_per_run tasks
    SIGNAL = 'signal'  # SIGTERM/SIGINT (or the supervisor vanished): stop fetching, hand tasks back
    STOP = 'stop'  # a task or handler called stop(): the supervisor stops the whole pool
    RESPAWN = 'respawn'  # a task or handler called respawn(): the supervisor starts a new worker
    INITIALIZE_EXCEPTION = 'initialize_exception'  # initialize() raised; no task ran
    EXECUTOR_EXCEPTION = 'executor_exception'  # the executor raised: fetching or settling failed

    def __str__(self) -> str:
        return self.value


def loop_end(summary: Mapping[str, Any], received_stop_signal: bool) -> LoopEnd:
    """The reason of a finished loop, from its summary; the first cause wins over later ones."""
    if summary.get('stop'):
        return LoopEnd.STOP
    if summary.get('respawn'):
        return LoopEnd.RESPAWN
    if summary.get('initialize_exception') is not None:
        return LoopEnd.INITIALIZE_EXCEPTION
    if summary.get('executor_exception') is not None:
        return LoopEnd.EXECUTOR_EXCEPTION
    return LoopEnd.SIGNAL if received_stop_signal else LoopEnd.MAX_TASKS_PER_RUN


def process_usage() -> dict[str, float]:
    """CPU seconds (user, system) this process used since it started, all threads, and its peak RSS.

    Waited-for child processes (the killer process, a task's subprocesses) are not included.
    """
    times = os.times()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in kilobytes on Linux, in bytes on macOS
    peak_bytes = peak if sys.platform == 'darwin' else peak * 1024
    return {'user_cpu_seconds': times.user, 'system_cpu_seconds': times.system, 'peak_rss_bytes': peak_bytes}
