"""What every compat program shares: where Redis is, its queue names, and how observations are written.

The programs run unchanged under Sergeant 0.27 and under ours, so this module uses
nothing from Sergeant. The runner passes, in the environment:

- ``COMPAT_REDIS_HOST``/``COMPAT_REDIS_PORT``: the test Redis;
- ``COMPAT_QUEUE``: a queue name no other run uses (keys and locks are derived from it);
- ``COMPAT_WORKDIR``: an empty directory for the run's files (it is also the working directory).

Observations are made comparable by :func:`typed`: a value becomes its Python type name
and, for values that do not vary between runs, the value itself; what legitimately varies
(times, pids, ids) is reduced to its type or to a fact about it before it is recorded.
A program prints its observations with :func:`emit`, as one JSON document on the last line
of its standard output.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import pathlib
import re
import sys
import time
from collections.abc import Callable
from typing import Any

# a text of the run (a log line, an error message) that names the queue says <queue> instead
QUEUE_PLACEHOLDER = '<queue>'


def redis_host() -> str:
    return os.environ['COMPAT_REDIS_HOST']


def redis_port() -> int:
    return int(os.environ['COMPAT_REDIS_PORT'])


def redis_params() -> dict[str, Any]:
    """Sergeant 0.27's redis connector params, as its users write them."""
    return {'nodes': [{'host': redis_host(), 'port': redis_port(), 'password': None, 'database': 0}]}


def queue(suffix: str = '') -> str:
    """The run's queue name, or a name derived from it (another queue, a key, a lock)."""
    base = os.environ['COMPAT_QUEUE']
    return f'{base}.{suffix}' if suffix else base


def workdir() -> pathlib.Path:
    return pathlib.Path(os.environ['COMPAT_WORKDIR'])


def typed(value: Any, floats: bool = False) -> Any:
    """``value`` as JSON that says its type.

    Floats (times, durations) keep only their type unless ``floats`` is true; datetimes say
    whether they are naive; strings name the queue ``<queue>``.
    """
    if value is None:
        return {'type': 'NoneType'}
    if isinstance(value, bool | int):
        return {'type': type(value).__name__, 'value': value}
    if isinstance(value, str):
        return {'type': 'str', 'value': value.replace(queue(), QUEUE_PLACEHOLDER)}
    if isinstance(value, float):
        return {'type': 'float', 'value': value} if floats else {'type': 'float'}
    if isinstance(value, bytes):
        return {'type': 'bytes', 'value': value.decode('latin-1')}
    if isinstance(value, datetime.datetime):
        return {'type': 'datetime', 'naive': value.tzinfo is None}
    if isinstance(value, list | tuple):
        return {'type': type(value).__name__, 'items': [typed(item, floats) for item in value]}
    if isinstance(value, dict):
        items = {str(key): typed(item, floats) for key, item in value.items()}
        return {'type': type(value).__name__, 'items': items}
    if isinstance(value, BaseException):
        return {'type': type(value).__name__, 'exception': True}
    return {'type': type(value).__name__}


def fields_of(instance: Any, names: list[str], floats: bool = True) -> dict[str, Any]:
    """The named attributes of ``instance`` (0.27's fields of a config object), typed."""
    return {name: typed(getattr(instance, name, AttributeError()), floats) for name in names}


def task_view(task: Any) -> dict[str, Any]:
    """The parts of a Task that 0.27 defines, in a comparable form."""
    return {
        'type': type(task).__name__,
        'kwargs': typed(task.kwargs),
        'run_count': typed(task.run_count),
        'trace_id': typed(task.trace_id),
        'date': typed(task.date),
    }


def outcome(call: Callable[[], Any]) -> dict[str, Any]:
    """What ``call()`` returned, or the type of what it raised."""
    try:
        return {'returned': typed(call())}
    except BaseException as error:  # the control-flow exceptions derive from BaseException
        return {'raised': type(error).__name__}


def scrub(text: str) -> str:
    """A text of the run without what varies between runs: the queue name, pids and other numbers."""
    text = text.replace(os.environ.get('COMPAT_QUEUE', QUEUE_PLACEHOLDER), QUEUE_PLACEHOLDER)
    return re.sub(r'\d+', '#', text)


# the attributes of every LogRecord: any other attribute of a record came from ``extra=``
_RECORD_ATTRIBUTES = set(vars(logging.LogRecord('', 0, '', 0, '', (), None))) | {'message', 'asctime'}


class LogRecords(logging.Handler):
    """Keeps each record it sees: level and scrubbed message, and with ``details`` its ``extra`` names
    and whether it carries exc_info."""

    def __init__(self, details: bool = False) -> None:
        super().__init__(level=logging.DEBUG)
        self.details = details
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        line: dict[str, Any] = {'level': record.levelname, 'message': scrub(record.getMessage())}
        if self.details:
            line['extra'] = ','.join(sorted(set(vars(record)) - _RECORD_ATTRIBUTES))
            line['exc_info'] = record.exc_info is not None and record.exc_info[0] is not None
        self.lines.append(line)

    def take(self) -> list[dict[str, Any]]:
        """The records seen since the last call, and forget them."""
        taken, self.lines = self.lines, []
        return taken


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def append_line(path: pathlib.Path, line: str) -> None:
    """Append one line atomically (O_APPEND): several processes may write the same file."""
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, (line + '\n').encode())
    finally:
        os.close(descriptor)


def read_lines(path: pathlib.Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def emit(observations: dict[str, Any]) -> None:
    """Print the observations as the last line of standard output."""
    sys.stdout.flush()
    print(json.dumps(observations, sort_keys=True), flush=True)


def summary_view(summary: dict[str, Any]) -> dict[str, Any]:
    """A work_loop summary: every key with its typed value, and whether its times are in order."""
    view = {key: typed(value) for key, value in summary.items()}
    start, end = summary.get('start_time'), summary.get('end_time')
    view['start_time<=end_time'] = typed(start <= end if start is not None and end is not None else None)
    return view


def redis_keys_named_after(name: str) -> int:
    """How many Redis keys have ``name`` in them: what a queue leaves in the server."""
    import redis  # both implementations depend on redis-py

    client = redis.Redis(host=redis_host(), port=redis_port())
    try:
        return sum(1 for _key in client.scan_iter(match=f'*{name}*'))
    finally:
        client.close()


def run_logged(
    command: list[str], timeout: float, log_name: str, while_running: Callable[[int], None] | None = None
) -> tuple[int | None, str]:
    """Run ``command`` with its output in ``<workdir>/<log_name>``: (exit code or None on timeout, output).

    ``while_running(pid)`` is called about every 0.1 s until the command ends.
    """
    import subprocess

    log_path = workdir() / log_name
    deadline = time.monotonic() + timeout
    returncode: int | None = None
    with log_path.open('wb') as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        while time.monotonic() < deadline:
            if while_running is not None:
                while_running(process.pid)
            try:
                returncode = process.wait(0.1)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            process.kill()
            process.wait()
    return returncode, log_path.read_text(errors='replace')


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process ``pid`` listens on (nothing when it is gone)."""
    import psutil  # both implementations depend on psutil

    try:
        process = psutil.Process(pid)
        connections = getattr(process, 'net_connections', None) or process.connections
        return {
            connection.laddr.port
            for connection in connections(kind='tcp')
            if connection.status == psutil.CONN_LISTEN
        }
    except psutil.Error:
        return set()


def log_lines(output: str) -> list[str]:
    """The distinct lines of a log, scrubbed (no pids, times or queue names), sorted."""
    return sorted({scrub(line.strip()) for line in output.splitlines() if line.strip()})


def sleep_in_python(seconds: float) -> None:
    """Sleep in short steps, so that an exception sent to this thread lands quickly."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.02)
