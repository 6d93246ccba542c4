"""Configuration is validated when built, with messages naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from sergeant import ConfigError, config
from sergeant.connector import create_connector


@pytest.mark.parametrize(
    ('build', 'field'),
    [
        (lambda: config.WorkerConfig(name=''), 'name'),
        (lambda: config.WorkerConfig(name='w', max_tasks_per_run=-1), 'max_tasks_per_run'),
        (lambda: config.WorkerConfig(name='w', max_retries=-2), 'max_retries'),
        (lambda: config.WorkerConfig(name='w', tasks_per_transaction=0), 'tasks_per_transaction'),
        (lambda: config.WorkerConfig(name='w', number_of_threads=0), 'number_of_threads'),
        (lambda: config.WorkerConfig(name='w', max_retries=1.5), 'max_retries'),
        (lambda: config.Connector(params={}, type='rabbitmq'), 'connector.type'),
        (lambda: config.Encoder(compressor='zip'), 'encoder.compressor'),
        (lambda: config.Encoder(serializer='yaml'), 'encoder.serializer'),
        (lambda: config.Encoder(signing_key='short'), 'encoder.signing_key'),
        (lambda: config.Timeouts(timeout=-1), 'timeouts.timeout'),
        (lambda: config.Timeouts(grace_period=-1), 'timeouts.grace_period'),
        (lambda: config.Starvation(time_with_no_tasks=0), 'starvation.time_with_no_tasks'),
        (lambda: config.Delivery(guarantee='exactly_once'), 'delivery.guarantee'),
        (lambda: config.Delivery(lease_seconds=0), 'delivery.lease_seconds'),
        (lambda: config.Delivery(prefetch=-1), 'delivery.prefetch'),
        (lambda: config.Delivery(prefetch=2.5), 'delivery.prefetch'),
        (lambda: config.Delivery(prefetch=True), 'delivery.prefetch'),
        (lambda: config.WorkerConfig(name='w', timeouts=30), 'timeouts'),
        (lambda: config.Timeouts(timeout=float('inf')), 'timeouts.timeout'),
        (lambda: config.Timeouts(timeout=float('nan')), 'timeouts.timeout'),
        (lambda: config.Timeouts(grace_period=float('inf')), 'timeouts.grace_period'),
        (lambda: config.Starvation(time_with_no_tasks=float('inf')), 'starvation.time_with_no_tasks'),
        (lambda: config.Starvation(time_with_no_tasks=float('nan')), 'starvation.time_with_no_tasks'),
        (lambda: config.Delivery(lease_seconds=float('inf')), 'delivery.lease_seconds'),
        (lambda: config.Delivery(lease_seconds=float('nan')), 'delivery.lease_seconds'),
    ],
)
def test_bad_value_names_the_field(build: Any, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build()

    assert caught.value.field == field
    assert str(caught.value).startswith(f'{field}: ')


def test_replace_returns_a_validated_copy() -> None:
    base = config.WorkerConfig(name='w')

    changed = base.replace(max_retries=3)

    assert (base.max_retries, changed.max_retries, changed.name) == (0, 3, 'w')
    with pytest.raises(ConfigError, match='max_retries'):
        base.replace(max_retries=-1)


def test_defaults_match_sergeant_0_27() -> None:
    worker_config = config.WorkerConfig(name='w')

    assert worker_config.connector.type == 'local'
    assert (worker_config.max_tasks_per_run, worker_config.max_retries) == (0, 0)
    assert (worker_config.tasks_per_transaction, worker_config.number_of_threads) == (1, 1)
    assert (worker_config.timeouts.timeout, worker_config.timeouts.grace_period) == (0.0, 10.0)
    assert worker_config.encoder == config.Encoder(compressor=None, serializer='pickle')
    assert worker_config.starvation is None
    assert worker_config.delivery.guarantee == 'at_least_once'


def test_configs_are_frozen() -> None:
    worker_config = config.WorkerConfig(name='w')

    with pytest.raises(AttributeError):
        worker_config.name = 'other'  # type: ignore[misc]


@pytest.mark.parametrize(
    ('params', 'field'),
    [
        ({}, 'connector.params.file_path'),
        ({'file_path': 3}, 'connector.params.file_path'),
        ({'file_path': '/no/such/directory/db.sqlite3'}, 'connector.params.file_path'),
        ({'file_path': 'x.sqlite3', 'host': 'h'}, 'connector.params'),
    ],
)
def test_bad_local_params_name_the_field(params: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        create_connector('local', params)

    assert caught.value.field == field


def test_unknown_connector_type_is_refused_by_the_registry() -> None:
    with pytest.raises(ConfigError, match=r'connector\.type'):
        create_connector('kafka', {})


def test_prefetch_defaults_to_one_transaction_and_at_least_16_tasks() -> None:
    assert config.Delivery().prefetch_tasks(1) == 16
    assert config.Delivery().prefetch_tasks(1000) == 1000
    assert config.Delivery(prefetch=0).prefetch_tasks(1000) == 0
    assert config.Delivery(prefetch=3).prefetch_tasks(1) == 3


def test_at_most_once_never_prefetches() -> None:
    assert config.Delivery(guarantee='at_most_once', prefetch=50).prefetch_tasks(10) == 0
