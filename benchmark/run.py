"""``make bench``: this repository's Sergeant against Sergeant 0.27.0, side by side on one Redis.

Starts a private ``redis-server`` (loopback TCP and a unix socket, no
persistence), builds 0.27.0's own virtual environment on first use, keeps idle
CPUs polling and, for each CPU placement (``harness/placement.py``; by default
Redis and the worker on separate CPUs), measures the PING round trip and runs
every mode for every contender through the drivers. Writes
``benchmark/results/latest.md`` and ``latest.json`` and prints the Markdown
report. See ``benchmark/README.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import Any

import mongo_depth
from harness import (
    envs,
    facts,
    field,
    field_report,
    latency,
    measure,
    metrics_cost,
    placement,
    report,
    scale,
    supervised,
    supervised_report,
    wakeup,
)
from harness.server import RedisServer, running_redis

RESULTS_DIR = envs.BENCHMARK_DIR / 'results'

MODES = [
    measure.Mode('push_single', 'single push', 20_000, 0.9),
    measure.Mode('push_bulk', 'bulk push', 100_000, 1.5),
    measure.Mode('consume_single', 'consume single', 20_000, 2.0),
    measure.Mode('consume_batch', 'consume batch', 100_000, 1.5),
]
PLACEMENTS = ['split', 'unpinned', 'shared']
DEFAULT_PLACEMENTS = ['split', 'unpinned']
# the modes; ours with metrics off/on; both supervisors; an idle worker's wake-up (ours only);
# the MongoDB connector at depth on FerretDB; ours with more processes, threads and idle consumers;
# the field (ours, 0.27, Celery, Dramatiq, RQ, Huey, arq, taskiq)
SECTIONS = ['modes', 'metrics', 'supervised', 'wakeup', 'mongo-depth', 'scale', 'field']


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--repeats', type=int, default=5, help='runs per mode and contender (default 5)')
    parser.add_argument(
        '--idle-consumers',
        type=int,
        default=1000,
        help='scale section: idle consumers on one Redis (default 1000)',
    )
    parser.add_argument('--scale', type=float, default=1.0, help='multiply every task count (default 1)')
    parser.add_argument('--modes', nargs='+', choices=[mode.key for mode in MODES], help='only these modes')
    parser.add_argument(
        '--placements',
        nargs='+',
        choices=PLACEMENTS,
        default=DEFAULT_PLACEMENTS,
        help='CPU placements to run',
    )
    parser.add_argument('--allow-idle', action='store_true', help='let idle CPUs halt (no PM QoS request)')
    parser.add_argument(
        '--profile', action='store_true', help='add one cProfile run per cell, first placement only'
    )
    parser.add_argument(
        '--sections', nargs='+', choices=SECTIONS, default=SECTIONS, help='only these sections'
    )
    parser.add_argument(
        '--idle-seconds', type=float, default=10.0, help='idle supervisor measurement (default 10)'
    )
    parser.add_argument(
        '--wakeup-samples',
        type=int,
        nargs=2,
        default=[200, 50],
        metavar=('READY', 'DELAYED'),
        help='wake-up section: tasks pushed to an idle worker, then delayed ones (default 200 50)',
    )
    parser.add_argument(
        '--field-repeats',
        type=int,
        default=2,
        help='field section: interleaved rounds, the best counts (default 2)',
    )
    parser.add_argument(
        '--field-samples',
        type=int,
        default=field.WAKEUP_SAMPLES,
        help=f'field section: wake-up samples per library (default {field.WAKEUP_SAMPLES})',
    )
    return parser.parse_args()


def measure_placement(
    where: placement.Placement,
    server: RedisServer,
    modes: list[measure.Mode],
    interpreters: tuple[Path, Path],
    arguments: argparse.Namespace,
    profile: bool,
) -> dict[str, Any]:
    """Latency, all runs, optional profiles and the summary of one placement."""
    entrants = measure.contenders(server, *interpreters)
    where.pin_redis(server.pid)
    pings = latency.measure_latency(server, where, list(interpreters))
    runs = measure.run_all(entrants, modes, server, where, arguments.repeats, arguments.scale)
    profiles = (
        measure.profile_all(entrants, modes, server, where, arguments.scale, RESULTS_DIR / 'profiles')
        if profile
        else {}
    )
    return {
        'label': where.label,
        'where': where.describe(),
        'latency': pings,
        'runs': runs,
        'profiles': profiles,
        'summary': report.summarise(modes, runs),
        'paired': report.paired_rounds(modes, runs),
    }


def run_metrics_section(
    server: RedisServer, ours: Path, arguments: argparse.Namespace, record: dict[str, Any]
) -> list[str]:
    """Ours with task metrics off and on, in the first placement asked for; its report lines."""
    where = placement.available(arguments.placements)[0]
    rounds = metrics_cost.ROUNDS
    section = metrics_cost.run_section(server, ours, where, rounds, arguments.scale)
    section['summary'] = metrics_cost.summarise(section)
    record['metrics'] = section
    return metrics_cost.markdown_lines(section, rounds)


def run_field_section(
    server: RedisServer, arguments: argparse.Namespace, record: dict[str, Any]
) -> list[str]:
    """Every library of the field in the first placement asked for; writes RESULTS.md and its chart."""
    where = placement.available(arguments.placements)[0]
    where.pin_redis(server.pid)
    section = field.run_section(
        server, where, arguments.field_repeats, arguments.scale, arguments.field_samples
    )
    section['summary'] = field_report.summarise(section)
    record['field'] = section
    return field_report.write(section, record['facts'])


def write_results(text: str, record: dict[str, Any]) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / 'latest.md').write_text(text)
    (RESULTS_DIR / 'latest.json').write_text(json.dumps(record, indent=2, default=str) + '\n')


def main() -> int:
    arguments = parse_arguments()
    modes = [mode for mode in MODES if not arguments.modes or mode.key in arguments.modes]
    interpreters = (envs.ours_python(), envs.sergeant027_python())
    record: dict[str, Any] = {
        'generated_at': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'settings': {
            'repeats': arguments.repeats,
            'scale': arguments.scale,
            'statistic': 'best',
            'allow_idle': arguments.allow_idle,
        },
        'placements': {},
    }
    with running_redis() as server, placement.polling_idle(not arguments.allow_idle) as idle:
        record['facts'] = {**facts.collect(*interpreters, server.version), 'idle CPUs': idle}
        wanted = placement.available(arguments.placements) if 'modes' in arguments.sections else []
        for index, where in enumerate(wanted):
            record['placements'][where.key] = measure_placement(
                where, server, modes, interpreters, arguments, arguments.profile and index == 0
            )
        extra: list[str] = []
        if 'metrics' in arguments.sections:
            extra += run_metrics_section(server, interpreters[0], arguments, record)
        if 'supervised' in arguments.sections:
            section = supervised.run_section(
                server, *interpreters, arguments.repeats, arguments.scale, arguments.idle_seconds
            )
            section['summary'] = supervised_report.summarise(section)
            record['supervised'] = section
            extra += supervised_report.markdown_lines(section, arguments.repeats)
        if 'wakeup' in arguments.sections:
            ready, delayed = arguments.wakeup_samples
            record['wakeup'] = wakeup.run_section(
                server, interpreters[0], ready, delayed, arguments.idle_seconds
            )
            extra += wakeup.markdown_lines(record['wakeup'])
        if 'mongo-depth' in arguments.sections:
            extra += mongo_depth.run_section([200, 10_000, 100_000], 1000, 10, 100_000)
        if 'scale' in arguments.sections:
            record['scale'] = scale.run_section(
                server, interpreters[0], int(200_000 * arguments.scale), arguments.idle_consumers, 100
            )
            extra += scale.markdown_lines(record['scale'])
        if 'field' in arguments.sections:
            extra += run_field_section(server, arguments, record)
        entrants = measure.contenders(server, *interpreters)
    record['facts']['load average at end (1, 5, 15 min)'] = facts.load()
    text = report.markdown(modes, entrants, record, extra)
    write_results(text, record)
    print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
