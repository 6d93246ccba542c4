"""The work loop, handler by handler, on the embedded broker (given / when / then)."""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from sergeant import Task, config
from sergeant.loop.summary import LoopEnd
from sergeant.worker import WorkerTimedout

from .conftest import ConfiguredWorker

Build = Callable[..., Any]


class Recorder(ConfiguredWorker):
    """Succeeds, fails or signals according to the task's ``action`` kwarg."""

    def work(self, task: Task) -> Any:
        self.calls.append(('work', (task.kwargs.get('n'), task.run_count)))
        action = task.kwargs.get('action', 'succeed')
        if action == 'fail':
            raise ValueError(f'failing {task.kwargs.get("n")}')
        if action == 'timeout':
            raise WorkerTimedout()
        if action == 'stop':
            self.stop()
        if action == 'respawn':
            self.respawn()
        if action == 'requeue' and task.run_count == 0 and not task.kwargs.get('requeued'):
            task.kwargs['requeued'] = True
            self.requeue(task)
        return task.kwargs.get('n')

    def on_success(self, task: Task, returned_value: Any) -> None:
        self.calls.append(('on_success', returned_value))

    def on_failure(self, task: Task, exception: Exception) -> None:
        self.calls.append(('on_failure', str(exception)))
        if task.kwargs.get('retry'):
            self.retry(task)

    def on_timeout(self, task: Task) -> None:
        self.calls.append(('on_timeout', task.kwargs.get('n')))
        if task.kwargs.get('retry'):
            self.retry(task)

    def on_retry(self, task: Task) -> None:
        self.calls.append(('on_retry', task.run_count))

    def on_max_retries(self, task: Task) -> None:
        self.calls.append(('on_max_retries', task.run_count))

    def on_requeue(self, task: Task) -> None:
        self.calls.append(('on_requeue', task.kwargs.get('n')))

    def on_stop(self, task: Task) -> None:
        self.calls.append(('on_stop', task.kwargs.get('n')))

    def on_starvation(self, time_with_no_tasks: int) -> None:
        self.calls.append(('on_starvation', time_with_no_tasks))
        self.stop()

    def events(self, name: str) -> list[Any]:
        return [value for event, value in self.calls if event == name]


def test_success_calls_on_success_with_the_returned_value(build_worker: Build) -> None:
    worker = build_worker(Recorder, max_tasks_per_run=3)
    worker.push_tasks([{'n': 1}, {'n': 2}, {'n': 3}])

    summary = worker.work_loop()

    assert worker.events('on_success') == [1, 2, 3]
    assert summary['tasks']['success'] == 3
    assert summary['stop'] is False and summary['respawn'] is False
    assert summary['end_time'] >= summary['start_time']
    assert worker.number_of_enqueued_tasks(include_delayed=True) == 0
    assert worker.broker.connector.in_flight('tasks') == 0


def test_failure_calls_on_failure_and_the_task_is_done(build_worker: Build) -> None:
    worker = build_worker(Recorder, max_tasks_per_run=1)
    worker.push_task({'n': 7, 'action': 'fail'})

    summary = worker.work_loop()

    assert worker.events('on_failure') == ['failing 7']
    assert summary['tasks']['failure'] == 1
    assert worker.broker.connector.in_flight('tasks') == 0
    assert worker.number_of_dead_letter_tasks() == 0


def test_retry_runs_again_until_max_retries_then_dead_letters(build_worker: Build) -> None:
    worker = build_worker(Recorder, max_tasks_per_run=3, max_retries=2)
    worker.push_task({'n': 1, 'action': 'fail', 'retry': True})

    worker.work_loop()

    assert worker.events('work') == [(1, 0), (1, 1), (1, 2)]
    assert worker.events('on_retry') == [1, 2]  # the count the retry carries, as in Sergeant 0.27
    assert worker.events('on_max_retries') == [2]
    [dead] = worker.dead_letter_tasks()
    assert 'max retries' in dead.reason
    assert dead.task is not None and dead.task.kwargs['n'] == 1
    assert worker.number_of_enqueued_tasks(include_delayed=True) == 0


def test_requeue_pushes_the_task_back_unchanged(build_worker: Build) -> None:
    worker = build_worker(Recorder, max_tasks_per_run=2)
    worker.push_task({'n': 5, 'action': 'requeue'})

    summary = worker.work_loop()

    assert worker.events('on_requeue') == [5]
    assert worker.events('work') == [(5, 0), (5, 0)]
    assert summary['tasks'] == {'requeue': 1, 'success': 1}


def test_timeout_calls_on_timeout_which_may_retry(build_worker: Build) -> None:
    worker = build_worker(Recorder, max_tasks_per_run=2, max_retries=1)
    worker.push_task({'n': 3, 'action': 'timeout', 'retry': True})

    worker.work_loop()

    assert worker.events('on_timeout') == [3, 3]
    assert worker.events('on_retry') == [1]
    assert worker.events('on_max_retries') == [1]


def test_stop_ends_the_loop_and_hands_back_unstarted_tasks(build_worker: Build) -> None:
    worker = build_worker(Recorder, tasks_per_transaction=10)
    worker.push_tasks([{'n': n, 'action': 'stop' if n == 2 else 'succeed'} for n in range(10)])

    summary = worker.work_loop()

    assert summary['stop'] is True
    assert summary['reason'] == LoopEnd.STOP
    assert worker.events('on_stop') == [], 'as in Sergeant 0.27, the serial executor calls no on_stop'
    assert worker.events('on_success') == [0, 1]
    assert worker.number_of_enqueued_tasks() == 7, 'unstarted tasks are ready again at once'
    assert worker.broker.connector.in_flight('tasks') == 0


@pytest.mark.parametrize(('action', 'on_stop_calls'), [('stop', [2]), ('respawn', [])])
def test_the_threaded_executor_calls_on_stop_for_stop_only(
    build_worker: Build, action: str, on_stop_calls: list[int]
) -> None:
    worker = build_worker(Recorder, number_of_threads=2)
    worker.push_tasks([{'n': 2, 'action': action}])

    worker.work_loop()

    assert worker.events('on_stop') == on_stop_calls


def test_respawn_ends_the_loop_with_respawn(build_worker: Build) -> None:
    worker = build_worker(Recorder)
    worker.push_task({'n': 1, 'action': 'respawn'})

    summary = worker.work_loop()

    assert summary['respawn'] is True and summary['stop'] is False
    assert summary['reason'] == LoopEnd.RESPAWN


def test_stop_signal_stops_fetching(build_worker: Build) -> None:
    class StopsAfterFirst(Recorder):
        def work(self, task: Task) -> Any:
            self.received_stop_signal = True
            return super().work(task)

    worker = build_worker(StopsAfterFirst, tasks_per_transaction=5)
    worker.push_tasks([{'n': n} for n in range(5)])

    summary = worker.work_loop()

    assert summary['reason'] == LoopEnd.SIGNAL
    assert worker.events('on_success') == [0], 'the running task finishes'
    assert worker.number_of_enqueued_tasks() == 4


def test_starvation_is_reported_after_the_configured_time(build_worker: Build) -> None:
    worker = build_worker(Recorder, starvation=config.Starvation(time_with_no_tasks=1))

    started = time.monotonic()
    summary = worker.work_loop()

    assert time.monotonic() - started >= 1.0
    assert worker.events('on_starvation')[0] >= 1
    assert summary['stop'] is True


def test_starvation_counts_from_when_the_queue_ran_dry_not_from_the_last_fetch(build_worker: Build) -> None:
    class Slow(Recorder):
        def work(self, task: Task) -> Any:
            time.sleep(1.5)
            return super().work(task)

    worker = build_worker(Slow, starvation=config.Starvation(time_with_no_tasks=1))
    worker.push_task({'n': 1})
    reported: list[float] = []
    finished: list[float] = []
    worker.on_success = lambda task, returned_value: finished.append(time.monotonic())  # type: ignore[method-assign]

    def on_starvation(time_with_no_tasks: int) -> None:
        reported.append(time.monotonic())
        worker.stop()

    worker.on_starvation = on_starvation  # type: ignore[method-assign]
    worker.work_loop()

    assert reported and finished
    assert reported[0] - finished[0] >= 0.9, 'one idle second after the long task, not at once'


def test_max_tasks_per_run_leaves_the_rest_queued(build_worker: Build) -> None:
    worker = build_worker(Recorder, max_tasks_per_run=4, tasks_per_transaction=10)
    worker.push_tasks([{'n': n} for n in range(10)])

    summary = worker.work_loop()

    assert summary['tasks']['success'] == 4
    assert summary['reason'] == LoopEnd.MAX_TASKS_PER_RUN
    assert worker.number_of_enqueued_tasks() == 6
    assert worker.broker.connector.in_flight('tasks') == 0


def test_summary_reports_the_processes_cpu_and_memory(build_worker: Build) -> None:
    class Busy(Recorder):
        def work(self, task: Task) -> Any:
            deadline = time.process_time() + 0.2
            while time.process_time() < deadline:
                pass

    worker = build_worker(Busy, max_tasks_per_run=1)
    worker.push_task({'n': 1})

    summary = worker.work_loop()

    # the process's CPU since it started includes the loop's
    process, loop_cpu = summary['process'], summary['executor']['total_cpu_time']
    assert loop_cpu >= 0.2
    assert process['user_cpu_seconds'] + process['system_cpu_seconds'] >= loop_cpu
    assert process['peak_rss_bytes'] > 10 * 2**20


def test_tasks_per_transaction_leases_a_whole_batch(build_worker: Build) -> None:
    class Observer(Recorder):
        def work(self, task: Task) -> Any:
            self.calls.append(('in_flight', self.broker.connector.in_flight('tasks')))
            return super().work(task)

    worker = build_worker(Observer, max_tasks_per_run=12, tasks_per_transaction=5)
    worker.push_tasks([{'n': n} for n in range(12)])

    worker.work_loop()

    assert worker.events('in_flight')[0] == 5
    assert len(worker.events('on_success')) == 12


def test_high_priority_task_runs_first(build_worker: Build) -> None:
    worker = build_worker(Recorder, max_tasks_per_run=3)
    worker.push_tasks([{'n': 1}, {'n': 2}])
    worker.push_task({'n': 0}, priority='HIGH')

    worker.work_loop()

    assert worker.events('on_success') == [0, 1, 2]


def test_delayed_task_waits_for_its_time(build_worker: Build) -> None:
    worker = build_worker(Recorder, max_tasks_per_run=2)
    worker.push_task({'n': 'later'}, consumable_from=time.time() + 1.0)
    worker.push_task({'n': 'now'})

    started = time.monotonic()
    worker.work_loop()

    assert worker.events('on_success') == ['now', 'later']
    assert time.monotonic() - started >= 0.9
    assert worker.number_of_enqueued_tasks(include_delayed=True) == 0


def test_trace_id_flows_to_tasks_pushed_while_working(build_worker: Build) -> None:
    class Spawner(Recorder):
        def work(self, task: Task) -> Any:
            self.calls.append(('trace', (task.trace_id, self.get_trace_id())))
            if task.kwargs['n'] == 0:
                self.push_task({'n': 1})
            return task.kwargs['n']

    worker = build_worker(Spawner, max_tasks_per_run=2)
    worker.push_task({'n': 0}, trace_id='trace-42')

    worker.work_loop()

    assert worker.events('trace') == [('trace-42', 'trace-42'), ('trace-42', 'trace-42')]
    assert worker.get_trace_id() is None


def test_a_priority_other_than_high_is_normal_as_in_sergeant_027(build_worker: Build) -> None:
    worker = build_worker(Recorder)

    pushed = [
        worker.push_task({'n': 1}, priority='LOW'),
        worker.push_task({'n': 2}, priority='NORMAL'),
        worker.push_task({'n': 3}, priority='HIGH'),
    ]

    assert pushed == [True, True, True]
    assert [task.kwargs['n'] for task in worker.get_next_tasks(3)] == [3, 1, 2]


def test_handler_exception_is_logged_and_the_loop_goes_on(build_worker: Build) -> None:
    class BrokenHandler(Recorder):
        def on_success(self, task: Task, returned_value: Any) -> None:
            raise RuntimeError('handler bug')

    worker = build_worker(BrokenHandler, max_tasks_per_run=2)
    worker.push_tasks([{'n': 1}, {'n': 2}])

    summary = worker.work_loop()

    assert summary['tasks']['success'] == 2
    assert summary['executor_exception'] is None


def test_initialize_failure_skips_tasks_and_finalize_and_is_reported(build_worker: Build) -> None:
    class BadStart(Recorder):
        def initialize(self) -> None:
            raise RuntimeError('no database')

        def finalize(self) -> None:
            self.calls.append(('finalize', None))

    worker = build_worker(BadStart)
    worker.push_task({'n': 1})

    summary = worker.work_loop()

    assert isinstance(summary['initialize_exception'], RuntimeError)
    assert summary['reason'] == LoopEnd.INITIALIZE_EXCEPTION
    assert worker.events('finalize') == [], 'as in Sergeant 0.27: nothing to finalize'
    assert summary['executor'] == {}
    assert worker.number_of_enqueued_tasks() == 1


def test_finalize_failure_is_reported(build_worker: Build) -> None:
    class BadEnd(Recorder):
        def finalize(self) -> None:
            raise RuntimeError('cannot flush')

    worker = build_worker(BadEnd, max_tasks_per_run=1)
    worker.push_task({'n': 1})

    summary = worker.work_loop()

    assert isinstance(summary['finalize_exception'], RuntimeError)
    assert summary['tasks']['success'] == 1
    assert summary['reason'] == LoopEnd.MAX_TASKS_PER_RUN, 'finalize runs after the loop ended'


def test_pre_and_post_work_wrap_every_task(build_worker: Build) -> None:
    class Hooks(Recorder):
        def pre_work(self, task: Task) -> None:
            self.calls.append(('pre', task.kwargs['n']))

        def post_work(self, task: Task, success: bool, exception: BaseException | None) -> None:
            self.calls.append(('post', (task.kwargs['n'], success, type(exception).__name__)))

    worker = build_worker(Hooks, max_tasks_per_run=2)
    worker.push_tasks([{'n': 1}, {'n': 2, 'action': 'fail'}])

    worker.work_loop()

    assert worker.events('pre') == [1, 2]
    assert worker.events('post') == [(1, True, 'NoneType'), (2, False, 'ValueError')]


def test_get_next_tasks_takes_tasks_off_the_queue(build_worker: Build) -> None:
    worker = build_worker(Recorder)
    worker.push_tasks([{'n': n} for n in range(3)])

    tasks = worker.get_next_tasks(number_of_tasks=2)

    assert [task.kwargs['n'] for task in tasks] == [0, 1]
    assert worker.number_of_enqueued_tasks() == 1


def test_purge_removes_ready_delayed_and_in_flight_tasks(build_worker: Build) -> None:
    worker = build_worker(Recorder)
    worker.push_tasks([{'n': n} for n in range(3)])
    worker.push_task({'n': 9}, consumable_from=time.time() + 60)
    worker.broker.connector.pop('tasks', 1, lease_seconds=60)

    assert worker.purge_tasks() is True

    assert worker.number_of_enqueued_tasks(include_delayed=True) == 0
    assert worker.broker.connector.in_flight('tasks') == 0


def test_keys_store_python_values(build_worker: Build) -> None:
    worker = build_worker(Recorder)

    assert worker.set_key('settings', {'depth': 3, 'tags': ('a', 'b')}) is True

    assert worker.get_key('settings') == {'depth': 3, 'tags': ('a', 'b')}
    assert worker.delete_key('settings') is True
    assert worker.get_key('settings') is None


def test_locks_from_two_workers_exclude_each_other(build_worker: Build) -> None:
    first, second = build_worker(Recorder), build_worker(Recorder)
    lock = first.lock('daily-report')

    assert lock.acquire(timeout=0, ttl=10) is True
    assert second.lock('daily-report').acquire(timeout=0.2, check_interval=0.05) is False
    assert second.lock('daily-report').is_locked() is True
    assert lock.release() is True
    assert second.lock('daily-report').acquire(timeout=0) is True


def test_pushing_an_empty_list_is_a_success_as_in_sergeant_027(build_worker: Build) -> None:
    worker = build_worker(Recorder)

    assert worker.push_tasks(kwargs_list=[]) is True
    assert worker.number_of_enqueued_tasks() == 0


def test_summary_times_are_naive_utc_as_in_sergeant_027(build_worker: Build) -> None:
    worker = build_worker(Recorder, max_tasks_per_run=1)
    worker.push_task({'n': 1})
    before = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)

    summary = worker.work_loop()

    after = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    assert summary['start_time'].tzinfo is None and summary['end_time'].tzinfo is None
    assert before <= summary['start_time'] <= summary['end_time'] <= after


def test_a_new_worker_logs_nowhere_at_its_configured_level_until_init_worker(
    local_connector: config.Connector,
) -> None:
    class Quiet(ConfiguredWorker):
        settings = config.WorkerConfig(
            name='quiet-logger', connector=local_connector, logging=config.Logging(level=logging.WARNING)
        )

    worker = Quiet()

    assert worker.logger.level == logging.WARNING
    assert worker.logger.propagate is False
    assert [type(handler) for handler in worker.logger.handlers] == [logging.NullHandler]
