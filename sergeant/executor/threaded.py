"""Runs tasks in ``number_of_threads`` threads that share one task stream.

Each thread takes a task from the stream, runs it and settles it. Taking is
serialised by one lock, since iterating the stream is not thread-safe; settling
is (:meth:`TaskStream.settle`) and must not wait for that lock: a thread idling in
the stream on an empty queue holds it, and the finished tasks of the others would
stay unacknowledged until work arrived. When
the stream ends (``max_tasks_per_run``, a stop signal), every thread finishes its
current task and :meth:`ThreadedExecutor.execute` returns. A task that raises
stop or respawn makes every thread stop taking tasks; once the tasks already
running are over, ``execute`` raises that signal again (the first one raised),
and the worker hands the prefetched tasks back to the queue.

Time limits, with ``timeouts.timeout > 0``:

* soft: a killer thread (:mod:`sergeant.killer.thread`) raises
  :class:`~sergeant.interrupts.WorkerTimedout` inside the thread whose ``work``
  ran past ``timeout``, and only there. It cannot interrupt a blocking C call
  before it returns, nor stop code that holds the GIL;
* hard: so the process killer (:mod:`sergeant.killer.process`) watches one slot
  per thread and kills the whole worker process once a task runs past
  ``timeout + grace_period``. The supervisor replaces the worker; the tasks the
  other threads were running are delivered again, each counted as a delivery
  (see :mod:`sergeant.loop.isolation` for how innocent ones are spared).

A task the stream marks ``alone`` (:mod:`sergeant.loop.isolation`) runs with no other
task running: before handing it out, the stream waits until the tasks running
finished, and no thread takes another task until it ended.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from typing import TYPE_CHECKING

from ..config import Timeouts
from ..killer import ProcessKiller, Slot, ThreadKiller
from ..loop.stream import LeasedTask, TaskStream
from ..loop.thread_guard import settled_outcome

if TYPE_CHECKING:
    from . import RunTask

_Limit = tuple[AbstractContextManager[object] | None, Slot | None]


class ThreadedExecutor:
    """Runs the stream's tasks in a pool of threads; see the module docstring."""

    def __init__(self, run: RunTask, number_of_threads: int, timeouts: Timeouts | None = None) -> None:
        if number_of_threads < 1:
            raise ValueError(f'number_of_threads must be >= 1, got {number_of_threads}')
        self._run = run
        self._number_of_threads = number_of_threads
        self._timeouts = timeouts or Timeouts(timeout=0)

    def execute(self, stream: TaskStream) -> None:
        pool = _Pool(stream, self._run)
        with ExitStack() as stack:
            limits = self._limits(stack)
            stack.callback(_also_stop_when(stream, pool.stopping))
            stack.callback(setattr, stream, 'before_alone', stream.before_alone)
            stream.before_alone = pool.clear_the_floor
            threads = [
                threading.Thread(target=pool.work, args=limit, name=f'sergeant-task-{number}', daemon=True)
                for number, limit in enumerate(limits)
            ]
            for thread in threads:
                thread.start()
            try:
                for thread in threads:
                    thread.join()
            except BaseException:
                pool.stopping.set()
                for thread in threads:
                    thread.join()
                raise
        if pool.error is not None:
            raise pool.error

    def _limits(self, stack: ExitStack) -> list[_Limit]:
        timeouts = self._timeouts
        if not timeouts.timeout:
            return [(None, None)] * self._number_of_threads
        process_killer = stack.enter_context(
            ProcessKiller(self._number_of_threads, timeouts.timeout, timeouts.grace_period)
        )
        thread_killer = stack.enter_context(ThreadKiller(timeouts.timeout))
        return [(thread_killer.time_limit(slot), slot) for slot in process_killer.slots]


class _Pool:
    """What the threads share: the stream behind a lock, the stop flag and the first error."""

    def __init__(self, stream: TaskStream, run: RunTask) -> None:
        self._stream = stream
        self._tasks = iter(stream)
        self._run = run
        self._stream_guard = threading.Lock()
        self._error_guard = threading.Lock()
        self._turns = threading.Condition()  # who may run: any number of tasks, or one alone
        self._running = 0  # tasks handed out and not over
        self._alone = False
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def work(self, limit: AbstractContextManager[object] | None, slot: Slot | None) -> None:
        """One thread's loop: take, run, settle, until the stream ends or the pool stops."""
        try:
            while (leased := self._next()) is not None:
                self._run_one(leased, limit, slot)
        except BaseException as error:
            self._fail(error)

    def _next(self) -> LeasedTask | None:
        with self._stream_guard:
            with self._turns:
                while self._alone:  # a task runs alone: nothing else starts meanwhile
                    self._turns.wait()
            if self.stopping.is_set():
                return None
            leased = next(self._tasks, None)
            if leased is not None:
                with self._turns:
                    self._running += 1
            return leased

    def _run_one(
        self, leased: LeasedTask, limit: AbstractContextManager[object] | None, slot: Slot | None
    ) -> None:
        if slot is not None:
            slot.begin()
        try:
            outcome = self._run(leased[0], limit)
        except BaseException as error:
            # first tell the others to stop: one of them may hold the stream, waiting for tasks
            self._fail(error)
            outcome = settled_outcome(error)
        finally:
            if slot is not None:
                slot.end()
            with self._turns:
                self._running -= 1
                if self._stream.runs_alone(leased[1]):
                    self._alone = False
                self._turns.notify_all()
        self._stream.settle(leased, outcome)

    def clear_the_floor(self) -> None:
        """Called by the stream before it hands out a task to run alone: wait until none runs."""
        with self._turns:
            while self._running:
                self._turns.wait()
            self._alone = True

    def _fail(self, error: BaseException) -> None:
        with self._error_guard:
            if self.error is None:
                self.error = error
        self.stopping.set()


def _also_stop_when(stream: TaskStream, stopping: threading.Event) -> Callable[[], None]:
    """Make the stream end its iteration once ``stopping`` is set; returns the undo.

    A thread waiting in the stream for tasks of an empty queue only comes back
    when a task arrives or the stream's stop condition becomes true, and the
    executor must not return while a thread is inside the stream. TaskStream has
    no stop method of its own yet, so its stop condition is extended here.
    """
    should_stop: Callable[[], bool] = stream._should_stop
    stream._should_stop = lambda: stopping.is_set() or should_stop()

    def undo() -> None:
        stream._should_stop = should_stop

    return undo
