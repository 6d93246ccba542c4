"""Sergeant: a fast, safe and simple distributed task queue.

Subclass :class:`sergeant.worker.Worker`, describe it with
:class:`sergeant.config.WorkerConfig`, and run it under the supervisor.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import config, objects, worker
from .errors import ConfigError, ConnectorError, EncodingError, SergeantError, SignatureError
from .objects import Task
from .worker import Worker

try:
    __version__ = version('sergeant')
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = '0.0.0'

__all__ = [
    'ConfigError',
    'ConnectorError',
    'EncodingError',
    'SergeantError',
    'SignatureError',
    'Task',
    'Worker',
    '__version__',
    'config',
    'objects',
    'worker',
]
