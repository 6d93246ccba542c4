"""Control-flow signals raised inside a worker: retry, requeue, stop, respawn, timeout.

They derive from ``BaseException`` so that a task's ``except Exception`` cannot
swallow them. Names match Sergeant 0.27 (also importable from ``sergeant.worker``).
"""

from __future__ import annotations


class WorkerException(BaseException):
    """Root of the worker's control-flow signals."""


class WorkerTimedout(WorkerException):
    """The running task exceeded ``timeouts.timeout``."""


class WorkerRequeue(WorkerException):
    """The task was pushed back unchanged (``Worker.requeue``)."""


class WorkerRetry(WorkerException):
    """The task was pushed back with ``run_count + 1`` (``Worker.retry``)."""


class WorkerMaxRetries(WorkerException):
    """A retry was asked for a task that already used ``max_retries``."""


class WorkerInterrupt(WorkerException):
    """Ends the work loop."""


class WorkerRespawn(WorkerInterrupt):
    """End this worker process; the supervisor starts a fresh one."""


class WorkerStop(WorkerInterrupt):
    """End this worker and ask the supervisor to stop the whole pool."""
