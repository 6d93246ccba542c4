"""The supervisor's main loop: signals, waiting, draining and the exit code.

The loop sleeps in one ``select`` on the workers' report pipes and a signal
wake-up pipe, so an idle supervisor costs (almost) no CPU yet reacts at once to
a message, a child's death (SIGCHLD) or SIGTERM/SIGINT. It wakes at least every
:data:`MAX_WAIT` seconds, to respawn workers that are due and to check memory.

Stopping: the first SIGTERM/SIGINT (or a worker asking to stop) sends SIGTERM
to every worker — they stop fetching, finish the running task and hand
prefetched tasks back — and waits up to ``drain_timeout``; workers still running
then are SIGKILLed (their leased tasks are delivered again once their leases
expire). A second SIGTERM/SIGINT kills every worker at once.

With ``--metrics-port`` (9808 by default; 0 turns it off) the supervisor serves
``/metrics``, ``/healthz`` and ``/readyz`` (:mod:`sergeant.observability`) from
daemon threads, started before the first worker and stopped after the last. A
port asked for that is taken is a start-up error; the default port taken (say,
by a second supervisor on the host) is a warning, and the supervisor runs on
without the endpoints, its workers then counting nothing for them.

:class:`Supervisor` is also Sergeant 0.27's programmatic supervisor:
``Supervisor(worker_module_name, worker_class_name, concurrent_workers,
max_worker_memory_usage=None, logger=None).start()``. The command line builds it
with :meth:`Supervisor.from_options` and calls :meth:`Supervisor.run`.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import enum
import errno
import logging
import os
import selectors
import signal
import sys
import time
import types
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, NoReturn

from ..observability.pool_metrics import PoolMetrics
from .ledger import Ledger
from .options import SupervisorOptions
from .pool import WorkerPool
from .process import RESPAWN_REASONS, EndReason
from .reaper import become_subreaper

if TYPE_CHECKING:
    from ..observability import Observability, SupervisorStatus

LOGGER_NAME = 'sergeant.supervisor'  # every module of the supervisor process logs here
logger = logging.getLogger(LOGGER_NAME)

MAX_WAIT = 1.0  # longest sleep of the loop, a backstop in case a wake-up was missed
KILL_WAIT = 10.0  # how long to wait for SIGKILLed workers to be reaped before exiting anyway
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

SignalHandler = Callable[[int, types.FrameType | None], object] | int | signal.Handlers | None


class SupervisorExit(enum.IntEnum):
    """Exit codes of the supervisor process."""

    OK = 0  # stopped by a signal after draining, or a worker asked to stop
    ERROR = 1  # the supervisor itself failed (Python's code for an uncaught exception)
    USAGE = 2  # bad flags or environment variables (argparse's code)
    WORKER_NOT_LOADABLE = 3  # the worker module or class cannot be loaded
    FORCED_STOP = 4  # a second SIGTERM/SIGINT killed the workers without waiting


class _Phase(enum.Enum):
    RUNNING = 'running'
    DRAINING = 'draining'  # SIGTERM sent, waiting up to drain_timeout
    KILLING = 'killing'  # SIGKILL sent, waiting for the processes to be reaped


class Supervisor:
    """Runs the worker pool until it is stopped; :meth:`run` and :meth:`start` need the main thread.

    The arguments are Sergeant 0.27's: the worker module and class, how many
    workers, the memory limit in bytes of one worker with its children, and a
    logger that gets the supervisor's log records (without one, they go to
    stderr). Every other option keeps its default; :meth:`from_options` sets them all.
    """

    def __init__(
        self,
        worker_module_name: str,
        worker_class_name: str,
        concurrent_workers: int,
        max_worker_memory_usage: int | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.options = SupervisorOptions(
            worker_module=worker_module_name,
            worker_class=worker_class_name,
            concurrent_workers=concurrent_workers,
            max_worker_memory_usage=max_worker_memory_usage,
        )
        self.logger = logger
        self.ledger = Ledger()
        self.pool_metrics = PoolMetrics(reason.name.lower() for reason in RESPAWN_REASONS)
        self._signals: collections.deque[int] = collections.deque()
        self._phase = _Phase.RUNNING
        self._deadline: float | None = None
        self._forced = False
        self._loop_turned_at = time.monotonic()  # read by /healthz from another thread

    @classmethod
    def from_options(cls, options: SupervisorOptions, logger: logging.Logger | None = None) -> Supervisor:
        """The supervisor with every option, as the command line gives them."""
        supervisor = cls(
            options.worker_module,
            options.worker_class,
            options.concurrent_workers,
            options.max_worker_memory_usage,
            logger,
        )
        supervisor.options = options
        return supervisor

    def start(self) -> NoReturn:
        """Supervise until stopped, then end the process with the exit code: :class:`SupervisorExit`.

        It never returns, as in Sergeant 0.27, whose users' scripts end with
        ``start()`` and count on the process ending there: with status 0 once a
        SIGTERM has drained the workers, so that a process manager sees a clean
        stop, and non-zero otherwise (3 when the worker class cannot be loaded).
        :meth:`run` returns the exit code instead.
        """
        raise SystemExit(int(self.run()))

    def run(self) -> SupervisorExit:
        """Supervise until stopped; returns the exit code for the process."""
        with _logging_to(self.logger, self.options):
            return self._supervise()

    def _supervise(self) -> SupervisorExit:
        selector = selectors.DefaultSelector()
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_read, False)
        os.set_blocking(wake_write, False)
        selector.register(wake_read, selectors.EVENT_READ, None)
        restore_signals = self._install_signal_handlers(wake_write)
        observability: Observability | None = None
        pool: WorkerPool | None = None
        try:
            try:
                observability = self._serve_metrics()
            except OSError:
                return SupervisorExit.ERROR
            options = self.options
            if observability is None:
                options = dataclasses.replace(options, metrics_port=0)  # workers count for no one then
            pool = WorkerPool(options, selector, self.ledger, self.pool_metrics)
            adopting = become_subreaper()
            logger.info(
                'supervising %d worker(s) of %s.%s (memory limit %s, drain timeout %g s, adopts orphans: %s)',
                options.concurrent_workers,
                options.worker_module,
                options.worker_class,
                options.max_worker_memory_usage or 'none',
                options.drain_timeout,
                'yes' if adopting or os.getpid() == 1 else 'no',
            )
            pool.start()
            exit_code = self._loop(pool, selector, wake_read)
        finally:
            if pool is not None:
                pool.kill_all()  # only live workers are left here, e.g. after an unexpected error
                pool.close()
            if observability is not None:
                observability.stop()
            restore_signals()
            selector.close()
            os.close(wake_read)
            os.close(wake_write)
        logger.info('supervisor exiting: %s (%d)', exit_code.name, exit_code)
        return exit_code

    def _serve_metrics(self) -> Observability | None:
        """Serve /metrics; None when off or the default port is taken, OSError (logged) on failure."""
        address, port = self.options.metrics_address, self.options.serving_port
        if port == 0:
            return None
        observability = self._observability(port)
        try:
            observability.start()
        except OSError as error:
            if self.options.metrics_port is None and error.errno == errno.EADDRINUSE:
                logger.warning(
                    'default metrics port %d is taken, by another supervisor on this host perhaps: running '
                    'without /metrics, /healthz and /readyz; set --metrics-port or SERGEANT_METRICS_PORT '
                    'to a free port to serve them',
                    port,
                )
                return None
            logger.error(
                'cannot serve /metrics on %s:%d: %s; choose another --metrics-port, or 0 to serve nothing',
                address,
                port,
                error.strerror or error,
            )
            raise
        logger.info('serving /metrics, /healthz and /readyz on %s:%d', address, port)
        return observability

    def _observability(self, port: int) -> Observability:
        from ..observability import Observability  # prometheus_client and http.server only when asked
        from .memory import measure_trees

        def measure_memory(pids: Iterable[int]) -> dict[int, int]:
            return {pid: tree.rss for pid, tree in measure_trees(pids).items()}

        options = self.options
        return Observability(
            options.metrics_address,
            port,
            self.pool_metrics.view,
            self.status,
            options.concurrent_workers,
            options.max_worker_memory_usage,
            measure_memory,
        )

    def status(self) -> SupervisorStatus:
        """What the health probes need to know about the loop; safe to call from any thread."""
        from ..observability import SupervisorStatus

        return SupervisorStatus(self._loop_turned_at, self._phase is not _Phase.RUNNING)

    def _install_signal_handlers(self, wake_fd: int) -> Callable[[], None]:
        def on_stop_signal(signal_number: int, frame: types.FrameType | None) -> None:
            self._signals.append(signal_number)  # handled by the loop, outside the handler

        def on_child_ended(signal_number: int, frame: types.FrameType | None) -> None:
            pass  # a Python-level handler makes SIGCHLD write to the wake-up fd; the loop reaps

        # the C-level handler writes each signal to wake_fd, which wakes the select at once
        previous_wakeup = signal.set_wakeup_fd(wake_fd, warn_on_full_buffer=False)
        previous: dict[int, SignalHandler] = {}
        for signal_number in _STOP_SIGNALS:
            previous[signal_number] = signal.signal(signal_number, on_stop_signal)
        previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, on_child_ended)

        def restore() -> None:
            for signal_number, handler in previous.items():
                signal.signal(signal_number, handler if handler is not None else signal.SIG_DFL)
            signal.set_wakeup_fd(previous_wakeup)

        return restore

    def _loop(self, pool: WorkerPool, selector: selectors.BaseSelector, wake_fd: int) -> SupervisorExit:
        while True:
            self._loop_turned_at = time.monotonic()
            for key, _events in selector.select(self._timeout(pool)):
                if key.data is None:
                    _empty(wake_fd)
                else:
                    pool.on_readable(key.data)
            pool.reap()
            self._take_signals(pool)
            now = time.monotonic()
            pool.tick(now)
            if self._phase is _Phase.RUNNING and pool.stop_reason is not None:
                self._drain(pool, f'{pool.stop_reason.value}')
            if self._phase is not _Phase.RUNNING and pool.live == 0:
                break
            if self._deadline is not None and now >= self._deadline:
                if self._phase is _Phase.KILLING:
                    pids = ', '.join(str(process.pid) for process in pool.processes)
                    logger.error('workers %s outlived SIGKILL by %g s; exiting anyway', pids, KILL_WAIT)
                    break
                logger.warning(
                    'drain timeout (%g s) reached: killing %d worker(s) still running; '
                    'their tasks are delivered again once their leases expire',
                    self.options.drain_timeout,
                    pool.live,
                )
                self._kill(pool)
        if pool.stop_reason is EndReason.LOAD_FAILED:
            return SupervisorExit.WORKER_NOT_LOADABLE
        return SupervisorExit.FORCED_STOP if self._forced else SupervisorExit.OK

    def _timeout(self, pool: WorkerPool) -> float:
        now = time.monotonic()
        deadlines = [deadline for deadline in (pool.next_deadline(), self._deadline) if deadline is not None]
        return max(0.0, min([MAX_WAIT, *(deadline - now for deadline in deadlines)]))

    def _take_signals(self, pool: WorkerPool) -> None:
        while self._signals:
            name = signal.Signals(self._signals.popleft()).name
            if self._phase is _Phase.RUNNING:
                self._drain(pool, f'{name} received')
            elif not self._forced:
                logger.warning('%s received again: killing every worker now', name)
                self._forced = True
                self._kill(pool)

    def _drain(self, pool: WorkerPool, why: str) -> None:
        logger.info(
            '%s: stopping %d worker(s), waiting up to %g s for running tasks to finish '
            '(send SIGTERM/SIGINT again to kill them at once)',
            why,
            pool.live,
            self.options.drain_timeout,
        )
        self._phase = _Phase.DRAINING
        self._deadline = time.monotonic() + self.options.drain_timeout
        pool.drain()

    def _kill(self, pool: WorkerPool) -> None:
        self._phase = _Phase.KILLING
        self._deadline = time.monotonic() + KILL_WAIT
        pool.kill_all()


def _empty(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def configure_logging(level: int, log_format: str = 'text') -> None:
    """Log the supervisor's own messages to stderr (workers log through their own config)."""
    supervisor_logger = logging.getLogger(LOGGER_NAME)
    supervisor_logger.setLevel(level)
    if not supervisor_logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        formatter: logging.Formatter
        if log_format == 'json':
            from ..logging.json_lines import JsonLinesFormatter

            formatter = JsonLinesFormatter()
        else:
            formatter = logging.Formatter(
                '%(asctime)s sergeant.supervisor %(process)d %(levelname)s %(message)s'
            )
        handler.setFormatter(formatter)
        supervisor_logger.addHandler(handler)
        supervisor_logger.propagate = False


class _ForwardTo(logging.Handler):
    """Hands each record of the supervisor's logger to a user's logger, as if logged there."""

    def __init__(self, target: logging.Logger) -> None:
        super().__init__()
        self.target = target
        # handle() holds this handler's lock around emit(), so only this thread can come back in
        self._forwarding = False

    def emit(self, record: logging.LogRecord) -> None:
        # back in already when the target is the supervisor's logger or below it: it has the record
        if self._forwarding or not self.target.isEnabledFor(record.levelno):
            return
        self._forwarding = True
        try:
            self.target.handle(record)
        finally:
            self._forwarding = False


@contextlib.contextmanager
def _logging_to(target: logging.Logger | None, options: SupervisorOptions) -> Iterator[None]:
    """Send the supervisor's records to ``target``, at its level, while inside; without one, to stderr."""
    if target is None:
        configure_logging(options.logging_level, options.log_format)
        yield
        return
    supervisor_logger = logging.getLogger(LOGGER_NAME)
    saved_level, saved_propagate = supervisor_logger.level, supervisor_logger.propagate
    forward = _ForwardTo(target)
    supervisor_logger.setLevel(target.getEffectiveLevel())
    supervisor_logger.propagate = False  # the target passes them on to its ancestors if it propagates
    supervisor_logger.addHandler(forward)
    try:
        yield
    finally:
        supervisor_logger.removeHandler(forward)
        supervisor_logger.setLevel(saved_level)
        supervisor_logger.propagate = saved_propagate


def run(options: SupervisorOptions) -> int:
    """Supervise until stopped, logging to stderr; returns the process exit code."""
    return int(Supervisor.from_options(options).run())
