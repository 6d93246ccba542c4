"""Configuration objects, Task, the Worker* exceptions, and a worker's state before and after init_worker.

Nothing is pushed or run: this program observes the defaults of 0.27's config dataclasses
(by keyword and by position), that they are frozen and have ``replace()``, the Task defaults,
the control-flow exception hierarchy, and the worker's logger right after construction and
after ``init_worker()`` for each logging configuration.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from typing import Any

from _observe import emit, fields_of, outcome, queue, redis_params, typed

import sergeant.config
import sergeant.objects
import sergeant.worker

WORKER_CONFIG_FIELDS = [
    'name',
    'max_tasks_per_run',
    'max_retries',
    'tasks_per_transaction',
    'number_of_threads',
    'starvation',
]
ENCODER_FIELDS = ['compressor', 'serializer']
TIMEOUTS_FIELDS = ['timeout', 'grace_period']
LOGGING_FIELDS = ['level', 'log_to_stdout', 'handlers']
EVENT_FIELDS = [
    'on_success',
    'on_failure',
    'on_timeout',
    'on_retry',
    'on_max_retries',
    'on_requeue',
    'on_starvation',
    'on_stop',
]
EXCEPTIONS = [
    'WorkerException',
    'WorkerTimedout',
    'WorkerRequeue',
    'WorkerRetry',
    'WorkerMaxRetries',
    'WorkerInterrupt',
    'WorkerRespawn',
    'WorkerStop',
]


def config_view(config: sergeant.config.WorkerConfig) -> dict[str, Any]:
    return {
        **fields_of(config, WORKER_CONFIG_FIELDS),
        'connector.type': typed(config.connector.type),
        'connector.params.keys': typed(sorted(config.connector.params)),
        'encoder': fields_of(config.encoder, ENCODER_FIELDS),
        'timeouts': fields_of(config.timeouts, TIMEOUTS_FIELDS),
        'logging': fields_of(config.logging, LOGGING_FIELDS),
        'logging.events': fields_of(config.logging.events, EVENT_FIELDS),
    }


def logger_view(logger: logging.Logger) -> dict[str, Any]:
    return {
        'name_is_config_name': typed(logger.name == queue()),
        'level': typed(logger.level),
        'propagate': typed(logger.propagate),
        'handlers': typed([type(handler).__name__ for handler in logger.handlers]),
        'stream_handlers_on_stdout': typed(
            [getattr(handler, 'stream', None) is sys.stdout for handler in logger.handlers]
        ),
    }


class ConfiguredWorker(sergeant.worker.Worker):
    logging_config = sergeant.config.Logging()
    generate_config_calls = 0

    def generate_config(self) -> sergeant.config.WorkerConfig:
        type(self).generate_config_calls += 1
        return sergeant.config.WorkerConfig(
            name=queue(),
            connector=sergeant.config.Connector(type='redis', params=redis_params()),
            logging=self.logging_config,
        )


def worker_with(logging_config: sergeant.config.Logging) -> type[ConfiguredWorker]:
    return type('Worker', (ConfiguredWorker,), {'logging_config': logging_config, 'generate_config_calls': 0})


def constructed_and_initialised(logging_config: sergeant.config.Logging) -> dict[str, Any]:
    worker_class = worker_with(logging_config)
    worker = worker_class()
    constructed = logger_view(worker.logger)
    worker.init_worker()
    return {
        'after_construction': constructed,
        'after_init_worker': logger_view(worker.logger),
        'generate_config_calls': typed(worker_class.generate_config_calls),
        'trace_id_outside_a_task': typed(worker.get_trace_id()),
    }


def main() -> None:
    default = sergeant.config.WorkerConfig(name=queue())
    frozen = outcome(lambda: setattr(default, 'max_retries', 3))
    replaced = default.replace(max_retries=3, tasks_per_transaction=7)
    task = sergeant.objects.Task()
    positional_task = sergeant.objects.Task({'a': 1}, 'trace', 1.5, 2)
    custom_handler = logging.StreamHandler(sys.stderr)
    emit(
        {
            'worker_config.defaults': config_view(default),
            'worker_config.is_dataclass': typed(dataclasses.is_dataclass(default)),
            # what dataclasses.fields() and asdict() show of each config class: name -> position
            'fields': {
                cls.__name__: {field.name: index for index, field in enumerate(dataclasses.fields(cls))}
                for cls in (
                    sergeant.config.WorkerConfig,
                    sergeant.config.Connector,
                    sergeant.config.Encoder,
                    sergeant.config.Timeouts,
                    sergeant.config.Starvation,
                    sergeant.config.Logging,
                    sergeant.config.LoggingEvents,
                    sergeant.objects.Task,
                )
            },
            'worker_config.assignment': frozen,
            'worker_config.replace': config_view(replaced),
            'worker_config.replace_type': typed(type(replaced).__name__),
            'worker_config.equal_copies': typed(
                sergeant.config.WorkerConfig(name='a') == sergeant.config.WorkerConfig(name='a')
            ),
            'connector.positional': fields_of(
                sergeant.config.Connector({'file_path': 'x'}), ['type', 'params']
            ),
            'encoder.positional': fields_of(sergeant.config.Encoder('zlib', 'msgpack'), ENCODER_FIELDS),
            'timeouts.positional': fields_of(sergeant.config.Timeouts(5, 1), TIMEOUTS_FIELDS),
            'starvation.positional': fields_of(sergeant.config.Starvation(3), ['time_with_no_tasks']),
            'logging.positional': fields_of(sergeant.config.Logging(logging.INFO, True), LOGGING_FIELDS),
            'logging_events.positional': fields_of(sergeant.config.LoggingEvents(True, False), EVENT_FIELDS),
            'task.defaults': {
                'kwargs': typed(task.kwargs),
                'trace_id': typed(task.trace_id),
                'date': typed(task.date),
                'run_count': typed(task.run_count),
            },
            'task.positional': fields_of(positional_task, ['kwargs', 'trace_id', 'date', 'run_count']),
            'task.equality': typed(
                sergeant.objects.Task(kwargs={'a': 1}, date=1.0)
                == sergeant.objects.Task(kwargs={'a': 1}, date=1.0)
            ),
            'exceptions': {
                name: {
                    'bases': typed([base.__name__ for base in getattr(sergeant.worker, name).__mro__[1:]]),
                    'is_exception': typed(issubclass(getattr(sergeant.worker, name), Exception)),
                }
                for name in EXCEPTIONS
            },
            'worker.default_logging': constructed_and_initialised(
                sergeant.config.Logging(level=logging.WARNING)
            ),
            'worker.log_to_stdout': constructed_and_initialised(
                sergeant.config.Logging(level=logging.INFO, log_to_stdout=True)
            ),
            'worker.custom_handlers': constructed_and_initialised(
                sergeant.config.Logging(level=logging.DEBUG, handlers=[custom_handler])
            ),
        }
    )


if __name__ == '__main__':
    main()
