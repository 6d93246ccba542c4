"""The benchmark's paired-round verdicts: ratios per round, their medians, and the targets they meet."""

from __future__ import annotations

from typing import Any

from benchmark.harness import report
from benchmark.harness.measure import Mode

BATCH = Mode('consume_batch', 'consume batch', 100_000, 1.5)
SINGLE = Mode('consume_single', 'consume single', 20_000, 2.0)


def _run(rate: float, cpu: float) -> dict[str, Any]:
    return {'tasks_per_second': rate, 'cpu_seconds': cpu}


def _runs(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {'ours_tcp': ours, report.REFERENCE: theirs}


def test_rounds_are_compared_one_to_one_and_the_median_decides() -> None:
    ours = [_run(500, 1.0), _run(300, 2.0), _run(700, 1.0)]
    theirs = [_run(200, 2.5), _run(200, 2.0), _run(300, 2.5)]

    paired = report.paired_rounds([BATCH], {'consume_batch': _runs(ours, theirs)})['consume_batch']

    assert paired['speed_ratios'] == [2.5, 1.5, 700 / 300]
    assert paired['median_speed'] == 700 / 300
    assert paired['cpu_ratios'] == [0.4, 1.0, 0.4]
    assert paired['median_cpu'] == 0.4
    assert paired['passed'] is True


def test_a_fast_but_costly_batch_fails_on_cpu() -> None:
    ours, theirs = [_run(600, 1.5)] * 3, [_run(200, 2.0)] * 3

    paired = report.paired_rounds([BATCH], {'consume_batch': _runs(ours, theirs)})['consume_batch']

    assert paired['median_speed'] == 3.0
    assert paired['median_cpu'] == 0.75
    assert paired['passed'] is False
    [row] = [line for line in report.paired_table([BATCH], {'consume_batch': paired}) if 'consume' in line]
    assert '3.00x' in row and '0.75x' in row and '**FAIL**' in row


def test_failed_rounds_are_left_out_and_single_has_no_cpu_target() -> None:
    ours = [_run(100, 1.0), {'error': 'hung'}, _run(120, 1.0)]
    theirs = [_run(40, 1.0), _run(40, 1.0), _run(60, 1.0)]

    paired = report.paired_rounds([SINGLE], {'consume_single': _runs(ours, theirs)})['consume_single']

    assert paired['speed_ratios'] == [2.5, 2.0]
    assert paired['median_speed'] == 2.25
    assert paired['cpu_target'] is None
    assert paired['passed'] is False
