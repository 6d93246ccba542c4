"""Where the examples' broker is: ``SERGEANT_BROKER``, as the ``sergeant`` command reads it.

A ``redis://`` (``rediss://``, ``unix://``) or ``mongodb://`` URL, or the path of an SQLite file
(``sqlite:///path`` or a plain path). Without it, every example shares one SQLite file in the
temporary directory: the embedded broker, no server needed. In a pod that a SergeantWorker runs,
the operator sets ``SERGEANT_BROKER_URL`` from the resource's connector, which is read next.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable

from sergeant import config

DEFAULT = os.path.join(tempfile.gettempdir(), 'sergeant-examples.sqlite3')


def connector() -> config.Connector:
    where = os.environ.get('SERGEANT_BROKER') or os.environ.get('SERGEANT_BROKER_URL') or DEFAULT
    if where.startswith(('redis://', 'rediss://', 'unix://')):
        return config.Connector(type='redis', params={'url': where})
    if where.startswith(('mongodb://', 'mongodb+srv://')):
        return config.Connector(type='mongo', params={'url': where})
    return config.Connector(type='local', params={'file_path': where.removeprefix('sqlite://')})


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Call ``condition()`` until it is true or ``timeout`` seconds passed; whether it became true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True
