"""Summary and Markdown of the supervised section (``harness/supervised.py``).

Throughput cells show the best run, as the rest of the report does; idle CPU and
RSS show the median over the rounds (a busy moment inflates CPU, it never lowers it,
but one quiet round is not more "true" than the others for memory).
"""

from __future__ import annotations

import statistics
from typing import Any

REFERENCE = 'sergeant027'
OURS = 'ours'
MIB = 2**20


def _best(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    good = [run for run in runs if 'error' not in run]
    return max(good, key=lambda run: run['tasks_per_second']) if good else None


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarise(section: dict[str, Any]) -> dict[str, Any]:
    """Best run per cell and contender, the ratio, and median idle figures per contender."""
    cells = {}
    for cell_key, by_contender in section['runs'].items():
        best = {key: _best(runs) for key, runs in by_contender.items()}
        ours, reference = best.get(OURS), best.get(REFERENCE)
        cells[cell_key] = {
            'best': best,
            'median_tasks_per_second': {
                key: _median([run['tasks_per_second'] for run in runs if 'error' not in run])
                for key, runs in by_contender.items()
            },
            'ratio': ours['tasks_per_second'] / reference['tasks_per_second'] if ours and reference else None,
        }
    idle = {}
    for key, runs in section['idle'].items():
        good = [run for run in runs if 'error' not in run]
        idle[key] = {
            'supervisor_cpu_percent': _median([run['supervisor_cpu_percent'] for run in good]),
            'worker_cpu_percent': _median([statistics.mean(run['workers_cpu_percent']) for run in good]),
            'supervisor_rss_bytes': _median([run['supervisor_rss_bytes'] for run in good]),
            'worker_rss_bytes': _median([statistics.mean(run['workers_rss_bytes']) for run in good]),
            'errors': [run['error'] for run in runs if 'error' in run],
        }
    return {'cells': cells, 'idle': idle}


def _rate(run: dict[str, Any] | None) -> str:
    return f'{run["tasks_per_second"]:,.0f}' if run else 'error'


def _first(run: dict[str, Any] | None) -> str:
    return f'{run["first_task_seconds"]:.2f}' if run else '-'


def _after_first(run: dict[str, Any] | None) -> str:
    rate = run.get('tasks_per_second_after_first') if run else None
    return f'{rate:,.0f}' if rate else '-'


def throughput_table(section: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    lines = [
        '| tasks per transaction | worker processes | tasks | 0.27 tasks/s | ours tasks/s | ours / 0.27 '
        '| first task after, s (0.27 / ours) | tasks/s after the first (0.27 / ours) |',
        '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ]
    for cell in section['cells']:
        row = summary['cells'][cell['key']]
        reference, ours = row['best'].get(REFERENCE), row['best'].get(OURS)
        ratio = '-' if row['ratio'] is None else f'{row["ratio"]:.2f}x'
        tasks = (ours or reference or {}).get('tasks', cell['tasks'])
        lines.append(
            f'| {cell["tasks_per_transaction"]:,} | {cell["workers"]} | {tasks:,} | {_rate(reference)} '
            f'| {_rate(ours)} | {ratio} | {_first(reference)} / {_first(ours)} '
            f'| {_after_first(reference)} / {_after_first(ours)} |'
        )
    return lines


def cpu_table(section: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    """Where the CPU went in the best run of each cell, per task (the supervisor's in total)."""
    lines = [
        '| tasks per transaction | worker processes | contender | wall µs/task | workers CPU µs/task '
        '| Redis CPU µs/task | supervisor CPU, ms in all |',
        '| ---: | ---: | --- | ---: | ---: | ---: | ---: |',
    ]
    for cell in section['cells']:
        for key, label in section['contenders'].items():
            row = f'| {cell["tasks_per_transaction"]:,} | {cell["workers"]} | {label}'
            run = summary['cells'][cell['key']]['best'].get(key)
            if run is None:
                errors = [r['error'] for r in section['runs'][cell['key']][key] if 'error' in r]
                lines.append(f'{row} | error: {errors[-1][:200] if errors else "no run"} | | | |')
                continue
            per_task = 1e6 / run['tasks']
            lines.append(
                f'{row} | {run["seconds"] * per_task:.1f} | {run["workers_cpu_seconds"] * per_task:.1f} '
                f'| {run["redis_cpu_seconds"] * per_task:.1f} | {run["supervisor_cpu_seconds"] * 1000:.0f} |'
            )
    return lines


def _value(value: float | None, scale: float = 1.0, digits: int = 1) -> str:
    return '-' if value is None else f'{value / scale:.{digits}f}'


def idle_table(section: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    lines = [
        '| contender | supervisor CPU, % of one core | CPU of each worker, % | supervisor RSS, MiB '
        '| RSS of each worker, MiB |',
        '| --- | ---: | ---: | ---: | ---: |',
    ]
    for key, label in section['contenders'].items():
        idle = summary['idle'][key]
        if idle['supervisor_cpu_percent'] is None:
            lines.append(f'| {label} | error: {(idle["errors"] or ["no run"])[-1][:200]} | | | |')
            continue
        lines.append(
            f'| {label} | {_value(idle["supervisor_cpu_percent"], digits=2)} '
            f'| {_value(idle["worker_cpu_percent"], digits=2)} | {_value(idle["supervisor_rss_bytes"], MIB)} '
            f'| {_value(idle["worker_rss_bytes"], MIB)} |'
        )
    return lines


def markdown_lines(section: dict[str, Any], repeats: int) -> list[str]:
    summary = section['summary']
    return [
        '## Supervisors: `python -m sergeant.supervisor`, ours vs 0.27',
        '',
        'Each library runs its own supervisor and no-op workers (`drivers/counted_worker.py`) on the same '
        'Redis over TCP, no CPU pinning. Throughput: N tasks pushed beforehand; timed from starting the '
        'supervisor until its workers have counted all N (so it includes starting the processes; the '
        f'time to the first task is shown apart); best of {repeats}. Ours: at-least-once with its default '
        'prefetch; 0.27: pop with delete.',
        '',
        *throughput_table(section, summary),
        '',
        '### Where the CPU went (best run of each cell)',
        '',
        *cpu_table(section, summary),
        '',
        f'### Idle: {section["idle_workers"]} workers on an empty queue, {section["idle_seconds"]:g} s '
        f'(median of {repeats})',
        '',
        'Time on a CPU (user + system, from schedstat) of the supervisor process alone, and of each worker, '
        'as a share of one core; resident set sizes after that.',
        '',
        *idle_table(section, summary),
        '',
    ]
