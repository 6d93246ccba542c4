"""The supervisor's worker processes as the soak sees them: finding, killing, measuring.

Workers are the supervisor's children running ``sergeant.supervisor.child``
(each command line is read once per pid, then cached). A respawned worker has a
new pid, so memory is sampled per live process and summarised per sample
(largest, smallest, median), not per slot.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time

import psutil

from sergeant.supervisor.protocol import CHILD_MODULE

STARTING = 1.0  # seconds after its start before a worker's memory is sampled


class Fleet:
    """The supervisor process and its live workers."""

    def __init__(self, supervisor_pid: int) -> None:
        self.supervisor = psutil.Process(supervisor_pid)
        self._is_worker: dict[int, bool] = {}

    def workers(self) -> list[psutil.Process]:
        """Live workers (not zombies) of the supervisor, oldest first."""
        found = []
        try:
            children = self.supervisor.children()
        except psutil.Error:
            return []
        for child in children:
            try:
                if child.pid not in self._is_worker:
                    self._is_worker[child.pid] = CHILD_MODULE in child.cmdline()
                if self._is_worker[child.pid] and child.status() != psutil.STATUS_ZOMBIE:
                    found.append(child)
            except psutil.Error:
                continue
        return sorted(found, key=lambda process: process.create_time())

    def kill_random(self, rng: random.Random) -> dict[str, float | int] | None:
        """SIGKILL one live worker picked at random; what was killed, or None if none was."""
        workers = self.workers()
        if not workers:
            return None
        victim = rng.choice(workers)
        try:
            age = time.time() - victim.create_time()
            os.kill(victim.pid, signal.SIGKILL)
        except (ProcessLookupError, psutil.Error):
            return None
        return {'pid': victim.pid, 'age_seconds': age, 'workers_alive': len(workers)}

    def memory(self) -> tuple[int | None, dict[int, int]]:
        """RSS in bytes of the supervisor (None once it is gone) and of each live worker by pid.

        Workers younger than :data:`STARTING` are left out: a process a few
        milliseconds after its fork is still becoming Python and would show as
        a few MiB.
        """
        supervisor: int | None = None
        with contextlib.suppress(psutil.Error):
            supervisor = self.supervisor.memory_info().rss
        workers = {}
        now = time.time()
        for worker in self.workers():
            with contextlib.suppress(psutil.Error):
                if now - worker.create_time() >= STARTING:
                    workers[worker.pid] = worker.memory_info().rss
        return supervisor, workers
