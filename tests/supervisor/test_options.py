"""Supervisor options: flags, SERGEANT_* variables, precedence and errors naming the culprit."""

from __future__ import annotations

import argparse

import pytest

from sergeant.supervisor import OptionError, SupervisorOptions, add_arguments, options_from

REQUIRED = ['--worker-module', 'app.workers', '--worker-class', 'Mailer']


def parse(flags: list[str], environ: dict[str, str] | None = None) -> SupervisorOptions:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return options_from(parser.parse_args(flags), environ or {})


def test_flags_give_every_option() -> None:
    options = parse(
        [
            *REQUIRED,
            '--concurrent-workers',
            '4',
            '--max-worker-memory-usage',
            '536870912',
            '--drain-timeout',
            '12.5',
            '--log-level',
            'debug',
        ]
    )

    assert options == SupervisorOptions('app.workers', 'Mailer', 4, 536870912, 12.5, 'DEBUG')


def test_defaults_fit_kubernetes_grace_period() -> None:
    options = parse(REQUIRED)

    assert options.concurrent_workers == 1
    assert options.max_worker_memory_usage is None
    assert options.drain_timeout == 20.0 < 30
    assert options.log_level == 'INFO'


def test_environment_variables_give_every_option() -> None:
    environ = {
        'SERGEANT_WORKER_MODULE': 'app.workers',
        'SERGEANT_WORKER_CLASS': 'Mailer',
        'SERGEANT_CONCURRENT_WORKERS': '3',
        'SERGEANT_MAX_WORKER_MEMORY_USAGE': '512Mi',
        'SERGEANT_DRAIN_TIMEOUT': '5',
        'SERGEANT_LOG_LEVEL': 'warning',
    }

    options = parse([], environ)

    assert options == SupervisorOptions('app.workers', 'Mailer', 3, 512 * 2**20, 5.0, 'WARNING')


def test_flags_win_over_environment_variables() -> None:
    environ = {'SERGEANT_WORKER_CLASS': 'Other', 'SERGEANT_CONCURRENT_WORKERS': '8'}

    options = parse([*REQUIRED, '--concurrent-workers', '2'], environ)

    assert (options.worker_class, options.concurrent_workers) == ('Mailer', 2)


@pytest.mark.parametrize(
    ('text', 'expected'),
    [('1000', 1000), ('2K', 2000), ('3Mi', 3 * 2**20), ('1G', 10**9), ('1GiB', 2**30)],
)
def test_memory_limit_accepts_kubernetes_quantities(text: str, expected: int) -> None:
    assert parse([*REQUIRED, '--max-worker-memory-usage', text]).max_worker_memory_usage == expected


@pytest.mark.parametrize(
    ('flags', 'culprit'),
    [
        (['--worker-class', 'Mailer'], '--worker-module'),
        (['--worker-module', 'app'], '--worker-class'),
        ([*REQUIRED, '--concurrent-workers', 'two'], '--concurrent-workers'),
        ([*REQUIRED, '--concurrent-workers', '0'], '--concurrent-workers'),
        ([*REQUIRED, '--max-worker-memory-usage', 'lots'], '--max-worker-memory-usage'),
        ([*REQUIRED, '--max-worker-memory-usage', '0'], '--max-worker-memory-usage'),
        ([*REQUIRED, '--drain-timeout', '-1'], '--drain-timeout'),
        ([*REQUIRED, '--drain-timeout', 'nan'], '--drain-timeout'),
        ([*REQUIRED, '--log-level', 'chatty'], '--log-level'),
        ([*REQUIRED, '--log-format', 'xml'], '--log-format'),
        ([*REQUIRED, '--metrics-port', '65536'], '--metrics-port'),
        ([*REQUIRED, '--metrics-port', 'http'], '--metrics-port'),
        ([*REQUIRED, '--metrics-address', ' '], '--metrics-address'),
        (['--worker-module', 'app-workers', '--worker-class', 'Mailer'], '--worker-module'),
        (['--worker-module', 'app', '--worker-class', 'a.B'], '--worker-class'),
    ],
)
def test_bad_flag_is_named(flags: list[str], culprit: str) -> None:
    with pytest.raises(OptionError) as raised:
        parse(flags)

    assert raised.value.field == culprit
    assert str(raised.value).startswith(culprit)


@pytest.mark.parametrize(
    ('variable', 'value'),
    [
        ('SERGEANT_CONCURRENT_WORKERS', 'many'),
        ('SERGEANT_CONCURRENT_WORKERS', '-3'),
        ('SERGEANT_DRAIN_TIMEOUT', 'soon'),
        ('SERGEANT_MAX_WORKER_MEMORY_USAGE', '1Tb'),
        ('SERGEANT_METRICS_PORT', '-1'),
        ('SERGEANT_LOG_FORMAT', 'yaml'),
    ],
)
def test_bad_environment_variable_is_named(variable: str, value: str) -> None:
    with pytest.raises(OptionError) as raised:
        parse(REQUIRED, {variable: value})

    assert raised.value.field == variable


def test_missing_module_mentions_its_variable() -> None:
    with pytest.raises(OptionError, match='SERGEANT_WORKER_MODULE'):
        parse(['--worker-class', 'Mailer'])


def test_metrics_are_served_on_9808_by_default_in_text_logs() -> None:
    options = parse(REQUIRED)

    assert (options.metrics_port, options.metrics_address, options.log_format) == (9808, '0.0.0.0', 'text')


def test_metrics_and_log_format_come_from_flags_or_environment() -> None:
    from_flags = parse(
        [*REQUIRED, '--metrics-port', '9100', '--metrics-address', '127.0.0.1', '--log-format', 'JSON']
    )
    from_environment = parse(
        REQUIRED,
        {'SERGEANT_METRICS_PORT': '0', 'SERGEANT_METRICS_ADDRESS': '::', 'SERGEANT_LOG_FORMAT': 'json'},
    )

    assert (from_flags.metrics_port, from_flags.metrics_address, from_flags.log_format) == (
        9100,
        '127.0.0.1',
        'json',
    )
    assert (from_environment.metrics_port, from_environment.metrics_address) == (0, '::')
    assert from_environment.log_format == 'json'
