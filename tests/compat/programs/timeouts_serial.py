"""Soft time limits of the serial executor (``Timeouts(timeout=1)``) on Redis.

A slow task times out twice (``on_timeout`` retries it; ``max_retries=1`` ends it in
``on_max_retries``), a task that catches the timeout and returns counts as a success,
and a quick task after them is not disturbed. What the task sees and every handler call
are recorded per task.
"""

from __future__ import annotations

from typing import Any, ClassVar

from _observe import emit, sleep_in_python, summary_view, typed
from _recorder import Recorder, Task

import sergeant.config

SLOW_TASK_SECONDS = 6.0


class Serial(Recorder):
    config_overrides: ClassVar[dict[str, Any]] = {
        'max_tasks_per_run': 4,
        'max_retries': 1,
        'timeouts': sergeant.config.Timeouts(timeout=1.0),
    }

    def work(self, task: Task) -> Any:
        action = task.kwargs['do']
        self.record(task, 'work', task.run_count)
        if action == 'quick':
            return 'quick'
        try:
            sleep_in_python(SLOW_TASK_SECONDS)
        except BaseException as error:
            self.record(task, 'work saw', error)
            if action == 'swallow':
                return 'swallowed'
            raise
        return 'not interrupted'

    def on_timeout(self, task: Task) -> None:
        super().on_timeout(task)
        self.retry(task=task)


def main() -> None:
    worker = Serial()
    worker.init_worker()
    worker.push_tasks(kwargs_list=[{'id': action, 'do': action} for action in ('slow', 'swallow', 'quick')])
    summary = worker.work_loop()
    emit(
        {
            'summary': summary_view(summary),
            'calls': dict(worker.calls),
            'left': typed(worker.number_of_enqueued_tasks(include_delayed=True)),
        }
    )


if __name__ == '__main__':
    main()
