"""Reaping of child processes, including orphans adopted by the supervisor.

In a container the supervisor is often PID 1, and every orphaned process of the
container (a task's grandchild whose parent died) becomes its child: it must be
reaped or it stays a zombie. Outside a container the supervisor asks Linux to
make it a "child subreaper", so orphans of its workers are adopted by it, not by
the system's init, and are reaped the same way.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterator

_PR_SET_CHILD_SUBREAPER = 36  # from <linux/prctl.h>


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux only); False when not possible."""
    if not sys.platform.startswith('linux'):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the C library the interpreter is linked with
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def reap_children() -> Iterator[tuple[int, int]]:
    """Yield ``(pid, exit code)`` of every child that ended; a signal gives ``-signal``."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # no children at all
        if pid == 0:
            return  # children remain, none has ended
        yield pid, os.waitstatus_to_exitcode(status)
