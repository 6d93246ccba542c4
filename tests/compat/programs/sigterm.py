"""SIGTERM to a plain producer process and to a process running ``work_loop()``, on Redis.

Three child processes each get SIGTERM once they say they are ready: a producer that
built a worker and pushed a task (does the process end?), a worker waiting on an empty
queue, and a worker in the middle of a task with two more tasks queued. Of the two
workers the summary, the hook and handler calls, the log records and what is left in
the queue are observed.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, ClassVar

from _observe import emit, summary_view, typed
from _recorder import Recorder, Task

SLOW_TASK_SECONDS = 3.0


def say(line: str) -> None:
    print(line, flush=True)


class Producer(Recorder):
    queue_suffix: ClassVar[str] = 'producer'


class Idle(Recorder):
    queue_suffix: ClassVar[str] = 'idle'

    def initialize(self) -> None:
        super().initialize()
        say('ready')


class Busy(Recorder):
    queue_suffix: ClassVar[str] = 'busy'

    def work(self, task: Task) -> Any:
        self.record(task, 'work', task.run_count)
        if task.kwargs['id'] != 'slow':
            return None
        say('ready')
        self.sleep_recording_interruption(task, SLOW_TASK_SECONDS, 'work finished')
        return None


def run_worker(worker: Recorder) -> None:
    worker.init_worker()
    summary = worker.work_loop()
    left = worker.get_next_tasks(number_of_tasks=100)
    observed = {
        'summary': summary_view(summary),
        'calls': dict(worker.calls),
        'log': worker.log_records.take(),
        'left_ids_sorted': typed(sorted(task.kwargs['id'] for task in left)),
        'left_run_counts': typed(sorted(task.run_count for task in left)),
    }
    print(json.dumps(observed), flush=True)


def run_producer() -> None:
    producer = Producer()
    producer.init_worker()
    producer.push_task(kwargs={'id': 'pushed'})
    say('ready')
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        time.sleep(0.05)
    say('still running after 20 s')


def terminated(mode: str) -> dict[str, Any]:
    """Start a child in ``mode``, SIGTERM it once it is ready; how it ended and what it printed."""
    process = subprocess.Popen(
        [sys.executable, __file__, mode], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    ready = process.stdout.readline().strip() == 'ready'
    time.sleep(0.3)  # into the sleep of an idle loop, or well into the task
    process.send_signal(signal.SIGTERM)
    try:
        rest, _ = process.communicate(timeout=10)
        ended = True
    except subprocess.TimeoutExpired:
        process.kill()
        rest, _ = process.communicate()
        ended = False
    lines = rest.strip().splitlines()
    printed = json.loads(lines[-1]) if lines and lines[-1].startswith('{') else None
    return {
        'ready': typed(ready),
        'ended_within_10s': typed(ended),
        'exited_with_0': typed(process.returncode == 0),
        'observed': printed,
    }


def main() -> None:
    busy = Busy()
    busy.init_worker()
    busy.push_tasks(kwargs_list=[{'id': 'slow'}, {'id': 'next-1'}, {'id': 'next-2'}])
    emit({mode: terminated(mode) for mode in ('producer', 'idle', 'busy')})


if __name__ == '__main__':
    modes: dict[str, Callable[[], None]] = {
        'producer': run_producer,
        'idle': lambda: run_worker(Idle()),
        'busy': lambda: run_worker(Busy()),
    }
    modes[sys.argv[1]]() if sys.argv[1:] else main()
