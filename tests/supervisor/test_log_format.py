"""``--log-format json``: the supervisor writes one JSON object per line."""

from __future__ import annotations

import json
import signal

from tests.logging.test_json_lines import KEYS
from tests.supervisor.conftest import Supervise


def test_supervisor_logs_json_lines(supervise: Supervise) -> None:
    # given a supervisor started with --log-format json
    run = supervise('supervised_observed', 'ObservedWorker', '--log-format', 'json')
    run.wait_for_log('started in slot')
    run.send(signal.SIGTERM)
    assert run.wait() == 0

    # then each line of its output is a JSON object with the same keys
    entries = [json.loads(line) for line in run.log().splitlines() if line.strip()]
    assert entries and all(set(entry) == KEYS for entry in entries)
    assert {entry['logger'] for entry in entries} == {'sergeant.supervisor'}
    assert any('supervisor exiting: OK' in entry['event'] for entry in entries)
