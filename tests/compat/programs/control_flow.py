"""How a serial work loop ends and what it logs when user code stops, respawns or raises, on Redis.

Each scenario is a worker of its own (its own queue, ``max_retries`` 0): ``stop()`` and
``respawn()`` from ``work``, from ``initialize``, from ``finalize`` and from handlers;
``initialize`` and ``finalize`` raising; ``pre_work``, ``post_work``, ``on_success`` and
``on_failure`` raising; and ``stop()`` in the first task of a three-task transaction.
Observed: the summary, the hook and handler calls, whether ``finalize`` ran, the records
logged, and which tasks are left in the queue.
"""

from __future__ import annotations

from typing import Any, ClassVar

from _observe import emit, summary_view, typed
from _recorder import Recorder, Task


class Scenario(Recorder):
    """Runs the tasks of its class; ``actions`` says what each hook does for which task id."""

    tasks: ClassVar[list[str]] = ['t0', 't1']
    actions: ClassVar[dict[str, str]] = {}  # '<hook>' or '<hook>:<task id>' -> 'stop', 'respawn' or 'raise'

    log_details: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.queue_suffix = cls.__name__

    def act(self, hook: str, task: Task | None = None) -> None:
        action = self.actions.get(f'{hook}:{task.kwargs["id"]}' if task else hook) or self.actions.get(hook)
        if action == 'stop':
            self.stop()
        if action == 'respawn':
            self.respawn()
        if action == 'raise':
            raise ValueError('<error>')

    def initialize(self) -> None:
        super().initialize()
        self.finalized = False
        self.act('initialize')

    def finalize(self) -> None:
        self.finalized = True
        self.act('finalize')

    def pre_work(self, task: Task) -> None:
        super().pre_work(task)
        self.act('pre_work', task)

    def work(self, task: Task) -> Any:
        self.record(task, 'work', task.run_count)
        self.act('work', task)
        return task.kwargs['id']

    def post_work(self, task: Task, success: bool, exception: BaseException | None) -> None:
        super().post_work(task, success, exception)
        self.act('post_work', task)

    def on_success(self, task: Task, returned_value: Any) -> None:
        super().on_success(task, returned_value)
        self.act('on_success', task)

    def on_failure(self, task: Task, exception: Exception) -> None:
        super().on_failure(task, exception)
        self.act('on_failure', task)


class StopInWork(Scenario):
    actions: ClassVar[dict[str, str]] = {'work:t0': 'stop'}


class RespawnInWork(Scenario):
    actions: ClassVar[dict[str, str]] = {'work:t0': 'respawn'}


class InitializeRaises(Scenario):
    actions: ClassVar[dict[str, str]] = {'initialize': 'raise'}


class InitializeStops(Scenario):
    actions: ClassVar[dict[str, str]] = {'initialize': 'stop'}


class InitializeRespawns(Scenario):
    actions: ClassVar[dict[str, str]] = {'initialize': 'respawn'}


class FinalizeRaises(Scenario):
    config_overrides: ClassVar[dict[str, Any]] = {'max_tasks_per_run': 1}
    actions: ClassVar[dict[str, str]] = {'finalize': 'raise'}


class FinalizeRespawns(Scenario):
    config_overrides: ClassVar[dict[str, Any]] = {'max_tasks_per_run': 1}
    actions: ClassVar[dict[str, str]] = {'finalize': 'respawn'}


class HooksRaise(Scenario):
    config_overrides: ClassVar[dict[str, Any]] = {'max_tasks_per_run': 2}
    actions: ClassVar[dict[str, str]] = {
        'pre_work:t0': 'raise',
        'post_work:t0': 'raise',
        'on_success': 'raise',
        'work:t1': 'raise',
        'on_failure': 'raise',
    }


class StopInOnSuccess(Scenario):
    actions: ClassVar[dict[str, str]] = {'on_success:t0': 'stop'}


class RespawnInOnFailure(Scenario):
    actions: ClassVar[dict[str, str]] = {'work:t0': 'raise', 'on_failure:t0': 'respawn'}


class StopMidTransaction(Scenario):
    tasks: ClassVar[list[str]] = ['t0', 't1', 't2', 't3', 't4']
    config_overrides: ClassVar[dict[str, Any]] = {'tasks_per_transaction': 3}
    actions: ClassVar[dict[str, str]] = {'work:t0': 'stop'}


SCENARIOS: list[type[Scenario]] = [
    StopInWork,
    RespawnInWork,
    InitializeRaises,
    InitializeStops,
    InitializeRespawns,
    FinalizeRaises,
    FinalizeRespawns,
    HooksRaise,
    StopInOnSuccess,
    RespawnInOnFailure,
    StopMidTransaction,
]


def run(scenario: type[Scenario]) -> dict[str, Any]:
    worker = scenario()
    worker.init_worker()
    worker.push_tasks(kwargs_list=[{'id': task_id} for task_id in scenario.tasks])
    summary = worker.work_loop()
    left = worker.get_next_tasks(number_of_tasks=100)
    return {
        'summary': summary_view(summary),
        'calls': dict(worker.calls),
        'finalize_ran': typed(worker.finalized),
        'log': scenario.log_records.take(),
        'left_ids_sorted': typed(sorted(task.kwargs['id'] for task in left)),
        'left_run_counts': typed(sorted(task.run_count for task in left)),
    }


def main() -> None:
    emit({scenario.__name__: run(scenario) for scenario in SCENARIOS})


if __name__ == '__main__':
    main()
