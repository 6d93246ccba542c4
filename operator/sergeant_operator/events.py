"""Kubernetes Events about a SergeantWorker (``events.k8s.io/v1``), shown by ``kubectl describe``.

Reporting is best effort: an Event that cannot be written is logged and counted,
never allowed to stop a reconciliation.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal

from .kube import Kube, KubeError
from .resource import API_VERSION, KIND

logger = logging.getLogger(__name__)

REPORTING_CONTROLLER = 'sergeant.io/sergeant-operator'
_NOTE_LIMIT = 1024  # the API's limit on an Event's note


def event_body(
    regarding: Mapping[str, Any],
    type_: Literal['Normal', 'Warning'],
    reason: str,
    action: str,
    note: str,
    reporting_instance: str,
    now: datetime.datetime,
) -> dict[str, Any]:
    metadata = regarding.get('metadata') or {}
    return {
        'apiVersion': 'events.k8s.io/v1',
        'kind': 'Event',
        'metadata': {'generateName': f'{metadata.get("name")}-', 'namespace': metadata.get('namespace')},
        'eventTime': now.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ'),
        'type': type_,
        'reason': reason,
        'action': action,
        'note': note[:_NOTE_LIMIT],
        'regarding': {
            'apiVersion': API_VERSION,
            'kind': KIND,
            'namespace': metadata.get('namespace'),
            'name': metadata.get('name'),
            'uid': metadata.get('uid'),
        },
        'reportingController': REPORTING_CONTROLLER,
        'reportingInstance': reporting_instance[:128],
    }


class EventReporter:
    """Writes Events as ``reporting_instance`` (the operator replica's identity)."""

    def __init__(
        self,
        kube: Kube,
        reporting_instance: str,
        on_failure: Callable[[str, str], None] | None = None,
        now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.timezone.utc),
    ) -> None:
        self._kube = kube
        self.reporting_instance = reporting_instance
        self._on_failure = on_failure
        self._now = now

    def emit(
        self,
        regarding: Mapping[str, Any],
        type_: Literal['Normal', 'Warning'],
        reason: str,
        action: str,
        note: str,
    ) -> None:
        body = event_body(regarding, type_, reason, action, note, self.reporting_instance, self._now())
        try:
            self._kube.create_event(body['metadata']['namespace'], body)
        except KubeError as error:
            logger.warning('could not record event %s for %s: %s', reason, body['regarding']['name'], error)
            if self._on_failure is not None:
                self._on_failure(body['metadata']['namespace'] or '', body['regarding']['name'] or '')
