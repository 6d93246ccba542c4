"""The supervisor's options: command-line flags, ``SERGEANT_*`` environment variables, validation.

Every flag has an environment variable (a flag wins over its variable), so a
container image can be configured without a shell wrapper. The flags are added
to a parser by :func:`add_arguments`, shared by ``sergeant supervise`` and
``python -m sergeant.supervisor``; :func:`options_from` merges and validates
them into a frozen :class:`SupervisorOptions`, raising :class:`OptionError`
that names the flag or the variable at fault.

Sergeant 0.27's spellings keep working: ``--concurrent-worker`` is an alias of
``--concurrent-workers``, and ``--worker-module`` takes any module importlib can
import, e.g. ``examples.1_single_producer_single_consumer.consumer`` (whether it
imports is found out by the worker process, not here).

A metrics port nobody asked for (no ``--metrics-port``, no
``SERGEANT_METRICS_PORT``) is ``None``: the supervisor then serves on
:data:`DEFAULT_METRICS_PORT` if it is free, and runs on without the endpoints if
it is not, so that two supervisors can share a host.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import TypeVar

from ..errors import ConfigError

T = TypeVar('T')

DEFAULT_DRAIN_TIMEOUT = 20.0  # fits Kubernetes' default 30 s grace period with room to spare
DEFAULT_METRICS_PORT = 9808
DEFAULT_METRICS_ADDRESS = '0.0.0.0'  # every interface: Prometheus and the kubelet probe from outside the pod
LOG_LEVELS = ('DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL')
LOG_FORMATS = ('text', 'json')

# Kubernetes-style quantities are accepted for the memory limit: 512Mi, 1Gi, 500M, 1G
_UNITS = {'': 1, 'K': 10**3, 'M': 10**6, 'G': 10**9, 'Ki': 2**10, 'Mi': 2**20, 'Gi': 2**30}
_QUANTITY = re.compile(r'(\d+)(Ki|Mi|Gi|K|M|G)?B?')
_PATH_SEPARATORS = ('/', '\\')


class OptionError(ConfigError):
    """A supervisor option is missing or invalid; ``field`` is the flag or variable."""


@dataclasses.dataclass(frozen=True)
class SupervisorOptions:
    """What the supervisor runs and how; validated at construction."""

    worker_module: str
    worker_class: str
    concurrent_workers: int = 1
    max_worker_memory_usage: int | None = None  # bytes of RSS of a worker and its children
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT
    log_level: str = 'INFO'
    # None: DEFAULT_METRICS_PORT if free, else none; 0: no /metrics, /healthz, /readyz nor metrics work
    metrics_port: int | None = None
    metrics_address: str = DEFAULT_METRICS_ADDRESS
    log_format: str = 'text'  # 'json': one JSON object per line, for the supervisor and its workers

    def __post_init__(self) -> None:
        problem = _module_name_problem(self.worker_module)
        if problem:
            raise OptionError('--worker-module', f'{self.worker_module!r} is not a module name: {problem}')
        if not self.worker_class.isidentifier():
            raise OptionError('--worker-class', f'{self.worker_class!r} is not a class name')
        if self.concurrent_workers < 1:
            raise OptionError('--concurrent-workers', f'must be >= 1, got {self.concurrent_workers}')
        if self.max_worker_memory_usage is not None and self.max_worker_memory_usage <= 0:
            raise OptionError('--max-worker-memory-usage', 'must be a number of bytes > 0')
        if self.drain_timeout < 0:
            raise OptionError('--drain-timeout', f'must be >= 0 seconds, got {self.drain_timeout}')
        if self.log_level not in LOG_LEVELS:
            raise OptionError('--log-level', f'must be one of {", ".join(LOG_LEVELS)}')
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise OptionError('--metrics-port', f'must be a port number 0-65535, got {self.metrics_port}')
        if not self.metrics_address:
            raise OptionError('--metrics-address', 'must be an address to listen on, e.g. 0.0.0.0')
        if self.log_format not in LOG_FORMATS:
            raise OptionError('--log-format', f'must be one of {", ".join(LOG_FORMATS)}')

    @property
    def logging_level(self) -> int:
        level: int = getattr(logging, self.log_level)
        return level

    @property
    def serving_port(self) -> int:
        """The port to serve ``/metrics`` on: the one asked for, else :data:`DEFAULT_METRICS_PORT`."""
        return DEFAULT_METRICS_PORT if self.metrics_port is None else self.metrics_port


def _module_name_problem(name: str) -> str:
    """Why ``name`` cannot be a module name at all, or ''; anything else is left to the import."""
    if not name:
        return 'it is empty'
    if not name.isprintable() or any(character.isspace() for character in name):
        return 'it holds whitespace or control characters'
    if any(separator in name for separator in _PATH_SEPARATORS):
        return 'it is a file path; give the dotted module name, e.g. app.workers for app/workers.py'
    if '' in name.split('.'):
        return 'a part between dots is empty'
    return ''


def _dest(flag: str) -> str:
    return flag.removeprefix('--').replace('-', '_')


@dataclasses.dataclass(frozen=True)
class _Option:
    flag: str
    metavar: str
    help: str
    aliases: tuple[str, ...] = ()  # other spellings, hidden from --help

    @property
    def dest(self) -> str:
        return _dest(self.flag)

    @property
    def variable(self) -> str:
        return 'SERGEANT_' + self.dest.upper()


_OPTIONS = (
    _Option('--worker-module', 'MODULE', 'module holding the Worker subclass, e.g. "app.workers"'),
    _Option('--worker-class', 'CLASS', 'name of the Worker subclass in that module'),
    # Sergeant 0.27's documentation spells it in the singular; argparse's prefix matching alone would
    # stop accepting that as soon as another flag starting with it was added
    _Option(
        '--concurrent-workers',
        'N',
        'number of worker processes (default 1)',
        aliases=('--concurrent-worker',),
    ),
    _Option(
        '--max-worker-memory-usage',
        'BYTES',
        'replace a worker whose RSS, with its children, exceeds this (536870912, 512Mi, 1G...)',
    ),
    _Option(
        '--drain-timeout',
        'SECONDS',
        f'time workers get to finish running tasks after SIGTERM (default {DEFAULT_DRAIN_TIMEOUT:g})',
    ),
    _Option('--log-level', 'LEVEL', f'supervisor log level: {", ".join(LOG_LEVELS)} (default INFO)'),
    _Option(
        '--log-format',
        'FORMAT',
        'text, or json for one JSON object per line; workers that log to stdout follow it (default text)',
    ),
    _Option(
        '--metrics-port',
        'PORT',
        f'port of /metrics, /healthz and /readyz; 0 turns them off (default {DEFAULT_METRICS_PORT}, '
        'skipped with a warning when another process has it)',
    ),
    _Option('--metrics-address', 'ADDRESS', f'address to serve them on (default {DEFAULT_METRICS_ADDRESS})'),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the supervisor's flags; values stay strings until :func:`options_from` checks them."""
    for option in _OPTIONS:
        parser.add_argument(
            option.flag, metavar=option.metavar, help=f'{option.help} [env: {option.variable}]'
        )
        for alias in option.aliases:
            # a dest of its own, so that an error names the spelling that was typed
            parser.add_argument(alias, dest=_dest(alias), metavar=option.metavar, help=argparse.SUPPRESS)


def _as_int(text: str) -> int:
    return int(text.strip())


def _as_lower(text: str) -> str:
    return text.strip().lower()


def _as_bytes(text: str) -> int:
    match = _QUANTITY.fullmatch(text.strip())
    if match is None:
        raise ValueError(text)
    return int(match.group(1)) * _UNITS[match.group(2) or '']


def _as_seconds(text: str) -> float:
    value = float(text.strip())
    if value != value or value in (float('inf'), float('-inf')):
        raise ValueError(text)
    return value


def options_from(
    arguments: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> SupervisorOptions:
    """Merge parsed flags with ``SERGEANT_*`` variables (flags win) and validate them."""
    environ = os.environ if environ is None else environ
    raw: dict[str, tuple[str, str]] = {}  # dest -> (where it came from, text)
    for option in _OPTIONS:
        given = [
            (flag, value)
            for flag in (option.flag, *option.aliases)
            if (value := getattr(arguments, _dest(flag), None)) is not None
        ]
        if len(given) > 1:
            raise OptionError(given[1][0], f'is another spelling of {given[0][0]}; give only one of them')
        if given:
            raw[option.dest] = given[0]
        elif environ.get(option.variable, '').strip():
            raw[option.dest] = (option.variable, environ[option.variable])

    def take(dest: str, convert: Callable[[str], T], expected: str, default: T) -> T:
        if dest not in raw:
            return default
        source, text = raw[dest]
        try:
            return convert(text)
        except ValueError:
            raise OptionError(source, f'must be {expected}, got {text!r}') from None

    for dest in ('worker_module', 'worker_class'):
        if dest not in raw:
            option = next(option for option in _OPTIONS if option.dest == dest)
            raise OptionError(option.flag, f'is required (or set {option.variable})')
    try:
        return SupervisorOptions(
            worker_module=raw['worker_module'][1].strip(),
            worker_class=raw['worker_class'][1].strip(),
            concurrent_workers=take('concurrent_workers', _as_int, 'an integer', 1),
            max_worker_memory_usage=take(
                'max_worker_memory_usage', _as_bytes, 'a number of bytes such as 536870912 or 512Mi', None
            ),
            drain_timeout=take('drain_timeout', _as_seconds, 'a number of seconds', DEFAULT_DRAIN_TIMEOUT),
            log_level=take('log_level', str.upper, 'a log level', 'INFO').strip(),
            metrics_port=take('metrics_port', _as_int, 'a port number', None),
            metrics_address=take('metrics_address', str.strip, 'an address', DEFAULT_METRICS_ADDRESS),
            log_format=take('log_format', _as_lower, 'a log format', 'text'),
        )
    except OptionError as error:
        # name the alias or the environment variable when that is where the bad value came from
        dest = _dest(error.field)
        source = raw.get(dest, (error.field, ''))[0]
        if source != error.field:
            raise OptionError(source, error.problem) from None
        raise
