"""Task snapshots cross the report pipe intact, bad ones are refused, and totals add up."""

from __future__ import annotations

import pytest

from sergeant.metrics import DURATION_BUCKETS, OUTCOMES, WAIT_BUCKETS, TaskSnapshot, TaskTotals
from sergeant.supervisor.protocol import Event, MessageReader, encode_message

COUNTS = (3, 1) + (0,) * (len(DURATION_BUCKETS) - 1)
WAITS = (0, 2, 2) + (0,) * (len(WAIT_BUCKETS) - 2)


def snapshot(**changes: object) -> TaskSnapshot:
    fields: dict[str, object] = {
        'worker': 'crawl',
        'outcomes': {'success': 3, 'failure': 1},
        'duration_counts': COUNTS,
        'duration_sum': 0.25,
        'in_flight': 1,
        'fetch_errors': 2,
        'wait_counts': WAITS,
        'wait_sum': 0.02,
    }
    fields.update(changes)
    return TaskSnapshot(**fields)  # type: ignore[arg-type]


def test_a_snapshot_survives_the_pipe() -> None:
    # given a snapshot sent as a metrics message and read back in two chunks
    data = encode_message(Event.METRICS, **snapshot().to_fields())
    reader = MessageReader()
    [message] = [*reader.feed(data[:20]), *reader.feed(data[20:])]

    # then the supervisor reads the same snapshot
    assert message['event'] == 'metrics'
    assert TaskSnapshot.from_fields(message) == snapshot()


@pytest.mark.parametrize(
    ('field', 'value'),
    [
        ('worker', ''),
        ('outcomes', [1, 2]),
        ('outcomes', {'success': -1}),
        ('outcomes', {'success': True}),
        ('duration_counts', [1, 2, 3]),
        ('duration_sum', 'fast'),
        ('in_flight', 1.5),
        ('wait_counts', [1]),
        ('wait_counts', [-1] * (len(WAIT_BUCKETS) + 1)),
        ('wait_sum', float('nan')),
        ('wait_sum', -1.0),
    ],
)
def test_a_malformed_snapshot_is_refused_naming_the_field(field: str, value: object) -> None:
    fields = {**snapshot().to_fields(), field: value}

    with pytest.raises(ValueError, match=field):
        TaskSnapshot.from_fields(fields)


def test_totals_add_snapshots_up_and_list_cumulative_buckets() -> None:
    # given the totals of two processes of one worker
    totals = TaskTotals()
    totals.add(snapshot())
    totals.add(snapshot(outcomes={'success': 2, 'retry': 1}))

    # then outcomes, durations and errors add up, every outcome being present
    assert totals.outcomes == {**dict.fromkeys(OUTCOMES, 0), 'success': 5, 'failure': 1, 'retry': 1}
    assert totals.duration_sum == 0.5
    assert totals.fetch_errors == 4
    buckets = totals.cumulative_buckets()
    assert buckets[0] == (DURATION_BUCKETS[0], 6)
    assert buckets[1] == (DURATION_BUCKETS[1], 8)
    assert buckets[-1] == (float('inf'), 8)


def test_a_snapshot_of_an_earlier_version_without_waits_is_read_as_no_waits() -> None:
    fields = snapshot().to_fields()
    del fields['wait_counts'], fields['wait_sum']

    read = TaskSnapshot.from_fields(fields)

    assert read.wait_counts == (0,) * (len(WAIT_BUCKETS) + 1) and read.wait_sum == 0.0
    assert read.duration_counts == COUNTS


def test_totals_add_queue_waits_up() -> None:
    totals = TaskTotals()
    totals.add(snapshot())
    totals.add(snapshot(wait_counts=(1,) + (0,) * len(WAIT_BUCKETS), wait_sum=0.0005))

    assert totals.wait_sum == pytest.approx(0.0205)
    buckets = totals.cumulative_wait_buckets()
    assert buckets[:3] == [(WAIT_BUCKETS[0], 1), (WAIT_BUCKETS[1], 3), (WAIT_BUCKETS[2], 5)]
    assert buckets[-1] == (float('inf'), 5)
