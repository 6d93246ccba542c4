"""Which broker a command works on, and how it reads the payloads there.

Every operating command takes the broker one of two ways:

* ``--broker URL`` (or ``SERGEANT_BROKER``): ``redis://``, ``rediss://`` or ``unix://``
  for Redis, ``redis+cluster://`` or ``rediss+cluster://`` (any node) for a Redis
  Cluster, ``mongodb://`` or ``mongodb+srv://`` for MongoDB and FerretDB (the
  database is the URL's, else ``sergeant``), ``sqlite:///path/to/file`` or a bare
  file path for the local SQLite broker (the file must exist);
* ``--worker-module M --worker-class C`` (or ``SERGEANT_WORKER_MODULE`` and
  ``SERGEANT_WORKER_CLASS``), as the supervisor takes them: the worker's
  ``generate_config()`` gives the connector and the encoder, signing key included.

``--serializer`` and ``--compressor`` set (or, with a worker, override) the encoder;
the signing key is the worker's, else ``SERGEANT_SIGNING_KEY``. :class:`Reader`
decides what may be decoded: a signed payload only once its signature matches,
and an unsigned pickle never, unless ``--unsafe-unpickle`` says the operator
trusts everyone who can write to the broker (unpickling runs code).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

from .. import config
from ..codec import TaskCodec
from ..connector import Connector, create_connector
from ..encoder import Encoder
from ..errors import ConfigError, EncodingError, SergeantError, SignatureError
from ..objects import Task
from .console import CommandError, CommandExit

BROKER_VARIABLE = 'SERGEANT_BROKER'
_WORKER_VARIABLES = ('SERGEANT_WORKER_MODULE', 'SERGEANT_WORKER_CLASS')
_SCHEMES = {
    'redis://': 'redis',
    'rediss://': 'redis',
    'unix://': 'redis',
    'redis+cluster://': 'redis',  # a Redis Cluster, through one of its nodes
    'rediss+cluster://': 'redis',
    'mongodb://': 'mongo',
    'mongodb+srv://': 'mongo',
}
_SQLITE_SCHEME = 'sqlite://'


def add_broker_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags naming the broker and the encoder, shared by every operating command."""
    group = parser.add_argument_group('broker (a URL, or the worker as the supervisor takes it)')
    group.add_argument(
        '--broker',
        metavar='URL',
        help='redis://host:6379/0, redis+cluster://host:7000 (any node of a Redis Cluster), '
        'mongodb://host:27017/db, sqlite:///path/file.sqlite3 or a SQLite file '
        f'path [env: {BROKER_VARIABLE}]',
    )
    group.add_argument('--worker-module', metavar='MODULE', help='module holding the Worker subclass')
    group.add_argument('--worker-class', metavar='CLASS', help='name of the Worker subclass in that module')
    group.add_argument(
        '--serializer',
        choices=config.SERIALIZERS,
        help="the payloads' serializer (default: the worker's, else pickle)",
    )
    group.add_argument(
        '--compressor',
        choices=(*config.COMPRESSORS, 'none'),
        help="the payloads' compressor (default: the worker's, else none); "
        f'the signing key comes from the worker or {config.SIGNING_KEY_VARIABLE}',
    )


def add_unpickle_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--unsafe-unpickle',
        action='store_true',
        help='decode unsigned pickle payloads: runs code of whoever wrote them; '
        'only when you trust every writer of this broker',
    )


@dataclasses.dataclass
class Broker:
    """An open connector and the codec on it; close it when done."""

    connector: Connector
    codec: TaskCodec
    encoder: config.Encoder
    where: str  # the broker, for messages (never with a password)

    def close(self) -> None:
        self.connector.close()


def open_broker(arguments: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Broker:
    """The broker and encoder the flags (or the ``SERGEANT_*`` variables) name."""
    environ = os.environ if environ is None else environ
    url = arguments.broker
    module, class_name = arguments.worker_module, arguments.worker_class
    if url is not None and (module is not None or class_name is not None):
        raise CommandError(
            'give either --broker or --worker-module/--worker-class, not both', CommandExit.USAGE
        )
    if url is None and module is None and class_name is None:
        url = environ.get(BROKER_VARIABLE, '').strip() or None
        if url is None:
            module, class_name = (environ.get(name, '').strip() or None for name in _WORKER_VARIABLES)
    if url is not None:
        connector_config, encoder, where = _from_url(url), config.Encoder(), _redacted(url)
    elif module is not None and class_name is not None:
        worker_config = _worker_config(module, class_name)
        connector_config, encoder = worker_config.connector, worker_config.encoder
        where = f'{module}.{class_name}'
    else:
        raise CommandError(
            f'name the broker: --broker URL (or {BROKER_VARIABLE}), or --worker-module and --worker-class',
            CommandExit.USAGE,
        )
    encoder = _encoder_settings(encoder, arguments, environ)
    try:
        connector = create_connector(connector_config.type, connector_config.params)
    except ConfigError as error:
        raise CommandError(f'{where}: {error}', CommandExit.USAGE) from error
    except SergeantError as error:
        raise CommandError(f'{where}: {error}') from error
    return Broker(connector, TaskCodec(connector, Encoder(encoder)), encoder, where)


def _from_url(url: str) -> config.Connector:
    for scheme, kind in _SCHEMES.items():
        if url.startswith(scheme):
            return config.Connector(type=kind, params={'url': url})  # type: ignore[arg-type]
    if '://' in url and not url.startswith(_SQLITE_SCHEME):
        known = ', '.join([*_SCHEMES, _SQLITE_SCHEME])
        raise CommandError(
            f'--broker: unknown scheme in {_redacted(url)!r} (known: {known})', CommandExit.USAGE
        )
    path = url.removeprefix(_SQLITE_SCHEME)
    if not os.path.isfile(path):
        # the connector would create an empty broker there: a typo must not look like an empty queue
        raise CommandError(f'--broker: no SQLite broker file at {path!r}', CommandExit.USAGE)
    return config.Connector(type='local', params={'file_path': path})


def _redacted(url: str) -> str:
    scheme, separator, rest = url.partition('://')
    credentials, at, host = rest.rpartition('@')
    if not separator or not at:
        return url
    return f'{scheme}://{credentials.partition(":")[0]}:***@{host}'


def _worker_config(module: str, class_name: str) -> config.WorkerConfig:
    from ..supervisor.child import WorkerLoadError, load_worker_class

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m`: the worker's package is found from here
    try:
        worker_class = load_worker_class(module, class_name)
        return worker_class().config
    except WorkerLoadError as error:
        raise CommandError(str(error), CommandExit.WORKER_NOT_LOADABLE) from error
    except Exception as error:
        raise CommandError(
            f'{module}.{class_name}.generate_config() failed: {type(error).__name__}: {error}',
            CommandExit.WORKER_NOT_LOADABLE,
        ) from error


def _encoder_settings(
    encoder: config.Encoder, arguments: argparse.Namespace, environ: Mapping[str, str]
) -> config.Encoder:
    changes: dict[str, Any] = {}
    if arguments.serializer is not None:
        changes['serializer'] = arguments.serializer
    if arguments.compressor is not None:
        changes['compressor'] = None if arguments.compressor == 'none' else arguments.compressor
    key = environ.get(config.SIGNING_KEY_VARIABLE, '').strip()
    if encoder.signing_key is None and key:
        changes['signing_key'] = key
    try:
        return dataclasses.replace(encoder, **changes)
    except ConfigError as error:
        field = config.SIGNING_KEY_VARIABLE if error.field == 'encoder.signing_key' else error.field
        raise CommandError(f'{field}: {error.problem}', CommandExit.USAGE) from None


@dataclasses.dataclass(frozen=True)
class Decoded:
    """What reading one payload gave: the task, or why there is none."""

    task: Task | None
    problem: str = ''  # why not decoded: refused (unsigned pickle), bad signature, not a task


class Reader:
    """Decodes payloads only where that is safe (see the module docstring)."""

    def __init__(self, broker: Broker, unsafe_unpickle: bool) -> None:
        self._codec = broker.codec
        self.signed = broker.encoder.signing_key is not None
        self.refused = broker.encoder.serializer == 'pickle' and not self.signed and not unsafe_unpickle

    @property
    def refusal(self) -> str:
        return (
            f'unsigned pickle payloads are not decoded: set {config.SIGNING_KEY_VARIABLE} (or use the worker '
            'that signs them), or pass --unsafe-unpickle if you trust every writer of this broker'
        )

    def read(self, payload: bytes) -> Decoded:
        if self.refused:
            return Decoded(None, 'not decoded: unsigned pickle')
        try:
            return Decoded(self._codec.decode_task(payload))
        except SignatureError as error:
            return Decoded(None, f'signature refused: {error}')
        except EncodingError as error:
            return Decoded(None, str(error))

    def encode(self, task: Task) -> bytes:
        """The payload of ``task``, ready from now (what the queue-wait metric measures from)."""
        return self._codec.encode_task(task, time.time())
