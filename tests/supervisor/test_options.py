"""Supervisor options: flags, SERGEANT_* variables, precedence, 0.27's spellings, errors naming culprits."""

from __future__ import annotations

import argparse
import logging

import pytest

from sergeant.supervisor import OptionError, Supervisor, SupervisorOptions, add_arguments, options_from
from sergeant.supervisor import options as options_module

REQUIRED = ['--worker-module', 'app.workers', '--worker-class', 'Mailer']


def parse(
    flags: list[str], environ: dict[str, str] | None = None, parser: argparse.ArgumentParser | None = None
) -> SupervisorOptions:
    if parser is None:
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
        (['--worker-module', '', '--worker-class', 'Mailer'], '--worker-module'),
        (['--worker-module', 'app..workers', '--worker-class', 'Mailer'], '--worker-module'),
        (['--worker-module', '.workers', '--worker-class', 'Mailer'], '--worker-module'),
        (['--worker-module', 'app.', '--worker-class', 'Mailer'], '--worker-module'),
        (['--worker-module', 'app workers', '--worker-class', 'Mailer'], '--worker-module'),
        (['--worker-module', 'app/workers.py', '--worker-class', 'Mailer'], '--worker-module'),
        (['--worker-module', 'app', '--worker-class', 'a.B'], '--worker-class'),
        ([*REQUIRED, '--concurrent-worker', 'two'], '--concurrent-worker'),
        ([*REQUIRED, '--concurrent-worker', '2', '--concurrent-workers', '3'], '--concurrent-worker'),
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

    assert (options.serving_port, options.metrics_address, options.log_format) == (9808, '0.0.0.0', 'text')
    assert options.metrics_port is None, 'the default port, not asked for: a taken one is only a warning'


@pytest.mark.parametrize(
    ('flags', 'environ'),
    [
        (['--metrics-port', '9808'], {}),
        (['--metrics-port=9808'], {}),
        ([], {'SERGEANT_METRICS_PORT': '9808'}),
    ],
)
def test_a_metrics_port_given_is_explicit_even_if_it_is_the_default(
    flags: list[str], environ: dict[str, str]
) -> None:
    options = parse([*REQUIRED, *flags], environ)

    assert (options.metrics_port, options.serving_port) == (9808, 9808)


def test_the_default_metrics_port_is_read_when_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    # given options without a metrics port
    options = parse(REQUIRED)

    # when the default changes (as tests do, to stay off 9808)
    monkeypatch.setattr(options_module, 'DEFAULT_METRICS_PORT', 4321)

    # then the new default is the port served
    assert options.serving_port == 4321
    assert parse([*REQUIRED, '--metrics-port', '0']).serving_port == 0


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


@pytest.mark.parametrize(
    'flags',
    [
        [
            '--worker-module=examples.1_single_producer_single_consumer.consumer',
            '--worker-class=Worker',
            '--concurrent-worker=3',
            '--max-worker-memory-usage=1000',
        ],
        [
            '--worker-module',
            'examples.1_single_producer_single_consumer.consumer',
            '--worker-class',
            'Worker',
            '--concurrent-workers',
            '3',
            '--max-worker-memory-usage',
            '1000',
        ],
    ],
    ids=['0.27-docs', 'spaces-and-plural'],
)
def test_sergeant_027_command_lines_are_accepted(flags: list[str]) -> None:
    options = parse(flags)

    assert options == SupervisorOptions(
        'examples.1_single_producer_single_consumer.consumer', 'Worker', 3, max_worker_memory_usage=1000
    )


@pytest.mark.parametrize('name', ['1_examples', 'app-workers', 'app.2nd.consumer', 'Ünïcode.wörker', 'a'])
def test_any_name_importlib_may_import_is_a_module_name(name: str) -> None:
    assert parse(['--worker-module', name, '--worker-class', 'Worker']).worker_module == name


def test_concurrent_worker_is_an_alias_not_an_abbreviation() -> None:
    # given a parser with another flag that --concurrent-worker is a prefix of, besides --concurrent-workers
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    parser.add_argument('--concurrent-worker-limit')

    # when 0.27's singular spelling is given
    options = parse([*REQUIRED, '--concurrent-worker', '4'], parser=parser)

    # then it still means --concurrent-workers, and --help shows only the plural
    assert options.concurrent_workers == 4
    assert '--concurrent-worker ' not in parser.format_help()


def test_programmatic_supervisor_takes_sergeant_027_arguments() -> None:
    custom = logging.getLogger('tests.custom')

    by_position = Supervisor('app.workers', 'Mailer', 2, 512, custom)
    by_keyword = Supervisor(
        worker_module_name='app.workers',
        worker_class_name='Mailer',
        concurrent_workers=2,
        max_worker_memory_usage=512,
        logger=custom,
    )

    expected = SupervisorOptions('app.workers', 'Mailer', 2, 512)
    assert by_position.options == by_keyword.options == expected
    assert by_position.logger is by_keyword.logger is custom
    assert expected.metrics_port is None, 'the default port, tolerated when taken'
    assert Supervisor('app.workers', 'Mailer', 1).options.max_worker_memory_usage is None


def test_the_command_line_builds_the_supervisor_from_every_option() -> None:
    options = parse([*REQUIRED, '--drain-timeout', '3', '--metrics-port', '0', '--log-format', 'json'])

    assert Supervisor.from_options(options).options == options


def test_programmatic_supervisor_checks_its_arguments() -> None:
    with pytest.raises(OptionError, match='concurrent-workers'):
        Supervisor('app.workers', 'Mailer', 0)
