"""A kmock Kubernetes emulator served from a background thread, for fast tests of the operator's API calls.

kmock is asyncio-based and the operator uses the blocking ``kubernetes`` client,
so the emulator runs its own event loop in a daemon thread while tests talk to
it over HTTP like the operator does. kmock records every request (``requests()``)
and keeps the objects written (``object()``); it merges patches as plain dicts.
Server-side apply of a missing object creates it and PUT replaces one, as a real API server does.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import kmock
from kubernetes import client
from sergeant_operator.kube import Kube

RESOURCES = {
    'sergeant.io/v1alpha1/sergeantworkers': 'SergeantWorker',
    'apps/v1/deployments': 'Deployment',
    'events.k8s.io/v1/events': 'Event',
    'coordination.k8s.io/v1/leases': 'Lease',
    'v1/secrets': 'Secret',
    'v1/pods': 'Pod',
}


class ApplyingEmulator(kmock.KubernetesEmulator):
    _generated = 0

    async def _handle(self, request: kmock.Request) -> Any:
        content_type = request.headers.get('Content-Type', '')
        metadata = request.data.get('metadata') if isinstance(request.data, dict) else None
        if request.method == kmock.method.POST and metadata and metadata.get('generateName'):
            ApplyingEmulator._generated += 1
            metadata.setdefault('name', f'{metadata["generateName"]}{ApplyingEmulator._generated}')
        if request.method == kmock.method.PATCH and 'apply-patch' in content_type and request.name:
            key = (request.resource, request.namespace, request.name)
            if key not in self.objects or self.objects[key].deleted:
                self.objects[key] = request.data
        if request.method == kmock.method.PUT and request.name:
            key = (request.resource, request.namespace, request.name)
            if key in self.objects and not self.objects[key].deleted:
                self.objects[key] = request.data
        return await super()._handle(request)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.fallback['put'] << self._serve_replacement

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[Any]:
        # kmock streams forever; a real API server ends a watch after timeoutSeconds
        timeout = float(request.params.get('timeoutSeconds') or 0) or None
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        events = super()._serve_watch(request)
        try:
            while True:
                remaining = None if deadline is None else deadline - asyncio.get_running_loop().time()
                if remaining is not None and remaining <= 0:
                    return
                try:
                    yield await asyncio.wait_for(events.__anext__(), remaining)
                except (StopAsyncIteration, asyncio.TimeoutError):
                    return
        finally:
            with contextlib.suppress(Exception):
                await events.aclose()

    async def _serve_replacement(self, request: kmock.Request) -> Any:
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            raise kmock.KubernetesObjectNotFoundError()
        return self.objects[key].raw


@dataclasses.dataclass
class EmulatedApi:
    emulator: ApplyingEmulator
    url: str
    loop: asyncio.AbstractEventLoop

    def kube(self) -> Kube:
        configuration = client.Configuration()
        configuration.host = self.url.rstrip('/')
        return Kube(client.ApiClient(configuration))

    def requests(self) -> list[kmock.Request]:
        return list(self.emulator)

    def writes(self) -> list[kmock.Request]:
        """Requests that change something: POST, PUT, PATCH, DELETE."""
        return [
            r for r in self.requests() if str(r.method.value).upper() in ('POST', 'PUT', 'PATCH', 'DELETE')
        ]

    def put_object(self, resource: str, namespace: str, name: str, obj: dict[str, Any]) -> None:
        done = threading.Event()

        def store() -> None:
            self.emulator.objects[kmock.resource(resource), namespace, name] = obj
            done.set()

        self.loop.call_soon_threadsafe(store)
        done.wait(5)

    def object(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        key = (kmock.resource(resource), namespace, name)
        if key not in self.emulator.objects or self.emulator.objects[key].deleted:
            return None
        raw: dict[str, Any] = self.emulator.objects[key].raw
        return raw


@contextlib.contextmanager
def emulated_api() -> Iterator[EmulatedApi]:
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def serve() -> None:
        stop = asyncio.Event()
        async with ApplyingEmulator() as emulator, kmock.Server(emulator) as server:
            for path, kind in RESOURCES.items():
                emulator.resources[path] = kmock.ResourceInfo(kind=kind, namespaced=True)
            holder.update(api=EmulatedApi(emulator, str(server.url), asyncio.get_running_loop()), stop=stop)
            started.set()
            await stop.wait()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), name='kmock', daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError('kmock did not start')
    api: EmulatedApi = holder['api']
    try:
        yield api
    finally:
        api.loop.call_soon_threadsafe(holder['stop'].set)
        thread.join(10)
