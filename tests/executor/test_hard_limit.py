"""The hard limit: a task that ignores its timeout is killed with its worker process.

Real worker processes (``tests/workers/timeout_hog.py``) on the embedded broker;
the test plays the supervisor and starts each replacement worker itself.
"""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from .conftest import HogWorkers, is_gone, wait_until

TIMEOUT = 1.0
GRACE_PERIOD = 1.0
HARD_LIMIT = TIMEOUT + GRACE_PERIOD
QUICK = [(f'quick-{number}', 'quick') for number in range(3)]


def wait_for_exit(worker: subprocess.Popen[bytes], timeout: float = 60) -> tuple[int, float]:
    """Return the exit code and the monotonic time the process was seen to end."""
    code = worker.wait(timeout=timeout)
    return code, time.monotonic()


@pytest.mark.parametrize(
    ('threads', 'kind'),
    [(1, 'gil'), (2, 'regex'), (2, 'gil')],
    ids=['serial-c-loop', 'threaded-regex', 'threaded-c-loop'],
)
def test_task_holding_the_gil_is_killed_redelivered_and_finally_dead_lettered(
    hog_workers: HogWorkers, threads: int, kind: str
) -> None:
    # given a task that holds the GIL for hours, queued before quick tasks, with one retry allowed
    hog_workers.push(('hog', kind), *QUICK)

    # when a worker runs it
    first = hog_workers.start(threads, TIMEOUT, GRACE_PERIOD, max_retries=1)
    code, ended_at = wait_for_exit(first)

    # then the killer killed the worker within a second after the hard limit
    [started] = hog_workers.events('start', 'hog')
    assert code == -signal.SIGKILL
    assert HARD_LIMIT - 0.05 <= ended_at - started.at <= HARD_LIMIT + 1.0
    assert 'killed the worker' in hog_workers.stderr.read_text()
    assert not hog_workers.events('done', 'hog')

    # when the next worker runs: the task comes back as a retry, and is killed again
    second = hog_workers.start(threads, TIMEOUT, GRACE_PERIOD, max_retries=1)
    assert wait_for_exit(second)[0] == -signal.SIGKILL
    assert [event.run_count for event in hog_workers.events('start', 'hog')] == [0, 1]

    # when a third worker runs: the task used up its retry and goes to the dead-letter queue
    third = hog_workers.start(threads, TIMEOUT, GRACE_PERIOD, max_retries=1)
    assert wait_for_exit(third)[0] == 0

    # then the task never ran a third time and is a dead letter
    assert [event.run_count for event in hog_workers.events('start', 'hog')] == [0, 1]
    letters = hog_workers.broker.dead_tasks(hog_workers.queue, 10)
    dead = {letter.task.kwargs['id']: letter.reason for letter in letters if letter.task is not None}
    assert 'redelivered' in dead.pop('hog')
    # and no other task was lost: with threads, a task another thread had taken is
    # killed with the worker, so it may use up its retries too
    done = {event.task_id for event in hog_workers.events('done')}
    assert done | set(dead) == {task_id for task_id, _ in QUICK}
    if threads == 1:
        assert not dead
    # and the killer processes are gone
    killers = hog_workers.killer_pids()
    assert killers
    assert wait_until(lambda: all(is_gone(pid) for pid in killers), timeout=5)


def test_serial_soft_timeout_interrupts_a_regex_without_a_kill(hog_workers: HogWorkers) -> None:
    # given a catastrophic regex: it holds the GIL, but the regex engine checks for signals
    hog_workers.push(('regex', 'regex'), *QUICK)

    # when a serial worker runs it
    worker = hog_workers.start(1, TIMEOUT, GRACE_PERIOD)

    # then the soft timeout stops it, and the worker lives on to run the other tasks
    assert wait_for_exit(worker)[0] == 0
    [timed_out] = hog_workers.events('timeout', 'regex')
    [started] = hog_workers.events('start', 'regex')
    assert TIMEOUT - 0.05 <= timed_out.at - started.at <= TIMEOUT + 1.0
    assert {event.task_id for event in hog_workers.events('done')} == {task_id for task_id, _ in QUICK}


@pytest.mark.parametrize('threads', [1, 3])
def test_killer_process_exits_when_its_worker_dies(hog_workers: HogWorkers, threads: int) -> None:
    # given a worker running a long task under a killer process
    hog_workers.push(('sleeper', 'sleep'))
    worker = hog_workers.start(threads, timeout=60, grace_period=60)
    assert wait_until(lambda: bool(hog_workers.events('start')), timeout=30)
    [killer] = hog_workers.killer_pids()

    # when the worker dies without a chance to stop its killer
    worker.send_signal(signal.SIGKILL)
    worker.wait()

    # then the killer notices and exits by itself
    assert wait_until(lambda: is_gone(killer), timeout=5)
