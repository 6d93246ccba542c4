"""The comparison of two programs' observations, and the list of intended differences itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .compare import MISSING, compare, flatten, matches
from .differences import DIFFERENCES, Difference, Expected, differences_table, log_wording_table
from .runner import program_names

DOCUMENT: dict[str, Any] = {
    'summary': {'stop': True, 'keys': ['a', 'b']},
    'log': [{'message': 'task has failed'}],
    'empty': {},
}


def difference(*keys: str, expected: tuple[Expected, ...] = ()) -> Difference:
    return Difference(id='example', keys=keys, reason='a reason', user_change='nothing', expected=expected)


def test_flatten_names_every_leaf_by_its_path() -> None:
    # given: a nested document  # when: it is flattened
    flat = flatten(DOCUMENT)

    # then: dict keys are joined by dots, list items indexed, empty containers kept as leaves
    assert flat == {
        'summary.stop': True,
        'summary.keys[0]': 'a',
        'summary.keys[1]': 'b',
        'log[0].message': 'task has failed',
        'empty': {},
    }


def test_a_mismatch_no_difference_covers_fails_the_comparison() -> None:
    # given: ours logs other words and has an extra key
    ours = {**DOCUMENT, 'log': [{'message': 'task failed'}], 'reason': 'stop'}

    # when: compared with no listed difference
    comparison = compare('program', DOCUMENT, ours, [])

    # then: both mismatches are reported, with both values
    assert not comparison.ok
    assert [mismatch.path for mismatch in comparison.uncovered] == ['log[0].message', 'reason']
    assert 'log[0].message: 0.27="task has failed" ours="task failed"' in comparison.describe()
    assert comparison.uncovered[1].theirs == MISSING


def test_a_listed_difference_covers_its_mismatches() -> None:
    # given: ours has extra summary keys, and a difference listing them
    ours = {**DOCUMENT, 'summary': {**DOCUMENT['summary'], 'reason': 'stop', 'tasks': {'success': 1}}}

    # when: compared
    listed = difference('program:summary.reason', 'program:summary.tasks*')
    comparison = compare('program', DOCUMENT, ours, [listed])

    # then: nothing is left uncovered, nothing is stale
    assert comparison.ok, comparison.describe()
    assert len(comparison.found) == 2


def test_a_listed_difference_that_does_not_show_up_is_stale() -> None:
    # given: identical documents and a difference that expects a mismatch  # when: compared
    comparison = compare('program', DOCUMENT, DOCUMENT, [difference('program:summary.reason')])

    # then: the difference is reported as stale
    assert not comparison.ok
    assert comparison.stale == [('example', 'summary.reason')]


def test_a_difference_covers_its_own_program_only() -> None:
    # given: a mismatch in one program, and a difference listed for another
    ours = {**DOCUMENT, 'reason': 'stop'}

    # when: compared
    comparison = compare('program', DOCUMENT, ours, [difference('other:reason')])

    # then: the mismatch is not covered (and the other program's key is not judged here)
    assert [mismatch.path for mismatch in comparison.uncovered] == ['reason']
    assert comparison.stale == []


def test_stated_values_must_be_the_observed_ones() -> None:
    # given: a difference stating the words of both sides, one of them wrong
    ours = {**DOCUMENT, 'log': [{'message': 'task failed'}]}
    stated = Expected('program:log[0].message', 'task has failed', 'task did fail')

    # when: compared
    comparison = compare('program', DOCUMENT, ours, [difference(expected=(stated,))])

    # then: the mismatch is covered by the stated path, but the wrong value is reported
    assert comparison.uncovered == []
    assert len(comparison.wrong_values) == 1 and "ours='task did fail'" in comparison.wrong_values[0]


def test_only_the_star_is_a_wildcard_in_key_patterns() -> None:
    # given: patterns with brackets and dots, as observation paths have  # when/then: they match literally
    assert matches('log[0].message', 'log[0].message')
    assert not matches('log0.message', 'log[0].message')
    assert not matches('logXmessage', 'log.message')
    assert matches('idle.observed.summary.reason.value', '*summary.reason*')


def test_every_listed_difference_is_complete_and_names_existing_programs() -> None:
    # given: the list of intended differences  # when: each is inspected
    ids = [difference.id for difference in DIFFERENCES]
    programs = set(program_names())

    # then: ids are unique, each says why and what to change, can show up, and names real programs
    assert len(ids) == len(set(ids))
    for listed in DIFFERENCES:
        assert listed.reason and listed.user_change, listed.id
        assert listed.keys or listed.expected, f'{listed.id} covers nothing, so it can never show up'
        unknown = listed.programs - programs
        assert not unknown, f'{listed.id} names programs that do not exist: {unknown}'


def test_the_log_wording_table_has_one_row_per_line() -> None:
    # given: the stated log lines  # when: the table is rendered
    table = log_wording_table().splitlines()

    # then: a header, and one row per distinct event line, 0.27's words beside ours
    listed = next(difference for difference in DIFFERENCES if difference.id == 'log-wording').expected
    assert table[:2] == ['| event | Sergeant 0.27 | ours |', '| --- | --- | --- |']
    assert len(table) == 2 + len({(line.label, line.theirs, line.ours) for line in listed})
    assert '| on_timeout | `task has timedout` | `task timed out` |' in table


def test_the_readme_lists_exactly_these_differences() -> None:
    # given: the README's "Coming from Sergeant 0.27" section
    readme = (Path(__file__).resolve().parents[2] / 'README.md').read_text()
    section = readme.split('## Coming from Sergeant 0.27', 1)[1].split('\n## ', 1)[0]

    # then: both tables are the ones generated from this list (python -m tests.compat.differences)
    assert differences_table() in section
    assert log_wording_table() in section
