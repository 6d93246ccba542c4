"""A daemon thread that calls a function at a fixed interval until it is stopped.

The one shape of Sergeant's periodic background loops (the metrics flusher, the
thread killer's watchdog). It imports nothing from Sergeant, so every layer may
use it.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable
from typing import TypeVar

__all__ = ['PeriodicThread']

_Self = TypeVar('_Self', bound='PeriodicThread')


class PeriodicThread:
    """Calls ``tick`` every ``interval`` seconds between ``start`` and ``stop``; a context manager.

    The first call comes one interval after ``start``. ``stop`` waits for a running
    ``tick`` to return; ``tick`` is not called again after it.
    """

    def __init__(self, tick: Callable[[], None], interval: float, name: str) -> None:
        self._tick = tick
        self._interval = interval
        self._name = name
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self: _Self) -> _Self:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            self._tick()
