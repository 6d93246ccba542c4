"""The serial executor's loop for workers with no hooks, in both of its shapes (given / when / then).

A run whose tasks need nothing around them but an acknowledgement (queue waits at
most, observed per run) takes the bare loop; a metered worker's first run, which
times each task until it knows the tasks are fast, takes the general one. What a
worker's user can observe must not tell them apart.
"""

from __future__ import annotations

from typing import Any

import pytest

from sergeant import Task
from sergeant.loop.summary import LoopEnd

from .conftest import Build, ConfiguredWorker

ENDINGS = {3: 'fail', 6: 'stop'}


class Plain(ConfiguredWorker):
    """Overrides no hook: only ``work``, which fails or stops the loop as ``then`` says."""

    def work(self, task: Task) -> Any:
        self.calls.append(('work', task.kwargs['n']))
        if task.kwargs['then'] == 'fail':
            raise ValueError('failed on purpose')
        if task.kwargs['then'] == 'stop':
            self.stop()
        return None


@pytest.mark.parametrize('metered', [False, True], ids=['bare', 'metered'])
def test_each_task_is_settled_as_it_ended_and_the_unstarted_go_back(
    build_worker: Build, metered: bool
) -> None:
    # given ten tasks in one transaction: the fourth fails, the seventh stops the loop
    worker = build_worker(Plain, tasks_per_transaction=10)
    metrics = worker.enable_task_metrics() if metered else None
    worker.push_tasks([{'n': n, 'then': ENDINGS.get(n, 'succeed')} for n in range(10)])

    # when the worker runs them
    summary = worker.work_loop()

    # then the tasks up to the stop ran once each, were counted, and none is leased any more;
    # the three after the stop are ready again
    assert worker.events('work') == list(range(7))
    assert dict(worker.outcomes) == {'success': 5, 'failure': 1}
    assert summary['reason'] is LoopEnd.STOP
    assert worker.number_of_enqueued_tasks() == 3
    assert worker.broker.connector.in_flight('tasks') == 0
    if metrics is not None:  # the general loop ran (the first run): it observed each started task's wait
        assert sum(metrics.queue_waits.counts) == 7


@pytest.mark.parametrize('metered', [False, True], ids=['bare', 'metered'])
def test_tasks_run_in_many_transactions_are_all_acknowledged(build_worker: Build, metered: bool) -> None:
    # given more tasks than one transaction holds
    worker = build_worker(Plain, tasks_per_transaction=7, max_tasks_per_run=50)
    metrics = worker.enable_task_metrics() if metered else None
    worker.push_tasks([{'n': n, 'then': 'succeed'} for n in range(50)])

    # when the worker runs them all
    summary = worker.work_loop()

    # then each ran once, in order, and the queue holds nothing, leased or not
    assert worker.events('work') == list(range(50))
    assert dict(worker.outcomes) == {'success': 50}
    assert summary['reason'] is LoopEnd.MAX_TASKS_PER_RUN
    assert worker.number_of_enqueued_tasks() == 0
    assert worker.broker.connector.in_flight('tasks') == 0
    if metrics is not None:  # the first run timed each task, the bare runs after it observed waits per run
        assert sum(metrics.queue_waits.counts) == 50
