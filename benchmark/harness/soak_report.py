"""The soak's figures and its Markdown report.

:func:`summarize` turns a run's raw results and the ledger into figures: lost,
duplicated and dead-lettered tasks, chaos landed, times, and memory. Memory is
compared between two windows of :data:`WINDOW` seconds: *warm-up*, starting
when ``warmup`` of the tasks have been processed, and *end*, the last seconds
before every task had run. Each window gives the median of the supervisor's
RSS and, for the workers, the median over samples of the largest (and of the
typical, median) live worker. Worker processes come and go with the kills, so
their figure says whether fresh workers start bigger as the run goes on; the
supervisor lives through the whole run.
"""

from __future__ import annotations

import collections
import json
import re
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from .soak_ledger import Ledger

WINDOW = 10.0
GROWTH_TOLERANCE = 0.10  # growth of a median RSS within 10% (plus 1 MiB) counts as none
MIB = 2**20
_NUMBERS = re.compile(r'\d+(\.\d+)?')


def _window_median(
    samples: Sequence[dict[str, Any]], value: Callable[[dict[str, Any]], float | None]
) -> float | None:
    values = [found for sample in samples if (found := value(sample)) is not None]
    return statistics.median(values) if values else None


def _worker_max(sample: dict[str, Any]) -> float | None:
    return max((rss for _, rss in sample['workers_rss']), default=None)


def _worker_median(sample: dict[str, Any]) -> float | None:
    values = [rss for _, rss in sample['workers_rss']]
    return statistics.median(values) if values else None


def _supervisor(sample: dict[str, Any]) -> float | None:
    rss: int | None = sample['supervisor_rss']
    return rss


def memory(samples: list[dict[str, Any]], tasks: int, warmup: float, chaos_seconds: float) -> dict[str, Any]:
    """RSS of supervisor and workers at warm-up and at the end, and the growth between."""
    chaos = [sample for sample in samples if sample['t'] <= chaos_seconds]
    start = next((sample['t'] for sample in chaos if sample['distinct'] >= warmup * tasks), None)
    if start is None or not chaos:
        return {}
    early = [sample for sample in chaos if start <= sample['t'] < start + WINDOW]
    late = [sample for sample in chaos if sample['t'] > chaos_seconds - WINDOW]
    redis_peak = max(
        (sample['redis_rss'] for sample in samples if sample['redis_rss'] is not None), default=None
    )
    figures: dict[str, Any] = {'warmup_at_seconds': start, 'redis_peak': redis_peak}
    for key, value in (
        ('supervisor', _supervisor),
        ('worker_max', _worker_max),
        ('worker_median', _worker_median),
    ):
        before, after = _window_median(early, value), _window_median(late, value)
        peak = max((found for sample in samples if (found := value(sample)) is not None), default=None)
        growth = None if before is None or after is None else after - before
        flat = growth is not None and before is not None and growth <= before * GROWTH_TOLERANCE + MIB
        figures[key] = {'warmup': before, 'end': after, 'growth': growth, 'peak': peak, 'flat': flat}
    return figures


def log_counts(log: str) -> dict[str, Any]:
    """Supervisor log lines by level, and by message with the numbers blanked out."""
    levels: collections.Counter[str] = collections.Counter()
    messages: collections.Counter[str] = collections.Counter()
    for line in log.splitlines():
        try:
            entry = json.loads(line)
            level, message = str(entry.get('level', '?')), str(entry.get('event', ''))
        except (ValueError, AttributeError):
            level, message = 'not json', line
        levels[level] += 1
        messages[f'{level}: {_NUMBERS.sub("N", message)[:160]}'] += 1
    return {'levels': dict(levels), 'messages': messages.most_common(25)}


def summarize(raw: dict[str, Any], log: str, ledger: Ledger, settings: dict[str, Any]) -> dict[str, Any]:
    tasks = settings['tasks']
    lost = ledger.lost(raw['pushed'])
    duplicated_ids, extra_runs, most_runs = ledger.duplicates()
    first_record = next((sample['t'] for sample in raw['samples'] if sample['records']), None)
    return {
        'tasks': tasks,
        'pushed': raw['pushed'],
        'distinct_processed': ledger.distinct,
        'records': ledger.records,
        'out_of_range_records': ledger.out_of_range,
        'lost': len(lost),
        'lost_ids_first': lost[:100],
        'never_pushed': tasks - raw['pushed'],
        'duplicated_ids': duplicated_ids,
        'extra_runs': extra_runs,
        'duplicate_share': extra_runs / tasks if tasks else 0.0,
        'most_runs_of_one_id': most_runs,
        'dead_letters': raw['left_at_end']['dead_letters'],
        'ready_left': raw['left_at_end']['ready'],
        'in_flight_left': raw['left_at_end']['in_flight'],
        'kills': len(raw['kills']),
        'restarts': [
            {
                key: restart[key]
                for key in ('t', 'mode', 'exit_code', 'stop_seconds', 'down_seconds', 'start_seconds')
            }
            | {'progress': restart['distinct'] / tasks}
            for restart in raw['restarts']
        ],
        'ended': raw['ended'],
        'wall_seconds': raw['chaos_seconds'],
        'first_record_seconds': first_record,
        'settle_seconds': raw['settled_seconds'] - raw['chaos_seconds'],
        'throughput': ledger.distinct / raw['chaos_seconds'] if raw['chaos_seconds'] else 0.0,
        'supervisor_stop': raw['supervisor'],
        'push_retries': len(raw['push_errors']),
        'memory': memory(raw['samples'], tasks, settings['warmup'], raw['chaos_seconds']),
        'log': log_counts(log),
        'dead_letter_reasons': raw['dead_letter_reasons'],
    }


def failures(summary: dict[str, Any]) -> list[str]:
    """What broke a promise: any of these makes the soak fail."""
    found = []
    if summary['lost']:
        found.append(f'{summary["lost"]:,} tasks lost')
    if summary['ended'] != 'all processed':
        found.append(f'the run ended early: {summary["ended"]}')
    if summary['supervisor_stop']['exit_code'] != 0:
        found.append(f'the supervisor exited with {summary["supervisor_stop"]["exit_code"]} after SIGTERM')
    if summary['in_flight_left'] or summary['ready_left']:
        found.append(
            f'{summary["ready_left"]} tasks ready and {summary["in_flight_left"]} in flight at the end'
        )
    if summary['dead_letters']:
        found.append(f'{summary["dead_letters"]} tasks dead-lettered')
    if summary['out_of_range_records']:
        found.append(f'{summary["out_of_range_records"]} records of ids never pushed')
    return found
