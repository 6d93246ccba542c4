"""What the operating commands share on the terminal side.

Exit codes (:class:`CommandExit`), the one-line error (:class:`CommandError`),
plain-text tables that read the same with or without a terminal, the confirmation
question, and :class:`Batches`: a long operation done batch by batch, with a
progress bar on a terminal (rich), during which SIGINT and SIGTERM only ask it to
stop after the batch in flight, so an interruption never leaves a batch half done.
"""

from __future__ import annotations

import argparse
import enum
import signal
import sys
import time
import types
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from ..errors import SergeantError

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class CommandExit(enum.IntEnum):
    """Exit codes of the operating commands (``sergeant supervise`` has its own)."""

    OK = 0
    ERROR = 1  # the broker failed, or could not be reached
    USAGE = 2  # bad flags or environment variables (argparse's code)
    WORKER_NOT_LOADABLE = 3  # --worker-module/--worker-class cannot be loaded (as the supervisor's)
    NOT_FOUND = 4  # a dead letter named by id is not there
    DECLINED = 5  # the confirmation was declined, or cannot be asked without a terminal
    INTERRUPTED = 130  # stopped by SIGINT/SIGTERM between two batches: what is done stays done


class CommandError(Exception):
    """Ends a command with one line on stderr and a non-zero exit code."""

    def __init__(self, message: str, code: CommandExit = CommandExit.ERROR) -> None:
        super().__init__(message)
        self.code = code


Run = Callable[[argparse.Namespace], int]
Handler = Callable[[argparse.Namespace, argparse.ArgumentParser], int]


def command(run: Run) -> Handler:
    """The ``handler`` of a subcommand: ``run``, with errors as one line on stderr and an exit code."""

    def handler(arguments: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
        try:
            return int(run(arguments))
        except CommandError as error:
            code, message = error.code, str(error)
        except SergeantError as error:  # the connectors' errors name the broker and the operation
            code, message = CommandExit.ERROR, str(error)
        except KeyboardInterrupt:
            code, message = CommandExit.INTERRUPTED, 'interrupted'
        print(f'{parser.prog}: error: {message}', file=sys.stderr)
        return int(code)

    return handler


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]], out: TextIO | None = None) -> None:
    """Columns padded to their widest cell; numbers right-aligned, the last column left as is."""
    out = out or sys.stdout
    cells = [[str(value) for value in row] for row in rows]
    widths = [max([len(header), *(len(row[i]) for row in cells)]) for i, header in enumerate(headers)]
    numeric = [all(_is_number(row[i]) for row in rows) and bool(rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = []
        for i, value in enumerate(values):
            if i == len(values) - 1:
                parts.append(value)
            elif numeric[i]:
                parts.append(value.rjust(widths[i]))
            else:
                parts.append(value.ljust(widths[i]))
        return '  '.join(parts).rstrip()

    print(line(headers), file=out)
    for row in cells:
        print(line(row), file=out)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def age(seconds: float | None) -> str:
    """A duration as an operator reads it: 45s, 12m05s, 3h20m, 2d04h; '-' for none."""
    if seconds is None:
        return '-'
    whole = max(0, int(seconds))
    if whole < 60:
        return f'{whole}s'
    if whole < 3600:
        return f'{whole // 60}m{whole % 60:02d}s'
    if whole < 86400:
        return f'{whole // 3600}h{whole % 3600 // 60:02d}m'
    return f'{whole // 86400}d{whole % 86400 // 3600:02d}h'


def timestamp(seconds: float | None) -> str:
    """A UNIX time in UTC, to the second (ISO 8601); '-' for none."""
    if seconds is None:
        return '-'
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(seconds))


def confirm(question: str, assume_yes: bool) -> None:
    """Ask on a terminal; without one, ``--yes`` must have been given."""
    if assume_yes:
        return
    if not sys.stdin.isatty():
        raise CommandError(f'{question} Not asked without a terminal: pass --yes', CommandExit.DECLINED)
    try:
        answer = input(f'{question} [y/N] ')
    except EOFError:
        answer = ''
    if answer.strip().lower() not in ('y', 'yes'):
        raise CommandError('declined: nothing was changed', CommandExit.DECLINED)


class Batches:
    """Runs ``step`` until it reports nothing more to do, or a stop signal arrived.

    ``step(size)`` does one batch of at most ``size`` items atomically and returns
    how many it did; fewer than ``size`` means it is done. The first SIGINT or
    SIGTERM is noted and honoured once the batch in flight returns; a second one
    interrupts at once (KeyboardInterrupt). A progress bar is drawn on stderr when it
    is a terminal.
    """

    def __init__(self, description: str, total: int | None, size: int) -> None:
        self.description = description
        self.total = total
        self.size = size
        self.done = 0
        self.stopped_by: int | None = None

    def run(self, step: Callable[[int], int]) -> int:
        previous = {number: signal.signal(number, self._note_stop) for number in _STOP_SIGNALS}
        try:
            with _progress(self.description, self.total) as advance:
                while self.stopped_by is None:
                    count = step(self.size)
                    self.done += count
                    advance(count)
                    if count < self.size:
                        break
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
        return self.done

    def _note_stop(self, number: int, frame: types.FrameType | None) -> None:
        if self.stopped_by is not None:
            raise KeyboardInterrupt
        self.stopped_by = number


class _NoProgress:
    def __enter__(self) -> Callable[[int], None]:
        return lambda count: None

    def __exit__(self, *exc_info: object) -> None:
        return None


class _RichProgress:
    def __init__(self, description: str, total: int | None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn('{task.description}'),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr),
            transient=True,
        )
        self._task = self._progress.add_task(description, total=total)

    def __enter__(self) -> Callable[[int], None]:
        self._progress.start()
        return self._advance

    def _advance(self, count: int) -> None:
        self._progress.advance(self._task, count)

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()


def _progress(description: str, total: int | None) -> Any:
    """A context giving ``advance(count)``: a rich bar on a terminal's stderr, else nothing."""
    if sys.stderr.isatty():
        return _RichProgress(description, total)
    return _NoProgress()
