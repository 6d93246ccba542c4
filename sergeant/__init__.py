"""Sergeant: a fast, safe and simple distributed task queue.

Subclass :class:`sergeant.worker.Worker`, describe it with
:class:`sergeant.config.WorkerConfig`, and run it under the supervisor.

The names below are imported on first use, so that ``import sergeant.connector``
(what the operator does) loads the connectors without the worker stack.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, ConnectorError, EncodingError, SergeantError, SignatureError

if TYPE_CHECKING:
    from . import config, objects, worker
    from .objects import Task
    from .worker import Worker

try:
    __version__ = version('sergeant')
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = '0.0.0'

_LAZY = {  # name: (module, attribute; None for the module itself)
    'Task': ('.objects', 'Task'),
    'Worker': ('.worker', 'Worker'),
    'config': ('.config', None),
    'objects': ('.objects', None),
    'worker': ('.worker', None),
}


def __getattr__(name: str) -> Any:
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}') from None
    module = importlib.import_module(module_name, __name__)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


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
