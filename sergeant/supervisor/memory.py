"""Memory use of worker process trees, for ``--max-worker-memory-usage``.

A worker's memory is the resident set size of the worker *and* all its
descendants: a task that starts a subprocess (or a process pool) must not escape
the limit. All workers are measured in one pass, every second, so the cost must
stay low: on Linux one scan of ``/proc/*/stat`` finds every process's parent
(whatever the number of workers) and ``/proc/<pid>/statm`` gives each RSS;
elsewhere psutil does the same work. The pool imports this module only when a
limit is set.
"""

from __future__ import annotations

import collections
import dataclasses
import os
from collections.abc import Iterable

_PROC = '/proc'
_PAGE_SIZE = os.sysconf('SC_PAGE_SIZE') if hasattr(os, 'sysconf') else 4096


@dataclasses.dataclass(frozen=True)
class TreeMemory:
    """RSS of a process and its descendants, and the descendants' pids (to kill them too)."""

    rss: int
    descendants: tuple[int, ...]


def measure_trees(roots: Iterable[int]) -> dict[int, TreeMemory]:
    """Measure each root pid with its descendants; processes that vanish meanwhile count as 0."""
    roots = list(roots)
    if not roots:
        return {}
    linux = os.path.exists(f'{_PROC}/self/statm')
    children = _children_from_proc() if linux else _children_from_psutil()
    rss_of = _rss_from_proc if linux else _rss_from_psutil
    measured = {}
    for root in roots:
        descendants: list[int] = []
        pending = list(children.get(root, ()))
        while pending:
            pid = pending.pop()
            descendants.append(pid)
            pending.extend(children.get(pid, ()))
        rss = sum(rss_of(pid) for pid in (root, *descendants))
        measured[root] = TreeMemory(rss, tuple(descendants))
    return measured


def _read(path: str) -> bytes:
    # os.open/os.read: a third cheaper than open(), and this runs for every process every second
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def _children_from_proc() -> dict[int, list[int]]:
    children: dict[int, list[int]] = collections.defaultdict(list)
    for name in os.listdir(_PROC):
        if not name.isdigit():
            continue
        try:
            data = _read(f'{_PROC}/{name}/stat')
        except OSError:
            continue  # the process ended meanwhile
        # "pid (command) state ppid ...": the command may hold spaces and parentheses
        fields = data[data.rindex(b')') + 2 :].split(b' ', 2)
        children[int(fields[1])].append(int(name))
    return children


def _rss_from_proc(pid: int) -> int:
    try:
        return int(_read(f'{_PROC}/{pid}/statm').split()[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


def _children_from_psutil() -> dict[int, list[int]]:
    import psutil  # only where /proc cannot be read directly

    children: dict[int, list[int]] = collections.defaultdict(list)
    for process in psutil.process_iter(['ppid']):
        children[process.info['ppid']].append(process.pid)
    return children


def _rss_from_psutil(pid: int) -> int:
    import psutil

    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return 0
