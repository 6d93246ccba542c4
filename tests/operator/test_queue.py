"""Reading queues through Sergeant's connectors: one cached connector per resource and connector spec."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from sergeant_operator.kube import NotFound
from sergeant_operator.policy import Observation
from sergeant_operator.queue import (
    BROKER_UNREACHABLE,
    INVALID_CONNECTOR,
    SECRET_NOT_FOUND,
    BrokerError,
    QueueReader,
)
from sergeant_operator.resource import parse_worker

from sergeant.connector import Connector, create_connector
from sergeant.connector.local import LocalConnector
from tests.operator.test_resource import MINIMAL, with_spec


class Recorder:
    """A connector factory that hands out local connectors and remembers what it built and closed."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.built: list[Mapping[str, Any]] = []
        self.closed = 0

    def __call__(self, kind: str, params: Mapping[str, Any]) -> Connector:
        self.built.append(params)
        recorder = self

        class Recorded(LocalConnector):
            def close(self) -> None:
                recorder.closed += 1
                super().close()

        return Recorded.from_params({'file_path': self.path})


@pytest.fixture
def recorder(tmp_path: Path) -> Recorder:
    return Recorder(tmp_path / 'broker.sqlite3')


def no_secrets(namespace: str, name: str, key: str) -> str:
    raise NotFound(404, 'NotFound', f'secrets {name!r} not found')


def test_ready_and_in_flight_tasks_are_read(recorder: Recorder) -> None:
    broker = create_connector('local', {'file_path': recorder.path})
    broker.push('crawl', [b'task'] * 7)
    broker.pop('crawl', 2, lease_seconds=60)
    broker.push('crawl', [b'later'], consumable_from=2**31)  # delayed: not ready yet

    observation = QueueReader(no_secrets, recorder).read(parse_worker(MINIMAL))

    assert observation == Observation(ready=5, in_flight=2)
    broker.close()


def test_the_connector_is_kept_while_its_spec_holds_and_rebuilt_when_it_changes(recorder: Recorder) -> None:
    reader = QueueReader(no_secrets, recorder)
    reader.read(parse_worker(MINIMAL))
    reader.read(parse_worker(MINIMAL))
    assert recorder.built == [{'url': 'redis://broker:6379/0'}]

    changed = with_spec(connector={'type': 'redis', 'url': 'redis://other:6379/0'})
    reader.read(parse_worker(changed))

    assert recorder.built[-1] == {'url': 'redis://other:6379/0'}
    assert recorder.closed == 1
    reader.forget(('jobs', 'crawler'))
    assert recorder.closed == 2


def test_failures_name_their_reason(recorder: Recorder) -> None:
    secret_worker = parse_worker(with_spec(connector={'type': 'redis', 'secretRef': {'name': 'absent'}}))
    with pytest.raises(BrokerError) as missing:
        QueueReader(no_secrets, recorder).read(secret_worker)
    assert missing.value.reason == SECRET_NOT_FOUND

    bad_params = parse_worker(with_spec(connector={'type': 'redis', 'params': {'nodes': 'many'}}))
    with pytest.raises(BrokerError) as invalid:
        QueueReader(no_secrets).read(bad_params)
    assert invalid.value.reason == INVALID_CONNECTOR
    assert 'connector.params.nodes' in invalid.value.message

    closed_port = copy.deepcopy(MINIMAL)
    closed_port['spec']['connector']['url'] = 'redis://127.0.0.1:1/0'
    with pytest.raises(BrokerError) as unreachable:
        QueueReader(no_secrets).read(parse_worker(closed_port))
    assert unreachable.value.reason == BROKER_UNREACHABLE
