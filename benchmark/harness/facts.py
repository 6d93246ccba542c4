"""What machine and software produced the numbers: CPU, interpreters, library versions, commit."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from .envs import BENCHMARK_DIR


def cpu_model() -> str:
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def _interpreter(python: Path) -> str:
    code = (
        'import sys, importlib.metadata as m; '
        "print(sys.version.split()[0], *(f'{n}=={m.version(n)}' for n in ('sergeant', 'redis', 'hiredis')))"
    )
    completed = subprocess.run([str(python), '-I', '-c', code], capture_output=True, text=True, check=False)
    return completed.stdout.strip() or f'unavailable: {completed.stderr.strip()[-200:]}'


def _commit() -> str:
    """HEAD of the work tree, marked when the library has uncommitted changes (read-only git calls)."""
    root = BENCHMARK_DIR.parent
    git = ['git', '--no-optional-locks', '-C', str(root)]
    head = subprocess.run([*git, 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True, check=False)
    if head.returncode != 0:
        return 'unknown'
    changed = subprocess.run([*git, 'diff', '--quiet', 'HEAD', '--', 'sergeant'], check=False).returncode
    return head.stdout.strip() + (' + uncommitted changes in sergeant/' if changed else '')


def load() -> str:
    """Load averages: other work on the machine (tests, builds) shows up as noise in the numbers."""
    one, five, fifteen = os.getloadavg()
    return f'{one:.2f} {five:.2f} {fifteen:.2f}'


def collect(ours: Path, sergeant027: Path, redis_version: str) -> dict[str, Any]:
    return {
        'load average at start (1, 5, 15 min)': load(),
        'cpu': f'{os.cpu_count()} logical CPUs, {cpu_model()}',
        'os': platform.platform(),
        'redis-server': redis_version,
        'ours (python, libraries)': _interpreter(ours),
        '0.27 (python, libraries)': _interpreter(sergeant027),
        'commit': _commit(),
    }
