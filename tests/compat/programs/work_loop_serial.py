"""The serial executor's work loop on Redis: hooks, handlers, retries, requeues and the summary.

One worker (``max_retries=2``) runs tasks that return, raise, retry until they reach
max retries, fail and retry from ``on_failure``, requeue once, push a child task that
inherits the trace id, and retry with a delay; every hook and handler call is recorded
with its arguments, per task. Two more workers check ``max_tasks_per_run`` with
``tasks_per_transaction`` (what is left in the queue, and in which order) and a requeue
with ``priority='HIGH'`` (which runs next).
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from _observe import emit, summary_view, typed
from _recorder import Recorder, Task


class Handlers(Recorder):
    config_overrides: ClassVar[dict[str, Any]] = {'max_retries': 2, 'max_tasks_per_run': 14}

    def on_failure(self, task: Task, exception: Exception) -> None:
        super().on_failure(task, exception)
        if task.kwargs['do'] == 'raise-then-retry':
            self.retry(task=task)

    def work(self, task: Task) -> Any:
        task_id, action = task.kwargs['id'], task.kwargs['do']
        self.record(task, 'work', task.run_count, task.trace_id, self.get_trace_id())
        if action == 'return':
            return {'answer': 42, 'id': task_id}
        if action == 'raise' or (action == 'raise-then-retry' and task.run_count == 0):
            raise ValueError(f'{task_id} failed')
        if action == 'retry':
            self.retry(task=task)
        if action == 'requeue-once' and task_id not in self.requeued:
            self.requeued.add(task_id)
            self.requeue(task=task)
        if action == 'push-child':
            self.push_task(kwargs={'id': 'child', 'do': 'return'})
        if action == 'delayed-retry' and task.run_count == 0:
            self.retry(task=task, consumable_from=time.time() + 0.5)
        return None


class Transactions(Recorder):
    queue_suffix = 'transactions'
    config_overrides: ClassVar[dict[str, Any]] = {'max_tasks_per_run': 5, 'tasks_per_transaction': 3}

    def work(self, task: Task) -> Any:
        self.order.append(task.kwargs['id'])


class HighRequeue(Recorder):
    queue_suffix = 'high'
    config_overrides: ClassVar[dict[str, Any]] = {'max_tasks_per_run': 4}

    def work(self, task: Task) -> Any:
        self.order.append(task.kwargs['id'])
        if task.kwargs['id'] == 'x' and 'x' not in self.requeued:
            self.requeued.add('x')
            self.requeue(task=task, priority='HIGH')


def run(worker: Recorder) -> dict[str, Any]:
    summary = worker.work_loop()
    return {
        'summary': summary_view(summary),
        'calls': dict(worker.calls),
        'order': typed(worker.order),
        'left': typed(worker.number_of_enqueued_tasks(include_delayed=True)),
        'left_ids': typed([task.kwargs['id'] for task in worker.get_next_tasks(number_of_tasks=100)]),
    }


def main() -> None:
    handlers = Handlers()
    handlers.init_worker()
    actions = ['return', 'none', 'raise', 'retry', 'raise-then-retry', 'requeue-once', 'delayed-retry']
    handlers.push_tasks(kwargs_list=[{'id': action, 'do': action} for action in actions])
    handlers.push_task(kwargs={'id': 'parent', 'do': 'push-child'}, trace_id='trace-1')
    transactions = Transactions()
    transactions.init_worker()
    transactions.push_tasks(kwargs_list=[{'id': f't{number}', 'do': 'return'} for number in range(7)])
    high = HighRequeue()
    high.init_worker()
    high.push_tasks(kwargs_list=[{'id': name, 'do': 'return'} for name in ('x', 'y', 'z')])
    emit({'handlers': run(handlers), 'transactions': run(transactions), 'high_requeue': run(high)})


if __name__ == '__main__':
    main()
