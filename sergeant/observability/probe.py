"""The supervisor's own look at the broker: reachability for ``/readyz``, queue lengths for ``/metrics``.

A worker announces its connector config and queue when it is ready
(:class:`~sergeant.observability.pool.BrokerTarget`); a daemon thread builds a
connector from it (only then is the backend's driver imported) and every
:data:`PROBE_INTERVAL` seconds pings the broker and reads the queue's lengths.
Scrapes and probes only read the last result, so a slow or unreachable broker
never holds up an HTTP answer; a probe still running after its driver's timeout
shows in the result's age (see :mod:`.health`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..connector import Connector, create_connector
from .pool import BrokerTarget

PROBE_INTERVAL = 5.0
_TARGET_POLL = 0.2  # while no worker has announced its broker yet

logger = logging.getLogger('sergeant.supervisor')

ConnectorFactory = Callable[[str, Mapping[str, Any]], Connector]


@dataclasses.dataclass(frozen=True)
class BrokerState:
    """The outcome of one probe; ``lengths`` maps a queue state to its number of tasks."""

    queue: str
    reachable: bool
    checked_at: float  # time.monotonic() when the probe ended
    error: str | None = None
    lengths: Mapping[str, int] = dataclasses.field(default_factory=dict)


class BrokerProbe:
    """Probes the broker of ``target()`` from a daemon thread between :meth:`start` and :meth:`stop`."""

    def __init__(
        self,
        target: Callable[[], BrokerTarget | None],
        interval: float = PROBE_INTERVAL,
        connect: ConnectorFactory = create_connector,
    ) -> None:
        self._target = target
        self._interval = interval
        self._connect = connect
        self._connector: Connector | None = None
        self._connected_to: BrokerTarget | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name='sergeant-broker-probe', daemon=True)
        self.state: BrokerState | None = None  # replaced whole after every probe
        self.errors = 0  # failed probes so far
        self.probing_since: float | None = None  # time.monotonic() when the probe in progress began

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop probing; a probe blocked in the driver is left to its daemon thread."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)

    def _run(self) -> None:
        while not self._stopping.is_set():
            target = self._target()
            if target is None:
                self._stopping.wait(_TARGET_POLL)
                continue
            self.probe(target)
            self._stopping.wait(self._interval)
        self._disconnect()

    def probe(self, target: BrokerTarget) -> BrokerState:
        """Ping the broker and read the queue's lengths once; the result is also kept in :attr:`state`."""
        self.probing_since = time.monotonic()
        try:
            lengths = self._measure(self._connector_for(target), target.queue)
        except Exception as error:
            self.errors += 1
            if self.state is None or self.state.reachable:
                logger.warning('broker of queue %r unreachable: %s', target.queue, _describe(error))
            state = BrokerState(target.queue, False, time.monotonic(), _describe(error))
        else:
            if self.state is not None and not self.state.reachable:
                logger.info('broker of queue %r reachable again', target.queue)
            state = BrokerState(target.queue, True, time.monotonic(), None, lengths)
        finally:
            self.probing_since = None
        self.state = state
        return state

    def _connector_for(self, target: BrokerTarget) -> Connector:
        if self._connector is None or target != self._connected_to:
            self._disconnect()
            self._connector = self._connect(target.connector_type, target.params)
            self._connected_to = target
        return self._connector

    def _disconnect(self) -> None:
        connector, self._connector = self._connector, None
        if connector is not None:
            try:
                connector.close()
            except Exception as error:
                logger.debug('closing the probe connector failed: %s', error)

    @staticmethod
    def _measure(connector: Connector, queue: str) -> dict[str, int]:
        if not connector.ping():
            raise ConnectionError('the broker did not answer a ping')
        ready = connector.length(queue)
        with_delayed = connector.length(queue, include_delayed=True)
        return {
            'ready': ready,
            'delayed': max(0, with_delayed - ready),  # two reads: tasks may have moved in between
            'in_flight': connector.in_flight(queue),
            'dead_letter': connector.dead_letter_length(queue),
        }


def _describe(error: BaseException) -> str:
    return f'{type(error).__name__}: {error}'
