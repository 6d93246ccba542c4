"""The worker pool behind web_app.py: counts the words of a text and stores the result.

    sergeant supervise --worker-module web_tasks --worker-class WordCount --concurrent-workers 2

There is no result backend: the worker stores what the web app will answer under a
key of the broker (``set_key``), which the app reads back (``get_key``).
"""

from __future__ import annotations

import collections

from example_broker import connector

from sergeant import Task, Worker, config


class WordCount(Worker):
    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(name='word-count', connector=connector(), max_retries=3)

    def work(self, task: Task) -> None:
        words = task.kwargs['text'].lower().split()
        result = {'words': len(words), 'most_common': collections.Counter(words).most_common(3)}
        self.set_key(result_key(task.kwargs['id']), result)


def result_key(job_id: str) -> str:
    return f'word-count:result:{job_id}'
