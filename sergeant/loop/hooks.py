"""What the consume loop needs of the user's worker: its settings, its logger and its hooks.

:class:`~sergeant.worker.Worker` satisfies :class:`Hooks`; the loop never imports
it. Which hooks a worker overrides is decided against ``base``, the class whose
hooks do nothing (see :class:`~sergeant.loop.runner.TaskRunner`).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from ..config import WorkerConfig
from ..objects import Task


class Hooks(Protocol):
    config: WorkerConfig
    logger: logging.Logger

    def work(self, task: Task) -> Any: ...

    def pre_work(self, task: Task) -> None: ...

    def post_work(self, task: Task, success: bool, exception: BaseException | None) -> None: ...

    def handle_event(self, event: str, **arguments: Any) -> None:
        """Dispatch ``on_<event>`` handlers (``on_success``, ``on_failure``, ...) and log the event."""
        ...
