"""Each compat program observes the same under Sergeant 0.27 and under ours, except the listed differences."""

from __future__ import annotations

import pytest

from .compare import compare
from .differences import DIFFERENCES
from .runner import OURS, THEIRS, Scheduler, program_names


@pytest.mark.parametrize('program', program_names())
def test_program_observes_what_0_27_observes(program: str, compat_runs: Scheduler) -> None:
    # given: the program run under 0.27 and under ours, at the same time, each with its own queue
    runs = compat_runs.runs(program)
    theirs, ours = runs[THEIRS], runs[OURS]
    assert theirs.returncode == 0 and theirs.observations is not None, (
        f'the program itself fails under 0.27:\n{theirs.describe()}'
    )
    assert ours.observations is not None, f'no observations under ours:\n{ours.describe()}'

    # when: their observations are compared
    comparison = compare(program, theirs.observations, ours.observations, DIFFERENCES)

    # then: every mismatch is a listed difference, and every listed difference showed up
    assert comparison.ok, f'{comparison.describe()}\n(ours: exit code {ours.returncode})'
