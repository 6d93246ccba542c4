"""The thread killer: a watchdog thread that raises WorkerTimedout in a task's own thread.

The threaded executor gives each of its threads a :class:`ThreadTimeLimit`, entered
around the user's ``work`` only. A watchdog thread checks every
:data:`~sergeant.killer.process.CHECK_INTERVAL` (50 ms) whether a thread has been
inside its limit for ``timeout`` seconds, and if so schedules
:class:`~sergeant.interrupts.WorkerTimedout` in that thread with
``PyThreadState_SetAsyncExc``. Entering, leaving and injecting all happen under one
lock, and a limit left after an injection withdraws whatever may still be pending,
so the exception never lands outside ``work``: at worst it surfaces inside the
``with`` statement of the time limit, where the task runner handles it as the
timeout it is.

Withdrawing is not ``PyThreadState_SetAsyncExc(thread, NULL)``: up to Python 3.12
that call still raises the interpreter's "asynchronous exception pending" signal,
and nothing clears it until some thread receives a real asynchronous exception.
Under any trace function (coverage, a debugger) the stale signal makes the next
function entry loop for ever; without one it slows every thread down. So the
thread replaces the pending exception with a private marker exception and
receives that at once, which both discards the timeout and clears the signal.

Limits, which is why the process killer's hard limit stays the backstop:

* The exception is raised when the thread next runs Python bytecode. A thread
  blocked in a C call (``time.sleep``, a socket read, a lock wait) sees it only
  once that call returns.
* Code that holds the GIL without returning to the interpreter (a catastrophic
  regex such as ``re.match(r'(a+)+$', 'a' * 64 + 'b')``, a long loop in a C
  extension) never sees it; while such code runs, the watchdog thread itself
  cannot even run.
* Like any asynchronous exception it can land anywhere inside ``work``, also
  between acquiring a resource and the ``try`` that releases it.
"""

from __future__ import annotations

import ctypes
import threading
import time
import types

from ..interrupts import WorkerTimedout
from ..periodic import PeriodicThread
from .process import CHECK_INTERVAL, Slot

__all__ = ['ThreadKiller', 'ThreadTimeLimit']

_raise_in_thread = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.py_object)(
    ('PyThreadState_SetAsyncExc', ctypes.pythonapi)
)


class _Withdrawn(Exception):
    """Replaces a pending timeout so that the thread can receive and drop it."""


def _pending_exception_lands_here() -> None:
    """Entering any Python function is a point where a pending asynchronous exception is raised."""


class ThreadTimeLimit:
    """The soft time limit of one executor thread; enter it around ``work``, in that thread."""

    def __init__(self, guard: threading.Lock, timeout: float, slot: Slot | None) -> None:
        self._guard = guard
        self._timeout = timeout
        self._slot = slot
        self._thread_id = 0
        self._deadline = 0.0
        self._active = False
        self._injected = False

    def __enter__(self) -> None:
        if self._slot is not None:
            self._slot.begin()
        with self._guard:
            self._thread_id = threading.get_ident()
            self._deadline = time.monotonic() + self._timeout
            self._injected = False
            self._active = True

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        with self._guard:
            self._active = False
            if self._injected:
                # no Python call before the replacement: entering one would raise the timeout here
                try:
                    _raise_in_thread(self._thread_id, _Withdrawn)
                    _pending_exception_lands_here()
                except _Withdrawn:
                    pass

    def expire(self, now: float) -> None:
        """Raise the timeout in the thread if it is past its deadline; call under the guard."""
        if self._active and not self._injected and now >= self._deadline:
            _raise_in_thread(self._thread_id, WorkerTimedout)
            self._injected = True


class ThreadKiller(PeriodicThread):
    """Runs the watchdog thread over the limits it hands out; use it as a context manager."""

    def __init__(self, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError('a thread killer needs a timeout > 0')
        super().__init__(self._expire_limits, CHECK_INTERVAL, 'sergeant-thread-killer')
        self._timeout = timeout
        self._guard = threading.Lock()
        self._limits: list[ThreadTimeLimit] = []

    def time_limit(self, slot: Slot | None = None) -> ThreadTimeLimit:
        """A limit for one thread; entering it also begins ``slot`` for the process killer."""
        limit = ThreadTimeLimit(self._guard, self._timeout, slot)
        with self._guard:
            self._limits.append(limit)
        return limit

    def _expire_limits(self) -> None:
        now = time.monotonic()
        with self._guard:
            for limit in self._limits:
                limit.expire(now)
