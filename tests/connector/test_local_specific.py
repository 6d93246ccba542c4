"""Local (SQLite) connector behaviour beyond the shared contract: rows other clients wrote."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sergeant import Task, config
from sergeant.codec import TaskCodec
from sergeant.connector import create_connector
from sergeant.encoder import Encoder


@pytest.mark.parametrize(
    ('payload', 'redeliveries'),
    [('junk as text', 0), (b'junk', 'many'), (42, 0)],
)
def test_a_foreign_row_in_a_queue_is_dead_lettered_and_never_wedges_it(
    tmp_path: Path, payload: object, redeliveries: object
) -> None:
    path = tmp_path / 'broker.sqlite3'
    connector = create_connector('local', {'file_path': str(path)})
    codec = TaskCodec(connector, Encoder(config.Encoder()))
    with sqlite3.connect(path) as raw:
        raw.execute(
            'INSERT INTO items (queue, payload, priority, ready_at, redeliveries) VALUES (?, ?, 1, 0, ?)',
            ('q', payload, redeliveries),
        )
    codec.push_tasks('q', [Task(kwargs={'n': n}) for n in range(5)])

    popped = codec.pop_tasks('q', 10, lease_seconds=30)

    assert [task.kwargs['n'] for task in popped.tasks] == list(range(5))
    [letter] = popped.dead_lettered
    assert isinstance(letter.payload, bytes) and 'undecodable' in letter.reason
    assert connector.dead_letter_length('q') == 1
    assert connector.length('q') == 0
    connector.close()
