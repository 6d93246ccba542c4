"""Every example of examples/ runs: workers under a real supervisor, the example's main() beside them.

Given the supervisor started from inside examples/ with the example's worker, when the
example's own program pushes its tasks and waits, then it reports the outcome the docs
promise (and exits 0), and the broker holds what it should.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Any

from tests.servers.ports import free_port
from tests.supervisor.conftest import Supervise, wait_until

from .conftest import EXAMPLES, example_env, run_example


def start_workers(supervise: Supervise, broker: str, module: str, worker_class: str, *flags: str) -> Any:
    return supervise(
        None,
        None,
        '--worker-module',
        module,
        '--worker-class',
        worker_class,
        *flags,
        env={'SERGEANT_BROKER': broker},
        cwd=EXAMPLES,
    )


def stop(run: Any) -> None:
    """SIGTERM drains the pool: it exits 0."""
    run.send(signal.SIGTERM)
    assert run.wait(30) == 0, run.log()


def test_retries_back_off_then_dead_letter_what_keeps_failing(supervise: Supervise, any_broker: str) -> None:
    workers = start_workers(supervise, any_broker, 'retries', 'Flaky', '--concurrent-workers', '2')
    result = run_example('retries', any_broker)
    assert result.returncode == 0, result.stdout + result.stderr + workers.log()
    assert 'task 6 succeeded after 3 attempt(s)' in result.stdout
    assert 'task 3 succeeded after 2 attempt(s)' in result.stdout
    assert re.search(r'task 9 dead-lettered: max retries \(3\) exhausted', result.stdout), result.stdout
    stop(workers)


def test_delayed_tasks_run_when_due_and_not_before(supervise: Supervise, broker: str) -> None:
    workers = start_workers(supervise, broker, 'delayed', 'Reminder')
    result = run_example('delayed', broker)
    assert result.returncode == 0, result.stdout + result.stderr + workers.log()
    lateness = [float(late) for late in re.findall(r'ran ([+-][\d.]+) s after it was due', result.stdout)]
    assert len(lateness) == 4
    assert all(0 <= late < 5 for late in lateness), lateness
    assert 'ready now: 0, with delayed: 4' in result.stdout
    stop(workers)


def test_a_lock_keeps_concurrent_updates_from_being_lost(supervise: Supervise, broker: str) -> None:
    workers = start_workers(supervise, broker, 'locks', 'ReportUpdater', '--concurrent-workers', '2')
    result = run_example('locks', broker)
    assert result.returncode == 0, result.stdout + result.stderr + workers.log()
    assert 'the counter is at 40: no update was lost' in result.stdout
    assert len({pid for pid in (worker.pid for worker in workers.workers())}) == 2
    stop(workers)


def test_threaded_fetches_time_out_the_slow_page_only(supervise: Supervise, broker: str) -> None:
    workers = start_workers(supervise, broker, 'threaded_io', 'Fetcher')
    started = time.monotonic()
    result = run_example('threaded_io', broker)
    assert result.returncode == 0, result.stdout + result.stderr + workers.log()
    lines = result.stdout.splitlines()
    assert sum(bool(re.search(r'/fast/\d+: 200, \d+ bytes$', line)) for line in lines) == 12, result.stdout
    assert any(line.endswith('/slow: timed out') for line in lines), result.stdout
    assert time.monotonic() - started < 30  # eight threads: the fast pages did not wait for the slow one
    stop(workers)


def test_the_web_app_hands_jobs_to_the_pool_and_answers_their_results(
    supervise: Supervise, broker: str
) -> None:
    workers = start_workers(supervise, broker, 'web_tasks', 'WordCount', '--concurrent-workers', '2')
    port = free_port()
    app = supervise(
        None, None, command=[sys.executable, 'web_app.py', str(port)], cwd=EXAMPLES, env=example_env(broker)
    )
    app.wait_for_log('serving on', timeout=30)
    base = f'http://127.0.0.1:{port}'

    def call(path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode() if body is not None else None
        try:
            with urllib.request.urlopen(base + path, data=data, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    texts = {f'job {n}': ' '.join(['sergeant'] * (n + 1) + ['queue']) for n in range(5)}
    ids = {}
    for name, text in texts.items():
        status, answer = call('/jobs', {'text': text})
        assert status == 202
        ids[name] = answer['id']
    assert call('/jobs', {'no': 'text'})[0] == 400

    def all_done() -> bool:
        return all(call(f'/jobs/{job_id}')[1]['state'] == 'done' for job_id in ids.values())

    wait_until(all_done, 30, 'every job done')
    for n, name in enumerate(texts):
        result = call(f'/jobs/{ids[name]}')[1]['result']
        assert result['words'] == n + 2
        assert result['most_common'][0] == ['sergeant', n + 1]
    assert call('/jobs/unknown')[1] == {'state': 'pending'}
    stop(workers)


def test_the_demo_of_make_run_still_runs() -> None:
    result = subprocess.run(
        [sys.executable, 'demo.py'],
        cwd=EXAMPLES,
        env=example_env(''),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'succeeded 3000' in result.stdout
