"""The intended differences between Sergeant 0.27 and ours: the one list the compat suite accepts.

Each :class:`Difference` names the observations it covers as ``'<program>:<path>'``
keys, where ``<path>`` is a flattened observation path (see ``compare.py``) and ``*``
stands for any text. A difference may also state the exact values both sides show
(:class:`Expected`): the event log lines are listed that way, so the table of 0.27's
lines and ours (:func:`log_wording_table`, printed by ``python -m tests.compat.differences``)
is checked data, not prose.

The comparison fails on a mismatch no difference covers, and on a key or an expected
value that no longer shows up: change this list together with the behaviour.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Expected:
    """One observation whose values differ as stated; ``label`` names it in tables."""

    key: str  # '<program>:<exact path>'
    theirs: Any
    ours: Any
    label: str = ''

    @property
    def program(self) -> str:
        return self.key.split(':', 1)[0]

    @property
    def path(self) -> str:
        return self.key.split(':', 1)[1]


@dataclasses.dataclass(frozen=True)
class Difference:
    id: str
    keys: tuple[str, ...]  # '<program>:<path pattern>'
    reason: str
    user_change: str  # what a user of 0.27 may need to change; 'nothing' when nothing
    expected: tuple[Expected, ...] = ()

    def patterns_for(self, program: str) -> list[str]:
        """The path patterns this difference covers in ``program`` (its expected paths included)."""
        keys = [key.split(':', 1) for key in self.keys]
        return [path for name, path in keys if name == program] + [
            expected.path for expected in self.expected if expected.program == program
        ]

    def expected_for(self, program: str) -> list[Expected]:
        return [expected for expected in self.expected if expected.program == program]

    @property
    def programs(self) -> set[str]:
        return {key.split(':', 1)[0] for key in self.keys} | {expected.program for expected in self.expected}


def _line(label: str, theirs: str, ours: str, *keys: str) -> tuple[Expected, ...]:
    return tuple(Expected(key, theirs, ours, label) for key in keys)


# the programs whose observations include work_loop() summaries
_SUMMARY_PROGRAMS = (
    'control_flow',
    'dead_letters',
    'events_log',
    'sigterm',
    'timeouts_serial',
    'work_loop_serial',
    'work_loop_threaded',
)

DIFFERENCES: tuple[Difference, ...] = (
    Difference(
        id='at-least-once',
        keys=(
            'crash_redelivery:redis_keys.value',
            'crash_redelivery:purge.value',
            'construction:fields.WorkerConfig.delivery',
            'supervisor_class:done.items[3].*',
            'supervisor_class:replaced_the_bloated_worker.value',
        ),
        reason=(
            'Delivery is at-least-once by default: a popped task is leased, not deleted, until its worker '
            'acknowledges it. The task of a worker that died is delivered again with run_count increased: '
            'at once when the supervisor replaces the worker (the replacement hands back what the dead one '
            'held), otherwise once the lease expires (60 s by default); 0.27 popped and lost it. So a task '
            'that got its worker killed (memory limit, crash) runs again unless max_retries stops it. '
            'purge_tasks() also removes leased tasks (so it finds something to delete here). '
            'WorkerConfig has a `delivery` field for it.'
        ),
        user_change=(
            "Make tasks safe to run more than once, or keep 0.27's behaviour with WorkerConfig("
            "delivery=Delivery(guarantee='at_most_once')). Tools that count a queue's Redis keys also see "
            'the lease keys.'
        ),
    ),
    Difference(
        id='dead-letter-queue',
        keys=(
            'dead_letters:max_retries.redis_keys_after_the_loop.value',
            'dead_letters:max_retries.redis_keys_after_purge.value',
            'dead_letters:undecodable.redis_keys_after_the_loop.value',
            'dead_letters:undecodable.redis_keys_after_purge.value',
            'dead_letters:undecodable.log[0].message',
            'construction:fields.LoggingEvents.on_dead_letter',
        ),
        reason=(
            "A task that reaches max_retries, or a payload that cannot be decoded, goes to the queue's "
            'dead-letter queue (one more Redis key, which purge_tasks() leaves alone); 0.27 dropped it (an '
            "undecodable payload made 0.27 log 'could not pull tasks: ...' and lose the whole transaction). "
            'LoggingEvents has an `on_dead_letter` flag for it.'
        ),
        user_change=(
            'Inspect, replay or drop dead letters with number_of_dead_letter_tasks(), dead_letter_tasks(), '
            'requeue_dead_letter_tasks() and purge_dead_letter_tasks(); alerts on "could not pull tasks" '
            'should look for "payload dead-lettered" instead.'
        ),
    ),
    Difference(
        id='hmac-signing',
        keys=('construction:fields.Encoder.signing_key',),
        reason='Encoder has an optional `signing_key` (HMAC-SHA256 of every payload); off by default.',
        user_change='Nothing, unless code lists the fields of Encoder (dataclasses.fields/asdict).',
    ),
    Difference(
        id='metrics-endpoint',
        keys=('supervisor_cli:supervisor_listened.value',),
        reason=(
            'The supervisor serves /metrics, /healthz and /readyz on 0.0.0.0:9808 by default (and runs on '
            'without them when that port is taken); 0.27 listened on nothing.'
        ),
        user_change='Allow or block the port as needed; --metrics-port 0 turns the endpoints off.',
    ),
    Difference(
        id='summary-extra-keys',
        keys=tuple(
            f'{program}:*summary.{key}*'
            for program in _SUMMARY_PROGRAMS
            for key in ('reason', 'process', 'tasks')
        ),
        reason=(
            'The work_loop() summary has three more keys: `reason` (why the loop ended), `process` (CPU '
            'seconds and peak RSS of the process) and `tasks` (outcome counts).'
        ),
        user_change="Nothing, unless code expects exactly 0.27's keys.",
    ),
    Difference(
        id='supervisor-log-wording',
        keys=('supervisor_cli:log[*', 'supervisor_class:log[*'),
        reason=(
            'The supervisor logs other lines, in other words: one line per worker start and end with the '
            "reason, exit code or signal and the worker's summary, the options it runs with, draining "
            'progress; `--log-format json` gives one JSON object per line.'
        ),
        user_change="Alerts or parsers reading 0.27's supervisor lines must be rewritten.",
    ),
    Difference(
        id='lock-owner',
        keys=('keys_and_locks:locks.set_ttl_by_other_object.returned.value',),
        reason=(
            'Only the lock object that acquired a lock can change its ttl (or release it): a lock carries '
            "an owner token, so a holder whose lock expired cannot touch the next owner's; 0.27 let any "
            'lock object of the same name do it.'
        ),
        user_change='Call set_ttl() on the lock object that acquired the lock.',
    ),
    Difference(
        id='new-options',
        keys=('construction:fields.Logging.format', 'construction:fields.WorkerConfig.stop_task_threads'),
        reason=(
            'More optional settings, all with defaults: Logging(format=...) for JSON log lines and '
            'WorkerConfig(stop_task_threads=...) to turn off the guard that ends the threads a task '
            'leaves running.'
        ),
        user_change=(
            'Nothing, unless code lists the fields of the config classes (dataclasses.fields/asdict).'
        ),
    ),
    Difference(
        id='graceful-sigterm',
        keys=('sigterm:busy.*',),
        reason=(
            'SIGTERM during a task lets that task finish (on_success or on_failure as usual) and hands the '
            'tasks fetched ahead back; 0.27 raised WorkerStop inside the running task and pushed it back, '
            'so a task could be cut off half-way.'
        ),
        user_change=(
            'Nothing, unless a task relies on being interrupted by SIGTERM; the supervisor still kills a '
            'task that outlives --drain-timeout.'
        ),
    ),
    Difference(
        id='high-priority-order',
        keys=('producer:pop_*',),
        reason=(
            "push_tasks(..., priority='HIGH') keeps the list's order at the head of the queue; 0.27 put "
            'the list at the head in reverse order.'
        ),
        user_change='Nothing, unless code relied on the reversed order.',
    ),
    Difference(
        id='logstash-line-end',
        keys=('logstash:plain.payloads[*].ends_with_newline.value',),
        reason=(
            "LogstashHandler ends every JSON document with a newline, as Logstash's json_lines codec "
            'expects; 0.27 sent the documents back to back.'
        ),
        user_change="Nothing with Logstash's tcp input and the json_lines codec (or json, which accepts it).",
    ),
    Difference(
        id='log-records',
        keys=(
            'control_flow:*.exc_info',
            'events_log:*.exc_info',
            'control_flow:*.extra',
            'events_log:*.extra',
        ),
        reason=(
            'Log records of failures carry the traceback (exc_info), and records of task events carry the '
            "task's trace_id as an attribute, for JSON logs and tracing."
        ),
        user_change='Nothing, unless a custom handler or formatter must not print tracebacks.',
    ),
    Difference(
        id='log-wording',
        keys=(),
        reason='The worker logs its events and hook failures in other words (same levels).',
        user_change="Log searches and alerts on 0.27's lines must use the new wording (table below).",
        expected=(
            *_line(
                'on_success',
                'task has finished successfully',
                'task succeeded',
                'events_log:events.log.on_success[0].message',
                'events_log:starving_after_a_long_task.log.on_success[0].message',
            ),
            *_line(
                'on_failure',
                'task has failed',
                'task failed',
                'events_log:events.log.on_failure[0].message',
                'control_flow:HooksRaise.log[3].message',
                'control_flow:RespawnInOnFailure.log[0].message',
            ),
            *_line(
                'on_timeout',
                'task has timedout',
                'task timed out',
                'events_log:events.log.on_timeout[0].message',
            ),
            *_line(
                'on_retry',
                'task has retried',
                'task retried',
                'events_log:events.log.on_retry[0].message',
                'dead_letters:max_retries.log[0].message',
            ),
            *_line(
                'on_max_retries',
                'task has reached max retries',
                'task reached max retries',
                'events_log:events.log.on_max_retries[0].message',
                'dead_letters:max_retries.log[1].message',
            ),
            *_line(
                'on_requeue',
                'task has requeued',
                'task requeued',
                'events_log:events.log.on_requeue[0].message',
            ),
            *_line(
                'on_stop',
                'task has stopped',
                'worker stopped while running a task',
                'work_loop_threaded:stopping.log.on_stop[0].message',
            ),
            *_line(
                'SIGTERM',
                'stop signal has been received',
                'stop signal received',
                'sigterm:idle.observed.log[0].message',
                'sigterm:busy.observed.log[0].message',
            ),
            *_line(
                'initialize raised',
                'initialize has failed: <error>',
                'initialize failed: <error>',
                'control_flow:InitializeRaises.log[0].message',
            ),
            *_line(
                'finalize raised',
                'finalize has failed: <error>',
                'finalize failed: <error>',
                'control_flow:FinalizeRaises.log[0].message',
            ),
            *_line(
                'pre_work raised',
                'pre_work has failed: <error>',
                'pre_work failed: <error>',
                'control_flow:HooksRaise.log[0].message',
            ),
            *_line(
                'post_work raised',
                'post_work has failed: <error>',
                'post_work failed: <error>',
                'control_flow:HooksRaise.log[1].message',
            ),
            *_line(
                'on_success raised',
                'on_success handler has failed: <error>',
                'on_success handler failed: <error>',
                'control_flow:HooksRaise.log[2].message',
            ),
            *_line(
                'on_failure raised',
                'on_failure handler has failed: <error>',
                'on_failure handler failed: <error>',
                'control_flow:HooksRaise.log[4].message',
            ),
        ),
    ),
)


def by_id(difference_id: str) -> Difference:
    return next(difference for difference in DIFFERENCES if difference.id == difference_id)


def log_wording_table() -> str:
    """The event log lines of 0.27 and ours, as a Markdown table (for the README)."""
    rows = ['| event | Sergeant 0.27 | ours |', '| --- | --- | --- |']
    seen: set[tuple[str, str, str]] = set()
    for expected in by_id('log-wording').expected:
        row = (expected.label, str(expected.theirs), str(expected.ours))
        if row not in seen:
            seen.add(row)
            rows.append(f'| {row[0]} | `{row[1]}` | `{row[2]}` |')
    return '\n'.join(rows)


def differences_table() -> str:
    """Every intended difference, as the Markdown table of the README's "Coming from Sergeant 0.27"."""
    rows = ['| difference | what and why | what you may need to change |', '| --- | --- | --- |']
    rows += [f'| `{item.id}` | {item.reason} | {item.user_change} |' for item in DIFFERENCES]
    return '\n'.join(rows)


if __name__ == '__main__':  # python -m tests.compat.differences: the README's two tables
    print(differences_table())
    print()
    print(log_wording_table())
