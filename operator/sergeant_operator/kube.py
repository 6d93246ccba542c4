"""The Kubernetes API as the operator uses it: plain dicts in and out, one error type.

Everything goes through the official ``kubernetes`` client. Custom resources,
Deployments and Leases are read and written through its custom-objects API,
which speaks JSON dicts for any group (``apps`` and ``coordination.k8s.io``
included), so no generated model class leaks into the operator. Failures become
:class:`KubeError` (:class:`NotFound` and :class:`Conflict` for the cases the
callers act on), with the driver's error chained.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator
from typing import Any

import urllib3.exceptions
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from .resource import FIELD_MANAGER, GROUP, PLURAL, VERSION

Obj = dict[str, Any]

REQUEST_TIMEOUT = (5.0, 30.0)  # connect, read: no API call may hang a reconcile loop
MERGE_PATCH = 'application/merge-patch+json'
APPLY_PATCH = 'application/apply-patch+yaml'
_IN_CLUSTER_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace'


class KubeError(Exception):
    """A Kubernetes API call failed; ``status`` is the HTTP status (0 when no answer came)."""

    def __init__(self, status: int, reason: str, message: str = '') -> None:
        super().__init__(f'{status} {reason}: {message}' if message else f'{status} {reason}')
        self.status = status
        self.reason = reason
        self.message = message


class NotFound(KubeError):
    pass


class Conflict(KubeError):
    pass


class Gone(KubeError):
    """A watch's resource version is too old: list again."""


def _translate(error: Exception) -> KubeError:
    if isinstance(error, ApiException):
        status = int(error.status or 0)
        message = str(error.body or '')[:500]
        kind = {404: NotFound, 409: Conflict, 410: Gone}.get(status, KubeError)
        return kind(status, str(error.reason or ''), message)
    return KubeError(0, type(error).__name__, str(error))


def _call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return function(*args, _request_timeout=REQUEST_TIMEOUT, **kwargs)
    except (ApiException, urllib3.exceptions.HTTPError, OSError) as error:
        raise _translate(error) from error


def load_api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """A client of its own (never the library's global one): from ``kubeconfig`` when given,
    else the in-cluster service account, else the default kubeconfig (``$KUBECONFIG``)."""
    try:
        if kubeconfig is not None:
            return config.new_client_from_config(config_file=kubeconfig)
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            return config.new_client_from_config()
        return client.ApiClient(configuration)
    except (config.ConfigException, OSError) as error:
        raise KubeError(0, 'NoConfiguration', f'cannot reach a Kubernetes API server: {error}') from error


def current_namespace(default: str = 'default') -> str:
    """The namespace the operator runs in: ``$POD_NAMESPACE``, the service account's, or ``default``."""
    if os.environ.get('POD_NAMESPACE'):
        return os.environ['POD_NAMESPACE']
    with contextlib.suppress(OSError), open(_IN_CLUSTER_NAMESPACE) as namespace_file:
        return namespace_file.read().strip() or default
    return default


@dataclasses.dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED or BOOKMARK
    object: Obj


class Kube:
    """The API calls of the operator, on one :class:`kubernetes.client.ApiClient`."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.api_client = api_client
        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)

    # -- SergeantWorkers ------------------------------------------------------------------

    def list_workers(self, namespace: str | None) -> tuple[list[Obj], str]:
        """Every SergeantWorker (of ``namespace``, or of all when None) and the list's resourceVersion."""
        if namespace is None:
            listing = _call(self._custom.list_cluster_custom_object, GROUP, VERSION, PLURAL)
        else:
            listing = _call(self._custom.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL)
        return list(listing.get('items') or []), str(listing['metadata'].get('resourceVersion') or '')

    def watch_workers(
        self, namespace: str | None, resource_version: str, timeout_seconds: int
    ) -> Iterator[WatchEvent]:
        """Changes after ``resource_version`` for ``timeout_seconds``; Gone when that version is too old."""
        watcher = watch.Watch()
        function: Callable[..., Any]
        args: tuple[str, ...]
        if namespace is None:
            function, args = self._custom.list_cluster_custom_object, (GROUP, VERSION, PLURAL)
        else:
            function, args = self._custom.list_namespaced_custom_object, (GROUP, VERSION, namespace, PLURAL)
        try:
            stream = watcher.stream(
                function,
                *args,
                resource_version=resource_version,
                timeout_seconds=timeout_seconds,
                allow_watch_bookmarks=True,
                _request_timeout=(REQUEST_TIMEOUT[0], timeout_seconds + REQUEST_TIMEOUT[1]),
            )
            for event in stream:
                raw = event.get('raw_object') or event.get('object') or {}
                if event.get('type') == 'ERROR':
                    status = int(raw.get('code') or 0)
                    kind = Gone if status == 410 else KubeError
                    raise kind(status, str(raw.get('reason') or 'WatchError'), str(raw.get('message') or ''))
                yield WatchEvent(str(event.get('type')), raw)
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as error:
            raise _translate(error) from error
        finally:
            watcher.stop()

    def get_worker(self, namespace: str, name: str) -> Obj:
        return _call(self._custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name)

    def patch_worker_status(self, namespace: str, name: str, status: Obj) -> None:
        _call(
            self._custom.patch_namespaced_custom_object_status,
            GROUP, VERSION, namespace, PLURAL, name, {'status': status},
            _content_type=MERGE_PATCH,
        )  # fmt: skip

    def scale_worker(self, namespace: str, name: str, replicas: int) -> None:
        """Publish a scaling decision through the SergeantWorker's scale subresource."""
        _call(
            self._custom.patch_namespaced_custom_object_scale,
            GROUP, VERSION, namespace, PLURAL, name, {'spec': {'replicas': replicas}},
            _content_type=MERGE_PATCH,
        )  # fmt: skip

    # -- Deployments ------------------------------------------------------------------------

    def get_deployment(self, namespace: str, name: str) -> Obj | None:
        try:
            return _call(
                self._custom.get_namespaced_custom_object, 'apps', 'v1', namespace, 'deployments', name
            )
        except NotFound:
            return None

    def apply_deployment(self, body: Obj, field_manager: str = FIELD_MANAGER) -> None:
        """Server-side apply as ``field_manager``, taking over fields it is told to own."""
        metadata = body['metadata']
        _call(
            self._custom.patch_namespaced_custom_object,
            'apps', 'v1', metadata['namespace'], 'deployments', metadata['name'], body,
            field_manager=field_manager, force=True, _content_type=APPLY_PATCH,
        )  # fmt: skip

    # -- HorizontalPodAutoscalers and the CRD ---------------------------------------------

    def list_autoscalers(self, namespace: str) -> list[Obj]:
        """The HorizontalPodAutoscalers (``autoscaling/v2``) of ``namespace``."""
        listing = _call(
            self._custom.list_namespaced_custom_object,
            'autoscaling', 'v2', namespace, 'horizontalpodautoscalers',
        )  # fmt: skip
        return list(listing.get('items') or [])

    def get_crd(self, name: str) -> Obj | None:
        try:
            return _call(
                self._custom.get_cluster_custom_object,
                'apiextensions.k8s.io', 'v1', 'customresourcedefinitions', name,
            )  # fmt: skip
        except NotFound:
            return None

    def apply_crd(self, body: Obj) -> None:
        """Server-side apply of a CustomResourceDefinition as ``sergeant-operator``."""
        _call(
            self._custom.patch_cluster_custom_object,
            'apiextensions.k8s.io', 'v1', 'customresourcedefinitions', body['metadata']['name'], body,
            field_manager=FIELD_MANAGER, force=True, _content_type=APPLY_PATCH,
        )  # fmt: skip

    # -- Secrets and Events -----------------------------------------------------------------

    def read_secret_value(self, namespace: str, name: str, key: str) -> str:
        """One value of a Secret, decoded; NotFound names the Secret or the key that is missing."""
        secret = _call(self._core.read_namespaced_secret, name, namespace)
        encoded = (secret.data or {}).get(key)
        if encoded is None:
            raise NotFound(404, 'KeyNotFound', f'secret {name!r} has no key {key!r}')
        try:
            return base64.b64decode(encoded).decode()
        except (binascii.Error, UnicodeDecodeError) as error:
            raise KubeError(422, 'InvalidSecretValue', f'key {key!r} of secret {name!r}') from error

    def create_event(self, namespace: str, event: Obj) -> None:
        _call(self._custom.create_namespaced_custom_object, 'events.k8s.io', 'v1', namespace, 'events', event)

    # -- Pods -------------------------------------------------------------------------------

    def list_pods(self, namespace: str, label_selector: str) -> list[Obj]:
        """The pods of ``namespace`` matching ``label_selector``, as plain dicts."""
        listing = _call(self._core.list_namespaced_pod, namespace, label_selector=label_selector)
        return list(self.api_client.sanitize_for_serialization(listing).get('items') or [])

    def annotate_pod(self, namespace: str, name: str, annotations: dict[str, str | None]) -> None:
        """Set (or, with None, remove) annotations of one pod; NotFound when it is gone."""
        body = {'metadata': {'annotations': annotations}}
        _call(self._core.patch_namespaced_pod, name, namespace, body, _content_type=MERGE_PATCH)

    # -- Leases -----------------------------------------------------------------------------

    def get_lease(self, namespace: str, name: str) -> Obj | None:
        try:
            return _call(
                self._custom.get_namespaced_custom_object,
                'coordination.k8s.io',
                'v1',
                namespace,
                'leases',
                name,
            )
        except NotFound:
            return None

    def create_lease(self, namespace: str, body: Obj) -> None:
        """Create a Lease; Conflict when another candidate created it first."""
        _call(
            self._custom.create_namespaced_custom_object,
            'coordination.k8s.io',
            'v1',
            namespace,
            'leases',
            body,
        )

    def replace_lease(self, namespace: str, name: str, body: Obj) -> None:
        """Replace a Lease whose ``metadata.resourceVersion`` is current; Conflict when it is not."""
        _call(
            self._custom.replace_namespaced_custom_object,
            'coordination.k8s.io', 'v1', namespace, 'leases', name, body,
        )  # fmt: skip

    def close(self) -> None:
        self.api_client.close()
