"""The producer side of the worker API on Redis: pushing, counting, popping and purging tasks.

A worker that is never run pushes tasks with each priority (including an unknown one,
which 0.27 treats as normal), in bulk and one by one, empty bulks, delayed tasks
(``consumable_from``), with a trace id and to another queue (``task_name``), and pops
them with ``get_next_tasks``. Each call's return value and type is observed, and so is
the order in which the tasks come back.
"""

from __future__ import annotations

import time
from typing import Any

from _observe import emit, outcome, queue, redis_params, task_view, typed

import sergeant.config
import sergeant.objects
import sergeant.worker

DELAY = 1.0  # seconds a delayed task waits


class Producer(sergeant.worker.Worker):
    def generate_config(self) -> sergeant.config.WorkerConfig:
        return sergeant.config.WorkerConfig(
            name=queue(),
            connector=sergeant.config.Connector(type='redis', params=redis_params()),
        )


def ids(tasks: list[sergeant.objects.Task]) -> Any:
    return typed([task.kwargs.get('id') for task in tasks])


def drain(producer: Producer, batch: int) -> list[sergeant.objects.Task]:
    popped: list[sergeant.objects.Task] = []
    while tasks := producer.get_next_tasks(number_of_tasks=batch):
        popped.extend(tasks)
    return popped


def main() -> None:
    producer = Producer()
    producer.init_worker()
    seen: dict[str, Any] = {
        'purge_empty': outcome(producer.purge_tasks),
        'length_empty': outcome(producer.number_of_enqueued_tasks),
        'pop_empty_one': outcome(lambda: producer.get_next_tasks(number_of_tasks=1)),
        'pop_empty_many': outcome(lambda: producer.get_next_tasks(number_of_tasks=5)),
        'push_task': outcome(lambda: producer.push_task(kwargs={'id': 'a'})),
        'push_tasks': outcome(lambda: producer.push_tasks(kwargs_list=[{'id': 'b'}, {'id': 'c'}])),
        'push_tasks_empty': outcome(lambda: producer.push_tasks(kwargs_list=[])),
        'push_tasks_generator': outcome(
            lambda: producer.push_tasks(kwargs_list=({'id': i} for i in ('d', 'e')))
        ),
        'push_task_low': outcome(lambda: producer.push_task(kwargs={'id': 'low'}, priority='LOW')),
        'push_task_high': outcome(lambda: producer.push_task(kwargs={'id': 'high'}, priority='HIGH')),
        'push_tasks_high': outcome(
            lambda: producer.push_tasks(kwargs_list=[{'id': 'high-1'}, {'id': 'high-2'}], priority='HIGH')
        ),
        'push_task_traced': outcome(lambda: producer.push_task(kwargs={'id': 'traced'}, trace_id='trace-1')),
        'push_task_other_queue': outcome(
            lambda: producer.push_task(kwargs={'id': 'elsewhere'}, task_name=queue('other'))
        ),
    }
    seen['length'] = outcome(producer.number_of_enqueued_tasks)
    seen['length_other_queue'] = outcome(lambda: producer.number_of_enqueued_tasks(task_name=queue('other')))
    first = producer.get_next_tasks(number_of_tasks=1)
    seen['pop_one'] = {'type': typed(first), 'tasks': [task_view(task) for task in first]}
    rest = producer.get_next_tasks(number_of_tasks=100)
    seen['pop_many'] = {'type': typed(type(rest).__name__), 'tasks': [task_view(task) for task in rest]}
    seen['pop_order'] = ids(first + rest)
    seen['length_after_pops'] = outcome(producer.number_of_enqueued_tasks)
    seen['pop_other_queue'] = ids(producer.get_next_tasks(number_of_tasks=3, task_name=queue('other')))

    consumable_from = time.time() + DELAY
    seen['push_delayed'] = outcome(
        lambda: producer.push_task(kwargs={'id': 'later'}, consumable_from=consumable_from)
    )
    seen['push_delayed_bulk'] = outcome(
        lambda: producer.push_tasks(
            kwargs_list=[{'id': 'later-1'}, {'id': 'later-2'}], consumable_from=consumable_from
        )
    )
    seen['push_after_delayed'] = outcome(lambda: producer.push_task(kwargs={'id': 'now'}))
    seen['delayed.length'] = outcome(producer.number_of_enqueued_tasks)
    seen['delayed.length_including_delayed'] = outcome(
        lambda: producer.number_of_enqueued_tasks(include_delayed=True)
    )
    seen['delayed.pop_before'] = ids(drain(producer, 10))
    time.sleep(max(0.0, consumable_from - time.time()) + 0.2)
    seen['delayed.length_when_due'] = outcome(producer.number_of_enqueued_tasks)
    # tasks due at the same time come back in no particular order in 0.27 (a sorted set's ties)
    one = producer.get_next_tasks(number_of_tasks=1)
    bulk = producer.get_next_tasks(number_of_tasks=10)
    seen['delayed.pop_when_due'] = {
        'one': typed(len(one)),
        'bulk': typed(len(bulk)),
        'ids': ids(sorted(one + bulk, key=lambda task: task.kwargs['id'])),
    }
    seen['delayed.length_after_pops'] = outcome(
        lambda: producer.number_of_enqueued_tasks(include_delayed=True)
    )

    seen['purge_refill'] = outcome(lambda: producer.push_tasks(kwargs_list=[{'id': 1}, {'id': 2}]))
    seen['purge_delayed_refill'] = outcome(
        lambda: producer.push_task(kwargs={'id': 3}, consumable_from=time.time() + 60)
    )
    seen['purge'] = outcome(producer.purge_tasks)
    seen['length_after_purge'] = outcome(lambda: producer.number_of_enqueued_tasks(include_delayed=True))
    seen['purge_again'] = outcome(producer.purge_tasks)
    seen['purge_other_queue'] = outcome(lambda: producer.purge_tasks(task_name=queue('other')))
    emit(seen)


if __name__ == '__main__':
    main()
