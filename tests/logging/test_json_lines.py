"""JSON-lines logs of a worker: one object per line with fixed keys (the supervisor's: tests/supervisor)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sergeant import ConfigError, Task, config
from sergeant.worker import Worker

KEYS = {'timestamp', 'level', 'logger', 'worker', 'pid', 'event', 'trace_id', 'exception'}


class ChattyWorker(Worker):
    def __init__(self, broker_file: Path, log_format: Any) -> None:
        self.broker_file = broker_file
        self.log_format = log_format
        super().__init__()

    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(
            name='chatty',
            connector=config.Connector(type='local', params={'file_path': str(self.broker_file)}),
            max_tasks_per_run=2,
            logging=config.Logging(level=10, log_to_stdout=True, format=self.log_format),
        )

    def work(self, task: Task) -> None:
        self.logger.info('working on %s', task.kwargs['n'])
        if task.kwargs['n'] == 1:
            raise KeyError('missing')


def run_chatty(tmp_path: Path, log_format: Any) -> None:
    worker = ChattyWorker(tmp_path / 'broker.sqlite3', log_format)
    worker.init_worker()
    worker.push_tasks([{'n': 0}, {'n': 1}], trace_id='trace-7')
    worker.work_loop()


def test_worker_logs_one_json_object_per_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # given a worker logging to stdout as JSON, whose second task fails
    run_chatty(tmp_path, 'json')

    # then every line is a JSON object with the same keys
    lines = capsys.readouterr().out.splitlines()
    entries = [json.loads(line) for line in lines]
    assert entries and all(set(entry) == KEYS for entry in entries)
    working = [entry for entry in entries if entry['event'].startswith('working on')]
    # a message logged from inside work() carries the running task's trace id
    assert [entry['trace_id'] for entry in working] == ['trace-7', 'trace-7']
    assert all(entry['worker'] == 'chatty' and entry['level'] == 'INFO' for entry in working)
    [failed] = [entry for entry in entries if entry['event'] == 'task failed']
    assert failed['level'] == 'ERROR'
    assert failed['trace_id'] == 'trace-7'
    assert "KeyError: 'missing'" in failed['exception']
    assert failed['timestamp'].endswith('Z')
    assert isinstance(failed['pid'], int)


def test_the_environment_chooses_the_format_unless_the_config_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv('SERGEANT_LOG_FORMAT', 'json')

    run_chatty(tmp_path, None)
    assert all(json.loads(line)['worker'] == 'chatty' for line in capsys.readouterr().out.splitlines())

    run_chatty(tmp_path, 'text')
    assert not capsys.readouterr().out.splitlines()[0].startswith('{')


def test_a_bad_format_is_refused() -> None:
    with pytest.raises(ConfigError, match=r'logging\.format'):
        config.Logging(format='xml')  # type: ignore[arg-type]
