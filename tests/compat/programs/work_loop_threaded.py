"""The threaded executor's work loop on Redis: handlers, trace ids per thread, timeouts and stop.

A worker with three threads and a one second timeout runs quick tasks (each with its
own trace id, checked with ``get_trace_id`` from its thread), a failing one, one that
retries once, and a slow one the killer thread interrupts (what the task itself sees is
recorded too). A second threaded worker calls ``stop()`` from a task once the others
have finished: ``on_stop`` runs and the summary says stop. Calls are kept per execution
of a task (``<id>@<run_count>``): a retried task may run again in another thread before
the first thread is done with its handlers.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from _observe import emit, summary_view, typed, wait_for
from _recorder import Recorder, Task

import sergeant.config

SLOW_TASK_SECONDS = 6.0  # far beyond the timeout: only the killer ends it early


class PerExecution(Recorder):
    """Records a thread's calls under the execution its last ``pre_work`` started."""

    def initialize(self) -> None:
        super().initialize()
        self.execution = threading.local()

    def record(self, task: Task, *call: Any) -> None:
        key = getattr(self.execution, 'key', None) or str(task.kwargs['id'])
        self.calls[key].append([typed(part) for part in call])

    def pre_work(self, task: Task) -> None:
        self.execution.key = f'{task.kwargs["id"]}@{task.run_count}'
        super().pre_work(task)


class Threaded(PerExecution):
    config_overrides: ClassVar[dict[str, Any]] = {
        'number_of_threads': 3,
        'max_tasks_per_run': 7,
        'max_retries': 3,
        'timeouts': sergeant.config.Timeouts(timeout=1.0),
    }

    def work(self, task: Task) -> Any:
        action = task.kwargs['do']
        self.record(task, 'work', task.run_count, task.trace_id == self.get_trace_id())
        if action == 'raise':
            raise KeyError('missing')
        if action == 'retry-once' and task.run_count == 0:
            self.retry(task=task)
        if action == 'slow':
            self.sleep_recording_interruption(task, SLOW_TASK_SECONDS, 'work was not interrupted')
        return threading.current_thread() is not threading.main_thread()


class Stopping(PerExecution):
    queue_suffix: ClassVar[str] = 'stop'
    config_overrides: ClassVar[dict[str, Any]] = {'number_of_threads': 2, 'max_tasks_per_run': 3}

    def initialize(self) -> None:
        super().initialize()
        self.done: list[str] = []
        self.logs: dict[str, Any] = {}

    def work(self, task: Task) -> Any:
        self.record(task, 'work', task.run_count)
        if task.kwargs['do'] == 'stop':
            self.record(task, 'others done', wait_for(lambda: len(self.done) == 2, timeout=10))
            self.stop()
        self.done.append(task.kwargs['id'])

    def on_stop(self, task: Task) -> None:
        super().on_stop(task)
        self.logs['on_stop'] = self.log_records.take()


def main() -> None:
    threaded = Threaded()
    threaded.init_worker()
    actions = ['return', 'return', 'return', 'raise', 'retry-once', 'slow']
    threaded.push_tasks(
        kwargs_list=[{'id': f'{action}-{index}', 'do': action} for index, action in enumerate(actions)]
    )
    stopping = Stopping()
    stopping.init_worker()
    stopping.push_tasks(kwargs_list=[{'id': 'a', 'do': 'return'}, {'id': 'b', 'do': 'return'}])
    stopping.push_task(kwargs={'id': 'stop', 'do': 'stop'})
    observed: dict[str, Any] = {}
    for name, worker in (('threaded', threaded), ('stopping', stopping)):
        summary = worker.work_loop()
        observed[name] = {
            'summary': summary_view(summary),
            'calls': dict(worker.calls),
            'left': typed(worker.number_of_enqueued_tasks(include_delayed=True)),
        }
    observed['stopping']['log'] = stopping.logs
    emit(observed)


if __name__ == '__main__':
    main()
