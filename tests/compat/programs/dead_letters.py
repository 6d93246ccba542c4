"""Tasks that reach max retries and payloads that cannot be decoded, on Redis.

A worker (``max_retries=1``) runs a task that always retries, then a good task. On a
second queue a producer with another encoder (zlib compression) pushes a task the
consumer (no compression) cannot decode, then the consumer pushes a good task that
stops it. Observed: the handler calls, the log records, the queue length, and how many
Redis keys named after each queue are left after the loop and after ``purge_tasks()``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from _observe import emit, queue, redis_keys_named_after, redis_params, summary_view, typed
from _recorder import Recorder, Task

import sergeant.config
import sergeant.worker


class MaxRetries(Recorder):
    queue_suffix: ClassVar[str] = 'retries'
    config_overrides: ClassVar[dict[str, Any]] = {'max_retries': 1, 'max_tasks_per_run': 3}

    def work(self, task: Task) -> Any:
        if task.kwargs['id'] == 'always-retry':
            self.retry(task=task)


class Undecodable(Recorder):
    queue_suffix: ClassVar[str] = 'undecodable'
    config_overrides: ClassVar[dict[str, Any]] = {
        # whether a serial worker logs and calls on_stop is control_flow's concern
        'logging': sergeant.config.Logging(level=10, events=sergeant.config.LoggingEvents(on_stop=False)),
    }

    def work(self, task: Task) -> Any:
        self.stop()

    def on_stop(self, task: Task) -> None:
        pass  # as above


class CompressingProducer(sergeant.worker.Worker):
    def generate_config(self) -> sergeant.config.WorkerConfig:
        return sergeant.config.WorkerConfig(
            name=queue('undecodable'),
            connector=sergeant.config.Connector(type='redis', params=redis_params()),
            encoder=sergeant.config.Encoder(compressor='zlib', serializer='pickle'),
        )


def run(worker: Recorder, suffix: str) -> dict[str, Any]:
    summary = worker.work_loop()
    observed = {
        'summary': summary_view(summary),
        'calls': dict(worker.calls),
        'log': worker.log_records.take(),
        'length': typed(worker.number_of_enqueued_tasks(include_delayed=True)),
        'redis_keys_after_the_loop': typed(redis_keys_named_after(queue(suffix))),
        'purge': typed(worker.purge_tasks()),
        'redis_keys_after_purge': typed(redis_keys_named_after(queue(suffix))),
    }
    return observed


def main() -> None:
    max_retries = MaxRetries()
    max_retries.init_worker()
    max_retries.push_tasks(kwargs_list=[{'id': 'always-retry'}, {'id': 'good'}])
    producer = CompressingProducer()
    producer.init_worker()
    producer.push_task(kwargs={'id': 'compressed'})
    undecodable = Undecodable()
    undecodable.init_worker()
    undecodable.push_task(kwargs={'id': 'good'})
    emit({'max_retries': run(max_retries, 'retries'), 'undecodable': run(undecodable, 'undecodable')})


if __name__ == '__main__':
    main()
