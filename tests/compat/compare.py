"""Compares the observations of one program under 0.27 and ours, against the list of differences.

Both JSON documents are flattened into ``path -> value`` (``summary.stop.value``,
``calls[2].name``); a *mismatch* is a path whose values differ, or that only one side
has. The comparison of one program passes when

- every mismatch is covered by a difference listed for the program (``differences.py``),
- every key pattern of those differences matches at least one mismatch (the list cannot
  go stale: a difference that no longer shows up must be removed), and
- every mismatch whose exact values a difference states has those values.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .differences import Difference

MISSING = '<missing>'  # the value of a path one side does not have


def flatten(document: Any, prefix: str = '') -> dict[str, Any]:
    """``{'a': {'b': [1, 2]}}`` -> ``{'a.b[0]': 1, 'a.b[1]': 2}``; empty containers are leaves."""
    if isinstance(document, dict) and document:
        flat: dict[str, Any] = {}
        for key, value in document.items():
            flat.update(flatten(value, f'{prefix}.{key}' if prefix else str(key)))
        return flat
    if isinstance(document, list) and document:
        flat = {}
        for index, value in enumerate(document):
            flat.update(flatten(value, f'{prefix}[{index}]'))
        return flat
    return {prefix: document}


@dataclasses.dataclass(frozen=True)
class Mismatch:
    path: str
    theirs: Any  # MISSING when 0.27 has no such path
    ours: Any

    def describe(self) -> str:
        return f'{self.path}: 0.27={_show(self.theirs)} ours={_show(self.ours)}'


def _show(value: Any) -> str:
    return value if value == MISSING else json.dumps(value)


@functools.cache
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile('.*'.join(re.escape(part) for part in pattern.split('*')))


def matches(path: str, pattern: str) -> bool:
    """Whether ``path`` matches ``pattern``, where ``*`` stands for any text (and nothing else is special)."""
    return _pattern(pattern).fullmatch(path) is not None


def mismatches(theirs: Mapping[str, Any], ours: Mapping[str, Any]) -> list[Mismatch]:
    flat_theirs, flat_ours = flatten(dict(theirs)), flatten(dict(ours))
    return [
        Mismatch(path, flat_theirs.get(path, MISSING), flat_ours.get(path, MISSING))
        for path in sorted(flat_theirs.keys() | flat_ours.keys())
        if flat_theirs.get(path, MISSING) != flat_ours.get(path, MISSING)
    ]


@dataclasses.dataclass(frozen=True, repr=False)
class Comparison:
    program: str
    found: list[Mismatch]
    uncovered: list[Mismatch]  # mismatches no listed difference covers
    stale: list[tuple[str, str]]  # (difference id, key pattern) that matched no mismatch
    wrong_values: list[str]  # stated exact values that were not observed

    def __repr__(self) -> str:  # pytest shows describe() instead of every mismatch twice
        return f'<Comparison of {self.program}: {len(self.found)} mismatch(es)>'

    @property
    def ok(self) -> bool:
        return not (self.uncovered or self.stale or self.wrong_values)

    def describe(self) -> str:
        lines = [f'{self.program}: {len(self.found)} mismatch(es) with 0.27']
        if self.uncovered:
            lines.append(
                'not covered by tests/compat/differences.py (a behaviour change, or a new difference):'
            )
            lines += [f'  {mismatch.describe()}' for mismatch in self.uncovered]
        if self.stale:
            lines.append('listed differences that did not show up (remove or update them):')
            lines += [f'  {difference_id}: {pattern}' for difference_id, pattern in self.stale]
        if self.wrong_values:
            lines.append('listed values that were not observed:')
            lines += [f'  {line}' for line in self.wrong_values]
        return '\n'.join(lines)


def compare(
    program: str, theirs: Mapping[str, Any], ours: Mapping[str, Any], differences: Iterable[Difference]
) -> Comparison:
    found = mismatches(theirs, ours)
    patterns = [
        (difference.id, pattern) for difference in differences for pattern in difference.patterns_for(program)
    ]
    uncovered = [
        mismatch
        for mismatch in found
        if not any(matches(mismatch.path, pattern) for _id, pattern in patterns)
    ]
    stale = [
        (difference_id, pattern)
        for difference_id, pattern in patterns
        if not any(matches(mismatch.path, pattern) for mismatch in found)
    ]
    by_path = {mismatch.path: mismatch for mismatch in found}
    wrong_values = []
    for difference in differences:
        for expected in difference.expected_for(program):
            seen = by_path.get(expected.path)
            if seen is None or (seen.theirs, seen.ours) != (expected.theirs, expected.ours):
                observed = seen.describe() if seen else f'{expected.path}: no mismatch'
                wanted = f'0.27={expected.theirs!r} ours={expected.ours!r}'
                wrong_values.append(f'{difference.id}: expected {wanted}; observed {observed}')
    return Comparison(program, found, uncovered, stale, wrong_values)
