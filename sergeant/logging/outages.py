"""One log line per outage, not one per retry.

While a broker is down, a worker retries fetching every few hundred milliseconds
and acknowledging every 50 ms; a line for each attempt buries everything else. An
:class:`OutageLog` logs the first failure, then at most one reminder per
:data:`REMINDER_EVERY` seconds (with how many failures it did not log), and one line
when the operation works again.
"""

from __future__ import annotations

import logging
import threading
import time

REMINDER_EVERY = 30.0


class OutageLog:
    """Failures of one repeated operation (``what``, e.g. 'fetch tasks'), logged as outages.

    ``then``, when given, ends each failure line (e.g. 'will retry').
    """

    def __init__(self, logger: logging.Logger, what: str, level: int = logging.ERROR, then: str = '') -> None:
        self._logger = logger
        self._what = what
        self._then = f'; {then}' if then else ''
        self._level = level
        self._guard = threading.Lock()
        self._since: float | None = None  # when the failures began
        self._logged_at = 0.0
        self._unlogged = 0

    def failed(self, error: BaseException) -> None:
        now = time.monotonic()
        with self._guard:
            if self._since is None:
                self._since = now
            elif now - self._logged_at < REMINDER_EVERY:
                self._unlogged += 1
                return
            unlogged, self._unlogged, self._logged_at = self._unlogged, 0, now
        if unlogged:
            self._logger.log(
                self._level,
                'could not %s: %s (%d more failures since the last line)%s',
                self._what,
                error,
                unlogged,
                self._then,
            )
        else:
            self._logger.log(self._level, 'could not %s: %s%s', self._what, error, self._then)

    def worked(self) -> None:
        """The operation worked: end the outage, if there was one."""
        if self._since is None:
            return
        with self._guard:
            since, self._since = self._since, None
            unlogged, self._unlogged = self._unlogged, 0
        if since is not None:
            self._logger.warning(
                'could %s again after %.1f s (%d failures not logged one by one)',
                self._what,
                time.monotonic() - since,
                unlogged,
            )
