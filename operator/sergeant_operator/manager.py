"""The running operator: leader election, the SergeantWorker watch, one loop per resource.

While this replica leads, a watch thread lists and watches SergeantWorkers and
keeps one :class:`WorkerLoop` thread per resource. A loop reconciles its resource
every polling interval, and at once when the resource's spec changes (a new
``metadata.generation``); status-only changes, the operator's own included, do
not wake it. When leadership is lost every loop stops before the Lease can pass
to another replica, and each reconciler also checks leadership before writing.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .events import EventReporter
from .kube import Gone, Kube, KubeError
from .leader import LeaderElector
from .metrics import OperatorMetrics
from .queue import QueueReader
from .reconciler import WorkerReconciler
from .resource import object_key

logger = logging.getLogger(__name__)

Key = tuple[str, str]


def _generation(obj: Mapping[str, Any]) -> int:
    return int((obj.get('metadata') or {}).get('generation') or 0)


class WorkerLoop:
    """Reconciles one SergeantWorker every polling interval, from its own thread."""

    def __init__(self, key: Key, obj: Mapping[str, Any], reconciler: WorkerReconciler) -> None:
        self.key = key
        self._obj = obj
        self._reconciler = reconciler
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f'worker-{key[0]}/{key[1]}', daemon=True)

    def start(self) -> None:
        self._thread.start()

    def update(self, obj: Mapping[str, Any]) -> None:
        with self._lock:
            spec_changed = _generation(obj) != _generation(self._obj)
            self._obj = obj
        if spec_changed:
            self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopped.is_set():
            with self._lock:
                obj = self._obj
            try:
                delay = self._reconciler.reconcile(obj).next_poll_seconds
            except Exception:  # a bug must not end the loop of a resource
                logger.exception('reconciling %s/%s failed', *self.key)
                delay = 10.0
            self._wake.wait(delay)
            self._wake.clear()


@dataclasses.dataclass
class OperatorSettings:
    namespace: str | None  # None watches every namespace
    identity: str
    watch_timeout_seconds: int = 60
    restart_delay_seconds: float = 2.0
    allow_privileged_pods: bool = False  # see security.py: refused by default


class Controller:
    """The watch and the loops; started when this replica becomes leader, stopped when it stops."""

    def __init__(
        self,
        kube: Kube,
        settings: OperatorSettings,
        metrics: OperatorMetrics,
        reconciler_factory: Callable[[], WorkerReconciler],
        reader: QueueReader,
    ) -> None:
        self._kube = kube
        self._settings = settings
        self._metrics = metrics
        self._new_reconciler = reconciler_factory
        self._reader = reader
        self._loops: dict[Key, WorkerLoop] = {}
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name='sergeantworker-watch', daemon=True)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def watched(self) -> list[Key]:
        return sorted(self._loops)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped.set()
        loops = list(self._loops.values())
        for loop in loops:
            loop.stop()
        deadline = time.monotonic() + timeout
        for loop in loops:
            loop.join(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                resource_version = self._relist()
                while not self._stopped.is_set():
                    resource_version = self._watch(resource_version)
            except Gone:
                logger.info('watch expired; listing SergeantWorkers again')
            except KubeError as error:
                logger.warning('watching SergeantWorkers: %s', error)
                self._stopped.wait(self._settings.restart_delay_seconds)
            except Exception:
                logger.exception('watching SergeantWorkers failed')
                self._stopped.wait(self._settings.restart_delay_seconds)
        for key in list(self._loops):
            self._drop(key)

    def _relist(self) -> str:
        items, resource_version = self._kube.list_workers(self._settings.namespace)
        present = {object_key(item): item for item in items}
        for key in [key for key in self._loops if key not in present]:
            self._drop(key)
        for key, item in present.items():
            self._upsert(key, item)
        return resource_version

    def _watch(self, resource_version: str) -> str:
        events = self._kube.watch_workers(
            self._settings.namespace, resource_version, self._settings.watch_timeout_seconds
        )
        for event in events:
            if self._stopped.is_set():
                break
            metadata = event.object.get('metadata') or {}
            resource_version = str(metadata.get('resourceVersion') or resource_version)
            if event.type == 'BOOKMARK':
                continue
            key = object_key(event.object)
            if event.type == 'DELETED':
                self._drop(key)
            else:
                self._upsert(key, event.object)
        return resource_version

    def _upsert(self, key: Key, obj: Mapping[str, Any]) -> None:
        if self._stopped.is_set():
            return
        loop = self._loops.get(key)
        if loop is not None:
            loop.update(obj)
            return
        logger.info('watching SergeantWorker %s/%s', *key)
        loop = WorkerLoop(key, obj, self._new_reconciler())
        self._loops[key] = loop
        loop.start()

    def _drop(self, key: Key) -> None:
        loop = self._loops.pop(key, None)
        if loop is None:
            return
        logger.info('SergeantWorker %s/%s is gone', *key)
        loop.stop()
        self._reader.forget(key)
        self._metrics.forget(*key)


class Operator:
    """Everything one replica runs; :meth:`run` blocks until ``stop`` is set."""

    def __init__(
        self,
        kube: Kube,
        settings: OperatorSettings,
        metrics: OperatorMetrics | None = None,
        elector: LeaderElector | None = None,
        reader: QueueReader | None = None,
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.metrics = metrics or OperatorMetrics()
        self.elector = elector
        self.reader = reader or QueueReader(kube.read_secret_value)
        self.events = EventReporter(kube, settings.identity)
        self._controller: Controller | None = None
        self._lock = threading.Lock()
        self._alive_at = time.monotonic()

    @property
    def is_leader(self) -> bool:
        return self.elector is None or self.elector.is_leader

    @property
    def controller(self) -> Controller | None:
        return self._controller

    def is_healthy(self, stale_after: float = 60.0) -> bool:
        """The election loop reported in recently, and the watch runs whenever this replica leads."""
        controller = self._controller
        recent = time.monotonic() - self._alive_at < stale_after
        return recent and (controller is None or controller.alive)

    def new_reconciler(self) -> WorkerReconciler:
        return WorkerReconciler(
            self.kube,
            self.reader,
            self.metrics,
            self.events,
            is_leader=lambda: self.is_leader,
            allow_privileged_pods=self.settings.allow_privileged_pods,
        )

    def run(self, stop: threading.Event) -> None:
        try:
            if self.elector is None:
                self._lead(True)
                while not stop.wait(1.0):
                    self._heartbeat()
            else:
                self.elector.run(stop, self._lead, on_round=self._heartbeat)
        finally:
            self._lead(False)
            self.reader.close()

    def _heartbeat(self) -> None:
        self._alive_at = time.monotonic()

    def _lead(self, leading: bool) -> None:
        with self._lock:
            self.metrics.leader.set(1 if leading else 0)
            if leading and self._controller is None:
                controller = Controller(
                    self.kube, self.settings, self.metrics, self.new_reconciler, self.reader
                )
                controller.start()
                self._controller = controller
            elif not leading and self._controller is not None:
                self._controller.stop()
                self._controller = None
