"""Ends the threads a task leaves running, and tells which ones would not end.

A task may start threads and return without waiting for them. While a worker's
``config.stop_task_threads`` is on (the default), its :class:`ThreadGuard` records
every thread started by a thread that is running a task (in ``work``, a hook or a
handler), and every thread such a thread starts, under that task. Once the task is
over, whatever its outcome, :meth:`ThreadGuard.task_over` raises ``SystemExit`` in
those of its threads that still run (``PyThreadState_SetAsyncExc``) and joins them
for at most :data:`JOIN_TIMEOUT` seconds in all. The threads that end are
forgotten. The ones that do not are logged and kept for the summary
(:func:`unkillable_threads`; the supervised worker's summary lists them under
``unkillable_threads``), and :class:`UnkillableThreads`, a
:class:`~sergeant.interrupts.WorkerRespawn` that carries the task's outcome, ends
the work loop: the executor settles the task with that outcome, prefetched tasks
go back to the queue and the supervisor replaces the process, as Sergeant 0.27
did at the end of a loop.

Recording needs ``threading.Thread.start`` wrapped: that is done once per
process, when the first guard is made, and the wrapper leaves alone the threads
started outside tasks. So threads started before a task (in ``initialize``, by
the worker's own machinery, by pools made earlier) and the threads of other tasks
running at the same time are never touched. Neither are the threads of the
standard library's pools and queues (``concurrent.futures`` executors, the
feeder of a ``multiprocessing`` queue): a pool or queue shared by tasks starts
them lazily, inside whichever task first uses it, and they are meant to outlive
that task; ended, they would leave the pool or queue broken.

A task that starts no thread costs one test of an empty dict. The limits of
asynchronous exceptions apply (see :mod:`sergeant.killer.thread`): a thread
blocked in a C call sees the exception only when the call returns, a thread
that catches ``SystemExit`` may go on regardless, and one that the exception
ends between taking a lock and the ``try`` that releases it leaves it taken.
Under a tracer (coverage, a debugger) on Python 3.12 and older, an exception
pending in a thread blocked in a C call stalls every other thread until that call
returns, so a worker traced that way waits for such a thread instead of reporting it.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import threading
import time
import weakref
from typing import Protocol

from ..interrupts import WorkerRespawn
from .stream import Outcome

__all__ = [
    'JOIN_TIMEOUT',
    'GuardedWorker',
    'ThreadGuard',
    'UnkillableThreads',
    'guard_threads_of',
    'settled_outcome',
    'threads_left_running',
    'unkillable_threads',
]


class GuardedWorker(Protocol):
    """What the guard needs of a worker (it never imports the Worker class): where to log."""

    @property
    def logger(self) -> logging.Logger: ...


JOIN_TIMEOUT = 2.0  # seconds the threads a task left running get, all together, to end

# modules whose pools and queues start threads that serve later tasks too (see the module docstring)
_SHARED_MACHINERY_MODULES = frozenset(
    {'concurrent.futures.thread', 'concurrent.futures.process', 'multiprocessing.queues'}
)

_raise_in_thread = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.py_object)(
    ('PyThreadState_SetAsyncExc', ctypes.pythonapi)
)


class UnkillableThreads(WorkerRespawn):
    """A task is over with ``outcome`` but left threads that would not end: replace the worker."""

    def __init__(self, outcome: Outcome, names: list[str]) -> None:
        super().__init__(f'threads left running by a task would not end: {names}')
        self.outcome = outcome
        self.names = names


def settled_outcome(error: BaseException) -> Outcome:
    """How an executor settles a task whose run raised ``error``: stopped, unless it was over."""
    return error.outcome if isinstance(error, UnkillableThreads) else Outcome.STOPPED


class ThreadGuard:
    """The threads the running tasks of one work loop started; see the module docstring.

    ``task_of_thread`` is the worker's per-thread record of its running task: a
    thread runs a task while its ``task`` is set.
    """

    def __init__(self, task_of_thread: threading.local, logger: logging.Logger) -> None:
        self._task_of_thread = task_of_thread
        self._logger = logger
        self._lock = threading.Lock()
        self.started: dict[int, list[threading.Thread]] = {}
        """Ident of a thread running a task -> the threads that task started, not yet checked."""
        self._runner_of: dict[threading.Thread, int] = {}
        self.unkillable: list[threading.Thread] = []

    def claim(self, thread: threading.Thread) -> bool:
        """Record ``thread``, about to be started by the calling thread, if that is a task's doing."""
        starter = threading.current_thread()
        in_task = getattr(self._task_of_thread, 'task', None) is not None
        with self._lock:
            runner = self._runner_of.get(starter)
            if runner is None:
                if not in_task:
                    return False
                runner = threading.get_ident()
            self._runner_of[thread] = runner
            self.started.setdefault(runner, []).append(thread)
        return True

    def disown(self, thread: threading.Thread) -> None:
        """Forget a claimed thread that could not be started."""
        with self._lock:
            runner = self._runner_of.pop(thread, None)
            if runner is None:
                return
            threads = self.started.get(runner, [])
            if thread in threads:
                threads.remove(thread)
            if not threads:
                self.started.pop(runner, None)

    def task_over(self, outcome: Outcome) -> None:
        """End the threads the calling thread's task left running; raise if some would not end."""
        names = self._end_threads()
        if names:
            raise UnkillableThreads(outcome, names)

    def task_interrupted(self) -> None:
        """End them for a task that ends the loop (stop, respawn): that signal goes on, unchanged."""
        self._end_threads()

    def _end_threads(self) -> list[str]:
        runner = threading.get_ident()
        deadline = time.monotonic() + JOIN_TIMEOUT
        ended: list[threading.Thread] = []
        left: list[threading.Thread] = []
        # threads started by the ones being ended are taken up by the next round
        while batch := self._take(runner):
            alive = [thread for thread in batch if thread.is_alive()]
            for thread in alive:
                if thread.ident is not None:
                    _raise_in_thread(thread.ident, SystemExit)
            for thread in alive:
                thread.join(max(0.0, deadline - time.monotonic()))
                (left if thread.is_alive() else ended).append(thread)
            if time.monotonic() >= deadline:
                left.extend(thread for thread in self._take(runner) if thread.is_alive())
                break
        with self._lock:
            for thread in (*ended, *left):
                self._runner_of.pop(thread, None)
        if ended:
            self._logger.warning(
                'ended %d thread(s) the task left running: %s', len(ended), [t.name for t in ended]
            )
        if not left:
            return []
        names = [thread.name for thread in left]
        self.unkillable.extend(left)
        _left_running.extend(left)
        self._logger.error(
            'thread(s) the task left running would not end within %g s of SystemExit: %s; '
            'the worker stops and its process is replaced',
            JOIN_TIMEOUT,
            names,
        )
        return names

    def _take(self, runner: int) -> list[threading.Thread]:
        with self._lock:
            return self.started.pop(runner, [])


_guards: weakref.WeakKeyDictionary[GuardedWorker, ThreadGuard] = weakref.WeakKeyDictionary()
_guards_lock = threading.Lock()
_left_running: list[threading.Thread] = []  # every thread of this process that would not end
_start_wrapped = False


def guard_threads_of(worker: GuardedWorker, task_of_thread: threading.local) -> ThreadGuard:
    """A guard of ``worker``'s tasks, replacing the one of its previous loop; wraps Thread.start once."""
    guard = ThreadGuard(task_of_thread, worker.logger)
    global _start_wrapped
    with _guards_lock:
        if not _start_wrapped:
            _wrap_thread_start()
            _start_wrapped = True
        _guards[worker] = guard
    return guard


def unkillable_threads(worker: GuardedWorker) -> list[str]:
    """Names of the threads the tasks of ``worker``'s last loop left running that would not end."""
    guard = _guards.get(worker)
    return [thread.name for thread in guard.unkillable] if guard is not None else []


def threads_left_running() -> list[str]:
    """Names of the threads of this process that would not end and still run."""
    return [thread.name for thread in _left_running if thread.is_alive()]


def _wrap_thread_start() -> None:
    original = threading.Thread.start

    @functools.wraps(original)
    def start(thread: threading.Thread) -> None:
        guard = _claim(thread)
        try:
            original(thread)
        except BaseException:
            if guard is not None:
                guard.disown(thread)
            raise

    threading.Thread.start = start  # type: ignore[method-assign,assignment]


def _claim(thread: threading.Thread) -> ThreadGuard | None:
    """The guard that records ``thread``, if one of them sees it started by a task."""
    if not _guards or _is_shared_machinery(thread):
        return None
    with _guards_lock:
        guards = list(_guards.values())
    for guard in guards:
        if guard.claim(thread):
            return guard
    return None


def _is_shared_machinery(thread: threading.Thread) -> bool:
    target = getattr(thread, '_target', None)  # Thread keeps its target there; no public accessor
    return (
        type(thread).__module__ in _SHARED_MACHINERY_MODULES
        or getattr(target, '__module__', None) in _SHARED_MACHINERY_MODULES
    )
