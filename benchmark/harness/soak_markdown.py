"""The soak's report as Markdown: the verdict, the main table, memory, restarts, settings, log."""

from __future__ import annotations

from typing import Any

from .soak_report import MIB

_RESTART_WORDS = {
    'graceful': 'graceful (`SHUTDOWN`: AOF flushed and fsynced, exit 0)',
    'kill': 'kill -9 (a crash: only what the AOF had fsynced survives)',
}


def _cell(text: str) -> str:
    """Text safe inside a table cell's code span."""
    return text.replace('|', '/').replace('`', "'")


def _mib(value: float | None) -> str:
    return '-' if value is None else f'{value / MIB:.1f} MiB'


def _growth(figure: dict[str, Any]) -> str:
    growth, before = figure.get('growth'), figure.get('warmup')
    if growth is None or not before:
        return '-'
    verdict = 'flat' if figure['flat'] else '**grew**'
    return f'{growth / MIB:+.1f} MiB ({growth / before:+.1%}), {verdict}'


def _main_table(summary: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    restarts = summary['restarts']
    modes = ', '.join(f'{restart["mode"]} at {restart["progress"]:.0%}' for restart in restarts) or 'none'
    stop = summary['supervisor_stop']
    kill_every = settings['kill_every']
    wall = f'{summary["wall_seconds"]:.1f} s'
    if summary['ended'] != 'all processed':
        wall += f' (**ended early: {summary["ended"]}**)'
    rows = [
        ('tasks pushed', f'{summary["pushed"]:,} of {summary["tasks"]:,}'),
        ('distinct tasks processed', f'{summary["distinct_processed"]:,}'),
        ('**lost** (pushed, never processed)', f'**{summary["lost"]:,}**'),
        (
            'duplicates (ids run more than once; extra runs, share of tasks)',
            f'{summary["duplicated_ids"]:,}; {summary["extra_runs"]:,} extra runs, '
            f'{summary["duplicate_share"]:.4%}; most runs of one id: {summary["most_runs_of_one_id"]}',
        ),
        ('dead-lettered', f'{summary["dead_letters"]:,}'),
        ('left in the queue: ready, in flight', f'{summary["ready_left"]:,}, {summary["in_flight_left"]:,}'),
        (
            'workers SIGKILLed',
            f'{summary["kills"]} (one every {kill_every:g} s)' if kill_every > 0 else 'none (chaos off)',
        ),
        ('Redis restarts', f'{len(restarts)} of {settings["redis_restarts"]}: {modes}'),
        ('wall time (supervisor start until every task had run)', wall),
        ('throughput', f'{summary["throughput"]:,.0f} tasks/s'),
        ('then until nothing was ready nor in flight', f'{summary["settle_seconds"]:.1f} s'),
        ('pushes sent again after a connection error', f'{summary["push_retries"]}'),
        (
            'supervisor after SIGTERM',
            f'exit code {stop["exit_code"]} in {stop["seconds"]:.1f} s'
            + (' (had to be killed)' if stop['killed'] else ''),
        ),
    ]
    return ['| figure | value |', '| --- | --- |', *(f'| {name} | {value} |' for name, value in rows)]


def _memory_table(summary: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    memory = summary['memory']
    if not memory:
        return ['(no memory samples after warm-up)']
    lines = [
        f'Warm-up: from the {memory["warmup_at_seconds"]:.0f} s mark, once {settings["warmup"]:.0%} of the '
        'tasks had run; end: the last 10 s before every task had run. Medians of the samples (every 0.5 s) '
        'in those 10 s.',
        '',
        '| RSS | warm-up | end | growth | peak |',
        '| --- | ---: | ---: | --- | ---: |',
    ]
    for key, label in (
        ('supervisor', 'supervisor'),
        ('worker_max', 'largest live worker'),
        ('worker_median', 'median live worker'),
    ):
        figure = memory[key]
        cells = [label, _mib(figure['warmup']), _mib(figure['end']), _growth(figure), _mib(figure['peak'])]
        lines.append('| ' + ' | '.join(cells) + ' |')
    lines += [
        '',
        f'Redis itself peaked at {_mib(memory["redis_peak"])} RSS '
        f'(up to {settings["backlog"]:,} tasks queued).',
    ]
    return lines


def _restart_table(summary: dict[str, Any], appendfsync: str) -> list[str]:
    if not summary['restarts']:
        return []
    lines = [
        f'Redis runs with `appendonly yes`, `appendfsync {appendfsync}`; each restart reuses the port '
        'and the data directory.',
        '',
        '| # | at | progress | how | Redis exit code | down (stop, 1 s pause, AOF replay) |',
        '| ---: | ---: | ---: | --- | ---: | ---: |',
    ]
    for number, restart in enumerate(summary['restarts'], start=1):
        how = _RESTART_WORDS[restart['mode']]
        lines.append(
            f'| {number} | {restart["t"]:.1f} s | {restart["progress"]:.0%} | {how} '
            f'| {restart["exit_code"]} | {restart["down_seconds"]:.1f} s |'
        )
    return lines


def render(
    summary: dict[str, Any], settings: dict[str, Any], facts: dict[str, str], problems: list[str], image: str
) -> str:
    verdict = 'PASS' if not problems else 'FAIL: ' + '; '.join(problems)
    lines = [
        '# Soak: Sergeant supervisor under worker kills and Redis restarts',
        '',
        f'**{verdict}**',
        '',
        *_main_table(summary, settings),
        '',
        '## Memory',
        '',
        *_memory_table(summary, settings),
        '',
        f'![RSS of supervisor and workers, progress, kills and Redis restarts]({image})',
        '',
        '## Redis restarts',
        '',
        *_restart_table(summary, settings['appendfsync']),
        '',
        '## Settings and machine',
        '',
        *(f'- {name}: {value}' for name, value in {**settings, **facts}.items()),
        '',
        '## Supervisor log',
        '',
        'Lines by level: '
        + ', '.join(f'{level} {count}' for level, count in sorted(summary['log']['levels'].items())),
        '',
        '| lines | message (numbers as N) |',
        '| ---: | --- |',
        *(f'| {count} | `{_cell(message)}` |' for message, count in summary['log']['messages'][:12]),
        '',
    ]
    return '\n'.join(lines)
