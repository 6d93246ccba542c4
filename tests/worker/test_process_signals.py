"""SIGTERM belongs to a running work loop, not to a built Worker (given / when / then).

A web app or script that only builds a Worker to push tasks keeps the process's own
SIGTERM behaviour; a work loop stops gracefully on SIGTERM and puts the previous
handler back when it ends. Each case runs in its own Python process, since signal
handlers are process-wide.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

_WORKER = """
import json, os, signal, sys, threading, time
from sergeant import config
from sergeant.worker import Worker

class Tasks(Worker):
    def generate_config(self):
        return config.WorkerConfig(
            name='tasks',
            connector=config.Connector(type='local', params={'file_path': sys.argv[1]}),
            logging=config.Logging(log_to_stdout=False),
            starvation=None,
        )

    def work(self, task):
        print('working', flush=True)
        time.sleep(0.5)
        return task.kwargs
"""


def _start(tmp_path: Path, body: str) -> subprocess.Popen[str]:
    script = tmp_path / 'program.py'
    script.write_text(_WORKER + textwrap.dedent(body))
    return subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / 'broker.sqlite3')],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_line(process: subprocess.Popen[str], expected: str) -> None:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.strip() == expected, process.stderr.read() if process.stderr else ''


def test_a_producer_that_built_a_worker_still_ends_on_sigterm(tmp_path: Path) -> None:
    process = _start(
        tmp_path,
        """
        worker = Tasks()
        worker.init_worker()
        worker.push_task({'n': 1})
        print('pushed', flush=True)
        time.sleep(60)
        """,
    )
    _wait_for_line(process, 'pushed')

    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=10) == -signal.SIGTERM


def test_a_work_loop_stopped_by_sigterm_says_so_and_gives_the_handler_back(tmp_path: Path) -> None:
    process = _start(
        tmp_path,
        """
        def own_handler(number, frame):
            print('own handler', flush=True)

        signal.signal(signal.SIGTERM, own_handler)
        worker = Tasks()
        worker.init_worker()
        worker.push_tasks([{'n': n} for n in range(20)])
        summary = worker.work_loop()
        back = signal.getsignal(signal.SIGTERM) is own_handler
        print(json.dumps({'stop': summary['stop'], 'reason': summary['reason'],
                          'success': summary['tasks']['success'], 'handler_restored': back}), flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)
        """,
    )
    _wait_for_line(process, 'working')

    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)

    assert process.returncode == 0, err
    result_line, own_handler_line = out.strip().splitlines()[-2:]
    result = json.loads(result_line)
    assert result == {'stop': True, 'reason': 'signal', 'success': 1, 'handler_restored': True}
    assert own_handler_line == 'own handler'


def test_a_loop_that_ran_its_tasks_was_not_stopped(tmp_path: Path) -> None:
    process = _start(
        tmp_path,
        """
        import dataclasses
        worker = Tasks()
        worker.config = dataclasses.replace(worker.config, max_tasks_per_run=1)
        worker.init_worker()
        worker.push_task({'n': 1})
        summary = worker.work_loop()
        print(json.dumps({'stop': summary['stop'], 'reason': summary['reason'],
                          'default_back': signal.getsignal(signal.SIGTERM) is signal.SIG_DFL}), flush=True)
        """,
    )
    out, err = process.communicate(timeout=30)

    assert process.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1]) == {
        'stop': False,
        'reason': 'max_tasks_per_run',
        'default_back': True,
    }
