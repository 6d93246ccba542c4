"""The metrics section: what task metrics cost ours in the consume modes.

One driver runs with task metrics off (``drivers/ours.py``, what a worker does
with ``--metrics-port 0``) and one with them on (``drivers/ours_metrics.py``:
counting per batch, durations, a snapshot sent every second, as a supervised
worker does when metrics are served), both over TCP, pinned like the modes
section (first placement), on the run's Redis, off and on back to back in each
round. The table shows the best run of each, the ratio of the bests, the median
of the rounds' on / off ratios (the verdict: >= 0.95 for consume batch) and the
driver's CPU time per task.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

from .measure import Contender, Mode, nodes_params, run_driver, scaled
from .placement import Placement
from .server import RedisServer

MODES = [
    Mode('consume_batch', 'consume batch', 100_000, 0.95),
    Mode('consume_single', 'consume single', 20_000, 0),  # shown for information: no target
]
TARGETS = {'consume_batch': 0.95}  # metrics on / off
# the effect is ~1%, the noise of one run on a small VM tens of %: a short run, so many rounds
ROUNDS = 9
OFF, ON = 'metrics_off', 'metrics_on'


def contenders(server: RedisServer, ours: Path) -> list[Contender]:
    return [
        Contender(OFF, 'ours (TCP), metrics off', ours, 'ours.py', nodes_params(server)),
        Contender(ON, 'ours (TCP), metrics on', ours, 'ours_metrics.py', nodes_params(server)),
    ]


def run_section(
    server: RedisServer, ours: Path, where: Placement, repeats: int, scale: float
) -> dict[str, Any]:
    """``{'where': ..., 'runs': {mode: {off/on: [result per repetition]}}}``."""
    entrants = contenders(server, ours)
    where.pin_redis(server.pid)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        mode.key: {entrant.key: [] for entrant in entrants} for mode in MODES
    }
    for round_number in range(1, repeats + 1):
        for mode in MODES:
            for entrant in entrants:
                result = run_driver(entrant, mode, server, where, scaled(mode, scale))
                runs[mode.key][entrant.key].append(result)
                shown = result.get('error') or f'{result["tasks_per_second"]:,.0f} tasks/s'
                line = f'[metrics {round_number}/{repeats}] {mode.label:<15} {entrant.label:<24} {shown}'
                print(line, file=sys.stderr, flush=True)
    return {'where': where.describe(), 'runs': runs}


def _per_task_cpu(runs: list[dict[str, Any]]) -> float | None:
    values = [run['cpu_seconds'] / run['tasks'] * 1e6 for run in runs if 'error' not in run]
    return statistics.median(values) if values else None


def _paired_ratios(off: list[dict[str, Any]], on: list[dict[str, Any]]) -> list[float]:
    """on / off of each round: both ran back to back, so a slow moment of the machine hits both."""
    return [
        after['tasks_per_second'] / before['tasks_per_second']
        for before, after in zip(off, on, strict=False)
        if 'error' not in before and 'error' not in after
    ]


def summarise(section: dict[str, Any]) -> dict[str, Any]:
    """Per mode: best rate of each, the ratio of the bests, the median of the paired ratios (the verdict)."""
    summary = {}
    for mode in MODES:
        runs = section['runs'][mode.key]
        best = {
            key: max((run['tasks_per_second'] for run in found if 'error' not in run), default=None)
            for key, found in runs.items()
        }
        paired = _paired_ratios(runs[OFF], runs[ON])
        ratio = statistics.median(paired) if paired else None
        summary[mode.key] = {
            'best': best,
            'ratio_of_best': best[ON] / best[OFF] if best[ON] and best[OFF] else None,
            'paired_ratios': paired,
            'ratio': ratio,
            'cpu_us_per_task': {key: _per_task_cpu(found) for key, found in runs.items()},
            'target': TARGETS.get(mode.key),
            'passed': None if ratio is None or mode.key not in TARGETS else ratio >= TARGETS[mode.key],
        }
    return summary


def _times(ratio: float | None) -> str:
    return f'{ratio:.3f}x' if ratio is not None else '-'


def markdown_lines(section: dict[str, Any], repeats: int) -> list[str]:
    summary = section['summary']
    lines = [
        '## Cost of task metrics (ours, TCP)',
        '',
        f'{section["where"]}. Metrics off: the worker as with `--metrics-port 0`; on: as a supervised worker '
        'when `/metrics` is served (per-batch counting, a snapshot every second). Off and on run back to '
        f"back in each of {repeats} rounds; the verdict takes the median of the rounds' on / off "
        'ratios, which a busy moment disturbs less than the ratio of the two best runs.',
        '',
        '| mode | metrics off tasks/s (best) | metrics on tasks/s (best) | on / off (best) '
        '| on / off (median of rounds) | target | result | CPU µs/task off / on (median) |',
        '| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |',
    ]
    for mode in MODES:
        row = summary[mode.key]
        rates = [f'{row["best"][key]:,.0f}' if row['best'].get(key) else 'error' for key in (OFF, ON)]
        target = f'>= {row["target"]}x' if row['target'] is not None else '-'
        verdict = {True: '**pass**', False: '**FAIL**', None: 'n/a'}[row['passed']]
        cpu = ' / '.join(
            f'{row["cpu_us_per_task"][key]:.2f}' if row['cpu_us_per_task'].get(key) else '-'
            for key in (OFF, ON)
        )
        lines.append(
            f'| {mode.label} | {rates[0]} | {rates[1]} | {_times(row["ratio_of_best"])} '
            f'| {_times(row["ratio"])} | {target} | {verdict} | {cpu} |'
        )
    return [*lines, '']
