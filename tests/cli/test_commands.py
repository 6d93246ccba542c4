"""``sergeant queues``, ``dlq``, ``push`` and ``purge`` on SQLite, Redis and FerretDB.

Each test sets the scene through a connector, runs the command as a subprocess
(no terminal), and checks its output, its exit code and the broker afterwards.
"""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path

import pytest

from sergeant import config
from sergeant.codec import TaskCodec
from sergeant.connector import DeadLetter, create_connector
from sergeant.encoder import Encoder
from sergeant.objects import Task

from .conftest import Broker, run_sergeant

KEY = 'k' * 32
JSON_SIGNED = {'SERGEANT_SIGNING_KEY': KEY}


def signed_json_codec(broker: Broker) -> TaskCodec:
    return TaskCodec(broker.connector, Encoder(config.Encoder(serializer='json', signing_key=KEY)))


def test_queues_shows_every_count_and_the_age_of_the_next_task(broker: Broker) -> None:
    queue = broker.queue
    broker.connector.push(queue, [b'a', b'b', b'c'])
    broker.connector.push(queue, [b'later'], consumable_from=time.time() + 60)
    broker.connector.pop(queue, 1, lease_seconds=30)
    broker.connector.dead_letter(queue, [DeadLetter(b'x', 'failed')])
    time.sleep(1.1)

    result = run_sergeant('queues', '--json', '--broker', broker.url)

    assert result.returncode == 0, result.stderr
    [row] = [row for row in json.loads(result.stdout) if row['queue'] == queue]
    assert row | {'oldest_age_seconds': 0} == {
        'queue': queue,
        'ready': 2,
        'delayed': 1,
        'in_flight': 1,
        'dead_letters': 1,
        'oldest_age_seconds': 0,
    }
    assert 1 <= row['oldest_age_seconds'] < 30
    table = run_sergeant('queues', queue, '--broker', broker.url)
    assert table.stdout.splitlines()[0].split() == [
        'QUEUE',
        'READY',
        'DELAYED',
        'IN',
        'FLIGHT',
        'DEAD',
        'OLDEST',
    ]
    assert table.stdout.splitlines()[1].split()[:5] == [queue, '2', '1', '1', '1']


def test_push_encodes_a_task_the_workers_read(broker: Broker) -> None:
    result = run_sergeant(
        'push', broker.queue, '--kwargs', '{"to": "ops@example.com"}', '--priority', 'HIGH',
        '--trace-id', 't-1', '--serializer', 'json', '--broker', broker.url, env=JSON_SIGNED,
    )  # fmt: skip
    delayed = run_sergeant(
        'push', broker.queue, '--kwargs', '{}', '--delay', '60',
        '--serializer', 'json', '--broker', broker.url, env=JSON_SIGNED,
    )  # fmt: skip

    assert (result.returncode, delayed.returncode) == (0, 0), result.stderr + delayed.stderr
    assert broker.connector.length(broker.queue, include_delayed=True) == 2
    [task] = signed_json_codec(broker).pop_tasks(broker.queue, 5, lease_seconds=None).tasks
    assert (task.kwargs, task.trace_id, task.run_count) == (
        {'to': 'ops@example.com'},
        't-1',
        0,
    )


def test_dlq_list_show_requeue_with_reset_and_purge(broker: Broker) -> None:
    codec, queue = signed_json_codec(broker), broker.queue
    for i in range(3):
        codec.dead_letter_task(
            queue, Task(kwargs={'i': i}, trace_id=f'trace-{i}', run_count=4), 'max retries'
        )
    broker.connector.dead_letter(queue, [DeadLetter(b'not a task', 'undecodable payload')])
    flags = ('--serializer', 'json', '--broker', broker.url)

    listed = run_sergeant('dlq', 'list', queue, '--json', *flags, env=JSON_SIGNED)

    assert listed.returncode == 0, listed.stderr
    summary = json.loads(listed.stdout)
    letters = summary['letters']
    assert (summary['dead_letters'], summary['shown']) == (4, 4)
    assert [(e['attempts'], e['trace_id'], e['reason']) for e in letters] == [
        (5, 'trace-0', 'max retries'),
        (5, 'trace-1', 'max retries'),
        (5, 'trace-2', 'max retries'),
        (None, None, 'undecodable payload'),
    ]
    assert letters[3]['size'] == len(b'not a task')
    shown = run_sergeant('dlq', 'show', queue, letters[1]['id'], *flags, env=JSON_SIGNED)
    assert shown.returncode == 0, shown.stderr
    assert 'signature:  verified' in shown.stdout and '"i": 1' in shown.stdout
    wrong_key = run_sergeant(
        'dlq', 'show', queue, letters[1]['id'], *flags, env={'SERGEANT_SIGNING_KEY': 'w' * 32}
    )
    assert 'signature:  refused' in wrong_key.stdout and '"i"' not in wrong_key.stdout

    requeued = run_sergeant(
        'dlq',
        'requeue',
        queue,
        letters[0]['id'],
        letters[2]['id'],
        '--reset-retries',
        *flags,
        env=JSON_SIGNED,
    )

    assert requeued.returncode == 0, requeued.stderr
    assert 'requeued 2 dead letters' in requeued.stdout
    tasks = codec.pop_tasks(queue, 10, lease_seconds=None).tasks
    assert sorted((t.kwargs['i'], t.run_count) for t in tasks) == [(0, 0), (2, 0)]
    again = run_sergeant('dlq', 'requeue', queue, letters[0]['id'], *flags, env=JSON_SIGNED)
    assert again.returncode == 4 and 'not found' in again.stderr
    declined = run_sergeant('dlq', 'purge', queue, *flags)
    assert declined.returncode == 5 and '--yes' in declined.stderr
    purged = run_sergeant('dlq', 'purge', queue, '--yes', '--batch-size', '1', *flags)
    assert purged.returncode == 0, purged.stderr
    assert 'deleted 2 dead letters' in purged.stdout
    assert broker.connector.dead_letter_length(queue) == 0


def test_dlq_requeue_all_keeps_payloads_as_they_were(broker: Broker) -> None:
    broker.connector.dead_letter(broker.queue, [DeadLetter(b'p%d' % i, 'failed') for i in range(25)])

    result = run_sergeant(
        'dlq', 'requeue', broker.queue, '--all', '--batch-size', '7', '--broker', broker.url
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f'requeued 25 dead letters of {broker.queue}'
    popped = broker.connector.pop(broker.queue, 100, lease_seconds=None)
    assert sorted(m.payload for m in popped) == sorted(b'p%d' % i for i in range(25))


def test_purge_asks_without_yes_and_keeps_dead_letters(broker: Broker) -> None:
    broker.connector.push(broker.queue, [b'a', b'b'])
    broker.connector.dead_letter(broker.queue, [DeadLetter(b'x', 'failed')])

    declined = run_sergeant('purge', broker.queue, '--broker', broker.url)
    purged = run_sergeant('purge', broker.queue, '--yes', '--broker', broker.url)

    assert declined.returncode == 5 and 'pass --yes' in declined.stderr
    assert purged.returncode == 0, purged.stderr
    assert broker.connector.length(broker.queue, include_delayed=True) == 0
    assert broker.connector.dead_letter_length(broker.queue) == 1


class _Marker:
    """Unpickling it creates a file: proof that a payload was unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, 'w'))


@pytest.mark.parametrize('broker', ['sqlite'], indirect=True)
def test_unsigned_pickles_are_never_unpickled_unless_asked(broker: Broker, tmp_path: Path) -> None:
    marker = tmp_path / 'unpickled'
    payload = pickle.dumps([{'x': _Marker(str(marker))}, None, 0.0, 0, 0.0])
    broker.connector.dead_letter(broker.queue, [DeadLetter(payload, 'max retries')])
    [letter] = broker.connector.dead_letters(broker.queue)

    listed = run_sergeant('dlq', 'list', broker.queue, '--broker', broker.url)
    shown = run_sergeant('dlq', 'show', broker.queue, letter.id, '--broker', broker.url)
    reset = run_sergeant('dlq', 'requeue', broker.queue, '--all', '--reset-retries', '--broker', broker.url)

    assert (listed.returncode, shown.returncode, reset.returncode) == (0, 0, 2)
    assert 'unsigned pickle' in shown.stdout and '--unsafe-unpickle' in shown.stderr
    assert not marker.exists()
    unsafe = run_sergeant('dlq', 'show', broker.queue, letter.id, '--unsafe-unpickle', '--broker', broker.url)
    assert unsafe.returncode == 0 and marker.exists()


def test_the_broker_from_a_worker_module_signs_and_compresses_as_the_worker(tmp_path: Path) -> None:
    path = str(tmp_path / 'broker.sqlite3')
    env = {'CLI_TEST_BROKER': path, 'CLI_TEST_KEY': KEY}
    worker = ('--worker-module', 'tests.cli.worker_for_cli', '--worker-class', 'SignedWorker')

    pushed = run_sergeant('push', 'signed', '--kwargs', '{"n": 7}', *worker, env=env)
    queues = run_sergeant(
        'queues',
        '--json',
        env={**env, 'SERGEANT_WORKER_MODULE': worker[1], 'SERGEANT_WORKER_CLASS': worker[3]},
    )

    assert pushed.returncode == 0, pushed.stderr
    assert queues.returncode == 0, queues.stderr
    assert [(row['queue'], row['ready']) for row in json.loads(queues.stdout)] == [('signed', 1)]
    connector = create_connector('local', {'file_path': path})
    codec = TaskCodec(
        connector, Encoder(config.Encoder(serializer='msgpack', compressor='zlib', signing_key=KEY))
    )
    [task] = codec.pop_tasks('signed', 1, lease_seconds=None).tasks
    connector.close()
    assert task.kwargs == {'n': 7}


@pytest.mark.parametrize(
    ('arguments', 'code', 'message'),
    [
        (('queues',), 2, 'name the broker'),
        (('queues', '--broker', 'ftp://host'), 2, 'unknown scheme'),
        (('queues', '--broker', 'no/such/broker.sqlite3'), 2, 'no SQLite broker file'),
        (('queues', '--broker', 'redis://127.0.0.1:1/0'), 1, 'Redis queues failed'),
        (
            ('queues', '--worker-module', 'no_such_module', '--worker-class', 'W'),
            3,
            'cannot import worker module',
        ),
        (('push', 'q', '--kwargs', '[1]', '--broker', 'redis://127.0.0.1:1/0'), 2, 'must be a JSON object'),
        (('dlq', 'requeue', 'q', '--broker', 'redis://127.0.0.1:1/0'), 2, 'or --all'),
    ],
)
def test_errors_are_one_line_and_a_distinct_exit_code(
    arguments: tuple[str, ...], code: int, message: str
) -> None:
    result = run_sergeant(*arguments)

    assert result.returncode == code
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
    assert result.stderr.startswith('sergeant ')
