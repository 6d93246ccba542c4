"""One consume loop, assembled: leases, journal, runner, stream and an executor, then torn down.

:meth:`sergeant.worker.Worker.work_loop` calls :func:`consume` between
``initialize`` and ``finalize``; it returns when the stream ends (``max_tasks_per_run``,
a stop or respawn signal) and raises what ended it otherwise. The executor comes
from ``executor_for`` (:func:`sergeant.executor.create_executor`), which runs each
task through the runner and settles it on the stream.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from ..codec import TaskCodec
from ..connector import process_lease_owner
from ..metrics import WorkerMetrics
from ..objects import Task
from .events import LoopEvents
from .hooks import Hooks
from .journal import StartJournal
from .leases import LeaseKeeper
from .runner import TaskRunner, young_collections_at_most_every
from .stream import Outcome, StopFlag, TaskStream

# run(task, time_limit) executes one task; time_limit is entered around the user's work() only
RunTask = Callable[[Task, AbstractContextManager[object] | None], Outcome]

# While the loop runs, the collector looks at young objects only after this many
# allocations (CPython's default is 700): a transaction's tasks are allocated
# together and stay alive until they ran, so frequent young collections find
# nothing to free and only promote them (about 15% of a no-op task's cost).
_YOUNG_GC_THRESHOLD = 10_000


class Executor(Protocol):
    def execute(self, stream: TaskStream) -> None:
        """Run every task of the stream and settle each one; return when the stream ends.

        Stop and respawn signals raised by a task propagate once the executor is idle.
        """


def consume(
    worker: Hooks,
    base: type,
    codec: TaskCodec,
    executor_for: Callable[[TaskRunner], Executor],
    *,
    outcomes: Counter[str],
    task_of_thread: threading.local,
    outcomes_guard: threading.Lock,
    journal: StartJournal | None,
    metrics: WorkerMetrics | None,
    stop_flag: StopFlag,
) -> None:
    """Run tasks of ``worker.config.name`` until the stream ends (see the module docstring).

    ``base`` is the class whose hooks do nothing; ``stop_flag.received_stop_signal``
    is asked before every task.
    """
    config = worker.config
    lease = config.delivery.lease
    keeper = None
    if lease is None:
        journal = None  # at-most-once: nothing to hand back after a crash
    else:
        owner = codec.connector.lease_owner = process_lease_owner()
        keeper = LeaseKeeper(codec.connector, config.name, lease, worker.logger)
        keeper.start()
        if journal is not None:
            journal.begin(owner, config.name)
    guard = outcomes_guard if config.number_of_threads > 1 else None
    durations = metrics.durations if metrics is not None else None
    runner = TaskRunner(worker, base, task_of_thread, outcomes, guard, durations)
    clock = runner.batch_clock
    events = LoopEvents(worker, outcomes, metrics, clock)
    waits = metrics.queue_waits if metrics is not None else None
    stream = TaskStream(codec, config, events, keeper, stop_flag, journal, waits)
    if metrics is not None:
        metrics.loop_started(lambda: stream.delivered)
    try:
        with young_collections_at_most_every(_YOUNG_GC_THRESHOLD):
            executor_for(runner).execute(stream)
    finally:
        if clock is not None:
            clock.close()  # before close(): tasks received then are handed back, not run
        if metrics is not None:
            metrics.loop_ended()
        stream.close()
        if journal is not None:
            journal.end()
