"""Runs a compat program under Sergeant 0.27's interpreter and ours, and reads what each observed.

A program is a Python file in ``programs/`` (helpers start with ``_``). It runs as
``<python> programs/<name>.py`` in an empty working directory of its own, with
``programs/`` on ``PYTHONPATH`` (for ``_observe`` and the worker modules the supervisor
programs name) and, in the environment, the Redis address, a queue name no other run
uses and that directory (see ``programs/_observe.py``). No ``SERGEANT_*`` variable of
the caller reaches it. Each run is a process group of its own, killed as a whole when
the run ends or times out, so no supervisor or worker outlives it.

:func:`run_both` runs the two interpreters at the same time; :class:`Scheduler` runs
many programs at once: supervisor programs (``supervisor_*``) one at a time, since our
supervisor serves metrics on a fixed default port, the others a few at a time.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

PROGRAMS_DIR = Path(__file__).resolve().parent / 'programs'
THEIRS = '0.27'
OURS = 'ours'
IMPLEMENTATIONS = (THEIRS, OURS)
PROGRAM_TIMEOUT = 90.0  # seconds; the slowest program takes about 10
# Programs run without coverage's tracer even when the suite measures coverage: on Python <= 3.12 a
# SystemExit raised in a thread blocked in a C call (the thread guard's work here) stalls every other
# thread under a tracer until that call returns, so the program cannot observe what it would untraced.
UNTRACED_PROGRAMS = frozenset({'supervisor_threads'})
_COVERAGE_VARIABLES = ('COVERAGE_PROCESS_CONFIG', 'COVERAGE_PROCESS_START')
OUTPUT_TAIL = 3000  # characters of a failed run's output shown in a failure


def program_names() -> list[str]:
    return sorted(path.stem for path in PROGRAMS_DIR.glob('*.py') if not path.name.startswith('_'))


def is_supervisor_program(name: str) -> bool:
    return name.startswith('supervisor')


@dataclasses.dataclass(frozen=True)
class Redis:
    host: str
    port: int


@dataclasses.dataclass(frozen=True)
class Run:
    """One program run under one interpreter."""

    program: str
    implementation: str
    returncode: int | None  # None: killed after PROGRAM_TIMEOUT
    stdout: str
    stderr: str
    seconds: float

    @property
    def observations(self) -> dict[str, Any] | None:
        """The JSON document on the last line of stdout, None when there is none."""
        lines = self.stdout.strip().splitlines()
        if not lines:
            return None
        try:
            document = json.loads(lines[-1])
        except ValueError:
            return None
        return document if isinstance(document, dict) else None

    def describe(self) -> str:
        state = 'timed out' if self.returncode is None else f'exit code {self.returncode}'
        return (
            f'{self.program} under {self.implementation}: {state} after {self.seconds:.1f} s\n'
            f'--- stdout (end) ---\n{self.stdout[-OUTPUT_TAIL:]}\n'
            f'--- stderr (end) ---\n{self.stderr[-OUTPUT_TAIL:]}'
        )


def program_environment(redis: Redis, queue: str, workdir: Path, traced: bool = True) -> dict[str, str]:
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(('SERGEANT_', 'COMPAT_', 'PYTHON'))
        and (traced or key not in _COVERAGE_VARIABLES)
    }
    return inherited | {
        'COMPAT_REDIS_HOST': redis.host,
        'COMPAT_REDIS_PORT': str(redis.port),
        'COMPAT_QUEUE': queue,
        'COMPAT_WORKDIR': str(workdir),
        'PYTHONPATH': str(PROGRAMS_DIR),
        'PYTHONUNBUFFERED': '1',
        'PYTHONDONTWRITEBYTECODE': '1',
    }


def run_program(
    program: str,
    implementation: str,
    python: Path,
    redis: Redis,
    workdir: Path,
    timeout: float = PROGRAM_TIMEOUT,
) -> Run:
    """Run ``program`` once under ``python`` with a fresh queue, in ``workdir`` (created empty)."""
    workdir.mkdir(parents=True)
    queue = f'compat.{program}.{implementation}.{uuid.uuid4().hex[:10]}'
    stdout_path, stderr_path = workdir.parent / f'{workdir.name}.out', workdir.parent / f'{workdir.name}.err'
    started = time.monotonic()
    with stdout_path.open('wb') as stdout, stderr_path.open('wb') as stderr:
        process = subprocess.Popen(
            [str(python), str(PROGRAMS_DIR / f'{program}.py')],
            cwd=workdir,
            env=program_environment(redis, queue, workdir, traced=program not in UNTRACED_PROGRAMS),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # its own process group: supervisors, workers and killers included
        )
        try:
            returncode: int | None = process.wait(timeout)
        except subprocess.TimeoutExpired:
            returncode = None
        finally:
            _kill_group(process)
    return Run(
        program=program,
        implementation=implementation,
        returncode=returncode,
        stdout=stdout_path.read_text(errors='replace'),
        stderr=stderr_path.read_text(errors='replace'),
        seconds=time.monotonic() - started,
    )


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL what is left of the run's process group (the program's pid is the group's id)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def run_both(program: str, pythons: Mapping[str, Path], redis: Redis, workdir: Path) -> dict[str, Run]:
    """The program under each interpreter, both at the same time."""
    with concurrent.futures.ThreadPoolExecutor(len(pythons), thread_name_prefix=f'compat-{program}') as pool:
        futures = {
            implementation: pool.submit(
                run_program, program, implementation, python, redis, workdir / f'{program}-{implementation}'
            )
            for implementation, python in pythons.items()
        }
        return {implementation: future.result() for implementation, future in futures.items()}


class Scheduler:
    """Starts the given programs at once (each under both interpreters) and hands out their runs."""

    def __init__(
        self,
        programs: Iterable[str],
        pythons: Mapping[str, Path],
        redis: Redis,
        workdir: Path,
        parallel_programs: int = 3,
    ) -> None:
        self._pythons = dict(pythons)
        self._redis = redis
        self._workdir = workdir
        self._free = concurrent.futures.ThreadPoolExecutor(
            parallel_programs, thread_name_prefix='compat-free'
        )
        self._serial = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='compat-supervisor')
        self._futures: dict[str, concurrent.futures.Future[dict[str, Run]]] = {}
        self._lock = threading.Lock()
        # supervisor programs first: one at a time, they are the longest chain
        for program in sorted(programs, key=lambda name: not is_supervisor_program(name)):
            self._submit(program)

    def _submit(self, program: str) -> concurrent.futures.Future[dict[str, Run]]:
        with self._lock:
            if program not in self._futures:
                pool = self._serial if is_supervisor_program(program) else self._free
                self._futures[program] = pool.submit(
                    run_both, program, self._pythons, self._redis, self._workdir
                )
            return self._futures[program]

    def runs(self, program: str) -> dict[str, Run]:
        """The program's runs, waiting for them (and starting them, if not yet submitted)."""
        return self._submit(program).result()

    def close(self) -> None:
        for pool in (self._free, self._serial):
            pool.shutdown(wait=True, cancel_futures=True)
