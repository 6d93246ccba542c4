"""Plain pickles decoded as a batch (one unpickler call) give what each gives alone, or nothing."""

from __future__ import annotations

import collections
import datetime
import decimal
import pickle
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sergeant import Task, config
from sergeant.codec import TaskCodec
from sergeant.connector import Deliveries, create_connector
from sergeant.encoder import Encoder
from sergeant.encoder.serializer import PICKLE_PROTOCOL, unpickle_spliced

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary(),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=5), inner, max_size=5)
        | st.frozensets(st.integers(), max_size=3)
    ),
    max_leaves=30,
)


def pickled(value: Any) -> bytes:
    return pickle.dumps(value, protocol=PICKLE_PROTOCOL)


@given(batch=st.lists(values, min_size=1, max_size=20))
def test_a_batch_decodes_to_each_payload_s_own_value(batch: list[Any]) -> None:
    assert unpickle_spliced([pickled(value) for value in batch]) == batch


def test_objects_shared_inside_a_payload_stay_shared_and_none_leak_to_the_next() -> None:
    shared: list[int] = [1, 2]
    cycle: list[Any] = []
    cycle.append(cycle)
    many_strings = [f'value {n}' for n in range(400)]  # memo indices past 255 (LONG_BINPUT)
    batch = [
        {'a': shared, 'b': shared},
        cycle,
        many_strings,
        {'a': shared, 'b': shared},
        datetime.datetime(2026, 12, 6, 7, 30),
        decimal.Decimal('1.25'),
        collections.OrderedDict(z=1, a=2),
        {3, 1, 2},
    ]

    decoded = unpickle_spliced([pickled(value) for value in batch])

    assert decoded is not None
    first, again = decoded[0], decoded[3]
    assert first == again == {'a': [1, 2], 'b': [1, 2]}
    assert first['a'] is first['b'] and again['a'] is again['b'] and first['a'] is not again['a']
    assert decoded[1][0] is decoded[1]
    assert decoded[2] == many_strings
    assert decoded[4:] == batch[4:]


@pytest.mark.parametrize(
    'odd_one',
    [
        pickle.dumps({'x': 1}, protocol=5),  # memo by position: cannot be spliced
        pickle.dumps({'x': 1}, protocol=4),
        b'',
        b'\x80',
        b'\x80\x03 not a pickle.',
        pickled({'x': 1}) + b'trailing bytes',
        pickled({'x': 1})[:-1],  # cut before its STOP
        pickled({'x': 1})[:-1] + pickled(2),  # two values in one payload
    ],
    ids=['protocol 5', 'protocol 4', 'empty', 'one byte', 'garbage', 'trailing', 'no stop', 'two values'],
)
def test_a_batch_with_a_payload_it_cannot_splice_decodes_to_nothing(odd_one: bytes) -> None:
    assert unpickle_spliced([pickled('before'), odd_one, pickled('after')]) is None


def test_an_empty_batch_decodes_to_nothing() -> None:
    assert unpickle_spliced([]) is None


@pytest.mark.parametrize(
    'settings',
    [
        config.Encoder(serializer='msgpack'),
        config.Encoder(compressor='zlib'),
        config.Encoder(signing_key='k' * 32),
    ],
    ids=['msgpack', 'compressed', 'signed'],
)
def test_only_plain_pickles_are_decoded_as_a_batch(settings: config.Encoder) -> None:
    encoder = Encoder(settings)

    assert encoder.decode_plain_batch([encoder.encode({'x': 1}), encoder.encode({'x': 2})]) is None


def test_plain_pickles_are_decoded_as_a_batch() -> None:
    encoder = Encoder()

    assert encoder.decode_plain_batch([encoder.encode({'x': 1}), encoder.encode((2,))]) == [{'x': 1}, (2,)]


def test_a_pop_with_a_foreign_payload_among_tasks_dead_letters_only_that_one(tmp_path: Path) -> None:
    connector = create_connector('local', {'file_path': str(tmp_path / 'broker.sqlite3')})
    codec = TaskCodec(connector, Encoder())
    codec.push_tasks('q', [Task(kwargs={'n': 0})])
    connector.push('q', [pickled('a string, spliceable but no task')], 'NORMAL', None)
    codec.push_tasks('q', [Task(kwargs={'n': 1})])

    popped = codec.pop_tasks('q', 10, lease_seconds=30)

    assert [task.kwargs for task in popped.tasks] == [{'n': 0}, {'n': 1}]
    [letter] = popped.dead_lettered
    assert 'not a Sergeant task' in letter.reason
    connector.close()


def test_tasks_written_by_earlier_versions_still_decode() -> None:
    """Before the tuple envelope of protocol 3: a list pickled with protocol 5, and before that
    one without its ready time."""
    codec = TaskCodec(create_connector('local', {'file_path': ':memory:'}), Encoder())
    now = time.time()
    payloads = [
        pickle.dumps([{'n': 0}, None, now, 0, now], protocol=5),
        pickle.dumps([{'n': 1}, 'trace', now, 2], protocol=5),
        codec.encode_task(Task(kwargs={'n': 2}, date=now)),
    ]

    popped = codec.decode_deliveries('q', Deliveries(payloads, [b'a', b'b', b'c'], [1, 1, 1]))

    assert [(task.kwargs, task.trace_id, task.run_count) for task in popped.tasks] == [
        ({'n': 0}, None, 0),
        ({'n': 1}, 'trace', 2),
        ({'n': 2}, None, 0),
    ]
    assert popped.ready_at == [now, now, now] and not popped.dead_lettered


def test_pickles_after_a_header_are_read_in_place() -> None:
    header = b'\x00\x03.' * 4  # bytes that would pass for a protocol and a STOP were they read
    stored = [header + pickled(value) for value in ({'x': 1}, (2, 'b'), None)]

    assert unpickle_spliced(stored, offset=len(header)) == [{'x': 1}, (2, 'b'), None]
    assert unpickle_spliced([header + pickle.dumps(1, protocol=5)], offset=len(header)) is None
    assert unpickle_spliced([header[:5]], offset=len(header)) is None
