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
import time
import types
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

from ..config import Timeouts
from ..interrupts import WorkerTimedout
from ..killer import ProcessKiller, Slot, ThreadKiller
from ..loop.runner import PlainWork
from ..loop.stream import LeasedTask, Outcome, TaskStream
from ..loop.thread_guard import settled_outcome

if TYPE_CHECKING:
    from . import RunTask

SOFT_TIMEOUT_SIGNAL = signal.SIGUSR1


class SerialExecutor:
    """Runs each task of the stream in turn and settles it before taking the next."""

    def __init__(
        self, run: RunTask, timeouts: Timeouts | None = None, plain: PlainWork | None = None
    ) -> None:
        self._run = run
        self._timeouts = timeouts or Timeouts(timeout=0)
        self._plain = plain

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
                outcome = self._run(leased[0], limit)
            except BaseException as error:
                # stop/respawn raised while the task ran: the task itself is over
                stream.settle(leased, settled_outcome(error))
                raise
            finally:
                if slot is not None:
                    slot.end()
            stream.settle(leased, outcome)

    def _run_unwatched(self, stream: TaskStream) -> None:
        if self._plain is not None:
            self._run_plain(stream, self._plain)
            return
        # the hot loop without a watchdog: no per-task slot bookkeeping
        run, settle = self._run, stream.settle
        for leased in stream:
            try:
                outcome = run(leased[0], None)
            except BaseException as error:
                settle(leased, settled_outcome(error))
                raise
            settle(leased, outcome)

    def _run_plain(self, stream: TaskStream, plain: PlainWork) -> None:
        """The hot loop of a worker with no hooks around ``work`` and no watchdog.

        The runner's fast path and the stream's hand-out and settling, inlined: for a
        no-op task they cost more than the task, and as much as decoding it.
        """
        take, stop, ack, settle = stream.take, stream.stop_flag, stream.ack, stream.settle
        note, waits, redelivered = stream.start_note, stream.queue_waits, stream.redelivered
        work, outcomes, clock = plain.work, plain.outcomes, plain.clock
        threads_started, task_over = plain.threads_started, plain.task_over
        # the calling thread's own attributes of the thread-local (what setting one writes to),
        # written directly: setting an attribute of a thread-local costs as much as a no-op task
        current = plain.task_of_thread.__dict__
        while count := stream.next_run():
            successes = 0  # counted into outcomes as the run ends, or per task while tasks are slow
            count_each = clock is not None and clock.per_task
            # queue waits of fast tasks are observed per run (QueueWaitHistogram.observe_run)
            waited = None if waits is None or not count_each else waits.observe_since
            ready_ats: list[float] | None = [] if waits is not None and not count_each else None
            run_started_at = time.time() if ready_ats is not None else 0.0
            # entries of redelivered are only added between runs (as tasks arrive)
            if ack is not None and note is None and not count_each and not redelivered:
                with stream.running():
                    try:
                        self._run_bare(stream, plain, count, ack, current, ready_ats)
                    finally:
                        if ready_ats:
                            waits.observe_run(ready_ats, run_started_at)  # type: ignore[union-attr]
                continue
            with stream.running():
                try:
                    for _ in range(count):
                        if stop.received_stop_signal:
                            break
                        try:
                            leased = take()
                        except IndexError:  # the keeper's thread handed them back meanwhile
                            break
                        task, receipt, ready_at = leased
                        special = receipt in redelivered if redelivered else False
                        if special:
                            stream.hand_out(leased)
                        else:  # hand_out, inlined: a supervised worker notes and times every task
                            if note is not None:
                                note(receipt)
                            if waited is not None:
                                waited(ready_at)
                            elif ready_ats is not None:
                                ready_ats.append(ready_at)
                        current['task'] = task
                        try:
                            work(task)
                        except BaseException as error:
                            self._settle_failed(stream, plain, leased, error)
                            continue
                        if count_each:
                            outcomes['success'] += 1
                            clock.task_done()  # type: ignore[union-attr]  # count_each implies a clock
                        else:
                            successes += 1
                        if threads_started:
                            current['task'] = None
                            try:
                                task_over(_SUCCESS)
                            except BaseException as ending:  # UnkillableThreads: the task itself is over
                                settle(leased, settled_outcome(ending))
                                raise
                        if ack is None or special:
                            settle(leased, _SUCCESS)
                        else:
                            ack(receipt)
                finally:
                    # set from one task to the next: nothing runs in between that could look
                    current['task'] = None
                    if successes:
                        outcomes['success'] += successes
                    if ready_ats:
                        waits.observe_run(ready_ats, run_started_at)  # type: ignore[union-attr]

    @staticmethod
    def _run_bare(
        stream: TaskStream,
        plain: PlainWork,
        count: int,
        ack: Callable[[bytes], None],
        current: dict[str, Any],
        ready_ats: list[float] | None,
    ) -> None:
        """A run of :meth:`_run_plain` whose tasks need nothing around them but an acknowledgement.

        No note, no per-task timing or counting, no redelivered task among them: the general
        loop without what these runs skip, which costs a no-op task a tenth of its time. The
        times the tasks became ready go to ``ready_ats`` when given (queue waits, observed per run).
        """
        take, stop, work, threads_started = stream.take, stream.stop_flag, plain.work, plain.threads_started
        ready = None if ready_ats is None else ready_ats.append
        successes = 0
        try:
            for _ in range(count):
                if stop.received_stop_signal:
                    break
                try:
                    leased = take()
                except IndexError:  # the keeper's thread handed them back meanwhile
                    break
                current['task'] = task = leased[0]
                if ready is not None:
                    ready(leased[2])
                try:
                    work(task)
                except BaseException as error:
                    SerialExecutor._settle_failed(stream, plain, leased, error)
                    continue
                successes += 1
                if threads_started:
                    current['task'] = None
                    try:
                        plain.task_over(_SUCCESS)
                    except BaseException as ending:  # UnkillableThreads: the task itself is over
                        stream.settle(leased, settled_outcome(ending))
                        raise
                ack(leased[1])
        finally:
            current['task'] = None
            if successes:
                plain.outcomes['success'] += successes

    @staticmethod
    def _settle_failed(
        stream: TaskStream, plain: PlainWork, leased: LeasedTask, error: BaseException
    ) -> None:
        """``work`` raised ``error``: the runner's handlers decide the outcome; loop-ending signals go on.

        The handlers run with the task still current, as on the runner's own path.
        """
        try:
            outcome = plain.failed(leased[0], error)
        except BaseException as ending:
            plain.task_of_thread.task = None
            stream.settle(leased, settled_outcome(ending))
            raise
        plain.task_of_thread.task = None
        if plain.clock is not None and plain.clock.per_task:
            plain.clock.task_done()
        try:
            if plain.threads_started:
                plain.task_over(outcome)
        except BaseException as ending:
            stream.settle(leased, settled_outcome(ending))
            raise
        stream.settle(leased, outcome)


_SUCCESS = Outcome.SUCCESS


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
