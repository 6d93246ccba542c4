"""The ledger turns what workers report into logged summaries and pool totals."""

from __future__ import annotations

import logging
import os
import types
from typing import Any, cast

import pytest

from sergeant.supervisor.ledger import Ledger
from sergeant.supervisor.process import EndReason, WorkerProcess
from sergeant.supervisor.protocol import ChildExit, Event, encode_message
from tests.supervisor.test_protocol import SUMMARY


def ended_process(pid: int, exit_code: int, *messages: bytes) -> WorkerProcess:
    """A WorkerProcess whose worker wrote ``messages`` and exited with ``exit_code``."""
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b''.join(messages))
    os.close(write_fd)
    popen = cast(Any, types.SimpleNamespace(pid=pid, returncode=None))
    process = WorkerProcess(0, popen, read_fd)
    process.exited(exit_code)
    process.close_reports()
    return process


def test_summaries_add_up_and_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    # given a ledger and two workers that ended after reporting their summaries
    ledger = Ledger()
    summary = encode_message(Event.SUMMARY, summary=SUMMARY)
    first = ended_process(101, ChildExit.FINISHED, encode_message(Event.READY), summary)
    second = ended_process(102, ChildExit.RESPAWN, encode_message(Event.READY), summary)

    # when their ends are recorded
    with caplog.at_level(logging.INFO, logger='sergeant.supervisor'):
        for process in (first, second):
            ledger.started(process)
            ledger.ended(process, process.end_reason)

    # then totals add up and each end is logged with its summary
    assert ledger.snapshot() == {
        'workers_started': 2,
        'workers_ended': {'finished': 1, 'respawn_asked': 1},
        'task_outcomes': {'success': 14, 'failure': 2},
        'cpu_seconds': 30.0,
    }
    assert 'worker 102 (slot 0) ended after' in caplog.text
    assert 'respawn asked, exit code 10; loop ended by max_tasks_per_run; ran 2025-01-02' in caplog.text


def test_worker_killed_by_a_signal_without_summary_counts_as_crashed() -> None:
    process = ended_process(103, -9, encode_message(Event.READY))

    assert process.end_reason is EndReason.CRASHED
    assert process.describe_exit() == 'signal SIGKILL'
    assert process.ready


def test_reported_load_failure_wins_over_the_exit_status() -> None:
    process = ended_process(104, -15, encode_message(Event.LOAD_FAILED, error='no module m'))

    assert process.end_reason is EndReason.LOAD_FAILED
    assert process.error == 'no module m'
