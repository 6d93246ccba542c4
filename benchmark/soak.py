"""``make soak``: millions of tasks through the real supervisor, workers SIGKILLed, Redis restarted.

Starts a private ``redis-server`` with AOF persistence on a free loopback port,
then ``python -m sergeant.supervisor`` with the worker of
``drivers/soak_worker.py`` (each task appends its id to a record file of its
process). Pushes the tasks as they are used up, SIGKILLs a random worker every
``--kill-every`` seconds, restarts Redis ``--redis-restarts`` times, samples the
RSS of the supervisor and its workers every second, waits until every task ran
and nothing is left in flight, and stops the supervisor with SIGTERM.

Writes ``soak.md`` (the report), ``soak.json`` (every raw number), ``soak.png``
(memory over time) and ``soak-supervisor.log`` to ``--out``, and prints the
report. Exit code 1 when a task was lost, 2 when another promise broke (dead
letters, tasks left, a supervisor that did not exit 0), else 0. See
``benchmark/README.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from harness import facts, soak_markdown, soak_plot, soak_report
from harness.envs import BENCHMARK_DIR
from harness.soak_run import Settings, run_soak

RESULTS_DIR = BENCHMARK_DIR / 'results'
ARCHIVE_DIR = BENCHMARK_DIR / 'soak'


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add('--tasks', type=int, default=2_000_000, help='tasks to push and see processed (default 2,000,000)')
    add('--workers', type=int, default=4, help='worker processes of the supervisor (default 4)')
    add('--threads', type=int, default=1, help='number_of_threads of each worker (default 1: serial)')
    add('--kill-every', type=float, default=3.0, help='seconds between worker SIGKILLs; 0: none (default 3)')
    add('--redis-restarts', type=int, default=2, help='Redis restarts, spread over the run (default 2)')
    add(
        '--restart-mode',
        choices=['alternate', 'graceful', 'kill'],
        default='alternate',
        help='how Redis is stopped: graceful SHUTDOWN, kill -9, or alternate starting graceful (default)',
    )
    add(
        '--appendfsync',
        choices=['always', 'everysec'],
        default='always',
        help='Redis AOF fsync (default always)',
    )
    add('--tasks-per-transaction', type=int, default=100, help='tasks per pop (default 100)')
    add(
        '--lease-seconds',
        type=float,
        default=60.0,
        help="lease of a popped task (default 60, Sergeant's own default)",
    )
    add(
        '--max-tasks-per-run',
        type=int,
        default=0,
        help='tasks before a worker is replaced; 0: never (default)',
    )
    add(
        '--backlog',
        type=int,
        default=200_000,
        help='pushed but unprocessed tasks to keep ready (default 200,000)',
    )
    add(
        '--warmup',
        type=float,
        default=0.2,
        help='share of tasks processed that ends the warm-up (default 0.2)',
    )
    add('--timeout', type=float, default=3600.0, help='seconds before the run gives up (default 3600)')
    add('--seed', type=int, default=12, help='seed of the random choice of the worker to kill (default 12)')
    add('--out', type=Path, default=RESULTS_DIR, help='directory of the results (default benchmark/results)')
    add(
        '--keep',
        action='store_true',
        help='also copy the report and plot to benchmark/soak/soak-<date>.md/.png',
    )
    arguments = parser.parse_args()
    if (
        arguments.restart_mode != 'graceful'
        and arguments.redis_restarts
        and arguments.appendfsync != 'always'
    ):
        parser.error('kill -9 restarts need --appendfsync always (everysec may drop a second of writes)')
    if arguments.tasks < 1 or arguments.workers < 1 or arguments.threads < 1 or arguments.backlog < 1:
        parser.error('--tasks, --workers, --threads and --backlog must be at least 1')
    return arguments


def _shown(path: Path) -> str:
    """The path relative to the working directory where it can be, so no machine's layout is printed."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return path.name


def _commit() -> str:
    """HEAD, marked when the library in the work tree differs from it (read-only git calls)."""
    git = ['git', '--no-optional-locks', '-C', str(BENCHMARK_DIR.parent)]
    head = subprocess.run([*git, 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True, check=False)
    if head.returncode != 0:
        return 'unknown'
    changed = subprocess.run([*git, 'diff', '--quiet', 'HEAD', '--', 'sergeant'], check=False).returncode
    return head.stdout.strip() + (' + uncommitted changes in sergeant/' if changed else '')


def machine_facts(redis_version: str) -> dict[str, str]:
    return {
        'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
        'commit': _commit(),
        'cpu': f'{os.cpu_count()} logical CPUs, {facts.cpu_model()}',
        'python': platform.python_version(),
        'redis-server': redis_version,
        'load average at end (1, 5, 15 min)': facts.load(),
    }


def _stop_on_sigterm(signal_number: int, frame: object) -> None:
    raise SystemExit(128 + signal_number)  # unwinds: the supervisor, its workers and Redis are stopped


def main() -> int:
    arguments = parse_arguments()
    soak_plot.check()
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    settings = Settings(
        tasks=arguments.tasks,
        workers=arguments.workers,
        threads=arguments.threads,
        kill_every=arguments.kill_every,
        redis_restarts=arguments.redis_restarts,
        restart_mode=arguments.restart_mode,
        appendfsync=arguments.appendfsync,
        tasks_per_transaction=arguments.tasks_per_transaction,
        lease_seconds=arguments.lease_seconds,
        max_tasks_per_run=arguments.max_tasks_per_run,
        backlog=arguments.backlog,
        warmup=arguments.warmup,
        timeout=arguments.timeout,
        seed=arguments.seed,
    )
    settings_shown = dataclasses.asdict(settings)
    load_at_start = facts.load()
    raw, ledger = run_soak(settings)
    log = raw.pop('supervisor_log')
    summary = soak_report.summarize(raw, log, ledger, settings_shown)
    problems = soak_report.failures(summary)
    machine = {'load average at start (1, 5, 15 min)': load_at_start, **machine_facts(raw['redis_version'])}
    out: Path = arguments.out
    out.mkdir(parents=True, exist_ok=True)
    soak_plot.plot(raw, summary, settings_shown, out / 'soak.png')
    report = soak_markdown.render(summary, settings_shown, machine, problems, 'soak.png')
    (out / 'soak.md').write_text(report)
    (out / 'soak-supervisor.log').write_text(log)
    document = {
        'settings': settings_shown,
        'machine': machine,
        'summary': summary,
        'problems': problems,
        'raw': raw,
    }
    (out / 'soak.json').write_text(json.dumps(document, indent=1, default=str))
    print(report)
    written = [out / name for name in ('soak.md', 'soak.json', 'soak.png', 'soak-supervisor.log')]
    if arguments.keep:
        ARCHIVE_DIR.mkdir(exist_ok=True)
        stem = f'soak-{datetime.datetime.now(datetime.timezone.utc).date().isoformat()}'
        shutil.copyfile(out / 'soak.png', ARCHIVE_DIR / f'{stem}.png')
        kept = soak_markdown.render(summary, settings_shown, machine, problems, f'{stem}.png')
        (ARCHIVE_DIR / f'{stem}.md').write_text(kept)
        written += [ARCHIVE_DIR / f'{stem}.md', ARCHIVE_DIR / f'{stem}.png']
    print('written: ' + ', '.join(_shown(path) for path in written), file=sys.stderr)
    if summary['lost']:
        return 1
    return 2 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
