"""Print the figures the fault suite recorded, as a Markdown table.

Usage::

    pytest tests/reliability --junitxml=reliability.xml -o junit_family=xunit1
    python -m tests.reliability.figures reliability.xml

``make reliability-figures`` does both. Each test of ``tests/reliability``
records what it measured with pytest's ``record_property`` (``tasks``, ``lost``,
``duplicates``, ``duplicate_bound``, ``dead_letters``, ``kills``, ``wall_s``...),
which the JUnit XML keeps as the properties of its test case. (With the default
``junit_family`` pytest warns that ``record_property`` is incompatible with
xunit2, but writes them all the same; ``xunit1`` spares the warnings.)

The table has one row per test id: the module, the first words of the test's name
and its parameters (the broker among them); the outcome; the duration in seconds
(setup and teardown included); and the figures as ``name=value``, in the order
the test recorded them.
"""

from __future__ import annotations

import argparse
import collections
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

NAME_WIDTH = 48  # characters of a test's name kept in its row, cut at a word


def short_name(classname: str, name: str, width: int = NAME_WIDTH) -> str:
    """``chaos: sigkill chaos loses no task and repeats… [batch-local]`` for a test id."""
    module = classname.rpartition('.')[2].removeprefix('test_')
    function, bracket, parameters = name.partition('[')
    words = function.removeprefix('test_').replace('_', ' ')
    if len(words) > width:
        words = (words[: width + 1].rpartition(' ')[0] or words[:width]) + '…'
    return f'{module}: {words}' + (f' [{parameters}' if bracket else '')


def outcome(case: ET.Element) -> str:
    """passed, failed, error (in setup or teardown), skipped or xfailed."""
    found = []
    if case.find('failure') is not None:
        found.append('failed')
    if case.find('error') is not None:
        found.append('error')
    skipped = case.find('skipped')
    if skipped is not None:
        found.append('xfailed' if skipped.get('type') == 'pytest.xfail' else 'skipped')
    return '+'.join(found) or 'passed'


def figures(case: ET.Element) -> str:
    """The recorded properties as ``name=value, ...``."""
    recorded = case.iterfind('properties/property')
    return ', '.join(f'{prop.get("name")}={prop.get("value")}' for prop in recorded)


def cell(text: str) -> str:
    return text.replace('|', '\\|').replace('\n', ' ')


def table(cases: Iterable[ET.Element]) -> list[str]:
    """The Markdown table of the test cases, then a line of totals."""
    lines = ['| test | outcome | duration (s) | figures |', '| --- | --- | ---: | --- |']
    outcomes: collections.Counter[str] = collections.Counter()
    total = 0.0
    for case in cases:
        result, seconds = outcome(case), float(case.get('time', '0'))
        outcomes[result] += 1
        total += seconds
        name = short_name(case.get('classname', ''), case.get('name', ''))
        lines.append(f'| {cell(name)} | {result} | {seconds:.1f} | {cell(figures(case))} |')
    counted = ', '.join(f'{count} {result}' for result, count in sorted(outcomes.items()))
    lines += ['', f'{sum(outcomes.values())} tests ({counted or "none"}), {total:.0f} s in all']
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument('junit_xml', type=Path, help='written by pytest tests/reliability --junitxml=FILE')
    arguments = parser.parse_args()
    root = ET.parse(arguments.junit_xml).getroot()
    print('\n'.join(table(root.iter('testcase'))))


if __name__ == '__main__':
    main()
