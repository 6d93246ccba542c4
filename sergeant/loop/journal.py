"""A worker's note of the tasks it started, kept in a shared file for the worker after it.

When a worker process dies (SIGKILL, a segfault, a hard time limit), the tasks it
held are still leased at the broker. The supervisor starts its replacement with
the same journal file; the replacement reads what its predecessor noted and hands
the predecessor's leases back at once (:mod:`sergeant.loop.predecessor`): the tasks
that had started count as a delivery, the prefetched ones that never started do
not. That is why a worker notes each task as it hands it out, before it runs.

The file is mapped into memory, so noting a task is a few bytes written to
memory, no system call, and what was written survives the process's death. Its
layout::

    0     magic b'SGJ1'
    4     state: 0 = no worker running (or it ended cleanly), 1 = running
    5     1 when a receipt did not fit in a slot (the record is then incomplete)
    16    owner: length (2 bytes, little-endian) + UTF-8, at most OWNER_BYTES
    272   queue: length (2 bytes) + UTF-8, at most QUEUE_BYTES
    1024  ring of SLOTS slots of SLOT_BYTES: receipt length (1 byte) + receipt

The ring keeps the receipts of the last :data:`SLOTS` tasks handed out; older
ones were settled long ago (a worker acknowledges within a fraction of a second),
and a started task missing from it only goes back uncounted.
"""

from __future__ import annotations

import dataclasses
import mmap
import os
import struct

MAGIC = b'SGJ1'
SLOTS = 4096
SLOT_BYTES = 64
OWNER_BYTES = 254
QUEUE_BYTES = 510
_STATE, _INCOMPLETE, _OWNER, _QUEUE, _RING = 4, 5, 16, 272, 1024
_RING_BYTES = SLOTS * SLOT_BYTES  # a power of two: the next slot's offset wraps with a mask
SIZE = _RING + _RING_BYTES
_LENGTH = struct.Struct('<H')
_IDLE, _RUNNING = 0, 1


@dataclasses.dataclass(frozen=True)
class JournalRecord:
    """What a worker that did not end cleanly had noted."""

    owner: str
    queue: str
    started: list[bytes]
    complete: bool  # False when some receipt could not be noted


class StartJournal:
    """One worker slot's journal file; see the module docstring."""

    def __init__(self, path: str) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size != SIZE:
                os.ftruncate(fd, SIZE)
            self._map = mmap.mmap(fd, SIZE)
        finally:
            os.close(fd)
        self._view = memoryview(self._map)
        self._next_offset = 0  # of the next slot, inside the ring

    def predecessor(self) -> JournalRecord | None:
        """The record of the worker that ran before, if it did not end cleanly."""
        memory = self._map
        if memory[:4] != MAGIC or memory[_STATE] != _RUNNING:
            return None
        started = []
        for base in range(_RING, SIZE, SLOT_BYTES):
            size = memory[base]
            if size:
                started.append(memory[base + 1 : base + 1 + size])
        return JournalRecord(
            owner=_read_text(memory, _OWNER),
            queue=_read_text(memory, _QUEUE),
            started=started,
            complete=not memory[_INCOMPLETE],
        )

    def begin(self, owner: str, queue: str) -> None:
        """Start this worker's record (the predecessor's is gone after this)."""
        memory = self._map
        memory[:] = bytes(SIZE)
        _write_text(memory, _OWNER, owner, OWNER_BYTES)
        _write_text(memory, _QUEUE, queue, QUEUE_BYTES)
        memory[:4] = MAGIC
        memory[_STATE] = _RUNNING
        self._next_offset = 0

    def note(self, receipt: bytes) -> None:
        """A task with this receipt is about to run (called for every task: kept lean)."""
        offset = self._next_offset
        self._next_offset = (offset + SLOT_BYTES) & (_RING_BYTES - 1)
        base = _RING + offset
        size = len(receipt)
        view = self._view
        if size < SLOT_BYTES:
            view[base] = size
            view[base + 1 : base + 1 + size] = receipt
        else:
            view[base] = 0
            view[_INCOMPLETE] = 1

    def end(self) -> None:
        """Every task this worker held was settled or handed back: nothing for a successor to do."""
        self._map[_STATE] = _IDLE

    def close(self) -> None:
        self._view.release()
        self._map.close()


def _read_text(memory: mmap.mmap, offset: int) -> str:
    (size,) = _LENGTH.unpack_from(memory, offset)
    start = offset + _LENGTH.size
    return memory[start : start + size].decode('utf-8', 'replace')


def _write_text(memory: mmap.mmap, offset: int, text: str, limit: int) -> None:
    data = text.encode()[:limit]
    _LENGTH.pack_into(memory, offset, len(data))
    start = offset + _LENGTH.size
    memory[start : start + len(data)] = data
