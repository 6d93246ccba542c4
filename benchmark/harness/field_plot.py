"""The field section's bar chart: one panel per mode, one bar per library, ours highlighted.

Rates span three orders of magnitude (RQ forking per job against batch
consumers), so every panel has a logarithmic axis; the wake-up panel shows p50
as the bar and p99 as a tick above it. Needs matplotlib (the ``bench`` extra).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .field import ENTRANTS, MODES

TITLES = {
    'produce_single': 'produce single\n(tasks/s, higher is better)',
    'produce_bulk': 'produce bulk\n(tasks/s, higher is better)',
    'consume_single': 'consume single\n(tasks/s, higher is better)',
    'consume_batch': 'consume batch\n(tasks/s, higher is better)',
    'wakeup': 'wake-up latency\n(ms, p50 bar, p99 tick; lower is better)',
}


def plot(best: dict[str, dict[str, dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    labels = [entrant.label.replace(' (ours)', '\n(ours)') for entrant in ENTRANTS]
    colours = ['tab:red' if entrant.key == 'ours' else 'tab:blue' for entrant in ENTRANTS]
    figure, axes = plt.subplots(1, len(MODES) + 1, figsize=(20, 5.5), dpi=100)
    for axis, mode in zip(axes, (*MODES, 'wakeup'), strict=True):
        cells = [best[mode][entrant.key] for entrant in ENTRANTS]
        key = 'p50_ms' if mode == 'wakeup' else 'tasks_per_second'
        values = [0.0 if 'error' in cell else float(cell[key]) for cell in cells]
        bars = axis.barh(labels, values, color=colours)
        p99 = [0.0 if 'error' in cell else float(cell.get('p99_ms', 0)) for cell in cells]
        if mode == 'wakeup':
            axis.scatter(p99, labels, marker='|', s=200, color='black', zorder=3)
        ends = p99 if mode == 'wakeup' else values
        for bar, value, end in zip(bars, values, ends, strict=True):
            text = 'failed' if value == 0 else f'{value:,.1f}' if mode == 'wakeup' else f'{value:,.0f}'
            middle = bar.get_y() + bar.get_height() / 2
            axis.text(max(value, end), middle, f'  {text}', va='center', fontsize=8)
        axis.set_xscale('log')
        axis.xaxis.set_minor_formatter(ticker.NullFormatter())
        axis.set_title(TITLES[mode], fontsize=10)
        axis.invert_yaxis()
        axis.margins(x=0.35)
        if axis is not axes[0]:
            axis.set_yticklabels([])
    figure.suptitle('Sergeant and the field on one Redis, one worker process, no-op tasks')
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
