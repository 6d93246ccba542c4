"""The receipts a worker holds: leased to it, not acknowledged yet, in the order they came.

A worker receives receipts a pop at a time and mostly lets go of them in that order (a serial
executor exactly so), so they are kept as the pops' lists with a cursor each: letting go of
receipts in order moves a cursor, after one list comparison in C, instead of hashing every
receipt into a set and out again. Receipts let go of out of order are found by set operations
(a pop's set of receipts is made once it needs one) and remembered until the cursor passes them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..connector.runs import run_length


class _Pop:
    """The receipts of one pop; those before ``start`` and those in ``gone`` are let go of."""

    __slots__ = ('_members', 'gone', 'receipts', 'start')

    def __init__(self, receipts: list[bytes]) -> None:
        self.receipts = receipts
        self.start = 0
        self.gone: set[bytes] = set()
        self._members: set[bytes] | None = None

    def run_at_start(self, receipts: Sequence[bytes], index: int) -> int:
        """How many of ``receipts`` from ``index`` on are this pop's next ones, in order."""
        if index >= len(receipts) or self.start >= len(self.receipts):
            return 0
        if receipts[index] != self.receipts[self.start]:
            return 0
        return run_length(receipts, index, self.receipts, self.start)

    def advance(self, count: int) -> None:
        self.start += count
        self._skip_gone()

    def let_go(self, receipts: set[bytes]) -> None:
        """Let go of those of ``receipts`` that are this pop's, in any order."""
        if self._members is None:
            self._members = set(self.receipts)
        mine = self._members & receipts
        if mine:
            self.gone |= mine
            self._skip_gone()

    def _skip_gone(self) -> None:
        receipts, gone = self.receipts, self.gone
        while gone and self.start < len(receipts) and receipts[self.start] in gone:
            gone.discard(receipts[self.start])
            self.start += 1

    @property
    def finished(self) -> bool:
        return self.start >= len(self.receipts)

    def __iter__(self) -> Iterator[bytes]:
        gone = self.gone
        for receipt in self.receipts[self.start :]:
            if receipt not in gone:
                yield receipt


class HeldReceipts:
    """Receipts held, added a pop at a time; not thread-safe (the lease keeper guards it)."""

    def __init__(self) -> None:
        self._pops: list[_Pop] = []

    def add(self, receipts: Sequence[bytes]) -> None:
        if receipts:
            self._pops.append(_Pop(list(receipts)))

    def remove(self, receipts: Sequence[bytes]) -> None:
        """Let go of ``receipts``; ones not held are ignored."""
        pops = self._pops
        index, total = 0, len(receipts)
        while index < total:
            for pop in pops:
                count = pop.run_at_start(receipts, index)
                if count:
                    pop.advance(count)
                    index += count
                    break
            else:
                break
        if index < total and pops:  # the rest out of order: by set operations, per pop
            rest = set(receipts[index:]) if isinstance(receipts, list) else set(list(receipts)[index:])
            for pop in pops:
                pop.let_go(rest)
        if any(pop.finished for pop in pops):
            pops[:] = [pop for pop in pops if not pop.finished]

    def __iter__(self) -> Iterator[bytes]:
        for pop in self._pops:
            yield from pop
