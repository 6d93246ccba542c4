"""Turns raw measurements into the summary, the Markdown report and the JSON record.

Throughput cells show the best of the repetitions (the run least disturbed by the
rest of the machine); the median is kept next to it in the JSON. The verdict
compares ours at its best transport with 0.27 over TCP (0.27 cannot use a unix
socket); the TCP-to-TCP ratio is shown beside it.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from .measure import Contender, Mode

Runs = dict[str, dict[str, list[dict[str, Any]]]]
REFERENCE = 'sergeant027_tcp'
OURS = ('ours_tcp', 'ours_unix')


def summarise_cell(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Best and median tasks/s of one mode and contender, and the best run itself."""
    good = [run for run in runs if 'error' not in run]
    if not good:
        return {'error': runs[-1].get('error', 'no run') if runs else 'no run'}
    rates = [run['tasks_per_second'] for run in good]
    best_run = max(good, key=lambda run: run['tasks_per_second'])
    return {'best': max(rates), 'median': statistics.median(rates), 'runs': rates, 'best_run': best_run}


def _ratio(numerator: dict[str, Any], denominator: dict[str, Any]) -> float | None:
    if 'best' not in numerator or 'best' not in denominator:
        return None
    ratio: float = numerator['best'] / denominator['best']
    return ratio


def summarise_mode(mode: Mode, cells: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Every contender's cell, the two ratios and the verdict for one mode."""
    summary = {key: summarise_cell(runs) for key, runs in cells.items()}
    ours = [summary[key] for key in OURS if 'best' in summary.get(key, {})]
    best_ours = max(ours, key=lambda cell: cell['best']) if ours else {}
    ratio = _ratio(best_ours, summary.get(REFERENCE, {}))
    return {
        'cells': summary,
        'ratio_best': ratio,
        'ratio_tcp': _ratio(summary.get('ours_tcp', {}), summary.get(REFERENCE, {})),
        'target': mode.target,
        'passed': None if ratio is None else ratio >= mode.target,
    }


def summarise(modes: list[Mode], runs: Runs) -> dict[str, dict[str, Any]]:
    return {mode.key: summarise_mode(mode, runs[mode.key]) for mode in modes}


# -- Markdown -----------------------------------------------------------------------


def _rate(cell: dict[str, Any]) -> str:
    return f'{cell["best"]:,.0f}' if 'best' in cell else 'error'


def _times(ratio: float | None) -> str:
    return '-' if ratio is None else f'{ratio:.2f}x'


def _verdict(passed: bool | None) -> str:
    return {True: '**pass**', False: '**FAIL**', None: 'n/a'}[passed]


def results_table(modes: list[Mode], summary: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        '| mode | tasks | 0.27 TCP tasks/s | ours TCP tasks/s | ours unix tasks/s '
        '| ours best / 0.27 | ours TCP / 0.27 | target | result |',
        '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ]
    for mode in modes:
        row = summary[mode.key]
        cells = row['cells']
        tasks = next((cell['best_run']['tasks'] for cell in cells.values() if 'best_run' in cell), mode.tasks)
        lines.append(
            f'| {mode.label} | {tasks:,} | {_rate(cells[REFERENCE])} | {_rate(cells["ours_tcp"])} '
            f'| {_rate(cells["ours_unix"])} | {_times(row["ratio_best"])} | {_times(row["ratio_tcp"])} '
            f'| >= {mode.target}x | {_verdict(row["passed"])} |'
        )
    return lines


# Targets on the median of paired rounds (round i of ours against round i of 0.27, interleaved, so a
# noisy moment hits both): throughput ours / 0.27 at least, client CPU per task ours / 0.27 at most
PAIRED_TARGETS: dict[str, tuple[float, float | None]] = {
    'consume_batch': (2.0, 0.5),
    'consume_single': (2.5, None),
}


def _paired(ours: list[dict[str, Any]], theirs: list[dict[str, Any]], key: str) -> list[float]:
    """Per round, ours / 0.27 of ``key`` (rounds where both ran)."""
    return [
        mine[key] / their[key]
        for mine, their in zip(ours, theirs, strict=False)
        if 'error' not in mine and 'error' not in their and their[key]
    ]


def paired_rounds(modes: list[Mode], runs: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    """For the modes with :data:`PAIRED_TARGETS`: medians of the per-round ratios (ours over TCP)."""
    paired = {}
    for mode in modes:
        if mode.key not in PAIRED_TARGETS or mode.key not in runs:
            continue
        ours, theirs = runs[mode.key].get('ours_tcp', []), runs[mode.key].get(REFERENCE, [])
        speed = _paired(ours, theirs, 'tasks_per_second')
        cpu = _paired(ours, theirs, 'cpu_seconds')
        speed_target, cpu_target = PAIRED_TARGETS[mode.key]
        median_speed = statistics.median(speed) if speed else None
        median_cpu = statistics.median(cpu) if cpu else None
        passed = None
        if median_speed is not None and (cpu_target is None or median_cpu is not None):
            passed = median_speed >= speed_target and (
                cpu_target is None or (median_cpu is not None and median_cpu <= cpu_target)
            )
        paired[mode.key] = {
            'speed_ratios': speed,
            'cpu_ratios': cpu,
            'median_speed': median_speed,
            'median_cpu': median_cpu,
            'speed_target': speed_target,
            'cpu_target': cpu_target,
            'passed': passed,
        }
    return paired


def paired_table(modes: list[Mode], paired: dict[str, Any]) -> list[str]:
    lines = [
        '| mode | rounds | ours / 0.27 tasks/s (median; each round) | target | '
        'ours / 0.27 client CPU per task (median; each round) | target | result |',
        '| --- | ---: | --- | ---: | --- | ---: | --- |',
    ]
    for mode in modes:
        row = paired.get(mode.key)
        if row is None:
            continue
        speeds = ', '.join(f'{ratio:.2f}' for ratio in row['speed_ratios'])
        cpus = ', '.join(f'{ratio:.2f}' for ratio in row['cpu_ratios'])
        cpu_target = '-' if row['cpu_target'] is None else f'<= {row["cpu_target"]}x'
        lines.append(
            f'| {mode.label} | {len(row["speed_ratios"])} | {_times(row["median_speed"])} ({speeds}) '
            f'| >= {row["speed_target"]}x | {_times(row["median_cpu"])} ({cpus}) | {cpu_target} '
            f'| {_verdict(row["passed"])} |'
        )
    return lines


def _commands(run: dict[str, Any]) -> str:
    tasks = run['tasks']
    commands = sorted(run['server']['commands'].items(), key=lambda item: -item[1])
    return ', '.join(f'{name} {count / tasks:.3g}' for name, count in commands) or '-'


def breakdown_table(
    modes: list[Mode], entrants: list[Contender], summary: dict[str, dict[str, Any]]
) -> list[str]:
    """Per task, in the best run: wall time, client CPU, Redis CPU and the commands Redis ran."""
    lines = [
        '| mode | contender | wall µs/task | client CPU µs/task | Redis CPU µs/task | Redis commands/task |',
        '| --- | --- | ---: | ---: | ---: | --- |',
    ]
    for mode in modes:
        for contender in entrants:
            cell = summary[mode.key]['cells'][contender.key]
            if 'best_run' not in cell:
                lines.append(f'| {mode.label} | {contender.label} | error: {cell["error"]} | | | |')
                continue
            run = cell['best_run']
            per_task = 1e6 / run['tasks']
            lines.append(
                f'| {mode.label} | {contender.label} | {run["seconds"] * per_task:.1f} '
                f'| {run["cpu_seconds"] * per_task:.1f} '
                f'| {run["server"]["server_cpu_seconds"] * per_task:.1f} | {_commands(run)} |'
            )
    return lines


PROFILE_AREAS = ('sergeant', 'redis-py', 'socket', 'other')


def _area_cells(profile: dict[str, Any]) -> str:
    areas = profile['profile_summary']['areas']
    total = sum(area['own_us_per_task'] for area in areas.values()) or 1.0
    calls = ' | '.join(f'{areas.get(name, {}).get("calls_per_task", 0):.1f}' for name in PROFILE_AREAS)
    shares = ' | '.join(
        f'{areas.get(name, {}).get("own_us_per_task", 0) / total:.0%}' for name in PROFILE_AREAS
    )
    return f'{calls} | {shares}'


def profile_table(
    modes: list[Mode], entrants: list[Contender], profiles: dict[str, dict[str, dict[str, Any]]]
) -> list[str]:
    """From the cProfile runs: round trips, Python calls by area and where own time went."""
    calls = ' | '.join(f'calls: {name}' for name in PROFILE_AREAS)
    shares = ' | '.join(f'time: {name}' for name in PROFILE_AREAS)
    lines = [
        f'| mode | contender | round trips/task | {calls} | {shares} |',
        '| --- | --- | ---: |' + ' ---: |' * (2 * len(PROFILE_AREAS)),
    ]
    for mode in modes:
        for contender in entrants:
            profile = profiles.get(mode.key, {}).get(contender.key, {})
            if 'profile_summary' not in profile:
                continue
            trips = profile['profile_summary']['round_trips_per_task']
            lines.append(f'| {mode.label} | {contender.label} | {trips:.3g} | {_area_cells(profile)} |')
    return lines


def latency_table(latency: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        '| transport | client | median µs | p99 µs | round trips/s | client CPU µs/round trip |',
        '| --- | --- | ---: | ---: | ---: | ---: |',
    ]
    for transport, clients in latency.items():
        for client, stats in clients.items():
            lines.append(
                f'| {transport} | {client} | {stats["median_us"]:.1f} | {stats["p99_us"]:.1f} '
                f'| {stats["per_second"]:,.0f} | {stats["client_cpu_us"]:.1f} |'
            )
    return lines


def facts_list(facts: dict[str, Any]) -> list[str]:
    return [f'- {name}: {value}' for name, value in facts.items()]


def _per_placement(
    record: dict[str, Any], title: str, table: Callable[[dict[str, Any]], list[str]]
) -> list[str]:
    lines = [f'## {title}', '']
    for section in record['placements'].values():
        lines += [f'### {section["label"]} ({section["where"]})', '', *table(section), '']
    return lines


def _profiles(modes: list[Mode], entrants: list[Contender], record: dict[str, Any]) -> list[str]:
    profiled = [section for section in record['placements'].values() if section['profiles']]
    if not profiled:
        return []
    section = profiled[0]
    return [
        '## Profile (per task; cProfile of one extra run per cell)',
        '',
        f'{section["label"]} ({section["where"]}). Round trips count redis-py requests written '
        '(a pipeline is one); calls are Python function calls by area; time shares are own time '
        'by area, inflated by the profiler. Stats files: `results/profiles/`.',
        '',
        *profile_table(modes, entrants, section['profiles']),
        '',
    ]


def markdown(
    modes: list[Mode], entrants: list[Contender], record: dict[str, Any], extra: Sequence[str] = ()
) -> str:
    """The report; ``extra`` lines (other sections) go before the machine facts."""
    settings = record['settings']
    intro = [
        '# Sergeant benchmark: ours vs Sergeant 0.27.0',
        '',
        f'No-op tasks, one process per measurement, one fresh Redis for the whole run; best of '
        f'{settings["repeats"]} interleaved runs (medians in latest.json). Ours runs with its default '
        'at-least-once delivery (leases and acks); 0.27 pops with delete (at-most-once). '
        'Ratios compare ours at its best transport with 0.27 over TCP.',
        '',
    ]
    modes_sections = [
        intro,
        _per_placement(record, 'Throughput', lambda section: results_table(modes, section['summary'])),
        _per_placement(
            record,
            'Paired rounds (ours over TCP against 0.27, round by round)',
            lambda section: paired_table(modes, section.get('paired', {})),
        ),
        _per_placement(record, 'Redis round trip (PING)', lambda section: latency_table(section['latency'])),
        _per_placement(
            record,
            'Where the time goes (per task, best run of each cell)',
            lambda section: breakdown_table(modes, entrants, section['summary']),
        ),
        _profiles(modes, entrants, record),
    ]
    sections = [
        *(modes_sections if record['placements'] else [intro[:2]]),
        list(extra),
        ['## Machine', '', *facts_list(record['facts']), ''],
    ]
    return '\n'.join(line for section in sections for line in section)
