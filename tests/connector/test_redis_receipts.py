"""How the Redis connector packs acknowledgements: runs of recent groups, the rest back to back."""

from __future__ import annotations

import struct

from sergeant.connector.redis_receipts import (
    GROUP_ID_SIZE,
    RECEIPT_SIZE,
    RECENT_GROUPS,
    RUN_TAG,
    group_receipts,
    new_group_id,
    packed_receipts,
)


def _runs(argument: bytes) -> list[tuple[bytes, int, int]]:
    assert argument.startswith(RUN_TAG)
    body = argument[len(RUN_TAG) :]
    size = GROUP_ID_SIZE + 8
    return [
        (body[i : i + GROUP_ID_SIZE], *struct.unpack_from('>II', body, i + GROUP_ID_SIZE))
        for i in range(0, len(body), size)
    ]


def _receipts(argument: bytes) -> list[bytes]:
    return [argument[i : i + RECEIPT_SIZE] for i in range(0, len(argument), RECEIPT_SIZE)]


def test_receipts_in_pop_order_become_one_run_per_group() -> None:
    first, second = new_group_id(), new_group_id()
    older, newer = group_receipts(first, 1000), group_receipts(second, 1000)

    [runs] = packed_receipts(older[500:] + newer[:300])

    assert _runs(runs) == [(first, 500, 500), (second, 0, 300)]


def test_equal_receipts_made_elsewhere_pack_the_same() -> None:
    group = new_group_id()
    receipts = group_receipts(group, 10)

    [runs] = packed_receipts([bytes(receipt) for receipt in receipts[2:7]])

    assert _runs(runs) == [(group, 2, 5)]


def test_out_of_order_receipts_keep_the_longest_runs_and_send_the_rest_one_by_one() -> None:
    group = new_group_id()
    receipts = group_receipts(group, 10)

    runs, rest = packed_receipts([*receipts[0:4], receipts[8], receipts[5], *receipts[6:8], receipts[4]])

    assert _runs(runs) == [(group, 0, 4), (group, 5, 3)]
    assert _receipts(rest) == [receipts[8], receipts[4]]


def test_receipts_of_unknown_groups_go_back_to_back_and_foreign_sizes_are_dropped() -> None:
    unknown = [b'f' * GROUP_ID_SIZE + position.to_bytes(4, 'big') for position in range(3)]

    [packed] = packed_receipts((b'', *unknown, b'x' * 7))

    assert _receipts(packed) == unknown
    assert packed_receipts([]) == []


def test_only_the_most_recent_groups_are_remembered() -> None:
    forgotten = group_receipts(new_group_id(), 4)
    for _ in range(RECENT_GROUPS):
        group_receipts(new_group_id(), 1)

    [packed] = packed_receipts(forgotten)

    assert _receipts(packed) == forgotten
