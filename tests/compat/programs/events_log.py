"""The worker's event log lines (every ``LoggingEvents`` flag on), seen by a handler in ``Logging.handlers``.

A serial worker (``max_retries=1``, ``timeout=1``) runs a task that succeeds, one that
fails, one that times out, one that retries once, one that reaches max retries and one
requeued once. Each handler takes the records logged since the previous one, so every
event's lines (level, message, ``extra`` names, exc_info) are observed apart.

Starvation (``Starvation(time_with_no_tasks=1)``) is observed on two more queues: a
worker that never gets a task, and one whose only task runs for 1.5 s (how long it then
stays idle before ``on_starvation`` is called). Both stop from ``on_starvation``.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from _observe import emit, sleep_in_python, summary_view, typed
from _recorder import Recorder, Task

import sergeant.config

EVERY_EVENT = sergeant.config.LoggingEvents(
    on_success=True,
    on_failure=True,
    on_timeout=True,
    on_retry=True,
    on_max_retries=True,
    on_requeue=True,
    on_starvation=True,
    on_stop=True,
)


class Events(Recorder):
    log_details: ClassVar[bool] = True
    config_overrides: ClassVar[dict[str, Any]] = {
        'max_retries': 1,
        'max_tasks_per_run': 9,  # each task once, and retry-once, retry and requeue-once twice
        'timeouts': sergeant.config.Timeouts(timeout=1.0),
        'logging': sergeant.config.Logging(level=10, events=EVERY_EVENT),
    }

    def initialize(self) -> None:
        super().initialize()
        self.logs: dict[str, Any] = {}
        self.starvation_arguments: list[Any] = []

    def take_logs(self, event: str) -> None:
        lines = self.log_records.take()
        self.logs.setdefault(event, lines)

    def work(self, task: Task) -> Any:
        action = task.kwargs['do']
        self.take_logs('before ' + str(task.kwargs['id']))
        if action == 'raise':
            raise RuntimeError('failed on purpose')
        if action == 'slow':
            sleep_in_python(6.0 if task.kwargs['id'] == 'slow' else 1.5)
        if action == 'retry' or (action == 'retry-once' and task.run_count == 0):
            self.retry(task=task)
        if action == 'requeue-once' and 'requeued' not in self.requeued:
            self.requeued.add('requeued')
            self.requeue(task=task)
        return action

    def on_success(self, task: Task, returned_value: Any) -> None:
        self.take_logs('on_success')

    def on_failure(self, task: Task, exception: Exception) -> None:
        self.take_logs('on_failure')

    def on_timeout(self, task: Task) -> None:
        self.take_logs('on_timeout')

    def on_retry(self, task: Task) -> None:
        self.take_logs('on_retry')

    def on_max_retries(self, task: Task) -> None:
        self.take_logs('on_max_retries')

    def on_requeue(self, task: Task) -> None:
        self.take_logs('on_requeue')

    def on_starvation(self, time_with_no_tasks: int) -> None:
        self.take_logs('on_starvation')
        self.starvation_arguments.append(typed(time_with_no_tasks))
        self.stop()


class Starving(Events):
    queue_suffix: ClassVar[str] = 'starving'
    config_overrides: ClassVar[dict[str, Any]] = {
        'starvation': sergeant.config.Starvation(time_with_no_tasks=1),
        'logging': sergeant.config.Logging(level=10, events=EVERY_EVENT),
    }

    def initialize(self) -> None:
        super().initialize()
        self.last_task_ended = time.monotonic()

    def post_work(self, task: Task, success: bool, exception: BaseException | None) -> None:
        self.last_task_ended = time.monotonic()

    def on_starvation(self, time_with_no_tasks: int) -> None:
        self.idle_before_starving = time.monotonic() - self.last_task_ended
        super().on_starvation(time_with_no_tasks)


class StarvingAfterALongTask(Starving):
    queue_suffix: ClassVar[str] = 'starving-after-a-long-task'
    config_overrides: ClassVar[dict[str, Any]] = {
        'starvation': sergeant.config.Starvation(time_with_no_tasks=1),
        'logging': sergeant.config.Logging(level=10, events=EVERY_EVENT),
    }


def run(worker: Events) -> dict[str, Any]:
    summary = worker.work_loop()
    worker.take_logs('after the loop')
    return {
        'summary': summary_view(summary),
        'log': worker.logs,
        'on_starvation': worker.starvation_arguments,
        'left': typed(worker.number_of_enqueued_tasks(include_delayed=True)),
    }


def main() -> None:
    events = Events()
    events.init_worker()
    actions = ['return', 'raise', 'slow', 'retry-once', 'retry', 'requeue-once']
    events.push_tasks(kwargs_list=[{'id': action, 'do': action} for action in actions])
    starving = Starving()
    starving.init_worker()
    after_a_long_task = StarvingAfterALongTask()
    after_a_long_task.init_worker()
    after_a_long_task.push_task(kwargs={'id': 'long', 'do': 'slow'})
    observed = {'events': run(events), 'starving': run(starving)}
    long_run = run(after_a_long_task)
    long_run['idle_before_starving>=0.8s'] = typed(after_a_long_task.idle_before_starving >= 0.8)
    observed['starving_after_a_long_task'] = long_run
    emit(observed)


if __name__ == '__main__':
    main()
