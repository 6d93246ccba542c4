"""Worker configuration: frozen dataclasses, validated when they are built.

The names and defaults follow Sergeant 0.27, so a ``generate_config`` written for
it keeps working; ``Delivery`` is new (at-least-once leases). A bad value raises
:class:`~sergeant.errors.ConfigError` naming the field. This module does no I/O.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import tempfile
from collections.abc import Mapping
from typing import Any, Literal

from .errors import ConfigError

CONNECTOR_TYPES = ('redis', 'mongo', 'local')
COMPRESSORS = ('zlib', 'gzip', 'bzip2', 'lzma')
SERIALIZERS = ('pickle', 'msgpack', 'json')
GUARANTEES = ('at_least_once', 'at_most_once')
LOG_FORMATS = ('text', 'json')
SIGNING_KEY_VARIABLE = 'SERGEANT_SIGNING_KEY'  # a worker's signing key when Encoder sets none
_DEFAULT_PREFETCH = 16  # tasks held ahead when Delivery.prefetch is None


def _require(condition: bool, field: str, problem: str) -> None:
    if not condition:
        raise ConfigError(field, problem)


def _is_number(value: object) -> bool:
    """An int or a finite float (NaN and infinity would defeat every bound and deadline)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class LoggingEvents:
    """Which worker events are logged."""

    on_success: bool = False
    on_failure: bool = True
    on_timeout: bool = True
    on_retry: bool = True
    on_max_retries: bool = True
    on_requeue: bool = True
    on_starvation: bool = True
    on_stop: bool = True
    on_dead_letter: bool = True


@dataclasses.dataclass(frozen=True)
class Logging:
    """The worker logger: level, stdout output and extra handlers.

    ``format`` is how ``log_to_stdout`` writes: ``'text'``, or ``'json'`` for one
    JSON object per line (timestamp, level, logger, worker, pid, event, trace_id,
    exception; see :mod:`sergeant.logging.json_lines`). ``None`` (default) follows
    the ``SERGEANT_LOG_FORMAT`` environment variable, which the supervisor sets
    from its ``--log-format``, and is ``'text'`` without it.
    """

    level: int = logging.ERROR
    log_to_stdout: bool = False
    events: LoggingEvents = dataclasses.field(default_factory=LoggingEvents)
    handlers: list[logging.Handler] = dataclasses.field(default_factory=list)
    format: Literal['text', 'json'] | None = None

    def __post_init__(self) -> None:
        _require(_is_count(self.level), 'logging.level', f'must be a logging level int, got {self.level!r}')
        _require(
            self.format is None or self.format in LOG_FORMATS,
            'logging.format',
            f'must be None or one of {LOG_FORMATS}, got {self.format!r}',
        )


@dataclasses.dataclass(frozen=True)
class Encoder:
    """How tasks become bytes: serializer, optional compressor, optional HMAC signing.

    With ``signing_key`` set, every payload carries an HMAC-SHA256 signature and a
    worker refuses (dead-letters) payloads that were not signed with that key
    before unpickling them.
    """

    compressor: Literal['zlib', 'gzip', 'bzip2', 'lzma'] | None = None
    serializer: Literal['pickle', 'msgpack', 'json'] = 'pickle'
    signing_key: bytes | str | None = None

    def __post_init__(self) -> None:
        _require(
            self.compressor is None or self.compressor in COMPRESSORS,
            'encoder.compressor',
            f'must be None or one of {COMPRESSORS}, got {self.compressor!r}',
        )
        _require(
            self.serializer in SERIALIZERS,
            'encoder.serializer',
            f'must be one of {SERIALIZERS}, got {self.serializer!r}',
        )
        _require(
            self.signing_key is None
            or (isinstance(self.signing_key, (bytes, str)) and len(self.signing_key) >= 16),
            'encoder.signing_key',
            'must be None or a str/bytes secret of at least 16 characters',
        )


def _default_local_path() -> str:
    return os.path.join(tempfile.gettempdir(), 'sergeant_default_db.sqlite3')


@dataclasses.dataclass(frozen=True)
class Connector:
    """Which broker backend to use and how to reach it (see each connector for ``params``)."""

    params: Mapping[str, Any]
    type: Literal['redis', 'mongo', 'local'] = 'local'

    def __post_init__(self) -> None:
        _require(
            self.type in CONNECTOR_TYPES,
            'connector.type',
            f'unknown connector type {self.type!r}; must be one of {CONNECTOR_TYPES}',
        )
        _require(isinstance(self.params, Mapping), 'connector.params', 'must be a dict')


@dataclasses.dataclass(frozen=True)
class Timeouts:
    """Soft time limit per task and the grace period before the worker is killed (0 = none)."""

    timeout: float = 0.0
    grace_period: float = 10.0

    def __post_init__(self) -> None:
        _require(
            _is_number(self.timeout) and self.timeout >= 0, 'timeouts.timeout', 'must be a finite number >= 0'
        )
        _require(
            _is_number(self.grace_period) and self.grace_period >= 0,
            'timeouts.grace_period',
            'must be a finite number >= 0',
        )


@dataclasses.dataclass(frozen=True)
class Starvation:
    """Call ``on_starvation`` after this many seconds without a task."""

    time_with_no_tasks: int

    def __post_init__(self) -> None:
        _require(
            _is_number(self.time_with_no_tasks) and self.time_with_no_tasks > 0,
            'starvation.time_with_no_tasks',
            'must be a finite number > 0',
        )


@dataclasses.dataclass(frozen=True)
class Delivery:
    """Delivery guarantee.

    ``at_least_once`` (default): every popped task is leased for ``lease_seconds``;
    the worker extends leases while tasks run and acknowledges them when done, so a
    task of a worker that died is delivered again. A redelivery counts as a retry
    against ``max_retries``. ``at_most_once``: pop deletes, as Sergeant 0.27 did.

    ``prefetch`` (at-least-once only): a worker keeps at most
    ``tasks_per_transaction + prefetch`` tasks waiting to run (received, or asked
    for by a pop in flight), besides those running. The next transactions are
    requested while the current one runs, so the broker round trip overlaps with
    the work, and transactions of few tasks share one round trip. ``None`` (default) means
    ``max(tasks_per_transaction, 16)``: one transaction ahead, and at least 16
    tasks so that one-task transactions do not cost a round trip each. ``0``
    fetches a transaction only once the previous one is done, as Sergeant 0.27
    did. It is a cap: prefetched tasks are invisible to other workers until they
    run, so a worker holds ahead only the tasks it expects to finish within
    ``sergeant.loop.stream.PREFETCH_HORIZON`` (0.1 s) at its recent pace, and
    none before it has run a transaction, and gives waiting tasks back when the
    running one turns out long: long tasks spread over workers evenly.
    A worker that stops hands its prefetched tasks back at once; one that dies
    leaves them to be redelivered when their leases expire (counted as a retry).
    At-most-once never prefetches: a worker that died would lose those tasks.
    """

    guarantee: Literal['at_least_once', 'at_most_once'] = 'at_least_once'
    lease_seconds: float = 60.0
    prefetch: int | None = None

    def __post_init__(self) -> None:
        _require(
            self.guarantee in GUARANTEES,
            'delivery.guarantee',
            f'must be one of {GUARANTEES}, got {self.guarantee!r}',
        )
        _require(
            _is_number(self.lease_seconds) and self.lease_seconds >= 0.5,
            'delivery.lease_seconds',
            'must be a finite number >= 0.5',
        )
        _require(
            self.prefetch is None or (_is_count(self.prefetch) and self.prefetch >= 0),
            'delivery.prefetch',
            f'must be None or an int >= 0, got {self.prefetch!r}',
        )

    def prefetch_tasks(self, tasks_per_transaction: int) -> int:
        """How many tasks to hold ahead of the running transaction (0 for at-most-once)."""
        if self.guarantee != 'at_least_once':
            return 0
        if self.prefetch is None:
            return max(tasks_per_transaction, _DEFAULT_PREFETCH)
        return self.prefetch

    @property
    def lease(self) -> float | None:
        """The lease to request on pop, or None for at-most-once."""
        return self.lease_seconds if self.guarantee == 'at_least_once' else None


@dataclasses.dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker needs; build it in ``Worker.generate_config``.

    ``stop_task_threads`` (new, default on): threads a task started that still run
    once it is over get ``SystemExit`` raised in them; if some will not end, the
    worker stops fetching and its process is replaced (:mod:`sergeant.loop.thread_guard`).
    """

    name: str
    connector: Connector = dataclasses.field(
        default_factory=lambda: Connector(type='local', params={'file_path': _default_local_path()})
    )
    max_tasks_per_run: int = 0
    max_retries: int = 0
    tasks_per_transaction: int = 1
    number_of_threads: int = 1
    encoder: Encoder = dataclasses.field(default_factory=Encoder)
    timeouts: Timeouts = dataclasses.field(default_factory=Timeouts)
    logging: Logging = dataclasses.field(default_factory=Logging)
    starvation: Starvation | None = None
    delivery: Delivery = dataclasses.field(default_factory=Delivery)
    stop_task_threads: bool = True

    def __post_init__(self) -> None:
        _require(isinstance(self.name, str) and bool(self.name), 'name', 'must be a non-empty string')
        for field, minimum in (
            ('max_tasks_per_run', 0),
            ('max_retries', 0),
            ('tasks_per_transaction', 1),
            ('number_of_threads', 1),
        ):
            value = getattr(self, field)
            _require(
                _is_count(value) and value >= minimum, field, f'must be an int >= {minimum}, got {value!r}'
            )
        for field, kind in (
            ('connector', Connector),
            ('encoder', Encoder),
            ('timeouts', Timeouts),
            ('logging', Logging),
            ('delivery', Delivery),
        ):
            value = getattr(self, field)
            _require(isinstance(value, kind), field, f'must be a sergeant.config.{kind.__name__}')
        _require(
            self.starvation is None or isinstance(self.starvation, Starvation),
            'starvation',
            'must be None or a sergeant.config.Starvation',
        )
        _require(
            isinstance(self.stop_task_threads, bool),
            'stop_task_threads',
            f'must be a bool, got {self.stop_task_threads!r}',
        )

    def replace(self, **changes: Any) -> WorkerConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)
