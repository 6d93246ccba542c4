"""Executors: run the tasks of a stream, one at a time or in threads.

An executor knows nothing of the Worker class: it receives a ``run`` callable
that executes one task and reports its :class:`~sergeant.task_stream.Outcome`,
and settles each task on the stream. Time limits are enforced here.
"""

from __future__ import annotations

from .serial import SerialExecutor

__all__ = ['SerialExecutor']
