"""What the stream's events become: outcome counts, handlers, log lines and metrics."""

from __future__ import annotations

from collections import Counter

from ..connector import DeadLetter
from ..interrupts import WorkerException, WorkerInterrupt
from ..logging.outages import OutageLog
from ..metrics import BatchClock, WorkerMetrics
from ..objects import Task
from .hooks import Hooks
from .stream import Outcome, StreamEvents


class LoopEvents(StreamEvents):
    """Turns stream events into the worker's logs, handlers, outcome counts and metrics."""

    def __init__(
        self, worker: Hooks, outcomes: Counter[str], metrics: WorkerMetrics | None, clock: BatchClock | None
    ) -> None:
        self._worker = worker
        self._outcomes = outcomes
        self._metrics = metrics
        self._clock = clock
        self._fetch_outage = OutageLog(worker.logger, 'fetch tasks')

    def waiting(self) -> None:
        if self._clock is not None:
            self._clock.batch_done()

    def received(self) -> None:
        if self._clock is not None:
            self._clock.batch_received()

    def dead_lettered(self, letter: DeadLetter) -> None:
        self._outcomes['dead_letter'] += 1
        if self._metrics is not None:
            self._metrics.counted_without_running()
        if self._worker.config.logging.events.on_dead_letter:
            self._worker.logger.error('payload dead-lettered: %s', letter.reason)

    def redeliveries_exhausted(self, task: Task) -> None:
        self._outcomes[Outcome.MAX_RETRIES.value] += 1
        if self._metrics is not None:
            self._metrics.counted_without_running()
        try:
            self._worker.handle_event('on_max_retries', task=task)
        except WorkerInterrupt:
            raise
        except WorkerException:
            pass  # retry/requeue make no sense for a task that keeps killing its worker
        except Exception as error:
            self._worker.logger.error('on_max_retries handler failed: %s', error, exc_info=True)

    def starving(self, seconds_without_tasks: float) -> None:
        try:
            self._worker.handle_event('on_starvation', time_with_no_tasks=int(seconds_without_tasks))
        except WorkerInterrupt:
            raise
        except Exception as error:
            self._worker.logger.error('on_starvation handler failed: %s', error, exc_info=True)

    def fetch_failed(self, error: Exception) -> None:
        if self._metrics is not None:
            self._metrics.fetch_failed()
        self._fetch_outage.failed(error)

    def fetched(self) -> None:
        self._fetch_outage.worked()
