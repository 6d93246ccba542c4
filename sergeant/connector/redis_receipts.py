"""Receipts of the Redis connector: made per lease group, sent back packed.

A pop leases its items as one group (see ``lua/leases.lua``); the receipt of an item is
the group's id then the item's position in the group (4 bytes, big-endian). A worker
acknowledges the items of a group mostly in pop order, so acknowledgements are sent
as script arguments of two kinds:

* a *run*: ``'R'`` then, per run, the group id, the first position and the count
  (4 bytes each, big-endian): the receipts of consecutive positions of one group, in order;
* receipts back to back, for the rest.

A run is only sent for receipts that are exactly the receipts of consecutive positions,
in order, of a group this process leased recently (:func:`group_receipts` keeps the
last :data:`RECENT_GROUPS`); the comparison is one list comparison in C. So a batch
of a thousand acknowledgements costs the client a few list slices and Redis a loop
over bits, instead of formatting and parsing a thousand arguments.
"""

from __future__ import annotations

import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Sequence

from .runs import run_length

GROUP_ID_BYTES = 8  # random bytes of a lease group id, sent as 16 hex characters
GROUP_ID_SIZE = 2 * GROUP_ID_BYTES
RECEIPT_SIZE = GROUP_ID_SIZE + 4  # the group id's hex, then the position
RUN_TAG = b'R'
RECEIPTS_PER_ARGUMENT = 5000  # keeps single arguments (and Lua's work on one) small
RECENT_GROUPS = 64

_POSITION = struct.Struct('>I')
_RUN = struct.Struct('>II')  # first position, count
_POSITIONS: list[bytes] = []
_recent: OrderedDict[bytes, list[bytes]] = OrderedDict()
_recent_guard = threading.Lock()


def new_group_id() -> bytes:
    """The id of a new lease group: random, printable, so key names stay readable."""
    return os.urandom(GROUP_ID_BYTES).hex().encode()


def group_receipts(group_id: bytes, count: int) -> list[bytes]:
    """Receipts of the ``count`` items of a lease group: its id, then each position (4 bytes)."""
    if len(_POSITIONS) < count:
        _POSITIONS.extend(_POSITION.pack(position) for position in range(len(_POSITIONS), count))
    receipts = [group_id + position for position in _POSITIONS[:count]]
    with _recent_guard:
        _recent[group_id] = receipts
        if len(_recent) > RECENT_GROUPS:
            _recent.popitem(last=False)
    return receipts


def packed_receipts(receipts: Sequence[bytes]) -> list[bytes]:
    """Receipts as script arguments: runs of recent groups and packed receipts (see the module docstring).

    Receipts of another size than ours are left out: no lease has them.
    """
    receipts = receipts if isinstance(receipts, list) else list(receipts)
    runs: list[bytes] = []
    others: list[bytes] = []
    with _recent_guard:
        recent = dict(_recent)
    index, total = 0, len(receipts)
    while index < total:
        receipt = receipts[index]
        if len(receipt) != RECEIPT_SIZE:
            index += 1
            continue
        group = recent.get(receipt[:GROUP_ID_SIZE])
        first = _POSITION.unpack_from(receipt, GROUP_ID_SIZE)[0]
        count = 0 if group is None else run_length(receipts, index, group, first)
        if count > 1:
            runs.append(receipt[:GROUP_ID_SIZE] + _RUN.pack(first, count))
            index += count
            continue
        others.append(receipt)
        index += 1
    arguments = [RUN_TAG + b''.join(runs)] if runs else []
    arguments += [
        b''.join(others[start : start + RECEIPTS_PER_ARGUMENT])
        for start in range(0, len(others), RECEIPTS_PER_ARGUMENT)
    ]
    return arguments
