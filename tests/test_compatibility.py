"""A worker written for Sergeant 0.27's public API runs unchanged."""

from __future__ import annotations

import typing
from pathlib import Path

import sergeant
import sergeant.config
import sergeant.objects
import sergeant.worker


def make_worker(file_path: str) -> sergeant.worker.Worker:
    class LegacyWorker(sergeant.worker.Worker):
        def generate_config(self) -> sergeant.config.WorkerConfig:
            return sergeant.config.WorkerConfig(
                name='legacy',
                connector=sergeant.config.Connector(type='local', params={'file_path': file_path}),
                max_tasks_per_run=4,
                max_retries=1,
                tasks_per_transaction=2,
                encoder=sergeant.config.Encoder(compressor='zlib', serializer='msgpack'),
                timeouts=sergeant.config.Timeouts(timeout=0.0, grace_period=10.0),
                logging=sergeant.config.Logging(
                    level=20,
                    log_to_stdout=False,
                    events=sergeant.config.LoggingEvents(on_success=True),
                ),
                starvation=None,
            )

        def initialize(self) -> None:
            self.seen: list[tuple[str, typing.Any]] = []

        def work(self, task: sergeant.objects.Task) -> typing.Any:
            lock = self.lock('legacy-lock')
            assert lock.acquire(timeout=1, check_interval=0.1, ttl=5)
            lock.release()
            if task.kwargs['value'] == 'retry-me':
                self.retry(task=task)
            return task.kwargs['value']

        def on_success(self, task: sergeant.objects.Task, returned_value: typing.Any) -> None:
            self.seen.append(('success', returned_value))

        def on_retry(self, task: sergeant.objects.Task) -> None:
            self.seen.append(('retry', task.run_count))

        def on_max_retries(self, task: sergeant.objects.Task) -> None:
            self.seen.append(('max_retries', task.run_count))

    return LegacyWorker()


def test_legacy_worker_runs_unchanged(tmp_path: Path) -> None:
    worker = make_worker(str(tmp_path / 'legacy.sqlite3'))
    worker.init_worker()
    worker.purge_tasks()
    worker.push_task(kwargs={'value': 'a'})
    worker.push_tasks(kwargs_list=[{'value': 'b'}, {'value': 'retry-me'}], priority='NORMAL')

    assert worker.number_of_enqueued_tasks() == 3
    summary = worker.work_loop()

    for key in ('start_time', 'end_time', 'stop', 'respawn', 'executor_exception'):
        assert key in summary
    assert summary['initialize_exception'] is None and summary['finalize_exception'] is None
    assert worker.seen == [('success', 'a'), ('success', 'b'), ('retry', 1), ('max_retries', 1)]  # type: ignore[attr-defined]


def test_control_exceptions_keep_their_0_27_names_and_bases() -> None:
    assert issubclass(sergeant.worker.WorkerStop, sergeant.worker.WorkerInterrupt)
    assert issubclass(sergeant.worker.WorkerRespawn, sergeant.worker.WorkerInterrupt)
    for name in ('WorkerTimedout', 'WorkerRequeue', 'WorkerRetry', 'WorkerMaxRetries', 'WorkerInterrupt'):
        signal = getattr(sergeant.worker, name)
        assert issubclass(signal, BaseException) and not issubclass(signal, Exception)


def test_task_fields_match_0_27() -> None:
    task = sergeant.objects.Task(kwargs={'x': 1})

    assert (task.kwargs, task.trace_id, task.run_count) == ({'x': 1}, None, 0)
    assert task.date > 0
