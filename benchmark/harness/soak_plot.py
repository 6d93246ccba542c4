"""The soak's picture: RSS of supervisor and workers over time, progress, kills and restarts.

Workers change pids as they are killed and respawned, so they are drawn as the
largest and the smallest live worker of each sample (a band) and their median.
Progress (distinct tasks processed) is on the right-hand axis. Thin red lines
mark worker kills, dashed lines Redis restarts, with the time Redis was down
shaded. Needs matplotlib (the ``bench`` extra); :func:`check` says so before a
long run rather than after it.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from .soak_report import MIB

RESTART_COLOURS = {'graceful': 'tab:purple', 'kill': 'black'}


def check() -> None:
    """Fail now if matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SystemExit(
            'the soak draws its plot with matplotlib: run `make soak`, or pip install -e .[bench]'
        ) from None


def plot(raw: dict[str, Any], summary: dict[str, Any], settings: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    samples = [sample for sample in raw['samples'] if sample['workers_rss']]
    seconds = [sample['t'] for sample in samples]
    workers = [[rss / MIB for _, rss in sample['workers_rss']] for sample in samples]
    figure, rss_axis = plt.subplots(figsize=(12, 7), dpi=110)
    rss_axis.fill_between(
        seconds, [min(each) for each in workers], [max(each) for each in workers],
        color='tab:orange', alpha=0.25, linewidth=0, label='workers: smallest to largest',
    )  # fmt: skip
    rss_axis.plot(
        seconds, [statistics.median(each) for each in workers], color='tab:orange', label='workers: median'
    )
    supervisor: list[float] = [
        math.nan if sample['supervisor_rss'] is None else sample['supervisor_rss'] / MIB for sample in samples
    ]
    rss_axis.plot(seconds, supervisor, color='tab:blue', linewidth=2, label='supervisor')
    rss_axis.set_ylim(0, max(max(each) for each in workers) * 1.35)
    rss_axis.set_xlabel('seconds since the supervisor started')
    rss_axis.set_ylabel('RSS (MiB)')
    for number, kill in enumerate(raw['kills']):
        rss_axis.axvline(
            kill['t'],
            color='tab:red',
            alpha=0.3,
            linewidth=0.6,
            label='worker SIGKILL' if number == 0 else None,
        )
    for restart in raw['restarts']:
        colour = RESTART_COLOURS[restart['mode']]
        rss_axis.axvline(
            restart['t'],
            color=colour,
            linestyle='--',
            linewidth=1.8,
            label=f'Redis restart ({restart["mode"]})',
        )
        rss_axis.axvspan(restart['t'], restart['t'] + restart['down_seconds'], color=colour, alpha=0.12)
    progress_axis = rss_axis.twinx()
    tasks = summary['tasks']
    progress_axis.plot(
        [sample['t'] for sample in raw['samples']],
        [100 * sample['distinct'] / tasks for sample in raw['samples']],
        color='tab:green', linestyle=':', linewidth=2, label='tasks processed (right)',
    )  # fmt: skip
    progress_axis.set_ylim(0, 105)
    progress_axis.set_ylabel(f'distinct tasks processed (% of {tasks:,})')
    handles, labels = rss_axis.get_legend_handles_labels()
    more_handles, more_labels = progress_axis.get_legend_handles_labels()
    figure.legend(handles + more_handles, labels + more_labels, loc='lower center', fontsize='small', ncol=4)
    rss_axis.set_title(
        f'{tasks:,} tasks, {settings["workers"]} workers: {summary["kills"]} SIGKILLs, '
        f'{len(raw["restarts"])} Redis restarts; lost {summary["lost"]:,}, '
        f'duplicates {summary["extra_runs"]:,}, dead-lettered {summary["dead_letters"]:,}'
    )
    figure.tight_layout(rect=(0, 0.09, 1, 1))  # room for the legend below
    figure.savefig(path)
    plt.close(figure)
