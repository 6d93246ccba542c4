"""The supervisor's ``/metrics``: Prometheus families built from the pool's view and the broker probe.

Families (``worker`` is the worker's ``config.name``, ``queue`` the queue it consumes):

==========================================  =========  ====================================================
``sergeant_tasks_total``                    counter    tasks by ``worker`` and ``outcome``
``sergeant_task_duration_seconds``          histogram  time to run a task (with its hooks), by ``worker``
``sergeant_task_queue_wait_seconds``        histogram  time from push (or due time) to the start of the run
``sergeant_tasks_in_flight``                gauge      tasks being run right now, by ``worker``
``sergeant_queue_length``                   gauge      tasks in the queue by ``queue`` and ``state``:
                                                       ready, delayed, in_flight (leased), dead_letter
``sergeant_broker_up``                      gauge      1 when the last broker probe succeeded
``sergeant_broker_errors_total``            counter    by ``source``: worker (failed fetches), probe
``sergeant_worker_processes``               gauge      worker processes alive
``sergeant_worker_slots``                   gauge      worker processes the supervisor keeps running
``sergeant_worker_respawns_total``          counter    workers replaced, by ``reason`` the previous ended
``sergeant_worker_resident_memory_bytes``   gauge      RSS of each worker with its children, by ``slot``
``sergeant_worker_memory_limit_bytes``      gauge      ``--max-worker-memory-usage``, when set
==========================================  =========  ====================================================

The supervisor's own ``process_*`` and ``python_*`` families come from
prometheus_client's collectors (see :mod:`sergeant.observability`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from ..metrics.snapshot import OUTCOMES
from .pool import PoolView
from .probe import BrokerProbe

QUEUE_STATES = ('ready', 'delayed', 'in_flight', 'dead_letter')

MeasureMemory = Callable[[Iterable[int]], Mapping[int, int]]  # pids -> RSS bytes of each with its children


@dataclasses.dataclass(frozen=True)
class _Family:
    name: str
    kind: str  # counter, gauge or histogram
    help: str
    labels: tuple[str, ...] = ()

    def counter(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self.help, labels=self.labels)

    def gauge(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.help, labels=self.labels)

    def histogram(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self.name, self.help, labels=self.labels)

    def empty(self) -> Metric:
        return {'counter': self.counter, 'gauge': self.gauge, 'histogram': self.histogram}[self.kind]()


TASKS = _Family('sergeant_tasks', 'counter', 'Tasks processed, by outcome.', ('worker', 'outcome'))
DURATION = _Family(
    'sergeant_task_duration_seconds', 'histogram', 'Time to run a task, hooks included.', ('worker',)
)
QUEUE_WAIT = _Family(
    'sergeant_task_queue_wait_seconds',
    'histogram',
    'Time from a task becoming ready (its push, or due time when delayed) to the start of its run.',
    ('worker',),
)
IN_FLIGHT = _Family('sergeant_tasks_in_flight', 'gauge', 'Tasks being run right now.', ('worker',))
QUEUE_LENGTH = _Family(
    'sergeant_queue_length',
    'gauge',
    'Tasks in the queue: ready, delayed, in_flight (leased by a worker) or dead_letter.',
    ('queue', 'state'),
)
BROKER_UP = _Family('sergeant_broker_up', 'gauge', '1 when the last broker probe succeeded.')
BROKER_ERRORS = _Family(
    'sergeant_broker_errors',
    'counter',
    'Broker errors: failed fetches in workers, failed probes of the supervisor.',
    ('source',),
)
PROCESSES = _Family('sergeant_worker_processes', 'gauge', 'Worker processes alive.')
SLOTS = _Family('sergeant_worker_slots', 'gauge', 'Worker processes the supervisor keeps running.')
RESPAWNS = _Family(
    'sergeant_worker_respawns',
    'counter',
    'Worker processes replaced, by why the previous one ended.',
    ('reason',),
)
MEMORY = _Family(
    'sergeant_worker_resident_memory_bytes',
    'gauge',
    'Resident memory of a worker process with its children.',
    ('slot',),
)
MEMORY_LIMIT = _Family(
    'sergeant_worker_memory_limit_bytes', 'gauge', 'Memory above which a worker is replaced.'
)
FAMILIES = (
    TASKS,
    DURATION,
    QUEUE_WAIT,
    IN_FLIGHT,
    QUEUE_LENGTH,
    BROKER_UP,
    BROKER_ERRORS,
    PROCESSES,
    SLOTS,
    RESPAWNS,
    MEMORY,
    MEMORY_LIMIT,
)


class SergeantCollector(Collector):
    """Builds every ``sergeant_*`` family at each scrape; nothing is stored between scrapes."""

    def __init__(
        self,
        view: Callable[[], PoolView],
        probe: BrokerProbe | None,
        slots: int,
        memory_limit: int | None,
        measure_memory: MeasureMemory,
    ) -> None:
        self._view = view
        self._probe = probe
        self._slots = slots
        self._memory_limit = memory_limit
        self._measure_memory = measure_memory

    def describe(self) -> Iterator[Metric]:
        for family in FAMILIES:
            yield family.empty()

    def collect(self) -> Iterator[Metric]:
        pool = self._view()
        yield from self._tasks(pool)
        yield from self._broker(pool)
        yield from self._workers(pool)

    def _tasks(self, pool: PoolView) -> Iterator[Metric]:
        tasks, durations, in_flight = TASKS.counter(), DURATION.histogram(), IN_FLIGHT.gauge()
        waits = QUEUE_WAIT.histogram()
        for worker, totals in sorted(pool.tasks.items()):
            for outcome in (*OUTCOMES, *sorted(set(totals.outcomes) - set(OUTCOMES))):
                tasks.add_metric([worker, outcome], totals.outcomes.get(outcome, 0))
            buckets = [(_bound(bound), count) for bound, count in totals.cumulative_buckets()]
            durations.add_metric([worker], buckets, totals.duration_sum)
            wait_buckets = [(_bound(bound), count) for bound, count in totals.cumulative_wait_buckets()]
            waits.add_metric([worker], wait_buckets, totals.wait_sum)
            in_flight.add_metric([worker], totals.in_flight)
        yield from (tasks, durations, waits, in_flight)

    def _broker(self, pool: PoolView) -> Iterator[Metric]:
        errors = BROKER_ERRORS.counter()
        errors.add_metric(['worker'], sum(totals.fetch_errors for totals in pool.tasks.values()))
        errors.add_metric(['probe'], self._probe.errors if self._probe is not None else 0)
        yield errors
        state = self._probe.state if self._probe is not None else None
        if state is None:
            return
        up = BROKER_UP.gauge()
        up.add_metric([], 1 if state.reachable else 0)
        yield up
        if state.reachable:
            lengths = QUEUE_LENGTH.gauge()
            for queue_state in QUEUE_STATES:
                lengths.add_metric([state.queue, queue_state], state.lengths.get(queue_state, 0))
            yield lengths

    def _workers(self, pool: PoolView) -> Iterator[Metric]:
        processes, slots, respawns = PROCESSES.gauge(), SLOTS.gauge(), RESPAWNS.counter()
        processes.add_metric([], pool.processes)
        slots.add_metric([], self._slots)
        for reason, count in sorted(pool.respawns.items()):
            respawns.add_metric([reason], count)
        yield from (processes, slots, respawns)
        memory = MEMORY.gauge()
        rss = self._measure_memory(pool.pids_by_slot.values())
        for slot, pid in sorted(pool.pids_by_slot.items()):
            if pid in rss:
                memory.add_metric([str(slot)], rss[pid])
        yield memory
        if self._memory_limit is not None:
            limit = MEMORY_LIMIT.gauge()
            limit.add_metric([], self._memory_limit)
            yield limit


def _bound(bound: float) -> str:
    return '+Inf' if bound == float('inf') else repr(bound)
