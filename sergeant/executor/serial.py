"""Runs tasks one after another in the calling thread, watched by the process killer.

With ``timeouts.timeout == 0`` nothing watches the tasks. Otherwise a killer
process (:mod:`sergeant.killer.process`) watches the executor's one slot:

* at ``timeout`` it sends :data:`SOFT_TIMEOUT_SIGNAL` (``SIGUSR1``). The handler
  raises :class:`~sergeant.interrupts.WorkerTimedout` only while ``work`` runs and
  only if the signal concerns the task running now, so ``on_timeout`` runs and may
  retry or requeue. Python runs signal handlers in the main thread, between
  bytecodes and when a blocking call such as ``time.sleep`` is interrupted; C code
  that holds the GIL and never checks for signals delays the handler until it
  returns. The handler replaces any other ``SIGUSR1`` handler while the executor
  runs, and is restored afterwards.
* at ``timeout + grace_period`` after ``work`` started (or after the task started,
  for a ``pre_work`` that hangs) it kills the worker process and its children. The
  supervisor starts a new worker, and the task, never acknowledged, is delivered
  again once its lease expires, counted as a retry.

Run outside the main thread, where a signal handler cannot be installed, the
soft timeout comes from a killer thread instead (:mod:`sergeant.killer.thread`).
"""

from __future__ import annotations

import signal
import threading
import types
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import TYPE_CHECKING

from ..config import Timeouts
from ..interrupts import WorkerTimedout
from ..killer import ProcessKiller, Slot, ThreadKiller
from ..loop.stream import TaskStream
from ..loop.thread_guard import settled_outcome

if TYPE_CHECKING:
    from . import RunTask

SOFT_TIMEOUT_SIGNAL = signal.SIGUSR1


class SerialExecutor:
    """Runs each task of the stream in turn and settles it before taking the next."""

    def __init__(self, run: RunTask, timeouts: Timeouts | None = None) -> None:
        self._run = run
        self._timeouts = timeouts or Timeouts(timeout=0)

    def execute(self, stream: TaskStream) -> None:
        timeouts = self._timeouts
        if not timeouts.timeout:
            self._run_all(stream, None, None)
            return
        in_main_thread = threading.current_thread() is threading.main_thread()
        soft_signal = SOFT_TIMEOUT_SIGNAL if in_main_thread else None
        killer = ProcessKiller(1, timeouts.timeout, timeouts.grace_period, soft_signal)
        [slot] = killer.slots
        limit: AbstractContextManager[object]
        with ExitStack() as stack:
            if soft_signal is not None:
                limit = _SignalTimeLimit(slot, soft_signal)
                # installed before the killer starts and restored after it ended:
                # the default action of SIGUSR1 terminates the process
                stack.enter_context(limit.installed())
                stack.enter_context(killer)
            else:
                stack.enter_context(killer)
                limit = stack.enter_context(ThreadKiller(timeouts.timeout)).time_limit(slot)
            self._run_all(stream, limit, slot)

    def _run_all(
        self, stream: TaskStream, limit: AbstractContextManager[object] | None, slot: Slot | None
    ) -> None:
        if slot is None:
            self._run_unwatched(stream)
            return
        for leased in stream:
            if slot is not None:
                slot.begin()
            try:
                outcome = self._run(leased.task, limit)
            except BaseException as error:
                # stop/respawn raised while the task ran: the task itself is over
                stream.settle(leased, settled_outcome(error))
                raise
            finally:
                if slot is not None:
                    slot.end()
            stream.settle(leased, outcome)

    def _run_unwatched(self, stream: TaskStream) -> None:
        # the hot loop without a watchdog: no per-task slot bookkeeping
        run, settle = self._run, stream.settle
        for leased in stream:
            try:
                outcome = run(leased.task, None)
            except BaseException as error:
                settle(leased, settled_outcome(error))
                raise
            settle(leased, outcome)


class _SignalTimeLimit:
    """Entered around ``work``: restarts the slot's clock and lets the signal handler raise."""

    def __init__(self, slot: Slot, signal_number: signal.Signals) -> None:
        self._slot = slot
        self._signal_number = signal_number
        self._armed = False

    def __enter__(self) -> None:
        self._slot.begin()
        self._armed = True

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        self._armed = False

    @contextmanager
    def installed(self) -> Iterator[None]:
        previous = signal.signal(self._signal_number, self._handle)
        try:
            yield
        finally:
            signal.signal(self._signal_number, previous if previous is not None else signal.SIG_DFL)

    def _handle(self, signal_number: int, frame: types.FrameType | None) -> None:
        if self._armed and self._slot.timed_out():
            raise WorkerTimedout()
