"""Entry point of one worker process: ``python -m sergeant.supervisor.child``.

The supervisor starts this module (never importing the user's code itself). It
loads the worker class, builds and runs the worker, sends the supervisor what
happened over the report pipe (see :mod:`.protocol`) and exits with a
:class:`~.protocol.ChildExit` code that says why it ended.

It also watches a "lifeline" pipe whose write end only the supervisor holds: if
the supervisor dies, the pipe reads EOF and the worker stops as if it had been
sent SIGTERM, so no worker outlives its supervisor for long.

With ``--report-metrics`` (the supervisor serves ``/metrics``) the ready message
names the worker's broker and queue, and the worker's task metrics are sent
every second and at the end (:mod:`sergeant.metrics`).

When threads a task left running would not end (:mod:`sergeant.loop.thread_guard`),
the summary names them in ``unkillable_threads`` and the process exits after
:data:`UNKILLABLE_EXIT_GRACE` rather than :data:`EXIT_GRACE`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
import traceback
import types
from collections.abc import Mapping, Sequence
from typing import Any

from ..loop.journal import StartJournal
from ..loop.predecessor import release_predecessor
from ..loop.summary import LoopEnd
from ..loop.thread_guard import threads_left_running
from ..metrics import MetricsFlusher, TaskSnapshot
from ..observability.pool import BrokerTarget
from ..worker import Worker
from .protocol import CHILD_MODULE, MAX_ERROR_CHARS, ChildExit, Event, encode_message

# seconds a worker may take to exit after its summary: a non-daemon thread left behind by a
# task would otherwise keep the process, and so its pool slot, alive for ever
EXIT_GRACE = 10.0
# the same once threads were found that ignore SystemExit: they already had their chance to end
UNKILLABLE_EXIT_GRACE = 1.0


class WorkerLoadError(Exception):
    """The worker module or class cannot be loaded; the message names both."""


def load_worker_class(module_name: str, class_name: str) -> type[Worker]:
    try:
        module = importlib.import_module(module_name)
    except BaseException as error:  # a module may even call sys.exit at import time
        raise WorkerLoadError(
            f'cannot import worker module {module_name!r} (class {class_name!r}): '
            f'{type(error).__name__}: {error}{_where_to_look(module_name, error)}'
        ) from error
    found = getattr(module, class_name, None)
    if found is None:
        raise WorkerLoadError(f'worker module {module_name!r} has no class {class_name!r}')
    if not isinstance(found, type) or not issubclass(found, Worker):
        raise WorkerLoadError(
            f'{module_name}.{class_name} is not a subclass of sergeant.worker.Worker (got {found!r})'
        )
    return found


def _where_to_look(module_name: str, error: BaseException) -> str:
    """A hint when the module's top-level package is not found, rather than a module it imports."""
    missing = error.name if isinstance(error, ModuleNotFoundError) else None
    if missing != module_name.split('.')[0]:
        return ''
    return (
        f'; start the supervisor in the folder holding {missing!r} (not {os.getcwd()}) '
        'or put that folder on PYTHONPATH'
    )


class Reporter:
    """Writes messages to the supervisor; a vanished supervisor is not an error."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()  # the metrics thread writes too; a long message takes several writes
        # exec'd grandchildren must not inherit the pipe, or it would outlive this worker
        os.set_inheritable(fd, False)

    def send(self, event: Event, **fields: Any) -> None:
        data = encode_message(event, **fields)
        try:
            with self._lock:
                while data:
                    data = data[os.write(self._fd, data) :]
        except OSError:
            pass  # the supervisor is gone; the lifeline watcher stops this worker

    def send_metrics(self, snapshot: TaskSnapshot) -> None:
        self.send(Event.METRICS, **snapshot.to_fields())


def watch_lifeline(fd: int) -> None:
    """Stop this worker gracefully once the supervisor's end of the lifeline closes."""
    os.set_inheritable(fd, False)

    def wait_for_eof() -> None:
        try:
            while os.read(fd, 1):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=wait_for_eof, name='sergeant-lifeline', daemon=True).start()


_EXIT_CODES = {
    LoopEnd.STOP: ChildExit.STOP,
    LoopEnd.RESPAWN: ChildExit.RESPAWN,
    LoopEnd.INITIALIZE_EXCEPTION: ChildExit.START_FAILED,
    LoopEnd.EXECUTOR_EXCEPTION: ChildExit.LOOP_FAILED,
}


def exit_code_of(summary: Mapping[str, Any]) -> ChildExit:
    """The exit code for why the loop ended; a signal and max_tasks_per_run both finish normally.

    The summary's ``reason`` decides: ``stop`` is also true after a SIGTERM (as in 0.27),
    which must not stop the whole pool.
    """
    return _EXIT_CODES.get(LoopEnd(summary['reason']), ChildExit.FINISHED)


def _is_machinery(filename: str) -> bool:
    importlib_dir = f'{os.sep}importlib{os.sep}'
    return filename == __file__ or filename.startswith('<frozen importlib') or importlib_dir in filename


def _error_text(error: BaseException) -> str:
    """The traceback of ``error`` without the frames of this module and of importlib."""
    described = traceback.TracebackException.from_exception(error)
    frames = [frame for frame in described.stack if not _is_machinery(frame.filename)]
    described.stack = traceback.StackSummary.from_list(frames)
    return ''.join(described.format())[-MAX_ERROR_CHARS:]


def _load_error_details(cause: BaseException | None) -> str:
    """The traceback of a load failure, or '' when it would only repeat the error's one line."""
    if cause is None:
        return ''
    frames = traceback.extract_tb(cause.__traceback__)
    in_user_code = any(not _is_machinery(frame.filename) for frame in frames)
    if not in_user_code and cause.__cause__ is None and cause.__context__ is None:
        return ''  # nothing ran but the import machinery: the module is simply not there
    return _error_text(cause)


def broker_of(worker: Worker) -> BrokerTarget:
    """The broker and queue the worker consumes, for the supervisor's probe."""
    connector = worker.config.connector
    return BrokerTarget(connector.type, connector.params, worker.config.name)


def run_loop(worker: Worker, reporter: Reporter, report_metrics: bool) -> dict[str, Any]:
    """The worker's work loop, its task metrics sent to the supervisor while it runs if asked."""
    if not report_metrics:
        return worker.work_loop()
    with MetricsFlusher(worker.enable_task_metrics(), reporter.send_metrics):
        return worker.work_loop()


def take_over_journal(worker: Worker, path: str) -> None:
    """Hand back what the slot's previous worker held if it died, then note this worker's tasks there."""
    journal = StartJournal(path)
    record = journal.predecessor()
    if record is not None:
        try:
            release_predecessor(
                worker.broker.connector, record, bool(worker.config.max_retries), worker.logger
            )
        except Exception as error:  # the leases still run out: late, never lost
            worker.logger.warning('could not hand back what worker %s held: %s', record.owner, error)
    worker.start_journal = journal


def run(
    module_name: str,
    class_name: str,
    reporter: Reporter,
    report_metrics: bool = False,
    start_journal: str | None = None,
) -> ChildExit:
    try:
        worker_class = load_worker_class(module_name, class_name)
    except WorkerLoadError as error:
        reporter.send(Event.LOAD_FAILED, error=str(error), details=_load_error_details(error.__cause__))
        return ChildExit.LOAD_FAILED
    try:
        worker = worker_class()
        worker.init_worker()
        if start_journal is not None:
            take_over_journal(worker, start_journal)
    except Exception as error:
        reporter.send(
            Event.START_FAILED,
            error=f'{module_name}.{class_name} failed to start: {type(error).__name__}: {error}',
            details=_error_text(error),
        )
        return ChildExit.START_FAILED
    reporter.send(Event.READY, **(broker_of(worker).to_fields() if report_metrics else {}))
    summary = run_loop(worker, reporter, report_metrics)
    reporter.send(Event.SUMMARY, summary=summary)
    return exit_code_of(summary)


def exit_despite_lingering_threads(code: int, grace: float = EXIT_GRACE) -> None:
    """Make sure the process exits with ``code`` within ``grace`` seconds."""

    def force_exit() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    timer = threading.Timer(grace, force_exit)
    timer.daemon = True  # interpreter shutdown waits for non-daemon threads only
    timer.start()


def _stop_on_sigint(signal_number: int, frame: types.FrameType | None) -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f'python -m {CHILD_MODULE}', description='one supervised worker')
    parser.add_argument('--worker-module', required=True)
    parser.add_argument('--worker-class', required=True)
    parser.add_argument('--report-fd', type=int, required=True, help='pipe to send messages to')
    parser.add_argument('--lifeline-fd', type=int, help='pipe that reads EOF once the supervisor is gone')
    parser.add_argument('--report-metrics', action='store_true', help='send task metrics every second')
    parser.add_argument('--start-journal', help="the slot's journal file (sergeant.loop.journal)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    # SIGINT means the same as SIGTERM here: a KeyboardInterrupt in the middle of a task would
    # skip the graceful hand-back of prefetched tasks. (Not SIG_IGN: subprocesses of tasks would
    # inherit it through exec.)
    signal.signal(signal.SIGINT, _stop_on_sigint)
    if arguments.lifeline_fd is not None:
        watch_lifeline(arguments.lifeline_fd)
    reporter = Reporter(arguments.report_fd)
    code = int(
        run(
            arguments.worker_module,
            arguments.worker_class,
            reporter,
            arguments.report_metrics,
            arguments.start_journal,
        )
    )
    exit_despite_lingering_threads(code, UNKILLABLE_EXIT_GRACE if threads_left_running() else EXIT_GRACE)
    return code


if __name__ == '__main__':
    raise SystemExit(main())
