"""Fixtures for worker-loop tests: a fresh local broker per test and a worker builder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from sergeant import config
from sergeant.worker import Worker

W = TypeVar('W', bound='ConfiguredWorker')


class ConfiguredWorker(Worker):
    """A worker whose config comes from the test, recording every hook call."""

    settings: config.WorkerConfig

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        super().__init__()

    def generate_config(self) -> config.WorkerConfig:
        return self.settings


@pytest.fixture
def local_connector(tmp_path: Path) -> config.Connector:
    return config.Connector(type='local', params={'file_path': str(tmp_path / 'broker.sqlite3')})


@pytest.fixture
def build_worker(local_connector: config.Connector) -> Callable[..., Any]:
    """build_worker(WorkerClass, **config fields) -> an initialised worker on the test's broker."""

    def build(worker_class: type[W], **fields: Any) -> W:
        fields.setdefault('name', 'tasks')
        fields.setdefault('connector', local_connector)
        fields.setdefault('delivery', config.Delivery(lease_seconds=1.0))
        subclass = type(worker_class.__name__, (worker_class,), {'settings': config.WorkerConfig(**fields)})
        worker = subclass()
        worker.init_worker()
        return worker

    return build
