"""Runs of receipts: how far two lists of receipts agree, found with comparisons done in C."""

from __future__ import annotations

from collections.abc import Sequence


def run_length(receipts: Sequence[bytes], index: int, group: Sequence[bytes], first: int) -> int:
    """How many of ``receipts`` from ``index`` on are ``group``'s from position ``first`` on, in order."""
    longest = min(len(group) - first, len(receipts) - index)
    if longest <= 0:
        return 0
    # usually all of them (the rest of the group or of the receipts): one comparison in C
    if receipts[index : index + longest] == group[first : first + longest]:
        return longest
    # a matching prefix stays matching when shortened: search for the longest one
    low, high = 0, longest - 1
    while low < high:
        middle = (low + high + 1) // 2
        if receipts[index : index + middle] == group[first : first + middle]:
            low = middle
        else:
            high = middle - 1
    return low
