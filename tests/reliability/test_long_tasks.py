"""Long tasks pushed at once spread over the idle workers instead of queueing behind one.

Two workers take up to 4 tasks per transaction; 4 tasks of 3 s are pushed at
once. A worker that took them all gives back the ones still waiting once its
first task has run for 0.2 s without another starting, so the other worker runs
them: both are busy at the same time, each runs two, and the whole takes about
two task lengths rather than four. On every broker.
"""

from __future__ import annotations

import collections
import dataclasses
import signal
import time
from pathlib import Path
from typing import Any

from tests.reliability.conftest import Record, dead_letters, queue_is_empty, record_tally, since, tally
from tests.supervisor.conftest import Supervise, broker_for, push_ids, wait_until

TASKS = 4
TASK_SECONDS = 3.0


@dataclasses.dataclass(frozen=True)
class Span:
    pid: int
    task_id: int
    start: float
    end: float


def read_spans(path: Path) -> list[Span]:
    if not path.exists():
        return []
    spans = []
    for line in path.read_text().splitlines():
        pid, task_id, start, end = line.split()
        spans.append(Span(int(pid), int(task_id), float(start), float(end)))
    return spans


def test_long_tasks_pushed_at_once_run_on_both_idle_workers(
    supervise: Supervise, broker_settings: dict[str, Any], tmp_path: Path, record_property: Record
) -> None:
    # given two idle workers taking up to 4 tasks per transaction
    spans = tmp_path / 'spans.txt'
    run = supervise(
        'supervised_long_tasks',
        'LongTaskWorker',
        '--concurrent-workers',
        '2',
        settings=broker_settings,
        env={
            'TEST_SPANS': str(spans),
            'TEST_TASKS_PER_TRANSACTION': '4',
            'TEST_TASK_SECONDS': str(TASK_SECONDS),
            'TEST_LEASE_SECONDS': '30',
        },
    )
    run.wait_for_log('started in slot 1')
    wait_until(lambda: len(run.workers()) == 2, 30, 'two worker processes')

    # when 4 tasks of 3 s are pushed at once
    broker = broker_for(broker_settings)
    started = time.monotonic()
    push_ids(broker, range(TASKS))
    record_property('tasks', TASKS)

    # then each task runs once
    wait_until(lambda: len(read_spans(spans)) >= TASKS, 120, 'every task done', interval=0.1)
    record_property('wall_s', since(started))
    wait_until(lambda: queue_is_empty(broker), 30, 'no task left ready or in flight')
    counts = tally(run.processed_ids(), range(TASKS))
    record_tally(record_property, counts, 0)
    assert counts.lost == [] and counts.strangers == [] and counts.duplicates == 0, counts
    letters = dead_letters(broker)
    record_property('dead_letters', len(letters))
    assert letters == []
    # and the two workers shared them, two each, busy at the same time
    done = read_spans(spans)
    per_worker = collections.Counter(span.pid for span in done)
    took = max(span.end for span in done) - min(span.start for span in done)
    record_property('per_worker', '+'.join(str(count) for count in sorted(per_worker.values())))
    record_property('span_s', round(took, 2))
    record_property('serial_s', TASKS * TASK_SECONDS)
    assert sorted(per_worker.values()) == [2, 2], per_worker
    first, second = sorted(per_worker)
    assert any(
        a.start < b.end and b.start < a.end for a in done if a.pid == first for b in done if b.pid == second
    ), 'the workers were never busy at the same time'
    # so the whole took less than the four tasks one after the other
    assert took < TASKS * TASK_SECONDS
    run.send(signal.SIGTERM)
    assert run.wait(60) == 0
