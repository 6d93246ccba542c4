"""The endpoints wired together: the collector over the pool's view, the probe, the verdicts, the server."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, CollectorRegistry

from .collector import MeasureMemory, SergeantCollector
from .health import SupervisorStatus, Verdict, liveness, readiness
from .pool import PoolView
from .probe import BrokerProbe
from .server import ObservabilityServer


class Observability:
    """Started before the first worker, stopped after the last; serves from daemon threads."""

    def __init__(
        self,
        address: str,
        port: int,
        view: Callable[[], PoolView],
        status: Callable[[], SupervisorStatus],
        slots: int,
        memory_limit: int | None,
        measure_memory: MeasureMemory,
    ) -> None:
        self._view = view
        self._status = status
        self.probe = BrokerProbe(lambda: view().broker)
        self.registry = CollectorRegistry()
        # the supervisor's own process_* and python_* families, as any Python exporter has them
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        self.registry.register(SergeantCollector(view, self.probe, slots, memory_limit, measure_memory))
        self._server = ObservabilityServer(address, port, self.registry, self.live, self.ready)

    def start(self) -> None:
        """Listen (OSError when the port is taken), then start probing the broker."""
        self._server.start()
        self.probe.start()

    def stop(self) -> None:
        self._server.stop()
        self.probe.stop()

    def live(self) -> Verdict:
        return liveness(self._status(), time.monotonic())

    def ready(self) -> Verdict:
        probe = self.probe
        return readiness(self._status(), self._view(), probe.state, probe.probing_since, time.monotonic())
