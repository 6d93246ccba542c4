"""Killers enforce the time limits of tasks; the executors start and stop them.

* :mod:`.process` — a watchdog process per worker process: the soft timeout by a
  signal (serial executor) and the hard limit by ``SIGKILL`` of the worker and its
  children (every executor), which stops even code that holds the GIL.
* :mod:`.thread` — a watchdog thread that raises the soft timeout inside a task's
  own thread (threaded executor, or a serial one outside the main thread).

With ``timeouts.timeout == 0`` no killer is started at all.
"""

from __future__ import annotations

from .process import CHECK_INTERVAL, ProcessKiller, Slot
from .thread import ThreadKiller, ThreadTimeLimit

__all__ = ['CHECK_INTERVAL', 'ProcessKiller', 'Slot', 'ThreadKiller', 'ThreadTimeLimit']
