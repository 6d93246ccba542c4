"""What workers report: messages survive the pipe, exit codes say why, summaries read well."""

from __future__ import annotations

import datetime
from collections import Counter

from sergeant.loop.summary import LoopEnd
from sergeant.supervisor.child import exit_code_of
from sergeant.supervisor.ledger import describe_summary
from sergeant.supervisor.protocol import ChildExit, Event, MessageReader, encode_message

SUMMARY = {
    'start_time': datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
    'end_time': datetime.datetime(2025, 1, 2, 3, 5, 5, tzinfo=datetime.timezone.utc),
    'stop': False,
    'respawn': False,
    'executor_exception': None,
    'initialize_exception': None,
    'finalize_exception': ValueError('disk full'),
    'executor': {'total_wall_time': 60.0, 'total_cpu_time': 15.0, 'cpu_utilization': 0.25},
    'tasks': Counter({'success': 7, 'failure': 1}),
    'reason': LoopEnd.MAX_TASKS_PER_RUN,
    'process': {'user_cpu_seconds': 14.5, 'system_cpu_seconds': 1.25, 'peak_rss_bytes': 52 * 2**20},
}


def test_summary_crosses_the_pipe_in_pieces() -> None:
    # given a summary encoded by a worker, read in two arbitrary chunks after a "ready"
    data = encode_message(Event.READY) + encode_message(Event.SUMMARY, summary=SUMMARY)
    reader = MessageReader()

    # when the supervisor feeds the chunks
    messages = [*reader.feed(data[:17]), *reader.feed(data[17:])]

    # then it gets both messages, with JSON-safe values
    assert [message['event'] for message in messages] == ['ready', 'summary']
    summary = messages[1]['summary']
    assert summary['start_time'] == '2025-01-02T03:04:05+00:00'
    assert summary['finalize_exception'] == 'ValueError: disk full'
    assert summary['tasks'] == {'success': 7, 'failure': 1}
    assert summary['reason'] == 'max_tasks_per_run'


def test_garbage_on_the_pipe_is_reported_not_raised() -> None:
    messages = list(MessageReader().feed(b'not json\n[1, 2]\n{"no": "event"}\n'))

    assert [message['event'] for message in messages] == ['garbled'] * 3


def test_exit_code_tells_why_the_loop_ended() -> None:
    assert exit_code_of(SUMMARY) is ChildExit.FINISHED
    assert exit_code_of({**SUMMARY, 'respawn': True, 'reason': 'respawn'}) is ChildExit.RESPAWN
    assert exit_code_of({**SUMMARY, 'stop': True, 'reason': 'stop'}) is ChildExit.STOP
    assert exit_code_of({**SUMMARY, 'reason': 'initialize_exception'}) is ChildExit.START_FAILED
    assert exit_code_of({**SUMMARY, 'reason': 'executor_exception'}) is ChildExit.LOOP_FAILED


def test_a_loop_stopped_by_sigterm_finishes_normally_though_its_summary_says_stop() -> None:
    assert exit_code_of({**SUMMARY, 'stop': True, 'reason': 'signal'}) is ChildExit.FINISHED


def test_summary_is_described_on_one_line() -> None:
    reader = MessageReader()
    summary = next(iter(reader.feed(encode_message(Event.SUMMARY, summary=SUMMARY))))['summary']

    assert describe_summary(summary) == (
        'loop ended by max_tasks_per_run; ran 2025-01-02T03:04:05+00:00 to 2025-01-02T03:05:05+00:00; '
        'loop cpu 15.00 s of 60.00 s (25%); process cpu user 14.50 s system 1.25 s, peak rss 52 MiB; '
        'tasks: failure=1, success=7; finalize raised ValueError: disk full'
    )
