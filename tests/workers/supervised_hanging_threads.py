"""Scenario: a task leaves two threads running, one that ends on SystemExit and one that ignores it.

Like Sergeant 0.27's "hanging threads" example: one task per run, in
``TEST_THREADS`` executor threads (2 unless set). A task with ``threads`` in its
kwargs starts the threads ``KillableThread`` and ``UnKillableThread``; every
task is recorded. The worker logs its warnings to stdout, which the supervisor's
log collects.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from sergeant import Task, config
from tests.workers.supervised_common import RecordingWorker


def killable() -> None:
    try:
        while True:
            time.sleep(0.1)
    except SystemExit:
        return


def unkillable() -> None:
    while True:
        # the inner loop keeps every point where SystemExit can land inside the try
        try:
            while True:
                time.sleep(0.1)
        except SystemExit:
            pass


class HangingThreadsWorker(RecordingWorker):
    def generate_config(self) -> config.WorkerConfig:
        return (
            super()
            .generate_config()
            .replace(
                number_of_threads=int(os.environ.get('TEST_THREADS', '2')),
                max_tasks_per_run=1,
                logging=config.Logging(level=logging.WARNING, log_to_stdout=True),
            )
        )

    def work(self, task: Task) -> Any:
        if task.kwargs.get('threads'):
            threading.Thread(target=killable, name='KillableThread').start()
            threading.Thread(target=unkillable, name='UnKillableThread').start()
        self.record(task)
