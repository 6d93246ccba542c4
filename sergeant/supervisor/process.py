"""One worker process as the supervisor sees it: spawning, its messages, killing, why it ended.

A worker is started as ``python -m sergeant.supervisor.child`` in a session of
its own: a Ctrl-C in the supervisor's terminal reaches the supervisor only (it
forwards SIGTERM), and the worker's process group can be killed as a whole
without hitting the supervisor. The process is *not* waited for here: the pool
reaps every child with ``waitpid(-1)`` (orphans too) and calls :meth:`exited`.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any

from ..metrics.snapshot import TaskSnapshot
from ..observability.pool import BrokerTarget
from .protocol import CHILD_MODULE, ChildExit, MessageReader

logger = logging.getLogger('sergeant.supervisor')


class EndReason(enum.Enum):
    """Why a worker process ended, as logged and counted by the supervisor."""

    FINISHED = 'finished (max_tasks_per_run reached or stop signal)'
    RESPAWN_ASKED = 'respawn asked'
    STOP_ASKED = 'stop asked'
    CRASHED = 'crashed'
    LOOP_FAILED = 'work loop failed'
    START_FAILED = 'start-up failed'
    LOAD_FAILED = 'worker class could not be loaded'
    MEMORY_LIMIT = 'memory limit exceeded'
    KILLED = 'killed by the supervisor'

    @property
    def failed(self) -> bool:
        return self not in (EndReason.FINISHED, EndReason.RESPAWN_ASKED, EndReason.STOP_ASKED)


# the ends after which the pool starts a new worker (unless it is stopping)
RESPAWN_REASONS = tuple(
    reason
    for reason in EndReason
    if reason not in (EndReason.STOP_ASKED, EndReason.LOAD_FAILED, EndReason.KILLED)
)

_REASON_OF_EXIT = {
    ChildExit.FINISHED: EndReason.FINISHED,
    ChildExit.RESPAWN: EndReason.RESPAWN_ASKED,
    ChildExit.STOP: EndReason.STOP_ASKED,
    ChildExit.LOAD_FAILED: EndReason.LOAD_FAILED,
    ChildExit.START_FAILED: EndReason.START_FAILED,
    ChildExit.LOOP_FAILED: EndReason.LOOP_FAILED,
}


class WorkerProcess:
    """A running (or just ended) worker process of one pool slot."""

    def __init__(self, slot: int, popen: subprocess.Popen[bytes], report_fd: int) -> None:
        self.slot = slot
        self.pid = popen.pid
        self.started_at = time.monotonic()
        self.ended_at: float | None = None
        self.exit_code: int | None = None  # from waitstatus_to_exitcode: -N for signal N
        self.ready = False
        self.broker: BrokerTarget | None = None  # announced when ready, if metrics are served
        self.metrics: TaskSnapshot | None = None  # the latest (cumulative) task counts it sent
        self.summary: Mapping[str, Any] | None = None
        self.error: str | None = None  # load or start-up error sent by the worker
        self.error_details = ''
        self._error_reason: EndReason | None = None
        self.kill_reason: EndReason | None = None
        self.terminated = False  # SIGTERM sent: the supervisor asked it to stop
        self._popen = popen
        self._report_fd: int | None = report_fd
        self._reader = MessageReader()

    @classmethod
    def spawn(
        cls,
        slot: int,
        worker_module: str,
        worker_class: str,
        lifeline_fd: int,
        report_metrics: bool = False,
        environment: Mapping[str, str] | None = None,
        start_journal: str | None = None,
    ) -> WorkerProcess:
        """Start a worker; ``report_metrics`` makes it send task metrics, ``environment`` adds variables.

        ``start_journal`` is the slot's journal file (:mod:`sergeant.loop.journal`).
        """
        report_read, report_write = os.pipe()
        command = [
            sys.executable,
            '-m',
            CHILD_MODULE,
            '--worker-module',
            worker_module,
            '--worker-class',
            worker_class,
            '--report-fd',
            str(report_write),
            '--lifeline-fd',
            str(lifeline_fd),
        ]
        if report_metrics:
            command.append('--report-metrics')
        if start_journal is not None:
            command += ['--start-journal', start_journal]
        try:
            popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **environment} if environment else None,
                pass_fds=(report_write, lifeline_fd),
                start_new_session=True,
            )
        except BaseException:
            os.close(report_read)
            raise
        finally:
            os.close(report_write)  # only the child writes; EOF then means the child is gone
        os.set_blocking(report_read, False)
        return cls(slot, popen, report_read)

    @property
    def report_fd(self) -> int | None:
        return self._report_fd

    @property
    def alive(self) -> bool:
        return self.exit_code is None

    @property
    def lifetime(self) -> float:
        return (self.ended_at or time.monotonic()) - self.started_at

    def read_reports(self) -> bool:
        """Take in whatever the worker wrote; False once the pipe reached EOF."""
        if self._report_fd is None:
            return False
        while True:
            try:
                data = os.read(self._report_fd, 65536)
            except BlockingIOError:
                return True
            if not data:
                return False
            for message in self._reader.feed(data):
                self._take(message)

    def _take(self, message: Mapping[str, Any]) -> None:
        event = message['event']
        if event == 'ready':
            self.ready = True
            self.broker = BrokerTarget.from_fields(message)
        elif event == 'metrics':
            try:
                self.metrics = TaskSnapshot.from_fields(message)
            except ValueError as error:
                logger.warning('worker %d sent unreadable metrics: %s', self.pid, error)
        elif event == 'summary':
            self.summary = message.get('summary') or {}
        elif event in ('load_failed', 'start_failed'):
            self.error = str(message.get('error'))
            self.error_details = str(message.get('details') or '')
            load_failed = event == 'load_failed'
            self._error_reason = EndReason.LOAD_FAILED if load_failed else EndReason.START_FAILED
        else:
            logger.warning('worker %d sent an unexpected message: %r', self.pid, message)

    def close_reports(self) -> None:
        if self._report_fd is not None:
            os.close(self._report_fd)
            self._report_fd = None

    def terminate(self) -> None:
        """Ask the worker to stop fetching, finish its task and hand back the others."""
        if self.alive:
            self.terminated = True
            _send(self.pid, signal.SIGTERM)

    def kill(self, reason: EndReason, descendants: Iterable[int] = ()) -> None:
        """SIGKILL the worker, its process group and ``descendants`` that left the group."""
        if not self.alive:
            return  # reaped: its pid may already belong to another process
        if self.kill_reason is None:
            self.kill_reason = reason
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            _send(self.pid, signal.SIGKILL)
        for pid in descendants:
            _send(pid, signal.SIGKILL)

    def exited(self, exit_code: int) -> EndReason:
        """Record the reaped exit code, read the last messages and tell why the worker ended."""
        self.exit_code = exit_code
        self.ended_at = time.monotonic()
        # the Popen object must not wait for a pid reaped elsewhere (or warn that it is running)
        self._popen.returncode = exit_code
        self.read_reports()  # everything written before the exit is in the pipe by now
        return self.end_reason

    @property
    def end_reason(self) -> EndReason:
        if self.kill_reason is not None:
            return self.kill_reason
        if self._error_reason is not None:
            return self._error_reason  # whatever happened after the worker reported it
        if self.terminated and self.exit_code == -signal.SIGTERM:
            return EndReason.FINISHED  # stopped before its SIGTERM handler was installed
        if self.exit_code is None:
            raise RuntimeError(f'worker {self.pid} has not ended')
        try:
            reason = _REASON_OF_EXIT[ChildExit(self.exit_code)]
        except (ValueError, KeyError):  # another exit code, or killed by a signal
            return EndReason.CRASHED
        if reason is EndReason.FINISHED and self.summary is None:
            return EndReason.CRASHED  # exit 0 without a summary: something called sys.exit(0)
        return reason

    def describe_exit(self) -> str:
        if self.exit_code is None:
            return 'running'
        if self.exit_code < 0:
            try:
                return f'signal {signal.Signals(-self.exit_code).name}'
            except ValueError:
                return f'signal {-self.exit_code}'
        return f'exit code {self.exit_code}'


def _send(pid: int, signal_number: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal_number)
