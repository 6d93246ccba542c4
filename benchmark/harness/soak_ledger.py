"""The soak's ledger: which task ids ran, and how often, from the workers' record files.

Each worker process appends 4-byte little-endian ids to ``<pid>.ids`` in the
records directory (``drivers/soak_worker.py``). :meth:`Ledger.update` reads what
was appended since the last call, whole records only (a record being written
is picked up next time), and counts each id in a byte per id, saturating at
255. A pid the kernel hands out again appends to the same file, which is fine:
the ledger only ever reads forward.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

RECORD = struct.Struct('<I')
SUFFIX = '.ids'


class Ledger:
    """Run counts of task ids ``0 .. tasks - 1``."""

    def __init__(self, records_dir: Path, tasks: int) -> None:
        self.records_dir = records_dir
        self.tasks = tasks
        self.counts = bytearray(tasks)
        self.records = 0  # records read, duplicates included
        self.distinct = 0  # ids seen at least once
        self.out_of_range = 0  # records naming no task the soak pushed (would be a bug)
        self.files = 0
        self._offsets: dict[str, int] = {}

    def update(self) -> int:
        """Read the records appended since the last call; returns how many there were."""
        new = 0
        for entry in os.scandir(self.records_dir):
            if not entry.name.endswith(SUFFIX):
                continue
            offset = self._offsets.get(entry.name, 0)
            whole = (entry.stat().st_size - offset) // RECORD.size * RECORD.size
            if whole <= 0:
                continue
            with open(entry.path, 'rb') as records:
                records.seek(offset)
                data = records.read(whole)
            whole = len(data) // RECORD.size * RECORD.size
            self._offsets[entry.name] = offset + whole
            new += self._count(data[:whole])
        self.files = len(self._offsets)
        return new

    def _count(self, data: bytes) -> int:
        counts, tasks = self.counts, self.tasks
        distinct = 0
        for (task_id,) in RECORD.iter_unpack(data):
            if task_id >= tasks:
                self.out_of_range += 1
                continue
            seen = counts[task_id]
            if seen == 0:
                distinct += 1
            if seen < 255:
                counts[task_id] = seen + 1
        self.distinct += distinct
        self.records += len(data) // RECORD.size
        return len(data) // RECORD.size

    def lost(self, pushed: int) -> list[int]:
        """Ids among the first ``pushed`` that never ran."""
        return [task_id for task_id in range(pushed) if self.counts[task_id] == 0]

    def duplicates(self) -> tuple[int, int, int]:
        """Ids that ran more than once, the extra runs in all, and the most runs of one id."""
        counts = self.counts
        ran = len(counts) - counts.count(0)
        once = counts.count(1)
        return ran - once, sum(counts) - ran, max(counts, default=0)
