"""The process killer: a watchdog process that enforces the time limits of a worker's tasks.

An executor with ``timeouts.timeout > 0`` starts one killer process for the
worker process it runs in, and stops it when it is done. They share a few words
of memory (a ``memfd`` or an unlinked temporary file, mapped by both), one
:class:`Slot` per executor thread:

* the executor writes a new *mark* (a counter) into its slot when a task starts
  and again when the task's ``work`` starts, and 0 when the task is over: one
  memory store each, no system call;
* the killer reads every slot every :data:`CHECK_INTERVAL` (50 ms) and times each
  mark from when it first sees it, with its own monotonic clock. A mark it has
  not seen before restarts the clock, so a torn or stale read can only delay a
  kill, never cause one.

Once a mark has stayed for ``timeout`` seconds, the killer writes the mark into
the slot's second word and sends the worker ``soft_signal`` (``SIGUSR1`` for the
serial executor; none for the threaded one, whose soft limit is a killer thread).
The worker's handler raises the timeout only if that mark is still the one
running (see :mod:`sergeant.executor.serial`). Once a mark has stayed for
``timeout + grace_period`` seconds, the killer freezes the worker (``SIGSTOP``),
then sends ``SIGKILL`` to it and to all of its descendants, writes one line to
standard error and exits. That is the only way to stop code that holds the GIL
without checking for signals, e.g. a long loop inside a C extension.

Limits: times are measured from when the killer first sees a mark, so a limit
fires between 0 and about 50 ms late (more on an overloaded host, or for the
first task while the killer process is still starting). The killer exits by
itself when the worker writes to or closes the lifeline pipe, or dies (it then
has another parent); it ignores ``SIGINT`` and ``SIGTERM`` so that a task still
draining after a stop request is still watched. It costs one small Python process
(about 11 MB RSS; ``psutil`` is imported only to kill).

This module runs as a script in the killer process, so it imports nothing
outside the standard library at module level.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import select
import signal
import sys
import time
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

__all__ = ['CHECK_INTERVAL', 'ProcessKiller', 'Slot']

CHECK_INTERVAL = 0.05
_WORD_BYTES = 8
_WORDS_PER_SLOT = 2  # the running mark (0 when idle), the mark the killer timed out
# runs this file as __main__ without importing the sergeant package (and with no
# current directory on sys.path), which keeps the killer process small
_BOOTSTRAP = 'import runpy, sys; del sys.path[0]; runpy.run_path(sys.argv.pop(1), run_name="__main__")'
_START_TIMEOUT = 30.0


class Slot:
    """One watched task of the worker: the executor marks it, the killer reads it."""

    __slots__ = ('_index', '_mark', '_words')

    def __init__(self, words: memoryview, number: int) -> None:
        self._words = words
        self._index = number * _WORDS_PER_SLOT
        self._mark = 0

    def begin(self) -> None:
        """Start this slot's clock again, for a new task or for its ``work``."""
        self._mark += 1
        self._words[self._index] = self._mark

    def end(self) -> None:
        """The task is over: nothing runs in this slot."""
        self._words[self._index] = 0

    def timed_out(self) -> bool:
        """Whether the killer's soft timeout concerns what runs now (and not an earlier mark)."""
        running = self._words[self._index]
        return running != 0 and running == self._mark and self._words[self._index + 1] == running


class ProcessKiller:
    """Starts and stops the killer process of this worker process; use it as a context manager."""

    def __init__(
        self,
        slots: int,
        timeout: float,
        grace_period: float,
        soft_signal: signal.Signals | None = None,
    ) -> None:
        if slots < 1 or timeout <= 0:
            raise ValueError('a process killer needs at least one slot and a timeout > 0')
        size = slots * _WORDS_PER_SLOT * _WORD_BYTES
        self._arguments = [str(slots), repr(float(timeout)), repr(float(grace_period))]
        self._arguments.append(str(int(soft_signal) if soft_signal is not None else 0))
        self._memory_fd = _shared_memory_fd(size)
        self._memory = mmap.mmap(self._memory_fd, size)
        self._words = memoryview(self._memory).cast('q')
        self.slots = [Slot(self._words, number) for number in range(slots)]
        self._process: subprocess.Popen[bytes] | None = None
        self._lifeline = -1

    def __enter__(self) -> ProcessKiller:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the killer process and wait until it watches the slots."""
        import subprocess  # not at module level: the killer process runs this module without it

        lifeline_read, self._lifeline = os.pipe()
        ready_read, ready_write = os.pipe()
        command = [sys.executable, '-c', _BOOTSTRAP, __file__, str(os.getpid()), str(self._memory_fd)]
        command += [str(lifeline_read), str(ready_write), *self._arguments]
        try:
            self._process = subprocess.Popen(
                command,
                pass_fds=(self._memory_fd, lifeline_read, ready_write),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        finally:
            os.close(lifeline_read)
            os.close(ready_write)
        try:
            ready = _read_with_timeout(ready_read, _START_TIMEOUT)
        finally:
            os.close(ready_read)
        if not ready:
            self.stop()
            raise RuntimeError('the killer process that enforces task timeouts failed to start')

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def stop(self) -> None:
        """Tell the killer to exit over the lifeline, wait for it, free the memory."""
        if self._lifeline >= 0:
            # a byte, not just closing: a process the task forked may hold the pipe open too
            with contextlib.suppress(OSError):
                os.write(self._lifeline, b'q')
            os.close(self._lifeline)
            self._lifeline = -1
        if self._process is not None:
            import subprocess

            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._memory_fd >= 0:
            os.close(self._memory_fd)
            self._memory_fd = -1
            self._words.release()
            self._memory.close()


def _shared_memory_fd(size: int) -> int:
    if hasattr(os, 'memfd_create'):
        fd = os.memfd_create('sergeant-killer')
    else:
        import tempfile

        fd, path = tempfile.mkstemp(prefix='sergeant-killer-')
        os.unlink(path)
    os.ftruncate(fd, size)
    return fd


def _read_with_timeout(fd: int, timeout: float) -> bytes:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return os.read(fd, 1) if poller.poll(timeout * 1000) else b''


# -- the killer process ------------------------------------------------------------------


class _Watch:
    """The killer's view of the slots: the mark last seen in each and since when."""

    def __init__(self, worker_pid: int, words: memoryview, limits: tuple[float, float, int]) -> None:
        self._worker_pid = worker_pid
        self._words = words
        self._timeout, self._grace_period, self._soft_signal = limits
        slots = len(words) // _WORDS_PER_SLOT
        self._marks = [0] * slots
        self._seen_at = [0.0] * slots
        self._signalled = [False] * slots

    def check(self, now: float) -> bool:
        """Look at every slot once; False once the worker was killed."""
        for slot, mark in enumerate(self._words[::_WORDS_PER_SLOT]):
            if mark != self._marks[slot]:
                self._marks[slot], self._seen_at[slot], self._signalled[slot] = mark, now, False
            elif mark:
                elapsed = now - self._seen_at[slot]
                if elapsed >= self._timeout + self._grace_period:
                    # read again: the task may have ended since the loop read the slot
                    if self._words[slot * _WORDS_PER_SLOT] == mark:
                        _kill_worker(self._worker_pid, elapsed)
                        return False
                elif elapsed >= self._timeout and self._soft_signal and not self._signalled[slot]:
                    self._words[slot * _WORDS_PER_SLOT + 1] = mark
                    self._signalled[slot] = True
                    os.kill(self._worker_pid, self._soft_signal)
        return True


def _kill_worker(worker_pid: int, elapsed: float) -> None:
    try:
        # frozen at once: the task stops now, and the worker can start no more processes
        os.kill(worker_pid, signal.SIGSTOP)
    except ProcessLookupError:
        return
    try:
        descendants = _descendants(worker_pid)
    finally:
        os.kill(worker_pid, signal.SIGKILL)
    for child in descendants:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    sys.stderr.write(
        f'sergeant killer: a task of worker process {worker_pid} ran for {elapsed:.1f}s, past its '
        f'timeout and grace period; killed the worker and {len(descendants)} child processes\n'
    )
    sys.stderr.flush()


def _descendants(worker_pid: int) -> list[int]:
    """The worker's children, grandchildren and so on, except this killer process."""
    import psutil  # only here: it would add to the killer's memory for the rare kill

    try:
        children = psutil.Process(worker_pid).children(recursive=True)
    except psutil.Error:
        return []
    return [child.pid for child in children if child.pid != os.getpid()]


def _serve(worker_pid: int, watch: _Watch, lifeline: int) -> None:
    poller = select.poll()
    poller.register(lifeline, select.POLLIN)
    while True:
        if poller.poll(CHECK_INTERVAL * 1000):
            return  # the worker wrote to the lifeline or closed it: it is done, or dead
        if os.getppid() != worker_pid:
            return  # the worker died while something it forked keeps the lifeline open
        if not watch.check(time.monotonic()):
            return


def main(arguments: list[str]) -> None:
    worker_pid, memory_fd, lifeline, ready, slots = (int(argument) for argument in arguments[:5])
    timeout, grace_period, soft_signal = float(arguments[5]), float(arguments[6]), int(arguments[7])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    memory = mmap.mmap(memory_fd, slots * _WORDS_PER_SLOT * _WORD_BYTES)
    watch = _Watch(worker_pid, memoryview(memory).cast('q'), (timeout, grace_period, soft_signal))
    os.write(ready, b'r')
    os.close(ready)
    _serve(worker_pid, watch, lifeline)


if __name__ == '__main__':
    main(sys.argv[1:])
