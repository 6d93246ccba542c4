"""The pool of worker processes: spawning, reaping, respawning with backoff, memory limit, draining.

The pool keeps one slot per concurrent worker. It never blocks: the supervisor's
loop (:mod:`.supervisor`) waits on the selector and calls :meth:`WorkerPool.on_readable`,
:meth:`WorkerPool.reap` and :meth:`WorkerPool.tick`; the pool decides what
happens to each slot. A worker that asks to stop, or a worker class that cannot
be loaded, sets :attr:`WorkerPool.stop_reason` and the supervisor drains the pool.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import selectors
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ..observability.pool_metrics import PoolMetrics
from .backoff import HEALTHY_AFTER, Backoff
from .ledger import Ledger, error_with_details
from .options import SupervisorOptions
from .process import RESPAWN_REASONS, EndReason, WorkerProcess
from .reaper import reap_children

if TYPE_CHECKING:
    from .memory import TreeMemory

logger = logging.getLogger('sergeant.supervisor')

MEMORY_CHECK_INTERVAL = 1.0  # seconds between two measurements of every worker's memory


@dataclasses.dataclass
class Slot:
    index: int
    backoff: Backoff = dataclasses.field(default_factory=Backoff)
    process: WorkerProcess | None = None
    respawn_at: float | None = None  # monotonic time at which to start a worker, if empty


class WorkerPool:
    """N slots, each holding a live worker process or waiting to respawn one."""

    def __init__(
        self,
        options: SupervisorOptions,
        selector: selectors.BaseSelector,
        ledger: Ledger,
        metrics: PoolMetrics | None = None,
    ) -> None:
        self._options = options
        self._selector = selector
        self.ledger = ledger
        self.metrics = metrics or PoolMetrics(reason.name.lower() for reason in RESPAWN_REASONS)
        # workers log to stdout in the supervisor's format unless their config says otherwise
        self._worker_environment = {'SERGEANT_LOG_FORMAT': options.log_format}
        self._slots = [Slot(index) for index in range(options.concurrent_workers)]
        self._processes: dict[int, WorkerProcess] = {}  # pid -> live (not yet reaped) worker
        # every worker holds the read end; it reads EOF when the supervisor dies, whatever the cause
        self._lifeline_read, self._lifeline_write = os.pipe()
        # one start journal per slot: a worker's replacement hands back what it held
        self._journals = tempfile.mkdtemp(prefix='sergeant-journals-')
        self._measure: Callable[[Iterable[int]], dict[int, TreeMemory]] | None = None
        if options.max_worker_memory_usage is not None:
            from .memory import measure_trees  # loaded only when a limit is set

            self._measure = measure_trees
        self._next_memory_check = 0.0
        self.draining = False
        self.stop_reason: EndReason | None = None  # STOP_ASKED or LOAD_FAILED
        self.fatal_error: str | None = None

    @property
    def processes(self) -> list[WorkerProcess]:
        return list(self._processes.values())

    @property
    def live(self) -> int:
        return len(self._processes)

    def start(self) -> None:
        for slot in self._slots:
            self._spawn(slot)

    def _spawn(self, slot: Slot) -> None:
        slot.respawn_at = None
        try:
            process = WorkerProcess.spawn(
                slot.index,
                self._options.worker_module,
                self._options.worker_class,
                self._lifeline_read,
                report_metrics=self._options.metrics_port != 0,
                environment=self._worker_environment,
                start_journal=os.path.join(self._journals, f'slot-{slot.index}'),
            )
        except OSError as error:  # out of pids, file descriptors or memory: try again later
            delay = slot.backoff.record(failed=True, early=True)
            logger.error('could not start a worker in slot %d: %s; retry in %.1f s', slot.index, error, delay)
            slot.respawn_at = time.monotonic() + delay
            return
        slot.process = process
        self._processes[process.pid] = process
        assert process.report_fd is not None
        self._selector.register(process.report_fd, selectors.EVENT_READ, process)
        self.ledger.started(process)
        self.metrics.started(process)

    def on_readable(self, process: WorkerProcess) -> None:
        if not process.read_reports():
            self._close_reports(process)

    def _close_reports(self, process: WorkerProcess) -> None:
        if process.report_fd is not None:
            self._selector.unregister(process.report_fd)
            process.close_reports()

    def reap(self) -> None:
        """Collect every ended child: workers are handled, adopted orphans just leave no zombie."""
        for pid, exit_code in reap_children():
            process = self._processes.pop(pid, None)
            if process is None:
                logger.debug('reaped orphan %d (exit %d) adopted by the supervisor', pid, exit_code)
            else:
                self._on_exit(process, exit_code)

    def _on_exit(self, process: WorkerProcess, exit_code: int) -> None:
        reason = process.exited(exit_code)
        self._close_reports(process)
        self.ledger.ended(process, reason)
        self.metrics.ended(process)
        slot = self._slots[process.slot]
        slot.process = None
        if reason is EndReason.LOAD_FAILED:
            if self.stop_reason is not EndReason.LOAD_FAILED:
                self.stop_reason = EndReason.LOAD_FAILED
                self.fatal_error = process.error or (
                    f'cannot load {self._options.worker_module}.{self._options.worker_class}'
                )
                logger.error('%s', error_with_details(self.fatal_error, process.error_details))
            return
        if reason is EndReason.STOP_ASKED and self.stop_reason is None:
            logger.info('worker %d asked to stop: stopping every worker', process.pid)
            self.stop_reason = EndReason.STOP_ASKED
        if self.draining or self.stop_reason is not None:
            return
        # "at start-up": before it was ready, in initialize(), or within HEALTHY_AFTER seconds
        failed = reason.failed or not process.ready
        early = not process.ready or reason is EndReason.START_FAILED or process.lifetime < HEALTHY_AFTER
        delay = slot.backoff.record(failed, early)
        if delay:
            logger.warning(
                'slot %d: %d worker(s) in a row ended early (the last: %s after %.1f s); '
                'backing off %.1f s before the next',
                slot.index,
                slot.backoff.failures,
                reason.value,
                process.lifetime,
                delay,
            )
        slot.respawn_at = time.monotonic() + delay
        self.metrics.respawning(reason.name.lower())

    def tick(self, now: float) -> None:
        """Start the workers that are due and enforce the memory limit."""
        if not self.draining and self.stop_reason is None:
            for slot in self._slots:
                if slot.process is None and slot.respawn_at is not None and slot.respawn_at <= now:
                    self._spawn(slot)
        if self._measure is not None and now >= self._next_memory_check:
            self._next_memory_check = now + MEMORY_CHECK_INTERVAL
            self._check_memory(self._measure)

    def _check_memory(self, measure: Callable[[Iterable[int]], dict[int, TreeMemory]]) -> None:
        limit = self._options.max_worker_memory_usage
        assert limit is not None
        watched = [process for process in self._processes.values() if process.kill_reason is None]
        measured = measure(process.pid for process in watched)
        for process in watched:
            memory = measured[process.pid]
            if memory.rss > limit:
                logger.warning(
                    'worker %d uses %d bytes with its children, above the limit of %d: replacing it',
                    process.pid,
                    memory.rss,
                    limit,
                )
                process.kill(EndReason.MEMORY_LIMIT, memory.descendants)

    def next_deadline(self) -> float | None:
        """The monotonic time :meth:`tick` has something to do, if any."""
        deadlines = [slot.respawn_at for slot in self._slots if slot.respawn_at is not None]
        if self._measure is not None and self._processes:
            deadlines.append(self._next_memory_check)
        return min(deadlines, default=None)

    def drain(self) -> None:
        """Stop respawning and ask every worker to finish its running task and hand back the rest."""
        self._stop_respawning()
        for process in self._processes.values():
            process.terminate()

    def kill_all(self) -> None:
        """Stop respawning and SIGKILL every live worker with its process group."""
        self._stop_respawning()
        for process in self._processes.values():
            process.kill(EndReason.KILLED)

    def _stop_respawning(self) -> None:
        self.draining = True
        for slot in self._slots:
            slot.respawn_at = None

    def close(self) -> None:
        for process in self._processes.values():
            self._close_reports(process)
        os.close(self._lifeline_read)
        os.close(self._lifeline_write)
        shutil.rmtree(self._journals, ignore_errors=True)
